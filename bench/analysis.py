"""Load runs as pandas DataFrames: the user-facing API over :mod:`bench.store`.

``load(path)`` accepts a run folder, a ``measurements.csv``, a pytest-benchmark JSON file, or
a list of any of these, and returns one DataFrame with proper dtypes, joined with the run
context a user groups by (``jax``, ``backend``, ``profile``, ``git_sha``, ...). A file that
does not match the schema raises :class:`SchemaError` naming the file, line and problem:
never a silently wrong DataFrame. The files are read by the store's one reader
(:func:`bench.store.read_table`), the same the runner, the report and ``compare`` use.
"""

from __future__ import annotations

import json
import pathlib
from collections.abc import Iterable

import numpy as np
import pandas as pd

from bench import store
from bench.workloads import IDENTITY, SIZE_FIELDS

# One file of a run: the store's loaders (its one reader), under the names users know.
SchemaError = store.SchemaError
load_env = store.load_env
load_measurements = store.load_measurements
load_samples = store.load_samples
load_claims = store.load_claims
run_samples = store.run_samples
superseded = store.superseded

ENV_FIELDS = ("git_sha", "git_dirty", "jax", "jaxlib", "flax", "backend", "host_cpu", "profile")
"""Run-context fields joined onto every row."""


def load(paths: str | pathlib.Path | Iterable[str | pathlib.Path]) -> pd.DataFrame:
    """One DataFrame for one or several runs."""
    if isinstance(paths, str | pathlib.Path):
        paths = [paths]
    frames = [_load_one(pathlib.Path(p)) for p in paths]
    if not frames:
        raise SchemaError("no runs given")
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def _load_one(path: pathlib.Path) -> pd.DataFrame:
    if path.is_dir():
        env = load_env(path)
        df = store.read_table(path / "measurements.csv", store.COLUMNS)
        store.check_rows_kept(path, df)
        # each row gets the context of the session that wrote it (they differ only in a run
        # resumed with --allow-mixed)
        sessions = store.sessions(env)
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


def _session_of_rows(env: dict, n: int) -> np.ndarray:
    """The index in ``store.sessions(env)`` of the session that wrote each of n rows."""
    starts = [s["first_row"] for s in store.sessions(env)]
    return np.searchsorted(np.asarray(starts), np.arange(n), side="right") - 1


# --- pytest-benchmark saves, in the shape of a run's files ---------------------------------------


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
        row = {c: info.get(c) for c in store.COLUMNS if c in info}
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
    df = _typed(pd.DataFrame(rows, columns=list(store.COLUMNS)), store.COLUMNS)
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


def _typed(df: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    """``df`` with the schema's dtypes (values from JSON, not text: no check to make)."""
    for name, dtype in columns.items():
        df[name] = (
            df[name].astype(dtype) if dtype == "string" else pd.to_numeric(df[name]).astype(dtype)
        )
    return df


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
    return _typed(pd.DataFrame(rows, columns=list(store.SAMPLE_COLUMNS)), store.SAMPLE_COLUMNS)
