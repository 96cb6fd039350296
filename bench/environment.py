"""What a run ran on: the code version, platform, devices and flags, captured for env.json.

:func:`environment` is the context a new run records; :func:`check_settings` compares a
resumed run's recorded settings (:data:`bench.store.SETTINGS`) with this process's. Only this
module imports JAX, Flax and optax to ask their versions and devices; the store writes and
reads env.json (:func:`bench.store.load_env`, :func:`bench.store.begin_session`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import pathlib
import platform
import secrets
import subprocess
import sys

from bench import store
from bench.config import RunConfig
from bench.workloads import SIZE_FIELDS, case_key


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


def new_run_id() -> str:
    """``<UTC time>-<git sha>-<4 random hex digits>``: runs started in the same second at one
    commit (a CI matrix, on one machine or several) still get ids of their own."""
    sha = git_info()["git_sha"]
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{sha[:7] if sha else 'nogit'}-{secrets.token_hex(2)}"


def _host_cpu() -> str:
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def settings() -> dict:
    """This process's values of :data:`store.SETTINGS`."""
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


def environment(run_id: str, config: RunConfig, argv: list[str] | None = None) -> dict:
    """The run context that every row of a run shares, with the run's configuration; its
    ``sessions`` list starts with this one."""
    values = settings()
    command = " ".join(argv if argv is not None else sys.argv)
    return {
        "schema_version": store.SCHEMA_VERSION,
        "run_id": run_id,
        **values,
        "started_utc": store.utc_now(),
        "host": platform.node(),
        "host_cpu_count": os.cpu_count(),
        "os": platform.platform(),
        "command": command,
        **config.to_env(),
        "sessions": [store.session_record(1, 0, command, values)],
    }


def mixed_settings(env: dict, values: dict) -> list[str]:
    """``"name: recorded -> now"`` for each setting that differs from the run's (the first
    session's; a setting the run did not record is not compared)."""
    return [
        f"{k} {env[k]!r} -> {values.get(k)!r}"
        for k in store.SETTINGS
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
    """This session's settings (:data:`store.SETTINGS`), with ``"mixed"`` listing those that differ
    from the run's. A difference is refused (:class:`store.RunFolderError`) unless ``allow_mixed``.

    ``cases``: the identities of the cases the run's own settings in env.json (profile,
    suites, devices, models and variants: ``described``) give. A row of any other case was
    measured under other settings than env.json says (an edited env.json): a difference too.
    """
    values = settings()
    mixed = mixed_settings(env, values)
    if cases is not None:
        mixed += _foreign_rows(run_dir / "measurements.csv", cases, described)
    if mixed and not allow_mixed:
        raise store.RunFolderError(
            f"--resume {run_dir}: this session's settings differ from the run's "
            f"({'; '.join(mixed)}); rows would mix them: resume from the run's settings, or "
            "pass --allow-mixed to record each session's settings in env.json"
        )
    return {**values, "mixed": mixed} if mixed else values


def _foreign_rows(path: pathlib.Path, cases: set[tuple], described: str) -> list[str]:
    """``["rows: ..."]`` when rows of ``path`` are not among ``cases``, else ``[]``."""
    foreign = [
        (line, row)
        for line, row in enumerate(store.kept_rows(path), start=2)
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
