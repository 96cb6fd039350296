"""The run folder and its files: the CSV schema, the run-context sidecar, durable appends.

A run folder ``results/<run_id>/`` holds

- ``measurements.csv``: one row per measured case, columns :data:`COLUMNS` (units in names);
- ``samples.csv``: one row per timed repeat (:data:`SAMPLE_COLUMNS`), the raw timings;
- ``claims.csv``: one row per claim verdict produced by a suite's experiments;
- ``env.json``: the run context (versions, device, flags, command line, schema version) and
  its ``sessions``: the first run and each ``--resume`` of it, with the settings each ran under;
- ``report.md`` and plots, re-rendered from the CSVs by ``python -m bench report``;
- while a run writes: ``.lock`` (an OS lock, see :class:`RunLock`) and ``in_flight.json``
  (the case or experiment being measured, see :func:`mark_in_flight`).

Rows are appended, flushed and fsync'ed as each case finishes, so an interrupted run loses at
most the case in flight, and ``--resume`` can finish it.
"""

from __future__ import annotations

import csv
import datetime as dt
import errno
import fcntl
import hashlib
import io
import json
import os
import pathlib
import platform
import subprocess
import sys
from collections.abc import Iterable

from bench.config import RunConfig
from bench.workloads import IDENTITY, SIZE_FIELDS, ConfigError, case_key

SCHEMA_VERSION = 3  # 3: interleaved rounds (rounds, round_spread; samples' round and order)
# 2: steps_executed, note and regime columns; n_devices in the identity
READABLE_VERSIONS = (2, 3)
"""Versions the loaders read (a v2 folder's new columns read as missing); a resume appends
only to a folder of this version."""
ADDED_IN_V3 = (
    "rounds", "round_spread", "build_s", "count_s", "warmup_s", "timed_s", "round", "order",
)  # fmt: skip

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
    "rounds": "Int64",
    "round_spread": "Float64",
    "build_s": "Float64",  # where the case's time went: building it,
    "count_s": "Float64",  # tracing and counting its program (span, steps, work),
    "warmup_s": "Float64",  # its first and warm-up calls (compile_s: compiling it),
    "timed_s": "Float64",  # and its timed calls
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
    "round": "Int64",  # the interleaved round it was taken in (empty: timed back to back)
    "order": "Int64",  # its visit's position in that round
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

STATUSES = (
    "ok", "error", "oom", "timeout", "crashed", "nan", "range", "wrong", "recompiled", "diverged",
    "skipped",
)  # fmt: skip
"""``skipped``: not timed, its estimate did not fit ``--budget-s`` (a resume measures it and
its new row supersedes this one, see :func:`bench.analysis.load_measurements`);
``crashed``: the case killed the process measuring it (a worker's exit signal, or the bench
process itself twice, see :data:`CRASH_LIMIT`); ``timeout``: it ran past ``--case-timeout``;
``diverged``: an iterative evaluator did not converge within its cap (bench/suites/deer.py)."""
VERDICTS = ("PASS", "FAIL", "CORRECTED", "INCONCLUSIVE", "ERROR")  # see bench.claims

FILES = {
    "measurements.csv": COLUMNS,
    "samples.csv": SAMPLE_COLUMNS,
    "claims.csv": CLAIM_COLUMNS,
}


class RunFolderError(ConfigError):
    """A run folder that cannot be used: in use by another run, not writable, full, damaged.
    The CLI prints it as one line and exits 2."""


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
    if isinstance(value, str):  # one record, one line: a cut line is then always detectable
        return value.replace("\r", " ").replace("\n", " ")
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
    dirty = bool(git("status", "--porcelain", "--untracked-files=no")) if sha else None
    # two dirty trees at one commit differ by their uncommitted changes: hash them
    diff = hashlib.sha256(git("diff", "HEAD").encode()).hexdigest()[:16] if dirty else None
    return {"git_sha": sha or None, "git_dirty": dirty, "git_diff_sha256": diff}


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def new_run_id() -> str:
    sha = git_info()["git_sha"]
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{sha[:7]}" if sha else f"{stamp}-nogit"


def create_run_dir(parent: pathlib.Path, run_id: str) -> pathlib.Path:
    """Create a fresh run folder; a clash with an existing one gets a numeric suffix.
    A parent that cannot hold it (read-only, a file, a name too long) is a
    :class:`RunFolderError`."""
    try:
        parent.mkdir(parents=True, exist_ok=True)
        for n in range(100):
            path = parent / (run_id if n == 0 else f"{run_id}-{n}")
            try:
                path.mkdir()
                return path
            except FileExistsError:
                continue
    except OSError as e:
        raise RunFolderError(
            f"--out {parent}: cannot create a run folder there: {_reason(e)}"
        ) from None
    raise RunFolderError(f"--out {parent}: no free run folder name for {run_id}")


def _reason(error: OSError) -> str:
    if isinstance(error, FileExistsError | NotADirectoryError) or error.errno == errno.ENOTDIR:
        return "a file is in the way of a folder"
    return error.strerror or str(error)


def io_failure(run_dir: pathlib.Path, error: OSError) -> RunFolderError:
    """The one line for a run that could not write its folder (full disk, read-only, ...)."""
    where = f" ({error.filename})" if getattr(error, "filename", None) else ""
    return RunFolderError(
        f"cannot write to {run_dir}: {_reason(error)}{where}; finished cases are saved: "
        f"free the space or fix the folder, then --resume {run_dir}"
    )


def _host_cpu() -> str:
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


SETTINGS = (
    "git_sha", "git_dirty", "git_diff_sha256", "python", "jax", "jaxlib", "flax", "optax",
    "numpy", "backend", "device_kind", "device_count", "process_count", "host_cpu", "XLA_FLAGS",
    "jax_env", "jax_default_matmul_precision", "jax_enable_x64",
)  # fmt: skip
"""What a time depends on besides the case: code version, platform, devices and flags. A
resume under other settings is refused unless asked for (see :func:`begin_session`)."""


def settings() -> dict:
    """This process's values of :data:`SETTINGS`."""
    import flax
    import jax
    import jaxlib
    import numpy
    import optax

    devices = jax.devices()
    return {
        **git_info(),
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
        "host_cpu": _host_cpu(),
        "XLA_FLAGS": os.environ.get("XLA_FLAGS", ""),
        "jax_env": {k: v for k, v in os.environ.items() if k.startswith("JAX_")},
        "jax_default_matmul_precision": jax.config.jax_default_matmul_precision,
        "jax_enable_x64": bool(jax.config.jax_enable_x64),
    }


def _session(number: int, first_row: int, command: str, values: dict) -> dict:
    return {
        "session": number,
        "started_utc": utc_now(),
        "first_row": first_row,  # its rows are measurements.csv's data rows from this index on
        "command": command,
        "host": platform.node(),
        **values,
    }


def environment(run_id: str, config: RunConfig, argv: list[str] | None = None) -> dict:
    """The run context that every row of a run shares, with the run's configuration; its
    ``sessions`` list starts with this one."""
    values = settings()
    command = " ".join(argv if argv is not None else sys.argv)
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": run_id,
        **values,
        "started_utc": utc_now(),
        "host": platform.node(),
        "host_cpu_count": os.cpu_count(),
        "os": platform.platform(),
        "command": command,
        **config.to_env(),
        "sessions": [_session(1, 0, command, values)],
    }


def sessions(env: dict) -> list[dict]:
    """The sessions of a run (a run written before sessions were recorded has one)."""
    if env.get("sessions"):
        return env["sessions"]
    first = {k: env[k] for k in ("started_utc", "command", "host", *SETTINGS) if k in env}
    return [{"session": 1, "first_row": 0, **first}]


def mixed_settings(env: dict, values: dict) -> list[str]:
    """``"name: recorded -> now"`` for each setting that differs from the run's (the first
    session's; a setting the run did not record is not compared)."""
    return [
        f"{k} {env[k]!r} -> {values.get(k)!r}"
        for k in SETTINGS
        if k in env and env[k] != values.get(k)
    ]


def check_settings(run_dir: pathlib.Path, env: dict, *, allow_mixed: bool) -> dict:
    """This session's settings (:data:`SETTINGS`), with ``"mixed"`` listing those that differ
    from the run's. A difference is refused (:class:`RunFolderError`) unless ``allow_mixed``."""
    values = settings()
    mixed = mixed_settings(env, values)
    if mixed and not allow_mixed:
        raise RunFolderError(
            f"--resume {run_dir}: this session's settings differ from the run's "
            f"({'; '.join(mixed)}); rows would mix them: resume from the run's settings, or "
            "pass --allow-mixed to record each session's settings in env.json"
        )
    return {**values, "mixed": mixed} if mixed else values


def begin_session(
    run_dir: pathlib.Path, env: dict, argv: list[str], values: dict, *, first_row: int
) -> dict:
    """Add a resume session with ``values`` (from :func:`check_settings`) to ``env``, write it
    to ``env.json`` and return the new env.

    Every row the session writes is attributed to it by ``first_row`` (see
    :func:`bench.analysis.load`). A case or experiment left marked in flight
    (:func:`mark_in_flight`) killed the previous session: it becomes that session's
    ``died_in`` (counted by :func:`deaths`), and the mark is cleared.
    """
    past = sessions(env)
    died_in = _in_flight(run_dir)
    if died_in is not None:
        past = [*past[:-1], {**past[-1], "died_in": died_in}]
    env = {**env, "sessions": [*past, _session(len(past) + 1, first_row, " ".join(argv), values)]}
    env.pop("finished_utc", None)
    write_json(run_dir / "env.json", env)
    clear_in_flight(run_dir)
    return env


def end_session(run_dir: pathlib.Path, env: dict) -> dict:
    """Stamp the run (and its last session) finished in ``env.json``."""
    now = utc_now()
    env = {**env, "finished_utc": now}
    env["sessions"] = [*sessions(env)[:-1], {**sessions(env)[-1], "finished_utc": now}]
    write_json(run_dir / "env.json", env)
    return env


def write_json(path: pathlib.Path, data: dict) -> None:
    """Write JSON whole: aside, then renamed (a reader sees the old file or the new one)."""
    tmp = path.with_name(path.name + ".tmp")
    text = json.dumps(data, indent=2, sort_keys=False, default=str)
    tmp.write_text(text + "\n", encoding="utf-8")
    os.replace(tmp, path)


def read_json(path: pathlib.Path) -> dict:
    return json.loads(path.read_text())


# --- One run at a time: the lock ---------------------------------------------------------------

LOCK = ".lock"


class RunLock:
    """An exclusive OS lock on a run folder, held for as long as a run writes to it.

    ``fcntl.flock`` on ``run_dir/.lock``: the kernel drops it when the holding process ends,
    however it ends (``kill -9`` included), so a dead run never leaves a stale lock behind. A
    second run or resume of a locked folder is refused (:class:`RunFolderError`) before it
    touches anything. (flock is advisory and, on a network file system that does not forward
    it, only holds between processes of one machine.)
    """

    def __init__(self, run_dir: pathlib.Path):
        self.path = pathlib.Path(run_dir) / LOCK
        self._fd: int | None = None

    def __enter__(self) -> RunLock:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise RunFolderError(
                f"{self.path.parent} is in use by another run (pid {holder}): "
                "wait for it to finish, or stop it, before resuming"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the last descriptor releases the lock
            self._fd = None


def check_not_in_use(run_dir: pathlib.Path) -> None:
    """Refuse to read a run folder while a run holds its lock (its last row may be half
    written): a :class:`RunFolderError`. A folder without a lock file is not in use."""
    path = pathlib.Path(run_dir) / LOCK
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
        raise RunFolderError(
            f"{run_dir} is being written by a run (pid {holder}); its report is rendered "
            "when it finishes"
        ) from None
    finally:
        os.close(fd)


# --- What was being measured when a process died ------------------------------------------------

IN_FLIGHT = "in_flight.json"
CRASH_LIMIT = 2
"""A case (or experiment) in flight when the bench process died this many times is not tried
again: a case is recorded as ``crashed``, an experiment's claims as ERROR."""


def mark_in_flight(run_dir: pathlib.Path, what: dict) -> None:
    """Say what is being measured (``{"case": label, "key": [...]}`` or
    ``{"experiment": [claim ids]}``) until :func:`clear_in_flight`: a resume that finds the
    mark knows what the dead process was doing (see :func:`begin_session`)."""
    write_json(run_dir / IN_FLIGHT, what)


def clear_in_flight(run_dir: pathlib.Path) -> None:
    (run_dir / IN_FLIGHT).unlink(missing_ok=True)


def _in_flight(run_dir: pathlib.Path) -> dict | None:
    try:
        what = read_json(run_dir / IN_FLIGHT)
    except FileNotFoundError:
        return None
    except (ValueError, OSError):
        return {"unreadable": IN_FLIGHT}
    return what if isinstance(what, dict) else {"unreadable": IN_FLIGHT}


def deaths(env: dict) -> dict[tuple, int]:
    """How many sessions died in each case (by its identity) or experiment (by its claims)."""
    counts: dict[tuple, int] = {}
    for session in sessions(env):
        what = session.get("died_in") or {}
        key = _death_key(what)
        if key is not None:
            counts[key] = counts.get(key, 0) + 1
    return counts


def _death_key(what: dict) -> tuple | None:
    if "key" in what:
        return ("case", *what["key"])
    if "experiment" in what:
        return ("experiment", *what["experiment"])
    return None


def case_death_key(key: tuple) -> tuple:
    return ("case", *key)


def experiment_death_key(claim_ids) -> tuple:
    return ("experiment", *claim_ids)


# --- Resuming: what a run folder already holds ------------------------------------------------


def read_text(path: pathlib.Path) -> str:
    """A run file's text exactly as written (line ends kept); a byte that is not UTF-8 is a
    :class:`RunFolderError` naming file and line."""
    data = path.read_bytes() if path.exists() else b""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise RunFolderError(
            f"{path}: line {line}: byte {data[e.start]:#04x} is not UTF-8: not written by bench"
        ) from None


def _complete_lines(path: pathlib.Path) -> str:
    """The file's text up to its last newline: a line without one is a write cut short."""
    text = read_text(path)
    return text[: text.rfind("\n") + 1]


def _records(text: str) -> list[dict]:
    return list(csv.DictReader(text.splitlines()))


def completed_keys(run_dir: pathlib.Path) -> set[tuple]:
    """Identities (:func:`bench.workloads.case_key`) of the cases recorded in a run folder (a
    ``skipped`` row does not count: the case is still to be measured)."""
    return _done(_records(_complete_lines(run_dir / "measurements.csv")))


def _done(rows: list[dict]) -> set[tuple]:
    return {case_key(r) for r in rows if r.get("status") != "skipped"}


def row_count(run_dir: pathlib.Path) -> int:
    """Data rows in ``measurements.csv`` (complete lines only)."""
    return len(_records(_complete_lines(run_dir / "measurements.csv")))


def _replace_text(path: pathlib.Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def repair_interrupted(run_dir: pathlib.Path) -> None:
    """Undo what a killed run left half-written, before resuming it.

    A line without its newline is a write cut short: dropped (in every CSV of the run). Raw
    samples of a case with no row in measurements.csv belong to a case that did not finish (it
    is measured again): dropped, so no case ends up with two sets of samples. Files written
    aside for a rename (``*.tmp``) that never happened are removed.
    """
    for tmp in run_dir.glob("*.tmp"):
        if tmp.is_file():  # (bench writes files aside; a folder is someone else's)
            tmp.unlink()
    rows_path, samples_path = run_dir / "measurements.csv", run_dir / "samples.csv"
    rows_text, samples_text = _complete_lines(rows_path), _complete_lines(samples_path)
    done = _done(_records(rows_text))  # a skipped case's samples are a re-measure cut short
    sample_lines = samples_text.splitlines(keepends=True)
    kept = sample_lines[:1] + [
        line
        for line, record in zip(sample_lines[1:], csv.DictReader(sample_lines), strict=True)
        if case_key(record) in done
    ]
    claims_path = run_dir / "claims.csv"
    for path, new in (
        (rows_path, rows_text),
        (samples_path, "".join(kept)),
        (claims_path, _complete_lines(claims_path)),
    ):
        if path.exists() and read_text(path) != new:
            _replace_text(path, new)


def recorded_claims(path: pathlib.Path) -> set[str]:
    """Claim ids with a verdict in ``claims.csv`` (an ERROR row does not count: that claim's
    experiment runs again on resume)."""
    rows = _records(_complete_lines(path))
    return {r["claim"] for r in rows if r.get("verdict") not in (None, "ERROR")}


def record_claims(path: pathlib.Path, rows: list[dict]) -> None:
    """Put one experiment's verdict rows into ``claims.csv`` as a whole: earlier rows of the same
    claims (an ERROR, or the verdicts of an attempt that was cut short) are replaced, and the
    file is rewritten aside and renamed, so it never holds half an experiment."""
    replaced = {r["claim"] for r in rows}
    old = [r for r in _records(_complete_lines(path)) if r.get("claim") not in replaced]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(CLAIM_COLUMNS), extrasaction="raise")
    writer.writeheader()
    for r in [*old, *rows]:
        writer.writerow({k: _cell(r.get(k)) for k in CLAIM_COLUMNS})
    _replace_text(path, buffer.getvalue())
