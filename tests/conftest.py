import pathlib

import pytest

from bench.cli import main


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory) -> pathlib.Path:
    """One real run of the LSTM suite at the smoke profile, shared by the harness tests."""
    out = tmp_path_factory.mktemp("results")
    assert main(["run", "--suite", "lstm", "--profile", "smoke", "--out", str(out)]) == 0
    (run_dir,) = out.iterdir()
    return run_dir
