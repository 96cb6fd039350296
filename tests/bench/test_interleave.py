"""Sweep groups timed in interleaved rounds (bench.runner, bench.timing.time_rounds): every
point built and compiled first, then each round visits every point once; a group's rows are
written together, so a run killed inside one measures the whole group again."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from bench import analysis, runner
from bench.cli import main
from tests.bench.helpers import only_run
from tests.bench.interleave_suite import GROUP_FAULT
from tests.bench.test_faults import ROOT

MODULE = "tests.bench.interleave_suite"


@pytest.fixture
def sweep_suite(monkeypatch):
    monkeypatch.setenv("BENCH_SUITE_MODULES", MODULE)


def run_argv(out, *extra):
    return ["run", "--suite", "sweep", "--profile", "smoke", "--out", str(out), *extra]


def test_a_sweep_group_is_timed_in_rounds_each_visiting_every_point(sweep_suite, tmp_path):
    assert main(run_argv(tmp_path, "--rounds", "4", "--no-experiments")) == 0
    run_dir = only_run(tmp_path)
    df = analysis.load(run_dir).set_index("seq_len")
    samples = analysis.load_samples(run_dir / "samples.csv")
    group = df[df.variant == "sleepy"]
    assert (group.rounds == 4).all() and group.round_spread.notna().all()
    assert df[df.variant == "alone"].rounds.isna().all()  # timed alone, back to back
    timed = samples[samples.variant == "sleepy"]
    assert sorted(timed["round"].unique()) == [0, 1, 2, 3]
    for _, one_round in timed.groupby("round"):  # each point visited once per round
        visits = one_round.drop_duplicates("seq_len")
        assert sorted(visits.seq_len) == [1, 2, 4] and sorted(visits["order"]) == [0, 1, 2]
    assert samples[samples.variant == "alone"]["round"].isna().all()


def test_a_run_killed_inside_a_group_measures_the_whole_group_again(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BENCH_SUITE_MODULES": MODULE}
    argv = [sys.executable, "-m", "bench", *run_argv(tmp_path, "--rounds", "200")]
    log = tmp_path / "bench.log"
    with open(log, "w") as err:
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stderr=err)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:  # until the group's rounds have begun
            marks = list(tmp_path.glob("*/in_flight.json"))
            if marks and "interleaved" in marks[0].read_text():
                break
            assert proc.poll() is None, log.read_text()[-2000:]
            time.sleep(0.05)
        else:
            pytest.fail("the group's rounds did not begin")
        time.sleep(0.5)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        proc.kill()
    log.unlink()
    run_dir = only_run(tmp_path)
    assert "sleepy" not in (run_dir / "measurements.csv").read_text()  # no row of the group
    env_json = json.loads((run_dir / "env.json").read_text())
    env_json["rounds"] = 3  # (a shorter resume; the rounds are the run's own setting)
    (run_dir / "env.json").write_text(json.dumps(env_json))
    assert main(["run", "--resume", str(run_dir), "--no-experiments"]) == 0
    df = analysis.load(run_dir)
    samples = analysis.load_samples(run_dir / "samples.csv")
    group = df[df.variant == "sleepy"]
    assert len(group) == 3 and (group.rounds == 3).all() and (group.session == 2).all()
    timed = samples[samples.variant == "sleepy"]
    assert len(timed) == group.repeats.sum() and set(timed["round"]) == {0, 1, 2}


def test_a_death_inside_a_groups_rounds_counts_against_each_of_its_cases():
    from bench import store

    mark = {"interleaved": ["a", "b"], "keys": [["sweep", 1], ["sweep", 2]]}
    sessions = [{"session": i, "first_row": 0, "died_in": mark} for i in (1, 2)]
    counts = store.deaths({"sessions": [*sessions, {"session": 3, "first_row": 0}]})
    assert counts == {("case", "sweep", 1): 2, ("case", "sweep", 2): 2}
    assert store.deaths({"sessions": [{"first_row": 0, "died_in": {"interleaved": 5}}]}) == {}


@pytest.mark.parametrize(
    "fault, status, error",
    [("raise", "error", "ValueError: broke"), ("memory", "oom", "MemoryError")],
)
def test_a_point_that_fails_in_the_rounds_costs_only_itself(
    fault, status, error, sweep_suite, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv(GROUP_FAULT, fault)
    argv = ["run", "--suite", "sweep-faulty", "--profile", "smoke", "--out", str(tmp_path)]
    assert main([*argv, "--no-experiments"]) == 0
    run_dir = only_run(tmp_path)
    df = analysis.load(run_dir).set_index("seq_len")
    samples = analysis.load_samples(run_dir / "samples.csv")
    assert df.loc[3, "status"] == status and error in df.loc[3, "error"]
    assert (samples.seq_len == 3).sum() == 0
    healthy = df.drop(index=3)
    assert (healthy.status == "ok").all() and (healthy.rounds == 3).all()
    for n, row in healthy.iterrows():  # every round each healthy point finished
        mine = samples[samples.seq_len == n]
        assert len(mine) == row.repeats and set(mine["round"]) == {0, 1, 2}
    capsys.readouterr()
    assert main(["run", "--resume", str(run_dir), "--no-experiments"]) == 0
    assert "already complete" in capsys.readouterr().err  # each case has its own row


def test_a_ctrl_c_inside_a_points_host_callback_stops_the_rounds_with_one_line(
    sweep_suite, tmp_path, monkeypatch, capsys, caplog
):
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        pytest.skip("SIGINT is ignored here (started in the background)")
    monkeypatch.setenv(GROUP_FAULT, "ctrl-c")
    argv = ["run", "--suite", "sweep-faulty", "--profile", "smoke", "--out", str(tmp_path)]
    try:
        assert main([*argv, "--no-experiments"]) == 130
    finally:
        runner.restore_signals()
    run_dir = only_run(tmp_path)
    err = capsys.readouterr().err
    assert "Traceback" not in err and "the others go on" not in err, err
    assert err.rstrip().splitlines()[-1] == (
        f"bench: interrupted; finished cases are saved (resume with --resume {run_dir})"
    )
    # JAX logs what a host callback raised, traceback and all: not the user's Ctrl-C
    assert not [r for r in caplog.records if r.exc_info], caplog.text
    assert analysis.load_measurements(run_dir / "measurements.csv").empty  # none finished


@pytest.mark.slow
def test_a_point_that_hangs_in_the_rounds_costs_only_itself(sweep_suite, tmp_path, monkeypatch):
    monkeypatch.setenv(GROUP_FAULT, "hang")
    argv = ["run", "--suite", "sweep-faulty", "--profile", "smoke", "--out", str(tmp_path)]
    assert main([*argv, "--no-experiments", "--case-timeout", "5"]) == 0
    run_dir = only_run(tmp_path)
    df = analysis.load(run_dir).set_index("seq_len")
    assert df.loc[3, "status"] == "timeout"
    others = df.drop(index=3)  # their rounds died with the worker: measured again on resume
    assert (others.status == "skipped").all() and others.error.str.contains("--resume").all()
    monkeypatch.setenv(GROUP_FAULT, "raise")
    assert main(["run", "--resume", str(run_dir), "--no-experiments"]) == 0
    df = analysis.load(run_dir).set_index("seq_len")
    assert df.loc[3, "status"] == "timeout" and (df.drop(index=3).status == "ok").all()
    samples = analysis.load_samples(run_dir / "samples.csv")
    assert len(samples) == df.repeats.sum() and set(samples["round"]) == {0, 1, 2}
