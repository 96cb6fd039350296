"""C2, C3 (seed §2-1, §2-2): the LSTM's backward equations; C4 (§2-3): its cell gradient flow.

How each is measured and why its rule is so: docs/claims.md, C2, C3 and C4. Both experiments
run in float64 where precision matters (decays reach 1e-300) with the highest matmul precision
(no TF32 on GPUs), so the numbers measure the maths, not rounding.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import pathlib
import types
from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from flax import nnx

from bench.claims import Claim, Curve, Experiment, Rule, Verdict, register, state
from bench.store import write_table
from models.lstm import (
    LSTM,
    adjoints_and_values,
    linear_loss,
    lstm_bptt,
    lstm_scan,
    lstm_scan_probed,
    lstm_scan_taped,
    preactivations,
    random_problem,
)

# --- C2, C3: the backward equations ----------------------------------------------------------

# (batch, seq_len, features, hidden) per profile.
BACKWARD_SIZES = {
    "smoke": dict(batch=2, seq_len=5, features=3, hidden=4),
    "cpu": dict(batch=8, seq_len=64, features=16, hidden=32),
    "full": dict(batch=32, seq_len=256, features=64, hidden=256),
}
TOL_F32, TOL_F64 = 1e-5, 1e-10  # max |error| / max |reference|
BPTT = "hand-written BPTT"
FORMS = ("as written", "corrected")
ERROR_COLUMNS = ("claim", "equation", "form", "dtype", "max_abs_err", "max_rel_err")


@jax.jit
def _manual_and_autodiff(params, x, carry, dh, dcarry):
    grads = lstm_bptt(params, x, dh, carry, dcarry)
    expected = jax.grad(linear_loss(lstm_scan, dh, dcarry), argnums=(0, 1, 2))(params, x, carry)
    return (grads.params, grads.x, grads.carry), expected


def _errors(actual, expected) -> tuple[float, float]:
    """(max |a - e|, that divided by max |e|) over all leaves."""
    pairs = [
        (np.asarray(a, np.float64), np.asarray(e, np.float64))
        for a, e in zip(jax.tree.leaves(actual), jax.tree.leaves(expected), strict=True)
    ]
    abs_err = max(float(np.abs(a - e).max()) for a, e in pairs)
    scale = max(float(np.abs(e).max()) for _, e in pairs)
    return abs_err, abs_err / scale if scale > 0 else abs_err


def _error_row(claim: str, equation: str, form: str, dtype: str, actual, expected) -> dict:
    """A row of ``lstm_backward_equations.csv``."""
    values = (claim, equation, form, dtype, *_errors(actual, expected))
    return dict(zip(ERROR_COLUMNS, values, strict=True))


@dataclasses.dataclass(frozen=True)
class SeedLine:
    """One equation of the seed, as written and as corrected, each an ``(expression, reference)``
    pair: a function of the arrays of one float64 problem (:func:`_equation_arrays`) and the
    name of the autodiff array it claims to equal. ``fix`` states the correction (reported only
    if the line as written measures wrong) and ``slip`` its kind (``bench.claims.SLIPS``)."""

    claim: str
    equation: str
    as_written: tuple
    corrected: tuple
    fix: str = ""
    slip: str = ""
    side_note: bool = False
    """A note beside an equation, judged as its own finding: it sets neither the verdict nor
    the slip (the equation is judged on what it says)."""


def _same(expression, reference: str):
    """A line the seed gets right: as written = corrected."""
    return (expression, reference), (expression, reference)


SEED_LINES = (
    SeedLine(
        "C2",
        "h̄(t) = [direct term] + Σ_k W_hk (k̄ ⊙ k')(t+1)",
        (lambda v: v.c_bar + v.h_bar_future, "h_bar"),
        (lambda v: v.dh + v.h_bar_future, "h_bar"),
        "the direct term of h̄(t) is ∂ℓ/∂h(t); the seed writes '+ dL/dC(t)' (measured with "
        "dL/dC(t) read as c̄(t))",
        "notation or transcription slip",
    ),
    SeedLine(
        "C2",
        "c̄(t) = h̄(t) o(t)(1 - tanh² c(t)) + c̄(t+1) f(t+1)",
        *_same(lambda v: v.h_bar * v.o * (1 - np.tanh(v.c) ** 2) + v.c_bar_future, "c_bar"),
    ),
    SeedLine("C2", "ḡ(t) = c̄(t) i(t)", *_same(lambda v: v.c_bar * v.i, "g_bar")),
    SeedLine("C2", "ō(t) = h̄(t) tanh c(t)", *_same(lambda v: v.h_bar * np.tanh(v.c), "o_bar")),
    SeedLine("C2", "f̄(t) = c̄(t) c(t-1)", *_same(lambda v: v.c_bar * v.c_prev, "f_bar")),
    SeedLine(
        "C2",
        "last line: seed 'ō(t) = c̄(t) g(t)', corrected ī(t) = c̄(t) g(t)",
        (lambda v: v.c_bar * v.g, "o_bar"),
        (lambda v: v.c_bar * v.g, "i_bar"),
        "the seed's second ō line is the input gate's: ī(t) = c̄(t) ⊙ g(t)",
        "notation or transcription slip",
    ),
    SeedLine(
        "C2",
        "σ' in h̄: z̄_k = k̄ ⊙ k(1-k) for k = i, f, o",
        *_same(lambda v: v.k_bar_sigma_prime, "z_bar_ifo"),
    ),
    SeedLine(
        "C2",
        "tanh' in h̄: z̄_g = ḡ ⊙ (1 - tanh²(W_xg x + W_hg h))",
        *_same(lambda v: v.g_bar * (1 - v.g**2), "z_bar_g"),
    ),
    SeedLine(
        "C2",
        "side note under tanh' in h̄: seed 'tanh(x) = (1-tanh²x)/(1+tanh²x)', read as tanh'(x)",
        (lambda v: v.g_bar * (1 - v.g**2) / (1 + v.g**2), "z_bar_g"),
        (lambda v: v.g_bar * (1 - v.g**2), "z_bar_g"),
        "the seed's side note tanh'(x) = (1-tanh²x)/(1+tanh²x) is false (that is sech 2x); "
        "tanh'(x) = 1 - tanh²x, which its equation uses",
        "mathematical error",
        side_note=True,
    ),
    SeedLine(
        "C3",
        "W̄_xi: seed Σ_t c̄ o(1-o) x(t), corrected Σ_t x(t)ᵀ (c̄ g i(1-i))",
        (lambda v: np.einsum("bti,bth->ih", v.x, v.c_bar * v.o * (1 - v.o)), "w_xi_bar"),
        (lambda v: np.einsum("bti,bth->ih", v.x, v.c_bar * v.g * v.i * (1 - v.i)), "w_xi_bar"),
        "W̄_xi = Σ_t x(t)ᵀ (ī(t) ⊙ i(t)(1 - i(t))) with ī = c̄ ⊙ g: the seed differentiates o, "
        "not i (do/dw, o(1-o)), drops the factor g(t), and writes x̄(t) for the input x(t)",
        "mathematical error",
    ),
)
LINES = {line.equation: line for line in SEED_LINES}


def _w_xi(grads, hidden: int):
    """W̄_xi: the input gate's block of W̄_x in (W̄_x, W̄_h, b̄)-first gradients."""
    return grads[0]["w_x"][:, :hidden]


def _next(a, last):
    """a(t+1) for t = 1..T along axis 1, with ``last`` standing for a(T+1)."""
    return np.concatenate([a[:, 1:], last[:, None]], axis=1)


def _equation_arrays(problem) -> types.SimpleNamespace:
    """Everything the seed's lines refer to, from autodiff only, as float64 NumPy arrays."""
    params, x, _, dh, dcarry = problem
    hidden = dh.shape[-1]
    bar, values = adjoints_and_values(*problem)
    _, expected = _manual_and_autodiff(*problem)
    v = {k: np.asarray(a) for k, a in values.items()}
    v |= {f"{k}_bar": np.asarray(a) for k, a in bar.items()}
    v |= dict(x=np.asarray(x), dh=np.asarray(dh))
    z_bar = v["z_bar"]
    v["h_bar_future"] = _next(z_bar @ np.asarray(params["w_h"]).T, np.asarray(dcarry[0]))
    v["c_bar_future"] = _next(v["c_bar"] * v["f"], np.asarray(dcarry[1]))
    zi, zf, zg, zo = np.split(z_bar, 4, axis=-1)
    v["z_bar_g"], v["z_bar_ifo"] = zg, np.concatenate([zi, zf, zo], axis=-1)
    v["k_bar_sigma_prime"] = np.concatenate(
        [v[k + "_bar"] * v[k] * (1 - v[k]) for k in ("i", "f", "o")], axis=-1
    )
    v["w_xi_bar"] = np.asarray(_w_xi(expected, hidden))
    return types.SimpleNamespace(**v)


def backward_claims(profile: str, run_dir: pathlib.Path) -> list[Verdict]:
    """C2 and C3: hand-written BPTT vs ``jax.grad``, and the seed's equations one by one."""
    s = BACKWARD_SIZES[profile]
    rows = []
    with jax.default_matmul_precision("highest"):
        for dtype in (np.float32, np.float64):
            with jax.enable_x64(dtype == np.float64):
                manual, expected = _manual_and_autodiff(*random_problem(**s, dtype=dtype))
                name = np.dtype(dtype).name
                everything = "all gradients: W_x, W_h, b, x, h(0), c(0)"
                rows.append(_error_row("C2", everything, BPTT, name, manual, expected))
                w_xi = [_w_xi(grads, s["hidden"]) for grads in (manual, expected)]
                rows.append(_error_row("C3", "W̄_xi (i-block of W̄_x)", BPTT, name, *w_xi))
        with jax.enable_x64(True):
            v = _equation_arrays(random_problem(**s, dtype=np.float64))
    for line in SEED_LINES:
        for form, (expression, reference) in zip(
            FORMS, (line.as_written, line.corrected), strict=True
        ):
            actual, expected = expression(v), getattr(v, reference)
            rows.append(_error_row(line.claim, line.equation, form, "float64", actual, expected))
    write_table(run_dir, "lstm_backward_equations.csv", rows)
    sizes = ", ".join(f"{k}={val}" for k, val in s.items())
    return [_backward_verdict(claim, pd.DataFrame(rows), sizes) for claim in ("C2", "C3")]


BACKWARD = Rule(  # C2's and C3's: each verdict names its claim, the sizes and the slip
    "C2",
    "hand-written reverse-scan BPTT vs jax.grad on random data ({sizes}; float32 and float64), "
    "and each seed line vs autodiff's per-step adjoints (grad w.r.t. zero probes) in float64",
    "max relative error against autodiff",
    f"FAIL iff the BPTT (tolerance {TOL_F32:g} f32 / {TOL_F64:g} f64) or any corrected "
    f"line is off; CORRECTED iff a seed equation as written (not its side notes) is "
    f"off by > {TOL_F64:g}, the slip that of the equations; else PASS; side notes "
    "reported as their own findings",
)
BACKWARD_MEASURED = (
    "hand-written BPTT vs jax.grad, max rel err: float32 {bptt[float32]:.1e}, float64 "
    "{bptt[float64]:.1e}; corrected equations vs autodiff adjoints ≤ {corrected:.1e}; seed lines "
    "as written that are wrong: {wrong_lines}"
)
BACKWARD_SAYS = {
    "FAIL": "the backward equations, even corrected, do not give autodiff's gradients",
    "PASS": "every line of the seed equals autodiff's adjoint",
    "CORRECTED": "{fixes}",
}
NOTATION = (
    "; notation (not measurable): σ'(x) = σ(x)(1-σ(x)) is labelled 'σ(x) = ...', the '≈' in h̄ "
    "is an equality, and w_hk multiplies as W_hkᵀ for vectors"
)


def backward_decision(claim: str, table: pd.DataFrame) -> tuple[str, str, dict]:
    """(verdict, slip, facts) of C2 or C3 from the table of errors: ``bptt`` (dtype → the
    hand-written pass's error), the largest ``corrected`` line's, the seed's equations and
    side notes off by more than the tolerance (``wrong``, ``wrong_notes``), every note's."""
    t = table[table.claim == claim]
    bptt = t[t.form == BPTT].set_index("dtype").max_rel_err
    note = t.equation.map(lambda e: LINES[e].side_note if e in LINES else False)
    written, notes = t[(t.form == "as written") & ~note], t[(t.form == "as written") & note]
    facts = dict(
        bptt={"float32": bptt["float32"], "float64": bptt["float64"]},
        corrected=t[t.form == "corrected"].max_rel_err.max(),
        wrong=dict(zip(written.equation, written.max_rel_err, strict=True)),
        notes=dict(zip(notes.equation, notes.max_rel_err, strict=True)),
    )
    facts["wrong"] = {e: err for e, err in facts["wrong"].items() if err > TOL_F64}
    facts["wrong_notes"] = {e: err for e, err in facts["notes"].items() if err > TOL_F64}
    bptt_ok = bptt["float32"] <= TOL_F32 and bptt["float64"] <= TOL_F64
    if not bptt_ok or (t[t.form == "corrected"].max_rel_err > TOL_F64).any():
        return "FAIL", "", facts
    if not facts["wrong"]:
        return "PASS", "", facts
    slips = {LINES[e].slip for e in facts["wrong"]}
    return "CORRECTED", "mathematical error" if "mathematical error" in slips else min(slips), facts


def _backward_verdict(claim: str, table: pd.DataFrame, sizes: str) -> Verdict:
    verdict, slip, f = backward_decision(claim, table)
    wrong = "; ".join(f"'{e}' rel err {err:.2f}" for e, err in f["wrong"].items())
    measured = BACKWARD_MEASURED.format(wrong_lines=wrong or "none", **f)
    if f["notes"]:
        measured += "; side notes (judged apart from the equations): " + "; ".join(
            f"'{e}' rel err {err:.2g}" for e, err in f["notes"].items()
        )
    fixes = "; ".join(f"{LINES[e].fix} ({LINES[e].slip})" for e in f["wrong"])
    statement = BACKWARD_SAYS[verdict].format(fixes=fixes)
    statement += NOTATION if verdict == "CORRECTED" and claim == "C2" else ""
    if f["wrong_notes"] and verdict != "FAIL":
        statement += "; apart from the equations: " + "; ".join(
            f"{LINES[e].fix} ({LINES[e].slip} in a note)" for e in f["wrong_notes"]
        )
    check = BACKWARD.check.format(sizes=sizes)
    return BACKWARD.verdict(verdict, measured, statement, f, claim=claim, check=check, slip=slip)


# --- C4: gradient flow through the cell --------------------------------------------------------

FLOW_TABLE = "lstm_gradient_flow_sweep.csv"
# Sizes per profile: the horizons T and the LSTM's batch, input features and hidden units.
FLOW_SIZES = {
    "smoke": dict(horizons=(10, 100, 300, 1000), batch=4, features=4, hidden=8),
    "cpu": dict(horizons=(10, 100, 1000), batch=8, features=8, hidden=32),
    "full": dict(horizons=(10, 100, 1000, 4000), batch=32, features=64, hidden=256),
}
FORGET_BIASES = (0, 2, 4, 6, 8, 12)
CLOSED = -6.0  # b_i = b_o for "i, o ≈ 0": σ(−6) ≈ 0.0025
# Thresholds of the rule (FLOW).
F_NEAR_1 = 0.05  # f ≈ 1: 1 − f ≤ this (mean over batch and units, at every step)
GATE_NEAR_0 = 0.02  # i, o ≈ 0: i and o ≤ this (likewise)
FIT_RATIO = 1.5  # a hypothesis fits a run iff every ρ(t) is within this factor of its prediction
EXPLODED = 2.0  # a run exploded iff some ρ(t) > this (the control that the sweep can see it)
MIN_RUNS = 2  # at least this many discriminating runs in the seed's regime
DISCRIMINATES = 1 / FIT_RATIO**2  # min P(t) below this: no ρ(t) can fit both hypotheses


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
    ρ(t) = ‖∂L_T/∂c(t)‖ / ‖∂L_T/∂c(T)‖ (K, T_max), zero after T, and their "carried as Π f"
    prediction P(t) = ‖Π_{s=t+1}^T f(s) ⊙ ∂L_T/∂c(T)‖ / ‖∂L_T/∂c(T)‖ (K, T_max), one after T;
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
        c_bar_T_BxH = c_bar_KxBxTxH[k, :, t - 1]
        # P(s) = ‖Π_{r=s+1}^{t} f(r) ⊙ c̄(t)‖ / ‖c̄(t)‖ for s = 1..T_max (1 from s = t on)
        log_prod_TxBxH = jnp.minimum(log_f_cum_TxBxH[t - 1][None] - log_f_cum_TxBxH, 0.0)
        ahead = (jnp.arange(steps) < t)[:, None, None]
        prod_f_TxBxH = jnp.where(ahead, jnp.exp(log_prod_TxBxH), 1.0)
        prod_f.append(
            jnp.sqrt(((prod_f_TxBxH * c_bar_T_BxH[None]) ** 2).sum(axis=(1, 2)))
            / jnp.linalg.norm(c_bar_T_BxH)
        )
    return dict(
        rho=jnp.stack(rho),
        prod_f=jnp.stack(prod_f),
        one_minus_f=jax.nn.sigmoid(-zf).mean(axis=(1, 2)),
        i=jax.nn.sigmoid(zi).mean(axis=(1, 2)),
        o=jax.nn.sigmoid(zo).mean(axis=(1, 2)),
    )


def flow_sweep(profile: str, seed: int = 0) -> list[dict]:
    """One row per (regime, T): the measured gates and the ratios ρ (:func:`_flow_row`)."""
    s = FLOW_SIZES[profile]
    horizons = tuple(s["horizons"])
    rows = []
    with jax.enable_x64(True), jax.default_matmul_precision("highest"):
        base = LSTM(s["features"], s["hidden"], rngs=nnx.Rngs(seed)).params
        base = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), base)
        shape = (s["batch"], max(horizons), s["features"])
        x = jax.random.normal(jax.random.key(seed), shape, jnp.float64)
        for regime in REGIMES:
            flow = jax.tree.map(np.asarray, cell_gradient_flow(regime.params(base), x, horizons))
            rows += [_flow_row(regime, flow, k, steps) for k, steps in enumerate(horizons)]
    return rows


def _flow_row(regime: Regime, flow: dict, k: int, steps: int) -> dict:
    """Horizon ``k`` (T = ``steps``) of a regime's :func:`cell_gradient_flow`: the gates'
    means and worst steps, ρ, min Π f, and how far ρ is from each hypothesis."""
    rho, prod_f = flow["rho"][k, :steps], flow["prod_f"][k, :steps]
    one_minus_f, i, o = (flow[g][:steps] for g in ("one_minus_f", "i", "o"))
    gates = {"1_minus_f": one_minus_f, "i": i, "o": o}
    row = dict(regime=regime.name, b_i=regime.b_i, b_f=regime.b_f, b_o=regime.b_o)
    row |= dict(w_h_scale=regime.w_h_scale, seq_len=steps)
    row |= {f"mean_{g}": float(a.mean()) for g, a in gates.items()}
    row |= {f"worst_{g}": float(a.max()) for g, a in gates.items()}
    return row | dict(
        horizon=steps * float(one_minus_f.mean()),
        rho_first=float(rho[0]),
        rho_min=float(rho.min()),
        rho_max=float(rho.max()),
        prod_f_min=float(prod_f.min()),
        err_unchanged=_log_error(rho, np.ones_like(rho)),
        err_prod_f=_log_error(rho, prod_f),
    )


def _log_error(measured: np.ndarray, predicted: np.ndarray) -> float:
    """max over t of |ln(measured/predicted)|; inf where either is not a positive number."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        err = np.abs(np.log(measured / predicted))
    return float(err.max()) if np.isfinite(err).all() else math.inf


def gradient_flow(profile: str, run_dir: pathlib.Path) -> list[Verdict]:
    """C4: measure the sweep, write it to ``lstm_gradient_flow_sweep.csv``, judge it."""
    rows = flow_sweep(profile)
    write_table(run_dir, FLOW_TABLE, rows)
    return [judge_gradient_flow(rows)]


def in_seed_regime(row: Mapping) -> bool:
    """f ≈ 1 and i, o ≈ 0 at every step, read from the measured gates."""
    gates_closed = max(row["worst_i"], row["worst_o"]) <= GATE_NEAR_0
    return row["worst_1_minus_f"] <= F_NEAR_1 and gates_closed


def exploded(row: Mapping) -> bool:
    return row["rho_max"] > EXPLODED  # inf (float64 overflow) counts


def fits_unchanged(row: Mapping) -> bool:
    """The seed's hypothesis: c̄(t) = c̄(t+1), so ρ(t) = 1 at every t."""
    return row["err_unchanged"] <= math.log(FIT_RATIO)


def fits_prod_f(row: Mapping) -> bool:
    """The corrected one: c̄(t) = f(t+1) ⊙ c̄(t+1), so ρ(t) = ‖Π_{s>t} f(s) ⊙ c̄(T)‖/‖c̄(T)‖."""
    return row["err_prod_f"] <= math.log(FIT_RATIO)


def discriminates(row: Mapping) -> bool:
    """Π f strays so far from 1 that no ρ(t) can fit both hypotheses at once."""
    return row["prod_f_min"] < DISCRIMINATES


FLOW = Rule(
    "C4",
    "‖∂L/∂c(t)‖ for t = 1..T by autodiff (gradient w.r.t. a zero probe added to c(t)), "
    "L = Σ h(T), float64, against the product of the measured forget gates; flow_sweep of "
    "b_f × T with i, o ≈ 0 by bias, large recurrent weights, and f ≈ 1 with i, o ≈ 0.5",
    "ρ(t) = ‖∂L/∂c(t)‖/‖∂L/∂c(T)‖ over t = 1..T against 1 and against Π f (max |ln| error)",
    f"seed's regime: at every step mean 1−f ≤ {F_NEAR_1}, mean i, o ≤ {GATE_NEAR_0}; a "
    f"hypothesis fits a run iff every ρ(t) = ‖c̄(t)‖/‖c̄(T)‖ lies within ×{FIT_RATIO:g} of it: "
    "'unchanged' ρ(t) = 1 (the seed), 'Π f' ρ(t) = ‖Π_{s>t} f(s) ⊙ c̄(T)‖/‖c̄(T)‖ from the "
    f"measured gates (corrected); a run discriminates iff min Π f < 1/{FIT_RATIO:g}². "
    f"INCONCLUSIVE with < {MIN_RUNS} discriminating runs in the regime, or if no run of the "
    f"sweep exploded (ρ > {EXPLODED:g}); FAIL if a run in the regime fits neither, or neither "
    "fits them all; PASS if 'unchanged' fits every run; CORRECTED if 'Π f' does",
)
# C4's sentences: fields from the facts, the run they name (its ρ, Π f, ...) and the thresholds
FLOW_COUNTS = (
    "{runs} runs, {seed} in the seed's regime ({telling} where Π f falls below 1/{ratio:g}²); "
    "'unchanged' fits {fit_unchanged[0]}/{seed} of them ({fit_unchanged[1]}/{telling} "
    "discriminating), 'Π f' fits {fit_prod_f[0]}/{seed} ({fit_prod_f[1]}/{telling})"
)
FLOW_EXTREMES = (
    "; largest miss of Π f ×{miss:.3g} at {worst}; smallest Π f {prod_f_min:.3g} against min ρ "
    "{rho_min:.3g} at {run}"
)
FLOW_OUTSIDE = "; outside it {exploded}/{others} runs exploded (max ρ {rho_max:.3g} at {run})"
FLOW_UNDECIDED = {
    "too few discriminating runs": "; need ≥ {min_runs} runs in the seed's regime where Π f "
    "strays from 1 enough to tell the two hypotheses apart",
    "no explosion seen": "; no run of the flow_sweep exploded, so the measurement was never "
    "shown able to see an explosion",
}
FLOW_SAYS = {
    "fits neither": "with f ≈ 1 and i, o ≈ 0 the cell gradient followed neither 1 nor Π f in "
    "{n} run(s) (min ρ {rho_min:.3g}, max ρ {rho_max:.3g}, Π f down to {prod_f_min:.3g} at "
    "{run})",
    "unchanged": "with f ≈ 1 and i, o ≈ 0 the cell gradient was carried unchanged (ρ within "
    "×{ratio:g} of 1) in all {n} runs, even where Π f fell to {prod_f_min:.3g} ({run}); it did "
    "not explode there, while it did outside",
    "prod f": "with f ≈ 1 and i, o ≈ 0 the cell gradient is not carried unchanged but multiplied "
    "by the forget gates: c̄(t) ≈ Π_{{s>t}} f(s) ⊙ c̄(T) (ρ within ×{ratio:g} of Π f in all {n} "
    "runs, not of 1 in {not_1}; down to ×{rho_min:.3g} at {run}), so it is kept only while "
    "T(1−f) ≪ 1; it did not explode there (max ρ {top:.3g}; recurrent weights up to ×{w_h:g} "
    "while the gates stayed closed)",
    "mixed": "neither hypothesis fits every run in the seed's regime: some follow 1, others Π f",
}
BLOWN = ", but it exploded in {n} runs outside it{gates}, up to ×{rho_max:.3g} at {run}"
GATES_OPEN = ", all with i or o > {gate} at some step"
RUN = "{regime} T={seq_len} (T(1−f)={horizon:.3g}, i, o ≤ {open:.2g})"
THRESHOLDS = dict(ratio=FIT_RATIO, min_runs=MIN_RUNS, gate=GATE_NEAR_0)


def _say(template: str, row: Mapping | None = None, **fields) -> str:
    """``template`` filled from ``fields``, :data:`THRESHOLDS` and the numbers of the run
    ``row`` names (``{run}``: the run in words)."""
    if row is not None:
        fields |= dict(row, run=RUN.format(open=max(row["worst_i"], row["worst_o"]), **row))
    return template.format(**THRESHOLDS, **fields)


def gradient_flow_decision(rows: Sequence[Mapping]) -> tuple[str, dict]:
    """(verdict, facts) of C4 from the flow_sweep's rows: the runs in the seed's regime, those
    that discriminate (``telling``), fit ``neither`` or lie outside (``others``), how many each
    hypothesis fits, whether any ``exploded``, and the branch of the rule that decided."""
    seed = [r for r in rows if in_seed_regime(r)]
    telling = [r for r in seed if discriminates(r)]
    facts = dict(
        runs=len(rows),
        seed=seed,
        telling=telling,
        neither=[r for r in seed if not fits_unchanged(r) and not fits_prod_f(r)],
        others=[r for r in rows if not in_seed_regime(r)],
        fit_unchanged=(sum(map(fits_unchanged, seed)), sum(map(fits_unchanged, telling))),
        fit_prod_f=(sum(map(fits_prod_f, seed)), sum(map(fits_prod_f, telling))),
        exploded=any(exploded(r) for r in rows),
    )
    if len(telling) < MIN_RUNS:
        return "INCONCLUSIVE", {**facts, "reason": "too few discriminating runs"}
    if not facts["exploded"]:
        return "INCONCLUSIVE", {**facts, "reason": "no explosion seen"}
    if facts["neither"]:
        return "FAIL", {**facts, "reason": "fits neither"}
    if all(map(fits_unchanged, seed)):
        return "PASS", {**facts, "reason": "unchanged"}
    if all(map(fits_prod_f, seed)):
        return "CORRECTED", {**facts, "reason": "prod f"}
    return "FAIL", {**facts, "reason": "mixed"}


def _flow_measured(f: dict) -> str:
    """C4's ``measured``: how many runs each hypothesis fits, and the extreme runs."""
    seed, telling, others = f["seed"], f["telling"], f["others"]
    counts = dict(runs=f["runs"], seed=len(seed), telling=len(telling))
    measured = _say(
        FLOW_COUNTS, **counts, fit_unchanged=f["fit_unchanged"], fit_prod_f=f["fit_prod_f"]
    )
    if seed:
        worst = max(seed, key=lambda r: r["err_prod_f"])
        miss, worst = math.exp(min(worst["err_prod_f"], 700)), _say("{run}", worst)
        measured += _say(
            FLOW_EXTREMES, min(seed, key=lambda r: r["prod_f_min"]), miss=miss, worst=worst
        )
    if others:
        top = max(others, key=lambda r: r["rho_max"])
        measured += _say(FLOW_OUTSIDE, top, exploded=sum(map(exploded, others)), others=len(others))
    return measured + _say(FLOW_UNDECIDED.get(f["reason"], ""))


def _flow_statement(f: dict, measured: str) -> str:
    """C4's ``statement``, from :func:`gradient_flow_decision`'s facts."""
    reason, seed = f["reason"], f["seed"]
    deepest = min(f["telling"], key=lambda r: r["prod_f_min"], default=None)
    if reason == "fits neither":
        r = max(f["neither"], key=lambda r: min(r["err_unchanged"], r["err_prod_f"]))
        return _say(FLOW_SAYS[reason], r, n=len(f["neither"]))
    if reason == "unchanged":
        return _say(FLOW_SAYS[reason], deepest, n=len(seed))
    if reason == "prod f":
        statement = _say(
            FLOW_SAYS[reason],
            deepest,
            n=len(seed),
            not_1=sum(not fits_unchanged(s) for s in seed),
            top=max(s["rho_max"] for s in seed),
            w_h=max(s["w_h_scale"] for s in seed),
        )
        blown = [r for r in f["others"] if exploded(r)]
        if blown:
            open_ = all(max(b["worst_i"], b["worst_o"]) > GATE_NEAR_0 for b in blown)
            gates = _say(GATES_OPEN) if open_ else ""
            statement += _say(
                BLOWN, max(blown, key=lambda r: r["rho_max"]), n=len(blown), gates=gates
            )
        return statement
    if reason == "mixed":
        return FLOW_SAYS[reason]
    return f"the sweep cannot decide: {measured.split(';')[0]}"


def judge_gradient_flow(rows: Sequence[Mapping]) -> Verdict:
    """C4's verdict from the flow_sweep's rows (columns as written by :func:`flow_sweep`)."""
    verdict, facts = gradient_flow_decision(rows)
    measured = _flow_measured(facts)
    return FLOW.verdict(verdict, measured, _flow_statement(facts, measured), facts)


register(Experiment("lstm", ("C2", "C3"), backward_claims, cost_s=dict(smoke=3, cpu=4, full=8)))
register(
    Experiment(
        "lstm",
        ("C4",),
        gradient_flow,
        cost_s=dict(smoke=4, cpu=5, full=30),
        curves=(
            Curve(
                FLOW_TABLE,
                "seq_len",
                "rho_min",
                "regime",
                "sequence length T",
                "min over t of ‖∂L/∂c(t)‖ / ‖∂L/∂c(T)‖",
                "LSTM cell gradient kept over T steps? (1 = unchanged)",
                logx=True,
            ),
        ),
    )
)
for claim, section, words in (
    ("C2", "§2-1", "the backward equations of the LSTM through time (h̄, c̄, ḡ, ō, f̄, ī)"),
    ("C3", "§2-2", "the gradient of the input-gate weights is a sum over time"),
):
    state(
        Claim(claim, section, words, "relative error against autodiff", __name__, (BACKWARD.text,))
    )
state(
    Claim(
        FLOW.claim,
        "§2-3",
        "with f ≈ 1 and i, o ≈ 0 the cell gradient is carried unchanged: it neither vanishes "
        "nor explodes",
        "‖∂L/∂c(t)‖/‖∂L/∂c(T)‖ by autodiff",
        __name__,
        (FLOW.text,),
    )
)
