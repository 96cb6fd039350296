"""Failure modes: a bad case is a row, a hung case times out, a killed run resumes."""

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from bench import analysis, workloads
from bench.cli import main
from bench.store import create_run_dir
from tests.bench.helpers import only_run

FAULTS_MODULE = "tests.bench.faults_suite"


@pytest.fixture
def faults(monkeypatch):
    monkeypatch.setenv("BENCH_SUITE_MODULES", FAULTS_MODULE)
    yield
    for name in ("faults", "faults-hang", "faults-rude", "faults-crash", "faults-worker",
                 "faults-sized"):  # fmt: skip
        workloads._REGISTRY.pop(name, None)
    sys.modules.pop(FAULTS_MODULE, None)


def _only_run(out):
    return only_run(out)


def test_each_failing_case_is_a_row_with_its_status_and_the_sweep_goes_on(faults, tmp_path):
    assert main(["run", "--suite", "faults", "--profile", "smoke", "--out", str(tmp_path)]) == 0
    df = analysis.load(_only_run(tmp_path)).set_index("variant")
    assert df.loc["build-error", "status"] == "error"
    assert df.loc["build-error", "error"] == "ValueError: kernel must be odd, got 4"
    assert df.loc["oom", "status"] == "oom"
    assert df.loc["shape-error", "status"] == "error"
    assert "dot_general requires contracting dimensions" in df.loc["shape-error", "error"]
    assert df.loc["nan", "status"] == "nan"
    assert df.loc["range", "status"] == "range"
    assert df.loc["fine", "status"] == "ok" and df.loc["fine", "time_median_s"] > 0
    # a case without a time has no timing columns, never a made-up number
    assert df.drop(index=["fine", "uncountable"]).time_median_s.isna().all()


def test_a_program_the_analyser_cannot_count_keeps_its_time_and_says_why(faults, tmp_path):
    argv = ["run", "--suite", "faults", "--variant", "uncountable", "--variant", "fine"]
    assert main([*argv, "--profile", "smoke", "--out", str(tmp_path)]) == 0
    run_dir = _only_run(tmp_path)
    df = analysis.load(run_dir).set_index("variant")
    row = df.loc["uncountable"]
    assert row.status == "ok" and row.time_median_s > 0
    assert pd.isna(row.span_ops) and pd.isna(row.work_flops) and pd.isna(row.steps_executed)
    assert "no rule for higher-order primitive 'custom_linear_solve'" in row.note
    assert df.loc["fine", "steps_executed"] == 0
    assert "not counted" not in str(df.loc["fine", "note"])  # (it may say it was unsteady)
    assert (run_dir / "report.md").exists()


def _bench(*args, **kw):
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    return subprocess.Popen(
        [sys.executable, "-m", "bench", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )


def _wait_for_rows(path, n, proc, limit_s=240):
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if path.exists() and len(path.read_text().splitlines()) >= n + 1:
            return
        if proc.poll() is not None:
            pytest.fail(f"run ended before {n} rows: {proc.stderr.read()}")
        time.sleep(0.05)
    pytest.fail(f"no {n} rows after {limit_s} s")


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["kill-9", "ctrl-c"])
def test_an_interrupted_run_keeps_finished_cases_and_resume_completes_it(sig, tmp_path):
    if sig == signal.SIGINT and signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        pytest.skip("SIGINT is ignored here (started in the background): a child inherits it")
    proc = _bench(
        "run", "--suite", "lstm", "--profile", "smoke", "--out", str(tmp_path), "--no-experiments"
    )
    path = None
    deadline = time.monotonic() + 120
    while path is None and time.monotonic() < deadline:
        runs = [p for p in tmp_path.iterdir() if not p.is_symlink()]
        path = runs[0] / "measurements.csv" if runs else None
        time.sleep(0.05)
    _wait_for_rows(path, 2, proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    if sig == signal.SIGINT:
        assert proc.returncode == 130 and "resume with --resume" in err
    kept = analysis.load(path.parent)
    assert 2 <= len(kept) < len(workloads.suites()["lstm"].cases("smoke"))
    assert (kept.status == "ok").all()

    assert main(["run", "--resume", str(path.parent), "--no-experiments"]) == 0
    done = analysis.load(path.parent)
    keys = {workloads.case_key(row) for row in done.to_dict("records")}
    assert len(keys) == len(done) == len(workloads.suites()["lstm"].cases("smoke"))
    # the rows measured before the interruption are untouched
    assert done.head(len(kept)).time_median_s.tolist() == kept.time_median_s.tolist()


def test_run_folders_are_never_overwritten(tmp_path):
    first = create_run_dir(tmp_path, "20260101T000000Z-abc")
    (first / "measurements.csv").write_text("precious")
    second = create_run_dir(tmp_path, "20260101T000000Z-abc")
    assert second != first and second.name == "20260101T000000Z-abc-1"
    assert (first / "measurements.csv").read_text() == "precious"


def test_a_missing_suite_module_is_a_one_line_error(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("BENCH_SUITE_MODULES", "no_such_module")
    assert main(["run", "--out", str(tmp_path)]) == 2
    assert "cannot import 'no_such_module'" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("suite, variant", [("lstm", "manual-bwd"), ("pixelcnn", "cached")])
def test_the_same_case_built_twice_gives_identical_outputs(suite, variant):
    import jax
    import numpy as np

    (case, *_) = [c for c in workloads.suites()[suite].cases("smoke") if c.variant == variant]
    outputs = []
    for _ in range(2):
        w = case.workload()
        outputs.append(jax.tree.leaves(jax.jit(w.fn)(*w.args)))
    for a, b in zip(*outputs, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_resume_after_a_write_cut_short_keeps_one_row_and_one_set_of_samples_per_case(tmp_path):
    argv = [
        "run",
        "--suite",
        "binary_adder",
        "--profile",
        "smoke",
        "--out",
        str(tmp_path),
        "--no-experiments",
        "--repeats",
        "3",
    ]
    assert main(argv) == 0
    run_dir = _only_run(tmp_path)
    rows = run_dir / "measurements.csv"
    # killed while writing the last row: its samples are on disk, the row is half a line, and
    # the run's mark of the case in flight is still there
    key = workloads.case_key(analysis.load_measurements(rows).to_dict("records")[-1])
    (run_dir / "in_flight.json").write_text(json.dumps({"case": "last", "key": list(key)}))
    text = rows.read_text()
    last = text.rstrip("\n").rsplit("\n", 1)[1]
    rows.write_text(text[: len(text) - len(last) - 1] + last[:25])

    assert main(["run", "--resume", str(run_dir), "--no-experiments"]) == 0
    df = analysis.load(run_dir)
    samples = analysis.load_samples(run_dir / "samples.csv")
    assert len(df) == len(workloads.suites()["binary_adder"].cases("smoke"))
    assert len({workloads.case_key(row) for row in df.to_dict("records")}) == len(df)
    assert (df.repeats >= 3).all()  # at least the repeats asked for (fast calls get more)
    per_case = samples.groupby(["variant", "mode", "seq_len", "batch"]).size()
    assert per_case.to_dict() == {
        (r.variant, r["mode"], r.seq_len, r.batch): r.repeats for _, r in df.iterrows()
    }


def test_a_traced_case_writes_its_trace_and_its_row_says_the_times_carry_the_profiler(
    faults, tmp_path
):
    trace = tmp_path / "traces"
    argv = ["run", "--suite", "faults", "--variant", "fine", "--profile", "smoke"]
    assert main([*argv, "--out", str(tmp_path / "out"), "--trace", str(trace)]) == 0
    (row,) = analysis.load(only_run(tmp_path / "out")).to_dict("records")
    assert row["status"] == "ok" and "include the profiler's overhead" in row["note"]
    assert list(trace.glob("*/plugins/profile/*/*.xplane.pb"))
