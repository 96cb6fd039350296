"""Scaling fits and claims derived from measurements, on rows whose answer is known."""

import math

import numpy as np
import pandas as pd
import pytest

from bench import fits
from bench.store import COLUMNS


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


def test_a_latency_bound_sweep_follows_the_span_not_the_work():
    df = pixelcnn_rows(lambda side, depth: 10 * depth + 3)
    table = fits.fit(df).set_index("axis")
    over_d = table.loc["depth"]
    assert over_d.seed_exponent == pytest.approx(1.0)  # the seed's d
    assert over_d.work_exponent == pytest.approx(1.0)
    depths = [int(d) for d in over_d.axis_values.split()]
    expected = np.polyfit(np.log(depths), np.log([10 * d + 3 for d in depths]), 1)[0]
    assert over_d.slope == pytest.approx(expected)  # 10·d + 3, not quite ∝ d
    assert over_d.span_exponent == pytest.approx(expected)
    over_hw = table.loc["hw"]
    assert over_hw.axis_values == "64 256 1024" and over_hw.axis_range == 16
    assert over_hw.slope == pytest.approx(0.0, abs=1e-9)
    assert over_hw.work_exponent == pytest.approx(1.0)  # work ∝ H·W
    assert over_hw.slope_follows == "follows span = seed"  # both are flat in H·W
    assert (table.bound == "latency-bound").all() and (table.span_share > 0.99).all()


def test_brent_fit_recovers_the_work_and_depth_constants():
    rows = pixelcnn_rows(lambda side, depth: 10 * depth)
    rows["time_median_s"] = 2e-9 * rows.work_flops + 5e-4 * rows.span_ops
    b = fits.brent_fit(rows)
    assert b["a_s_per_flop"] == pytest.approx(2e-9, rel=1e-6)
    assert b["b_s_per_step"] == pytest.approx(5e-4, rel=1e-6)
    assert b["r2"] == pytest.approx(1.0)


def test_a_work_bound_sweep_is_called_so():
    rows = pixelcnn_rows(lambda side, depth: 10 * depth)
    rows["time_median_s"] = 1e-6 * rows.work_flops + 1e-9 * rows.span_ops
    table = fits.fit(rows).set_index("axis")
    assert (table.bound == "work-bound").all()
    assert table.loc["hw"].slope_follows == "follows work"


def test_rows_without_structural_counts_are_missing_not_a_crash():
    df = pixelcnn_rows(lambda side, depth: 10 * depth + 3)
    df["span_ops"] = pd.NA
    df["work_flops"] = pd.NA
    df["seq_steps_pred"] = pd.NA
    table = fits.fit(df)
    assert set(table.axis) == {"depth", "hw"}
    assert "brent_span_r2" not in table  # no counts: no two-term fit
    assert set(table.slope_follows) == {"no prediction (counts missing)"}
    assert table.span_share.isna().all() and set(table.bound) == {""}


# --- The growth model: t = c + a·work + b·depth, decided by nested fits ------------------------

PIXELS = np.array([6, 8, 12, 16, 24, 32, 48, 64, 96.0]) ** 2
STEPS = 2 * PIXELS
WORK = 50 * PIXELS**1.3  # grows apart from the steps: the two terms can be told apart


def rounds_of(times, noise=0.03, rounds=12, seed=1):
    """Per-round times of each point: ``times`` with relative noise, ``rounds`` columns."""
    rng = np.random.default_rng(seed)
    return np.asarray(times)[:, None] * (1 + noise * rng.standard_normal((len(times), rounds)))


def growth(times, work=WORK, steps=STEPS, **kwargs):
    return fits.growth_model(work, steps, rounds_of(times, **kwargs), x=PIXELS)


@pytest.mark.parametrize("c", [0.0, 10e-6, 150e-6, 1e-3])
def test_time_that_is_a_fixed_cost_plus_a_cost_per_step_follows_the_steps(c):
    m = growth(c + 0.6e-6 * STEPS)
    assert m["follows"] == "steps" and m["share_depth"] == 1.0
    assert m["b_s_per_step"] == pytest.approx(0.6e-6, rel=0.05)
    assert m["c_s"] == pytest.approx(c, rel=0.1, abs=2e-6)
    assert m["b_lo"] <= 0.6e-6 <= m["b_hi"]


def test_time_that_grows_with_the_work_at_constant_steps_follows_the_work():
    m = growth(50e-6 + 1e-9 * WORK, steps=np.full_like(PIXELS, 100))
    assert m["follows"] == "work" and m["share_work"] == 1.0
    assert m["a_s_per_flop"] == pytest.approx(1e-9, rel=0.05)


def test_a_constant_time_is_a_fixed_cost():
    m = growth(np.full_like(PIXELS, 50e-6))
    assert m["follows"] == "fixed" and -0.1 <= m["growth_lo"] <= m["growth_hi"] <= 0.1


def test_noise_alone_is_undecided():
    m = growth(np.full_like(PIXELS, 50e-6), noise=0.5)
    assert m["follows"] == "undecided"


def test_both_terms_are_kept_with_their_shares_of_the_growth():
    m = growth(50e-6 + 0.3e-6 * STEPS + 0.5e-9 * WORK)
    assert m["follows"] == "steps+work"
    rise = lambda v: v[-1] - v[0]  # noqa: E731
    expected = 0.3e-6 * rise(STEPS) / (0.3e-6 * rise(STEPS) + 0.5e-9 * rise(WORK))
    assert m["share_depth"] == pytest.approx(expected, abs=0.1)
    assert m["share_depth"] + m["share_work"] == pytest.approx(1.0)


def test_work_proportional_to_the_steps_is_not_identifiable_whatever_the_time_follows():
    # time that follows the steps and time that follows the work are the same data here
    for times in (50e-6 + 0.3e-6 * STEPS, 50e-6 + 0.1e-6 * (3 * STEPS + 7)):
        m = growth(times, work=3 * STEPS + 7)
        assert m["follows"] == "not identifiable" and m["collinear"] == "work ∝ steps"
        assert m["kept"] == ""


def test_a_sweep_timed_back_to_back_has_no_rounds_and_cannot_decide():
    m = fits.growth_model(WORK, STEPS, (50e-6 + 0.6e-6 * STEPS)[:, None], x=PIXELS)
    assert m["follows"] == "undecided" and m["rounds"] == 1


def test_the_candidate_shapes_pick_the_one_that_generated_the_times():
    table = fits.shape_table(PIXELS, 30e-6 + 1.3e-6 * PIXELS).set_index("shape")
    assert table.delta_bic.idxmin() == "n" and table.delta_bic.drop("n").min() > 6
    table = fits.shape_table(PIXELS, 30e-6 + 2e-6 * np.sqrt(PIXELS)).set_index("shape")
    assert table.delta_bic.idxmin() == "√n"
