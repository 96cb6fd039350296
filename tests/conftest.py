import pathlib
import platform

import flax
import jax
import optax
import pytest

from bench.cli import main


def pytest_report_header(config):
    """Which leg of the test matrix this is (make test / make test-latest)."""
    return (
        f"versions: python {platform.python_version()}, jax {jax.__version__}, "
        f"flax {flax.__version__}, optax {optax.__version__}"
    )


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory) -> pathlib.Path:
    """One real run of the LSTM suite at the smoke profile, shared by the harness tests.

    Experiments are left out here; tests/bench/test_experiments.py runs every suite's.
    """
    out = tmp_path_factory.mktemp("results")
    argv = ["run", "--suite", "lstm", "--profile", "smoke", "--out", str(out), "--no-experiments"]
    assert main(argv) == 0
    (run_dir,) = out.iterdir()
    return run_dir
