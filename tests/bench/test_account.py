"""A session's time account (bench/account.py): its parts and the rest sum to its wall time,
and the cases' parts are the sums of their rows' columns."""

import json

import pytest

from bench import analysis
from bench.account import CASE_PARTS, TimeAccount
from bench.cli import main
from tests.bench.helpers import only_run


def test_the_parts_and_the_rest_sum_to_the_wall_time():
    account = TimeAccount(started=0.0)
    account.add("a", 1.5)
    account.add("a", 0.5)
    account.add("b", -1.0)  # (a negative rest of a rounding is booked as nothing)
    closed = account.closed()
    assert closed["a"] == 2.0 and closed["b"] == 0.0
    assert closed["a"] + closed["b"] + closed["other"] == pytest.approx(closed["total"], abs=2e-3)


def test_a_cases_parts_come_from_its_row_and_its_overhead_is_the_rest():
    account = TimeAccount(started=0.0)
    rows = [{"build_s": 1.0, "compile_s": 2.0, "timed_s": None}, {"build_s": 0.5}]
    account.add_unit(rows, elapsed_s=4.0)
    assert account.parts["cases: build"] == 1.5 and account.parts["cases: compile"] == 2.0
    assert account.parts["cases: other (rows, logs, workers)"] == 0.5


def test_a_run_books_its_session_in_env_json(tmp_path):
    argv = ["run", "--suite", "binary_adder", "--profile", "smoke", "--out", str(tmp_path)]
    assert main(argv) == 0
    run_dir = only_run(tmp_path)
    (session,) = json.loads((run_dir / "env.json").read_text())["sessions"]
    spent = session["time_s"]
    for part in ("start-up (imports, checks, env.json)", "calibration", "claims C1",
                 "cases: compile", "cases: timed calls"):  # fmt: skip
        assert spent[part] > 0, part
    assert session["report_s"] > 0  # the report's own time, apart
    rest = spent["total"] - sum(v for k, v in spent.items() if k != "total")
    assert rest == pytest.approx(0.0, abs=0.01)
    df = analysis.load(run_dir)
    for column, part in CASE_PARTS.items():
        assert spent[part] == pytest.approx(df[column].sum(), abs=0.01)
    assert "## Where the time went" in (run_dir / "report.md").read_text()
