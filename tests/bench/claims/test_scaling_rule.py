"""The rule that judges a claim's wall-time half (bench/claims/__init__.py): a latency-bound
sweep's fitted exponent against its structural count's, with every way it can come out."""

import numpy as np
import pandas as pd

from bench import fits
from bench.claims import against_tolerance, scaling_check, time_verdict
from tests.bench.test_fits import frame


def sweep(
    depths, time_of, *, regime="latency", noise=None, span=lambda d: 10 * d + 3, work=lambda d: 1e3
):
    """Training rows of one variant over d, with times ``time_of(d)`` (seconds)."""
    rng = np.random.default_rng(0)
    rows = []
    for d in depths:
        t = time_of(d) * (1 + (noise * rng.standard_normal() if noise else 0))
        rows.append(
            dict(suite="pixelcnn", model="pixelcnn", variant="masked", mode="train", batch=1,
                 depth=d, height=8, width=8, regime=regime, status="ok", time_median_s=t,
                 span_ops=span(d), steps_executed=0, work_flops=work(d))
        )  # fmt: skip
    return frame(rows)


def check(df):
    return scaling_check(
        fits.fit(df), suite="pixelcnn", variant="masked", mode="train", axis="depth",
        measure="span_ops",
    )  # fmt: skip


DEPTHS = (1, 2, 4, 8, 16, 32)


def test_time_that_follows_the_span_passes():
    c = check(sweep(DEPTHS, lambda d: 1e-5 * (10 * d + 3)))
    assert c.outcome == "PASS", c.text
    assert "6 points over 32×" in c.text


def test_time_that_grows_faster_than_the_span_fails():
    c = check(sweep(DEPTHS, lambda d: 1e-6 * d**2 + 1e-5 * (10 * d + 3) * 0))
    assert c.outcome == "FAIL" and "off by" in c.text


def test_too_few_points_or_too_narrow_a_range_cannot_decide():
    c = check(sweep((1, 2, 4, 8), lambda d: 1e-5 * (10 * d + 3)))
    assert c.outcome == "INCONCLUSIVE" and "fewer than 5 points" in c.text
    c = check(sweep((2, 3, 4, 5, 6), lambda d: 1e-5 * (10 * d + 3)))
    assert c.outcome == "INCONCLUSIVE" and "range under 8×" in c.text


def test_a_work_bound_sweep_cannot_decide_a_claim_about_depth():
    df = sweep(DEPTHS, lambda d: 1e-3 * d, span=lambda d: 5, work=lambda d: 1e6 * d)
    c = check(df)
    assert c.outcome == "INCONCLUSIVE" and "not latency-bound here" in c.text


def test_a_noisy_sweep_with_a_wide_interval_cannot_decide():
    c = check(sweep(DEPTHS, lambda d: 1e-5 * (10 * d + 3), noise=0.5))
    assert c.outcome == "INCONCLUSIVE" and "interval wider than ±0.15" in c.text


def test_no_latency_sweep_at_all_cannot_decide():
    c = check(sweep(DEPTHS, lambda d: 1e-5 * (10 * d + 3), regime="work"))
    assert c.outcome == "INCONCLUSIVE" and "no latency-bound sweep" in c.text


def test_the_claim_fails_if_any_sweep_fails_and_passes_only_if_all_pass():
    good = check(sweep(DEPTHS, lambda d: 1e-5 * (10 * d + 3)))
    bad = check(sweep(DEPTHS, lambda d: 1e-6 * d**2))
    unsure = check(sweep((1, 2, 4), lambda d: 1e-5 * d))
    assert time_verdict("C8", [good, good], "span_ops", "x").verdict == "PASS"
    assert time_verdict("C8", [good, bad, unsure], "span_ops", "x").verdict == "FAIL"
    v = time_verdict("C8", [good, unsure], "span_ops", "x")
    assert v.verdict == "INCONCLUSIVE" and "fewer than 5 points" in v.measured
    assert time_verdict("C8", [], "span_ops", "x").verdict == "INCONCLUSIVE"


def test_frames_from_empty_runs_are_inconclusive():
    assert check(frame([])).outcome == "INCONCLUSIVE"
    assert isinstance(fits.fit(frame([])), pd.DataFrame)


def test_an_interval_across_an_edge_of_the_tolerance_band_cannot_decide():
    """Decided by the whole 95% interval: inside the band PASS, outside FAIL, across an edge
    INCONCLUSIVE, whichever side of the edge its middle falls."""
    assert against_tolerance(0.95, 0.05, 1.0)[0] == "PASS"
    assert against_tolerance(0.60, 0.10, 1.0)[0] == "FAIL"
    assert against_tolerance(1.40, 0.10, 1.0)[0] == "FAIL"
    for middle in (0.84, 0.86):  # a point estimate would call these FAIL and PASS
        outcome, why = against_tolerance(middle, 0.05, 1.0)
        assert outcome == "INCONCLUSIVE" and "straddles the edge of 1.00 ± 0.15" in why
