"""`run --budget-s S`: a case whose estimate does not fit what is left of the budget is not
started; its row says `skipped` and why, and `--resume` measures it, its new row replacing the
skipped one."""

import json

import jax.numpy as jnp
import pandas as pd
import pytest

from bench import analysis, store
from bench.calibration import Calibration
from bench.cli import main
from bench.plan import Budget, CompileCost
from bench.runner import Protocol, measure_case
from bench.session import _eta
from bench.workloads import IDENTITY, Case, Workload, case_key
from tests.bench.helpers import only_run

FREE = CompileCost(fixed_s=0.0, per_eqn_s=0.0, per_loop_s=0.0)
SLOW_COMPILE = CompileCost(fixed_s=1000.0, per_eqn_s=0.0, per_loop_s=0.0)
CAL = Calibration.of(
    matmul_flops_per_s=1e10, bandwidth_bytes_per_s=1e9, loop_iteration_s=1e-6, dependent_op_s=1e-6
)
CASE = Case(
    "toy",
    "sine",
    "plain",
    "forward",
    lambda: Workload(jnp.sin, (jnp.ones(3),), n_params=0),
    {"batch": 3},
    1,
)


HOW = Protocol(run_id="r", repeats=3, warmup=1, rounds=3)


def _measure(budget):
    return measure_case(CASE, HOW, budget=budget, log=lambda s: None)


def test_a_case_whose_estimate_fits_the_budget_is_timed():
    row, samples = _measure(Budget(left_s=1000.0, compile=FREE, calibration=CAL))
    assert row["status"] == "ok" and len(samples) == row["repeats"] >= 3


def test_a_case_whose_estimate_does_not_fit_is_skipped_with_its_estimate_and_no_samples():
    row, samples = _measure(Budget(left_s=10.0, compile=SLOW_COMPILE, calibration=CAL))
    assert row["status"] == "skipped" and samples == []
    assert row["error"].startswith("estimated 1000 s, 10 s of --budget-s left")
    assert "--resume measures it" in row["error"]
    assert row["work_flops"] > 0  # built and counted, only the timing was left out


def test_a_spent_budget_skips_the_case_without_building_it():
    def build():
        raise AssertionError("built although the budget was spent")

    case = Case("toy", "sine", "plain", "forward", build, {"batch": 3}, 1)
    row, _ = measure_case(case, HOW, budget=Budget(-5.0, FREE, CAL), log=print)
    assert row["status"] == "skipped" and row["error"].startswith("--budget-s spent (5 s over)")


def test_skipped_cases_and_experiments_are_measured_by_resume(tmp_path, capsys):
    argv = ["run", "--suite", "binary_adder", "--profile", "smoke", "--out", str(tmp_path)]
    assert main([*argv, "--budget-s", "0.001"]) == 0  # spent by the time the first case starts
    run_dir = only_run(tmp_path)
    err = capsys.readouterr().err
    assert "did not fit --budget-s: --resume" in err and "their experiments did not fit" in err
    first = analysis.load(run_dir)
    assert set(first.status) == {"skipped"} and not (run_dir / "claims.csv").exists()
    assert store.completed_keys(run_dir) == set()

    assert main(["run", "--resume", str(run_dir)]) == 0
    rows = analysis.load(run_dir)
    assert len(rows) == len(first) and set(rows.status) == {"ok"}  # one row per case
    assert len(analysis.load_measurements(run_dir / "measurements.csv")) == len(first)
    assert (run_dir / "measurements.csv").read_text().count("skipped") == len(first)  # kept
    assert set(rows.session) == {2}
    assert not analysis.load_claims(run_dir / "claims.csv").empty

    assert main(["run", "--resume", str(run_dir)]) == 0  # and the folder stays resumable
    assert "already complete" in capsys.readouterr().err


def test_samples_of_a_skipped_case_cut_short_by_a_kill_are_dropped_on_resume(tmp_path):
    argv = ["run", "--suite", "binary_adder", "--profile", "smoke", "--out", str(tmp_path)]
    assert main([*argv, "--budget-s", "0.001", "--no-experiments"]) == 0
    run_dir = only_run(tmp_path)
    skipped = analysis.load(run_dir).iloc[0]
    identity = {k: skipped[k] for k in ("run_id", *IDENTITY) if not pd.isna(skipped[k])}
    out = store.CsvAppender(run_dir / "samples.csv", store.SAMPLE_COLUMNS)
    out.write({**identity, "repeat": 0, "time_s": 1.0})  # killed before the row was written
    out.close()
    key = case_key(skipped.to_dict())  # and the run's mark of the case in flight
    (run_dir / "in_flight.json").write_text(json.dumps({"case": "first", "key": list(key)}))
    assert main(["run", "--resume", str(run_dir), "--no-experiments"]) == 0
    rows = analysis.load(run_dir)
    samples = analysis.load_samples(run_dir / "samples.csv")
    assert set(rows.status) == {"ok"} and len(samples) == rows.repeats.sum()
    assert 1.0 not in set(samples.time_s)


def _written(folder, rows):
    path = folder / "measurements.csv"
    out = store.CsvAppender(path, store.COLUMNS)
    for row in rows:
        out.write(row)
    out.close()
    return path


@pytest.mark.parametrize("status", ["ok", "error"])
def test_only_a_skipped_row_can_be_replaced(tmp_path, status):
    """A case recorded twice is damage unless the earlier row was skipped."""
    row = {"run_id": "r", "suite": "s", "model": "m", "variant": "v", "mode": "forward"}
    timed = {"repeats": 3, "time_median_s": 1.0, "time_min_s": 1.0, "time_max_s": 1.0}
    first = {**row, "status": status, **(timed if status == "ok" else {})}
    path = _written(tmp_path, [first, {**row, "status": "ok", **timed}])
    with pytest.raises(analysis.SchemaError, match="the same case as line 2"):
        analysis.load_measurements(path)


def test_a_skipped_row_is_superseded_by_the_later_row_of_its_case(tmp_path):
    row = {"run_id": "r", "suite": "s", "model": "m", "variant": "v", "mode": "forward"}
    timed = {"repeats": 3, "time_median_s": 1.0, "time_min_s": 1.0, "time_max_s": 1.0}
    path = _written(
        tmp_path,
        [
            {**row, "status": "skipped", "error": "estimated 9 s, 1 s left"},
            {**row, "variant": "w", "status": "skipped", "error": "estimated 9 s"},
            {**row, "status": "ok", **timed},
        ],
    )
    df = analysis.load_measurements(path)
    assert sorted(zip(df.variant, df.status, strict=True)) == [("v", "ok"), ("w", "skipped")]


def test_progress_shows_the_time_left_at_this_sessions_pace_once_three_cases_ran():
    assert _eta(elapsed_s=2.0, done=2, total=9) == ""
    assert _eta(elapsed_s=30.0, done=3, total=9) == " (~60 s left)"
    assert _eta(elapsed_s=600.0, done=3, total=9) == " (~20 min left)"


def test_the_budget_reaches_cases_measured_in_a_worker_process(tmp_path):
    argv = ["run", "--suite", "binary_adder", "--profile", "smoke", "--out", str(tmp_path)]
    assert main([*argv, "--budget-s", "0.001", "--case-timeout", "60", "--no-experiments"]) == 0
    rows = analysis.load(only_run(tmp_path))
    assert set(rows.status) == {"skipped"} and rows.error.str.contains("--budget-s spent").all()
