"""Fault injection: whatever a case, a user, the disk or a second process does, a run folder
keeps every finished measurement, invents none, and every refusal is one line with exit 2.

The misbehaving cases live in ``tests/bench/faults_suite.py`` (loaded as a plugin). Tests that
start their own bench processes (each imports JAX: seconds) are few, and the heavier ones are
marked ``slow``.
"""

import errno
import gzip
import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from bench import analysis, claims, environment, lock, runner, store, workloads
from bench.analysis import SchemaError
from bench.claims import Experiment, Verdict
from bench.cli import main
from bench.lock import RunLock
from tests.bench.helpers import only_run

FAULTS_MODULE = "tests.bench.faults_suite"
FAULT_SUITES = (
    "faults", "faults-hang", "faults-rude", "faults-crash", "faults-worker", "faults-sized",
    "faults-ctrl-c",
)  # fmt: skip
ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture
def faults(monkeypatch):
    monkeypatch.setenv("BENCH_SUITE_MODULES", FAULTS_MODULE)
    yield
    _forget_fault_suites()


def _forget_fault_suites():
    for name in FAULT_SUITES:  # leave the registry as other tests expect it
        workloads._REGISTRY.pop(name, None)
    sys.modules.pop(FAULTS_MODULE, None)


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    """A finished run of two quick cases (one with a comma in its error: a quoted field)."""
    out = tmp_path_factory.mktemp("small")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BENCH_SUITE_MODULES", FAULTS_MODULE)
        argv = ["run", "--suite", "faults", "--variant", "fine", "--variant", "build-error"]
        assert main([*argv, "--profile", "smoke", "--out", str(out), "--repeats", "3"]) == 0
        _forget_fault_suites()
    return only_run(out)


@pytest.fixture
def run_copy(small_run, tmp_path, faults):
    copy = tmp_path / small_run.name
    shutil.copytree(small_run, copy)
    return copy


@pytest.fixture(scope="module")
def sized_run(tmp_path_factory):
    """A finished run of two ok cases whose sizes depend on the profile (as a real suite's)."""
    out = tmp_path_factory.mktemp("sized")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BENCH_SUITE_MODULES", FAULTS_MODULE)
        argv = ["run", "--suite", "faults-sized", "--profile", "smoke", "--out", str(out)]
        assert main([*argv, "--repeats", "3"]) == 0
        _forget_fault_suites()
    return only_run(out)


@pytest.fixture
def sized_copy(sized_run, tmp_path, faults):
    copy = tmp_path / sized_run.name
    shutil.copytree(sized_run, copy)
    return copy


def _files(run_dir: pathlib.Path) -> dict[str, bytes]:
    """Every file of a run folder, byte for byte (the lock file aside)."""
    return {p.name: p.read_bytes() for p in run_dir.iterdir() if p.name != store.LOCK}


def _drop_rows(run_dir: pathlib.Path, keep: int) -> None:
    """Leave the first ``keep`` rows, and their samples, as a run killed then would have."""
    lines = (run_dir / "measurements.csv").read_text().splitlines(keepends=True)
    (run_dir / "measurements.csv").write_text("".join(lines[: keep + 1]))
    store.repair_interrupted(run_dir)  # drops the samples of the rows removed


def assert_nothing_lost_or_invented(run_dir: pathlib.Path, cases: int) -> pd.DataFrame:
    """One row per case, each ok row with exactly its samples (whose median is its median),
    no samples for a case without a time, and a report."""
    df = analysis.load(run_dir)  # refuses duplicates, cut rows and impossible times
    samples = analysis.load_samples(run_dir / "samples.csv")
    assert len(df) == cases
    keys = {workloads.case_key(r) for r in df.to_dict("records")}
    assert len(keys) == cases
    per_case = {}
    for record in samples.to_dict("records"):
        per_case.setdefault(workloads.case_key(record), []).append(record["time_s"])
    for row in df.to_dict("records"):
        times = per_case.pop(workloads.case_key(row), [])
        if row["status"] == "ok":
            assert len(times) == row["repeats"]
            assert np.median(times) == pytest.approx(row["time_median_s"])
        else:
            assert times == [] and pd.isna(row["time_median_s"])
    assert per_case == {}, "samples of no row"
    assert (run_dir / "report.md").exists()
    assert not (run_dir / store.IN_FLIGHT).exists()
    return df


def _one_line_exit_2(code, capsys, *needles):
    err = capsys.readouterr().err
    assert code == 2, err
    lines = [ln for ln in err.splitlines() if ln.startswith("bench: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in lines[0]
    return lines[0]


def _bench(*args, **kw):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BENCH_SUITE_MODULES": FAULTS_MODULE}
    return subprocess.Popen(
        [sys.executable, "-m", "bench", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )


def _until(condition, proc=None, limit_s=240):
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if condition():
            return
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"bench ended first ({proc.returncode}): {proc.stderr.read()[-2000:]}")
        time.sleep(0.05)
    pytest.fail(f"not within {limit_s} s")


def _locked(run_dir) -> bool:
    try:
        lock.check_not_in_use(run_dir)
    except store.RunFolderError:
        return True
    return False


# --- Cases that try to end the run ---------------------------------------------------------------


def test_cases_that_try_to_end_the_run_are_rows_and_the_sweep_goes_on(faults, tmp_path):
    argv = ["run", "--suite", "faults-rude", "--profile", "smoke", "--out", str(tmp_path)]
    assert main(argv) == 0
    df = assert_nothing_lost_or_invented(
        only_run(tmp_path), len(workloads.suites()["faults-rude"].cases("smoke"))
    )
    df = df.set_index("variant")
    assert df.loc["exits", ["status", "error"]].tolist() == ["error", "SystemExit: 0"]
    assert df.loc["interrupts", "status"] == "error"
    assert df.loc["interrupts", "error"] == "KeyboardInterrupt: raised by the case, not by the user"
    assert df.loc["memory", "status"] == "oom" and df.loc["huge", "status"] == "oom"
    # the error raised in the host callback, not the traceback's header
    assert df.loc["callback", "status"] == "error"
    assert df.loc["callback", "error"].endswith("ValueError: the host callback failed")
    assert "Traceback" not in df.loc["callback", "error"]
    # a stall in one of two timed calls: the time is kept, flagged as not to be trusted
    assert df.loc["stall", "status"] == "ok" and "unsteady" in df.loc["stall", "note"]
    assert df.loc["fine", "status"] == "ok"


# --- One run at a time -----------------------------------------------------------------------


def test_a_locked_run_folder_is_refused_whole_and_left_untouched(run_copy, capsys):
    _drop_rows(run_copy, 1)
    before = _files(run_copy)
    with RunLock(run_copy):
        _one_line_exit_2(
            main(["run", "--resume", str(run_copy)]), capsys, "in use by another process"
        )
        _one_line_exit_2(main(["report", str(run_copy)]), capsys, "is being written")
        for argv in ([run_copy, run_copy.parent], [run_copy.parent, run_copy]):
            _one_line_exit_2(
                main(["compare", *map(str, argv)]), capsys, "is being written", "cannot compare"
            )
        assert _files(run_copy) == before
    assert main(["run", "--resume", str(run_copy)]) == 0  # the lock went with its holder
    assert_nothing_lost_or_invented(run_copy, 2)


def _hold_lock(run_dir: pathlib.Path) -> subprocess.Popen:
    """Another process holding the folder's lock, as `flock RUN_DIR/.lock sleep 600` would."""
    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDWR);"
         " fcntl.flock(fd, fcntl.LOCK_EX); print('locked', flush=True); time.sleep(600)",
         str(run_dir / store.LOCK)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert holder.stdout.readline().strip() == "locked"
    return holder


def test_the_lock_of_a_killed_process_is_released_by_the_kernel(run_copy):
    holder = _hold_lock(run_copy)
    assert _locked(run_copy)
    holder.kill()
    holder.communicate()
    assert not _locked(run_copy)
    assert main(["run", "--resume", str(run_copy)]) == 0


@pytest.mark.skipif(not pathlib.Path("/proc/locks").exists(), reason="reads /proc/locks")
def test_a_folder_locked_by_another_process_names_that_process(run_copy, capsys):
    (run_copy / store.LOCK).write_text("999999\n")  # the pid of the last bench run here
    holder = _hold_lock(run_copy)
    try:
        line = _one_line_exit_2(
            main(["run", "--resume", str(run_copy)]), capsys, f"pid {holder.pid}"
        )
        assert "999999" not in line
        line = _one_line_exit_2(main(["report", str(run_copy)]), capsys, f"pid {holder.pid}")
    finally:
        holder.kill()
        holder.communicate()


@pytest.mark.parametrize(
    "command, name",
    [("resume", store.LOCK), ("resume", "samples.csv"), ("report", "fits.csv")],
    ids=["resume-lock", "resume-samples", "report-fits"],
)
def test_a_symbolic_link_in_a_run_folder_is_refused_and_never_written_through(
    run_copy, tmp_path, command, name, capsys
):
    _drop_rows(run_copy, 1)  # a case left to measure
    link, target = run_copy / name, tmp_path / "outside"
    target.write_bytes(link.read_bytes() if link.exists() else b"someone else's file\n")
    link.unlink(missing_ok=True)
    link.symlink_to(target)
    before = target.read_bytes()
    argv = ["run", "--resume", str(run_copy)] if command == "resume" else ["report", str(run_copy)]
    _one_line_exit_2(main(argv), capsys, "symbolic link", name)
    assert target.read_bytes() == before and link.is_symlink()


def test_two_resumes_at_once_measure_each_missing_case_once(faults, tmp_path, capsys):
    argv = ["run", "--suite", "faults-worker", "--variant", "slow-start", "--variant", "after"]
    assert main([*argv, "--profile", "smoke", "--out", str(tmp_path)]) == 0
    run_dir = only_run(tmp_path)
    _drop_rows(run_dir, 0)
    first = _bench("run", "--resume", str(run_dir))
    _until(lambda: _locked(run_dir), first)
    _one_line_exit_2(main(["run", "--resume", str(run_dir)]), capsys, "in use by another process")
    _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert_nothing_lost_or_invented(run_dir, 2)


# --- Resume: exact, under the run's own settings ---------------------------------------------


def test_resume_under_other_settings_is_refused_unless_allowed_then_each_session_is_recorded(
    run_copy, capsys
):
    _drop_rows(run_copy, 1)
    env = json.loads((run_copy / "env.json").read_text())
    sha = env["git_sha"]
    old = {"git_sha": "0" * 40, "XLA_FLAGS": "--xla_cpu_use_thunk_runtime=false"}
    env.update(old)
    env["sessions"][0].update(old)
    (run_copy / "env.json").write_text(json.dumps(env))
    before = _files(run_copy)
    line = _one_line_exit_2(main(["run", "--resume", str(run_copy)]), capsys, "--allow-mixed")
    assert "git_sha" in line and "XLA_FLAGS" in line
    assert _files(run_copy) == before

    assert main(["run", "--resume", str(run_copy), "--allow-mixed"]) == 0
    env = analysis.load_env(run_copy)
    assert [s["session"] for s in env["sessions"]] == [1, 2]
    assert env["sessions"][1]["git_sha"] == sha and env["sessions"][1]["XLA_FLAGS"] == ""
    assert env["sessions"][1]["first_row"] == 1
    df = assert_nothing_lost_or_invented(run_copy, 2)
    # each row carries the settings of the session that measured it
    assert df.session.tolist() == [1, 2] and df.git_sha.tolist() == ["0" * 40, sha]


def test_the_run_id_is_the_one_env_json_stores_whatever_the_folder_is_called(
    run_copy, tmp_path, monkeypatch, capsys
):
    run_id = analysis.load_env(run_copy)["run_id"]
    renamed = run_copy.rename(tmp_path / "copied elsewhere")
    _drop_rows(renamed, 1)
    monkeypatch.chdir(renamed)
    assert main(["run", "--resume", "."]) == 0
    assert set(analysis.load(renamed).run_id) == {run_id}
    assert set(analysis.load_samples(renamed / "samples.csv").run_id) == {run_id}

    env = json.loads((renamed / "env.json").read_text())
    del env["run_id"]
    (renamed / "env.json").write_text(json.dumps(env))
    _one_line_exit_2(main(["run", "--resume", "."]), capsys, "no run_id")


def test_a_resume_whose_env_json_settings_are_not_its_rows_is_refused(sized_copy, capsys):
    _drop_rows(sized_copy, 1)
    env = json.loads((sized_copy / "env.json").read_text())
    env["profile"] = "cpu"  # edited: its row was measured under smoke (batch 1, cpu's is 2)
    (sized_copy / "env.json").write_text(json.dumps(env))
    before = _files(sized_copy)
    line = _one_line_exit_2(main(["run", "--resume", str(sized_copy)]), capsys, "profile 'cpu'")
    assert "line 2" in line and "not a case of" in line
    assert _files(sized_copy) == before


def test_runs_started_in_the_same_second_have_their_own_run_ids(faults, tmp_path, monkeypatch):
    assert environment.new_run_id() != environment.new_run_id()  # (a CI matrix)
    monkeypatch.setattr(environment, "new_run_id", lambda: "20260101T000000Z-abc1234")
    argv = ["run", "--suite", "faults", "--variant", "fine", "--profile", "smoke"]
    assert main([*argv, "--out", str(tmp_path)]) == 0
    assert main([*argv, "--out", str(tmp_path)]) == 0
    runs = sorted(p for p in tmp_path.iterdir() if not p.is_symlink())
    assert [p.name for p in runs] == ["20260101T000000Z-abc1234", "20260101T000000Z-abc1234-1"]
    assert analysis.load(runs).groupby("run_id").size().to_dict() == {p.name: 1 for p in runs}
    for run_dir in runs:  # env.json, rows and samples agree with the folder
        assert analysis.load_env(run_dir)["run_id"] == run_dir.name
        assert set(analysis.load_samples(run_dir / "samples.csv").run_id) == {run_dir.name}


def test_an_in_flight_mark_of_another_shape_is_unreadable_not_a_crash(run_copy):
    env = analysis.load_env(run_copy)  # killed, as a mark says: its session never ended
    del env["finished_utc"], env["sessions"][-1]["finished_utc"]
    (run_copy / "env.json").write_text(json.dumps(env))
    (run_copy / store.IN_FLIGHT).write_text('{"case": "x", "key": 5}')
    assert main(["run", "--resume", str(run_copy)]) == 0
    env = analysis.load_env(run_copy)
    assert env["sessions"][0]["died_in"] == {"unreadable": store.IN_FLIGHT}
    # an env.json that an earlier version wrote with the mark as it was is read, not crashed on
    env["sessions"][0]["died_in"] = {"case": "x", "key": 5}
    (run_copy / "env.json").write_text(json.dumps(env))
    assert main(["run", "--resume", str(run_copy)]) == 0


def test_model_and_variant_narrow_only_the_resumed_session(run_copy, capsys):
    _drop_rows(run_copy, 0)
    assert main(["run", "--resume", str(run_copy), "--variant", "fine"]) == 0
    assert "1 case(s) of the run not measured yet" in capsys.readouterr().err
    assert analysis.load(run_copy).variant.tolist() == ["fine"]
    assert main(["run", "--resume", str(run_copy)]) == 0
    df = assert_nothing_lost_or_invented(run_copy, 2)
    assert df.variant.tolist() == ["fine", "build-error"]


def test_a_case_that_killed_the_process_twice_is_recorded_as_crashed_and_skipped(faults, tmp_path):
    first = _bench("run", "--suite", "faults-crash", "--profile", "smoke", "--out", str(tmp_path))
    _, err = first.communicate(timeout=300)
    assert first.returncode == -signal.SIGABRT, err
    run_dir = only_run(tmp_path)
    assert json.loads((run_dir / store.IN_FLIGHT).read_text())["key"][2] == "aborts"
    again = _bench("run", "--resume", str(run_dir))
    _, err = again.communicate(timeout=300)
    assert again.returncode == -signal.SIGABRT, err

    assert main(["run", "--resume", str(run_dir)]) == 0
    df = assert_nothing_lost_or_invented(run_dir, 2).set_index("variant")
    assert df.loc["aborts", "status"] == "crashed"
    assert "killed the bench process 2 times" in df.loc["aborts", "error"]
    assert df.loc["fine", "status"] == "ok"
    sessions = analysis.load_env(run_dir)["sessions"]
    assert [s.get("died_in", {}).get("key", [None] * 3)[2] for s in sessions] == [
        "aborts",
        "aborts",
        None,
    ]


# --- Honest timeouts -------------------------------------------------------------------------


def test_case_timeout_counts_from_the_case_start_and_a_dead_worker_is_crashed(
    faults, tmp_path, monkeypatch
):
    monkeypatch.setenv("BENCH_TEST_SLOW_WORKER_START", "5")  # faults_suite.SLOW_WORKER_START
    argv = ["run", "--suite", "faults-worker", "--profile", "smoke", "--out", str(tmp_path)]
    assert main([*argv, "--case-timeout", "6"]) == 0
    df = assert_nothing_lost_or_invented(only_run(tmp_path), 4).set_index("variant")
    # each worker starts in over 5 s (a fresh JAX, and this module's sleep): with 2 s of build
    # that passes 6 s, but the start-up is not the case's
    assert df.loc["slow-start", "status"] == "ok"
    assert df.loc["aborts", "status"] == "crashed"
    assert df.loc["aborts", "error"] == "the worker process was killed by SIGABRT"
    assert df.loc["hangs", "status"] == "timeout"
    assert "--case-timeout 6.0 s (counted from its start)" in df.loc["hangs", "error"]
    assert df.loc["after", "status"] == "ok"


def _children(pid: int) -> set[int]:
    found = set()
    for task in pathlib.Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found |= {int(c) for c in text}
    return found


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_case_workers_die_with_the_bench_process(faults, tmp_path):
    argv = ["run", "--suite", "faults-hang", "--profile", "smoke", "--case-timeout", "300"]
    proc = _bench(*argv, "--out", str(tmp_path))
    _until(lambda: any(tmp_path.glob(f"*/{store.IN_FLIGHT}")), proc)
    _until(lambda: _children(proc.pid), proc)
    workers = _children(proc.pid)
    proc.kill()
    proc.communicate()
    _until(lambda: not any(pathlib.Path(f"/proc/{w}").exists() for w in workers), limit_s=30)


# --- Experiments: per claim, whole, re-run when missing or failed -----------------------------


@pytest.fixture
def flaky_experiment():
    """An experiment of two claims for the faults-crash suite that fails on its first run."""
    attempts = []

    def run(profile, run_dir):
        attempts.append(1)
        if len(attempts) == 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        store.write_table(run_dir, "flaky.csv", [{"x": 1, "y": 2.0}])
        return [
            Verdict(claim, "PASS", "flaky check", "x", "x = 1", f"x = 1 ({len(attempts)})")
            for claim in ("X1", "X2")
        ]

    experiment = claims.register(Experiment("faults-crash", ("X1", "X2"), run))
    yield attempts
    claims._EXPERIMENTS.remove(experiment)


def test_a_failed_experiment_makes_the_run_incomplete_and_resume_replaces_its_error_rows(
    faults, flaky_experiment, tmp_path, capsys
):
    argv = ["run", "--suite", "faults-crash", "--variant", "fine", "--profile", "smoke"]
    assert main([*argv, "--out", str(tmp_path)]) == 1
    assert "the experiment of X1, X2 failed" in capsys.readouterr().err
    run_dir = only_run(tmp_path)
    failed = analysis.load_claims(run_dir / "claims.csv")
    assert failed.verdict.tolist() == ["ERROR", "ERROR"]
    assert "OSError: [Errno 28] No space left on device" in failed.measured[0]

    assert main(["run", "--resume", str(run_dir)]) == 0
    done = analysis.load_claims(run_dir / "claims.csv")
    assert done.claim.tolist() == ["X1", "X2"] and (done.verdict == "PASS").all()
    # killed between the experiment's two claim rows: the experiment runs again, whole
    text = (run_dir / "claims.csv").read_text().splitlines(keepends=True)
    (run_dir / "claims.csv").write_text("".join(text[:2]))
    assert main(["run", "--resume", str(run_dir)]) == 0
    again = analysis.load_claims(run_dir / "claims.csv")
    assert again.claim.tolist() == ["X1", "X2"] and again.measured.tolist() == ["x = 1 (3)"] * 2
    assert len(flaky_experiment) == 3


@pytest.fixture
def passing_experiment():
    """An experiment of one claim for the faults suite that passes whenever it runs."""

    def run(profile, run_dir):
        return [Verdict("X1", "PASS", "passing check", "x", "x = 1", "x = 1")]

    experiment = claims.register(Experiment("faults", ("X1",), run))
    yield
    claims._EXPERIMENTS.remove(experiment)


def test_an_experiment_that_killed_the_process_twice_runs_again_only_when_asked(
    run_copy, passing_experiment, capsys
):
    env = json.loads((run_copy / "env.json").read_text())
    first, died = env["sessions"][0], {"experiment": ["X1"]}  # as two kills -9 would leave it
    env["sessions"] = [{**first, "died_in": died}, {**first, "session": 2, "died_in": died}]
    (run_copy / "env.json").write_text(json.dumps(env))
    assert main(["run", "--resume", str(run_copy)]) == 1
    err = capsys.readouterr().err
    assert "X1" in err and "killed the bench process 2 times" in err
    assert f"--resume {run_copy} --retry-crashed" in err and "runs it again" not in err
    assert analysis.load_claims(run_copy / "claims.csv").verdict.tolist() == ["ERROR"]

    assert main(["run", "--resume", str(run_copy), "--retry-crashed"]) == 0
    assert analysis.load_claims(run_copy / "claims.csv").verdict.tolist() == ["PASS"]
    assert main(["run", "--resume", str(run_copy)]) == 0


def test_retry_crashed_is_for_a_resume(tmp_path, capsys):
    argv = ["run", "--retry-crashed", "--out", str(tmp_path)]
    _one_line_exit_2(main(argv), capsys, "--retry-crashed is for --resume")
    assert list(tmp_path.iterdir()) == []


# --- The disk and the arguments ---------------------------------------------------------------


def test_a_full_disk_is_one_line_and_resume_completes_the_run_after(
    faults, tmp_path, monkeypatch, capsys
):
    write, calls = store.CsvAppender.write, []

    def full_disk(self, row):
        calls.append(self.path.name)
        if calls.count("measurements.csv") == 3 and self.path.name == "measurements.csv":
            with open(self.path, "a") as f:  # part of the row reached the disk
                f.write("run_id,faults,toy")
            raise OSError(errno.ENOSPC, "No space left on device", str(self.path))
        write(self, row)

    monkeypatch.setattr(store.CsvAppender, "write", full_disk)
    argv = ["run", "--suite", "faults", "--profile", "smoke", "--out", str(tmp_path)]
    line = _one_line_exit_2(main(argv), capsys, "No space left on device", "--resume")
    run_dir = only_run(tmp_path)
    kept = (run_dir / "measurements.csv").read_text().splitlines()[1:3]

    monkeypatch.setattr(store.CsvAppender, "write", write)
    assert str(run_dir) in line
    assert main(["run", "--resume", str(run_dir)]) == 0
    cases = len(workloads.suites()["faults"].cases("smoke"))
    assert_nothing_lost_or_invented(run_dir, cases)
    assert (run_dir / "measurements.csv").read_text().splitlines()[1:3] == kept


@pytest.mark.parametrize(
    "out, needle",
    [
        ("/sys/bench-results", "cannot create a run folder there"),
        ("a-file", "a file is in the way of a folder"),
        ("x" * 300, "File name too long"),
    ],
    ids=["read-only", "file-valued", "too-long"],
)
def test_an_out_folder_that_cannot_hold_a_run_is_one_line(out, needle, tmp_path, capsys):
    (tmp_path / "a-file").write_text("not a folder")
    out = out if out.startswith("/") else str(tmp_path / out)
    argv = ["run", "--suite", "binary_adder", "--profile", "smoke", "--out", out]
    _one_line_exit_2(main(argv), capsys, needle)


def test_a_full_disk_before_the_run_has_an_env_json_leaves_nothing_and_says_run_again(
    faults, tmp_path, monkeypatch, capsys
):
    def full_disk(fd):  # the first durable write of a new run is its env.json
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    argv = ["run", "--suite", "faults", "--profile", "smoke", "--out", str(tmp_path)]
    line = _one_line_exit_2(main(argv), capsys, "No space left on device", "run again")
    assert "--resume" not in line
    assert list(tmp_path.iterdir()) == []  # no folder that is not a run


def test_a_run_name_too_long_for_a_folder_is_one_line(tmp_path, capsys):
    argv = ["run", "--name", "x" * 300, "--out", str(tmp_path)]
    _one_line_exit_2(main(argv), capsys, "--name", "at most")
    assert list(tmp_path.iterdir()) == []


def test_a_report_into_a_read_only_folder_is_one_line(run_copy, monkeypatch, capsys):
    def read_only(self, path, *args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(path))

    monkeypatch.setattr(pd.DataFrame, "to_csv", read_only)
    _one_line_exit_2(main(["report", str(run_copy)]), capsys, "Read-only file system", "fits.csv")


@pytest.mark.parametrize("name", ["report.md", "fits.csv", "shapes.csv", "claims_derived.csv"])
def test_a_report_cut_short_by_a_full_disk_leaves_each_of_its_files_as_it_was(
    name, run_copy, monkeypatch, capsys
):
    """The disk fills while one of the report's files is half written: every file the report
    writes is the old one, whole, and nothing is left beside them (each goes through the
    store's write-aside-and-rename: a file written any other way is not cut, and the run
    would end 0)."""
    before = _files(run_copy)
    write_whole = store.write_whole

    def half_then_full(path, write):
        def half(tmp):
            write(tmp)
            data = tmp.read_bytes()
            tmp.write_bytes(data[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device", str(tmp))

        return write_whole(path, half if path.name == name else write)

    monkeypatch.setattr(store, "write_whole", half_then_full)
    line = _one_line_exit_2(main(["report", str(run_copy)]), capsys, "No space left", name)
    assert store.ASIDE not in line  # (the file the user knows, not the name written aside)
    assert _files(run_copy) == before


def test_an_infinite_case_timeout_is_refused(tmp_path, capsys):
    argv = ["run", "--case-timeout", "inf", "--out", str(tmp_path)]
    _one_line_exit_2(main(argv), capsys, "expected a positive finite number, got inf")
    assert list(tmp_path.iterdir()) == []


def test_a_plugin_that_raises_at_import_breaks_neither_list_nor_other_runs(
    small_run, tmp_path, monkeypatch, capsys
):
    plugin = tmp_path / "broken_plugin.py"
    plugin.write_text("raise RuntimeError('this plugin is broken')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("BENCH_SUITE_MODULES", "broken_plugin")
    _one_line_exit_2(main(["run", "--out", str(tmp_path)]), capsys, "this plugin is broken")
    assert main(["list"]) == 0
    captured = capsys.readouterr()
    assert "lstm:" in captured.out and "cannot import 'broken_plugin'" in captured.err
    copy = tmp_path / "copy"
    shutil.copytree(small_run, copy)
    assert main(["report", str(copy)]) == 0


# --- Damaged files: the loader refuses them, naming file and line ------------------------------


def _cut(name, at):
    def edit(run_dir):
        path = run_dir / name
        text = path.read_text()
        path.write_text(text[: at(text)])

    return edit


def _duplicate_last_line(name):
    def edit(run_dir):
        path = run_dir / name
        lines = path.read_text().splitlines(keepends=True)
        path.write_text("".join([*lines, lines[-1]]))

    return edit


def _ok_line(run_dir) -> int:
    lines = (run_dir / "measurements.csv").read_text().splitlines()
    return next(i for i, ln in enumerate(lines, 1) if ",ok," in ln)


def _in_ok_row(column, value):
    def edit(run_dir):
        df = pd.read_csv(run_dir / "measurements.csv", dtype=str, keep_default_na=False)
        df.loc[_ok_line(run_dir) - 2, column] = value
        df.to_csv(run_dir / "measurements.csv", index=False)

    return edit


def _inside_last_median(text: str) -> int:
    """Where to cut ``measurements.csv`` so that its last row ends inside its median time."""
    header, last = text.splitlines()[0].split(","), text.splitlines()[-1]
    median = last.split(",")[header.index("time_median_s")]  # (no quoted field before it)
    return len(text) - len(last) - 2 + last.index(f",{median},") + 1 + len(median) // 2


def _cut_quoted_then_appended(run_dir):
    """A row cut inside its quoted error, and a later row appended after it (no repair)."""
    path = run_dir / "measurements.csv"
    header, first, second = path.read_text().splitlines(keepends=True)
    path.write_text(header + first[: first.index('"') + 8] + second)


def _first_sample_time(value):
    def edit(run_dir):
        path = run_dir / "samples.csv"
        lines = path.read_text().splitlines(keepends=True)
        column = lines[0].rstrip().split(",").index("time_s")
        fields = lines[1].rstrip().split(",")
        fields[column] = value
        lines[1] = ",".join(fields) + "\n"
        path.write_text("".join(lines))

    return edit


ROWS, SAMPLES = "measurements.csv", "samples.csv"
DAMAGE = {
    "row-cut-inside-a-quoted-field": (
        _cut(ROWS, lambda t: t.index('"') + 8),
        ROWS,
        r"line 2: the last row has no line end",
    ),
    "quoted-field-cut-then-a-row-appended": (
        _cut_quoted_then_appended,
        ROWS,
        r"line \d+: (not valid CSV|\d+ fields, expected)",
    ),
    "row-cut-in-a-number": (
        _cut(ROWS, _inside_last_median),
        ROWS,
        r"line 3: the last row has no line end",
    ),
    "duplicate-case": (_duplicate_last_line(ROWS), ROWS, r"line 4: the same case as line 3"),
    "negative-time": (
        _in_ok_row("time_median_s", "-0.5"),
        ROWS,
        r"line 3: time_median_s is -0.5 on an ok row",
    ),
    "infinite-time": (
        _in_ok_row("time_min_s", "inf"),
        ROWS,
        r"line 3: time_min_s is inf on an ok row",
    ),
    "missing-time": (
        _in_ok_row("time_max_s", ""),
        ROWS,
        r"line 3: time_max_s is missing on an ok row",
    ),
    "latin-1-byte": (
        lambda d: (d / ROWS).write_bytes((d / ROWS).read_bytes().replace(b"odd", b"\xf6dd")),
        ROWS,
        r"line 2: byte 0xf6 is not UTF-8",
    ),
    "sample-time-cut-short": (
        _cut(SAMPLES, lambda t: len(t) - 4),
        SAMPLES,
        r"line \d+: the last row has no line end",
    ),
    "duplicate-sample": (
        _duplicate_last_line(SAMPLES),
        SAMPLES,
        r"line \d+: the same sample as line \d+",
    ),
    "infinite-sample": (_first_sample_time("inf"), SAMPLES, r"line 2: time_s is inf on a sample"),
    "text-sample": (_first_sample_time("1.0e"), SAMPLES, r"line 2: column 'time_s' has '1.0e'"),
}


@pytest.mark.parametrize("damage", DAMAGE.values(), ids=DAMAGE.keys())
def test_a_damaged_run_folder_is_refused_with_file_and_line(run_copy, damage, capsys):
    edit, name, message = damage
    edit(run_copy)
    load = analysis.load_samples if name == SAMPLES else analysis.load_measurements
    with pytest.raises(SchemaError, match=f"{name}: {message}"):
        load(run_copy / name)
    # neither resume nor report builds on it: one line each, and the resume touches nothing
    if "last row has no line end" not in message:  # a cut last row is what resume repairs
        before = _files(run_copy)
        line = _one_line_exit_2(main(["run", "--resume", str(run_copy)]), capsys, name, "line")
        assert "settings differ" not in line  # a damaged row is not read as another case
        assert _files(run_copy) == before
    if name == ROWS:  # (the report does not read the samples)
        _one_line_exit_2(main(["report", str(run_copy)]), capsys, "line")


@pytest.mark.parametrize("edit", ["cut-a-sample", "delete-samples"])
def test_resume_refuses_a_row_whose_samples_were_damaged(run_copy, edit, capsys):
    """A sample line cut short whose case has a row is not a kill (the row is written after
    its samples): resume refuses it rather than drop a sample of a finished case."""
    path = run_copy / SAMPLES
    if edit == "cut-a-sample":
        path.write_text(path.read_text()[:-4])
    else:
        path.unlink()
    before = _files(run_copy)
    line = _one_line_exit_2(main(["run", "--resume", str(run_copy)]), capsys, "samples of the")
    assert "measurements.csv, whose row says" in line
    assert _files(run_copy) == before


@pytest.mark.parametrize("edit", ["deleted", "emptied", "header-only"])
def test_samples_whose_rows_file_is_gone_are_refused_never_deleted(
    small_run, run_copy, edit, capsys
):
    path = run_copy / ROWS
    if edit == "header-only":  # cut to its header line: no run was measuring these cases
        path.write_text(path.read_text().splitlines(keepends=True)[0])
    else:
        path.unlink() if edit == "deleted" else path.write_bytes(b"")
    before = _files(run_copy)
    line = _one_line_exit_2(main(["run", "--resume", str(run_copy)]), capsys, SAMPLES)
    assert "samples of 1 case" in line and "rows were lost" in line and "new run" in line
    # the reading commands refuse the folder too (not a run of no cases), and name its rows
    with pytest.raises(SchemaError, match=ROWS):
        analysis.load(run_copy)
    _one_line_exit_2(main(["report", str(run_copy)]), capsys, ROWS)
    _one_line_exit_2(main(["compare", str(small_run), str(run_copy)]), capsys, ROWS)
    assert _files(run_copy) == before
    assert main(["history", str(run_copy.parent), "--out", str(run_copy.parent / "h")]) == 2
    assert f"{run_copy} left out: " in capsys.readouterr().err  # its only run: none to draw


def test_samples_whose_row_was_deleted_by_hand_are_refused_never_deleted(sized_copy, capsys):
    """Only the cases in flight when a run died have samples and no row (theirs are the last
    samples written): samples without a row before those of a case with one are rows lost."""
    path = sized_copy / ROWS
    header, first, second = path.read_text().splitlines(keepends=True)
    path.write_text(header + second)
    before = _files(sized_copy)
    line = _one_line_exit_2(main(["run", "--resume", str(sized_copy)]), capsys, SAMPLES)
    assert "line 2" in line and "rows were lost" in line
    assert _files(sized_copy) == before


def test_the_last_samples_of_several_cases_without_rows_are_a_group_cut_short(sized_copy):
    """A sweep group's samples are written before its rows: killed between the two, the run
    leaves the group's samples last, with no row, and its mark of the group in flight; the
    resume measures the group again."""
    path = sized_copy / ROWS
    keys = [
        list(workloads.case_key(r)) for r in analysis.load_measurements(path).to_dict("records")
    ]
    path.write_text(path.read_text().splitlines(keepends=True)[0])
    mark = {"interleaved": ["first", "second"], "keys": keys}
    (sized_copy / store.IN_FLIGHT).write_text(json.dumps(mark))
    assert main(["run", "--resume", str(sized_copy)]) == 0
    assert_nothing_lost_or_invented(sized_copy, 2)


def test_a_whole_last_row_without_its_line_end_is_a_row_not_a_cut(run_copy, capsys):
    path, samples = run_copy / ROWS, (run_copy / SAMPLES).read_bytes()
    whole = path.read_bytes()
    path.write_bytes(whole.rstrip(b"\r\n"))
    assert len(analysis.load_measurements(path)) == 2
    assert main(["run", "--resume", str(run_copy)]) == 0
    assert "this run is already complete" in capsys.readouterr().err
    assert path.read_bytes() == whole and (run_copy / SAMPLES).read_bytes() == samples


def test_a_last_row_cut_inside_its_note_keeps_its_measurements(run_copy):
    """The note is the last column, free text: a row cut inside it cannot be told from a row
    whose line end was taken off. Every measured field is whole, so the row is kept."""
    path = run_copy / ROWS
    whole = analysis.load_measurements(path)
    text = path.read_text().rstrip("\r\n")
    assert '"' not in text[text.rfind(",") :]  # the last row's note is a plain field
    path.write_text(text[: text.rfind(",") + 1] + "a note cut sho")  # and its end is gone
    kept = analysis.load_measurements(path)
    assert kept.note.iloc[-1] == "a note cut sho"
    measured = [c for c in whole.columns if c != "note"]
    pd.testing.assert_frame_equal(kept[measured], whole[measured])


def test_repair_removes_only_the_files_bench_wrote_aside(run_copy):
    (run_copy / "notes.tmp").write_text("the user's own notes")
    (run_copy / f"env.json{store.ASIDE}").write_text("{")  # a write cut before its rename
    (run_copy / "claims.csv.tmp").write_text("")  # so named by earlier versions
    assert main(["run", "--resume", str(run_copy)]) == 0
    assert (run_copy / "notes.tmp").read_text() == "the user's own notes"
    assert not (run_copy / f"env.json{store.ASIDE}").exists()
    assert not (run_copy / "claims.csv.tmp").exists()


@pytest.mark.parametrize(
    "env, message",
    [([1, 2], "a JSON list, expected an object"), ({"drop": "profile"}, "no profile")],
    ids=["not-an-object", "no-profile"],
)
def test_an_env_json_that_is_not_a_runs_is_one_line(run_copy, env, message, capsys):
    path = run_copy / "env.json"
    if isinstance(env, dict):
        data = json.loads(path.read_text())
        del data[env["drop"]]
        env = data
    path.write_text(json.dumps(env))
    with pytest.raises(SchemaError, match=message):
        analysis.load(run_copy)
    _one_line_exit_2(main(["run", "--resume", str(run_copy)]), capsys, message)
    _one_line_exit_2(main(["report", str(run_copy)]), capsys, message)


def test_a_claim_row_cut_short_is_refused_and_resume_repairs_it(run_copy):
    path = run_copy / "claims.csv"
    columns = list(store.CLAIM_COLUMNS)
    row = dict.fromkeys(columns, "")
    row.update(run_id="r", claim="X9", suite="faults", verdict="PASS", statement="a, b")
    path.write_text(",".join(columns) + "\n" + ",".join(f'"{row[c]}"' for c in columns)[:-12])
    with pytest.raises(SchemaError, match="claims.csv: line 2: "):
        analysis.load_claims(path)
    store.repair_interrupted(run_copy)
    assert analysis.load_claims(path).empty


# --- Signals ----------------------------------------------------------------------------------


@pytest.fixture
def sigint():
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        pytest.skip("SIGINT is ignored here (started in the background)")
    yield
    runner.restore_signals()


def test_a_second_ctrl_c_while_the_run_stops_is_ignored_until_the_process_ends(sigint):
    cleaned = []
    with pytest.raises(runner.Interrupted):
        with runner.user_signals():
            try:
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(5)  # (not reached: the first one raises)
            finally:
                os.kill(os.getpid(), signal.SIGINT)  # the second, 2 ms later: mid-cleanup
                cleaned.append(True)
    assert cleaned
    try:  # and after the run has stopped, on the way out of the process
        os.kill(os.getpid(), signal.SIGINT)
    except KeyboardInterrupt:
        pytest.fail("a second Ctrl-C raised after the run had stopped")


def test_a_ctrl_c_inside_a_host_callback_stops_the_run_with_one_line(
    sigint, faults, tmp_path, capsys
):
    argv = ["run", "--suite", "faults-ctrl-c", "--profile", "smoke", "--out", str(tmp_path)]
    assert main(argv) == 130
    err = capsys.readouterr().err
    run_dir = only_run(tmp_path)
    assert "Traceback" not in err
    assert err.rstrip().splitlines()[-1] == (
        f"bench: interrupted; finished cases are saved (resume with --resume {run_dir})"
    )
    df = analysis.load_measurements(run_dir / ROWS)  # the case before it, and not this one
    assert df.variant.tolist() == ["fine"] and df.status.tolist() == ["ok"]


def test_a_ctrl_c_a_library_swallowed_while_the_run_started_stops_it(
    sigint, faults, tmp_path, monkeypatch, capsys
):
    import bench

    monkeypatch.setattr(bench, "SIGNALLED", [signal.SIGINT])  # as bench/__main__.py keeps it
    argv = ["run", "--suite", "faults-sized", "--profile", "smoke", "--out", str(tmp_path)]
    assert main(argv) == 130
    assert capsys.readouterr().err == "bench: interrupted\n"
    assert not tmp_path.exists() or not list(tmp_path.iterdir())  # nothing started


@pytest.mark.slow
@pytest.mark.parametrize("after_s", [0.6, 1.0, 1.4])
def test_a_ctrl_c_at_start_up_stops_the_run(after_s, tmp_path):
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        pytest.skip("SIGINT is ignored here (started in the background): a child inherits it")
    proc = _bench("run", "--suite", "faults-sized", "--profile", "smoke", "--out", str(tmp_path))
    time.sleep(after_s)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "Exception ignored" not in err, err
    assert err.rstrip().splitlines()[-1].startswith("bench: interrupted")


@pytest.mark.slow
def test_two_ctrl_c_in_a_row_stop_the_run_with_one_line(tmp_path):
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        pytest.skip("SIGINT is ignored here (started in the background): a child inherits it")
    proc = _bench("run", "--suite", "binary_adder", "--profile", "smoke", "--out", str(tmp_path))
    rows = lambda: [p / ROWS for p in tmp_path.iterdir() if not p.is_symlink()]  # noqa: E731
    _until(lambda: any(p.exists() and len(p.read_text().splitlines()) >= 3 for p in rows()), proc)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.002)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "Exception ignored" not in err, err
    assert err.rstrip().splitlines()[-1].startswith("bench: interrupted")


# --- The compile cache -------------------------------------------------------------------------


def test_a_compile_cache_that_cannot_be_written_is_off_and_said_once(tmp_path):
    """In a fresh process (JAX sets its cache up once per process), as a run's cases compile."""
    (tmp_path / "cache").write_text("a file where the cache folder would be")
    code = (
        "import jax.numpy as jnp; from bench import timing;"
        "timing.use_compile_cache(timing.default_cache_dir());"
        "print([timing.compile_ahead(f, (jnp.ones(3),))[2]['compile_cache']"
        " for f in (jnp.sin, jnp.cos)])"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[-2] == "['off', 'off']", done.stdout
    assert done.stderr.count("compile_cache=off") == 1, done.stderr


# --- Kills at several moments (each resumes to the same rows, nothing doubled) -----------------


@pytest.mark.slow
@pytest.mark.parametrize(
    "sig, moment",
    [
        (signal.SIGKILL, "measurements.csv"),
        (signal.SIGTERM, "measurements.csv"),
        (signal.SIGINT, "measurements.csv"),
        (signal.SIGKILL, "binary_adder_exhaustive.csv"),
        (signal.SIGKILL, "claims.csv"),
        (signal.SIGKILL, "fits.csv"),
    ],
    ids=[
        "kill-9-in-cases",
        "term-in-cases",
        "ctrl-c-in-cases",
        "kill-9-in-experiment",
        "kill-9-after-claims",
        "kill-9-in-report",
    ],  # fmt: skip
)
def test_a_run_killed_at_any_moment_resumes_to_the_same_complete_folder(sig, moment, tmp_path):
    if sig == signal.SIGINT and signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        pytest.skip("SIGINT is ignored here (started in the background): a child inherits it")
    argv = ["run", "--suite", "binary_adder", "--profile", "smoke", "--out", str(tmp_path)]
    proc = _bench(*argv)

    def reached():
        runs = [p for p in tmp_path.iterdir() if not p.is_symlink()]
        path = runs[0] / moment if runs else None
        if path is None or not path.exists():
            return False
        return moment != ROWS or len(path.read_text().splitlines()) >= 3

    _until(reached, proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    run_dir = only_run(tmp_path)
    if sig != signal.SIGKILL:
        assert proc.returncode in (0, 128 + sig), err  # 0: it had finished
        assert not (run_dir / store.IN_FLIGHT).exists()  # the user's stop is not a crash
    before = (run_dir / ROWS).read_text()
    assert main(["run", "--resume", str(run_dir)]) == 0
    cases = len(workloads.suites()["binary_adder"].cases("smoke"))
    df = assert_nothing_lost_or_invented(run_dir, cases)
    assert (df.status == "ok").all()
    # every row written before the kill is still there, unchanged
    assert (run_dir / ROWS).read_text().startswith(before[: before.rfind("\n") + 1])
    done = analysis.load_claims(run_dir / "claims.csv")
    assert done.claim.tolist() == ["C1"] and (done.verdict != "ERROR").all()


def _extra_session(env):
    forged = {**env["sessions"][0], "session": 2, "first_row": 3, "jax": "0.0.1"}
    return {**env, "sessions": [*env["sessions"], forged]}


ENV_DAMAGE = {  # what each does to env.json, and the field the one line names
    "started-a-number": (lambda env: {**env, "started_utc": 1733650000}, "started_utc is"),
    "calibration-a-string": (lambda env: {**env, "calibration": "fast"}, "calibration is"),
    "suites-a-string": (lambda env: {**env, "suites": "faults"}, 'suites is "faults"'),
    "repeats-a-word": (lambda env: {**env, "repeats": "two"}, 'repeats is "two"'),
    "extra-session": (_extra_session, 'sessions[1].jax is "0.0.1"'),
    "session-out-of-order": (
        lambda env: {**env, "sessions": [{**env["sessions"][0], "first_row": 2}]},
        "sessions[0].first_row is 2",
    ),
    "byte-0xff": (b'{"schema_version": 3, "run_id": "\xff"}', "not UTF-8"),
    "a-list": ([1, 2], "a JSON list"),
    "cut-short": (b'{"schema_version": 3, "run_id": "r', "invalid JSON"),
}


def _damage_env(run_dir, damage):
    path = run_dir / "env.json"
    if isinstance(damage, bytes):
        path.write_bytes(damage)
    elif isinstance(damage, list):
        path.write_text(json.dumps(damage))
    else:
        path.write_text(json.dumps(damage(json.loads(path.read_text()))))


@pytest.mark.parametrize("damage, field", ENV_DAMAGE.values(), ids=ENV_DAMAGE)
def test_a_damaged_env_json_is_one_line_naming_file_and_field(run_copy, damage, field, capsys):
    before = _files(run_copy)
    _damage_env(run_copy, damage)
    before["env.json"] = (run_copy / "env.json").read_bytes()
    with pytest.raises(SchemaError, match=re.escape(field)):
        analysis.load(run_copy)
    for argv in (["run", "--resume", str(run_copy)], ["report", str(run_copy)]):
        line = _one_line_exit_2(main(argv), capsys, field)
        assert str(run_copy / "env.json") in line
    line = _one_line_exit_2(main(["compare", str(run_copy), str(run_copy)]), capsys, field)
    assert _files(run_copy) == before  # nothing written, nothing lost


@pytest.mark.parametrize("damage", ["cut", "not-gzip"])
def test_kept_samples_whose_gzip_is_damaged_are_one_line(run_copy, damage, capsys):
    samples = run_copy / "samples.csv"
    gz = run_copy / "samples.csv.gz"  # as a reference run keeps them
    data = gzip.compress(samples.read_bytes())
    gz.write_bytes(data[:-30] if damage == "cut" else b"\xff" + data)
    samples.unlink()
    for argv in (["report", str(run_copy)], ["compare", str(run_copy), str(run_copy)]):
        _one_line_exit_2(main(argv), capsys, "samples.csv.gz: not a whole gzip file")
