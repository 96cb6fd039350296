"""PNG plots for a run folder, drawn from its CSVs (matplotlib, no display needed).

- ``time_<suite>.png``: median time vs each swept size on log-log axes, one panel per mode,
  one line per variant, with the slope predicted by the sequential-step count drawn dashed
  through the first point of each line;
- ``span_<suite>.png``: the jaxpr critical-path length vs the same sizes;
- experiment curves, as each claim module declares them (``bench.claims.Curve``).
"""

from __future__ import annotations

import math
import os
import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from bench.claims import Curve  # noqa: E402
from bench.fits import axis_values, sweeps  # noqa: E402

AXIS_LABEL = {
    "hw": "pixels H·W",
    "depth": "depth d (layers)",
    "seq_len": "sequence length T (steps)",
    "batch": "batch size",
    "kernel": "kernel size K",
    "hidden": "hidden units",
}


def _panels(df: pd.DataFrame, value: str):
    """(mode, axis, variant, rows) for every fit-able sweep in one suite."""
    for (mode, variant, _), group in df.groupby(["mode", "variant", "n_devices"], dropna=False):
        for axis, fixed, rows in sweeps(group):
            if rows[value].notna().all():
                yield mode, axis, variant, fixed, rows


def _label(ax, xlabel: str, ylabel: str, title: str, legend_size: int) -> None:
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=legend_size)


def _save(fig, path: pathlib.Path) -> pathlib.Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _axis_values(sweeps, mode, axis) -> set:
    return {
        float(v)
        for m, a, _, _, rows in sweeps
        if (m, a) == (mode, axis)
        for v in axis_values(rows, axis)
    }


def sweep_plot(
    df: pd.DataFrame, suite: str, value: str, ylabel: str, path: pathlib.Path, predicted: bool
) -> pathlib.Path | None:
    sweeps = list(_panels(df[df.suite == suite], value))
    if not sweeps:
        return None
    keys = sorted({(mode, axis) for mode, axis, *_ in sweeps})
    fig, axes = plt.subplots(1, len(keys), figsize=(5 * len(keys), 4), squeeze=False)
    for ax, (mode, axis) in zip(axes[0], keys, strict=True):
        for m, a, variant, fixed, rows in sweeps:
            if (m, a) != (mode, axis):
                continue
            rows = rows.sort_values("height" if axis == "hw" else axis)
            x = axis_values(rows, axis).to_numpy(float)
            y = rows[value].to_numpy(float)
            label = variant + "".join(
                f" {f}={rows[f].iloc[0]}"
                for f in fixed
                if f in ("depth", "height", "batch") and f != axis
            )
            (line,) = ax.loglog(x, y, "o-", label=label)
            if predicted and rows.seq_steps_pred.notna().all():
                steps = rows.seq_steps_pred.to_numpy(float)
                ax.loglog(x, y[0] * steps / steps[0], "--", color=line.get_color(), alpha=0.5)
        ax.set_xticks(sorted(_axis_values(sweeps, mode, axis)))
        ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        title = f"{suite} · {mode}" + (" (dashed: ∝ predicted steps)" if predicted else "")
        _label(ax, AXIS_LABEL.get(axis, axis), ylabel, title, legend_size=7)
    return _save(fig, path)


def curve_plot(run_dir: pathlib.Path, curve: Curve) -> pathlib.Path | None:
    """One experiment table drawn as declared by its claim module (``bench.claims.Curve``)."""
    csv = run_dir / curve.table
    if not csv.exists():
        return None
    data = pd.read_csv(csv)
    if not {curve.x, curve.y, curve.hue} <= set(data.columns):
        return None
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, rows in data.groupby(curve.hue):
        rows = rows.sort_values(curve.x)
        (line,) = ax.plot(
            rows[curve.x], rows[curve.y], "-" if len(rows) > 30 else "o-", label=str(name)
        )
        if curve.y_low and curve.y_high and {curve.y_low, curve.y_high} <= set(rows.columns):
            ax.fill_between(
                rows[curve.x], rows[curve.y_low], rows[curve.y_high], color=line.get_color(),
                alpha=0.2,
            )  # fmt: skip
    ax.set_xscale("log" if curve.logx else "linear")
    ax.set_yscale("log" if curve.logy else "linear")
    _label(ax, curve.xlabel, curve.ylabel, curve.title, legend_size=8)
    return _save(fig, run_dir / curve.png)


def render(run_dir: pathlib.Path, df: pd.DataFrame, curves=()) -> list[pathlib.Path]:
    """The sweep plots of every suite in ``df``, and the declared experiment ``curves``."""
    paths = []
    for suite in sorted(df.suite.dropna().unique()):
        ok = df[(df.status == "ok") & (df.suite == suite)]
        paths.append(
            sweep_plot(
                ok,
                suite,
                "time_median_s",
                "median time per call (s)",
                run_dir / f"time_{suite}.png",
                predicted=True,
            )
        )
        paths.append(
            sweep_plot(
                ok,
                suite,
                "span_ops",
                "critical path (ops, from jaxpr)",
                run_dir / f"span_{suite}.png",
                predicted=True,
            )
        )
    paths.extend(curve_plot(run_dir, curve) for curve in curves)
    return [p for p in paths if p is not None]


# --- trained models (bench/suites/trained.py) ------------------------------------------------


def sample_grid(
    path: str | os.PathLike,
    samples: np.ndarray,
    real: np.ndarray,
    *,
    title: str = "",
    columns: int | None = None,
) -> pathlib.Path:
    """A PNG of model ``samples`` (left) beside ``real`` images (right), each (N, H, W) of
    0/1 (or probabilities), tiled ``columns`` wide (default: a square grid) with 1-pixel
    grey gaps, black ink on white; ``title`` over the figure."""
    columns = columns or math.ceil(math.sqrt(max(len(samples), len(real))))

    def tile(images: np.ndarray) -> np.ndarray:
        images = np.asarray(images, np.float32)
        n, h, w = images.shape
        rows = -(-n // columns)
        canvas = np.full((rows * (h + 1) + 1, columns * (w + 1) + 1), 0.5, np.float32)
        for k, image in enumerate(images):
            top, left = 1 + (k // columns) * (h + 1), 1 + (k % columns) * (w + 1)
            canvas[top : top + h, left : left + w] = image
        return canvas

    panels = [
        (tile(samples), f"model samples ({len(samples)})"),
        (tile(real), f"real images ({len(real)})"),
    ]
    height_px = max(canvas.shape[0] for canvas, _ in panels)
    inch_per_px = 3.0 / max(canvas.shape[1] for canvas, _ in panels)  # 3-inch-wide panels
    fig, axes = plt.subplots(
        1, 2, figsize=(6.6, height_px * inch_per_px + (0.9 if title else 0.5)), squeeze=True
    )
    for ax, (canvas, label) in zip(axes, panels, strict=True):
        ax.imshow(canvas, cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(label, fontsize=9)
        ax.set_axis_off()
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = pathlib.Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def training_curves(
    path: str | os.PathLike,
    curves: dict[str, list[dict]],
    *,
    baseline_nats: float,
    target_ratio: float = 0.75,
    split: str = "test",
) -> pathlib.Path:
    """A PNG of each model's ``split`` NLL against training wall seconds, one axis for all,
    as a fraction of the independent-pixel baseline, with the target ratio dashed."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for name, rows in curves.items():
        seconds = [row["train_s"] for row in rows[1:]]  # step 0 (random init) is off the scale
        ratio = [row[f"{split}_nats"] / baseline_nats for row in rows[1:]]
        ax.plot(seconds, ratio, marker=".", label=name)
    ax.axhline(target_ratio, color="k", linestyle="--", linewidth=1, label=f"{target_ratio}×")
    ax.set_xlabel("training wall time (s, evaluation excluded)")
    ax.set_ylabel(f"{split} NLL / independent-pixel baseline")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = pathlib.Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


# --- the deer suite: speed-up over the sequential scan (bench/claims/deer.py) ---------------


def speedup_heatmap(table: pd.DataFrame, path: str | os.PathLike) -> pathlib.Path | None:
    """A PNG of each parallel variant's speed-up over the sequential scan on a (T, hidden) grid,
    one panel per (mode, batch) and variant, from :func:`bench.claims.deer.speedups`.

    Colour: log₂ of the speed-up (blue faster, red slower); each cell says ×speed-up and the
    Newton iterations k (and "tie" where :func:`bench.claims.deer.outcome` cannot decide), or
    the status of a case without a time (``diverged``, ...); a cell
    without a time is grey (unlabelled where nothing was measured). The crossover (speed-up
    1) is drawn as a thick black line between the cells on either side of it.
    """
    if table.empty:
        return None
    variants = sorted(table.variant.unique())
    groups = sorted({(m, int(b)) for m, b in zip(table["mode"], table.batch, strict=True)})
    finite = np.log2(table.speedup.to_numpy(float))
    finite = finite[np.isfinite(finite)]
    limit = max(1.0, float(np.abs(finite).max())) if finite.size else 1.0
    fig, axes = plt.subplots(
        len(groups),
        len(variants),
        figsize=(4.6 * len(variants) + 1, 3.6 * len(groups)),
        squeeze=False,
        layout="constrained",
    )
    cmap = plt.get_cmap("RdBu").with_extremes(bad="0.85")
    image = None
    for row, (mode, batch) in enumerate(groups):
        sizes = table[(table["mode"] == mode) & (table.batch == batch)]
        seq_lens = sorted(sizes.seq_len.unique())
        hiddens = sorted(sizes.hidden.unique())
        for col, variant in enumerate(variants):
            ax = axes[row][col]
            cells = sizes[sizes.variant == variant].set_index(["hidden", "seq_len"])
            grid = np.full((len(hiddens), len(seq_lens)), np.nan)
            for i, h in enumerate(hiddens):
                for j, t in enumerate(seq_lens):
                    if (h, t) not in cells.index:
                        continue
                    cell = cells.loc[(h, t)]
                    grid[i, j] = np.log2(cell.speedup) if cell.speedup == cell.speedup else np.nan
                    k = cell.newton_iterations
                    text = f"×{cell.speedup:.2g}" if cell.speedup == cell.speedup else cell.status
                    if cell.get("outcome") == "tie":  # the medians and the minima disagree
                        text += " (tie)"
                    if k is not None and k == k:
                        text += f"\nk={int(k)}"
                    dark = abs(grid[i, j]) > 0.6 * limit
                    ax.text(j, i, text, ha="center", va="center", fontsize=7,
                            color="white" if dark else "black")  # fmt: skip
            image = ax.imshow(
                grid, cmap=cmap, vmin=-limit, vmax=limit, origin="lower", aspect="auto"
            )
            faster = np.where(np.isnan(grid), np.nan, grid >= 0)
            for i in range(len(hiddens)):  # the crossover: where faster turns slower
                for j in range(len(seq_lens)):
                    here = faster[i, j]
                    if i + 1 < len(hiddens) and abs(here - faster[i + 1, j]) == 1:
                        ax.plot([j - 0.5, j + 0.5], [i + 0.5, i + 0.5], "k-", linewidth=3)
                    if j + 1 < len(seq_lens) and abs(here - faster[i, j + 1]) == 1:
                        ax.plot([j + 0.5, j + 0.5], [i - 0.5, i + 0.5], "k-", linewidth=3)
            measured = faster[~np.isnan(faster)]
            where = (
                "slower everywhere"
                if measured.size and not measured.any()
                else "faster everywhere"
                if measured.size and measured.all()
                else "black line: speed-up 1"
            )
            ax.set_xticks(range(len(seq_lens)), [str(t) for t in seq_lens])
            ax.set_yticks(range(len(hiddens)), [str(h) for h in hiddens])
            ax.set_xlabel("sequence length T")
            ax.set_ylabel("hidden units H")
            ax.set_title(f"{variant} · {mode} · batch {batch}\n({where})", fontsize=9)
    fig.colorbar(image, ax=axes.ravel().tolist(), label="log₂ speed-up over the sequential scan")
    path = pathlib.Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
