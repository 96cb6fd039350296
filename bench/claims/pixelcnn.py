"""C7, C8, C9 (seed §4-1): PixelCNN's connections, its training depth and its sampling depth.

* C7 (``connection_sweep``): the exact connection count (``models.pixelcnn.connections``,
  counted over the masks) over a sweep of d, H = W, K and C, against the seed's order written
  with each layer's channels, H·W·K²·(C + (d−1)·C²); local exponents along each axis.
* C8 (derived from the timed ``train`` cases): the training step's span is Θ(d) and does not
  grow with H·W.
* C9 (``sampler_span``): span (longest chain of dependent operations, ``bench.structure``)
  of the naive and cached samplers over H = W, d and K, fitted to α·H·W·d + β·H·W + γ, and
  whether it depends on K; plus the three samplers' exact agreement on shared noise.
"""

from __future__ import annotations

import functools
from fractions import Fraction

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from bench.claims import Derived, Experiment, Verdict, register, write_table
from bench.structure import analyse
from bench.suites.pixelcnn import SAMPLERS, numpy_initialized
from models.pixelcnn import connections, connections_order, n_taps

# --- C7: connections ------------------------------------------------------------------------

SWEEP = {
    "smoke": dict(depths=(1, 2, 4, 8), sides=(8, 16, 32, 64), kernels=(3, 5, 7), channels=(1, 4)),
    "cpu": dict(
        depths=(1, 2, 4, 8, 16, 32),
        sides=(8, 16, 32, 64, 128, 256),
        kernels=(3, 5, 7, 9),
        channels=(1, 4, 16, 64),
    ),
}
SWEEP["full"] = SWEEP["cpu"]
DRIFT_TOL = 0.1  # exact/order may move by less than this between the two largest values


def _ratio(height, kernel, depth, channels) -> float:
    args = (height, height, kernel, depth, channels)
    return connections(*args) / connections_order(*args)


def _drift(axis: str, values: tuple, base: dict) -> float:
    """Relative change of exact/order between the two largest values of one axis."""
    lo, hi = (_ratio(**{**base, axis: v}) for v in values[-2:])
    return hi / lo - 1


def connection_sweep(profile: str, run_dir) -> list[Verdict]:
    s = SWEEP[profile]
    rows = []
    for depth in s["depths"]:
        for side in s["sides"]:
            for kernel in s["kernels"]:
                for channels in s["channels"]:
                    exact = connections(side, side, kernel, depth, channels)
                    order = connections_order(side, side, kernel, depth, channels)
                    rows.append((depth, side, kernel, channels, exact, order, exact / order))
    write_table(
        run_dir,
        "pixelcnn_connections.csv",
        [
            dict(depth=depth, height=side, width=side, kernel=kernel, channels=channels,
                 connections=exact, order_hwk2c=order, ratio=round(ratio, 6))
            for depth, side, kernel, channels, exact, order, ratio in rows
        ],
    )  # fmt: skip

    ratios = np.array([r[-1] for r in rows])
    exact, order = np.array([r[4] for r in rows], float), np.array([r[5] for r in rows], float)
    fitted = float(exact @ order / (order @ order))  # least squares: exact ≈ c · order
    # O(·) means exact/order stays bounded: it lies in (0, 1] and settles, i.e. barely moves
    # between the two largest values of each axis (the others at their largest too).
    big = dict(height=s["sides"][-1], kernel=s["kernels"][-1], depth=s["depths"][-1],
               channels=s["channels"][-1])  # fmt: skip
    drift = {
        "d": _drift("depth", s["depths"], big),
        "H=W": _drift("height", s["sides"], big),
        "K": _drift("kernel", s["kernels"], big),
    }
    settled = all(abs(x) < DRIFT_TOL for x in drift.values())
    bounded = bool(ratios.max() <= 1.0 and ratios.min() > 0)
    measured = (
        f"{len(rows)} configs (d {s['depths'][0]}..{s['depths'][-1]}, H=W "
        f"{s['sides'][0]}..{s['sides'][-1]}, K {s['kernels'][0]}..{s['kernels'][-1]}, C "
        f"{s['channels'][0]}..{s['channels'][-1]}): exact / (H·W·K²·(C+(d−1)C²)) in "
        f"[{ratios.min():.3f}, {ratios.max():.3f}], least-squares constant {fitted:.3f}; "
        "change of that ratio between the two largest values of "
        + ", ".join(f"{k} {v:+.1%}" for k, v in drift.items())
    )
    holds = settled and bounded
    return [
        Verdict(
            claim="C7",
            verdict="PASS" if holds else "FAIL",
            check="exact connection count over the masks (edges unit→unit through unmasked "
            "taps landing inside the image; brute force and Jacobian non-zeros agree in "
            "tests) vs the seed's O(d·H·W·K²) over a sweep",
            measure="exact connection count",
            rule=f"PASS iff exact / (H·W·K²·(C+(d−1)C²)) lies in (0, 1] and changes by less "
            f"than {DRIFT_TOL:.0%} between the two largest values of each axis; else FAIL",
            measured=measured + " (the O(·) holds at fixed C; the mask keeps about half the taps)",
            statement=(
                "connections = Θ(d·H·W·K²) at fixed channels"
                if holds
                else "the exact count does not grow linearly in d, H·W and K²"
            ),
        )
    ]


# --- C9: sequential steps of sampling ------------------------------------------------------

SPAN_SWEEP = {
    "smoke": dict(sides=(3, 4, 5), depths=(1, 2, 3), kernels=(3, 5), channels=2, batch=1),
    "cpu": dict(sides=(4, 8, 12), depths=(1, 2, 4, 8), kernels=(3, 5, 7), channels=4, batch=2),
}
SPAN_SWEEP["full"] = SPAN_SWEEP["cpu"]
AGREEMENT = {  # (kernel, depth, side, batch, channels) configs; weight scales; noise seeds
    "smoke": dict(configs=((3, 2, 5, 2, 4),), scales=(1.0, 3.0), seeds=(0,)),
    "cpu": dict(configs=((3, 3, 8, 4, 8), (5, 2, 7, 4, 8)), scales=(1.0, 3.0), seeds=(0, 1)),
}
AGREEMENT["full"] = AGREEMENT["cpu"]


def _params(kernel: int, depth: int, channels: int, seed: int, scale: float = 1.0) -> dict:
    params = numpy_initialized(depth, channels, seed, kernel=kernel).params
    return jax.tree.map(lambda v: scale * v, params)


def sampler_agreement(profile: str, run_dir) -> tuple[int, int, list[int]]:
    """Run the three samplers on shared noise; returns (identical, total, fixed-point passes)."""
    a = AGREEMENT[profile]
    rows, identical, passes_seen = [], 0, []
    naive, cached, fixed = (jax.jit(SAMPLERS[v]) for v in SAMPLERS)
    for kernel, depth, side, batch, channels in a["configs"]:
        for seed in a["seeds"]:
            for scale in a["scales"]:
                params = _params(kernel, depth, channels, seed, scale)
                rng = np.random.default_rng(100 + seed)
                u = jnp.asarray(rng.random((batch, side, side), np.float32))
                x_naive, x_cached = naive(params, u), cached(params, u)
                x_fixed, passes = fixed(params, u)
                same_cached = bool((x_naive == x_cached).all())
                same_fixed = bool((x_naive == x_fixed).all())
                identical += same_cached and same_fixed
                passes_seen.append(int(passes))
                rows.append([kernel, depth, side, side, batch, channels, seed, scale,
                             same_cached, same_fixed, int(passes), side * side + 1,
                             f"{float(x_naive.mean()):.4f}"])  # fmt: skip
    columns = ["kernel", "depth", "height", "width", "batch", "channels", "seed",
               "weight_scale", "cached_equals_naive", "fixed_point_equals_naive",
               "fixed_point_passes", "passes_bound", "mean_pixel"]  # fmt: skip
    records = [dict(zip(columns, r, strict=True)) for r in rows]
    write_table(run_dir, "pixelcnn_sampler_agreement.csv", records)
    return identical, len(rows), passes_seen


def sampler_span(profile: str, run_dir) -> list[Verdict]:
    s = SPAN_SWEEP[profile]
    rows = []
    for kernel in s["kernels"]:
        for depth in s["depths"]:
            params = _params(kernel, depth, s["channels"], seed=0)
            for side in s["sides"]:
                u = jnp.zeros((s["batch"], side, side), jnp.float32)
                for variant in ("naive", "cached"):
                    st = analyse(functools.partial(SAMPLERS[variant], params), u)
                    rows.append(dict(variant=variant, kernel=kernel, depth=depth, side=side,
                                     span_ops=st.span_ops, loop_steps=st.loop_steps,
                                     work_flops=st.work_flops))  # fmt: skip
    write_table(
        run_dir,
        "pixelcnn_sampler_span.csv",
        [{**row, "height": row["side"], "width": row["side"]} for row in rows],
    )

    # Fit span = α·H·W·d + β·H·W + γ per sampler; does the span depend on K?
    fits, k_free, k_work = {}, True, []
    for variant in ("naive", "cached"):
        rs = [r for r in rows if r["variant"] == variant]
        hw = np.array([r["side"] ** 2 for r in rs], float)
        d = np.array([r["depth"] for r in rs], float)
        span = np.array([r["span_ops"] for r in rs], float)
        design = np.stack([hw * d, hw, np.ones_like(hw)], axis=1)
        coef, *_ = np.linalg.lstsq(design, span, rcond=None)
        residual = float(np.abs(design @ coef - span).max() / span.max())
        fits[variant] = (coef, residual)
        for depth in s["depths"]:
            for side in s["sides"]:
                same = [r for r in rs if r["depth"] == depth and r["side"] == side]
                k_free &= len({r["span_ops"] for r in same}) == 1
                if variant == "cached":
                    works = sorted((r["kernel"], r["work_flops"]) for r in same)
                    k_work.append(works[-1][1] / works[0][1])
    k_lo, k_hi = s["kernels"][0], s["kernels"][-1]
    identical, total, passes = sampler_agreement(profile, run_dir)
    (a_n, b_n, _), res_n = fits["naive"]
    (a_c, b_c, _), res_c = fits["cached"]
    linear = res_n < 0.01 and res_c < 0.01 and a_n > 0 and a_c > 0
    measured = (
        f"span (bench.structure) over H=W {s['sides']}, d {s['depths']}, K {s['kernels']}: "
        f"naive {a_n:.2f}·H·W·d + {b_n:.2f}·H·W (max residual {res_n:.1%}), cached "
        f"{a_c:.2f}·H·W·d + {b_c:.2f}·H·W (max residual {res_c:.1%}); span "
        + ("identical" if k_free else "NOT identical")
        + f" for every K at fixed H, W, d, while the cached sampler's work grows "
        f"{min(k_work):.1f}-{max(k_work):.1f}× from K={k_lo} to K={k_hi} (mask-B taps "
        f"{n_taps(k_hi, 'B') / n_taps(k_lo, 'B'):.1f}×); naive, cached and fixed-point samples "
        f"identical in {identical}/{total} runs (fixed-point passes {min(passes)}-"
        f"{max(passes)}, bound H·W+1)"
    )
    if identical != total or not linear:
        verdict = "FAIL"
        statement = "the samplers' spans are not Θ(H·W·d), or they disagree"
    elif k_free:
        verdict = "CORRECTED"
        statement = (
            "sampling needs Θ(H·W·d) sequential steps, independent of K: the K²·C² "
            "multiply-adds of each step are one parallel operation (they set the work, "
            "O(H·W·d·K²·C²) for the cached sampler, not the span); the seed's "
            "O(H·W·d·K²) counts work, not sequential steps"
        )
    else:
        verdict = "PASS"
        statement = "the samplers' spans grow with K as the seed's O(H·W·d·K²) says"
    return [
        Verdict(
            claim="C9",
            verdict=verdict,
            check="span (longest chain of dependent ops, loops unrolled) of the naive and "
            "cached raster samplers traced over H=W, d, K; least-squares fit; exact "
            "agreement of the three samplers on shared per-pixel noise",
            measure="span_ops",
            rule="FAIL iff the samplers disagree or span ≠ α·H·W·d + β·H·W (max residual ≥ 1%); "
            "CORRECTED iff the span does not depend on K; PASS iff it does",
            measured=measured,
            statement=statement,
            slip="mathematical error" if verdict == "CORRECTED" else "",
        )
    ]


# --- C8: the training step's sequential depth, from the timed cases ------------------------


def ok_rows(df: pd.DataFrame, suite: str, mode: str) -> pd.DataFrame:
    return df[(df.suite == suite) & (df["mode"] == mode) & (df.status == "ok")]


def uncounted(rows: pd.DataFrame, claim: str, check: str) -> list[Verdict]:
    """An INCONCLUSIVE row when some of ``rows`` have no span (the analyser could not count
    their program: the row's note says why); else nothing."""
    missing = rows[rows.span_ops.isna()]
    if missing.empty:
        return []
    notes = sorted({str(n) for n in missing.note.dropna()}) or ["no note"]
    return [
        Verdict(
            claim=claim,
            verdict="INCONCLUSIVE",
            check=check,
            measure="span_ops",
            rule="no verdict from rows without a structural count",
            measured=f"{len(missing)} of {len(rows)} rows have no span: {'; '.join(notes)}",
            statement="the structural count is missing, so the span cannot decide",
        )
    ]


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


def _slope_text(fits: pd.DataFrame, suite: str, mode: str, axis: str) -> str:
    f = (
        fits[(fits.suite == suite) & (fits["mode"] == mode) & (fits.axis == axis)]
        if not fits.empty
        else fits
    )
    if f.empty:
        return f"no wall-time sweep over {axis}"
    r = f.iloc[0]
    return (
        f"wall time ∝ {axis}^{r.slope:.2f} ± {r.slope_ci95:.2f} "
        f"(work predicts {r.pred_exponent_work:.2f}; {r.bound} by the Brent fit, "
        f"R² {r.brent_r2:.2f})"
    )


C8_CHECK = (
    "jaxpr span of the training step: exactly linear in d, constant in H·W "
    "(the sequential-operation count); wall time fitted alongside"
)


def c8_pixelcnn_training_span(df: pd.DataFrame, fits: pd.DataFrame) -> list[Verdict]:
    rows = ok_rows(df, "pixelcnn", "train")
    if rows.empty:
        return []
    if missing := uncounted(rows, "C8", C8_CHECK):
        return missing
    side = rows.height.mode().iloc[0]
    depth = rows.depth.mode().iloc[0]
    over_d = rows[rows.height == side].drop_duplicates("depth")
    over_hw = rows[rows.depth == depth].drop_duplicates("height")
    if len(over_d) < 3 or len(over_hw) < 2:
        return []
    line = exact_line(over_d.depth, over_d.span_ops)
    spans_hw = {int(h): int(s) for h, s in zip(over_hw.height, over_hw.span_ops, strict=True)}
    flat = len(set(spans_hw.values())) == 1
    measured = (
        f"span over d={[int(d) for d in over_d.depth]} at H=W={side}: "
        f"{[int(s) for s in over_d.span_ops]} "
        + (f"= {line[0]}·d + {line[1]} exactly" if line else "(not on one line)")
        + f"; over H=W={list(spans_hw)} at d={depth}: {list(spans_hw.values())}"
        + (" (identical)" if flat else " (differs)")
        + "; "
        + _slope_text(fits, "pixelcnn", "train", "depth")
        + "; "
        + _slope_text(fits, "pixelcnn", "train", "hw")
    )
    ok = line is not None and line[0] > 0 and flat
    return [
        Verdict(
            claim="C8",
            verdict="PASS" if ok else "FAIL",
            check=C8_CHECK,
            measure="span_ops",
            rule="PASS iff the span is exactly linear in d with a positive slope and equal "
            "for every H·W; else FAIL",
            measured=measured,
            statement="the training step's span is Θ(d) and independent of H·W"
            if ok
            else "the training step's span is not Θ(d) independent of H·W",
        )
    ]


register(Experiment("pixelcnn", ("C7",), connection_sweep))
register(Experiment("pixelcnn", ("C9",), sampler_span))
register(Derived(("pixelcnn",), ("C8",), c8_pixelcnn_training_span))
