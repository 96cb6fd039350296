"""A case's (or suite's) time across every run folder under ``results/``: asv's view across
commits, from the run folders already there.

``python -m bench history results/`` writes ``history.csv`` (one row per case and run) and
``history.png``: x is the run, in order of its start, labelled with its commit's short SHA and
date; y is each case's median time with the run's own noise band around it. The band is the
interquartile range of the case's per-round medians where the run timed it in interleaved
rounds (``samples.csv``'s ``round``), else of its raw samples (``samples.csv``).

A case is its identity and the parameter count of its program (``bench.compare.program_key``:
a profile sizes some models by its own config), and a line never joins two profiles: one panel
per suite and profile. With one case chosen (``--case``), its time in ms, else each case's time
over its own median across the runs (1 = its usual time), so cases of any size share an axis;
a panel of more than :data:`MAX_LINES` cases draws their typical time (the median over its
cases, the band their interquartile range) and the cases that moved most, not every line.
"""

from __future__ import annotations

import pathlib

import matplotlib.ticker
import numpy as np
import pandas as pd

from bench import figures, store
from bench.compare import case_label, program_key
from bench.figures import plt
from bench.workloads import IDENTITY, case_key

COLUMNS = (
    "case", *IDENTITY, "n_params", "run_id", "started_utc", "git_sha", "git_short", "git_dirty",
    "profile", "status", "median_s", "band_lo_s", "band_hi_s", "band", "n",
)  # fmt: skip
"""``history.csv``: ``band`` says what the band spans (``rounds`` or ``samples``)."""


MAX_LINES = 10
"""A panel draws at most this many cases one by one; above it, their typical time and the
:data:`MOVERS` cases that moved most across the runs."""
MOVERS = 5
LINESTYLES = ("-", "--", ":", "-.")  # a new one every 10 cases (matplotlib's 10 colours)
BAND_TEXT = {"rounds": "IQR of its per-round medians", "samples": "IQR of its samples"}


class HistoryError(ValueError):
    """No run to draw (the CLI exits 2)."""


def run_folders(results: pathlib.Path, left_out: list[str] | None = None) -> list[pathlib.Path]:
    """Every run folder under ``results`` (a folder with an ``env.json``; a link such as
    ``results/latest`` is not a second run), in order of its start; one whose env.json is
    damaged is left out, with a line in ``left_out`` (:func:`bench.store.find_runs`)."""
    found, damaged = store.find_runs(results)
    if left_out is not None:
        left_out.extend(damaged)
    return [folder for _, folder in found]


def _band(times: np.ndarray, rounds: np.ndarray | None) -> tuple[float, float, str]:
    if rounds is not None and len(np.unique(rounds)) >= 2:
        medians = [np.median(times[rounds == r]) for r in np.unique(rounds)]
        lo, hi = np.percentile(medians, [25, 75])
        return float(lo), float(hi), "rounds"
    lo, hi = np.percentile(times, [25, 75])
    return float(lo), float(hi), "samples"


def table(folders: list[pathlib.Path], left_out: list[str] | None = None) -> pd.DataFrame:
    """One row per case and run (:data:`COLUMNS`); a run whose files are damaged is left out,
    with a line in ``left_out`` (else its error is raised)."""
    rows = []
    for folder in folders:
        try:
            env = store.load_env(folder)
            measured = store.load_measurements(folder / "measurements.csv")
            store.check_rows_kept(folder, measured)
            samples = store.run_samples(folder)
        except store.SchemaError as e:
            if left_out is None:
                raise
            left_out.append(f"{folder} left out: {e}")
            continue
        by_case: dict[tuple, tuple[list, list]] = {}
        if samples is not None:
            has_rounds = "round" in samples
            for rec in samples.to_dict("records"):
                times, rounds = by_case.setdefault(case_key(rec), ([], []))
                times.append(float(rec["time_s"]))
                rounds.append(rec["round"] if has_rounds and not pd.isna(rec["round"]) else None)
        sha = env.get("git_sha") or ""
        for rec in measured.to_dict("records"):
            if rec["status"] == "skipped":
                continue
            times, rounds = by_case.get(case_key(rec), ([], []))
            ok = rec["status"] == "ok" and bool(times)
            lo, hi, band = np.nan, np.nan, None
            if ok:
                lo, hi, band = _band(
                    np.asarray(times), None if None in rounds else np.asarray(rounds)
                )
            rows.append(
                {
                    "case": case_label(program_key(rec)),
                    **{k: rec[k] for k in IDENTITY},
                    "n_params": program_key(rec)[-1],
                    "run_id": env["run_id"],
                    "started_utc": env.get("started_utc"),
                    "git_sha": sha or None,
                    "git_short": sha[:7] or None,
                    "git_dirty": env.get("git_dirty"),
                    "profile": env.get("profile"),
                    "status": rec["status"],
                    "median_s": rec["time_median_s"] if ok else np.nan,
                    "band_lo_s": lo,
                    "band_hi_s": hi,
                    "band": band,
                    "n": len(times),
                }
            )
    return pd.DataFrame(rows, columns=list(COLUMNS))


def choose(df: pd.DataFrame, suites=None, case: str | None = None) -> pd.DataFrame:
    """The rows of the chosen suites, and of the cases whose label contains ``case``."""
    if suites:
        df = df[df.suite.isin(suites)]
    if case:
        df = df[df.case.str.contains(case, regex=False)]
    if df.empty:
        what = ", ".join(filter(None, [f"suite {'/'.join(suites)}" if suites else "",
                                       f"case containing {case!r}" if case else ""]))  # fmt: skip
        raise HistoryError(f"no measured case{' matches ' + what if what else ''}")
    return df


def _run_ticks(runs: pd.DataFrame) -> list[str]:
    """Each run's tick label, short SHA (+ when dirty) over its start: what names a run."""
    return [
        f"{sha or '?'}{'+' if dirty is True else ''}\n{str(started)[5:16].replace('T', ' ')}"
        for sha, dirty, started in zip(
            runs.git_short, runs.git_dirty, runs.started_utc, strict=True
        )
    ]


def _plot_case(ax, rows: pd.DataFrame, x_of: dict, *, scale: float, offset: float, ls, name):
    """One case's medians across runs with its noise bands as error bars, shifted by
    ``offset`` so that the cases of a panel stay apart."""
    x = rows.run_id.map(x_of).to_numpy()
    y = rows.median_s.to_numpy(float) * scale
    lo = rows.band_lo_s.to_numpy(float) * scale
    hi = rows.band_hi_s.to_numpy(float) * scale
    ax.errorbar(
        x + offset,
        y,
        ls=ls,
        yerr=[np.maximum(y - lo, 0), np.maximum(hi - y, 0)],
        marker="o",
        ms=3.5,
        lw=1,
        capsize=2,
        label=name,
    )


def panel_lines(part: pd.DataFrame, one_case: bool) -> list[tuple[str, pd.DataFrame]]:
    """What one panel draws, ``(name, rows with run_id and median_s, band_lo_s, band_hi_s)``,
    the times in the panel's unit (ms for one case, else each case over its own median across
    the runs): every case, or above :data:`MAX_LINES` cases their typical time (the median
    over the cases per run, the band their interquartile range) and the :data:`MOVERS` cases
    whose time moved most across the runs."""
    cases = []
    for name, rows in part.groupby("case", sort=True):
        rows = rows[rows.median_s.notna()]
        if rows.empty:
            continue
        scale = 1e3 if one_case else 1 / float(np.median(rows.median_s))
        times = ("median_s", "band_lo_s", "band_hi_s")
        cases.append((name.split("/", 1)[1], rows.assign(**{c: rows[c] * scale for c in times})))
    if len(cases) <= MAX_LINES:
        return cases
    every = pd.concat([rows for _, rows in cases])
    typical = every.groupby("run_id", sort=False).median_s.agg(
        median_s="median",
        band_lo_s=lambda x: x.quantile(0.25),
        band_hi_s=lambda x: x.quantile(0.75),
    )
    moved = sorted(cases, key=lambda c: -float(c[1].median_s.max() / c[1].median_s.min()))
    name = f"typical of its {len(cases)} cases (median; bar: their IQR)"
    return [(name, typical.reset_index()), *moved[:MOVERS]]


def _plot_cases(ax, part: pd.DataFrame, x_of: dict, one_case: bool) -> None:
    """The lines of one panel (:func:`panel_lines`), side by side."""
    lines = panel_lines(part, one_case)
    step = min(0.3 / max(len(lines) - 1, 1), 0.03)  # side by side, so the bands stay apart
    offset = -step * (len(lines) - 1) / 2
    for i, (name, rows) in enumerate(lines):
        ls = LINESTYLES[(i // 10) % len(LINESTYLES)]
        _plot_case(ax, rows, x_of, scale=1.0, offset=offset, ls=ls, name=name)
        offset += step


def _dress_panel(ax, suite: str, part: pd.DataFrame, ticks: list[str], one_case: bool):
    """One panel's axes, title and legend (at most :data:`MAX_LINES` lines: a legend fits)."""
    ax.set_xticks(range(len(ticks)), ticks, fontsize=7)
    ax.set_xlim(-0.5, len(ticks) - 0.5)
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%.3g"))
    ax.yaxis.set_minor_formatter(matplotlib.ticker.FormatStrFormatter("%.3g"))
    ax.set_ylabel("median time (ms)" if one_case else "time / the case's median over runs")
    if not one_case:
        ax.axhline(1.0, color="grey", lw=0.8, ls=":")
    bands = " or ".join(BAND_TEXT[b] for b in sorted(part.band.dropna().unique()))
    ax.set_title(f"{suite}: each run's median; bar = the run's noise, {bands}", fontsize=9)
    ax.grid(True, which="both", axis="y", alpha=0.3)
    ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0))


def panels(df: pd.DataFrame) -> list[tuple[str, str]]:
    """The figure's panels: one per suite and profile (a line never joins two profiles)."""
    return sorted(set(zip(df.suite, df.profile.fillna("?").astype(str), strict=True)))


def plot(df: pd.DataFrame, path: pathlib.Path) -> pathlib.Path:
    """``history.png``: time against run (short SHA and date), a band per run; one panel per
    suite and profile."""
    runs = df.drop_duplicates("run_id")[["run_id", "started_utc", "git_short", "git_dirty"]]
    x_of = {run: i for i, run in enumerate(runs.run_id)}
    ticks = _run_ticks(runs)
    one_case = df.case.nunique() == 1
    profile = df.profile.fillna("?").astype(str)
    chosen = panels(df)
    fig, axes = plt.subplots(
        len(chosen), 1, figsize=(max(6.0, 1.1 * len(runs) + 6), 4.2 * len(chosen)), squeeze=False
    )
    for ax, (suite, prof) in zip(axes[:, 0], chosen, strict=True):
        part = df[(df.suite == suite) & (profile == prof)]
        _plot_cases(ax, part, x_of, one_case)
        _dress_panel(ax, f"{suite} (profile {prof})", part, ticks, one_case)
    axes[-1, 0].set_xlabel("run: commit (short SHA, + = uncommitted changes) and start (UTC)")
    fig.tight_layout()
    return figures.save(fig, path, dpi=110, bbox_inches="tight")  # the legend outside, whole


def write(
    results: pathlib.Path,
    out: pathlib.Path | None = None,
    suites=None,
    case: str | None = None,
    left_out: list[str] | None = None,
) -> tuple[pathlib.Path, pathlib.Path, pd.DataFrame]:
    """``history.csv`` and ``history.png`` in ``out`` (default: ``results``); a run folder
    that is damaged is left out, with a line in ``left_out``."""
    if not results.is_dir():
        raise HistoryError(f"{results}: not a folder")
    left_out = [] if left_out is None else left_out
    folders = run_folders(results, left_out)
    if not folders:
        damaged = f" ({len(left_out)} damaged: {left_out[0]})" if left_out else ""
        raise HistoryError(f"{results}: no run folder (a folder with an env.json) in it{damaged}")
    df = choose(table(folders, left_out), suites, case)
    out = results if out is None else out
    csv_path, png_path = out / "history.csv", out / "history.png"
    try:
        out.mkdir(parents=True, exist_ok=True)
        store.write_frame(csv_path, df)
        store.write_whole(png_path, lambda path: plot(df, path))
    except OSError as e:  # a full disk, a read-only folder
        where = f" ({e.filename})" if getattr(e, "filename", None) else ""
        raise HistoryError(
            f"history: cannot write into {out}: {e.strerror or e}{where}; the run folders are "
            "untouched (--out names another folder)"
        ) from None
    return csv_path, png_path, df
