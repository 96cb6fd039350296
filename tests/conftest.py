import functools
import pathlib
import platform
import re

import flax
import jax
import optax
import pytest

from bench.cli import main
from tests.bench.helpers import only_run

pytest_plugins = ["pytester"]


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


# --- pytest-benchmark ---------------------------------------------------------------------------
# machine_info is what pytest-benchmark compares between saves (`--benchmark-compare` warns when it
# differs, and `filterwarnings = error` turns that warning into a crash): it holds only what
# identifies the machine and the software, the same in every session on one machine. What
# varies per session (the load average; py-cpuinfo's current clock, dropped) goes into each
# benchmark's extra_info instead: `load_avg_start` taken as the session starts, `load_avg_finish`
# as it saves.

PER_SESSION_CPU = ("hz_actual", "hz_actual_friendly")
"""py-cpuinfo's fields that are a reading of the moment, not the machine."""

_session: dict = {}


def pytest_sessionstart(session):
    import os

    _session["load_avg_start"] = [round(x, 2) for x in os.getloadavg()]


MACHINE = ("jax", "jaxlib", "flax", "optax", "numpy", "backend", "device_kind", "device_count")
"""The run settings (``bench.environment.settings``) that identify the machine and its software."""


@functools.cache
def _machine() -> dict:
    """Versions and device (the same all session; asked for only when pytest-benchmark
    compares or saves, so a plain test session does not start jax's backend here)."""
    from bench import environment

    values = environment.settings()
    return {key: values[key] for key in MACHINE}


def session_info() -> dict:
    """Per-session context for a benchmark's extra_info (taken as the session started)."""
    return {"load_avg_start": _session.get("load_avg_start")}


def pytest_benchmark_update_machine_info(config, machine_info):
    """Versions and device beside pytest-benchmark's machine info (what `compare` shows of a
    save's environment), and none of the per-session readings."""
    for key in PER_SESSION_CPU:
        machine_info.get("cpu", {}).pop(key, None)
    machine_info["bench"] = dict(_machine())


def pytest_benchmark_update_json(config, benchmarks, output_json):
    """Each saved benchmark's extra_info gets the session's context and its load at the end."""
    import os

    finish = [round(x, 2) for x in os.getloadavg()]
    for entry in output_json.get("benchmarks", []):
        entry.setdefault("extra_info", {}).update(**session_info(), load_avg_finish=finish)


def _natural(text) -> list:
    """A sort key that orders the numbers in ``text`` by value (128 before 1024)."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", str(text or ""))]


def pytest_benchmark_group_stats(config, benchmarks, group_by):
    """pytest-benchmark's grouping, with the groups and the names within each in numeric order
    of their sizes (its own sort is by text: seq_len=1024 before seq_len=128)."""
    from pytest_benchmark.plugin import pytest_benchmark_group_stats as grouped

    groups = grouped(config=config, benchmarks=benchmarks, group_by=group_by)
    for _, members in groups:
        members.sort(key=lambda b: _natural(b["fullname" if "full" in group_by else "name"]))
    return sorted(groups, key=lambda pair: _natural(pair[0]))
