"""Load runs as pandas DataFrames, validated against the schema in :mod:`bench.records`.

``load(path)`` accepts a run folder, a ``measurements.csv``, a pytest-benchmark JSON file, or
a list of any of these, and returns one DataFrame with proper dtypes, joined with the run
context a user groups by (``jax``, ``backend``, ``profile``, ``git_sha``, ...). A file that
does not match the schema raises :class:`SchemaError` naming the file, line and problem:
never a silently wrong DataFrame.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import pathlib
from collections.abc import Iterable

import numpy as np
import pandas as pd

from bench import records
from bench.workloads import IDENTITY, SIZE_FIELDS, case_key

# Run-context fields joined onto every row.
ENV_FIELDS = ("git_sha", "git_dirty", "jax", "jaxlib", "flax", "backend", "host_cpu", "profile")


class SchemaError(ValueError):
    """A results file that does not match the schema this version reads."""


def _read_csv(
    path: pathlib.Path, columns: dict[str, str], *, complete_lines: bool = False
) -> pd.DataFrame:
    """Read a CSV written by records.CsvAppender, checking encoding, header, row lengths, types
    and values (see :func:`_check_values`). A last row without its line end is cut short
    unless it is whole (:func:`bench.records.whole_records`). ``complete_lines``: read only
    the whole records, as a resume keeps them (a last line cut short is what it repairs)."""
    if not path.exists():
        raise SchemaError(f"{path}: file not found")
    data = path.read_bytes()
    if path.suffix == ".gz":  # a kept reference run's samples (results/reference)
        data = gzip.decompress(data)
    if complete_lines:
        data = data[: data.rfind(b"\n") + 1] + _last_line(data)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise SchemaError(
            f"{path}: line {line}: byte {data[e.start]:#04x} is not UTF-8: not written by bench"
        ) from None
    text, cut = records.whole_records(text, columns)
    if cut and not complete_lines:  # every row ends its line: this one was cut short
        line = text.count("\n") + 1
        raise SchemaError(
            f"{path}: line {line}: the last row has no line end: cut short "
            "(`python -m bench run --resume` on its run folder repairs it)"
        )
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        rows = list(reader)
    except csv.Error as e:
        raise SchemaError(f"{path}: line {reader.line_num}: not valid CSV: {e}") from None
    if not rows:
        raise SchemaError(f"{path}: line 1: empty file, expected a header")
    header = rows[0]
    older = [c for c in columns if c not in records.ADDED_IN_V3]
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
            f"{path}: line 1: header does not match schema v{records.SCHEMA_VERSION}"
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


def _last_line(data: bytes) -> bytes:
    """The bytes after the last line end, where they decode (a cut inside a character is
    a write cut short, not an encoding error)."""
    rest = data[data.rfind(b"\n") + 1 :]
    try:
        rest.decode("utf-8")
    except UnicodeDecodeError:
        return b""
    return rest


TIMES = ("time_median_s", "time_min_s", "time_max_s")
"""Columns every ``ok`` row has, finite and not negative (as ``repeats`` and every sample's
``time_s``)."""


def _check_values(path: pathlib.Path, df: pd.DataFrame) -> None:
    for col, allowed in (("status", records.STATUSES), ("verdict", records.VERDICTS)):
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


def check_resumable(run_dir: pathlib.Path) -> None:
    """Raise :class:`SchemaError` unless a run folder's CSVs are sound in their whole records
    (what ``--resume`` keeps of them and appends to), and each row with a time has exactly
    its ``repeats`` samples, and a row without one none.

    A case's samples are written before its row (a sweep group's before its rows), so only the
    cases in flight when a run died have samples and no row, and theirs are the last samples
    written: the resume drops them. Samples without a row that come before samples of a case
    with one, or samples beside a measurements.csv that is gone or empty, are rows lost:
    refused, never deleted."""
    frames = {}
    for name, columns in records.FILES.items():
        path = run_dir / name
        if path.exists() and path.read_bytes().rfind(b"\n") >= 0:
            frames[name] = _read_csv(path, columns, complete_lines=True)
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
    done = {case_key(r) for r in rows.to_dict("records") if r["status"] != "skipped"}
    last = len(keys)  # the samples of the cases in flight when a run died: the last ones
    while last and keys[last - 1] not in done:
        last -= 1
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


def _cases(keys: set) -> str:
    return f"{len(keys)} case" + ("s" if len(keys) != 1 else "")


def load_measurements(path: str | pathlib.Path) -> pd.DataFrame:
    """``measurements.csv``, one row per case: a ``skipped`` row that a later session measured
    (``--budget-s``, then ``--resume``) is superseded by the later row and left out."""
    df = _read_csv(pathlib.Path(path), records.COLUMNS)
    return df[~superseded(df)].reset_index(drop=True)


def superseded(df: pd.DataFrame) -> np.ndarray:
    """Rows that a later row of the same case replaces: ``skipped`` ones (the only kind a
    resume measures again)."""
    keys = [c for c in IDENTITY if c in df]
    if "status" not in df or not keys:
        return np.zeros(len(df), dtype=bool)
    later = df.duplicated(keys, keep="last").to_numpy()
    return later & (df.status == "skipped").fillna(False).to_numpy()


def run_samples(run_dir: str | pathlib.Path) -> pd.DataFrame | None:
    """A run folder's raw samples: ``samples.csv``, or ``samples.csv.gz`` (how a reference run
    under ``results/reference`` keeps them small), or None when it has neither."""
    for name in ("samples.csv", "samples.csv.gz"):
        path = pathlib.Path(run_dir) / name
        if path.exists():
            return load_samples(path)
    return None


def load_samples(path: str | pathlib.Path) -> pd.DataFrame:
    return _read_csv(pathlib.Path(path), records.SAMPLE_COLUMNS)


def load_claims(path: str | pathlib.Path) -> pd.DataFrame:
    return _read_csv(pathlib.Path(path), records.CLAIM_COLUMNS)


ENV_REQUIRED = (
    "run_id", "profile", "suites", "repeats", "started_utc", "python", "jax", "jaxlib", "flax",
    "optax", "backend", "device_kind", "device_count", "host_cpu", "host_cpu_count",
)  # fmt: skip
"""What a run's env.json always holds (the report and ``--resume`` read them)."""


def load_env(run_dir: pathlib.Path) -> dict:
    path = run_dir / "env.json"
    if not path.exists():
        raise SchemaError(f"{path}: file not found (not a run folder?)")
    try:
        env = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as e:
        raise SchemaError(f"{path}: byte {e.start}: not UTF-8: not written by bench") from None
    except json.JSONDecodeError as e:
        raise SchemaError(f"{path}: line {e.lineno}: invalid JSON: {e.msg}") from None
    if not isinstance(env, dict):
        raise SchemaError(f"{path}: a JSON {type(env).__name__}, expected an object (a run's env)")
    version = env.get("schema_version")
    if version not in records.READABLE_VERSIONS:
        raise SchemaError(
            f"{path}: schema_version {version!r}; this version of the suite reads "
            f"{', '.join(map(str, records.READABLE_VERSIONS))} (re-run, or load with a "
            "matching checkout)"
        )
    missing = [k for k in ENV_REQUIRED if k not in env]
    if missing:
        raise SchemaError(f"{path}: no {', '.join(missing)}: not a run's env.json")
    if not isinstance(env["run_id"], str) or not env["run_id"]:
        raise SchemaError(f"{path}: run_id {env['run_id']!r} is not a run id")
    sessions = env.get("sessions", [])
    if not isinstance(sessions, list) or not all(
        isinstance(x, dict) and isinstance(x.get("first_row"), int) for x in sessions
    ):
        raise SchemaError(f"{path}: sessions must be a list of objects with a first_row")
    return env


def _session_of_rows(env: dict, n: int) -> np.ndarray:
    """The index in ``records.sessions(env)`` of the session that wrote each of n rows."""
    starts = [s["first_row"] for s in records.sessions(env)]
    return np.searchsorted(np.asarray(starts), np.arange(n), side="right") - 1


def _load_one(path: pathlib.Path) -> pd.DataFrame:
    if path.is_dir():
        env = load_env(path)
        df = _read_csv(path / "measurements.csv", records.COLUMNS)
        # each row gets the context of the session that wrote it (they differ only in a run
        # resumed with --allow-mixed)
        sessions = records.sessions(env)
        index = _session_of_rows(env, len(df))
        df["session"] = pd.Series([sessions[i]["session"] for i in index], dtype="Int64")
        for field in ENV_FIELDS:
            values = [sessions[i].get(field, env.get(field)) for i in index]
            df[field] = pd.Series(values, dtype="string" if field != "git_dirty" else "boolean")
        return df[~superseded(df)].reset_index(drop=True)
    if path.suffix == ".json":
        return load_pytest_benchmark(path)
    if path.name == "measurements.csv":
        return _load_one(path.parent)
    raise SchemaError(f"{path}: not a run folder, measurements.csv or pytest-benchmark JSON")


def load(paths: str | pathlib.Path | Iterable[str | pathlib.Path]) -> pd.DataFrame:
    """One DataFrame for one or several runs."""
    if isinstance(paths, str | pathlib.Path):
        paths = [paths]
    frames = [_load_one(pathlib.Path(p)) for p in paths]
    if not frames:
        raise SchemaError("no runs given")
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def load_pytest_benchmark(path: str | pathlib.Path) -> pd.DataFrame:
    """A pytest-benchmark JSON file as rows shaped like ``measurements.csv``.

    The benchmark tests store the case identity in ``extra_info``; timing statistics map to
    the ``time_*`` columns (pytest-benchmark's ``iqr`` and ``median``, in seconds). An entry
    without the identity (:data:`PYTEST_BENCHMARK_IDENTITY`) is refused: it could only be
    matched by its test name, which is not the case identity.
    """
    path = pathlib.Path(path)
    data = _read_pytest_benchmark(path)
    rows = []
    for b in data["benchmarks"]:
        info, stats = b["extra_info"], b.get("stats", {})
        row = {c: info.get(c) for c in records.COLUMNS if c in info}
        row.update(
            run_id=data.get("datetime"),
            status="ok",
            repeats=stats.get("rounds"),
            time_median_s=stats.get("median"),
            time_min_s=stats.get("min"),
            time_max_s=stats.get("max"),
            time_iqr_s=stats.get("iqr"),
        )
        rows.append(row)
    df = pd.DataFrame(rows, columns=list(records.COLUMNS))
    for name, dtype in records.COLUMNS.items():
        df[name] = (
            df[name].astype(dtype) if dtype == "string" else pd.to_numeric(df[name]).astype(dtype)
        )
    return _with_context(df, pytest_benchmark_context(data))


def pytest_benchmark_context(data: dict) -> dict:
    """A save's run context under the names a run folder's env.json uses (:data:`ENV_FIELDS`):
    git from ``commit_info``, versions and backend from ``machine_info["bench"]`` (written by
    tests/conftest.py), the CPU from py-cpuinfo's, the profile from the entries' extra_info."""
    machine, commit = data.get("machine_info") or {}, data.get("commit_info") or {}
    profiles = {(b.get("extra_info") or {}).get("profile") for b in data.get("benchmarks", [])}
    return {
        "git_sha": commit.get("id"),
        "git_dirty": commit.get("dirty"),
        **{k: (machine.get("bench") or {}).get(k) for k in ("jax", "jaxlib", "flax", "backend")},
        "host_cpu": (machine.get("cpu") or {}).get("brand_raw"),
        "profile": profiles.pop() if len(profiles) == 1 else None,
    }


def _with_context(df: pd.DataFrame, context: dict) -> pd.DataFrame:
    """``df`` with a ``session`` column and the :data:`ENV_FIELDS` of a run context, typed as a
    run folder's are (string, git_dirty boolean)."""
    df["session"] = pd.Series([pd.NA] * len(df), dtype="Int64")
    for field in ENV_FIELDS:
        dtype = "boolean" if field == "git_dirty" else "string"
        df[field] = pd.Series([context.get(field)] * len(df), dtype=dtype)
    return df


PYTEST_BENCHMARK_IDENTITY = tuple(c for c in IDENTITY if c not in SIZE_FIELDS)
"""The identity columns every pytest-benchmark entry must carry in ``extra_info`` (the sizes
are there only where the case has them)."""


def _read_pytest_benchmark(path: pathlib.Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise SchemaError(f"{path}: not readable as JSON: {e}") from None
    if not isinstance(data, dict) or "benchmarks" not in data:
        raise SchemaError(f"{path}: no 'benchmarks' key: not a pytest-benchmark file")
    for b in data["benchmarks"]:
        info = b.get("extra_info") or {}
        missing = [c for c in PYTEST_BENCHMARK_IDENTITY if info.get(c) is None]
        if missing:
            raise SchemaError(
                f"{path}: benchmark {b.get('name')!r} has no {', '.join(missing)} in extra_info: "
                "without the case identity (bench.workloads.IDENTITY) it cannot be matched "
                "(tests/benchmarks/test_workloads.py records it)"
            )
    return data


def load_pytest_benchmark_samples(path: str | pathlib.Path) -> pd.DataFrame:
    """The raw times of a pytest-benchmark save, shaped like ``samples.csv``.

    pytest-benchmark keeps them (``stats.data``) only when saved with
    ``--benchmark-save-data``, as ``make bench-pytest`` does; a save without them is refused.
    """
    path = pathlib.Path(path)
    data = _read_pytest_benchmark(path)
    rows = []
    for b in data["benchmarks"]:
        times = b.get("stats", {}).get("data")
        if not times:
            raise SchemaError(
                f"{path}: benchmark {b.get('name')!r} has no raw times (stats.data): "
                "save with --benchmark-save-data (make bench-pytest does)"
            )
        identity = {c: b["extra_info"].get(c) for c in IDENTITY}
        rows += [
            {"run_id": data.get("datetime"), **identity, "repeat": i, "time_s": t}
            for i, t in enumerate(times)
        ]
    df = pd.DataFrame(rows, columns=list(records.SAMPLE_COLUMNS))
    for name, dtype in records.SAMPLE_COLUMNS.items():
        df[name] = (
            df[name].astype(dtype) if dtype == "string" else pd.to_numeric(df[name]).astype(dtype)
        )
    return df
