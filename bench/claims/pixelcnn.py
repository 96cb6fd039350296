"""C7, C8, C9 (seed §4-1): PixelCNN's connections, its training depth and its sampling depth.

C7 (:func:`connection_sweep`) and C9's span (:func:`sampler_span`) are experiments; C8 (both
halves) and C9's wall time are judged from the suite's timed cases. What each sweeps, and why
its rule is so: docs/claims.md, C7-C9.
"""

from __future__ import annotations

import functools
import itertools
from fractions import Fraction

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from bench.claims import (
    Claim,
    Experiment,
    Rule,
    Verdict,
    ok_rows,
    register,
    run_rounds,
    state,
    uncounted,
    wall_time,
    wall_time_claim,
)
from bench.fits import sweeps
from bench.judge import Count, WallTimeSpec, column
from bench.store import write_table
from bench.structure import analyse
from bench.suites.pixelcnn import SAMPLERS, numpy_initialized
from models.pixelcnn import connections, connections_order, n_taps

# --- C7: connections ------------------------------------------------------------------------

SWEEP = {
    "smoke": dict(depth=(1, 2, 4, 8), height=(8, 16, 32, 64), kernel=(3, 5, 7), channels=(1, 4)),
    "cpu": dict(
        depth=(1, 2, 4, 8, 16, 32),
        height=(8, 16, 32, 64, 128, 256),
        kernel=(3, 5, 7, 9),
        channels=(1, 4, 16, 64),
    ),
}
SWEEP["full"] = SWEEP["cpu"]
AXES = {"d": "depth", "H=W": "height", "K": "kernel"}  # the axes whose drift C7 judges
DRIFT_TOL = 0.1  # exact/order may move by less than this between the two largest values
C7 = Rule(
    "C7",
    "exact connection count over the masks (edges unit→unit through unmasked taps landing inside "
    "the image; brute force and Jacobian non-zeros agree in tests) vs the seed's O(d·H·W·K²) over "
    "a sweep",
    "exact connection count",
    f"PASS iff exact / (H·W·K²·(C+(d−1)C²)) changes by less than {DRIFT_TOL:.0%} "
    "between the two largest values of each axis; else FAIL",
)


def _drift(axis: str, values: tuple, base: dict) -> float:
    """Relative change of exact/order between the two largest values of one axis (the other
    axes at ``base``)."""

    def ratio(a: dict) -> float:
        args = (a["height"], a["height"], a["kernel"], a["depth"], a["channels"])
        return connections(*args) / connections_order(*args)

    lo, hi = (ratio({**base, axis: v}) for v in values[-2:])
    return hi / lo - 1


def connection_sweep(profile: str, run_dir) -> list[Verdict]:
    s = SWEEP[profile]
    rows = []
    for depth, side, kernel, channels in itertools.product(*s.values()):  # SWEEP's order
        args = (side, side, kernel, depth, channels)
        exact, order = connections(*args), connections_order(*args)
        size = dict(depth=depth, height=side, width=side, kernel=kernel, channels=channels)
        rows.append(
            size | dict(connections=exact, order_hwk2c=order, ratio=round(exact / order, 6))
        )
    write_table(run_dir, "pixelcnn_connections.csv", rows)
    exact, order = (np.array([r[k] for r in rows], float) for k in ("connections", "order_hwk2c"))
    largest = {axis: values[-1] for axis, values in s.items()}
    drift = {name: _drift(axis, s[axis], largest) for name, axis in AXES.items()}
    ranges = ", ".join(
        f"{name} {s[a][0]}..{s[a][-1]}" for name, a in {**AXES, "C": "channels"}.items()
    )
    return [c7_verdict(exact, order, drift, f"{len(rows)} configs ({ranges})")]


def c7_verdict(exact: np.ndarray, order: np.ndarray, drift: dict, swept: str) -> Verdict:
    """The C7 rule on exact counts and the seed's order over a sweep: only whether exact/order
    settles decides (that it lies in (0, 1] is reported, not judged: docs/claims.md, C7)."""
    ratios = exact / order
    fitted = float(exact @ order / (order @ order))  # least squares: exact ≈ c · order
    settled = all(abs(x) < DRIFT_TOL for x in drift.values())
    moved = [k for k, v in drift.items() if abs(v) >= DRIFT_TOL]
    measured = (
        f"{swept}: exact / (H·W·K²·(C+(d−1)C²)) in [{ratios.min():.3f}, {ratios.max():.3f}], "
        f"least-squares constant {fitted:.3f}; change of that ratio between the two largest "
        "values of " + ", ".join(f"{k} {v:+.1%}" for k, v in drift.items())
    )
    if settled:
        statement = f"connections ≈ {fitted:.2f}·H·W·K²·(C+(d−1)C²) = Θ(d·H·W·K²) at fixed channels"
    else:
        statement = (
            f"exact / order still moves along {', '.join(moved)}: the count does not grow as "
            "d·H·W·K²"
        )
    facts = dict(ratio_range=(float(ratios.min()), float(ratios.max())), constant=fitted)
    facts |= dict(drift=drift, moved=moved)
    return C7.verdict("PASS" if settled else "FAIL", measured, statement, facts)


# --- C9: sequential steps of sampling ------------------------------------------------------

SPAN_SWEEP = {
    "smoke": dict(sides=(3, 4, 5), depths=(1, 2, 3), kernels=(3, 5, 7), channels=2, batch=1),
    "cpu": dict(sides=(4, 8, 12), depths=(1, 2, 4, 8), kernels=(3, 5, 7), channels=4, batch=2),
}
SPAN_SWEEP["full"] = SPAN_SWEEP["cpu"]
AGREEMENT = {  # (kernel, depth, side, batch, channels) configs; weight scales; noise seeds
    "smoke": dict(configs=((3, 2, 5, 2, 4),), scales=(1.0, 3.0), seeds=(0,)),
    "cpu": dict(configs=((3, 3, 8, 4, 8), (5, 2, 7, 4, 8)), scales=(1.0, 3.0), seeds=(0, 1)),
}
AGREEMENT["full"] = AGREEMENT["cpu"]
K_EXPONENT, K_EXPONENT_TOL = 2.0, 0.3  # the seed's O(H·W·d·K²): α ∝ K^e, e within 2 ± 0.3
MIN_K_VALUES, MIN_K_RANGE = 3, 2.0  # no exponent of K from fewer values, or over less than 2×
C9 = Rule(
    "C9",
    "span (longest chain of dependent ops, loops unrolled) of the naive and cached raster samplers "
    "traced over H=W, d, K; least-squares fit; exact agreement of the three samplers on shared "
    "per-pixel noise",
    "span_ops",
    "FAIL iff the samplers disagree, span ≠ α·H·W·d + β·H·W (max residual ≥ 1%) or "
    f"α grows faster than K^{K_EXPONENT + K_EXPONENT_TOL:g}; INCONCLUSIVE with < "
    f"{MIN_K_VALUES} values of K or K over < {MIN_K_RANGE:g}×; PASS iff α ∝ K^e with e "
    f"within {K_EXPONENT_TOL} of {K_EXPONENT:g} for both samplers; else CORRECTED",
)


def _params(kernel: int, depth: int, channels: int, seed: int, scale: float = 1.0) -> dict:
    params = numpy_initialized(depth, channels, seed, kernel=kernel).params
    return jax.tree.map(lambda v: scale * v, params)


def sampler_agreement(profile: str, run_dir) -> tuple[int, int, list[int]]:
    """Run the three samplers on shared noise; returns (identical, total, fixed-point passes)."""
    a = AGREEMENT[profile]
    naive, cached, fixed = (jax.jit(SAMPLERS[v]) for v in SAMPLERS)
    rows = []
    for config, seed, scale in itertools.product(a["configs"], a["seeds"], a["scales"]):
        kernel, depth, side, batch, channels = config
        params = _params(kernel, depth, channels, seed, scale)
        u = jnp.asarray(np.random.default_rng(100 + seed).random((batch, side, side), np.float32))
        x_naive, x_cached, (x_fixed, passes) = (f(params, u) for f in (naive, cached, fixed))
        rows.append(
            dict(kernel=kernel, depth=depth, height=side, width=side, batch=batch)
            | dict(channels=channels, seed=seed, weight_scale=scale)
            | dict(
                cached_equals_naive=bool((x_naive == x_cached).all()),
                fixed_point_equals_naive=bool((x_naive == x_fixed).all()),
                fixed_point_passes=int(passes),
                passes_bound=side * side + 1,
                mean_pixel=f"{float(x_naive.mean()):.4f}",
            )
        )
    write_table(run_dir, "pixelcnn_sampler_agreement.csv", rows)
    identical = sum(r["cached_equals_naive"] and r["fixed_point_equals_naive"] for r in rows)
    return identical, len(rows), [r["fixed_point_passes"] for r in rows]


def sampler_span(profile: str, run_dir) -> list[Verdict]:
    s = SPAN_SWEEP[profile]
    rows = []
    for kernel, depth in itertools.product(s["kernels"], s["depths"]):
        params = _params(kernel, depth, s["channels"], seed=0)
        for side, variant in itertools.product(s["sides"], ("naive", "cached")):
            u = jnp.zeros((s["batch"], side, side), jnp.float32)
            st = analyse(functools.partial(SAMPLERS[variant], params), u)
            size = dict(variant=variant, kernel=kernel, depth=depth, side=side)
            rows.append(
                size
                | dict(span_ops=st.span_ops, loop_steps=st.loop_steps, work_flops=st.work_flops)
            )
    table = [{**row, "height": row["side"], "width": row["side"]} for row in rows]
    write_table(run_dir, "pixelcnn_sampler_span.csv", table)
    return [c9_verdict(rows, *sampler_agreement(profile, run_dir))]


def _span_fit(rs: list[dict], kernels: list[int]) -> tuple[np.ndarray, float, float]:
    """One sampler's span = α·H·W·d + β·H·W + γ fitted per K: (α, β, γ) at the smallest K, the
    largest relative residual over every K, and the exponent of K in α (nan if some α ≤ 0)."""
    per_kernel = []
    for kernel in kernels:
        rk = [r for r in rs if r["kernel"] == kernel]
        side, d, span = (np.array([r[k] for r in rk], float) for k in ("side", "depth", "span_ops"))
        hw = side**2
        design = np.stack([hw * d, hw, np.ones_like(hw)], axis=1)
        coef, *_ = np.linalg.lstsq(design, span, rcond=None)
        per_kernel.append((coef, float(np.abs(design @ coef - span).max() / span.max())))
    alphas = np.array([coef[0] for coef, _ in per_kernel])
    exponent = float("nan")
    if (alphas > 0).all() and len(kernels) > 1:
        exponent = round(float(np.polyfit(np.log(kernels), np.log(alphas), 1)[0]), 6) + 0.0
    return per_kernel[0][0], max(res for _, res in per_kernel), exponent


def c9_decision(
    rows: list[dict], identical: int, total: int, passes: list[int]
) -> tuple[str, dict]:
    """(verdict, facts) of the C9 rule. Facts: the swept ``kernels``, ``depths`` and ``sides``;
    per sampler the fit at the smallest K (``fits``: (α, β, γ), largest residual) and the
    exponent of K in α (``k_exponent``); whether the span is the same for every K
    (``k_free``); the cached sampler's work ratio over K (``k_work``); the samplers' agreement
    (``identical`` of ``total``) and the fixed-point sampler's ``passes``."""
    kernels, depths, sides = (sorted({r[k] for r in rows}) for k in ("kernel", "depth", "side"))
    fits, k_exponent, k_free, k_work = {}, {}, True, []
    for variant in ("naive", "cached"):
        rs = [r for r in rows if r["variant"] == variant]
        coef, residual, k_exponent[variant] = _span_fit(rs, kernels)
        fits[variant] = (coef, residual)
        for depth, side in itertools.product(depths, sides):
            same = [r for r in rs if r["depth"] == depth and r["side"] == side]
            k_free &= len({r["span_ops"] for r in same}) == 1
            if variant == "cached":
                works = sorted((r["kernel"], r["work_flops"]) for r in same)
                k_work.append(works[-1][1] / works[0][1])
    facts = dict(kernels=kernels, depths=depths, sides=sides, fits=fits, k_exponent=k_exponent)
    facts |= dict(k_free=k_free, k_work=k_work, identical=identical, total=total, passes=passes)
    ((a_n, _, _), res_n), ((a_c, _, _), res_c) = fits["naive"], fits["cached"]
    facts["linear"] = res_n < 0.01 and res_c < 0.01 and a_n > 0 and a_c > 0
    facts["k_decidable"] = len(kernels) >= MIN_K_VALUES and kernels[-1] / kernels[0] >= MIN_K_RANGE
    exponents = k_exponent.values()
    if identical != total or not facts["linear"]:
        return "FAIL", facts
    if any(e > K_EXPONENT + K_EXPONENT_TOL for e in exponents):
        return "FAIL", facts
    if not facts["k_decidable"] or any(e != e for e in exponents):
        return "INCONCLUSIVE", facts
    if all(abs(e - K_EXPONENT) <= K_EXPONENT_TOL for e in exponents):
        return "PASS", facts
    return "CORRECTED", facts


def c9_verdict(rows: list[dict], identical: int, total: int, passes: list[int]) -> Verdict:
    """The C9 rule (:func:`c9_decision`) on the samplers' spans (rows: variant, kernel, depth,
    side, span_ops, work_flops) and their agreement on shared noise, put in words."""
    verdict, f = c9_decision(rows, identical, total, passes)
    kernels, k_work = f["kernels"], f["k_work"]
    k_lo, k_hi = kernels[0], kernels[-1]
    ((a_n, b_n, _), res_n), ((a_c, b_c, _), res_c) = f["fits"]["naive"], f["fits"]["cached"]
    exponents = ", ".join(f"{v} K^{e:.2f}" for v, e in f["k_exponent"].items())
    work = f"{min(k_work):.1f}-{max(k_work):.1f}×"
    measured = (
        f"span (bench.structure) over H=W {f['sides']}, d {f['depths']}, K {kernels}, fitted "
        f"per K (at K={kernels[0]}): "
        f"naive {a_n:.2f}·H·W·d + {b_n:.2f}·H·W (max residual {res_n:.1%}), cached "
        f"{a_c:.2f}·H·W·d + {b_c:.2f}·H·W (max residual {res_c:.1%}); α grows as {exponents} "
        f"over K = {kernels}; span "
        + ("identical" if f["k_free"] else "NOT identical")
        + f" for every K at fixed H, W, d, while the cached sampler's work grows {work} from "
        f"K={k_lo} to K={k_hi} (mask-B taps {n_taps(k_hi, 'B') / n_taps(k_lo, 'B'):.1f}×); "
        f"naive, cached and fixed-point samples identical in {identical}/{total} runs "
        f"(fixed-point passes {min(passes)}-{max(passes)}, bound H·W+1)"
    )
    if identical != total:
        statement = f"the samplers disagree in {total - identical} of {total} runs"
    elif not f["linear"]:
        statement = f"the span is not α·H·W·d + β·H·W (max residuals {res_n:.1%}, {res_c:.1%})"
    elif verdict == "FAIL":
        statement = f"the span grows faster in K than the seed's K² ({exponents})"
    elif verdict == "INCONCLUSIVE" and not f["k_decidable"]:
        statement = (
            f"K swept over {len(kernels)} values ({k_lo}..{k_hi}): an exponent of K needs "
            f"≥ {MIN_K_VALUES} values over ≥ {MIN_K_RANGE:g}×"
        )
    elif verdict == "INCONCLUSIVE":
        statement = f"a span per pixel and layer is not positive: no exponent of K ({exponents})"
    elif verdict == "PASS":
        statement = (
            f"the samplers' spans grow as {exponents} ({a_n:.3g}·H·W·d at K = {k_lo}), as the "
            "seed's O(H·W·d·K²) says"
        )
    else:
        statement = (
            f"sampling takes {a_n:.3g}·H·W·d + {b_n:.3g}·H·W sequential operations (naive; "
            f"cached {a_c:.3g}·H·W·d + {b_c:.3g}·H·W) at K = {k_lo}, growing as {exponents} "
            + (f"(the same span for K = {k_lo}..{k_hi}) " if f["k_free"] else "")
            + f"while the cached sampler's work grows {work} over that K: the K² multiply-adds "
            "of a step are not K² sequential operations; the seed's O(H·W·d·K²) counts work, "
            "not sequential steps"
        )
    return C9.verdict(verdict, measured, statement, f)


# --- C8: the training step's sequential depth, from the timed cases ------------------------

C8 = Rule(
    "C8",
    "jaxpr span of the training step along each sweep of the timed train cases: exactly "
    "linear in d, the same for every H·W",
    "span_ops",
    "PASS iff along every sweep over d the span is an exact line with a positive slope and "
    "along every sweep over H·W it is one value; FAIL otherwise; INCONCLUSIVE without both sweeps",
)


def exact_line(xs, ys) -> tuple[Fraction, Fraction] | None:
    """(slope, intercept) if the integer points lie exactly on one line, else None."""
    pts = sorted({(int(x), int(y)) for x, y in zip(xs, ys, strict=True)})
    if len({x for x, _ in pts}) != len(pts) or len(pts) < 2:
        return None
    (x0, y0), (x1, y1) = pts[0], pts[-1]
    slope = Fraction(y1 - y0, x1 - x0)
    if any(Fraction(y - y0) != slope * (x - x0) for x, y in pts):
        return None
    return slope, y0 - slope * x0


def c8_decision(rows: pd.DataFrame) -> tuple[str, dict]:
    """(verdict, facts) of C8 on the count. Facts: per sweep over d its depths, spans and exact
    line (slope, intercept; None if the spans lie on none), per sweep over H·W its sides and
    the distinct spans (``lines``, ``flats``: lists of dicts), and whether every line has a
    positive slope (``linear``) and every H·W sweep one span (``flat``)."""
    lines, flats = [], []
    for axis, fixed, sweep in sweeps(rows):
        where = " ".join(f"{f}={sweep[f].iloc[0]}" for f in fixed if f in ("batch", "hidden"))
        if axis == "depth":
            sweep = sweep.sort_values("depth")
            line = exact_line(sweep.depth, sweep.span_ops)
            spans = list(sweep.span_ops.astype(int))
            lines.append(
                dict(where=where, depths=list(sweep.depth.astype(int)), spans=spans, line=line)
            )
        elif axis == "hw":
            sweep = sweep.sort_values("height")
            spans = sorted(set(sweep.span_ops.astype(int)))
            flats.append(dict(where=where, sides=list(sweep.height.astype(int)), spans=spans))
    facts = dict(
        lines=lines,
        flats=flats,
        linear=all(s["line"] is not None and s["line"][0] > 0 for s in lines),
        flat=all(len(s["spans"]) == 1 for s in flats),
    )
    if not lines or not flats:
        return "INCONCLUSIVE", facts
    return ("PASS" if facts["linear"] and facts["flat"] else "FAIL"), facts


def c8_structure(rows: pd.DataFrame) -> Verdict:
    """C8 on the count (:func:`c8_decision`), put in words."""
    verdict, f = c8_decision(rows)
    measured = "; ".join(
        [
            f"over d={s['depths']} ({s['where']}): span {s['spans']}"
            + (
                f" = {s['line'][0]}·d + {s['line'][1]} exactly"
                if s["line"]
                else " (not on one line)"
            )
            for s in f["lines"]
        ]
        + [
            f"over H=W={s['sides']} ({s['where']}): span "
            + (
                f"{s['spans'][0]} at every size"
                if len(s["spans"]) == 1
                else f"takes values {s['spans']}"
            )
            for s in f["flats"]
        ]
    )
    if verdict == "INCONCLUSIVE":
        measured = f"{len(f['lines'])} sweep(s) over d and {len(f['flats'])} over H·W"
        statement = "the run has no sweep over d and over H·W to judge the span on"
    elif verdict == "PASS":
        slopes = " or ".join(sorted({str(s["line"][0]) for s in f["lines"]}))
        statement = (
            f"the training step takes {slopes} sequential operations per layer plus a constant, "
            "Θ(d), and the same number at every image size"
        )
    else:
        fails = (
            (f["linear"], "the span is not an exact line in d"),
            (f["flat"], "the span changes with H·W"),
        )
        statement = "; ".join(text for ok, text in fails if not ok)
    return C8.verdict(verdict, measured, statement, f)


def _hwd(rows: pd.DataFrame) -> np.ndarray:
    return (rows.height * rows.width * rows.depth).to_numpy(float)


C8_TIME = WallTimeSpec(
    "C8",
    "pixelcnn",
    "train",
    ("masked",),
    Count("layers d", "d, the seed's O(d)", lambda rows: rows.depth.to_numpy(float)),
    rivals=(Count("per pixel H·W·d", "H·W·d: every pixel a step of every layer", _hwd),),
    what="PixelCNN's train step",
    same="the span is no rival: it is 6·d + 26 exactly (the structural half), d up to a "
    "constant, whose 26 ops off the layers (loss, update) a fixed cost c ≥ 0 must absorb",
)
"""C8 on the clock: the layers d, not the span, are the count (docs/claims.md, C8)."""
C9_TIME = WallTimeSpec(
    "C9",
    "pixelcnn",
    "sample",
    tuple(SAMPLERS),
    column("span", "span_ops"),
    rivals=(
        Count(
            "seed H·W·d·K²",
            "H·W·d·K² for every sampler, the seed's count",
            lambda rows: _hwd(rows) * rows.kernel.to_numpy(float) ** 2,
        ),
        Count("d", "d: sampling as parallel as training", lambda rows: rows.depth.to_numpy(float)),
    ),
    what="the naive, cached and fixed-point samplers",
)


def c8_pixelcnn_training_span(df: pd.DataFrame, fits: pd.DataFrame, run_dir=None) -> list[Verdict]:
    rows = ok_rows(df, "pixelcnn", "train")
    if rows.empty:
        return []
    if missing := uncounted(rows, "C8", C8.check):
        return missing
    return [c8_structure(rows), *wall_time(C8_TIME, df, run_rounds(run_dir))]


register(Experiment("pixelcnn", ("C7",), connection_sweep, cost_s=dict(smoke=1, cpu=1, full=1)))
register(Experiment("pixelcnn", ("C9",), sampler_span, cost_s=dict(smoke=2, cpu=3, full=3)))
state(
    Claim(
        "C7",
        "§4-1a",
        "PixelCNN has O(d·H·W·K²) connections",
        "exact connection count",
        __name__,
        (C7.text,),
    )
)
wall_time_claim(
    C8_TIME,
    "§4-1b",
    "PixelCNN trains in O(d) sequential operations",
    __name__,
    rules=(C8.text,),
    measure="span_ops",
    axes=("depth", "hw"),
    judged=c8_pixelcnn_training_span,
    source="from the timed `train` cases",
)
wall_time_claim(
    C9_TIME,
    "§4-1b",
    "PixelCNN samples in O(H·W·d·K²) sequential operations",
    __name__,
    rules=(C9.text,),
    measure="span_ops",
)
