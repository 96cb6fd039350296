"""The wall-time judge (bench/judge.py): t = c_v + a·work + b·count fitted jointly over a
design's latency points, the claim's count against rivals fixed in advance. Fed data that must
make it come out each way: a rule that no data could make FAIL is a defect."""

import math

import numpy as np
import pytest

from bench import judge
from bench.judge import Count, WallTimeSpec, column
from tests.bench.synthetic import grid_design, grid_steps, grid_time, judged

RASTER = Count("raster H·W·d", "H·W·d", lambda r: (r.height * r.width * r.depth).to_numpy(float))
SPEC = WallTimeSpec(
    "C0", "toy", "forward", ("raster", "wavefront"), column("steps", "steps_executed"),
    rivals=(RASTER,), what="the toy schedules",
)  # fmt: skip


def verdict(design, time_of, spec=SPEC, **kwargs):
    return judge.judge(spec, *judged(design, time_of, **kwargs), boot=100)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_time_that_follows_the_claims_count_passes(seed):
    v, f = verdict(grid_design(), grid_time(), seed=seed)
    assert v == "PASS", f
    assert f["reason"] == "beats every rival"
    assert f["b_s_per_step"] == pytest.approx(500e-9, rel=0.05)
    assert f["a_s_per_flop"] == pytest.approx(0.3e-9, rel=0.05)
    assert f["b_ci"][0] < f["b_s_per_step"] < f["b_ci"][1]
    assert all(f["ratio_ci"][r][0] > 1 for r in f["rivals"])
    assert f["error"]["steps"] < 0.05


def test_a_rival_that_does_not_fit_either_refutes_nothing():
    rng = np.random.default_rng(5)
    design = grid_design()
    off = {id(p): 1 + 1.5 * rng.random() for p in design}  # every model misses by ~40%
    v, f = verdict(design, lambda p: grid_time()(p) * off[id(p)])
    assert v == "INCONCLUSIVE" and f["open"] == ["lack of fit"]
    assert min(f["error"].values()) > judge.LOF_MAX


def test_time_that_follows_the_work_alone_fails_on_a_design_that_separates_them():
    v, f = verdict(grid_design(), grid_time(a=1e-9, b=0.0))
    assert v == "FAIL" and f["reason"] in ("no share", "beaten")
    assert f["vif"] < judge.VIF_MAX  # the design could tell them apart


def test_time_that_follows_the_work_alone_is_not_identifiable_where_work_and_steps_grow_together():
    raster_only = grid_design(
        variants=("raster",), sizes=[(h, 2, 2) for h in (6, 8, 12, 16, 24, 32, 48, 64)]
    )
    v, f = verdict(raster_only, grid_time(a=1e-9, b=0.0))
    assert v == "INCONCLUSIVE" and f["reason"] == "not identifiable"
    assert math.isinf(f["vif"]) and "the work" in f["tangled"]
    # ... and so is time that does follow the steps there: the design decides nothing
    v, f = verdict(raster_only, grid_time())
    assert v == "INCONCLUSIVE" and f["reason"] == "not identifiable"


def test_time_that_follows_a_rival_count_fails():
    v, f = verdict(grid_design(), grid_time(steps=lambda v, h, d: h * h * d))
    assert v == "FAIL" and f["beaten_by"] == ["raster H·W·d"]
    assert f["ratio_ci"]["raster H·W·d"][1] < 1


@pytest.mark.parametrize(
    "shape, rival",
    [(lambda s: 20 * np.sqrt(s), "√steps"), (lambda s: 0.005 * s**2, "steps²")],
    ids=["sqrt", "square"],
)
def test_time_that_grows_as_another_power_of_the_count_does_not_pass(shape, rival):
    time_of = grid_time(steps=lambda v, h, d: shape(grid_steps(v, h, d)))
    v, f = verdict(grid_design(), time_of)
    assert v == "FAIL" and rival in f["beaten_by"]


def test_flat_time_fails():
    v, f = verdict(grid_design(), lambda p: 50e-6)
    assert v == "FAIL" and f["share_ci"][1] < judge.MIN_SHARE


def test_noise_is_inconclusive():
    v, f = verdict(grid_design(), grid_time(), noise=1.0, round_noise=0.3)
    assert v == "INCONCLUSIVE" and f["reason"] == "open"
    assert f["open"] == ["lack of fit"]  # at this noise no model predicts within the bound
    v, f = verdict(grid_design(), grid_time(b=100e-9), noise=0.4, round_noise=0.3)
    assert v == "INCONCLUSIVE" and "noise" in f["open"], f


def test_a_count_that_misses_every_point_by_more_than_the_lack_of_fit_bound_cannot_pass():
    rng = np.random.default_rng(5)
    design = grid_design()
    off = {id(p): 1 + 0.6 * rng.random() for p in design}  # systematic, the same every round
    v, f = verdict(design, lambda p: grid_time()(p) * off[id(p)])
    assert v != "PASS"
    assert f["error"]["steps"] > judge.LOF_MAX


def test_a_win_by_less_than_the_margin_is_inconclusive():
    # time half the claim's count, half the rival's, at a small cost per step: the claim's
    # still wins, by ~1.15×
    mix = lambda v, h, d: 0.5 * grid_steps(v, h, d) + 0.5 * h * h * d  # noqa: E731
    v, f = verdict(grid_design(), grid_time(b=100e-9, steps=mix), noise=0.01)
    assert v == "INCONCLUSIVE" and "margin" in f["open"], f
    assert 1 < f["ratio_ci"]["raster H·W·d"][0] and f["ratio"]["raster H·W·d"] < judge.MARGIN


def test_too_few_rounds_or_points_cannot_decide():
    v, f = verdict(grid_design(), grid_time(), rounds=3)
    assert v == "INCONCLUSIVE" and f["reason"] == "too few" and f["rounds"] == 3
    assert "--profile cpu" in judge.why(f)
    v, f = verdict(grid_design()[:3] + grid_design()[-3:], grid_time())
    assert v == "INCONCLUSIVE" and f["points"] == 6


def test_a_rival_that_is_the_claims_count_again_cannot_be_told_apart():
    same = Count("twice the steps", "2·steps", lambda r: 2 * r.steps_executed.to_numpy(float))
    spec = WallTimeSpec("C0", "toy", "forward", ("raster", "wavefront"),
                        column("steps", "steps_executed"), rivals=(same,), what="x")  # fmt: skip
    v, f = verdict(grid_design(), grid_time(), spec=spec)
    assert v == "INCONCLUSIVE" and f["tangled"] == ["twice the steps"]


def test_no_latency_point_is_inconclusive_and_says_which_profile_can_decide():
    df, rounds = judged(grid_design(), grid_time())
    v, f = judge.judge(SPEC, df.assign(regime="work"), rounds)
    assert v == "INCONCLUSIVE" and f == {"reason": "no latency points"}
    assert "--profile cpu" in judge.why(f)


def test_the_words_say_the_numbers_that_decided():
    verdict_, facts, measured, statement = judge.wall_time_verdict_parts(
        SPEC, *judged(grid_design(), grid_time()), boot=50
    )
    assert verdict_ == "PASS"
    assert "32 points (raster, wavefront), 12 rounds" in measured
    assert f"b = {facts['b_s_per_step'] * 1e9:.3g} ns per step" in measured
    assert f"steps {facts['error']['steps']:.3f}" in measured
    assert "raster H·W·d" in statement and "nan" not in measured
    rule = judge.rule_text(SPEC)
    for name in ("no count", "raster H·W·d", "√steps", "steps²"):
        assert name in rule


def test_the_fit_is_non_negative_and_weighs_relative_error():
    X = np.array([[1.0, 1.0], [1.0, 2.0], [1.0, 3.0]])
    coef = judge.fit(X, np.array([1.0, 0.5, 0.2]))  # falling: no positive slope explains it
    assert (coef >= 0).all() and coef[1] == 0
    t = 2.0 + 3.0 * X[:, 1]
    assert judge.fit(X, t) == pytest.approx([2.0, 3.0])
    assert judge.held_out(X, t, judge.fit(X, t)) == pytest.approx([0, 0, 0], abs=1e-9)
