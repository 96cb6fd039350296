"""Scaling fits and claims derived from measurements, on rows whose answer is known."""

import math

import pandas as pd
import pytest

from bench import fits
from bench.claims import derived as claims
from bench.records import COLUMNS


def frame(rows):
    df = pd.DataFrame(rows, columns=list(COLUMNS))
    return df.astype({c: t for c, t in COLUMNS.items()})


def pixelcnn_rows(span):
    """Training rows over d at H=W=16 and over H=W at d=4; time = 1 ms per unit of span."""
    rows = []
    for side, depth in [(16, 1), (16, 2), (16, 4), (16, 8), (8, 4), (32, 4)]:
        s = span(side, depth)
        rows.append(
            dict(
                suite="pixelcnn",
                model="pixelcnn",
                variant="masked",
                mode="train",
                batch=4,
                depth=depth,
                height=side,
                width=side,
                status="ok",
                time_median_s=1e-3 * s,
                seq_steps_pred=depth,
                span_ops=s,
                work_flops=100.0 * depth * side * side,
            )
        )
    return frame(rows)


def test_loglog_slope_recovers_a_power_law_with_a_confidence_interval():
    slope, half = fits.loglog_slope([1, 2, 4, 8, 16], [3 * x**1.5 for x in [1, 2, 4, 8, 16]])
    assert slope == pytest.approx(1.5) and half == pytest.approx(0, abs=1e-9)
    slope, half = fits.loglog_slope([1, 2, 4, 8], [1.0, 2.2, 3.9, 8.4])
    assert 0.9 < slope < 1.1 and 0 < half < 0.3
    assert math.isnan(fits.loglog_slope([1, 2], [1, 2])[1])  # 2 points: no interval


def test_a_latency_bound_sweep_follows_the_sequential_steps_not_the_work():
    df = pixelcnn_rows(lambda side, depth: 10 * depth + 3)
    table = fits.fit(df).set_index("axis")
    over_d = table.loc["depth"]
    assert over_d.pred_exponent_steps == pytest.approx(1.0)
    assert over_d.pred_exponent_work == pytest.approx(1.0)
    over_hw = table.loc["hw"]
    assert over_hw.slope == pytest.approx(0.0, abs=1e-9)
    assert over_hw.pred_exponent_work == pytest.approx(2.0)  # work ∝ H·W = side²
    assert over_hw.verdict == "follows sequential steps"


def test_brent_fit_recovers_work_and_span_coefficients():
    rows = pixelcnn_rows(lambda side, depth: 10 * depth)
    rows["time_median_s"] = 2e-9 * rows.work_flops + 5e-4 * rows.span_ops
    b = fits.brent_fit(rows)
    assert b["brent_a_s_per_flop"] == pytest.approx(2e-9, rel=1e-6)
    assert b["brent_b_s_per_op"] == pytest.approx(5e-4, rel=1e-6)
    assert b["brent_r2"] == pytest.approx(1.0)


def test_exact_line_accepts_collinear_integers_only():
    assert claims.exact_line([2, 4, 8], [25, 45, 85]) == (10, 5)
    assert claims.exact_line([2, 4, 8], [25, 45, 86]) is None


def test_c8_passes_when_training_span_is_linear_in_depth_and_flat_in_image_size():
    df = pixelcnn_rows(lambda side, depth: 10 * depth + 3)
    (row,) = claims.c8_pixelcnn_training_span(df, fits.fit(df))
    assert row["verdict"] == "PASS" and "= 10·d + 3 exactly" in row["measured"]


def test_c8_fails_when_the_span_grows_with_the_image():
    df = pixelcnn_rows(lambda side, depth: 10 * depth + side)
    (row,) = claims.c8_pixelcnn_training_span(df, fits.fit(df))
    assert row["verdict"] == "FAIL" and "(differs)" in row["measured"]


def test_claims_need_their_measurements():
    empty = frame([])
    assert claims.derive(empty, fits.fit(empty)).empty


def test_c12_compares_training_spans_of_pixelcnn_and_mdrnn_at_equal_sizes():
    pix = pixelcnn_rows(lambda side, depth: 10 * depth + 3)
    mdrnn = pix.copy()
    mdrnn["suite"], mdrnn["model"], mdrnn["variant"] = "mdrnn", "mdrnn", "wavefront"
    mdrnn["span_ops"] = 7 * (2 * mdrnn.height - 1) * mdrnn.depth  # (H+W-1)·d steps
    (row,) = claims.c12_training_parallelism(pd.concat([pix, mdrnn]), fits.fit(pix))
    assert row["verdict"] == "PASS" and "H=W=32 d=4 mdrnn wavefront" in row["measured"]
    mdrnn["span_ops"] = 5  # shallower than PixelCNN: the claim would be false
    (row,) = claims.c12_training_parallelism(pd.concat([pix, mdrnn]), fits.fit(pix))
    assert row["verdict"] == "FAIL"


def test_report_gives_each_case_its_fraction_of_the_matmul_measured_in_the_same_run():
    from bench.report import peak_fractions

    df = frame(
        [
            dict(
                suite="convnet",
                model="matmul",
                variant="peak",
                mode="forward",
                status="ok",
                achieved_flops_per_s=2e11,
            ),
            dict(
                suite="convnet",
                model="convnet",
                variant="seed",
                mode="train",
                status="ok",
                batch=8,
                achieved_flops_per_s=5e10,
            ),
            dict(
                suite="lstm",
                model="lstm",
                variant="autodiff",
                mode="train",
                status="ok",
                achieved_flops_per_s=1e10,
            ),  # no matmul in its suite: no row
        ]
    )
    (row,) = peak_fractions(df).to_dict("records")
    assert row["model"] == "convnet" and row["fraction"] == pytest.approx(0.25)


def test_rows_without_structural_counts_are_missing_not_a_crash():
    df = pixelcnn_rows(lambda side, depth: 10 * depth + 3)
    df["span_ops"] = pd.NA
    df["work_flops"] = pd.NA
    df["seq_steps_pred"] = pd.NA
    df["note"] = "span/work not counted: UnknownLayout: structure: cannot read this JAX's scan"
    table = fits.fit(df)
    assert set(table.axis) == {"depth", "hw"}
    assert "brent_r2" not in table  # no counts: no two-term fit
    assert set(table.verdict) == {"no prediction (steps and work not counted)"}
    (c8,) = claims.c8_pixelcnn_training_span(df, table)
    assert c8["verdict"] == "INCONCLUSIVE"
    assert "6 of 6 rows have no span" in c8["measured"] and "UnknownLayout" in c8["measured"]
