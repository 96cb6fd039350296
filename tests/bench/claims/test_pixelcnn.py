"""C8 (bench/claims/pixelcnn.py): PixelCNN's training depth, judged from timed rows whose
answer is known: on the span, and on wall time in a latency-bound sweep."""

import numpy as np
import pandas as pd
import pytest

from bench import fits
from bench.claims import pixelcnn
from tests.bench.synthetic import cost, judged, pixelcnn_train_design, sampler_design
from tests.bench.test_fits import frame, pixelcnn_rows


def c8(df, samples=None):
    return pixelcnn.c8_pixelcnn_training_span(df, fits.fit(df, samples))


def test_exact_line_accepts_collinear_integers_only():
    assert pixelcnn.exact_line([2, 4, 8], [25, 45, 85]) == (10, 5)
    assert pixelcnn.exact_line([2, 4, 8], [25, 45, 86]) is None


def test_c8_passes_on_the_span_when_it_is_linear_in_depth_and_flat_in_image_size():
    structure, _ = c8(pixelcnn_rows(lambda side, depth: 10 * depth + 3))
    assert structure.verdict == "PASS" and structure.facts["lines"] and structure.facts["flats"]
    assert all(s["line"] == (10, 3) for s in structure.facts["lines"])  # span = 10·d + 3
    assert all(len(s["spans"]) == 1 for s in structure.facts["flats"])


def test_c8_fails_on_the_span_when_it_grows_with_the_image():
    structure, _ = c8(pixelcnn_rows(lambda side, depth: 10 * depth + side))
    assert structure.verdict == "FAIL" and not structure.facts["flat"]
    assert structure.facts["linear"]


def test_c8_fails_on_the_span_when_it_is_not_a_line_in_depth():
    structure, _ = c8(pixelcnn_rows(lambda side, depth: depth * depth + 3))
    assert structure.verdict == "FAIL" and not structure.facts["linear"]
    assert structure.facts["flat"]


def test_c8_without_both_sweeps_cannot_decide_on_the_span():
    df = pixelcnn_rows(lambda side, depth: 10 * depth + 3)
    structure, _ = c8(df[df.height == 16])  # no sweep over H·W
    assert structure.verdict == "INCONCLUSIVE"


def test_c8_wall_time_half_passes_when_time_follows_the_span_over_a_fixed_cost():
    (v,) = pixelcnn.wall_time(pixelcnn.C8_TIME, *judged(pixelcnn_train_design(), cost()))
    assert v.verdict == "PASS", v.measured
    assert v.measure == "wall time vs layers d (latency regime)"
    assert v.facts["b_s_per_step"] == pytest.approx(6 * 500e-9, rel=0.05)  # span = 6·d + 26


def test_c8_wall_time_half_fails_when_time_follows_the_work_or_a_per_pixel_count():
    (v,) = pixelcnn.wall_time(pixelcnn.C8_TIME, *judged(pixelcnn_train_design(), cost(b=0)))
    assert v.verdict == "FAIL", v.measured
    per_pixel = cost(count=lambda p: p["height"] * p["width"] * p["depth"])
    (v,) = pixelcnn.wall_time(pixelcnn.C8_TIME, *judged(pixelcnn_train_design(), per_pixel))
    assert v.verdict == "FAIL" and "per pixel H·W·d" in v.facts["beaten_by"], v.measured


def test_c8_wall_time_half_over_d_alone_is_not_identifiable():
    over_d = [p for p in pixelcnn_train_design() if p["height"] == 8 and p["hidden"] == 2]
    (v,) = pixelcnn.wall_time(pixelcnn.C8_TIME, *judged(over_d, cost()))
    assert v.verdict == "INCONCLUSIVE" and v.facts["reason"] == "not identifiable"


def test_c9_wall_time_passes_when_every_sampler_follows_its_span():
    (v,) = pixelcnn.wall_time(pixelcnn.C9_TIME, *judged(sampler_design(), cost()))
    assert v.verdict == "PASS", v.measured


def test_c9_wall_time_fails_when_every_sampler_follows_the_seeds_count():
    seed = cost(count=lambda p: p["height"] * p["width"] * p["depth"] * 9)
    (v,) = pixelcnn.wall_time(pixelcnn.C9_TIME, *judged(sampler_design(), seed))
    assert v.verdict == "FAIL" and "seed H·W·d·K²" in v.facts["beaten_by"], v.measured


def test_c9_wall_time_fails_when_sampling_is_as_parallel_as_training():
    (v,) = pixelcnn.wall_time(
        pixelcnn.C9_TIME, *judged(sampler_design(), cost(count=lambda p: 40 * p["depth"]))
    )
    assert v.verdict == "FAIL" and "d" in v.facts["beaten_by"], v.measured


def test_c8_needs_its_measurements():
    empty = frame([])
    assert pixelcnn.c8_pixelcnn_training_span(empty, fits.fit(empty)) == []


def test_c8_is_inconclusive_on_rows_without_a_structural_count():
    df = pixelcnn_rows(lambda side, depth: 10 * depth + 3)
    df["span_ops"] = pd.NA
    df["note"] = "span/work not counted: UnknownLayout: structure: cannot read this JAX's scan"
    (verdict,) = c8(df)
    assert verdict.verdict == "INCONCLUSIVE"
    assert verdict.facts["missing"] == verdict.facts["rows"] == 6
    assert verdict.facts["notes"] == [df.note[0]]


# --- C7 and C9: the rules, on numbers that make them come out each way -----------------------


def test_c7_passes_when_exact_over_order_settles():
    order = np.array([100.0, 200.0, 400.0])
    v = pixelcnn.c7_verdict(0.5 * order, order, {"d": 0.0, "H=W": 0.02, "K": -0.03}, "3 configs")
    assert v.verdict == "PASS" and v.facts["constant"] == pytest.approx(0.5)


def test_c7_fails_when_the_ratio_keeps_moving():
    order = np.array([100.0, 200.0, 400.0])
    moving = pixelcnn.c7_verdict(0.5 * order, order, {"d": 0.3, "H=W": 0, "K": 0}, "3 configs")
    assert moving.verdict == "FAIL" and moving.facts["moved"] == ["d"]


def test_c7_drift_of_a_count_that_grows_as_k_not_k_squared_fails():
    # a mask that kept one row of taps: connections ∝ K, exact/order falls as 1/K
    big = dict(height=16, kernel=9, depth=2, channels=1)
    assert abs(pixelcnn._drift("kernel", (3, 5, 7, 9), big)) < pixelcnn.DRIFT_TOL  # the real one
    order = np.array([100.0, 200.0, 400.0])
    v = pixelcnn.c7_verdict(0.5 * order, order, {"d": 0, "H=W": 0, "K": 7 / 9 - 1}, "3 configs")
    assert v.verdict == "FAIL"


def span_rows(span, work=lambda v, k, d, side: 10.0 * k * k * d * side * side, kernels=(3, 5, 7)):
    return [
        dict(variant=v, kernel=k, depth=d, side=side, span_ops=span(v, k, d, side),
             work_flops=work(v, k, d, side))
        for v in ("naive", "cached")
        for k in kernels
        for d in (1, 2, 4)
        for side in (3, 4, 5)
    ]  # fmt: skip


def test_c9_corrects_the_seed_when_the_span_is_hwd_and_free_of_k():
    v = pixelcnn.c9_verdict(span_rows(lambda v, k, d, s: 3 * s * s * d + 4 * s * s), 8, 8, [3])
    assert v.verdict == "CORRECTED" and v.slip == "mathematical error"
    for (alpha, beta, _), residual in v.facts["fits"].values():
        assert (alpha, beta) == pytest.approx((3, 4)) and residual < 1e-9
    assert v.facts["k_free"] and v.facts["k_exponent"] == {"naive": 0.0, "cached": 0.0}


def test_c9_corrects_the_seed_when_the_span_grows_as_k_not_k_squared():
    v = pixelcnn.c9_verdict(span_rows(lambda v, k, d, s: k * s * s * d), 8, 8, [3])
    assert v.verdict == "CORRECTED"
    assert v.facts["k_exponent"] == pytest.approx({"naive": 1.0, "cached": 1.0})


def test_c9_passes_when_the_span_grows_as_k_squared():
    v = pixelcnn.c9_verdict(span_rows(lambda v, k, d, s: k * k * s * s * d), 8, 8, [3])
    assert v.verdict == "PASS"


def test_c9_fails_when_the_span_grows_faster_than_k_squared():
    v = pixelcnn.c9_verdict(span_rows(lambda v, k, d, s: k**3 * s * s * d), 8, 8, [3])
    assert v.verdict == "FAIL"


def test_c9_cannot_judge_k_from_two_kernels():
    rows = span_rows(lambda v, k, d, s: 3 * s * s * d + 4 * s * s, kernels=(3, 5))
    assert pixelcnn.c9_verdict(rows, 8, 8, [3]).verdict == "INCONCLUSIVE"


def test_c9_fails_when_the_samplers_disagree_or_the_span_is_not_linear():
    linear = span_rows(lambda v, k, d, s: 3 * s * s * d)
    assert pixelcnn.c9_verdict(linear, 7, 8, [3]).verdict == "FAIL"
    quadratic = span_rows(lambda v, k, d, s: (s * s * d) ** 2)
    assert pixelcnn.c9_verdict(quadratic, 8, 8, [3]).verdict == "FAIL"
