"""Claims judged from a run's measurements (rather than by a suite's own experiment).

Each function takes the run's measurement rows (and fits) and returns claim rows like the
suites' experiments do, or nothing when the run did not measure what the claim needs. The
report renders them beside the experiments' claims and writes them to ``claims_derived.csv``
(derived data: rewritten at every render).

- C8: PixelCNN training needs O(d) sequential operations: the jaxpr span of the training step
  is an exact linear function of d and does not change with H·W.
- C12: PixelCNN parallelises in training, the MDRNN does not to the same degree: training
  spans side by side at equal H = W and d (structure from the jaxprs), with the wall time of
  the same cases where the run measured both.
"""

from __future__ import annotations

from fractions import Fraction

import pandas as pd


def _ok(df: pd.DataFrame, suite: str, mode: str) -> pd.DataFrame:
    return df[(df.suite == suite) & (df["mode"] == mode) & (df.status == "ok")]


def _uncounted(rows: pd.DataFrame, claim: str, suite: str, check: str) -> list[dict]:
    """An INCONCLUSIVE row when some of ``rows`` have no span (the analyser could not count
    their program: the row's note says why); else nothing."""
    missing = rows[rows.span_ops.isna()]
    if missing.empty:
        return []
    notes = sorted({str(n) for n in missing.note.dropna()}) or ["no note"]
    return [
        dict(
            claim=claim,
            suite=suite,
            check=check,
            measured=f"{len(missing)} of {len(rows)} rows have no span: {'; '.join(notes)}",
            verdict="INCONCLUSIVE",
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
C12_CHECK = (
    "training-step spans (jaxpr critical path) at equal H, W, d; the MDRNN's must "
    "exceed PixelCNN's and grow with H+W while PixelCNN's does not"
)


def c8_pixelcnn_training_span(df: pd.DataFrame, fits: pd.DataFrame) -> list[dict]:
    rows = _ok(df, "pixelcnn", "train")
    if rows.empty:
        return []
    if uncounted := _uncounted(rows, "C8", "pixelcnn", C8_CHECK):
        return uncounted
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
        dict(
            claim="C8",
            suite="pixelcnn",
            check=C8_CHECK,
            measured=measured,
            verdict="PASS" if ok else "FAIL",
            statement="" if ok else "the training step's span is not Θ(d) independent of H·W",
        )
    ]


def c12_training_parallelism(df: pd.DataFrame, fits: pd.DataFrame) -> list[dict]:
    pix = _ok(df, "pixelcnn", "train")
    mdr = _ok(df, "mdrnn", "train")
    if pix.empty or mdr.empty:
        return []
    if uncounted := _uncounted(pd.concat([pix, mdr]), "C12", "pixelcnn+mdrnn", C12_CHECK):
        return uncounted
    keys = ["height", "width", "depth"]
    both = pix.merge(mdr, on=keys, suffixes=("_pix", "_mdrnn"))
    if both.empty:
        return []
    parts, ok = [], True
    for variant, rows in both.sort_values(keys).groupby("variant_mdrnn"):
        ratios = (rows.span_ops_mdrnn / rows.span_ops_pix).tolist()
        # the MDRNN is deeper at every size, and its lead grows with the image
        ok &= all(r > 1 for r in ratios) and (len(ratios) < 2 or ratios[-1] > ratios[0])
        for r, ratio in zip(rows.to_dict("records"), ratios, strict=True):
            time = ""
            if not pd.isna(r["time_median_s_pix"]) and not pd.isna(r["time_median_s_mdrnn"]):
                time = f", time ×{r['time_median_s_mdrnn'] / r['time_median_s_pix']:.2f}"
            parts.append(
                f"H=W={r['height']} d={r['depth']} mdrnn {variant}: span {r['span_ops_mdrnn']} "
                f"vs pixelcnn {r['span_ops_pix']} (×{ratio:.1f}{time})"
            )
    return [
        dict(
            claim="C12",
            suite="pixelcnn+mdrnn",
            check=C12_CHECK,
            measured="; ".join(parts),
            verdict="PASS" if ok else "FAIL",
            statement="",
        )
    ]


RULES = [c8_pixelcnn_training_span, c12_training_parallelism]


def derive(df: pd.DataFrame, fits: pd.DataFrame) -> pd.DataFrame:
    rows = [row for rule in RULES for row in rule(df, fits)]
    return pd.DataFrame(
        rows, columns=["claim", "suite", "check", "measured", "verdict", "statement"]
    )
