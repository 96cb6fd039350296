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
