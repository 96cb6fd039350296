"""The rule that judges a claim's wall-time half (bench/claims/__init__.py): a latency-regime
sweep timed in interleaved rounds, whose growth is fitted as t = c + a·work + b·depth
(bench.fits.growth_model), with every way it can come out."""

import numpy as np
import pandas as pd
import pytest

from bench import fits
from bench.claims import scaling_check, time_verdict
from bench.store import SAMPLE_COLUMNS
from bench.workloads import IDENTITY
from tests.bench.test_fits import frame

DEPTHS = (1, 2, 4, 8, 16, 32, 64)
SIDES = (4, 6, 8, 12, 16, 24, 32, 48, 64)


def sweep(points, time_of, *, axis="depth", regime="latency", noise=0.02, rounds=12,
          span=lambda d, n: 10 * d + 3, work=lambda d, n: 1e3 * d * n, seed=0):  # fmt: skip
    """PixelCNN training rows over d (at 8×8) or over H = W (at d = 2), each timed in
    ``rounds`` rounds with relative noise ``noise``; ``time_of(d, n)`` in seconds, n = H·W.
    Returns ``(measurements, samples)``."""
    rng = np.random.default_rng(seed)
    rows, samples = [], []
    for p in points:
        d, side = (p, 8) if axis == "depth" else (2, p)
        n = side * side
        times = time_of(d, n) * (1 + noise * rng.standard_normal(rounds))
        row = dict(suite="pixelcnn", model="pixelcnn", variant="masked", mode="train", batch=1,
                   depth=d, height=side, width=side, regime=regime, status="ok",
                   time_median_s=float(np.median(times)), span_ops=span(d, n), steps_executed=0,
                   work_flops=work(d, n), repeats=rounds, rounds=rounds)  # fmt: skip
        rows.append(row)
        samples += [
            {**{k: row.get(k) for k in IDENTITY}, "repeat": r, "round": r, "time_s": t}
            for r, t in enumerate(times)
        ]
    table = pd.DataFrame(samples, columns=list(SAMPLE_COLUMNS))
    return frame(rows), table.astype({c: t for c, t in SAMPLE_COLUMNS.items()})


def check(data, axis="depth"):
    df, samples = data
    return scaling_check(
        fits.fit(df, samples), suite="pixelcnn", variant="masked", mode="train", axis=axis,
        measure="span_ops",
    )  # fmt: skip


@pytest.mark.parametrize("c", [0.0, 10e-6, 150e-6, 1e-3])
def test_time_that_follows_the_span_over_a_fixed_cost_passes_whatever_the_fixed_cost(c):
    # a log-log slope read the last two as "grows too slowly"
    found = check(sweep(DEPTHS, lambda d, n: c + 0.6e-6 * (10 * d + 3), work=lambda d, n: 1e3))
    assert found.outcome == "PASS", found.text
    assert found.facts["follows"] == "span"
    assert abs(found.facts["c_us"] - c * 1e6) < 0.05 * c * 1e6 + 1.0
    assert abs(found.facts["b_ns_per_step"] - 600) < 30


def test_time_that_does_not_grow_while_the_span_does_fails():
    found = check(sweep(DEPTHS, lambda d, n: 200e-6))
    assert found.outcome == "FAIL" and found.facts["follows"] == "fixed"


def test_a_work_bound_sweep_is_shown_not_judged():
    found = check(
        sweep(DEPTHS, lambda d, n: 50e-6 + 1e-9 * 1e3 * d**2, work=lambda d, n: 1e3 * d**2)
    )
    assert found.outcome == "SHOWN" and found.facts["follows"] == "work"
    assert time_verdict("C8", [found], "span_ops", "x").verdict == "INCONCLUSIVE"


def test_noise_without_growth_cannot_decide():
    found = check(sweep(DEPTHS, lambda d, n: 200e-6, noise=0.6))
    assert found.outcome == "INCONCLUSIVE" and found.facts["follows"] == "undecided"


def test_too_few_points_or_no_interleaved_rounds_cannot_decide():
    found = check(sweep((1, 2, 4, 8, 16), lambda d, n: 0.6e-6 * (10 * d + 3)))
    assert found.outcome == "INCONCLUSIVE" and found.facts["points"] == 5
    found = check(sweep(DEPTHS, lambda d, n: 0.6e-6 * (10 * d + 3), rounds=1))
    assert found.outcome == "INCONCLUSIVE" and found.facts["rounds"] == 1


def test_a_span_that_grows_less_than_the_minimum_range_is_shown_not_judged():
    found = check(sweep((2, 3, 4, 5, 6, 7), lambda d, n: 0.6e-6 * (10 * d + 3)))
    assert found.outcome == "SHOWN" and found.facts["depth_range"] < 8


def test_over_a_flat_span_no_growth_or_the_works_passes_and_faster_growth_fails():
    flat = dict(axis="hw", span=lambda d, n: 38, work=lambda d, n: 1e3 * n)
    found = check(sweep(SIDES, lambda d, n: 150e-6, **flat), axis="hw")
    assert found.outcome == "PASS" and found.facts["follows"] == "fixed"
    found = check(sweep(SIDES, lambda d, n: 150e-6 + 1e-7 * n, **flat), axis="hw")
    assert found.outcome == "PASS" and found.facts["follows"] == "work"
    found = check(sweep(SIDES, lambda d, n: 150e-6 + 1e-10 * n**2, **flat), axis="hw")
    assert found.outcome == "FAIL" and found.facts["shape_best"] == "n²"


def test_no_latency_sweep_at_all_cannot_decide():
    found = check(sweep(DEPTHS, lambda d, n: 0.6e-6 * (10 * d + 3), regime="work"))
    assert found.outcome == "INCONCLUSIVE" and found.facts == {"reason": "no latency sweep"}


def test_the_claim_fails_if_any_sweep_fails_and_passes_only_if_every_judged_one_passes():
    good = check(sweep(DEPTHS, lambda d, n: 100e-6 + 0.6e-6 * (10 * d + 3)))
    bad = check(sweep(DEPTHS, lambda d, n: 200e-6))
    unsure = check(sweep((1, 2, 4), lambda d, n: 1e-5 * d))
    shown = check(sweep((2, 3, 4, 5, 6, 7), lambda d, n: 0.6e-6 * (10 * d + 3)))
    assert time_verdict("C8", [good, good, shown], "span_ops", "x").verdict == "PASS"
    assert time_verdict("C8", [good, bad, unsure], "span_ops", "x").verdict == "FAIL"
    assert time_verdict("C8", [good, unsure], "span_ops", "x").verdict == "INCONCLUSIVE"
    assert time_verdict("C8", [shown], "span_ops", "x").verdict == "INCONCLUSIVE"
    assert time_verdict("C8", [], "span_ops", "x").verdict == "INCONCLUSIVE"


def test_frames_from_empty_runs_are_inconclusive():
    assert check((frame([]), None)).outcome == "INCONCLUSIVE"
    assert isinstance(fits.fit(frame([])), pd.DataFrame)


def test_a_flat_span_sweep_reads_every_shape_near_the_best_even_with_a_space_in_its_name():
    flat = dict(axis="hw", span=lambda d, n: 38, work=lambda d, n: 1e3 * n)
    found = check(sweep(SIDES, lambda d, n: 150e-6 + 2e-8 * n * np.log(n), **flat), axis="hw")
    assert "n·log n" in found.facts["shapes_near"] and found.outcome in ("PASS", "INCONCLUSIVE")
