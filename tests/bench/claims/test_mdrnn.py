"""C11's wall-time half and C12 (bench/claims/mdrnn.py), on rows whose answer is known."""

import math

import numpy as np
import pandas as pd
import pytest

from bench import fits
from bench.claims import derived, wall_time
from bench.claims.mdrnn import (
    C11_TIME,
    _ttq_ratio,
    c10_verdict,
    c11_readings,
    c11_verdict,
    c12_time,
    c12_time_to_quality,
    c12_training_parallelism,
)
from models import mdrnn
from tests.bench.synthetic import cost, judged, mdrnn_design, pixelcnn_train_design
from tests.bench.test_fits import frame

SIDES = (4, 8, 16)


def matched(pix_span, pix_time, mdrnn_span, mdrnn_time, *, regime="latency", iqr=0.01):
    """Train rows of PixelCNN and each MDRNN schedule at equal batch, width, depth, sizes."""
    rows = []
    for side in SIDES:
        base = dict(mode="train", batch=1, hidden=2, depth=2, height=side, width=side,
                    regime=regime, status="ok")  # fmt: skip
        rows.append(
            dict(base, suite="pixelcnn", model="pixelcnn", variant="masked",
                 span_ops=pix_span(side), time_median_s=pix_time(side),
                 time_iqr_s=iqr * pix_time(side))
        )  # fmt: skip
        for schedule in ("raster", "wavefront", "pipelined"):
            rows.append(
                dict(base, suite="mdrnn", model="mdrnn-lstm", variant=schedule,
                     span_ops=mdrnn_span(side), time_median_s=mdrnn_time(side),
                     time_iqr_s=iqr * mdrnn_time(side))
            )  # fmt: skip
    return frame(rows)


def deeper(side):  # (H+W-1)·d steps of ~7 ops
    return 7 * (2 * side - 1) * 2


def c12(df, run_dir=None):
    return c12_training_parallelism(df, fits.fit(df), run_dir)


def c12_time_of(df, rounds):
    return c12_time(df, rounds)


MATCHED = [(side, 2, 2) for side in SIDES]


def both_trained(pix_b, mdrnn_b, **kwargs):
    """PixelCNN's C8 design and the MDRNN's train steps at the matched sizes, timed together:
    each t = 20 µs + 0.3 ns·work + b·span."""
    design = pixelcnn_train_design() + mdrnn_design("train", MATCHED)
    return judged(
        design, lambda p: cost(b=pix_b if p["suite"] == "pixelcnn" else mdrnn_b)(p), **kwargs
    )


def test_c12_time_passes_when_the_mdrnn_spends_more_on_its_steps_at_every_matched_size():
    v = c12_time_of(*both_trained(pix_b=100e-9, mdrnn_b=500e-9))
    assert v.verdict == "PASS", v.measured
    assert v.measure == "wall time attributed to sequential steps (latency regime)"
    assert {(p["schedule"], p["side"]) for p in v.facts["pairs"]} == {
        (s, side) for s in ("raster", "wavefront", "pipelined") for side in SIDES
    }
    assert all(p["lo"] > 1 for p in v.facts["pairs"])


def test_c12_time_fails_when_the_mdrnn_spends_less_on_its_steps():
    v = c12_time_of(*both_trained(pix_b=5e-6, mdrnn_b=20e-9))
    assert v.verdict == "FAIL", v.measured
    assert any(p["hi"] < 1 for p in v.facts["pairs"])


def test_c12_time_cannot_decide_without_rounds_or_with_a_design_that_cannot_separate():
    df, _ = both_trained(pix_b=100e-9, mdrnn_b=500e-9)
    v = c12_time_of(df, {})
    assert v.verdict == "INCONCLUSIVE" and "blocked" in v.facts
    raster = [p for p in mdrnn_design("train", MATCHED) if p["variant"] == "raster"]
    v = c12_time_of(*judged(pixelcnn_train_design() + raster, cost()))
    assert v.verdict == "INCONCLUSIVE" and "MDRNN: not identifiable" in v.statement


def test_c12_passes_on_the_span_when_the_mdrnn_is_deeper_the_larger_the_image():
    structure, _ = c12(matched(lambda s: 41, lambda s: 1e-4, deeper, lambda s: 2e-6 * deeper(s)))
    assert structure.verdict == "PASS" and structure.facts["groups"]
    for group in structure.facts["groups"]:
        assert group["heights"] == [4, 8, 16] and group["deeper_and_growing"]


def test_c12_fails_on_the_span_when_the_mdrnn_is_shallower():
    structure, _ = c12(matched(lambda s: 41, lambda s: 1e-4, lambda s: 5, lambda s: 2e-4))
    assert structure.verdict == "FAIL"


def test_c12_needs_three_matched_sizes():
    df = matched(lambda s: 41, lambda s: 1e-4, deeper, lambda s: 2e-4)
    structure, _ = c12(df[df.height != 16])
    assert structure.verdict == "INCONCLUSIVE"
    assert c12_training_parallelism(frame([]), fits.fit(frame([]))) == []


def test_c11_wall_time_passes_when_each_schedule_follows_its_own_steps():
    (v,) = wall_time(C11_TIME, *judged(mdrnn_design(), cost(count=lambda p: p["steps_executed"])))
    assert v.verdict == "PASS", v.measured
    assert v.measure == "wall time vs steps (latency regime)"


def test_c11_wall_time_fails_when_every_schedule_takes_the_rasters_time():
    raster = cost(count=lambda p: p["height"] * p["width"] * p["depth"])
    (v,) = wall_time(C11_TIME, *judged(mdrnn_design(), raster))
    assert v.verdict == "FAIL" and "raster H·W·d" in v.facts["beaten_by"], v.measured


def test_c11_wall_time_is_inconclusive_without_latency_points():
    df, rounds = judged(mdrnn_design(), cost())
    (c11,) = [d for d in derived() if d.claims == ("C11",)]  # as wall_time_claim registered it
    (v,) = c11.judge(df.assign(regime="work"), fits.fit(df))
    assert v.verdict == "INCONCLUSIVE" and v.facts["reason"] == "no latency points"


# --- C10 and C11: the rules, on numbers that make them come out each way ---------------------

EXPONENTS = {"d": 1.0, "H": 1.0, "W": 1.0, "k": 2.0}  # the count's
SEED = {"d": 0.0, "H": 0.0, "W": 1.0, "k": 2.0}  # the seed's O(d + W·k²) at large sizes


def test_c10_corrects_the_seed_when_the_count_grows_otherwise():
    v = c10_verdict(0, 10, [(5, 5)], EXPONENTS, SEED, "10 configs")
    assert v.verdict == "CORRECTED" and v.facts["seed_wrong"] and v.facts["mismatches"] == 0


def test_c10_passes_when_the_count_grows_as_the_seed_says():
    assert c10_verdict(0, 10, [(5, 5)], SEED, SEED, "10 configs").verdict == "PASS"


def test_c10_fails_when_the_closed_form_misses_the_count_or_the_traced_macs():
    assert c10_verdict(2, 10, [(5, 5)], EXPONENTS, SEED, "10").verdict == "FAIL"
    assert c10_verdict(0, 10, [(5, 6)], EXPONENTS, SEED, "10").verdict == "FAIL"


def steps_rows(grids, executed=lambda s, H, W, d: (H + W - 1) * d, formula=None):
    """Traced wavefront rows; the formula is the wavefront's unless given."""
    formula = formula or (lambda s, H, W, d: (H + W - 1) * d)
    return [
        (s, H, W, d, executed(s, H, W, d), executed(s, H, W, d) - 1, formula(s, H, W, d))
        for s in ("wavefront",)
        for H, W in grids
        for d in (1, 2, 4)
    ]


SQUARES = [(4, 4), (8, 8), (16, 16)]
THIN = [(2, 16), (1, 32)]


def test_c11_holds_on_square_images_and_is_corrected_on_thin_grids():
    v = c11_verdict(steps_rows(SQUARES + THIN))
    assert v.verdict == "CORRECTED" and v.slip == "mathematical error"
    readings = c11_readings(steps_rows(SQUARES + THIN))
    assert abs(readings["square_side"] - 1) <= 0.15 and readings["square_depth"] == 1.0
    assert readings["aspect"] > 0.4  # (W/H)^½ for thin grids
    # the two depth measures, side by side: the span crosses fewer steps than execute
    assert v.facts["largest"]["on_span"] < v.facts["largest"]["executed"]


def test_c11_passes_when_the_steps_stay_within_a_constant_of_root_hw_on_every_shape():
    def root(s, H, W, d):
        return round(2 * math.sqrt(H * W)) * d

    assert c11_verdict(steps_rows(SQUARES + THIN, root, root)).verdict == "PASS"


def test_c11_squares_alone_cannot_judge_other_shapes_nor_thin_grids_alone_squares():
    assert c11_verdict(steps_rows(SQUARES)).verdict == "INCONCLUSIVE"
    assert c11_verdict(steps_rows([(4, 4), (8, 8)] + THIN)).verdict == "INCONCLUSIVE"


def test_c11_fails_when_the_steps_on_squares_grow_otherwise():
    def area(s, H, W, d):
        return H * W * d

    assert c11_verdict(steps_rows(SQUARES + THIN, area, area)).verdict == "FAIL"


def test_c11_fails_when_a_program_executes_other_steps():
    rows = steps_rows(SQUARES + THIN, executed=lambda s, H, W, d: H * W * d)
    assert c11_verdict(rows).verdict == "FAIL"


# --- C12 on trained models: steps to the target × time per step ------------------------------


def summary(steps=(250, 240, 260), mdrnn_steps=(300, 290, 310), step_ms=None, **family):
    """trained_summary.csv rows: PixelCNN and the MDRNN's three schedules, one step count for
    the MDRNN (its schedules compute one function), a time per step for each program."""
    step_ms = step_ms or {"pixelcnn": 2.0, "raster": 5.0, "wavefront": 7.0, "pipelined": 9.0}
    rows = []
    for model, seeds in (("pixelcnn", steps), ("mdrnn", mdrnn_steps)):
        reached = [s for s in seeds if s >= 0]
        mean = np.mean(reached) if len(reached) == len(seeds) else np.nan
        half = 4.303 * np.std(seeds, ddof=1) / np.sqrt(len(seeds)) if len(seeds) > 1 else np.inf
        row = dict(
            trained_as=model,
            best_lr=1e-2,
            lrs="0.003 0.01 0.03",
            bracketed=True,
            seeds=len(seeds),
            seeds_at_target=len(reached),
            steps_to_target=mean,
            steps_lo=mean - half,
            steps_hi=mean + half,
            resolution=10,
            time_per_step_rel_iqr=0.05,
            train_span_ops=40 if model == "pixelcnn" else 500,
        )
        row.update(family.get(model, {}))  # fmt: skip
        names = ["pixelcnn"] if model == "pixelcnn" else [f"mdrnn-{s}" for s in mdrnn.SCHEDULES]
        for name in names:
            ms = step_ms[name.removeprefix("mdrnn-")]
            rows.append(dict(row, model=name, time_per_step_s=ms / 1e3))
    return pd.DataFrame(rows)


def test_c12_time_to_quality_passes_when_pixelcnn_is_sooner_on_a_faster_step():
    v = c12_time_to_quality(summary())
    assert v.verdict == "PASS", v.measured
    assert v.facts["steps_ratio"] == pytest.approx(1.2)
    assert v.facts["ratios"]["mdrnn-raster"]["p"] == pytest.approx(2.5)  # 5 ms / 2 ms


def test_c12_time_to_quality_fails_when_an_mdrnn_schedule_is_sooner_on_a_faster_step():
    fast = {"pixelcnn": 8.0, "raster": 2.0, "wavefront": 9.0, "pipelined": 9.0}
    v = c12_time_to_quality(summary(step_ms=fast))
    assert v.verdict == "FAIL" and v.facts["sooner"] == ["mdrnn-raster"]


def test_c12_time_to_quality_cannot_decide_when_the_lead_is_only_fewer_steps():
    # PixelCNN needs a third of the steps, but the raster step is no slower than its own.
    same = {"pixelcnn": 5.0, "raster": 5.0, "wavefront": 7.0, "pipelined": 9.0}
    v = c12_time_to_quality(summary(steps=(100, 95, 105), step_ms=same))
    assert v.verdict == "INCONCLUSIVE"
    assert v.facts["reason"] == "PixelCNN sooner by its steps alone"
    # ... and the other way round: the MDRNN sooner by its steps, on a slower step.
    v = c12_time_to_quality(summary(steps=(900, 890, 910), mdrnn_steps=(100, 95, 105)))
    assert v.verdict == "INCONCLUSIVE" and v.facts["reason"] == "MDRNN sooner by its steps alone"


def test_c12_time_to_quality_cannot_decide_overlapping_intervals():
    # Seeds spread widely: the intervals of S overlap although the step is 2.5× slower.
    v = c12_time_to_quality(summary(steps=(150, 450, 300), mdrnn_steps=(100, 400, 250)))
    assert v.verdict == "INCONCLUSIVE" and v.facts["reason"] == "overlap"


def test_c12_time_to_quality_cannot_decide_a_missed_target_few_seeds_an_edge_or_coarse_steps():
    v = c12_time_to_quality(summary(mdrnn_steps=(300, -1, 310)))
    assert v.verdict == "INCONCLUSIVE" and v.facts["reason"] == "missed"
    assert v.facts["missed"] == ["mdrnn"]
    v = c12_time_to_quality(summary(steps=(250, 240)))
    assert v.verdict == "INCONCLUSIVE" and v.facts["reason"] == "few"
    assert v.facts["few"] == ["pixelcnn"]
    v = c12_time_to_quality(summary(pixelcnn=dict(bracketed=False)))
    assert v.verdict == "INCONCLUSIVE" and v.facts["edge"] == ["pixelcnn"]
    v = c12_time_to_quality(summary(mdrnn=dict(resolution=50)))
    assert v.verdict == "INCONCLUSIVE" and v.facts["coarse"] == ["mdrnn"]


def test_c12_time_to_quality_ratio_interval_is_the_ends_of_the_step_intervals_times_the_noise():
    pix = pd.Series(
        dict(
            steps_to_target=200.0,
            steps_lo=180.0,
            steps_hi=220.0,
            time_per_step_s=2e-3,
            time_per_step_rel_iqr=0.05,
        )
    )
    md = pd.Series(dict(steps_to_target=300.0, steps_lo=250.0, steps_hi=350.0,
                        time_per_step_s=5e-3, time_per_step_rel_iqr=0.05))  # fmt: skip
    x = _ttq_ratio(md, pix)
    assert x["r"] == pytest.approx(1.5 * 2.5) and x["p"] == pytest.approx(2.5)
    assert x["low"] == pytest.approx(250 / 220 * 2.5 / 1.1)
    assert x["high"] == pytest.approx(350 / 180 * 2.5 * 1.1)
