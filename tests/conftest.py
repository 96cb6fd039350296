import pathlib
import platform

import flax
import jax
import optax
import pytest

from bench.cli import main
from tests.bench.helpers import only_run


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
    run_dir = only_run(out)
    return run_dir


def pytest_benchmark_update_machine_info(config, machine_info):
    """What `compare` shows of a pytest-benchmark save's environment besides pytest-benchmark's
    own machine and commit info: versions, device and the machine's load."""
    import os

    import jaxlib
    import numpy

    machine_info["bench"] = {
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "flax": flax.__version__,
        "optax": optax.__version__,
        "numpy": numpy.__version__,
        "backend": jax.default_backend(),
        "device_kind": jax.devices()[0].device_kind,
        "device_count": jax.device_count(),
        "load_avg_start": [round(x, 2) for x in os.getloadavg()],
    }
