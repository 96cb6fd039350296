"""Scaling fits: does wall time follow the sequential depth, the work, or neither?

A *sweep* is a set of rows of one (suite, model, variant, mode, n_devices) where exactly one
size axis changes; ``height`` and ``width`` changed together count as one axis, ``hw``, whose
value is the pixel count H·W. Along a sweep, fit

    log time = slope · log axis + c

by least squares, with a 95% confidence interval from the t distribution. The same slope of
each structural count over the same points is that count's *predicted* exponent: of
``span_ops`` (the dataflow critical path), ``steps_executed`` (loop iterations executed in
sequence), ``work_flops`` and ``seq_steps_pred`` (the seed's formula). A device on which a
sweep is latency-bound shows the depth's exponent; a work-bound one, the work's.

Which one a device is, is read from Brent's bound: time ≈ work / parallelism + depth ×
per-step latency. The fit ``time ≈ a·work + b·depth`` (non-negative a, b) over every row of a
group, both regimes together (their work and depth differ in ratio, which is what separates a
from b), gives the device's constants; a row's *depth share* is b·depth over the fitted time.
The fit is made twice, with the dataflow span (``span_ops``) and with the loop steps executed
(``steps_executed``) as the depth, because a claim is judged on one of them. A sweep whose
median share is at least :data:`LATENCY_SHARE` is latency-bound, one at most 1 − that is
work-bound (by the span, in the ``bound`` column).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from bench.workloads import SIZE_FIELDS

GROUP = ["suite", "model", "variant", "mode", "n_devices"]
COUNTS = {
    "span_ops": "span",
    "steps_executed": "steps",
    "work_flops": "work",
    "seq_steps_pred": "seed",
}
"""Structural counts whose exponent along a sweep is reported, and their short names."""
LATENCY_SHARE = 0.8
"""A sweep is latency-bound when the Brent fit gives its span term this share of the time."""

# Two-sided 97.5% quantiles of Student's t for 1..30 degrees of freedom (then ≈ normal).
_T975 = [
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
]  # fmt: skip


def t975(dof: int) -> float:
    return _T975[dof - 1] if 1 <= dof <= len(_T975) else 1.96


def loglog_slope(x, y) -> tuple[float, float]:
    """Least-squares slope of log y on log x and its 95% half-width (nan if < 3 points)."""
    lx, ly = np.log(np.asarray(x, float)), np.log(np.asarray(y, float))
    n = len(lx)
    if n < 2 or np.ptp(lx) == 0:
        return math.nan, math.nan
    slope, intercept = np.polyfit(lx, ly, 1)
    if n < 3:
        return float(slope), math.nan
    resid = ly - (slope * lx + intercept)
    se = math.sqrt(resid @ resid / (n - 2) / ((lx - lx.mean()) @ (lx - lx.mean())))
    return float(slope), t975(n - 2) * se


def axis_values(rows: pd.DataFrame, axis: str) -> pd.Series:
    """The swept quantity: the size itself, or the pixel count H·W for ``hw``."""
    if axis == "hw":
        return (rows.height * rows.width).astype(float)
    return rows[axis].astype(float)


def sweeps(group: pd.DataFrame):
    """Yield (axis, fixed fields, rows) for each size axis that varies alone in ``group``
    (rows of one variant and mode): the sweeps that fits and plots are drawn from."""
    fields = [f for f in SIZE_FIELDS if group[f].notna().any()]
    hw_together = {"height", "width"} <= set(fields) and (group.height == group.width).all()
    axes = [f for f in fields if not (hw_together and f == "width")]
    for axis in axes:
        moving = {"height", "width"} if (hw_together and axis == "height") else {axis}
        fixed = [f for f in fields if f not in moving]
        keyed = group.fillna({f: -1 for f in fixed}) if fixed else group
        for _, rows in keyed.groupby(fixed, dropna=False) if fixed else [(None, group)]:
            if rows[axis].nunique() >= 3:
                name = "hw" if moving == {"height", "width"} else axis
                yield name, fixed, group.loc[rows.index]


def brent_fit(rows: pd.DataFrame, depth: str = "span_ops") -> dict:
    """Non-negative least squares ``time ≈ a·work + b·depth``, with R².

    ``depth`` is ``span_ops`` or ``steps_executed``. Each subset of the two terms is solved by
    least squares on scaled columns, and the best fit whose coefficients are non-negative is
    kept (the NNLS solution of two terms).
    """
    t = rows.time_median_s.to_numpy(float)
    cols = {"work": rows.work_flops.to_numpy(float), "depth": rows[depth].to_numpy(float)}
    best = None
    for use in (("work", "depth"), ("work",), ("depth",)):
        scale = np.array([max(cols[u].max(), 1e-30) for u in use])
        X = np.stack([cols[u] for u in use], axis=1) / scale
        coef, *_ = np.linalg.lstsq(X, t, rcond=None)
        if (coef < 0).any():
            continue
        sse = float(((t - X @ coef) ** 2).sum())
        if best is None or sse < best[0] * (1 - 1e-9):
            best = (sse, dict(zip(use, coef / scale, strict=True)))
    sse, coef = best
    sst = float(((t - t.mean()) ** 2).sum())
    return {
        "a_s_per_flop": coef.get("work", 0.0),
        "b_s_per_step": coef.get("depth", 0.0),
        "r2": 1 - sse / sst if sst > 0 else math.nan,
    }


def depth_share(rows: pd.DataFrame, brent: dict, depth: str = "span_ops") -> pd.Series:
    """The depth term's share of each row's fitted time."""
    deep = brent["b_s_per_step"] * rows[depth].astype(float)
    work = brent["a_s_per_flop"] * rows.work_flops.astype(float)
    return deep / (work + deep).clip(lower=1e-30)


def bound(share: float) -> str:
    if math.isnan(share):
        return ""
    if share >= LATENCY_SHARE:
        return "latency-bound"
    return "work-bound" if share <= 1 - LATENCY_SHARE else "mixed"


def _exponent(x: pd.Series, count: pd.Series) -> float:
    """The count's log-log slope along the sweep: 0 for a constant count (a loop-free
    program's 0 steps included), nan where it is missing or mixes 0 with other values."""
    if count.isna().any():
        return math.nan
    if count.nunique() == 1:
        return 0.0
    if (count <= 0).any():
        return math.nan
    return loglog_slope(x, count.astype(float))[0]


def _follows(slope: float, half: float, exponents: dict[str, float]) -> str:
    """Which counts' exponents the slope's interval contains (a description, not a verdict)."""
    if math.isnan(slope) or math.isnan(half):
        return "too few points"
    tol = max(half, 0.05)  # exponents are only meaningful to a few hundredths
    inside = [name for name, e in exponents.items() if not math.isnan(e) and abs(slope - e) <= tol]
    if not any(not math.isnan(e) for e in exponents.values()):
        return "no prediction (counts missing)"
    text = "follows " + " = ".join(inside) if inside else "matches no count"
    return f"{text} (wide interval)" if half > 0.5 else text


DEPTHS = {"span_ops": "span", "steps_executed": "steps"}
"""The two depth measures the Brent fit is made with, and their short names."""


def fit(df: pd.DataFrame) -> pd.DataFrame:
    """The fits table for a run's measurements (ok rows only): one row per sweep."""
    ok = df[(df.status == "ok") & df.time_median_s.notna()]
    out = []
    for key, group in ok.groupby(GROUP, dropna=False):
        brent = {}
        for depth in DEPTHS:
            usable = group.dropna(subset=["work_flops", depth])
            if len(usable) >= 3 and usable[depth].gt(0).any():
                brent[depth] = brent_fit(usable, depth)
        for axis, fixed, rows in sweeps(group):
            x = axis_values(rows, axis)
            slope, half = loglog_slope(x, rows.time_median_s)
            exponents = {name: _exponent(x, rows[col]) for col, name in COUNTS.items()}
            shares = {
                name: float(depth_share(rows, brent[depth], depth).median())
                if depth in brent and rows[["work_flops", depth]].notna().all().all()
                else math.nan
                for depth, name in DEPTHS.items()
            }
            regimes = rows.regime.dropna().unique() if "regime" in rows else []
            out.append(
                {
                    **dict(zip(GROUP, key, strict=True)),
                    "regime": regimes[0] if len(regimes) == 1 else "",
                    "axis": axis,
                    "axis_values": " ".join(f"{v:g}" for v in sorted(x.unique())),
                    "axis_range": float(x.max() / x.min()),
                    "fixed": " ".join(f"{f}={rows[f].iloc[0]}" for f in fixed),
                    "n_points": len(rows),
                    "slope": slope,
                    "slope_ci95": half,
                    **{f"{name}_exponent": e for name, e in exponents.items()},
                    **{f"{name}_share": v for name, v in shares.items()},
                    "bound": bound(shares["span"]),
                    "follows": _follows(slope, half, exponents),
                    **{
                        f"brent_{DEPTHS[depth]}_{k}": v
                        for depth, b in brent.items()
                        for k, v in b.items()
                    },
                }
            )
    return pd.DataFrame(out)
