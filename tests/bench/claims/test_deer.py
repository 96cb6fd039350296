"""C13's rules (bench/claims/deer.py), fed data that makes each come out each way, and the
traced sweep itself: one loop step per Newton iteration, quasi-DEER's work quadratic in H."""

import math

import numpy as np
import pandas as pd
import pytest

from bench.claims import deer
from bench.claims.deer import judge_iterations, judge_span, judge_wall_time, judge_work
from bench.suites.deer import crossover, outcome, speedups

SEQ_LENS = (256, 1024, 4096, 16384)
HIDDENS = (16, 32, 64)
TRIPS = (1, 2, 4, 8)


def structure_rows(span=None, steps=None, work=None) -> list[dict]:
    """Rows as ``deer.structure_sweep`` writes them, from formulas of (variant, T, H, k)."""
    span = span or (lambda v, t, h, k: k * (5 * math.log2(t) + 20) + 1)
    steps = steps or (lambda v, t, h, k: k)
    power = {"deer": 3, "quasi-deer": 1}
    work = work or (lambda v, t, h, k: k * t * h ** power[v] + 10 * t)
    rows = []
    for v in deer.PARALLEL:
        points = [("T", t, 8, 5) for t in SEQ_LENS] + [("H", 1024, h, 5) for h in HIDDENS]
        points += [("k", 1024, 8, k) for k in TRIPS]
        for sweep, t, h, k in points:
            rows.append(
                dict(sweep=sweep, variant=v, batch=1, seq_len=t, hidden=h, k=k,
                     span_ops=span(v, t, h, k), steps_executed=steps(v, t, h, k),
                     work_flops=work(v, t, h, k))
            )  # fmt: skip
    return rows


def test_span_passes_when_each_iteration_is_one_step_of_log_depth():
    v = judge_span(structure_rows())
    assert v.verdict == "PASS", v.measured
    for fit in v.facts["fits"].values():  # span/k = 5·log2 T + 20 + 1/k, at k = 5
        assert fit["per_log_t"] == pytest.approx(5) and fit["residual_t"] < deer.SPAN_RESIDUAL
        assert fit["at_log_t_0"] == pytest.approx(20.2) and fit["wrong_steps"] == 0


def test_span_fails_when_the_steps_are_not_the_iterations():
    v = judge_span(structure_rows(steps=lambda v, t, h, k: k * int(math.log2(t))))
    assert v.verdict == "FAIL" and v.facts["failures"] == list(deer.PARALLEL)
    assert all(fit["wrong_steps"] > 0 for fit in v.facts["fits"].values())


def test_span_fails_when_an_iteration_grows_with_t_not_log_t():
    assert judge_span(structure_rows(span=lambda v, t, h, k: k * t)).verdict == "FAIL"


def test_span_is_inconclusive_on_a_short_sweep_or_missing_counts():
    rows = [r for r in structure_rows() if r["seq_len"] <= 1024 or r["sweep"] != "T"]
    assert judge_span(rows).verdict == "INCONCLUSIVE"
    missing = structure_rows(span=lambda v, t, h, k: None)
    assert judge_span(missing).verdict == "INCONCLUSIVE"


def test_work_passes_when_deer_is_cubic_and_quasi_deer_linear_in_h():
    v = judge_work(structure_rows())
    assert v.verdict == "PASS" and not v.slip, v.measured


def test_work_is_corrected_when_quasi_deer_is_quadratic_in_h():
    power = {"deer": 3, "quasi-deer": 2}
    v = judge_work(structure_rows(work=lambda v, t, h, k: k * t * h ** power[v]))
    assert v.verdict == "CORRECTED" and v.slip == "mathematical error"
    assert v.facts["exponents"]["quasi-deer"][0] == pytest.approx(2, abs=0.05)


def test_work_fails_when_deer_is_not_cubic_or_not_linear_in_t():
    assert judge_work(structure_rows(work=lambda v, t, h, k: k * t * h**2)).verdict == "FAIL"
    quadratic_in_t = judge_work(structure_rows(work=lambda v, t, h, k: k * t**2 * h**3))
    assert quadratic_in_t.verdict == "FAIL"
    failures = {(v, axis): e for v, axis, e in quadratic_in_t.facts["failures"]}
    assert failures[("DEER", "T")] == failures[("quasi-DEER", "T")] == pytest.approx(2)


def test_work_is_inconclusive_over_too_narrow_a_range_of_h():
    rows = [r for r in structure_rows() if r["sweep"] != "H" or r["hidden"] <= 32]
    assert judge_work(rows).verdict == "INCONCLUSIVE"


def test_the_traced_programs_take_one_loop_step_per_iteration_and_quasi_deer_is_quadratic():
    rows = deer.structure_sweep(dict(deer.STRUCTURE, seq_lens=(256, 4096, 65536)))
    span, work = judge_span(rows), judge_work(rows)
    assert span.verdict == "PASS", span.measured
    # the cells' h·W_h (8H² FLOPs a step) in every iteration: O(k·T·H²), not O(k·T·H)
    assert work.verdict == "CORRECTED", work.measured


# --- from the timed rows --------------------------------------------------------------------


def timed_rows(
    times: dict, *, status=None, iterations=None, seq_min_factor=1.0, limits=None
) -> pd.DataFrame:
    """Measurement rows: ``times[(variant, T, H)]`` = median seconds (fastest repeat the same,
    the sequential scan's scaled by ``seq_min_factor``); k from ``iterations``; the limit
    model's seconds from ``limits[(variant, T, H)]`` or ``limits[variant]`` (default: the
    scan's 1 ms, the variants' 0.1 ms, room for a win)."""
    limits = {"sequential": 1e-3, "deer": 1e-4, "quasi-deer": 1e-4} | (limits or {})
    rows = []
    for (variant, t, h), seconds in times.items():
        state = (status or {}).get((variant, t, h), "ok")
        k = (iterations or {}).get((variant, t, h), 5)
        extra = None if variant == "sequential" else f'{{"newton_iterations": {k}, ' \
            f'"converged": {"true" if state == "ok" else "false"}, "residual": 1e-7}}'  # fmt: skip
        fastest = seconds * (seq_min_factor if variant == "sequential" else 1.0)
        rows.append(
            dict(suite="deer", model="lstm", variant=variant, mode="forward", batch=1,
                 seq_len=t, hidden=h, n_devices=1, status=state,
                 time_median_s=seconds if state == "ok" else None,
                 time_min_s=fastest if state == "ok" else None, extra_json=extra,
                 limit_s=limits.get((variant, t, h), limits[variant]))
        )  # fmt: skip
    return pd.DataFrame(rows)


def grid(seq_s: float, deer_s: float, quasi_s: float, cells=((4096, 4), (4096, 16))) -> dict:
    times = {}
    for t, h in cells:
        times |= {
            ("sequential", t, h): seq_s,
            ("deer", t, h): deer_s,
            ("quasi-deer", t, h): quasi_s,
        }
    return times


def test_speedups_divide_the_sequential_time_and_carry_diverged_cases():
    times = grid(1.0, 4.0, 0.5) | {("deer", 256, 4): 1.0}  # no sequential row at T = 256
    df = timed_rows(times, status={("quasi-deer", 4096, 16): "diverged"})
    table = speedups(df).set_index(["variant", "hidden"])
    assert set(table.index) == {("deer", 4), ("deer", 16), ("quasi-deer", 4), ("quasi-deer", 16)}
    assert table.loc[("deer", 4), "speedup"] == pytest.approx(0.25)
    assert table.loc[("quasi-deer", 4), "outcome"] == "faster"
    assert table.loc[("quasi-deer", 16), "outcome"] == "diverged"
    assert np.isnan(table.loc[("quasi-deer", 16), "speedup"])


def test_an_outcome_needs_the_medians_and_the_fastest_repeats_to_agree():
    assert outcome(2.0, 1.5) == "faster" and outcome(0.5, 0.8) == "slower"
    assert outcome(2.0, 0.8) == "tie" and outcome(1.05, 1.05) == "tie"


CHECKED = {"sequential": 1.0, "deer": 0.2, "quasi-deer": 0.5}
"""Limits that are the measured times of ``grid(1.0, 0.2, 0.5)``: a model that predicts the
clock (the fixtures' default limits sit 1000× below it)."""


def test_wall_time_passes_when_the_parallel_evaluator_wins_at_small_h_and_long_t():
    v = judge_wall_time(speedups(timed_rows(grid(1.0, 0.2, 0.5), limits=CHECKED)))
    assert v.verdict == "PASS", v.measured
    assert v.facts["model_off"] == pytest.approx(1.0)


def test_wall_time_fails_when_the_sequential_scan_wins_there():
    # the limit model is right at H = 16 and 32 (×0.5), and leaves room at H = 4 (×1.5, beyond
    # its typical error): the clock says ×0.8 there
    cells = ((4096, 4), (4096, 16), (4096, 32))
    times = grid(1.0, 2.0, 2.0, cells=cells) | {(v, 4096, 4): 1.25 for v in ("deer", "quasi-deer")}
    limits = {"sequential": 1.0}
    limits |= {(v, 4096, h): 2.0 for v in ("deer", "quasi-deer") for h in (16, 32)}
    limits |= {(v, 4096, 4): 1.0 / 1.5 for v in ("deer", "quasi-deer")}
    v = judge_wall_time(speedups(timed_rows(times, limits=limits)))
    assert v.facts["model_off"] == pytest.approx(1.0)
    # H = 16 is timed but outside the sizes where the issue expects a win (H ≤ 8)
    assert v.verdict == "FAIL" and v.facts["deciding"] == 1
    assert [(c["seq_len"], c["hidden"], c["best"]) for c in v.facts["losses"]] == [
        (4096, 4, "slower")
    ]


def test_wall_time_is_inconclusive_on_a_tie_or_without_a_size_where_it_should_win():
    # the medians say faster, the fastest repeats (the scan's 3× faster) say slower
    v = judge_wall_time(speedups(timed_rows(grid(1.0, 0.5, 0.5), seq_min_factor=1 / 3)))
    assert v.verdict == "INCONCLUSIVE"
    v = judge_wall_time(speedups(timed_rows(grid(1.0, 0.2, 0.5, cells=((1024, 4), (4096, 16))))))
    assert v.verdict == "INCONCLUSIVE" and v.facts["cells"] == []  # T = 1024 is short of it


def test_crossover_names_where_the_win_turns_into_a_loss():
    assert crossover([4, 8, 16, 32], ["faster", "faster", "tie", "slower"]) == (
        "faster up to H = 8, slower from H = 32"
    )
    assert crossover([4, 16], ["slower", "slower"]).startswith("slower at every H")
    assert crossover([4, 16], ["faster", "faster"]).startswith("faster at every H")
    assert "no single crossover" in crossover([4, 8, 16], ["slower", "faster", "slower"])


def test_wall_time_is_inconclusive_where_the_limit_model_leaves_no_room_for_a_win():
    # the scan's limit already beats both variants' at every goal size: this device cannot
    # decide, whatever was measured
    no_room = {"deer": 2e-3, "quasi-deer": 2e-3}
    for deer_s in (4.0, 0.2):  # a loss and a win alike
        v = judge_wall_time(speedups(timed_rows(grid(1.0, deer_s, 3.0), limits=no_room)))
        assert v.verdict == "INCONCLUSIVE" and len(v.facts["cells"]) == 1
        assert v.facts["deciding"] == 0
    # a run without calibration has no limit model: no size decides either
    df = timed_rows(grid(1.0, 4.0, 3.0)).drop(columns="limit_s")
    assert judge_wall_time(speedups(df)).verdict == "INCONCLUSIVE"


def test_room_for_a_win_must_exceed_the_models_own_error():
    # ŝ = 1.5 at H = 4 where the clock says 0.8: the model's error (×1.9) swallows the room
    room = {"sequential": 1.0, "deer": 1.0 / 1.5, "quasi-deer": 1.0 / 1.5}
    v = judge_wall_time(speedups(timed_rows(grid(1.0, 1.25, 1.25), limits=room)))
    assert v.verdict == "INCONCLUSIVE" and v.facts["deciding"] == 0
    assert v.facts["limit_gap"] <= deer.MODEL_OFF and 1.5 < v.facts["model_off"] * deer.FASTER


def test_a_limit_model_far_from_the_clock_decides_nothing():
    # limits 1000× below the measured times: whatever speed-up they imply decides nothing
    v = judge_wall_time(speedups(timed_rows(grid(1.0, 4.0, 3.0))))
    assert v.verdict == "INCONCLUSIVE" and v.facts["deciding"] == 0
    assert v.facts["limit_gap"] > deer.MODEL_OFF
    assert "decides nothing" in v.statement and "limit model checked" in v.measured


def test_wall_time_says_whether_the_measurement_confirms_the_limit_model():
    table = speedups(timed_rows(grid(1.0, 4.0, 3.0)))
    assert set(table.model_speedup) == {10.0}  # 1 ms / 0.1 ms
    v = judge_wall_time(table)
    # it predicted wins, and the measurement refutes them
    assert v.facts["modelled"] == 4 and len(v.facts["disagree"]) == 4


def iteration_rows(k, seq_lens=(256, 1024, 4096, 16384, 65536), converged=True):
    """Rows as ``deer.iteration_sweep`` writes them, k = ``k(variant, T)``."""
    return [
        dict(variant=v, batch=1, seq_len=t, hidden=4, newton_iterations=k(v, t),
             converged=converged, max_iter=64)
        for v in deer.PARALLEL
        for t in seq_lens
    ]  # fmt: skip


def test_iterations_pass_when_k_does_not_grow_with_t():
    v = judge_iterations(iteration_rows(lambda v, t: 5 if v == "deer" else 17))
    assert v.verdict == "PASS"
    # what quasi-DEER measured on a 2-core CPU: 15, 15, 17, 17, 17 (g = 0.28)
    measured = {256: 15, 1024: 15, 4096: 17, 16384: 17, 65536: 17}
    assert judge_iterations(iteration_rows(lambda v, t: measured[t])).verdict == "PASS"


def test_iterations_are_corrected_when_k_grows_as_log_t():
    v = judge_iterations(iteration_rows(lambda v, t: round(math.log2(t))))
    assert v.verdict == "CORRECTED" and v.slip == "mathematical error"
    assert deer.log_share((256, 65536), (8, 16))[2] == pytest.approx(1.0)


def test_iterations_fail_when_k_grows_faster_than_log_t_or_a_run_does_not_converge():
    assert judge_iterations(iteration_rows(lambda v, t: round(t**0.5))).verdict == "FAIL"
    stalled = iteration_rows(lambda v, t: 5, converged=False)
    assert judge_iterations(stalled).verdict == "FAIL"


def test_iterations_cannot_decide_between_constant_and_log_t_or_from_a_short_sweep():
    # 10 + 0.5·log2 T: half of k grows with log T
    v = judge_iterations(iteration_rows(lambda v, t: round(8 + 0.5 * math.log2(t))))
    assert v.verdict == "INCONCLUSIVE"
    # the old sweep: two values of T, 16× apart
    short = iteration_rows(lambda v, t: 5, seq_lens=(256, 4096))
    assert judge_iterations(short).verdict == "INCONCLUSIVE"
    assert judge_iterations([]).verdict == "INCONCLUSIVE"


def test_no_verdict_from_a_run_without_the_deer_suite():
    assert deer.judge_rows(timed_rows({}).assign(suite=pd.Series(dtype=str)), None) == []
