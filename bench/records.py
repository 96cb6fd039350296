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

from bench.config import RunConfig
from bench.workloads import IDENTITY, SIZE_FIELDS, case_key

SCHEMA_VERSION = 2  # 2: steps_executed, note and regime columns; n_devices in the identity

# column -> pandas dtype. Int64/Float64/string are nullable: empty cells stay missing.
COLUMNS: dict[str, str] = {
    "run_id": "string",
    "suite": "string",
    "model": "string",
    "variant": "string",
    "mode": "string",
    **{f: "Int64" for f in SIZE_FIELDS},
    "regime": "string",
    "n_params": "Int64",
    "status": "string",
    "error": "string",
    "compile_s": "Float64",
    "compile_cache": "string",
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
    "limit_s": "Float64",
    "limit_bound": "string",
    "efficiency": "Float64",
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
    "run_id": "string",
    **{c: COLUMNS[c] for c in IDENTITY},
    "repeat": "Int64",
    "time_s": "Float64",
}

CLAIM_COLUMNS: dict[str, str] = {
    "run_id": "string",
    "claim": "string",
    "suite": "string",
    "verdict": "string",
    "check": "string",
    "measure": "string",
    "rule": "string",
    "measured": "string",
    "statement": "string",
    "slip": "string",
}

STATUSES = ("ok", "error", "oom", "timeout", "nan", "range", "wrong", "recompiled", "diverged")
"""``diverged``: an iterative evaluator did not converge within its cap (bench/suites/deer.py)."""
VERDICTS = ("PASS", "FAIL", "CORRECTED", "INCONCLUSIVE", "ERROR")  # see bench.claims

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


def environment(run_id: str, config: RunConfig, argv: list[str] | None = None) -> dict:
    """The run context that every row of a run shares, with the run's configuration."""
    import flax
    import jax
    import jaxlib
    import numpy
    import optax

    devices = jax.devices()
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": run_id,
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
        "command": " ".join(argv if argv is not None else sys.argv),
        **config.to_env(),
    }


def write_json(path: pathlib.Path, data: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")
    os.replace(tmp, path)


def read_json(path: pathlib.Path) -> dict:
    return json.loads(path.read_text())


# --- Resuming: what a run folder already holds ------------------------------------------------


def _complete_lines(path: pathlib.Path) -> str:
    """The file's text up to its last newline: a line without one is a write cut short."""
    text = path.read_text() if path.exists() else ""
    return text[: text.rfind("\n") + 1]


def completed_keys(run_dir: pathlib.Path) -> set[tuple]:
    """Identities (:func:`bench.workloads.case_key`) of the cases recorded in a run folder."""
    lines = _complete_lines(run_dir / "measurements.csv").splitlines()
    return {case_key(record) for record in csv.DictReader(lines)}


def repair_interrupted(run_dir: pathlib.Path) -> None:
    """Undo what a killed run left half-written, before resuming it.

    A line without its newline is a write cut short: dropped. Raw samples of a case with no
    row in measurements.csv belong to a case that did not finish (it is measured again):
    dropped, so no case ends up with two sets of samples.
    """
    rows_path, samples_path = run_dir / "measurements.csv", run_dir / "samples.csv"
    rows_text, samples_text = _complete_lines(rows_path), _complete_lines(samples_path)
    done = {case_key(record) for record in csv.DictReader(rows_text.splitlines())}
    sample_lines = samples_text.splitlines(keepends=True)
    kept = sample_lines[:1] + [
        line
        for line, record in zip(sample_lines[1:], csv.DictReader(sample_lines), strict=True)
        if case_key(record) in done
    ]
    for path, new in ((rows_path, rows_text), (samples_path, "".join(kept))):
        if path.exists() and path.read_text() != new:
            tmp = path.with_suffix(".tmp")
            tmp.write_text(new)
            os.replace(tmp, path)


def recorded_claims(path: pathlib.Path) -> set[str]:
    """Claim ids with a verdict in ``claims.csv`` (an ERROR row does not count: that claim's
    experiment runs again on resume, and the report keeps each claim's last row)."""
    lines = _complete_lines(path).splitlines()
    return {r["claim"] for r in csv.DictReader(lines) if r.get("verdict") not in (None, "ERROR")}
