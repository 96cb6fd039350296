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
C13's rules are in ``bench/claims/deer.py``; the suite's section of ``report.md``
(:func:`report_sections`, with the heat map :func:`speedup_heatmap`) shows the speed-up
tables computed there.
"""

from __future__ import annotations

import functools
import os
import pathlib
import time

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
VARIANTS = ("sequential", "deer", "quasi-deer")
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


# --- the report: speed-up over the sequential scan -------------------------------------------


def speedup_heatmap(speedups: pd.DataFrame, path: str | os.PathLike) -> pathlib.Path | None:
    """A PNG of each parallel variant's speed-up over the sequential scan on a (T, hidden) grid,
    one panel per (mode, batch) and variant, from :func:`bench.claims.deer.speedups`.

    Colour: log₂ of the speed-up (blue faster, red slower); each cell says ×speed-up and the
    Newton iterations k (and "tie" where :func:`bench.claims.deer.outcome` cannot decide), or
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
    # the speed-up tables live beside the claim, whose module imports this one
    from bench.claims import deer

    speedups = deer.speedups(df)
    if speedups.empty:
        return []
    png = speedup_heatmap(speedups, run_dir / "deer_speedup.png")
    parts = [
        "\n## DEER: the LSTM evaluated in parallel over time\n\n",
        "Speed-up = median time of the sequential scan / median time of the parallel evaluator, "
        "at the same sizes, parameters and inputs (above 1: the parallel evaluator is faster); "
        "k = Newton iterations to converge (measured per case, in `extra_json`).\n\n",
        f"![{png.stem}]({png.name})\n\n",
        table(deer.speedup_grid(speedups)),
    ]
    lines = deer.crossovers(speedups)
    if lines:
        parts.append(
            f"\nCrossover in hidden size (a win needs ≥ {deer.FASTER}, a loss ≤ {deer.SLOWER}, "
            "by the medians and by the fastest repeats): " + "; ".join(lines) + ".\n"
        )
    parts += ["\nNewton iterations to converge, by T:\n\n", table(deer.iterations_table(speedups))]
    ours = speedups[(speedups.batch == 1) & speedups.speedup.notna()]
    rows = []
    for hidden, published in deer.PUBLISHED_SPEEDUP.items():
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
        f"\nPublished: {deer.PUBLISHED}. Batch 1 on this device "
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
