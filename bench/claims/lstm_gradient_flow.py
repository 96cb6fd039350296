"""C4 (the CSE 891 HW3 solution, §2-3): with f ≈ 1 and i, o ≈ 0 the LSTM's cell gradient is
carried unchanged through time: no vanishing, no exploding.

Measure. For a sequence of T steps and the loss L = Σ_{b,j} h_j(T) (the last output), the cell
adjoints c̄(t) = ∂L/∂c(t), t = 1..T, by autodiff (the gradient with respect to a zero probe added
to c(t), ``models.lstm.lstm_scan_probed``), in float64 at the highest matmul precision. A run is
summarised by ρ(t) = ‖c̄(t)‖ / ‖c̄(T)‖ (norms over batch and units): ρ(1), min_t ρ and max_t ρ,
beside the measured gates: their means over batch and units at each step, reported as the
mean over steps and as the worst step (the largest 1 − f, i, o of any step), and the horizon
T·mean(1 − f). With i, o ≈ 0 the backward recurrence is c̄(t) ≈ f(t+1) ⊙ c̄(t+1), so ρ(1) is
predicted by ‖Π_{t=2}^T f(t) ⊙ c̄(T)‖ / ‖c̄(T)‖ ≈ e^{−T(1−f)}; the table reports that too.

Sweep (fixed before measuring). Inputs x ~ N(0, 1), zero initial state, default initial weights
(``models.lstm.LSTM``), b_g = 0, and for each T in the profile's horizons (cpu: 10, 100, 1000):

* ``closed_bf{b}``: b_i = b_o = −6 (σ(−6) ≈ 0.0025: i, o ≈ 0), b_f ∈ {0, 2, 4, 6, 8, 12};
* ``closed_bf12_wh{s}``: the same with b_f = 12 and the recurrent weights W_h × s,
  s ∈ {10, 100, 1000}: large recurrent weights, which can drive the gates open and explode;
* ``open_bf12_wh{s}``: f ≈ 1 but i, o ≈ 0.5 (b_i = b_o = 0), W_h × s, s ∈ {1, 3}: outside the
  seed's condition, a regime that can explode.

Rule (:func:`judge`; thresholds are the constants below). A run is in the seed's regime when
its *measured* gates satisfy it at every step (the seed's argument is step by step): at the
worst step, mean(1 − f) ≤ F_NEAR_1 and mean i, mean o ≤ GATE_NEAR_0, means over batch and
units. So a run whose large weights open the gates partway leaves the regime, whatever its
biases. A run *kept*
the gradient when KEPT_LO ≤ min_t ρ and max_t ρ ≤ KEPT_HI; it *vanished* when
min_t ρ < KEPT_LO; it *exploded* when max_t ρ > KEPT_HI. Its horizon T·(1 − f) (with the
mean over steps) is short when ≤ SHORT_HORIZON, long when ≥ LONG_HORIZON. In order:

1. INCONCLUSIVE if the seed's regime has fewer than MIN_RUNS short or fewer than MIN_RUNS long
   runs (the sweep cannot tell "f ≈ 1" from "T(1 − f) ≪ 1").
2. FAIL if a run in the seed's regime exploded, or a short one vanished.
3. INCONCLUSIVE if no run of the sweep exploded at all: the measurement was never shown able
   to see an explosion, so "no exploding" was not tested.
4. PASS if every long run in the seed's regime kept the gradient (f ≈ 1 suffices, at any T).
5. CORRECTED if every long run vanished: the gradient is carried unchanged iff T(1 − f) ≪ 1,
   not merely f ≈ 1. The statement adds "multiplied by Π f" only when every run of the seed's
   regime has ρ(1) within a factor PROD_F_TOL of the Π f prediction.
6. INCONCLUSIVE otherwise (long runs mixed).

The seed's slip, for CORRECTED: its per-step step c̄(t) ≈ c̄(t+1) is right to first order (the
exact factor is f(t+1) plus terms carrying i and o), but concluding that "the gradient does not
change" over a sequence drops the compounding of T such factors: Π f ≈ e^{−T(1−f)} → 0 once
T(1 − f) ≳ 1 however close f is to 1. That is a mathematical error, not notation. (The
section's notation slips, tanh²(c̄(t)) for tanh²(c(t)) and "ō & ō close to 0" for the gates
i and o, do not change the conclusion and are not what the verdict judges.)
"""

from __future__ import annotations

import dataclasses
import functools
import math
import pathlib
from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from bench.claims import Verdict, write_table
from models.lstm import LSTM, lstm_scan_probed, lstm_scan_taped, preactivations

CLAIM = "C4"
TABLE = "lstm_gradient_flow_sweep.csv"

# Sizes per profile: the horizons T and the LSTM's batch, input features and hidden units.
SIZES = {
    "smoke": dict(horizons=(10, 100, 300, 1000), batch=4, features=4, hidden=8),
    "cpu": dict(horizons=(10, 100, 1000), batch=8, features=8, hidden=32),
    "full": dict(horizons=(10, 100, 1000, 4000), batch=32, features=64, hidden=256),
}
FORGET_BIASES = (0, 2, 4, 6, 8, 12)
CLOSED = -6.0  # b_i = b_o for "i, o ≈ 0": σ(−6) ≈ 0.0025

# Thresholds of the rule (module docstring).
F_NEAR_1 = 0.05  # f ≈ 1: 1 − f ≤ this (mean over batch and units, at every step)
GATE_NEAR_0 = 0.02  # i, o ≈ 0: i and o ≤ this (likewise)
KEPT_LO, KEPT_HI = 0.5, 2.0  # carried unchanged: every ρ(t) = ‖c̄(t)‖/‖c̄(T)‖ in [lo, hi]
SHORT_HORIZON = 0.1  # T·(1 − f) ≤ this: the product Π f should still be ≈ 1
LONG_HORIZON = 1.0  # T·(1 − f) ≥ this: Π f ≈ e^{−T(1−f)} ≤ 0.37 if the gradient compounds
MIN_RUNS = 2  # at least this many short and long runs in the seed's regime
PROD_F_TOL = 2.0  # ρ(1) within this factor of the Π f prediction


@dataclasses.dataclass(frozen=True)
class Regime:
    """Gate biases (b_g = 0) and a scale on the default recurrent weights W_h."""

    name: str
    b_i: float
    b_f: float
    b_o: float
    w_h_scale: float = 1.0

    def params(self, base: dict) -> dict:
        hidden = base["w_h"].shape[0]
        biases = (self.b_i, self.b_f, 0.0, self.b_o)  # gate order i, f, g, o
        b = jnp.concatenate([jnp.full((hidden,), v, base["b"].dtype) for v in biases])
        return {"w_x": base["w_x"], "w_h": self.w_h_scale * base["w_h"], "b": b}


REGIMES = (
    *(Regime(f"closed_bf{b}", CLOSED, b, CLOSED) for b in FORGET_BIASES),
    *(Regime(f"closed_bf12_wh{s}", CLOSED, 12, CLOSED, s) for s in (10, 100, 1000)),
    *(Regime(f"open_bf12_wh{s}", 0, 12, 0, s) for s in (1, 3)),
)


@functools.partial(jax.jit, static_argnames="horizons")
def cell_gradient_flow(params: dict, x_BxTxI: jax.Array, horizons: tuple[int, ...]) -> dict:
    """For each horizon T (≤ the sequence length) and the loss L_T = Σ h(T): the ratios
    ρ(t) = ‖∂L_T/∂c(t)‖ / ‖∂L_T/∂c(T)‖ (K, T_max), zero after T, and their Π f prediction (K,);
    plus the gates' means over batch and units at each step (T_max,).

    One forward pass of the longest sequence serves every horizon: step t's state does not
    depend on inputs after t, so L_T's gradient is that of a run of length T.
    """
    batch, steps, _ = x_BxTxI.shape
    hidden = params["w_h"].shape[0]

    def losses(probe_c):
        _, h_BxTxH = lstm_scan_probed(params, x_BxTxI, {"c": probe_c})
        return jnp.stack([h_BxTxH[:, t - 1].sum() for t in horizons])

    c_bar_KxBxTxH = jax.jacrev(losses)(jnp.zeros((batch, steps, hidden), x_BxTxI.dtype))
    norms_KxT = jnp.sqrt((c_bar_KxBxTxH**2).sum(axis=(1, 3)))
    zeros = jnp.zeros((batch, hidden), x_BxTxI.dtype)
    _, tape = lstm_scan_taped(params, x_BxTxI, (zeros, zeros))
    zi, zf, _, zo = jnp.split(preactivations(params, tape), 4, axis=-1)
    # c̄(1) ≈ Π_{t=2}^T f(t) ⊙ c̄(T) when i, o ≈ 0; log σ keeps the product exact near f = 1.
    log_f_cum_TxBxH = jnp.cumsum(jax.nn.log_sigmoid(zf), axis=0)
    rho, prod_f = [], []
    for k, t in enumerate(horizons):
        rho.append(norms_KxT[k] / norms_KxT[k, t - 1])
        c_bar_T = c_bar_KxBxTxH[k, :, t - 1]
        prod_f_BxH = jnp.exp(log_f_cum_TxBxH[t - 1] - log_f_cum_TxBxH[0])
        prod_f.append(jnp.linalg.norm(prod_f_BxH * c_bar_T) / jnp.linalg.norm(c_bar_T))
    return dict(
        rho=jnp.stack(rho),
        prod_f=jnp.stack(prod_f),
        one_minus_f=jax.nn.sigmoid(-zf).mean(axis=(1, 2)),
        i=jax.nn.sigmoid(zi).mean(axis=(1, 2)),
        o=jax.nn.sigmoid(zo).mean(axis=(1, 2)),
    )


def sweep(profile: str, seed: int = 0) -> list[dict]:
    """One row per (regime, T): the measured gates and the ratios ρ (module docstring)."""
    s = SIZES[profile]
    horizons = tuple(s["horizons"])
    rows = []
    with jax.enable_x64(True), jax.default_matmul_precision("highest"):
        base = LSTM(s["features"], s["hidden"], rngs=nnx.Rngs(seed)).params
        base = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), base)
        shape = (s["batch"], max(horizons), s["features"])
        x = jax.random.normal(jax.random.key(seed), shape, jnp.float64)
        for regime in REGIMES:
            flow = cell_gradient_flow(regime.params(base), x, horizons)
            flow = jax.tree.map(np.asarray, flow)
            for k, steps in enumerate(horizons):
                rho = flow["rho"][k, :steps]
                one_minus_f, i, o = (flow[g][:steps] for g in ("one_minus_f", "i", "o"))
                rows.append(
                    dict(
                        regime=regime.name,
                        b_i=regime.b_i,
                        b_f=regime.b_f,
                        b_o=regime.b_o,
                        w_h_scale=regime.w_h_scale,
                        seq_len=steps,
                        mean_1_minus_f=float(one_minus_f.mean()),
                        mean_i=float(i.mean()),
                        mean_o=float(o.mean()),
                        worst_1_minus_f=float(one_minus_f.max()),
                        worst_i=float(i.max()),
                        worst_o=float(o.max()),
                        horizon=steps * float(one_minus_f.mean()),
                        rho_first=float(rho[0]),
                        rho_min=float(rho.min()),
                        rho_max=float(rho.max()),
                        prod_f_prediction=float(flow["prod_f"][k]),
                    )
                )
    return rows


def experiment(profile: str, run_dir: pathlib.Path) -> list[Verdict]:
    """C4: measure the sweep, write it to ``lstm_gradient_flow_sweep.csv``, judge it."""
    rows = sweep(profile)
    write_table(run_dir, TABLE, rows)
    return [judge(rows)]


# --- The rule --------------------------------------------------------------------------------


def in_seed_regime(row: Mapping) -> bool:
    """f ≈ 1 and i, o ≈ 0 at every step, read from the measured gates."""
    return (
        row["worst_1_minus_f"] <= F_NEAR_1
        and row["worst_i"] <= GATE_NEAR_0
        and row["worst_o"] <= GATE_NEAR_0
    )


def vanished(row: Mapping) -> bool:
    return row["rho_min"] < KEPT_LO


def exploded(row: Mapping) -> bool:
    return row["rho_max"] > KEPT_HI  # inf (float64 overflow) counts


def kept(row: Mapping) -> bool:
    return not vanished(row) and not exploded(row)


def _run(row: Mapping) -> str:
    return (
        f"{row['regime']} T={row['seq_len']} (T(1−f)={row['horizon']:.3g}, "
        f"i, o ≤ {max(row['worst_i'], row['worst_o']):.2g})"
    )


def _within_prod_f(row: Mapping) -> bool:
    measured, predicted = row["rho_first"], row["prod_f_prediction"]
    if not (measured > 0 and predicted > 0 and math.isfinite(measured)):
        return False
    return abs(math.log(measured / predicted)) <= math.log(PROD_F_TOL)


RULE = (
    f"seed's regime: at every step mean 1−f ≤ {F_NEAR_1}, mean i, o ≤ {GATE_NEAR_0}; kept: every "
    f"ρ(t)=‖c̄(t)‖/‖c̄(T)‖ in [{KEPT_LO}, {KEPT_HI}], vanished: min ρ < {KEPT_LO}, exploded: "
    f"max ρ > {KEPT_HI}; short: T(1−f) ≤ {SHORT_HORIZON}, long: T(1−f) ≥ {LONG_HORIZON}. "
    f"INCONCLUSIVE if < {MIN_RUNS} short or long runs in the seed's regime; FAIL if one there "
    "exploded or a short one vanished; INCONCLUSIVE if no run of the sweep exploded; PASS if "
    "every long one kept it; CORRECTED if every long one vanished; else INCONCLUSIVE"
)
CHECK = (
    "‖∂L/∂c(t)‖ for t = 1..T by autodiff (gradient w.r.t. a zero probe added to c(t)), "
    "L = Σ h(T), float64; sweep of b_f × T with i, o ≈ 0 by bias, large recurrent weights, "
    "and f ≈ 1 with i, o ≈ 0.5"
)
MEASURE = "ρ(t) = ‖∂L/∂c(t)‖/‖∂L/∂c(T)‖ over t = 1..T (min, max, ρ(1)); measured gates"


def judge(rows: Sequence[Mapping]) -> Verdict:
    """C4's verdict from the sweep's rows (columns as written by :func:`sweep`)."""
    seed = [r for r in rows if in_seed_regime(r)]
    short = [r for r in seed if r["horizon"] <= SHORT_HORIZON]
    long = [r for r in seed if r["horizon"] >= LONG_HORIZON]
    others = [r for r in rows if not in_seed_regime(r)]
    summary = (
        f"{len(rows)} runs, {len(seed)} in the seed's regime ({len(short)} short, "
        f"{len(long)} long); kept in {sum(map(kept, short))}/{len(short)} short and "
        f"{sum(map(kept, long))}/{len(long)} long runs"
    )
    if seed:
        worst_up = max(seed, key=lambda r: r["rho_max"])
        worst_down = min(seed, key=lambda r: r["rho_min"])
        summary += (
            f"; in the seed's regime max ρ {worst_up['rho_max']:.3g} at {_run(worst_up)}, "
            f"min ρ {worst_down['rho_min']:.3g} at {_run(worst_down)}"
        )
    if others:
        top = max(others, key=lambda r: r["rho_max"])
        summary += (
            f"; outside it {sum(map(exploded, others))}/{len(others)} runs exploded "
            f"(max ρ {top['rho_max']:.3g} at {_run(top)})"
        )

    def verdict(word: str, measured: str, statement: str = "", slip: str = "") -> Verdict:
        return Verdict(CLAIM, word, CHECK, MEASURE, RULE, measured, statement, slip)

    if len(short) < MIN_RUNS or len(long) < MIN_RUNS:
        return verdict(
            "INCONCLUSIVE",
            f"{summary}; need ≥ {MIN_RUNS} short and ≥ {MIN_RUNS} long runs in the seed's "
            "regime to tell f ≈ 1 from T(1−f) ≪ 1",
        )
    blown = [r for r in seed if exploded(r)]
    lost = [r for r in short if vanished(r)]
    if blown or lost:
        parts = []
        if blown:
            r = max(blown, key=lambda r: r["rho_max"])
            parts.append(
                f"with f ≈ 1 and i, o ≈ 0 the cell gradient exploded in {len(blown)} run(s), "
                f"growing up to ×{r['rho_max']:.3g} ({_run(r)})"
            )
        if lost:
            r = min(lost, key=lambda r: r["rho_min"])
            parts.append(
                f"it vanished in {len(lost)} run(s) even with T(1−f) ≤ {SHORT_HORIZON}, down "
                f"to ×{r['rho_min']:.3g} ({_run(r)})"
            )
        return verdict("FAIL", summary, "; ".join(parts))
    if not any(exploded(r) for r in rows):
        return verdict(
            "INCONCLUSIVE",
            f"{summary}; no run of the sweep exploded, so the measurement was never shown "
            "able to see an explosion",
        )
    n_kept = sum(map(kept, long))
    if n_kept == len(long):
        r = max(long, key=lambda r: r["horizon"])
        return verdict(
            "PASS",
            summary,
            f"with f ≈ 1 and i, o ≈ 0 the cell gradient was carried unchanged (ρ in "
            f"[{KEPT_LO}, {KEPT_HI}]) in all {len(seed)} runs, up to T(1−f) = "
            f"{r['horizon']:.3g}; it never exploded there, while it did outside that regime",
        )
    if n_kept == 0:
        statement = _corrected_statement(seed, short, long, others)
        return verdict("CORRECTED", summary, statement, "mathematical error")
    return verdict(
        "INCONCLUSIVE",
        f"{summary}; the long runs are mixed ({n_kept}/{len(long)} kept): T(1−f) does not decide",
    )


def _corrected_statement(seed, short, long, others) -> str:
    deepest = min(long, key=lambda r: r["rho_min"])
    shortest_long = min(long, key=lambda r: r["horizon"])
    worst_up = max(seed, key=lambda r: r["rho_max"])
    statement = (
        "with f ≈ 1 and i, o ≈ 0 the cell gradient is carried unchanged iff T(1−f) ≪ 1, "
        f"not merely f ≈ 1: kept in all {len(short)} runs with T(1−f) ≤ {SHORT_HORIZON}, "
        f"vanished in all {len(long)} with T(1−f) ≥ {LONG_HORIZON} (already ×"
        f"{shortest_long['rho_first']:.3g} at {_run(shortest_long)}, down to ×"
        f"{deepest['rho_min']:.3g} at {_run(deepest)})"
    )
    if all(_within_prod_f(r) for r in seed):
        statement += (
            f"; over T steps it is multiplied by Π f ≈ e^{{−T(1−f)}} (ρ(1) within ×"
            f"{PROD_F_TOL:g} of Π f in all {len(seed)} runs)"
        )
    statement += (
        f"; it did not explode there (max ρ {worst_up['rho_max']:.3g}; recurrent weights up "
        f"to ×{max(r['w_h_scale'] for r in seed):g} while the gates stayed closed)"
    )
    blown = [r for r in others if exploded(r)]
    if blown:
        r = max(blown, key=lambda r: r["rho_max"])
        statement += f", but it exploded in {len(blown)} runs outside it"
        if all(max(b["worst_i"], b["worst_o"]) > GATE_NEAR_0 for b in blown):
            statement += f", all with i or o > {GATE_NEAR_0} at some step"
        statement += f", up to ×{r['rho_max']:.3g} at {_run(r)}"
    return statement
