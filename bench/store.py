"""The run folder, written and read one way: its schema, appends, env.json and sessions, the
lock, crash counting, repair, and the one reader of its CSVs.

A run folder ``results/<run_id>/`` holds

- ``measurements.csv``: one row per measured case, columns :data:`COLUMNS` (units in names);
- ``samples.csv``: one row per timed repeat (:data:`SAMPLE_COLUMNS`), the raw timings;
- ``claims.csv``: one row per claim verdict produced by a suite's experiments;
- ``env.json``: the run context (versions, device, flags, command line, schema version) and
  its ``sessions``: the first run and each ``--resume`` of it, with the settings each ran under;
- ``report.md`` and plots, re-rendered from the CSVs by ``python -m bench report``;
- ``.lock``: the file a run holds an OS lock on while it writes (see :class:`RunLock`); the
  file stays, the lock goes with its holder;
- while a run writes: ``in_flight.json`` (the case or experiment being measured, see
  :func:`mark_in_flight`), and files written aside before a rename (``*.bench-tmp``).

Rows are appended, flushed and fsync'ed as each case finishes, so an interrupted run loses at
most the case in flight, and ``--resume`` can finish it. The suite follows no symbolic link in
a run folder: a folder that holds one is refused (:func:`check_no_links`).

Every reader of the CSVs (the resume, the report, ``compare``, the pandas loaders of
:mod:`bench.analysis`) goes through one decode (:func:`_text`) and one parser
(:func:`_parse`), so a file means the same to all of them. :func:`read_table` adds the dtypes
and the checks that refuse a damaged file with its name and line (:class:`SchemaError`); the
resume reads the same records as dicts (:func:`_kept`), where a file it cannot read is a
:class:`RunFolderError`, the one line the CLI prints.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import errno
import fcntl
import gzip
import hashlib
import io
import json
import math
import os
import pathlib
import platform
import secrets
import subprocess
import sys
import zlib
from collections.abc import Callable, Iterable, Mapping

import numpy as np
import pandas as pd

from bench.config import RunConfig
from bench.workloads import IDENTITY, PROFILES, SIZE_FIELDS, ConfigError, case_key

# --- The schema ----------------------------------------------------------------------------------

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
its new row supersedes this one, see :func:`load_measurements`);
``crashed``: the case killed the process measuring it (a worker's exit signal, or the bench
process itself twice, see :data:`CRASH_LIMIT`); ``timeout``: it ran past ``--case-timeout``;
``diverged``: an iterative evaluator did not converge within its cap (bench/suites/deer.py)."""
VERDICTS = ("PASS", "FAIL", "CORRECTED", "INCONCLUSIVE", "ERROR")
"""A claim's verdict (``claims.csv``; :class:`bench.claims.Verdict`). PASS: the seed's claim
holds as stated. FAIL: the measurements contradict it. CORRECTED: the seed was wrong and the
statement gives the right claim, with ``slip`` saying whether the seed made a mathematical
error or a notation/transcription slip. INCONCLUSIVE: the data cannot decide (too few points,
an interval wider than the rule's tolerance, missing counts); ``measured`` says why. ERROR:
the check itself crashed."""

FILES = {
    "measurements.csv": COLUMNS,
    "samples.csv": SAMPLE_COLUMNS,
    "claims.csv": CLAIM_COLUMNS,
}

TIMES = ("time_median_s", "time_min_s", "time_max_s")
"""Columns every ``ok`` row has, finite and not negative (as ``repeats`` and every sample's
``time_s``)."""


class SchemaError(ValueError):
    """A results file that does not match the schema this version reads: its name, line and
    problem (never a silently wrong DataFrame)."""


class RunFolderError(ConfigError):
    """A run folder that cannot be used: in use by another run, not writable, full, damaged.
    The CLI prints it as one line and exits 2."""


# --- Writing: rows appended, whole files written aside and renamed -------------------------------

ASIDE = ".bench-tmp"
"""The suffix of a file written aside before it is renamed over its real name: a name of the
suite's own, so a repair removes only what the suite wrote (never a user's ``notes.tmp``)."""
LEGACY_ASIDE = tuple(f"{name}.tmp" for name in ("env.json", "in_flight.json", *FILES))
"""What earlier versions named their files written aside (exactly these names)."""


def aside(path: pathlib.Path) -> pathlib.Path:
    return path.with_name(path.name + ASIDE)


def open_no_follow(path: pathlib.Path, flags: int) -> int:
    """``os.open`` that refuses a symbolic link (``O_NOFOLLOW``): a run folder's file is
    written where it is, never through a link to somewhere else."""
    return os.open(path, flags | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0), 0o644)


class CsvAppender:
    """Append rows to a CSV with a fixed header; each write (a row, or a case's rows with
    :meth:`write_many`) is flushed and fsync'ed."""

    def __init__(self, path: pathlib.Path, columns: Iterable[str]):
        self.path, self.columns = path, list(columns)
        new = not path.exists() or path.stat().st_size == 0
        fd = open_no_follow(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        self._file = open(fd, "a", newline="", encoding="utf-8")
        self._writer = csv.DictWriter(self._file, fieldnames=self.columns, extrasaction="raise")
        if new:
            try:
                self._writer.writeheader()
                self._sync()
            except BaseException:
                self._file.close()
                raise

    def write(self, row: dict) -> None:
        self.write_many([row])

    def write_many(self, rows: Iterable[dict]) -> None:
        """Append ``rows`` and sync once (a case's samples: one fsync, not one per sample)."""
        for row in rows:
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


def write_whole(path: pathlib.Path, write: Callable[[pathlib.Path], object]) -> None:
    """Write ``path`` whole: ``write(tmp)`` aside (:func:`aside`), fsync'ed, then renamed over
    it, so a reader sees the old file or the new one (a full disk, Ctrl-C, a kill). A write
    that fails leaves the old file, and removes what it wrote aside."""
    tmp = aside(path)
    try:
        write(tmp)
        fd = open_no_follow(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            if not tmp.is_symlink():
                tmp.unlink()
        raise


def _replace_text(path: pathlib.Path, text: str) -> None:
    """Write ``path`` whole (:func:`write_whole`), never through a symbolic link."""

    def write(tmp: pathlib.Path) -> None:
        fd = open_no_follow(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        with open(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)

    write_whole(path, write)


def write_json(path: pathlib.Path, data: dict) -> None:
    """Write JSON whole: aside, then renamed (a reader sees the old file or the new one)."""
    text = json.dumps(data, indent=2, sort_keys=False, default=str)
    _replace_text(path, text + "\n")


def read_json(path: pathlib.Path) -> dict:
    return json.loads(path.read_text())


# --- A new run folder ----------------------------------------------------------------------------


def git_info(root: pathlib.Path | None = None) -> dict:
    """The commit of the checkout at ``root`` (default: this code's), whether its tracked
    files differ from it, and a hash of those differences."""
    root = pathlib.Path(__file__).resolve().parent.parent if root is None else root

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
    """``<UTC time>-<git sha>-<4 random hex digits>``: runs started in the same second at one
    commit (a CI matrix, on one machine or several) still get ids of their own."""
    sha = git_info()["git_sha"]
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{sha[:7] if sha else 'nogit'}-{secrets.token_hex(2)}"


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
    if error.errno == errno.ELOOP:
        return "a symbolic link is in the way (bench follows no link in a run folder)"
    return error.strerror or str(error)


def io_failure(run_dir: pathlib.Path, error: OSError) -> RunFolderError:
    """The one line for a run that could not write its folder (full disk, read-only, ...).

    A new run that failed before its ``env.json`` existed measured nothing and cannot be
    resumed: the files it made (its lock, a file written aside) and the folder are removed, and
    the advice is to run again."""
    where = f" ({error.filename})" if getattr(error, "filename", None) else ""
    if not (run_dir / "env.json").is_file():
        gone = _remove_unstarted(run_dir)
        return RunFolderError(
            f"cannot write to {run_dir}: {_reason(error)}{where}; nothing was measured and "
            + ("the folder is removed" if gone else f"{run_dir} holds no run (remove it)")
            + ": free the space or fix the folder, then run again"
        )
    return RunFolderError(
        f"cannot write to {run_dir}: {_reason(error)}{where}; finished cases are saved: "
        f"free the space or fix the folder, then --resume {run_dir}"
    )


def _remove_unstarted(run_dir: pathlib.Path) -> bool:
    """Remove what a new run made before it had an ``env.json`` (its lock file, files written
    aside) and the folder if nothing else is in it. Whether the folder is gone."""
    try:
        for path in run_dir.iterdir():
            if path.name == LOCK or path.name.endswith(ASIDE):
                path.unlink()
        run_dir.rmdir()
    except OSError:
        return False
    return True


# --- env.json: the run's context and its sessions ------------------------------------------------


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


def check_settings(
    run_dir: pathlib.Path,
    env: dict,
    *,
    allow_mixed: bool,
    cases: set[tuple] | None = None,
    described: str = "",
) -> dict:
    """This session's settings (:data:`SETTINGS`), with ``"mixed"`` listing those that differ
    from the run's. A difference is refused (:class:`RunFolderError`) unless ``allow_mixed``.

    ``cases``: the identities of the cases the run's own settings in env.json (profile,
    suites, devices, models and variants: ``described``) give. A row of any other case was
    measured under other settings than env.json says (an edited env.json): a difference too.
    """
    values = settings()
    mixed = mixed_settings(env, values)
    if cases is not None:
        mixed += _foreign_rows(run_dir / "measurements.csv", cases, described)
    if mixed and not allow_mixed:
        raise RunFolderError(
            f"--resume {run_dir}: this session's settings differ from the run's "
            f"({'; '.join(mixed)}); rows would mix them: resume from the run's settings, or "
            "pass --allow-mixed to record each session's settings in env.json"
        )
    return {**values, "mixed": mixed} if mixed else values


def _foreign_rows(path: pathlib.Path, cases: set[tuple], described: str) -> list[str]:
    """``["rows: ..."]`` when rows of ``path`` are not among ``cases``, else ``[]``."""
    foreign = [
        (line, row)
        for line, row in enumerate(_dicts(_kept(path)), start=2)
        if case_key(row) not in cases
    ]
    if not foreign:
        return []
    line, row = foreign[0]
    sizes = " ".join(f"{f}={row[f]}" for f in SIZE_FIELDS if row.get(f))
    what = f"{row.get('suite')}/{row.get('model')}[{row.get('variant')}] {row.get('mode')} {sizes}"
    return [
        f"rows: {path.name} line {line} ({what.strip()}) and {len(foreign) - 1} more are not a "
        f"case of {described}: env.json does not hold the settings its rows were measured under"
    ]


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


def end_session(env: dict, **fields) -> dict:
    """``env`` with the run and its last session stamped finished, and the session's
    ``fields`` (its time account) added to it; the caller writes it (:func:`write_json`)."""
    now = utc_now()
    return with_last_session({**env, "finished_utc": now}, finished_utc=now, **fields)


def with_last_session(env: dict, **fields) -> dict:
    """``env`` with ``fields`` added to its last session (the one running)."""
    past = sessions(env)
    return {**env, "sessions": [*past[:-1], {**past[-1], **fields}]}


ENV_REQUIRED = (
    "run_id", "profile", "suites", "repeats", "started_utc", "python", "jax", "jaxlib", "flax",
    "optax", "backend", "device_kind", "device_count", "host_cpu", "host_cpu_count",
)  # fmt: skip
"""What a run's env.json always holds (the report and ``--resume`` read them)."""


def load_env(run_dir: pathlib.Path) -> dict:
    """A run folder's ``env.json``, checked: UTF-8 JSON, an object, a schema version this
    version reads (:data:`READABLE_VERSIONS`), the fields of :data:`ENV_REQUIRED`, the type of
    every field a reader uses (:data:`ENV_TYPES`), and sessions as a run writes them
    (:func:`_check_sessions`); else a :class:`SchemaError`, one line naming the file and the
    field. The one reader of env.json: the resume, the report, ``compare``, ``history`` and
    :mod:`bench.analysis` all read it here."""
    path = run_dir / "env.json"
    if not path.exists():
        raise SchemaError(f"{path}: file not found (not a run folder?)")
    try:
        env = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as e:
        raise SchemaError(f"{path}: byte {e.start}: not UTF-8: not written by bench") from None
    except json.JSONDecodeError as e:
        raise SchemaError(f"{path}: line {e.lineno}: invalid JSON: {e.msg}") from None
    except OSError as e:
        raise SchemaError(f"{path}: cannot be read: {e.strerror or e}") from None
    if not isinstance(env, dict):
        raise SchemaError(f"{path}: a JSON {type(env).__name__}, expected an object (a run's env)")
    version = env.get("schema_version")
    if version not in READABLE_VERSIONS or isinstance(version, bool):
        raise SchemaError(
            f"{path}: schema_version {version!r}; this version of the suite reads "
            f"{', '.join(map(str, READABLE_VERSIONS))} (re-run, or load with a "
            "matching checkout)"
        )
    missing = [k for k in ENV_REQUIRED if k not in env]
    if missing:
        raise SchemaError(f"{path}: no {', '.join(missing)}: not a run's env.json")
    _check_fields(path, "", env, ENV_TYPES)
    _check_sessions(path, env)
    return env


# --- env.json: the one reader ----------------------------------------------------------------


def _int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _number(v) -> bool:
    return (_int(v) or isinstance(v, float)) and math.isfinite(v)


def _utc(v) -> bool:
    if not isinstance(v, str):
        return False
    try:
        dt.datetime.fromisoformat(v)
    except ValueError:
        return False
    return True


def _strings(v) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


def _or_null(check):
    return lambda v: v is None or check(v)


def _calibration(v) -> bool:
    return isinstance(v, dict) and all(
        isinstance(c := v.get(name), dict)
        and _number(c.get("value"))
        and c["value"] > 0
        and isinstance(c.get("unit"), str)
        and isinstance(c.get("how"), str)
        for name in CALIBRATION_CONSTANTS
    )


CALIBRATION_CONSTANTS = (
    "matmul_flops_per_s", "bandwidth_bytes_per_s", "loop_iteration_s", "dependent_op_s",
)  # fmt: skip
"""The constants of ``env.json["calibration"]`` (:class:`bench.calibration.Calibration`)."""

_TEXT = (lambda v: isinstance(v, str), "a string")
_POSITIVE = (lambda v: _int(v) and v >= 1, "a positive integer")
_UTC = (_utc, "an ISO 8601 time")
_LOAD = (_or_null(lambda v: isinstance(v, list) and all(map(_number, v))), "a list of numbers")
SETTING_TYPES = {
    "git_sha": (_or_null(lambda v: isinstance(v, str)), "a commit sha or null"),
    "git_dirty": (_or_null(lambda v: isinstance(v, bool)), "true, false or null"),
    "git_diff_sha256": (_or_null(lambda v: isinstance(v, str)), "a hash or null"),
    **{k: _TEXT for k in ("python", "jax", "jaxlib", "flax", "optax", "numpy", "backend")},
    **{k: _TEXT for k in ("device_kind", "host_cpu", "XLA_FLAGS")},
    "device_count": _POSITIVE,
    "process_count": _POSITIVE,
    "jax_env": (
        lambda v: isinstance(v, dict) and all(isinstance(x, str) for x in v.values()),
        "an object of strings",
    ),
    "jax_default_matmul_precision": (_or_null(lambda v: isinstance(v, str)), "a string or null"),
    "jax_enable_x64": (lambda v: isinstance(v, bool), "true or false"),
}
"""The type of each of :data:`SETTINGS` in env.json (the run's, and each session's)."""
ENV_TYPES = {
    "run_id": (lambda v: isinstance(v, str) and v != "", "a run id"),
    "profile": (lambda v: v in PROFILES, f"one of {', '.join(PROFILES)}"),
    "suites": (lambda v: _strings(v) and v != [], "a list of suite names"),
    "models": (_strings, "a list of model names"),
    "variants": (_strings, "a list of variant names"),
    **{k: _POSITIVE for k in ("repeats", "warmup", "rounds", "devices")},
    "case_timeout_s": (_or_null(lambda v: _number(v) and v > 0), "a positive number or null"),
    "experiments": (lambda v: isinstance(v, bool), "true or false"),
    **{
        k: (_or_null(lambda v: isinstance(v, str)), "a path or null")
        for k in ("data", "compile_cache", "trace_dir")
    },
    "started_utc": _UTC,
    "finished_utc": _UTC,
    **{k: _TEXT for k in ("host", "os", "command")},
    "host_cpu_count": (_or_null(lambda v: _int(v) and v >= 1), "a positive integer or null"),
    "load_avg_start": _LOAD,
    "load_avg_finish": _LOAD,
    "calibration": (
        _calibration,
        f"an object of {', '.join(CALIBRATION_CONSTANTS)}, each with a positive value, its "
        "unit and how",
    ),
    "sessions": (lambda v: isinstance(v, list) and v != [], "a list of sessions"),
    **SETTING_TYPES,
}
"""The type of each field of env.json that a reader uses (a field not named here is kept
unread)."""
SESSION_TYPES = {
    "session": (_int, "an integer"),
    "first_row": (lambda v: _int(v) and v >= 0, "a row index (an integer ≥ 0)"),
    "started_utc": _UTC,
    "finished_utc": _UTC,
    "command": _TEXT,
    "host": _TEXT,
    "mixed": (_strings, "a list of settings"),
    "retry_crashed": (lambda v: isinstance(v, bool), "true or false"),
    "time_s": (
        lambda v: isinstance(v, dict) and all(map(_number, v.values())),
        "an object of seconds",
    ),
    "report_s": (_number, "seconds"),
    **SETTING_TYPES,
}


def _check_fields(path: pathlib.Path, where: str, data: dict, types: dict) -> None:
    for name, (check, expected) in types.items():
        if name in data and not check(data[name]):
            raise SchemaError(f"{path}: {where}{name} is {_short(data[name])}, expected {expected}")


def _short(value) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_sessions(path: pathlib.Path, env: dict) -> None:
    """Sessions as the suite writes them: numbered 1, 2, ... in order, the first from row 0,
    each from a row no earlier than the last one's, and each resume with the run's settings
    unless its ``mixed`` says which differ (``--allow-mixed`` records them): a session added
    by hand would otherwise be given the rows from its ``first_row`` on."""
    previous = 0
    for i, session in enumerate(env.get("sessions", [])):
        where = f"sessions[{i}]."
        if not isinstance(session, dict):
            raise SchemaError(f"{path}: sessions[{i}] is {_short(session)}, expected an object")
        for name in ("session", "first_row"):
            if name not in session:
                raise SchemaError(f"{path}: {where}{name} is missing")
        _check_fields(path, where, session, SESSION_TYPES)
        if session["session"] != i + 1:
            raise SchemaError(f"{path}: {where}session is {session['session']}, expected {i + 1}")
        first = session["first_row"]
        if (i == 0 and first != 0) or first < previous:
            raise SchemaError(
                f"{path}: {where}first_row is {first}, expected "
                + ("0" if i == 0 else f"{previous} or more (the previous session's)")
            )
        previous = first
        said = {m.split(" ", 1)[0] for m in session.get("mixed", [])}
        for name in SETTINGS if i > 0 else ():  # (the first session's are the run's)
            if name in session and name in env and session[name] != env[name]:
                if name not in said:
                    raise SchemaError(
                        f"{path}: {where}{name} is {_short(session[name])}, the run's is "
                        f"{_short(env[name])}, and the session's mixed does not say so: not "
                        "as a resume records it"
                    )


def find_runs(results: pathlib.Path) -> tuple[list[tuple[dict, pathlib.Path]], list[str]]:
    """The run folders directly under ``results`` (each a folder with an ``env.json``; a link
    such as ``results/latest`` is not a second run) with their env (:func:`load_env`), in
    order of their start; and one line for each folder left out because its env.json is
    damaged (``compare`` and ``history`` name them, never drop them silently)."""
    found, damaged = [], []
    for env_path in results.glob("*/env.json"):
        folder = env_path.parent
        if folder.is_symlink():
            continue
        try:
            env = load_env(folder)
        except SchemaError as e:
            damaged.append(f"{folder} left out: {e}")
            continue
        found.append((env["started_utc"], folder.name, env, folder))
    found.sort(key=lambda x: x[:2])
    return [(env, folder) for *_, env, folder in found], sorted(damaged)


# --- One run at a time: the lock -----------------------------------------------------------------

LOCK = ".lock"


class RunLock:
    """An exclusive OS lock on a run folder, held for as long as a run writes to it.

    ``fcntl.flock`` on ``run_dir/.lock``: the kernel drops it when the holding process ends,
    however it ends (``kill -9`` included), so a dead run never leaves a stale lock behind. A
    second run or resume of a locked folder is refused (:class:`RunFolderError`, naming the
    process that holds the lock) before it touches anything; so is a folder that holds a
    symbolic link (:func:`check_no_links`). (flock is advisory and, on a network file system
    that does not forward it, only holds between processes of one machine.)

    The file stays when the run ends. Removing it would break the lock: a second run that
    opened the file before it was unlinked would lock the unlinked file while a third created
    and locked a new one, and both would write. It holds the pid of the last run that locked
    it, for information only.
    """

    def __init__(self, run_dir: pathlib.Path):
        self.path = pathlib.Path(run_dir) / LOCK
        self._fd: int | None = None

    def __enter__(self) -> RunLock:
        fd = _open_lock(self.path, os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise RunFolderError(
                f"{self.path.parent} is in use by another process ({holder}): "
                "wait for it to finish, or stop it, before resuming"
            ) from None
        try:
            check_no_links(self.path.parent)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the last descriptor releases the lock
            self._fd = None


def check_not_in_use(
    run_dir: pathlib.Path,
    then: str = "its report is rendered when that run finishes",
    *,
    writing: bool = True,
) -> None:
    """Refuse to render a run folder's report (``writing``; or only to read it, ``then`` says
    what waits) while a run holds its lock (its last row may be half written), or, to write,
    when it holds a symbolic link (the report would be written through it): a
    :class:`RunFolderError`. A folder without a lock file is not in use."""
    path = pathlib.Path(run_dir) / LOCK
    try:
        fd = _open_lock(path, os.O_RDONLY)
    except FileNotFoundError:
        fd = None
    if fd is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunFolderError(
                f"{run_dir} is being written (locked by {_holder(fd)}); {then}"
            ) from None
        finally:
            os.close(fd)
    if writing:
        check_no_links(run_dir)


def check_no_links(run_dir: pathlib.Path) -> None:
    """Refuse a run folder that holds a symbolic link: the suite writes only regular files of
    its own there, and a link would send its writes elsewhere."""
    links = sorted(p.name for p in pathlib.Path(run_dir).iterdir() if p.is_symlink())
    if links:
        raise RunFolderError(
            f"{run_dir}: {', '.join(links)} "
            + ("is a symbolic link" if len(links) == 1 else "are symbolic links")
            + ": bench writes only its own files in a run folder and follows no link there: "
            "remove the link (or copy the folder with `cp -rL`)"
        )


def _open_lock(path: pathlib.Path, flags: int) -> int:
    try:
        return open_no_follow(path, flags)
    except OSError as e:
        if e.errno != errno.ELOOP:
            raise
        check_no_links(path.parent)
        raise  # (not reached: the link is there)


def _holder(fd: int) -> str:
    """Who holds the flock on ``fd``'s file: the pid and command line that ``/proc/locks``
    names (Linux), else the pid the last bench run wrote into the file."""
    st = os.fstat(fd)
    inode = (os.major(st.st_dev), os.minor(st.st_dev), st.st_ino)
    try:
        lines = pathlib.Path("/proc/locks").read_text().splitlines()
    except OSError:
        lines = []
    for line in lines:
        fields = line.split()  # "1: FLOCK  ADVISORY  WRITE 8405 fe:00:2146613 0 EOF"
        if len(fields) < 6 or fields[1] != "FLOCK":  # ("1: -> FLOCK ..." is a waiter)
            continue
        try:
            major, minor, number = fields[5].split(":")
            if (int(major, 16), int(minor, 16), int(number)) != inode:
                continue
        except ValueError:
            continue
        try:
            command = pathlib.Path(f"/proc/{fields[4]}/cmdline").read_bytes()
            command = command.replace(b"\0", b" ").decode(errors="replace").strip()[:100]
        except OSError:
            command = ""
        return f"pid {fields[4]}" + (f": {command}" if command else "")
    last = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
    return f"pid unknown; the last bench run to lock it was pid {last}"


# --- What was being measured when a process died -------------------------------------------------

IN_FLIGHT = "in_flight.json"
CRASH_LIMIT = 2
"""A case (or experiment) in flight when the bench process died this many times is not tried
again: a case is recorded as ``crashed``, an experiment's claims as ERROR."""


def mark_in_flight(run_dir: pathlib.Path, what: dict) -> None:
    """Say what is being measured (``{"case": label, "key": [...]}``, a sweep group timed in
    interleaved rounds ``{"interleaved": [labels]}``, or ``{"experiment": [claim ids]}``)
    until :func:`clear_in_flight`: a resume that finds the mark knows what the dead process
    was doing (see :func:`begin_session`)."""
    write_json(run_dir / IN_FLIGHT, what)


def clear_in_flight(run_dir: pathlib.Path) -> None:
    (run_dir / IN_FLIGHT).unlink(missing_ok=True)


def _in_flight(run_dir: pathlib.Path) -> dict | None:
    """The mark a dead session left; one that is not a mark as :func:`mark_in_flight` writes
    it (not JSON, another shape) is ``{"unreadable": "in_flight.json"}``."""
    try:
        what = read_json(run_dir / IN_FLIGHT)
    except FileNotFoundError:
        return None
    except (ValueError, OSError):
        return {"unreadable": IN_FLIGHT}
    return what if _is_mark(what) else {"unreadable": IN_FLIGHT}


def _is_mark(what) -> bool:
    """A case's or an experiment's mark (:func:`_death_key`), or a sweep group's
    (``{"interleaved": [labels]}``)."""
    if isinstance(what, dict) and "interleaved" in what:
        labels = what["interleaved"]
        return isinstance(labels, list) and all(isinstance(x, str) for x in labels)
    return _death_key(what) is not None


RETRY = "retry_crashed"
"""A session's field: it was started with ``--retry-crashed``; deaths before it no longer
count (see :func:`deaths`)."""


def deaths(env: dict) -> dict[tuple, int]:
    """How many sessions died in each case (by its identity) or experiment (by its claims),
    since the last session started with ``--retry-crashed`` (that one included)."""
    past = sessions(env)
    since = max((i for i, s in enumerate(past) if s.get(RETRY)), default=0)
    counts: dict[tuple, int] = {}
    for session in past[since:]:
        what = session.get("died_in")
        members = what.get("keys") if isinstance(what, dict) and "interleaved" in what else None
        if isinstance(members, list):  # a sweep group's rounds: a death of each of its cases
            keys = [_death_key({"key": k}) for k in members]
        else:
            keys = [_death_key(what)]
        for key in keys:
            if key is not None:
                counts[key] = counts.get(key, 0) + 1
    return counts


def given_up(env: dict) -> dict[str, int]:
    """Claims whose experiment killed the bench process :data:`CRASH_LIMIT` times (since the
    last ``--retry-crashed``): it is not run again; claim -> deaths."""
    return {
        claim: n
        for key, n in deaths(env).items()
        if key[0] == "experiment" and n >= CRASH_LIMIT
        for claim in key[1:]
    }


_SCALAR = str | int | float | bool | type(None)


def _death_key(what) -> tuple | None:
    """The key of a mark (``{"case": label, "key": [...]}`` or ``{"experiment": [ids]}``);
    None for anything else (an unreadable mark, or a value of another shape)."""
    if not isinstance(what, dict):
        return None
    key, claims = what.get("key"), what.get("experiment")
    if isinstance(key, list) and all(isinstance(v, _SCALAR) for v in key):
        return ("case", *key)
    if isinstance(claims, list) and claims and all(isinstance(c, str) for c in claims):
        return ("experiment", *claims)
    return None


def case_death_key(key: tuple) -> tuple:
    return ("case", *key)


def experiment_death_key(claim_ids) -> tuple:
    return ("experiment", *claim_ids)


# --- Reading the CSVs: one decode, one parser ----------------------------------------------------


def whole_records(text: str, columns: Mapping[str, str] | None) -> tuple[str, bool]:
    """The part of a run file's text that holds whole records, and whether text after it was
    dropped as a write cut short.

    Every record the suite writes ends its line, so text after the last line end is a write
    cut short, except a last row that has all its fields in a file whose last column is text
    (``measurements.csv``, ``claims.csv``): a cut anywhere before that column would have cost
    the row a field, so such a row lacks at most its line end (taken off by hand, or a cut
    between the two characters of ``\\r\\n``) and the end of that text (a note or a
    statement; a cut inside it cannot be told from a line end taken off). Its measured fields
    are whole: it is kept, and gets its line end back. In ``samples.csv`` a cut
    inside the last column, a number, leaves a number: its last line is whole only with its
    line end."""
    end = text.rfind("\n") + 1
    kept, rest = text[:end], text[end:]
    if not rest:
        return kept, False
    if kept and columns and list(columns.values())[-1] == "string":
        header = next(csv.reader([kept.splitlines()[0]]))
        try:
            found = list(csv.reader(io.StringIO(rest, newline=""), strict=True))
        except csv.Error:  # (a quoted field cut short)
            found = []
        if len(found) == 1 and len(found[0]) == len(header):
            return kept + rest + ("\n" if rest.endswith("\r") else "\r\n"), False
    return kept, True


def _text(path: pathlib.Path, columns: Mapping[str, str] | None, *, whole_only: bool) -> str:
    """The one decode of a run file: its text up to its last whole record (:func:`whole_records`).
    A byte that is not UTF-8 is a :class:`SchemaError` naming file and line.

    ``whole_only``: what a resume keeps of the file, a last line cut short dropped (one cut
    inside a character too: that is a cut, not an encoding error). Otherwise such a line is
    refused, as a reader of a finished run must not lose a row silently."""
    data = path.read_bytes()
    if path.suffix == ".gz":  # a kept reference run's samples (results/reference)
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as e:  # (BadGzipFile is an OSError)
            raise SchemaError(f"{path}: not a whole gzip file: {e}") from None
    if whole_only:
        data = data[: data.rfind(b"\n") + 1] + _last_line(data)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise SchemaError(
            f"{path}: line {line}: byte {data[e.start]:#04x} is not UTF-8: not written by bench"
        ) from None
    text, cut = whole_records(text, columns)
    if cut and not whole_only:  # every row ends its line: this one was cut short
        line = text.count("\n") + 1
        raise SchemaError(
            f"{path}: line {line}: the last row has no line end: cut short "
            "(`python -m bench run --resume` on its run folder repairs it)"
        )
    return text


def _last_line(data: bytes) -> bytes:
    """The bytes after the last line end, where they decode (a cut inside a character is
    a write cut short, not an encoding error)."""
    rest = data[data.rfind(b"\n") + 1 :]
    try:
        rest.decode("utf-8")
    except UnicodeDecodeError:
        return b""
    return rest


def _parse(path: pathlib.Path, text: str) -> list[tuple[list[str], str]]:
    """The one CSV parser: each record's fields (the header first) with the text it was read
    from, a line as the suite writes it. Malformed CSV is a :class:`SchemaError` with its
    line."""
    lines = io.StringIO(text, newline="").readlines()  # the lines the csv reader reads
    reader = csv.reader(lines, strict=True)
    records, start = [], 0
    try:
        for fields in reader:
            records.append((fields, "".join(lines[start : reader.line_num])))
            start = reader.line_num
    except csv.Error as e:
        raise SchemaError(f"{path}: line {reader.line_num}: not valid CSV: {e}") from None
    return records


def read_table(
    path: pathlib.Path, columns: Mapping[str, str], *, whole_only: bool = False
) -> pd.DataFrame:
    """A CSV written by :class:`CsvAppender` as a DataFrame of the schema's dtypes, checked:
    encoding, header, row lengths, types and values (:func:`_check_values`); a mismatch is a
    :class:`SchemaError` naming file and line. A last row without its line end is cut short
    unless it is whole (:func:`whole_records`). ``whole_only``: read only the whole records,
    as a resume keeps them (a last line cut short is what it repairs)."""
    if not path.exists():
        raise SchemaError(f"{path}: file not found")
    rows = [fields for fields, _ in _parse(path, _text(path, columns, whole_only=whole_only))]
    if not rows:
        raise SchemaError(f"{path}: line 1: empty file, expected a header")
    header = rows[0]
    older = [c for c in columns if c not in ADDED_IN_V3]
    if header == older and len(older) < len(columns):  # schema 2: its new columns read empty
        index = {c: i for i, c in enumerate(header)}
        rows = [list(columns)] + [
            [r[index[c]] if c in index else "" for c in columns] if len(r) == len(older) else r
            for r in rows[1:]
        ]
        header = rows[0]
    if header != list(columns):
        missing = [c for c in columns if c not in header]
        unknown = [c for c in header if c not in columns]
        raise SchemaError(
            f"{path}: line 1: header does not match schema v{SCHEMA_VERSION}"
            f" (missing {missing}, unknown {unknown})"
        )
    for lineno, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise SchemaError(
                f"{path}: line {lineno}: {len(row)} fields, expected {len(header)}"
                " (truncated or hand-edited row?)"
            )
    data = {name: [r[i] for r in rows[1:]] for i, name in enumerate(header)}
    df = pd.DataFrame(data, dtype="string")
    for name, dtype in columns.items():
        if dtype == "string":
            df[name] = df[name].replace("", pd.NA)
            continue
        values = pd.to_numeric(df[name].replace("", pd.NA), errors="coerce")
        bad = values.isna() & df[name].ne("") & df[name].notna()
        if bad.any():
            i = int(bad.to_numpy().nonzero()[0][0])
            raise SchemaError(
                f"{path}: line {i + 2}: column {name!r} has {df[name].iloc[i]!r}, expected {dtype}"
            )
        if dtype == "Int64" and (values.dropna() % 1 != 0).any():
            i = int(((values % 1) != 0).fillna(False).to_numpy().nonzero()[0][0])
            raise SchemaError(f"{path}: line {i + 2}: column {name!r} is not an integer")
        df[name] = values.astype(dtype)
    _check_values(path, df)
    return df


def _check_values(path: pathlib.Path, df: pd.DataFrame) -> None:
    """Refuse what no run writes: an unknown status or verdict, an ``ok`` row without its
    times (:data:`TIMES`, ``repeats``) or a sample without its time, a negative or infinite
    time, and a case (or sample) twice, a superseded row aside (:func:`superseded`)."""
    for col, allowed in (("status", STATUSES), ("verdict", VERDICTS)):
        if col in df:
            bad = ~df[col].isin(allowed) & df[col].notna()
            if bad.any():
                i = int(bad.to_numpy().nonzero()[0][0])
                raise SchemaError(
                    f"{path}: line {i + 2}: {col} {df[col].iloc[i]!r} is not one of {allowed}"
                )
    timed = [("time_s", df.index == df.index)] if "time_s" in df else []
    if "status" in df:
        timed = [(c, (df.status == "ok").fillna(False).to_numpy()) for c in (*TIMES, "repeats")]
    what = "an ok row" if "status" in df else "a sample"
    for col, rows in timed:
        values = df[col].to_numpy(dtype="float64", na_value=np.nan)
        missing = rows & np.isnan(values)
        bad = rows & ~np.isnan(values) & ~((values >= 0) & (values < np.inf))
        for flagged in (missing, bad):
            if flagged.any():
                i = int(flagged.nonzero()[0][0])
                value = "missing" if missing[i] else repr(float(values[i]))
                raise SchemaError(f"{path}: line {i + 2}: {col} is {value} on {what}")
    keys = [c for c in IDENTITY if c in df]
    if keys and "claim" not in df:
        keys += ["repeat"] if "repeat" in df else []
        live = ~superseded(df)
        duplicated = np.zeros(len(df), dtype=bool)
        duplicated[live] = df[live].duplicated(keys, keep=False).to_numpy()
        if duplicated.any():
            rows = (duplicated.nonzero()[0] + 2)[:2]
            what = "sample" if "repeat" in df else "case"
            raise SchemaError(f"{path}: line {rows[1]}: the same {what} as line {rows[0]}")


def superseded(df: pd.DataFrame) -> np.ndarray:
    """Rows that a later row of the same case replaces: ``skipped`` ones (the only kind a
    resume measures again)."""
    keys = [c for c in IDENTITY if c in df]
    if "status" not in df or not keys:
        return np.zeros(len(df), dtype=bool)
    later = df.duplicated(keys, keep="last").to_numpy()
    return later & (df.status == "skipped").fillna(False).to_numpy()


# --- Loading a run's files -----------------------------------------------------------------------


def load_measurements(path: str | pathlib.Path) -> pd.DataFrame:
    """``measurements.csv``, one row per case: a ``skipped`` row that a later session measured
    (``--budget-s``, then ``--resume``) is superseded by the later row and left out."""
    df = read_table(pathlib.Path(path), COLUMNS)
    return df[~superseded(df)].reset_index(drop=True)


def load_samples(path: str | pathlib.Path) -> pd.DataFrame:
    """``samples.csv`` (or its ``.gz``): the raw times, one row per timed repeat."""
    return read_table(pathlib.Path(path), SAMPLE_COLUMNS)


def load_claims(path: str | pathlib.Path) -> pd.DataFrame:
    """``claims.csv``: one row per claim verdict."""
    return read_table(pathlib.Path(path), CLAIM_COLUMNS)


def run_samples(run_dir: str | pathlib.Path) -> pd.DataFrame | None:
    """A run folder's raw samples: ``samples.csv``, or ``samples.csv.gz`` (how a reference run
    under ``results/reference`` keeps them small), or None when it has neither."""
    for name in ("samples.csv", "samples.csv.gz"):
        path = pathlib.Path(run_dir) / name
        if path.exists():
            return load_samples(path)
    return None


# --- Resuming: what a run folder already holds ---------------------------------------------------


def check_resumable(run_dir: pathlib.Path) -> None:
    """Raise :class:`SchemaError` unless a run folder's CSVs are sound in their whole records
    (what ``--resume`` keeps of them and appends to), and each row with a time has exactly
    its ``repeats`` samples, and a row without one none.

    A case's samples are written before its row (a sweep group's before its rows), so only the
    cases in flight when a run died have samples and no row, and theirs are the last samples
    written, and the mark a dead run leaves in ``in_flight.json`` names them: the resume drops
    them. Samples without a row that come before samples of a case with one, samples beside a
    measurements.csv that is gone or empty, and last samples of cases that no mark names (a
    measurements.csv cut to its header, or short of its last rows) are rows lost: refused,
    never deleted."""
    frames = {}
    for name, columns in FILES.items():
        path = run_dir / name
        if path.exists() and path.read_bytes().rfind(b"\n") >= 0:
            frames[name] = read_table(path, columns, whole_only=True)
    rows, samples = frames.get("measurements.csv"), frames.get("samples.csv")
    keys = (
        [] if samples is None else [case_key(r) for r in samples[list(IDENTITY)].to_dict("records")]
    )
    if rows is None:
        if keys:
            gone = "missing" if not (run_dir / "measurements.csv").exists() else "empty"
            raise SchemaError(
                f"{run_dir / 'samples.csv'}: {len(keys)} samples of {_cases(set(keys))}, but "
                f"measurements.csv is {gone}: their rows were lost, not cut short; restore "
                "measurements.csv, or start a new run (the same command without --resume)"
            )
        return
    done = _done(rows.to_dict("records"))
    last = len(keys)  # the samples of the cases in flight when a run died: the last ones
    while last and keys[last - 1] not in done:
        last -= 1
    flying, marked = set(keys[last:]), _in_flight_keys(run_dir)
    if flying and marked is not None and not flying <= marked:
        unmarked = [k for k in keys[last:] if k not in marked]
        line = last + keys[last:].index(unmarked[0]) + 2
        gone = "has no rows" if rows.empty else "has no row of them"
        raise SchemaError(
            f"{run_dir / 'samples.csv'}: line {line}: {len(unmarked)} samples of "
            f"{_cases(set(unmarked))} that no run was measuring when it stopped "
            f"({IN_FLIGHT} names none of them), but measurements.csv {gone}: their rows were "
            "lost, not cut short; restore measurements.csv, or start a new run (the same "
            "command without --resume)"
        )
    lost = [i for i, key in enumerate(keys[:last]) if key not in done]
    if lost:
        raise SchemaError(
            f"{run_dir / 'samples.csv'}: line {lost[0] + 2}: {len(lost)} samples of "
            f"{_cases({keys[i] for i in lost})} with no row in measurements.csv, before "
            "samples of cases with one (a run cut short leaves only its last samples without "
            "a row): their rows were lost; restore them, or start a new run (the same command "
            "without --resume)"
        )
    counts: dict[tuple, int] = {}
    for key in keys:
        counts[key] = counts.get(key, 0) + 1
    for line, row in enumerate(rows.to_dict("records"), start=2):
        if row["status"] == "skipped":  # no samples of its own: a later row's, or cut short
            continue
        found = counts.get(case_key(row), 0)
        expected = int(row["repeats"]) if row["status"] == "ok" else 0
        if found != expected:
            raise SchemaError(
                f"{run_dir / 'samples.csv'}: {found} samples of the case on line {line} of "
                f"measurements.csv, whose row says {expected}"
            )


def _in_flight_keys(run_dir: pathlib.Path) -> set[tuple] | None:
    """The cases the mark a dead run left names (:func:`mark_in_flight`): none when it left
    no mark; ``None`` (unknown: any may be) when its mark names no case keys (an experiment's,
    an unreadable one, or one of an earlier version)."""
    what = _in_flight(run_dir)
    if what is None:
        return set()
    listed = what.get("keys") if "interleaved" in what else [what.get("key")]
    if not isinstance(listed, list) or not all(isinstance(k, list) for k in listed):
        return None
    return {case_key(dict(zip(IDENTITY, k, strict=False))) for k in listed}


def _cases(keys: set) -> str:
    return f"{len(keys)} case" + ("s" if len(keys) != 1 else "")


def _kept(path: pathlib.Path) -> list[tuple[list[str], str]]:
    """What a resume keeps of a run file: its whole records (:func:`_text`), parsed
    (:func:`_parse`), the header first; none of a missing file. One that cannot be read is a
    :class:`RunFolderError` naming file and line."""
    if not path.exists():
        return []
    try:
        return _parse(path, _text(path, FILES.get(path.name), whole_only=True))
    except SchemaError as e:
        raise RunFolderError(str(e)) from None


def _dicts(records: list[tuple[list[str], str]]) -> list[dict]:
    """Data records as dicts, column to field (a blank line is no record)."""
    header = records[0][0] if records else []
    return [dict(zip(header, fields, strict=False)) for fields, _ in records[1:] if fields]


def completed_keys(run_dir: pathlib.Path) -> set[tuple]:
    """Identities (:func:`bench.workloads.case_key`) of the cases recorded in a run folder (a
    ``skipped`` row does not count: the case is still to be measured)."""
    return _done(_dicts(_kept(run_dir / "measurements.csv")))


def _done(rows: Iterable[Mapping]) -> set[tuple]:
    return {case_key(r) for r in rows if r.get("status") != "skipped"}


def row_count(run_dir: pathlib.Path) -> int:
    """Data rows in ``measurements.csv`` (complete lines only)."""
    return len(_dicts(_kept(run_dir / "measurements.csv")))


def repair_interrupted(run_dir: pathlib.Path) -> None:
    """Undo what a killed run left half-written, before resuming it.

    A line without its newline is a write cut short: dropped (in every CSV of the run), unless
    it is a whole row (:func:`whole_records`): its line end is put back. Raw samples of a case
    with no row in measurements.csv belong to the case that did not finish (it is measured
    again): dropped, so no case ends up with two sets of samples (samples of any other case
    without a row are refused as damage before this, see :func:`check_resumable`). Files
    written aside for a rename that never happened are removed: by the suite's own names
    (:data:`ASIDE`, :data:`LEGACY_ASIDE`), so a user's ``notes.tmp`` stays.
    """
    for path in run_dir.iterdir():
        ours = path.name.endswith(ASIDE) or path.name in LEGACY_ASIDE
        if ours and path.is_file() and not path.is_symlink():  # (a folder is someone else's)
            path.unlink()
    rows, samples, claims = (_kept(run_dir / name) for name in FILES)
    done = _done(_dicts(rows))  # a skipped case's samples are a re-measure cut short
    if samples:
        (header, _), *records = samples
        samples = samples[:1] + [
            (fields, line)
            for fields, line in records
            if fields and case_key(dict(zip(header, fields, strict=False))) in done
        ]
    for name, kept in zip(FILES, (rows, samples, claims), strict=True):
        path, new = run_dir / name, "".join(line for _, line in kept)
        if path.exists() and path.read_bytes() != new.encode("utf-8"):
            _replace_text(path, new)


def recorded_claims(path: pathlib.Path) -> set[str]:
    """Claim ids with a verdict in ``claims.csv`` (an ERROR row does not count: that claim's
    experiment runs again on resume)."""
    return {r["claim"] for r in _dicts(_kept(path)) if r.get("verdict") not in (None, "ERROR")}


def record_claims(path: pathlib.Path, rows: list[dict]) -> None:
    """Put one experiment's verdict rows into ``claims.csv`` as a whole: earlier rows of the same
    claims (an ERROR, or the verdicts of an attempt that was cut short) are replaced, and the
    file is rewritten aside and renamed, so it never holds half an experiment."""
    replaced = {r["claim"] for r in rows}
    old = [r for r in _dicts(_kept(path)) if r.get("claim") not in replaced]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(CLAIM_COLUMNS), extrasaction="raise")
    writer.writeheader()
    for r in [*old, *rows]:
        writer.writerow({k: _cell(r.get(k)) for k in CLAIM_COLUMNS})
    _replace_text(path, buffer.getvalue())
