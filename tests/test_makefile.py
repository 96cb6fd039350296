"""The Makefile's own entry points, as a user (or an accelerator image) calls them."""

import pathlib
import subprocess
import sys

from bench import analysis
from tests.bench.helpers import only_run

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_make_bench_with_an_existing_interpreter_writes_a_report_with_counts(tmp_path):
    """`make bench PYTHON=...` is how an accelerator image's preinstalled Python runs the suite.

    Run with this test's interpreter: in the newest-jax leg of CI that is Python 3.12 with the
    newest jax, standing in for such an image.
    """
    args = f"--profile smoke --out {tmp_path}"
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
