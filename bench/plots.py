"""PNG plots for a run folder, drawn from its CSVs (matplotlib, no display needed).

One figure answers one question of a suite, with every compared variant on the same axes. The
figures here are drawn the same way for every suite; a figure particular to one suite is drawn
by that suite (its report section or its ``prepare``: ``bench.workloads.Suite``), with pyplot
imported from here, where the Agg backend is selected:

- ``time_<suite>.png``: median time against each swept size, log-log, a grid of panels (one
  per mode, swept axis and regime), one line per variant (the suite's baseline first,
  hollow markers). Error bars span the interquartile range of the raw samples
  (``samples.csv``). Dashed, in the line's colour: the slope the seed's count of
  sequential steps predicts, through the line's first point.
- ``span_<suite>.png``: the jaxpr critical path against the same sizes (exact counts, no
  error bars). Lines that coincide stay visible: each variant has its own marker, drawn
  smaller than the one before it.
- ``wall_time_<claim>.png``: one per wall-time claim (:class:`bench.claims.WallTimeFigure`):
  each latency-regime sweep's time against the claim's depth measure, every interleaved round
  a faint point, the median a marker, and through them the joint fit that decided the verdict,
  t = c_v + a·work + b·count over all the claim's points (``bench.judge.predicted``).
- experiment curves as each claim module declares them (:class:`bench.claims.Curve`), bands
  from ``y_low`` / ``y_high``; one panel per value of ``hue`` when a single panel would
  hold more than :data:`MAX_LINES` lines. A log axis spanning more than
  :data:`LOG_DECADES` decades is cut there: values below are drawn as ▼ on the floor.
"""

from __future__ import annotations

import math
import pathlib
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from bench import judge, store  # noqa: E402
from bench.claims import Curve, WallTimeFigure  # noqa: E402
from bench.fits import (  # noqa: E402
    GROUP,
    axis_values,
    round_times,
    sweeps,
)
from bench.workloads import SIZE_FIELDS, case_key, suites  # noqa: E402

AXIS_LABEL = {
    "hw": "pixels H·W",
    "depth": "depth d (layers)",
    "seq_len": "sequence length T (steps)",
    "batch": "batch size",
    "kernel": "kernel size K",
    "hidden": "hidden units",
}
SHORT = {"batch": "batch", "depth": "d", "kernel": "K", "hidden": "hidden", "seq_len": "T"}
"""A fixed size in a panel's title: the letters of the x-axis labels (d, K, T, H=W), batch and
hidden (the width: units or channels) in full."""
MARKERS = "osD^P*Xh"
"""Series markers; no ▼, which marks values drawn on a log axis's floor (:func:`curve_plot`)."""
LINESTYLES = ("-", "--", ":", "-.")
MAX_COLUMNS = 3
MAX_LINES = 6
LOG_DECADES = 8
PANEL = (4.8, 3.7)  # inches per panel


def _columns(n: int) -> int:
    """Panels per row: up to three, four from ten panels on."""
    return min(MAX_COLUMNS if n <= 9 else MAX_COLUMNS + 1, n)


def _grid(n: int, panel=PANEL, share: bool = False):
    cols = _columns(n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(panel[0] * cols, panel[1] * rows), squeeze=False, sharey=share,
        sharex=share,
    )  # fmt: skip
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:n])


def _save(fig, path: pathlib.Path) -> pathlib.Path:
    """Lay the figure out and save it whole: a title wider than the panels widens the image
    (``bbox_inches="tight"``), it is never cut at the figure's edge."""
    fig.tight_layout()
    try:  # whole or not at all (the name aside has no suffix to say the format)
        store.write_whole(
            path, lambda tmp: fig.savefig(tmp, format=path.suffix[1:], dpi=90, bbox_inches="tight")
        )
    finally:
        plt.close(fig)
    return path


class _PlainLog(matplotlib.ticker.LogFormatter):
    """matplotlib's choice of which log ticks to label, each as a plain number (0.4)."""

    def _num_to_string(self, x, vmin, vmax):
        return f"{x:g}"


def _ticks(ax, values) -> None:
    """Tick a log x axis at the swept values themselves (those far enough apart not to
    overlap), labelled as plain numbers."""
    kept: list[float] = []
    for v in sorted({float(v) for v in values if v > 0}):
        if not kept or v / kept[-1] >= 1.5:
            kept.append(v)
    if len(kept) > 1:
        ax.set_xticks(kept)
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())


# --- Sweeps of the timed cases ----------------------------------------------------------------


def sweep_lines(df: pd.DataFrame, min_points: int = 2):
    """``(mode, axis, regime, variant, fixed, rows)`` for every line a suite's plots draw: rows
    of one mode, regime, variant and device count in which one size axis (``hw``: height and
    width together) moves and the others stay fixed, with at least ``min_points`` values."""
    keys = ["mode", "regime", "variant", "n_devices"]
    for (mode, regime, variant, _), group in df.groupby(keys, dropna=False, sort=True):
        fields = [f for f in SIZE_FIELDS if group[f].notna().any()]
        together = {"height", "width"} <= set(fields) and (group.height == group.width).all()
        for axis in [f for f in fields if not (together and f == "width")]:
            moving = {"height", "width"} if together and axis == "height" else {axis}
            fixed = [f for f in fields if f not in moving]
            for values, rows in group.groupby(fixed, dropna=False) if fixed else [((), group)]:
                if rows[axis].nunique() >= min_points:
                    name = "hw" if moving == {"height", "width"} else axis
                    values = values if isinstance(values, tuple) else (values,)
                    yield mode, name, regime, variant, dict(zip(fixed, values, strict=True)), rows


def _fixed_text(fixed: dict) -> str:
    return " ".join(
        f"{SHORT.get(f, f)}={int(v)}" for f, v in fixed.items() if not pd.isna(v) and f != "width"
    ).replace("height=", "H=W=")


def quartiles(samples: pd.DataFrame | None) -> dict[tuple, tuple[float, float]]:
    """The 25th and 75th percentiles of each case's raw times, by case identity."""
    if samples is None or samples.empty:
        return {}
    out = {}
    for key, times in _grouped(samples):
        q1, q3 = np.percentile(times, [25, 75])
        out[key] = (float(q1), float(q3))
    return out


def _grouped(samples: pd.DataFrame):
    groups: dict[tuple, list] = {}
    for rec in samples.to_dict("records"):
        groups.setdefault(case_key(rec), []).append(float(rec["time_s"]))
    return groups.items()


def _log_log(ax, xs) -> None:
    """Log-log axes ticked at the swept values ``xs``, the y ticks in plain numbers (0.4, not
    4×10⁻¹), minor ticks labelled where few decades show."""
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(_PlainLog())
    ax.yaxis.set_minor_formatter(_PlainLog(labelOnlyBase=False))
    _ticks(ax, xs)


def sweep_plot(
    df: pd.DataFrame,
    suite: str,
    value: str,
    ylabel: str,
    path: pathlib.Path,
    *,
    spread: dict | None = None,
    title: str = "",
    scale: float = 1.0,
) -> pathlib.Path | None:
    """One figure per suite: a panel per (mode, axis, regime), a line per variant and fixed
    sizes, IQR error bars from ``spread`` (see :func:`quartiles`); values (and the bars)
    multiplied by ``scale`` (1e3: seconds shown in ms), the y ticks in plain numbers."""
    rows = df[(df.suite == suite) & df[value].notna()]
    lines = list(sweep_lines(rows))
    if not lines:
        return None
    suite_def = suites().get(suite)
    baselines = set(suite_def.baselines.values()) if suite_def else set()
    variants = sorted({line[3] for line in lines}, key=lambda v: (v not in baselines, v))
    style = {v: (f"C{i % 10}", MARKERS[i % len(MARKERS)], i) for i, v in enumerate(variants)}
    panels = sorted({(m, a, r) for m, a, r, *_ in lines}, key=lambda p: (p[0], p[1], p[2] or ""))
    fig, axes = _grid(len(panels), panel=PANEL if len(panels) > 1 else (6.4, 4.2))
    for ax, (mode, axis, regime) in zip(axes, panels, strict=True):
        mine = [line for line in lines if line[:3] == (mode, axis, regime)]
        fixed_sets = sorted({_fixed_text(line[4]) for line in mine})
        xs = set()
        for _, _, _, variant, fixed, sweep in mine:
            colour, marker, order = style[variant]
            sweep = sweep.sort_values("height" if axis == "hw" else axis)
            x = axis_values(sweep, axis).to_numpy(float)
            y = sweep[value].to_numpy(float) * scale
            xs |= set(x)
            dash = LINESTYLES[fixed_sets.index(_fixed_text(fixed)) % len(LINESTYLES)]
            label = variant + (f" ({_fixed_text(fixed)})" if len(fixed_sets) > 1 else "")
            size = max(3.0, 9.0 - 2.0 * order)
            err = None
            if spread:
                q = [spread.get(case_key(r)) for r in sweep.to_dict("records")]
                if all(q):
                    lo, hi = (np.array([pair[i] for pair in q]) * scale for i in (0, 1))
                    err = np.array([y - lo, hi - y])
            ax.errorbar(
                x, y, yerr=err, color=colour, marker=marker, linestyle=dash, markersize=size,
                markerfacecolor="none" if order == 0 else colour, capsize=3, label=label,
                zorder=2 + order,
            )  # fmt: skip
            if sweep.seq_steps_pred.notna().all() and len(x) > 1:
                steps = sweep.seq_steps_pred.to_numpy(float)
                ax.plot(x, y[0] * steps / steps[0], "--", color=colour, alpha=0.4, linewidth=1)
        _log_log(ax, xs)
        sizes = f"; {fixed_sets[0]}" if len(fixed_sets) == 1 and fixed_sets[0] else ""
        ax.set_title(f"{mode}, {regime or ''}-bound sizes{sizes}", fontsize=9)
        ax.set_xlabel(AXIS_LABEL.get(axis, axis))
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(title or suite, fontsize=10)
    return _save(fig, path)


# --- Experiment curves ------------------------------------------------------------------------


def _natural(value) -> tuple:
    """Sort key that puts ``bf2`` before ``bf12``."""
    return tuple(
        (0, int(part), "") if part.isdigit() else (1, 0, part)
        for part in re.split(r"(\d+)", str(value))
        if part
    )


def _log_floor(values: np.ndarray) -> float | None:
    """The floor of a log axis: :data:`LOG_DECADES` below the largest value, where the data
    reach further down (else None: nothing to cut)."""
    positive = values[np.isfinite(values) & (values > 0)]
    if positive.size == 0:
        return None
    floor = positive.max() / 10**LOG_DECADES
    return floor if (values[np.isfinite(values)] < floor).any() else None


def curve_plot(run_dir: pathlib.Path, curve: Curve, name: str | None = None) -> pathlib.Path | None:
    """One experiment table drawn as declared by its claim module (``bench.claims.Curve``),
    into ``name`` (default: the curve's own ``png``)."""
    csv = run_dir / curve.table
    if not csv.exists():
        return None
    data = pd.read_csv(csv)
    if not {curve.x, curve.y, curve.hue} <= set(data.columns):
        return None
    facet = curve.hue if data[curve.hue].nunique() > MAX_LINES else None
    groups = sorted(data.groupby(facet), key=lambda g: _natural(g[0])) if facet else [(None, data)]
    floor = _log_floor(data[curve.y].to_numpy(float)) if curve.logy else None
    fig, axes = _grid(len(groups), panel=(3.6, 2.8) if facet else (6.4, 4.2), share=bool(facet))
    hues = sorted(data[curve.hue].astype(str).unique(), key=_natural)
    colour = {h: f"C{i % 10}" for i, h in enumerate(hues)}
    for ax, (value, panel) in zip(axes, groups, strict=True):
        for hue, rows in sorted(panel.groupby(curve.hue), key=lambda g: _natural(g[0])):
            i = hues.index(str(hue))
            rows = rows.sort_values(curve.x)
            x, y = rows[curve.x].to_numpy(float), rows[curve.y].to_numpy(float)
            shown = np.maximum(y, floor) if floor else y
            ax.plot(
                x, shown, "-", color=colour[str(hue)],
                marker=None if len(rows) > 30 else MARKERS[i % len(MARKERS)], markersize=5,
                label=str(hue),
            )  # fmt: skip
            if floor is not None and (y < floor).any():
                ax.plot(x[y < floor], np.full((y < floor).sum(), floor), "v", color="black")
            bands = curve.y_low and curve.y_high and {curve.y_low, curve.y_high} <= set(rows)
            if bands:
                low, high = rows[curve.y_low].to_numpy(float), rows[curve.y_high].to_numpy(float)
                if floor:
                    low, high = np.maximum(low, floor), np.maximum(high, floor)
                if len(rows) > 12:  # a band for a dense curve, error bars for a few points
                    ax.fill_between(x, low, high, color=colour[str(hue)], alpha=0.2)
                else:
                    err = np.array([shown - low, high - shown]).clip(min=0)
                    ax.errorbar(x, shown, yerr=err, fmt="none", ecolor=colour[str(hue)], capsize=4)
        ax.set_xscale("log" if curve.logx else "linear")
        ax.set_yscale("log" if curve.logy else "linear")
        if curve.logx:
            _ticks(ax, panel[curve.x])
        if floor is not None:
            top = np.nanmax(data[curve.y].to_numpy(float))
            ax.set_ylim(floor / 3, top * 3)
        ax.set_xlabel(curve.xlabel)
        ax.set_ylabel(curve.ylabel, fontsize=8 if facet else 10)
        ax.grid(True, which="both", alpha=0.3)
        if facet:
            ax.set_title(str(value), fontsize=9)
            ax.label_outer()
            if axes.index(ax) + _columns(len(axes)) >= len(axes):  # nothing drawn below this panel
                ax.tick_params(labelbottom=True)
                ax.set_xlabel(curve.xlabel)
        if not facet or facet != curve.hue:
            ax.legend(fontsize=7)
    note = f" (▼: below {floor:.1g}, drawn on the floor)" if floor is not None else ""
    fig.suptitle(curve.title + note, fontsize=11)
    return _save(fig, run_dir / (name or curve.png))


def render(
    run_dir: pathlib.Path, df: pd.DataFrame, curves=(), samples=None, figures=()
) -> list[pathlib.Path]:
    """The sweep plots of every suite in ``df`` (error bars from ``samples``, the rows of
    ``samples.csv``), the wall-time ``figures`` (each with the joint fit that decided it) and
    the declared experiment ``curves``."""
    spread = quartiles(samples)
    ok = df[df.status == "ok"]
    paths = []
    for suite in sorted(df.suite.dropna().unique()):
        paths.append(
            sweep_plot(
                ok,
                suite,
                "time_median_s",
                "median time per call (ms)",
                run_dir / f"time_{suite}.png",
                spread=spread,
                scale=1e3,  # the report's unit
                title=f"{suite}: median wall time per call, bars from the 25th to the 75th "
                "percentile of the samples\ndashed: ∝ the seed's predicted sequential steps, "
                "through each line's first point",
            )
        )
        paths.append(
            sweep_plot(
                ok,
                suite,
                "span_ops",
                "critical path (ops, from the jaxpr)",
                run_dir / f"span_{suite}.png",
                title=f"{suite}: critical path of the traced program\ndashed: ∝ the seed's "
                "predicted sequential steps, through each line's first point",
            )
        )
    for figure in figures:
        paths.append(growth_plot(run_dir, figure, ok, samples))
    tables = [c.table for c in curves]
    for curve in curves:  # two curves of one table get one file each
        name = curve.png if tables.count(curve.table) == 1 else f"{curve.png[:-4]}_{curve.y}.png"
        paths.append(curve_plot(run_dir, curve, name))
    return [p for p in paths if p is not None]


def _growth_lines(figure: WallTimeFigure, ok: pd.DataFrame) -> dict:
    """``{axis: [(group key, sweep rows), ...]}``: the latency-regime sweeps of ``figure``
    per swept axis it draws (axes without one left out)."""
    rows = ok[ok.suite.isin(figure.suites) & (ok["mode"] == figure.mode)]
    rows = rows[rows.regime == "latency"]
    panels: dict[str, list] = {axis: [] for axis in figure.axes}
    for key, group in rows.groupby(GROUP, dropna=False):
        for axis, _, sweep in sweeps(group):
            if axis in panels and sweep[figure.measure].notna().all():
                panels[axis].append((key, sweep))
    return {axis: lines for axis, lines in panels.items() if lines}


def decided_fit(figure: WallTimeFigure, ok: pd.DataFrame, rounds) -> dict:
    """The time the joint fit of each of the figure's specs puts at each of its points, by
    case key: only for a design that decided (too few points or rounds, or a design that
    cannot tell the count from the work, draws no line: a fit there shows nothing decided)."""
    out = {}
    for spec in figure.specs:
        _, facts = judge.judge(spec, ok, rounds, boot=0)  # (the reason needs no interval)
        if facts["reason"] not in judge.UNDECIDED:
            out |= judge.predicted(spec, ok, rounds)
    return out


def growth_plot(
    run_dir: pathlib.Path,
    figure: WallTimeFigure,
    ok: pd.DataFrame,
    samples: pd.DataFrame | None,
) -> pathlib.Path | None:
    """``wall_time_<claim>.png``: the claim's latency-regime sweeps, time against its depth
    measure, one panel per swept axis (see the module docstring)."""
    rounds = round_times(samples)
    decided = decided_fit(figure, ok, rounds)
    panels = _growth_lines(figure, ok)
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(5.6 * len(panels), 4.4), squeeze=False)
    for ax, (axis, lines) in zip(axes[0], panels.items(), strict=True):
        # a measure constant along every sweep of the panel: drawn against the swept axis
        flat = all(sweep[figure.measure].nunique() == 1 for _, sweep in lines)
        for i, (key, sweep) in enumerate(lines):
            color = f"C{i}"
            sweep = sweep.assign(_x=axis_values(sweep, axis) if flat else sweep[figure.measure])
            sweep = sweep.sort_values("_x")
            x = sweep["_x"].to_numpy(float)
            for xi, record in zip(x, sweep.to_dict("records"), strict=True):
                per_round = rounds.get(case_key(record))
                if per_round is not None:
                    ax.scatter([xi] * len(per_round), per_round, s=6, color=color, alpha=0.2)
            marker = MARKERS[i % len(MARKERS)]
            ax.plot(x, sweep.time_median_s, marker, color=color, ms=5, label=f"{key[0]} {key[2]}")
            line = [decided.get(case_key(r), math.nan) for r in sweep.to_dict("records")]
            ax.plot(x, line, "-", color=color, linewidth=1.2)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(
            f"{AXIS_LABEL.get(axis, axis)} ({figure.measure} constant along it)"
            if flat
            else f"{figure.measure} (the sweep over {AXIS_LABEL.get(axis, axis)})"
        )
        ax.set_ylabel("wall time per call (s)")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    drawn = [sweep for lines in panels.values() for _, sweep in lines]
    records = [r for sweep in drawn for r in sweep.to_dict("records")]
    n_rounds = max((len(rounds.get(case_key(r), ())) for r in records), default=0)
    fig.suptitle(
        f"{figure.claim}: wall time against {figure.measure}, latency regime, {n_rounds} "
        "interleaved rounds\nfaint: each round; line: the joint fit that decided the verdict, "
        "t = c_v + a·work + b·count (bench.judge)"
        + ("" if decided else "; no line: too few points or rounds, or not identifiable"),
        fontsize=9,
    )
    fig.tight_layout()
    return _save(fig, run_dir / f"wall_time_{figure.claim}.png")
