"""Helpers shared by the harness tests."""

import pathlib


def only_run(out: pathlib.Path) -> pathlib.Path:
    """The one run folder a test's ``--out`` holds (``out/latest`` is a link to it, not a
    second run)."""
    (run_dir,) = [p for p in out.iterdir() if not p.is_symlink()]
    return run_dir
