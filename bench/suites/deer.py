"""DEER suite (the suite's own claim C13): the LSTM evaluated in parallel over time.

Variants, which share the model, its parameters and its inputs and differ only in how the
trajectory is evaluated:

- ``sequential``: :func:`models.lstm.lstm_scan`, T dependent steps (the baseline);
- ``deer``: :func:`models.deer.lstm_deer` with full Jacobians (Newton, dense 2H×2H);
- ``quasi-deer``: the same with diagonal Jacobians.

Modes: ``forward`` (all h(t)) and ``train`` (one Adam step on the MSE of a linear read-out of
every h(t); the parallel variants differentiate their solution implicitly, see
``models/deer.py``). Sizes: batch, seq_len T and hidden H per profile, as data below; the
input has H features. The parallel variants stop at their tolerance or at their iteration cap
(:data:`MAX_ITER`).

The Newton iterations k depend on the data, so each parallel case runs its program once when
it is built: k, the converged flag, the last update and the residual go into the row
(``extra_json``), and k is the ``while_trip_count`` by which ``bench.structure`` counts the
span, the loop steps and the work of the run actually made. The runner's compilation of the
same program is then a hit in JAX's compilation cache, so the row's ``compile_s`` is near
zero: the compile time of a parallel case is ``build_compile_s`` in its ``extra_json``.

Divergence is a result: a case whose iteration does not converge within its cap fails its
``health`` with status ``diverged`` (``bench.store.STATUSES``); the row keeps k and the
residual, has no time, and the sweep goes on.

Memory guards (the full profile): the ``deer`` variant holds B·T·(2H)² Jacobian entries,
several times over inside the associative scan, and in ``train`` both parallel variants do
(the implicit backward pass is a dense scan for both); a case over
:data:`JACOBIAN_ENTRIES_LIMIT` is left out of the grid. The cpu profile is a small sweep,
most of whose time is compiling: XLA:CPU's compile time of a parallel program (its
associative scan) does not shrink with its size.
The speed-up over the sequential scan (:func:`speedups`) is computed here, for the suite's
section of ``report.md`` (:func:`report_sections`, with the heat map :func:`speedup_heatmap`)
and for C13's wall-time rule in ``bench/claims/deer.py``.
"""

from __future__ import annotations

import functools
import json
import math
import os
import pathlib
import time
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pandas as pd
from flax import nnx

from bench.figures import plt, save
from bench.markdown import table
from bench.workloads import BuildContext, Case, Section, Suite, Workload, register
from models.deer import lstm_deer
from models.lstm import LSTM, lstm_scan

NAME = "deer"
PARALLEL = ("deer", "quasi-deer")
VARIANTS = ("sequential", *PARALLEL)
JACOBIAN = {"deer": "full", "quasi-deer": "diagonal"}
MODES = ("forward", "train")
MAX_ITER = {"deer": 64, "quasi-deer": 256}
"""Iteration caps (min(cap, T) is used). At the default initialisation DEER converged in
4–6 iterations and quasi-DEER in 13–21 on every size tried (T 256 … 65,536, H 1 … 64)."""
TYPICAL_ITERATIONS = {"deer": 5, "quasi-deer": 18}
"""What the plan assumes for k (the middle of the ranges above)."""
OUT_FEATURES = 4
JACOBIAN_ENTRIES_LIMIT = 2**28
"""Largest B·T·(2H)² of a case with dense Jacobians: 1 GiB per copy in float32."""


def _grid(modes, batches, seq_lens, hiddens):
    return [(m, b, t, h) for m in modes for b in batches for t in seq_lens for h in hiddens]


# (mode, batch, seq_len, hidden) cells per profile; every variant at each cell, guards applied.
SIZES = {
    "smoke": [("forward", 1, 8, 2), ("train", 2, 8, 2)],
    # Where the scan's per-step overhead should dominate (batch 1, small H, long T), and
    # one larger H for the crossover (the iterations vs T are swept untimed by C13's
    # experiment, bench/claims/deer.py, so no short-T cell is timed for them).
    "cpu": [("forward", 1, 4096, 4), ("forward", 1, 4096, 16)],
    # full: the crossover in H at two lengths, and train at one length: 24 cases (the
    # iterations vs T are C13's untimed sweep; the whole grid, WHOLE_GRID, is 399 cases:
    # about an hour on one H100-class GPU).
    "full": [
        *_grid(("forward",), (1,), (4096, 16384), (4, 16, 64)),
        *_grid(("train",), (1,), (4096,), (4, 16)),
    ],
}
WHOLE_GRID = _grid(MODES, (1, 16), (256, 1024, 4096, 16384, 65536), (1, 2, 4, 8, 16, 32, 64))


def dense_jacobians(variant: str, mode: str) -> bool:
    """Whether the case holds T·B dense 2H×2H Jacobians (the memory guard's concern)."""
    return variant == "deer" or (variant == "quasi-deer" and mode == "train")


def fits_memory(variant: str, mode: str, batch: int, seq_len: int, hidden: int) -> bool:
    if not dense_jacobians(variant, mode):
        return True
    return batch * seq_len * (2 * hidden) ** 2 <= JACOBIAN_ENTRIES_LIMIT


def problem(batch: int, seq_len: int, hidden: int, seed: int = 0):
    """The LSTM's parameters (``models.lstm.LSTM``'s initialisation: Lecun-normal W_x,
    orthogonal W_h, forget bias 1) and a standard normal input of H features."""
    params = LSTM(hidden, hidden, rngs=nnx.Rngs(seed)).params
    x = jnp.asarray(  # NumPy: jax.random compiles a kernel for every new shape
        np.random.default_rng(seed + 1).standard_normal((batch, seq_len, hidden), np.float32)
    )
    return params, x


def evaluator(variant: str, max_iter: int | None = None):
    """``evaluate(params, x) -> (h_BxTxH, stats)``; ``stats`` is None for the sequential scan."""
    if variant == "sequential":
        return lambda params, x: (lstm_scan(params, x)[1], None)
    cap = MAX_ITER[variant] if max_iter is None else max_iter

    def evaluate(params, x):
        (_, h_BxTxH), stats = lstm_deer(params, x, jacobian=JACOBIAN[variant], max_iter=cap)
        return h_BxTxH, stats

    return evaluate


def _train_step(evaluate, tx):
    def loss(params, batch):
        x, y = batch
        h_BxTxH, stats = evaluate(params["lstm"], x)
        pred = h_BxTxH @ params["readout"]["w"] + params["readout"]["b"]
        return jnp.mean((pred - y) ** 2), stats

    def step(params, opt_state, batch):
        (value, stats), grads = jax.value_and_grad(loss, has_aux=True)(params, batch)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, value, stats

    return step


def health(out) -> str:
    """``diverged`` for a Newton iteration that did not converge within its cap, ``nan`` for
    a non-finite output (forward) or loss (train). Every variant's output ends with
    ``(h or loss, stats)``; ``stats`` is None for the sequential scan."""
    value, stats = out[-2], out[-1]
    if stats is not None and not bool(stats.converged):
        return "diverged"
    return "ok" if bool(jnp.isfinite(value).all()) else "nan"


def _note(variant: str, mode: str, hidden: int, k: int) -> str:
    n = 2 * hidden
    if variant == "deer":
        scan = (
            f"their dense {n}×{n} Jacobians, and an associative scan of about 2T combines, each "
            f"a product of two {n}×{n} matrices ({2 * n**3} FLOPs) and a matrix-vector product "
            "(O(T·H³))"
        )
    else:
        scan = (
            f"the diagonals of their Jacobians ({n} numbers a step), and an associative scan of "
            "about 2T elementwise combines (O(T·H))"
        )
    text = (
        f"k = {k} Newton iterations (measured), each: all T cells evaluated at once (the whole "
        f"sequential scan's work; h·W_h is 8H² = {8 * hidden**2} FLOPs a step), {scan}; then "
        "one more evaluation of the cells for the residual"
    )
    if mode == "train":
        text += (
            "; backward: one reverse associative scan with the full transposed Jacobians "
            "(O(T·H³), for both variants) and one vector-Jacobian product of the cells"
        )
    return text


def workload(
    variant: str,
    mode: str,
    batch: int,
    seq_len: int,
    hidden: int,
    seed: int = 0,
    max_iter: int | None = None,
    *,
    planning: bool = False,
) -> Workload:
    """One case. The parallel variants run once here to measure their Newton iterations (while
    ``planning``, they take a typical count instead)."""
    params, x = problem(batch, seq_len, hidden, seed)
    evaluate = evaluator(variant, max_iter)
    if mode == "forward":
        fn, args, batch_argnum = evaluate, (params, x), 1
    else:
        k_w, k_y = jax.random.split(jax.random.key(seed + 2))
        readout = {
            "w": jax.random.normal(k_w, (hidden, OUT_FEATURES)) / jnp.sqrt(hidden),
            "b": jnp.zeros((OUT_FEATURES,)),
        }
        params = {"lstm": params, "readout": readout}
        y = jax.random.normal(k_y, (batch, seq_len, OUT_FEATURES), jnp.float32)
        tx = optax.adam(1e-3)
        fn, args, batch_argnum = _train_step(evaluate, tx), (params, tx.init(params), (x, y)), 2
    n_params = sum(int(a.size) for a in jax.tree.leaves(params))
    if variant == "sequential":
        return Workload(fn, args, n_params, health=health, batch_argnum=batch_argnum)
    if planning:  # a typical count, without compiling here (the plan counts the compile)
        k = TYPICAL_ITERATIONS[variant]
        note = _note(variant, mode, hidden, k)
        return Workload(
            fn, args, n_params, batch_argnum=batch_argnum, while_trip_count=k, note=note
        )
    t0 = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()  # the runner's compile then hits the cache
    compile_s = time.perf_counter() - t0
    stats = jax.device_get(compiled(*args)[-1])
    k = int(stats.iterations)
    extra = {
        "newton_iterations": k,
        "converged": bool(stats.converged),
        "update": float(stats.update),
        "residual": float(stats.residual),
        "max_iter": min(MAX_ITER[variant] if max_iter is None else max_iter, seq_len),
        "build_compile_s": round(compile_s, 3),
    }
    return Workload(
        fn,
        args,
        n_params,
        health=health,
        extra=extra,
        batch_argnum=batch_argnum,
        while_trip_count=k,
        note=_note(variant, mode, hidden, k),
    )


def cases(profile: str) -> list[Case]:
    return cases_of(SIZES[profile])


def _build(cell: tuple, context: BuildContext) -> Workload:
    return workload(*cell, planning=context.planning)


def cases_of(cells) -> list[Case]:
    """Every variant at each (mode, batch, seq_len, hidden) cell, the memory guard applied."""
    out = []
    for mode, batch, seq_len, hidden in cells:
        for variant in VARIANTS:
            if not fits_memory(variant, mode, batch, seq_len, hidden):
                continue
            build = functools.partial(_build, (variant, mode, batch, seq_len, hidden))
            sizes = dict(batch=batch, seq_len=seq_len, hidden=hidden)
            regime = "latency" if batch == 1 else "work"
            pred = seq_len if variant == "sequential" else None
            how = dict(regime=regime, needs_context=True)
            out.append(Case(NAME, "lstm", variant, mode, build, sizes, pred, **how))
    return out


# --- speed-up over the sequential scan: the report's tables, and C13's wall-time data --------

FASTER = 1.1
"""A parallel variant beats the sequential scan at a size iff t_seq / t_variant ≥ 1.1 ..."""
SLOWER = 0.9
"""... and loses iff it is ≤ 0.9, by the ratio of the medians and by the ratio of the fastest
repeats alike (a loaded machine inflates the upper quantiles, not the minimum); a size where
the two ratios disagree is a tie."""
PUBLISHED = (
    "Lim et al. (ICLR 2024) report GPU evaluation of sequential models up to three orders of "
    "magnitude faster than the sequential scan and training more than 10× faster, for a GRU "
    "at small state sizes and long sequences, the gain shrinking as the state grows (a GRU "
    "on an A100: about 41× at 8 hidden units, 14× at 16, slower than the scan from 32); "
    "Gonzalez et al. (NeurIPS 2024) note that DEER's cost is cubic in the state size, which "
    "their diagonal (quasi-DEER) Jacobians reduce"
)
PUBLISHED_SPEEDUP = {8: 41.0, 16: 14.0}
"""A GRU on an A100, batch 1, as read from Lim et al. 2024 (hidden → speed-up of DEER)."""
SIZE_KEYS = ["mode", "batch", "seq_len", "hidden", "n_devices"]
SPEEDUP_COLUMNS = [*SIZE_KEYS[:-1], "variant", "status", "seq_ms", "time_ms", "limit_ms"]
SPEEDUP_COLUMNS += ["speedup", "speedup_min", "outcome", "model_speedup"]
SPEEDUP_COLUMNS += ["newton_iterations", "converged", "residual"]


def speedups(df: pd.DataFrame) -> pd.DataFrame:
    """One row per parallel case of the suite with a sequential ``ok`` row at its sizes: its
    status, Newton iterations, and (when both are ``ok``) the speed-up t_seq / t_variant of the
    medians and of the fastest repeats and its :func:`outcome`; ``model_speedup``: the limit
    model's (``limit_s``, the time the device could not beat: scan / variant)."""
    rows = df[df.suite == NAME] if not df.empty else df
    if rows.empty:
        return pd.DataFrame(columns=SPEEDUP_COLUMNS)
    if "limit_s" not in rows:
        rows = rows.assign(limit_s=math.nan)  # a run without the device's calibration
    seq = rows[(rows.variant == "sequential") & (rows.status == "ok")]
    seq = seq[[*SIZE_KEYS, "time_median_s", "time_min_s", "limit_s"]]
    merged = rows[rows.variant.isin(PARALLEL)].merge(seq, on=SIZE_KEYS, suffixes=("", "_seq"))
    out = []
    for r in merged.to_dict("records"):
        ok = r["status"] == "ok"
        speedup = r["time_median_s_seq"] / r["time_median_s"] if ok else math.nan
        fastest = r["time_min_s_seq"] / r["time_min_s"] if ok else math.nan
        extra = _extra(r.get("extra_json"))
        out.append(
            {k: r[k] for k in SIZE_KEYS[:-1]}
            | dict(
                variant=r["variant"],
                status=r["status"],
                seq_ms=r["time_median_s_seq"] * 1e3,
                time_ms=r["time_median_s"] * 1e3 if ok else math.nan,
                limit_ms=_ratio(r["limit_s"], 1e-3),
                speedup=speedup,
                speedup_min=fastest,
                outcome=outcome(speedup, fastest) if ok else r["status"],
                model_speedup=_ratio(r["limit_s_seq"], r["limit_s"]),
            )
            | {k: extra.get(k) for k in ("newton_iterations", "converged", "residual")}
        )
    table = pd.DataFrame(out, columns=SPEEDUP_COLUMNS)
    return table.sort_values(["mode", "batch", "variant", "hidden", "seq_len"], ignore_index=True)


def _extra(text) -> dict:
    if text is None or text is pd.NA or (isinstance(text, float) and text != text):
        return {}
    return json.loads(text)


def _ratio(num, den) -> float:
    """num / den, NaN where either is missing or den is not positive."""
    if pd.isna(num) or pd.isna(den) or not float(den) > 0:
        return math.nan
    return float(num) / float(den)


def outcome(speedup: float, speedup_min: float) -> str:
    """``faster`` iff both ratios (of the medians, of the fastest repeats) are ≥ :data:`FASTER`,
    ``slower`` iff both are ≤ :data:`SLOWER`, else ``tie``."""
    if min(speedup, speedup_min) >= FASTER:
        return "faster"
    if max(speedup, speedup_min) <= SLOWER:
        return "slower"
    return "tie"


def crossover(hiddens: Sequence[int], outcomes: Sequence[str]) -> str:
    """Where, along the hidden sizes of one (mode, batch, T, variant), the outcome changes."""
    pairs = sorted(zip(hiddens, outcomes, strict=True))
    faster = [h for h, o in pairs if o == "faster"]
    slower = [h for h, o in pairs if o == "slower"]
    listed = ", ".join(str(h) for h, _ in pairs)
    if not faster and not slower:
        return f"undecided at H = {listed}"
    if not faster:
        return f"slower at every H measured ({listed}): no crossover, the scan wins"
    if not slower:
        return f"faster at every H measured ({listed}): the crossover lies above H = {pairs[-1][0]}"
    if max(faster) < min(slower):
        return f"faster up to H = {max(faster)}, slower from H = {min(slower)}"
    return f"faster at H = {faster}, slower at H = {slower} (no single crossover)"


def crossovers(table: pd.DataFrame) -> list[str]:
    """:func:`crossover` for each (mode, batch, T, variant) with a time at two or more H."""
    timed = table[table.outcome.isin(["faster", "slower", "tie"])]
    return [
        f"{variant} {mode} B={batch} T={seq_len}: {crossover(list(g.hidden), list(g.outcome))}"
        for (mode, batch, seq_len, variant), g in timed.groupby(
            ["mode", "batch", "seq_len", "variant"]
        )
        if len(g) >= 2
    ]


def iterations_table(table: pd.DataFrame) -> pd.DataFrame:
    """Newton iterations (and a mark where a case did not converge) by T."""
    return _by_seq_len(
        table,
        [
            f"{int(k)}" + ("" if s == "ok" else f" ({s})") if k == k and k is not None else str(s)
            for k, s in zip(table.newton_iterations, table.status, strict=True)
        ],
    )


def speedup_grid(table: pd.DataFrame) -> pd.DataFrame:
    """Speed-ups as text ("×0.27"; the status where there is none) by T."""
    return _by_seq_len(
        table,
        [
            f"×{s:.3g}" if s == s else str(st)
            for s, st in zip(table.speedup, table.status, strict=True)
        ],
    )


def _by_seq_len(table: pd.DataFrame, cells: list[str]) -> pd.DataFrame:
    """``cells`` (one text per row of ``table``) laid out one row per (variant, mode, batch, H),
    one column per T."""
    if table.empty:
        return pd.DataFrame()
    wide = table.assign(cell=cells).pivot_table(
        index=["variant", "mode", "batch", "hidden"],
        columns="seq_len",
        values="cell",
        aggfunc="first",
    )
    wide.columns = [f"T={c}" for c in wide.columns]
    return wide.reset_index()


# --- the report: speed-up over the sequential scan -------------------------------------------


def speedup_heatmap(speedups: pd.DataFrame, path: str | os.PathLike) -> pathlib.Path | None:
    """A PNG of each parallel variant's speed-up over the sequential scan on a (T, hidden) grid,
    one panel per (mode, batch) and variant, from :func:`speedups`.

    Colour: log₂ of the speed-up (blue faster, red slower); each cell says ×speed-up and the
    Newton iterations k (and "tie" where :func:`outcome` cannot decide), or
    the status of a case without a time (``diverged``, ...); a cell without a time is grey
    (unlabelled where nothing was measured). The crossover (speed-up 1) is drawn as a thick
    black line between the cells on either side of it.
    """
    if speedups.empty:
        return None
    variants = sorted(speedups.variant.unique())
    groups = sorted({(m, int(b)) for m, b in zip(speedups["mode"], speedups.batch, strict=True)})
    finite = np.log2(speedups.speedup.to_numpy(float))
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
        sizes = speedups[(speedups["mode"] == mode) & (speedups.batch == batch)]
        for col, variant in enumerate(variants):
            ax = axes[row][col]
            cells = sizes[sizes.variant == variant].set_index(["hidden", "seq_len"])
            seq_lens, hiddens = sorted(sizes.seq_len.unique()), sorted(sizes.hidden.unique())
            image, where = _heatmap_panel(ax, cells, hiddens, seq_lens, cmap, limit)
            ax.set_title(f"{variant} · {mode} · batch {batch}\n({where})", fontsize=9)
    fig.colorbar(image, ax=axes.ravel().tolist(), label="log₂ speed-up over the sequential scan")
    return save(fig, path, dpi=110)


def _heatmap_panel(ax, cells: pd.DataFrame, hiddens, seq_lens, cmap, limit: float):
    """One variant's (hidden, T) grid of :func:`speedup_heatmap` on ``ax``, colour clipped at
    ±``limit``: the image (for the colour bar) and where it is faster, in words."""
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
    image = ax.imshow(grid, cmap=cmap, vmin=-limit, vmax=limit, origin="lower", aspect="auto")
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
    return image, where


def report_sections(run_dir: pathlib.Path, df: pd.DataFrame) -> list[Section]:
    """The suite's section (C13), after the fits and the trained suite's: speed-up over the
    sequential scan on the (T, hidden) grid as a heat map with the crossover marked, the Newton
    iterations vs T, and the published numbers."""
    timed = speedups(df)
    if timed.empty:
        return []
    png = speedup_heatmap(timed, run_dir / "deer_speedup.png")
    parts = [
        "\n## DEER: the LSTM evaluated in parallel over time\n\n",
        "Speed-up = median time of the sequential scan / median time of the parallel evaluator, "
        "at the same sizes, parameters and inputs (above 1: the parallel evaluator is faster); "
        "k = Newton iterations to converge (measured per case, in `extra_json`).\n\n",
        f"![{png.stem}]({png.name})\n\n",
        table(speedup_grid(timed)),
    ]
    lines = crossovers(timed)
    if lines:
        parts.append(
            f"\nCrossover in hidden size (a win needs ≥ {FASTER}, a loss ≤ {SLOWER}, "
            "by the medians and by the fastest repeats): " + "; ".join(lines) + ".\n"
        )
    parts += ["\nNewton iterations to converge, by T:\n\n", table(iterations_table(timed))]
    ours = timed[(timed.batch == 1) & timed.speedup.notna()]
    rows = []
    for hidden, published in PUBLISHED_SPEEDUP.items():
        here = ours[ours.hidden == hidden]
        best = here.loc[here.speedup.idxmax()] if not here.empty else None
        rows.append(
            dict(
                hidden=hidden,
                published=f"×{published:g} (DEER, GRU, A100)",
                this_run="not measured"
                if best is None
                else f"×{best.speedup:.3g} ({best.variant}, {best['mode']}, T={best.seq_len})",
            )
        )
    if not ours.empty:
        best = ours.loc[ours.speedup.idxmax()]
        rows.append(
            dict(
                hidden="best here",
                published="",
                this_run=f"×{best.speedup:.3g} ({best.variant}, {best['mode']}, T={best.seq_len}, "
                f"H={best.hidden})",
            )
        )
    device = df[df.suite == NAME].device_kind.dropna()
    parts += [
        f"\nPublished: {PUBLISHED}. Batch 1 on this device "
        f"({device.iloc[0] if not device.empty else 'unknown'}):\n\n",
        table(pd.DataFrame(rows)),
    ]
    return [Section("".join(parts), after="fits", order=1)]


register(
    Suite(
        NAME,
        "the LSTM in parallel over time (DEER, quasi-DEER) vs the sequential scan",
        cases,
        baselines={"forward": "sequential", "train": "sequential"},
        report_sections=report_sections,
    )
)
