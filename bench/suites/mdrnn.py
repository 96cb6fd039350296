"""MDRNN suite (seed §4-2): three schedules of one 2-D LSTM stack, train / forward / sample.

Cases (``models.mdrnn.MDRNNPixel``: a d-layer 2-D LSTM with hidden width k over binary
images, Bernoulli logits from the top layer at (i-1, j) and (i, j-1)):

* ``forward`` and ``train`` (one optax Adam step on the per-pixel NLL), variants ``raster``,
  ``wavefront`` and ``pipelined``: the same function, evaluated in H·W·d, (H+W-1)·d and
  H+W+d-2 sequential scan steps (``seq_steps_pred``; the train step runs the same chain
  forward and back).
* ``sample``, variant ``diagonal``: one anti-diagonal of pixels per scan step, d layer updates
  each, on pre-drawn uniform noise: ``seq_steps_pred = (H+W-1)·d``.

CPU profile: forward at batch 1 over H = W = 16, 32 (all three schedules) and 64 (wavefront),
and at batch 16, 16×16 (raster vs wavefront: where ``default_schedule`` picks raster), k = 32,
d = 2; train at H = W = 8 and 16 with d = 8 (the PixelCNN suite's (16, 8) and (8, 8) training
sizes, for claim C12), batch 1; the sampler at 16×16, d = 8. A wavefront train step compiles
in several seconds on 2 cores (one scan per lane window, forward and backward), which is what
bounds this profile (about 30 s in all on an idle 2-core machine).

Measured while choosing ``models.mdrnn.default_schedule`` (2-core CPU, k = 32, d = 2, batch
1..64, H = W = 16..64, min of ≤ 15 interleaved repeats): raster / wavefront time ratio 1.2-2.2×
forward and 1.1-1.9× forward+backward wherever batch < 16 or H = W ≥ 32; 0.67-0.97× at batch
16-64 on 16×16, which the rule gives to raster. At batch 1, 64×64, forward+backward: 1.92×
(k = 32), 2.58× (k = 16), 1.72× (d = 8). The pipelined schedule was 0.71-0.87× the
wavefront's speed at batch 1, d = 8 on CPU (a step costs its arithmetic there, so fewer and
wider steps do not pay); it is the rule's choice on accelerators, unmeasured here.

Experiments:

* C10 (``connection_sweep``): connections counted cell by cell (every existing input unit of
  every cell wired to each of its gate units) over a sweep of C, k, d, H, W and both cells,
  against the closed form ``models.mdrnn.connections`` and the seed's O(d + W·k²); growth
  exponents along each axis; the raster program's multiply-adds (read from its jaxpr) against
  ``models.mdrnn.macs``.
* C11 (``sequential_steps_sweep``): sequential scan steps read from each schedule's traced
  forward program (and the sampler's) over H, W and d, against H·W·d, (H+W-1)·d and H+W+d-2;
  and whether (H+W-1)·d stays within a constant of √(HW)·d (it does not off the diagonal).
"""

from __future__ import annotations

import csv
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from bench.steps import finite_loss, forward_fn, n_params, train_step_fn
from bench.workloads import Case, Suite, Workload, register
from models.mdrnn import (
    CELLS,
    SCHEDULES,
    MDRNNPixel,
    connections,
    diagonal_windows,
    macs,
    nll_loss,
    sequential_steps,
)

SUITE = "mdrnn"

# (batch, side, depth, schedule) runs per mode, (batch, side, depth) samples; k per profile.
SIZES = {
    "smoke": dict(
        hidden=4,
        forward=[(2, 6, 2, s) for s in SCHEDULES],
        train=[(2, 6, 2, "wavefront")],
        sample=[(2, 6, 2)],
    ),
    "cpu": dict(
        hidden=32,
        forward=[
            *((1, side, 2, s) for side in (16, 32) for s in SCHEDULES),
            (1, 64, 2, "wavefront"),
            *((16, 16, 2, s) for s in ("raster", "wavefront")),  # where the rule picks raster
        ],
        train=[(1, 16, 8, s) for s in SCHEDULES] + [(1, 8, 8, "wavefront")],
        sample=[(1, 16, 8)],
    ),
    "full": dict(
        hidden=64,
        forward=[
            (batch, side, depth, s)
            for batch, side, depth in [
                *((1, side, 8) for side in (16, 32, 64, 128)),
                *((batch, 64, 8) for batch in (16, 64)),
                *((1, 64, depth) for depth in (2, 4, 16)),
            ]
            for s in SCHEDULES
        ],
        train=[
            (batch, side, depth, s)
            for batch, side, depth in [
                *((64, side, 8) for side in (16, 28, 32, 64)),
                *((64, 28, depth) for depth in (2, 4, 16, 32)),
                (1, 64, 8),
            ]
            for s in SCHEDULES
        ],
        sample=[(16, 28, 8), (1, 28, 8), (64, 28, 8), (16, 64, 8)],
    ),
}


def _binary_images(batch: int, side: int, seed: int) -> jax.Array:
    return jax.random.bernoulli(jax.random.key(seed), 0.5, (batch, side, side)).astype(jnp.float32)


def _binary_check(out) -> str:
    ok = bool(jnp.all((out == 0) | (out == 1)))
    return "ok" if ok else "range"


def _extra(side: int, depth: int, hidden: int, schedule: str) -> dict:
    windows = len(diagonal_windows(side, side, depth if schedule == "pipelined" else 1))
    return dict(
        schedule=schedule,
        window_scans=1 if schedule == "raster" else windows,  # scans per layer (pipelined: all)
        macs_per_image=macs(1, hidden, depth, side, side) + 2 * hidden * side * side,
        connections=connections(1, hidden, depth, side, side),
    )


def _build(mode: str, batch: int, side: int, depth: int, hidden: int, schedule: str, seed: int):
    def build() -> Workload:
        model = MDRNNPixel(hidden, depth, schedule=schedule, rngs=nnx.Rngs(seed))
        extra = _extra(side, depth, hidden, schedule)
        if mode == "train":
            step, state = train_step_fn(model, nll_loss, optax.adam(1e-3))
            x = _binary_images(batch, side, seed + 1)
            return Workload(step, (*state, x), n_params(model), finite_loss, extra)
        if mode == "forward":
            fn, state = forward_fn(model)
            x = _binary_images(batch, side, seed + 1)
            return Workload(fn, (state, x), n_params(model), extra=extra)
        fn, state = forward_fn(model, lambda m, u: m.sample(u))
        u = jax.random.uniform(jax.random.key(seed + 2), (batch, side, side))
        extra = dict(schedule="anti-diagonal", scan_steps=2 * side - 1, layers_per_step=depth)
        return Workload(fn, (state, u), n_params(model), _binary_check, extra)

    return build


def cases(profile: str) -> list[Case]:
    s = SIZES[profile]
    hidden, out = s["hidden"], []
    for mode in ("forward", "train"):
        for batch, side, depth, schedule in s[mode]:
            sizes = dict(batch=batch, depth=depth, height=side, width=side, hidden=hidden)
            build = _build(mode, batch, side, depth, hidden, schedule, seed=0)
            pred = sequential_steps(schedule, side, side, depth)
            out.append(Case(SUITE, "mdrnn-lstm", schedule, mode, build, sizes, pred))
    for batch, side, depth in s["sample"]:
        sizes = dict(batch=batch, depth=depth, height=side, width=side, hidden=hidden)
        build = _build("sample", batch, side, depth, hidden, "wavefront", seed=0)
        pred = (2 * side - 1) * depth
        out.append(Case(SUITE, "mdrnn-lstm", "diagonal", "sample", build, sizes, pred))
    return out


# --- structure read from programs -----------------------------------------------------------


def _subjaxprs(eqn):
    for value in eqn.params.values():
        for item in value if isinstance(value, tuple | list) else (value,):
            sub = getattr(item, "jaxpr", item)
            if hasattr(sub, "eqns"):
                yield sub


def scan_steps(jaxpr) -> int:
    """Sequential scan steps of a program: a scan of length n costs n × its body's steps (at
    least 1); consecutive scans add up (each schedule's scans form one dependent chain)."""
    total = 0
    for eqn in jaxpr.eqns:
        inner = max((scan_steps(sub) for sub in _subjaxprs(eqn)), default=0)
        total += eqn.params["length"] * max(1, inner) if eqn.primitive.name == "scan" else inner
    return total


def dot_macs(jaxpr, times: int = 1) -> int:
    """Multiply-accumulates of every ``dot_general``, loop bodies × their trip counts."""
    total = 0
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "dot_general":
            (contract, _), _ = eqn.params["dimension_numbers"]
            lhs = eqn.invars[0].aval.shape
            out = math.prod(eqn.outvars[0].aval.shape)
            total += times * out * math.prod(lhs[a] for a in contract)
        inner = times * eqn.params["length"] if eqn.primitive.name == "scan" else times
        total += sum(dot_macs(sub, inner) for sub in _subjaxprs(eqn))
    return total


def _forward_jaxpr(schedule, params, x, cell="lstm"):
    return jax.make_jaxpr(lambda p, x: SCHEDULES[schedule](p, x, cell))(params, x).jaxpr


def _abstract_params(in_features, hidden, depth, cell):
    """Parameter shapes in the model's layout: tracing needs no values."""
    gates = CELLS[cell][1] * hidden
    shapes = dict(
        w_in=(in_features, gates),
        w_x=(depth - 1, hidden, gates),
        w_h=(depth, 2 * hidden, gates),
        b=(depth, gates),
    )
    return {name: jax.ShapeDtypeStruct(shape, jnp.float32) for name, shape in shapes.items()}


# --- C10: connections -----------------------------------------------------------------------

SWEEP = {
    "smoke": dict(channels=(1, 3), hiddens=(4, 16), depths=(1, 2, 8), sides=(4, 16), wide=32),
    "cpu": dict(
        channels=(1, 3), hiddens=(4, 16, 64), depths=(1, 2, 4, 8, 16), sides=(4, 16, 64), wide=128
    ),
}
SWEEP["full"] = SWEEP["cpu"]
MAC_CHECKS = ((1, 4, 3, 5, 7), (3, 8, 2, 6, 6), (2, 2, 4, 3, 9))  # (C, k, d, H, W), traced


def count_connections(C: int, k: int, d: int, H: int, W: int, cell: str) -> int:
    """Walk the cells: each input unit that exists (the cell's own input, its up and left
    neighbours inside the grid) feeds each of the cell's G gate units."""
    gates = CELLS[cell][1] * k
    has_up = (np.arange(H) > 0)[:, None] * np.ones((1, W), bool)
    has_left = np.ones((H, 1), bool) * (np.arange(W) > 0)[None, :]
    per_layer = [(C if layer == 0 else k) + k * has_up + k * has_left for layer in range(d)]
    return int(sum(int(fan_in.sum()) for fan_in in per_layer) * gates)


def seed_order(k: int, d: int, W: int) -> int:
    return d + W * k * k


def _slope(f, axis_values) -> float:
    """Log-log slope of f between the two largest values of one axis."""
    (a, fa), (b, fb) = [(v, f(v)) for v in axis_values[-2:]]
    return math.log(fb / fa) / math.log(b / a)


def connection_sweep(profile: str, run_dir) -> list[dict]:
    s = SWEEP[profile]
    rows = []
    for cell, C, k, d, H in itertools.product(
        CELLS, s["channels"], s["hiddens"], s["depths"], s["sides"]
    ):
        for W in (H, s["wide"]):
            exact = count_connections(C, k, d, H, W, cell)
            formula = connections(C, k, d, H, W, cell)
            rows.append((cell, C, k, d, H, W, exact, formula, seed_order(k, d, W)))
    with open(run_dir / "mdrnn_connections.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["cell", "channels", "hidden", "depth", "height", "width",
                         "connections_counted", "connections_formula", "seed_order_d_plus_wk2",
                         "counted_over_dhwk2"])  # fmt: skip
        for cell, C, k, d, H, W, exact, formula, seed in rows:
            writer.writerow([cell, C, k, d, H, W, exact, formula, seed,
                             f"{exact / (d * H * W * k * k):.4f}"])  # fmt: skip
    mismatches = sum(exact != formula for *_, exact, formula, _ in rows)

    # Growth exponents at the largest values of the other axes (LSTM cell, C = 1).
    big = dict(C=1, k=s["hiddens"][-1], d=s["depths"][-1], H=s["sides"][-1], W=s["sides"][-1])

    def count(**kw):
        a = big | kw
        return count_connections(a["C"], a["k"], a["d"], a["H"], a["W"], "lstm")

    def seed(**kw):
        a = big | kw
        return seed_order(a["k"], a["d"], a["W"])

    axes = {"d": s["depths"], "H": s["sides"], "W": s["sides"], "k": s["hiddens"]}
    measured_exp = {
        ax: _slope(lambda v, ax=ax: count(**{ax: v}), vals) for ax, vals in axes.items()
    }
    seed_exp = {ax: _slope(lambda v, ax=ax: seed(**{ax: v}), vals) for ax, vals in axes.items()}
    seed_wrong = any(abs(measured_exp[ax] - seed_exp[ax]) > 0.5 for ax in axes)

    # Multiply-adds actually issued by the raster program, read from its jaxpr.
    mac_rows = []
    for C, k, d, H, W in MAC_CHECKS:
        x = jax.ShapeDtypeStruct((1, H, W, C), jnp.float32)
        traced = dot_macs(_forward_jaxpr("raster", _abstract_params(C, k, d, "lstm"), x))
        mac_rows.append((traced, macs(C, k, d, H, W)))
    macs_ok = all(t == m for t, m in mac_rows)

    measured = (
        f"{len(rows)} configs (cells lstm/tanh, C {s['channels']}, k {s['hiddens']}, d "
        f"{s['depths']}, H {s['sides']}, W = H or {s['wide']}): cell-by-cell count = closed "
        f"form in {len(rows) - mismatches}/{len(rows)}; growth exponents of the count at the "
        "largest sizes "
        + ", ".join(f"{ax} {v:.2f}" for ax, v in measured_exp.items())
        + " vs the seed's O(d + W·k²) "
        + ", ".join(f"{ax} {v:.2f}" for ax, v in seed_exp.items())
        + f"; raster jaxpr multiply-adds = G·H·W·(C+(d−1)k+2dk) in "
        f"{sum(t == m for t, m in mac_rows)}/{len(mac_rows)} traced configs"
    )
    formula_ok = mismatches == 0 and macs_ok
    return [
        dict(
            claim="C10",
            check="connections (weight × cell pairs between units that exist) counted cell by "
            "cell over a sweep, vs the derived closed form and the seed's O(d + W·k²); "
            "multiply-adds of the raster program read from its jaxpr",
            measured=measured,
            verdict="FAIL" if not formula_ok else ("CORRECTED" if seed_wrong else "PASS"),
            statement=(
                "connections = G·[H·W·(C + (d−1)·k) + d·k·(2HW − H − W)] with G = 5k gate "
                "units per cell for the 2-D LSTM (k for a tanh cell) = Θ(d·H·W·k²): linear in "
                "d, H and W, quadratic in k — not O(d + W·k²). The distinct weights number "
                "G·(C + (3d − 1)·k + d) = Θ(d·k²), independent of H and W."
                if formula_ok
                else "the closed form does not match the cell-by-cell count"
            ),
        )
    ]


# --- C11: sequential steps ------------------------------------------------------------------

STEP_SWEEP = {
    "smoke": dict(grids=((4, 4), (6, 6), (2, 9)), depths=(1, 3)),
    "cpu": dict(grids=((4, 4), (8, 8), (16, 16), (2, 16), (1, 32)), depths=(1, 2, 4)),
}
STEP_SWEEP["full"] = STEP_SWEEP["cpu"]


def sequential_steps_sweep(profile: str, run_dir) -> list[dict]:
    s = STEP_SWEEP[profile]
    rows = []
    for (H, W), d in itertools.product(s["grids"], s["depths"]):
        params = _abstract_params(1, 2, d, "lstm")
        x = jax.ShapeDtypeStruct((1, H, W, 1), jnp.float32)
        for schedule in SCHEDULES:
            counted = scan_steps(_forward_jaxpr(schedule, params, x))
            rows.append((schedule, H, W, d, counted, sequential_steps(schedule, H, W, d)))
        # The sampler: one scan step per anti-diagonal (each runs the d layers in turn).
        graphdef, state = nnx.split(nnx.eval_shape(lambda d=d: MDRNNPixel(2, d, rngs=nnx.Rngs(0))))
        u = jax.ShapeDtypeStruct((1, H, W), jnp.float32)
        sample = jax.make_jaxpr(lambda st, u, g=graphdef: nnx.merge(g, st).sample(u))(state, u)
        rows.append(("sampler", H, W, d, scan_steps(sample.jaxpr), H + W - 1))
    with open(run_dir / "mdrnn_sequential_steps.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["schedule", "height", "width", "depth", "scan_steps_counted",
                         "scan_steps_formula"])  # fmt: skip
        writer.writerows(rows)
    agree = all(counted == formula for *_, counted, formula in rows)
    # O(√(HW)·d) means (H+W−1)·d / (√(HW)·d) stays bounded; it is 2 − 1/H on squares but
    # grows like √(W/H) on thin grids.
    ratios = {
        (H, W): counted / (math.sqrt(H * W) * d)
        for schedule, H, W, d, counted, _ in rows
        if schedule == "wavefront"
    }
    square = [r for (H, W), r in ratios.items() if H == W]
    thin = {hw: r for hw, r in ratios.items() if hw[0] != hw[1]}
    bounded = max(ratios.values()) <= 2.0
    by_schedule = {}
    for schedule, H, W, d, counted, _ in rows:
        by_schedule.setdefault(schedule, []).append(f"{H}×{W},d={d}:{counted}")
    measured = (
        f"scan steps read from the traced programs = formula in "
        f"{sum(c == p for *_, c, p in rows)}/{len(rows)} (schedule, H, W, d); e.g. "
        + "; ".join(f"{k} " + ", ".join(v[-2:]) for k, v in by_schedule.items())
        + f"; wavefront steps / (√(HW)·d): squares {min(square):.2f}..{max(square):.2f}, thin "
        + ", ".join(f"{H}×{W} {r:.2f}" for (H, W), r in thin.items())
    )
    if not agree:
        verdict = "FAIL"
    else:
        verdict = "PASS" if bounded else "CORRECTED"
    return [
        dict(
            claim="C11",
            check="sequential scan steps read from the jaxprs of each schedule's forward pass "
            "(scan lengths along the chain) over H, W, d, vs H·W·d, (H+W−1)·d, H+W+d−2; "
            "the sampler's scan vs H+W−1 anti-diagonals (d layer updates each)",
            measured=measured,
            verdict=verdict,
            statement=(
                "a diagonal wavefront needs exactly (H+W−1)·d sequential steps, "
                "Θ((H+W)·d): that is Θ(√(HW)·d) only when H and W are comparable (a 1×n "
                "grid needs n·d, not √n·d). Pipelining the layers (layer ℓ on diagonal t−ℓ) "
                "needs H+W+d−2 = Θ(H+W+d); sampling still needs (H+W−1)·d, since the next "
                "diagonal's pixels wait for the top layer."
                if verdict != "FAIL"
                else "the traced programs do not take the predicted number of scan steps"
            ),
        )
    ]


def experiments(profile: str, run_dir) -> list[dict]:
    return [*connection_sweep(profile, run_dir), *sequential_steps_sweep(profile, run_dir)]


register(
    Suite(
        SUITE,
        "2-D MDRNN (seed §4-2): raster vs diagonal wavefront vs pipelined wavefront; "
        "anti-diagonal sampler",
        cases,
        experiments=experiments,
        baselines={"forward": "raster", "train": "raster"},
    )
)
