"""The run folder and its files: the CSV schema, the run-context sidecar, durable appends.

A run folder ``results/<run_id>/`` holds

- ``measurements.csv``: one row per measured case, columns :data:`COLUMNS` (units in names);
- ``samples.csv``: one row per timed repeat (:data:`SAMPLE_COLUMNS`), the raw timings;
- ``claims.csv``: one row per claim verdict produced by a suite's experiments;
- ``env.json``: the run context (versions, device, flags, command line, schema version);
- ``report.md`` and plots, re-rendered from the CSVs by ``python -m bench report``.

Rows are appended, flushed and fsync'ed as each case finishes, so an interrupted run loses at
most the case in flight, and ``--resume`` can finish it.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import pathlib
import platform
import subprocess
import sys
from collections.abc import Iterable

from bench.workloads import SIZE_FIELDS

SCHEMA_VERSION = 2  # 2: steps_executed and note columns

IDENTITY = ("run_id", "suite", "model", "variant", "mode", *SIZE_FIELDS)

# column -> pandas dtype. Int64/Float64/string are nullable: empty cells stay missing.
COLUMNS: dict[str, str] = {
    "run_id": "string",
    "suite": "string",
    "model": "string",
    "variant": "string",
    "mode": "string",
    **{f: "Int64" for f in SIZE_FIELDS},
    "n_params": "Int64",
    "status": "string",
    "error": "string",
    "compile_s": "Float64",
    "repeats": "Int64",
    "time_median_s": "Float64",
    "time_min_s": "Float64",
    "time_max_s": "Float64",
    "time_iqr_s": "Float64",
    "seq_steps_pred": "Int64",
    "span_ops": "Int64",
    "steps_executed": "Int64",
    "work_flops": "Float64",
    "flops_analytic": "Float64",
    "achieved_flops_per_s": "Float64",
    "n_devices": "Int64",
    "per_device_batch": "Int64",
    "device_kind": "string",
    "platform": "string",
    "nnx_mode": "string",
    "mem_argument_bytes": "Int64",
    "mem_output_bytes": "Int64",
    "mem_temp_bytes": "Int64",
    "mem_generated_code_bytes": "Int64",
    "seed": "Int64",
    "extra_json": "string",
    "note": "string",
}

SAMPLE_COLUMNS: dict[str, str] = {
    **{c: COLUMNS[c] for c in IDENTITY},
    "repeat": "Int64",
    "time_s": "Float64",
}

CLAIM_COLUMNS: dict[str, str] = {
    "run_id": "string",
    "claim": "string",
    "suite": "string",
    "check": "string",
    "measured": "string",
    "verdict": "string",
    "statement": "string",
}

STATUSES = ("ok", "error", "oom", "timeout", "nan", "range", "wrong", "recompiled")
# INCONCLUSIVE: the data cannot decide (too few points, missing counts); ERROR: the check
# itself crashed
VERDICTS = ("PASS", "FAIL", "CORRECTED", "INCONCLUSIVE", "ERROR")

FILES = {
    "measurements.csv": COLUMNS,
    "samples.csv": SAMPLE_COLUMNS,
    "claims.csv": CLAIM_COLUMNS,
}


class CsvAppender:
    """Append rows to a CSV with a fixed header; each row is flushed and fsync'ed."""

    def __init__(self, path: pathlib.Path, columns: Iterable[str]):
        self.path, self.columns = path, list(columns)
        new = not path.exists() or path.stat().st_size == 0
        self._file = open(path, "a", newline="")
        self._writer = csv.DictWriter(self._file, fieldnames=self.columns, extrasaction="raise")
        if new:
            self._writer.writeheader()
            self._sync()

    def write(self, row: dict) -> None:
        self._writer.writerow({k: _cell(row.get(k)) for k in self.columns})
        self._sync()

    def _sync(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return value


def git_info() -> dict:
    root = pathlib.Path(__file__).resolve().parent.parent

    def git(*args: str) -> str:
        try:
            return subprocess.run(
                ["git", *args], cwd=root, capture_output=True, text=True, timeout=10
            ).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return ""

    sha = git("rev-parse", "HEAD")
    return {
        "git_sha": sha or None,
        "git_dirty": bool(git("status", "--porcelain", "--untracked-files=no")) if sha else None,
    }


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def new_run_id() -> str:
    sha = git_info()["git_sha"]
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{sha[:7]}" if sha else f"{stamp}-nogit"


def create_run_dir(parent: pathlib.Path, run_id: str) -> pathlib.Path:
    """Create a fresh run folder; a clash with an existing one gets a numeric suffix."""
    parent.mkdir(parents=True, exist_ok=True)
    for n in range(100):
        path = parent / (run_id if n == 0 else f"{run_id}-{n}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise FileExistsError(f"could not find a free run folder name for {run_id} in {parent}")


def _host_cpu() -> str:
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(profile: str, argv: list[str] | None = None) -> dict:
    """The run context that every row of a run shares."""
    import flax
    import jax
    import jaxlib
    import numpy
    import optax

    devices = jax.devices()
    return {
        "schema_version": SCHEMA_VERSION,
        **git_info(),
        "started_utc": utc_now(),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "flax": flax.__version__,
        "optax": optax.__version__,
        "numpy": numpy.__version__,
        "backend": jax.default_backend(),
        "device_kind": devices[0].device_kind,
        "device_count": len(devices),
        "process_count": jax.process_count(),
        "host": platform.node(),
        "host_cpu": _host_cpu(),
        "host_cpu_count": os.cpu_count(),
        "os": platform.platform(),
        "XLA_FLAGS": os.environ.get("XLA_FLAGS", ""),
        "jax_env": {k: v for k, v in os.environ.items() if k.startswith("JAX_")},
        "jax_default_matmul_precision": jax.config.jax_default_matmul_precision,
        "jax_enable_x64": bool(jax.config.jax_enable_x64),
        "profile": profile,
        "command": " ".join(argv if argv is not None else sys.argv),
    }


def write_json(path: pathlib.Path, data: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")
    os.replace(tmp, path)


def read_json(path: pathlib.Path) -> dict:
    return json.loads(path.read_text())
