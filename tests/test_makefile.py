"""The Makefile's own entry points, as a user (or an accelerator image) calls them."""

import pathlib
import subprocess
import sys

import pytest

from bench import analysis
from tests.bench.helpers import only_run

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _make_bench_with_this_interpreter(tmp_path, args: str):
    """`make bench PYTHON=...` is how an accelerator image's preinstalled Python runs the suite.

    Run with this test's interpreter: in the newest-jax leg of CI that is Python 3.12 with the
    newest jax, standing in for such an image.
    """
    args = f"{args} --out {tmp_path}"
    done = subprocess.run(
        ["make", "--no-print-directory", "bench", f"PYTHON={sys.executable}", f"ARGS={args}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    run_dir = only_run(tmp_path)
    assert (run_dir / "report.md").exists()
    df = analysis.load(run_dir)
    ok = df[df.status == "ok"]
    assert len(ok) == len(df) > 0
    for column in ("span_ops", "steps_executed", "work_flops"):
        assert ok[column].notna().all(), f"{column} missing: {ok[ok[column].isna()].variant}"
    assert analysis.load_env(run_dir)["jax"] == __import__("jax").__version__
    return df


def test_make_bench_with_an_existing_interpreter_writes_a_report_with_counts(tmp_path):
    """One small suite end to end through make; every suite's counts are asserted per case by
    tests/benchmarks/test_workloads.py, and the whole smoke profile by the slow test below."""
    df = _make_bench_with_this_interpreter(tmp_path, "--profile smoke --suite binary_adder")
    assert set(df.suite) == {"binary_adder"}


@pytest.mark.slow
def test_make_bench_runs_the_whole_smoke_profile_with_an_existing_interpreter(tmp_path):
    df = _make_bench_with_this_interpreter(tmp_path, "--profile smoke")
    assert len(set(df.suite)) > 1


def _make_compare(target, old, new):
    return subprocess.run(
        ["make", "--no-print-directory", target, f"PYTHON={sys.executable}", f"ARGS={old} {new}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow
def test_make_compare_names_the_tools_status_though_make_itself_can_only_exit_2(tmp_path):
    """GNU make exits 2 for any failed recipe, so `make compare` cannot pass the tool's 1 or 3
    on as its own status; its last line names it (and make's own message: "Error 3")."""
    from tests.bench.test_compare import same_code, write_save

    old = same_code(tmp_path / "old")
    regressed = same_code(tmp_path / "regressed", seed=100, slower={16: 1.5})
    busy = {"load_avg_start": [6.0, 5.0, 4.0], "host_cpu_count": 2}
    moved = same_code(tmp_path / "moved", load=2.5, seed=100, env=busy)
    done = _make_compare("compare", old, old)
    assert done.returncode == 0 and "exited with status" not in done.stderr
    for new, status, why in ((regressed, 1, "a regression"),
                             (moved, 3, "slower cases on a machine that moved")):  # fmt: skip
        done = _make_compare("compare", old, new)
        assert done.returncode == 2, done.stderr
        assert f"python -m bench compare exited with status {status} ({why})" in done.stderr
        assert f"compare] Error {status}" in done.stderr
    save = write_save(tmp_path / "a.json", [])
    done = _make_compare("compare-pytest", save, save)
    assert done.returncode == 2 and "exited with status 2 (the runs cannot be compared)" in (
        done.stderr
    )


@pytest.mark.parametrize("target", ["compare", "compare-pytest"])
@pytest.mark.parametrize("status", [0, 1, 2, 3])
def test_each_status_of_the_tool_is_named_by_make_compare(tmp_path, target, status):
    """The fast twin of the test above: an interpreter that only exits with ``status`` stands
    in for the tool."""
    fake = tmp_path / "python"
    fake.write_text(f"#!/bin/sh\nexit {status}\n")
    fake.chmod(0o755)
    done = subprocess.run(
        ["make", "--no-print-directory", target, f"PYTHON={fake}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == (0 if status == 0 else 2)
    named = f"make {target}: python -m bench compare exited with status {status} ("
    assert (named in done.stderr) == (status != 0), done.stderr
    if status:
        assert done.stderr.rstrip().endswith(f"{target}] Error {status}")
