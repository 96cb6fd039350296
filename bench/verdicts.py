"""Judging a run: the step between measuring and the report.

:func:`judge_run` reads a run folder's measurements and samples, fits every sweep
(:mod:`bench.fits`), judges every derived claim (:func:`bench.claims.derived`, the wall-time
ones by :mod:`bench.judge`) beside the experiments' verdicts of ``claims.csv``, writes
``fits.csv``, ``shapes.csv`` and ``claims_derived.csv`` through the store, and hands the lot
to :func:`bench.report.render`, which only renders. Re-judging a run folder gives the same
files: everything here is read from its CSVs.
"""

from __future__ import annotations

import dataclasses
import pathlib

import pandas as pd

from bench import claims, fits, store


@dataclasses.dataclass(frozen=True)
class Judged:
    """A run folder judged: its rows, samples, fits and every claim's verdicts."""

    run_dir: pathlib.Path
    df: pd.DataFrame
    samples: pd.DataFrame | None
    fitted: pd.DataFrame
    every: pd.DataFrame


def judge_run(run_dir: str | pathlib.Path) -> Judged:
    """Fit and judge the run folder ``run_dir``; write its fits, shapes and derived verdicts."""
    run_dir = pathlib.Path(run_dir)
    df = store.load_measurements(run_dir / "measurements.csv")
    store.check_rows_kept(run_dir, df)  # (a measurements.csv cut to its header: refused)
    samples = store.run_samples(run_dir)
    fitted = fits.fit(df, samples)
    store.write_frame(run_dir / "fits.csv", fitted)
    store.write_frame(run_dir / "shapes.csv", fits.shapes(df, samples))
    return Judged(run_dir, df, samples, fitted, claims_table(run_dir, df, fitted))


def claims_table(run_dir: pathlib.Path, df: pd.DataFrame, fitted: pd.DataFrame) -> pd.DataFrame:
    """Every claim's verdicts: the experiments' (``claims.csv``, the last row of each claim
    and measure) and those derived from the measurements (rewritten to
    ``claims_derived.csv``); a claim about sequential steps has one row per measure."""
    columns = [c for c in store.CLAIM_COLUMNS if c != "run_id"]
    found = []
    path = run_dir / "claims.csv"
    if path.exists():
        measured = store.load_claims(path)
        found.append(measured.drop_duplicates(["claim", "measure"], keep="last")[columns])
    rows = [
        {"suite": "+".join(rule.suites), **v.as_row(), "facts": dict(v.facts)}
        for rule in claims.derived()
        for v in rule.judge(df, fitted, run_dir)
    ]
    derived = pd.DataFrame(rows, columns=[*columns, "facts"])
    store.write_frame(run_dir / "claims_derived.csv", derived[columns])
    found.append(derived)
    found = [f for f in found if not f.empty]
    if not found:
        return pd.DataFrame(columns=[*columns, "facts"])
    every = pd.concat(found, ignore_index=True)
    facts = every["facts"] if "facts" in every else [None] * len(every)
    every["facts"] = [f if isinstance(f, dict) else {} for f in facts]  # claims.csv keeps none
    return every.sort_values(
        "claim", key=lambda s: s.map(claims.claim_number), kind="stable", ignore_index=True
    )
