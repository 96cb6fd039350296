"""Scaling fits: does wall time follow the predicted sequential steps, the work, or neither?

For each (suite, model, variant, mode) and each swept size axis (rows where only that axis
changes; ``height`` and ``width`` swept together count as one axis ``hw``), fit

    log time = slope · log axis + c

by least squares, with a 95% confidence interval from the t distribution. The same fit on
``seq_steps_pred`` and ``work_flops`` gives the *predicted* exponents: from the sequential
steps the seed counts, and from the total work. The verdict says which one the measured
slope's interval contains.

Brent's bound says time ≈ work / parallelism + span × per-step latency. The two-term fit
``time ≈ a·work + b·span`` (non-negative a, b) over all sizes of a group, with its R², tells
whether that model is work-bound on this device (the a·work share dominates) or
latency-bound (the b·span share dominates): the same suite on a CPU and a GPU lands
differently, and this says why.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from bench.workloads import SIZE_FIELDS

GROUP = ["suite", "model", "variant", "mode", "n_devices"]

# Two-sided 97.5% quantiles of Student's t for 1..30 degrees of freedom (then ≈ normal).
_T975 = [
    12.706,
    4.303,
    3.182,
    2.776,
    2.571,
    2.447,
    2.365,
    2.306,
    2.262,
    2.228,
    2.201,
    2.179,
    2.160,
    2.145,
    2.131,
    2.120,
    2.110,
    2.101,
    2.093,
    2.086,
    2.080,
    2.074,
    2.069,
    2.064,
    2.060,
    2.056,
    2.052,
    2.048,
    2.045,
    2.042,
]


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


def _judge(slope, half, pred_steps, pred_work) -> str:
    if math.isnan(slope) or math.isnan(half):
        return "too few points"
    tol = max(half, 0.05)  # a floor: exponents are only meaningful to a few hundredths
    inside = lambda p: not math.isnan(p) and abs(slope - p) <= tol  # noqa: E731
    if inside(pred_steps) and inside(pred_work):
        return "consistent with both"
    if inside(pred_steps):
        return "follows sequential steps"
    if inside(pred_work):
        return "follows work"
    predicted = sorted(p for p in (pred_steps, pred_work) if not math.isnan(p))
    if not predicted:
        return "no prediction (steps and work not counted)"
    if len(predicted) == 2 and predicted[0] < slope < predicted[1]:
        return "between steps and work"
    return "matches neither"


def _verdict(slope, half, pred_steps, pred_work) -> str:
    verdict = _judge(slope, half, pred_steps, pred_work)
    return f"{verdict} (wide interval)" if half > 0.5 else verdict


def brent_fit(rows: pd.DataFrame) -> dict:
    """Non-negative least squares time ≈ a·work + b·span, with R² and the span share."""
    t = rows.time_median_s.to_numpy(float)
    cols = {"work": rows.work_flops.to_numpy(float), "span": rows.span_ops.to_numpy(float)}
    best = None
    for use in (("work", "span"), ("work",), ("span",)):
        X = np.stack([cols[u] for u in use], axis=1)
        coef, *_ = np.linalg.lstsq(X, t, rcond=None)
        if (coef < 0).any():
            continue
        pred = X @ coef
        sse = float(((t - pred) ** 2).sum())
        if best is None or sse < best[0] - 1e-18:
            best = (sse, dict(zip(use, coef, strict=True)), pred)
    sse, coef, pred = best
    sst = float(((t - t.mean()) ** 2).sum())
    a, b = coef.get("work", 0.0), coef.get("span", 0.0)
    share = float(np.median(b * cols["span"] / np.maximum(pred, 1e-30)))
    return {
        "brent_a_s_per_flop": a,
        "brent_b_s_per_op": b,
        "brent_r2": 1 - sse / sst if sst > 0 else math.nan,
        "brent_span_share": share,
        "bound": "latency-bound" if share > 0.5 else "work-bound",
    }


def fit(df: pd.DataFrame) -> pd.DataFrame:
    """The fits table for a run's measurements (ok rows only)."""
    ok = df[(df.status == "ok") & df.time_median_s.notna()]
    out = []
    for key, group in ok.groupby(GROUP, dropna=False):
        brent = {}
        usable = group.dropna(subset=["work_flops", "span_ops"])
        if len(usable) >= 3:
            brent = brent_fit(usable)
        for axis, fixed, rows in sweeps(group):
            x = rows["height" if axis == "hw" else axis]
            slope, half = loglog_slope(x, rows.time_median_s)
            pred_steps, _ = (
                loglog_slope(x, rows.seq_steps_pred)
                if rows.seq_steps_pred.notna().all()
                else (math.nan, 0)
            )
            pred_work, _ = (
                loglog_slope(x, rows.work_flops) if rows.work_flops.notna().all() else (math.nan, 0)
            )
            pred_span, _ = (
                loglog_slope(x, rows.span_ops) if rows.span_ops.notna().all() else (math.nan, 0)
            )
            out.append(
                {
                    **dict(zip(GROUP, key, strict=True)),
                    "axis": axis,
                    "axis_values": " ".join(str(v) for v in sorted(x.unique())),
                    "fixed": " ".join(f"{f}={rows[f].iloc[0]}" for f in fixed),
                    "n_points": len(rows),
                    "slope": slope,
                    "slope_ci95": half,
                    "pred_exponent_steps": pred_steps,
                    "span_exponent": pred_span,
                    "pred_exponent_work": pred_work,
                    "verdict": _verdict(slope, half, pred_steps, pred_work),
                    **brent,
                }
            )
    return pd.DataFrame(out)
