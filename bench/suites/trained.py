"""Trained suite (seed §4-3): PixelCNN and the MDRNN trained on real data, then sampled.

Before its cases, the suite trains (``prepare``, once per run folder; a resume reuses what the
folder holds) PixelCNN and the MDRNN pixel model on the training split of the binarised 8×8
digits (``bench.data``; or ``--data mnist.npz``) to a validation NLL of :data:`TARGET_RATIO` ×
the independent-pixel baseline, and splits the time to that quality into its two factors
(``bench.quality``), for C12 (``bench.claims.mdrnn.c12_time_to_quality``):

* **steps to the target**: each model at matched settings (Adam at a constant rate, batch 16,
  3 seeds, its own 3-rate grid), read every 10 steps. The MDRNN's three schedules compute one
  function, so it is trained once (under the raster schedule) and its step count serves all
  three;
* **time per step**: one run's training step timed alone, for PixelCNN and for the MDRNN under
  each schedule (the parallelism the schedules buy or not).

It writes, into the run folder:

* ``trained_runs.csv`` (one row per model, rate and seed: the step at which the target was
  reached, -1 if not, and the resolution of that reading) and ``trained_curve_<model>.csv``
  (step, rate, seed, validation NLL);
* ``trained_summary.csv``: one row per timed program (``pixelcnn``, ``mdrnn-raster``,
  ``mdrnn-wavefront``, ``mdrnn-pipelined``): the best rate and whether the grid brackets it,
  the steps to the target at it (mean and 95% t-interval over seeds), the time per step
  (median and relative IQR), their product, the selected weights' test NLL, parameters, and
  the training step's span and executed loop steps from ``bench.structure``;
* ``checkpoints/<model>/``: the weights of the best rate's seed 0 (orbax-checkpoint);
* ``trained_samples_<model>.png`` (samples beside real test images) and ``trained_curves.png``
  (validation NLL / baseline against steps, each seed at the best rate);
* ``trained_sampling.csv``: with trained and with random-init weights, the fixed-point
  sampler's passes per image (mean, max), whether the naive, cached and fixed-point samplers
  give identical images from the same noise, and violations of x_p = [u_p < σ(ℓ_p(x))].

The suite's section of ``report.md`` (:func:`report_sections`) shows these tables and figures
beside the samplers' times.

Cases: the samplers at the digits' image size (8×8), batch 16, on the same noise, with the
trained weights and with random-init ones side by side (model ``<family>-trained`` /
``-random``): PixelCNN naive / cached / fixed-point, and the MDRNN's anti-diagonal sampler. A
trained case reads its weights from its run folder (``bench.workloads.BuildContext``). With
``--data`` the models train at the file's image size and are still sampled at 8×8 (both are
convolutional / recurrent in space, so the weights apply at any size): the case identities
stay the same for every data source.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import pathlib
import sys
from collections.abc import Callable

import jax
import numpy as np
import optax
import pandas as pd
from flax import nnx

from bench import quality
from bench.data import Splits, independent_pixel_nll, load_digits_binary, load_mnist_npz
from bench.figures import plt, save
from bench.fits import t975
from bench.markdown import table
from bench.nnx_adapters import binary_image_health, forward_fn, n_params, train_step_fn
from bench.quality import TrainConfig
from bench.store import write_table
from bench.structure import analyse
from bench.suites.mdrnn import pieces_for
from bench.suites.pixelcnn import SAMPLERS, sampler_note
from bench.workloads import BuildContext, Case, Section, Suite, Workload, register
from models import mdrnn, pixelcnn

SUITE = "trained"
TARGET_RATIO = 0.85
"""The goal: a validation NLL ≤ 0.85 × the independent-pixel baseline. A stricter target costs
more training (several times the MDRNN's steps: docs/design-notes.md) and decides nothing else:
the verdict is on the ratio of the two models' steps, and the time per step."""
SAMPLE_BATCH = 16
TIMED_REPEATS = 10  # at least; a fast step gets more (bench.timing.time_back_to_back)


@dataclasses.dataclass(frozen=True)
class Trainee:
    """One model trained to the target: ``build(seed, schedule)`` makes it at random init.

    It is trained once, under ``schedules[0]``, and its training step is timed under each of
    ``schedules`` (None: a model with no schedule); the weights serve every schedule."""

    name: str
    build: Callable[[int, str | None], nnx.Module]
    loss: Callable[[nnx.Module, jax.Array], jax.Array]
    config: TrainConfig
    schedules: tuple[str | None, ...] = (None,)

    def timed(self, schedule: str | None) -> str:
        """The summary's name of the program timed under ``schedule``."""
        return self.name if schedule is None else f"{self.name}-{schedule}"


# Per profile: the PixelCNN and MDRNN sizes and how each is trained: Adam, batch 16, 3 seeds,
# a 3-rate grid around each model's best rate on the digits (the rates either side reach the
# target in more steps). PixelCNN has 16 channels: 32 saves some steps at about four times the
# work per step (the figures: docs/design-notes.md). max_steps caps a model that misses.
SIZES = {
    "smoke": dict(
        pixelcnn=dict(kernel=3, depth=2, channels=8),
        pixelcnn_train=TrainConfig(lrs=(3e-3, 1e-2, 3e-2), batch=16, max_steps=30),
        mdrnn=dict(hidden=4, depth=2),  # depth 1 has an empty w_x, which orbax cannot save
        mdrnn_train=TrainConfig(lrs=(1e-2, 3e-2, 1e-1), batch=16, max_steps=20),
    ),
    "cpu": dict(
        pixelcnn=dict(kernel=5, depth=4, channels=16),
        pixelcnn_train=TrainConfig(lrs=(3e-3, 1e-2, 3e-2), max_steps=500, coarse_every=50),
        mdrnn=dict(hidden=32, depth=2),
        mdrnn_train=TrainConfig(lrs=(1e-2, 3e-2, 1e-1), max_steps=500, coarse_every=50),
    ),
}
SIZES["full"] = SIZES["cpu"]
TRAINED_SCHEDULE = "raster"  # the MDRNN's cheapest schedule to train on CPU (same function)


def trainees(profile: str) -> list[Trainee]:
    """PixelCNN, then the MDRNN pixel model (timed under each schedule), sized for ``profile``."""
    s = SIZES[profile]
    schedules = (TRAINED_SCHEDULE, *(x for x in mdrnn.SCHEDULES if x != TRAINED_SCHEDULE))
    return [
        Trainee(
            "pixelcnn",
            lambda seed, _schedule=None: pixelcnn.PixelCNN(**s["pixelcnn"], rngs=nnx.Rngs(seed)),
            pixelcnn.nll_loss,
            s["pixelcnn_train"],
        ),
        Trainee(
            "mdrnn",
            lambda seed, schedule=TRAINED_SCHEDULE: mdrnn.MDRNNPixel(
                **s["mdrnn"],
                schedule=schedule,
                pieces=pieces_for(profile, "work", "train"),
                rngs=nnx.Rngs(seed),
            ),  # fmt: skip
            mdrnn.nll_loss,
            s["mdrnn_train"],
            schedules,
        ),
    ]


@functools.cache
def load_splits(data: str | None) -> Splits:
    """The digits (default) or a local mnist.npz (``--data``); a bad file raises DataError."""
    return load_digits_binary() if data is None else load_mnist_npz(data)


def checkpoint(folder: pathlib.Path, name: str) -> pathlib.Path:
    return folder / "checkpoints" / name


def _structure(model: nnx.Module, loss, batch: int, splits: Splits) -> dict:
    """Span and executed loop steps of one training step."""
    step, state = train_step_fn(model, loss, optax.adam(1e-3))
    x = jax.ShapeDtypeStruct((batch, *splits.train.shape[1:]), np.float32)
    s = analyse(step, *state, x)
    return dict(train_span_ops=s.span_ops, train_steps_executed=s.steps_executed)


def steps_to_target(runs: list[dict], lr: float | None) -> dict:
    """The steps to the target at rate ``lr`` (``train_grid``'s best: every seed reached it):
    mean, 95% t-interval over seeds, and the coarsest resolution of those readings; NaN with
    no such rate, ``seeds_at_target`` then the most seeds that got there at one rate."""
    table = pd.DataFrame(runs)
    reached = table.target_step.ge(0).groupby(table.lr).sum()
    out = dict(seeds=int(table.groupby("lr").size().max()), seeds_at_target=int(reached.max()),
               steps_to_target=math.nan, steps_lo=math.nan, steps_hi=math.nan,
               resolution=math.nan)  # fmt: skip
    if lr is None:
        return out
    at = table[table.lr == lr]
    steps, n = at.target_step.to_numpy(float), len(at)
    half = t975(n - 1) * steps.std(ddof=1) / math.sqrt(n) if n > 1 else math.inf
    out.update(seeds_at_target=n, steps_to_target=steps.mean(), steps_lo=steps.mean() - half,
               steps_hi=steps.mean() + half, resolution=int(at.resolution.max()))  # fmt: skip
    return out


def _grid_summary(
    t: Trainee, result: quality.TrainResult, target: float, base_val: float, base_test: float
) -> dict:
    """The summary columns a trainee's timed programs share: one training serves them all."""
    model = t.build(0)
    nnx.update(model, result.state)
    grid = sorted(t.config.lrs)
    return dict(
        trained_as=t.name,
        best_lr=result.best_lr,
        lrs=" ".join(f"{lr:g}" for lr in grid),
        bracketed=result.best_lr is not None and grid[0] < result.best_lr < grid[-1],
        **steps_to_target(result.runs, result.best_lr),
        batch=t.config.batch,
        params=n_params(model),
        test_ratio=result.test_nats / base_test,
        target_nats=target,
        baseline_val_nats=base_val,
        baseline_test_nats=base_test,
        grid_train_s=result.cost["train_s"],
        grid_eval_s=result.cost["eval_s"],
        grid_compile_s=result.cost["compile_s"],
    )


def _timed_summaries(
    t: Trainee, result: quality.TrainResult, common: dict, splits: Splits
) -> list[dict]:
    """One summary row per schedule: the trained step timed alone (the time-per-step factor)."""
    images = splits.train[: t.config.batch]
    rows = []
    for schedule in t.schedules:
        timed = t.build(0, schedule)
        nnx.update(timed, result.state)
        timing = quality.time_per_step(
            timed, t.loss, images, result.best_lr or min(t.config.lrs), repeats=TIMED_REPEATS
        )
        step_s = timing.median_s
        rows.append(
            dict(
                model=t.timed(schedule),
                **common,
                time_per_step_s=step_s,
                time_per_step_rel_iqr=timing.iqr_s / step_s,
                time_to_target_s=common["steps_to_target"] * step_s,
                step_compile_s=timing.compile_s,
                **_structure(timed, t.loss, t.config.batch, splits),
            )
        )
    return rows


def train_all(config, folder: pathlib.Path) -> None:
    """``prepare``: train every model to the target and time its step under each schedule,
    unless the run folder already holds it (:func:`_kept`). Each model's files are written as
    it finishes, its curve last: a run killed while it trains the next one keeps it whole."""
    splits = load_splits(config.data)
    target = quality.validation_target(splits, TARGET_RATIO)
    base_val = independent_pixel_nll(splits.train, splits.validation).nats_per_image
    base_test = independent_pixel_nll(splits.train, splits.test).nats_per_image
    for t in trainees(config.profile):
        if _kept(t, folder):
            continue  # a resumed run keeps its trained weights and timings
        result = quality.train_grid(t.build, t.loss, splits, t.config, target)
        common = _grid_summary(t, result, target, base_val, base_test)
        summaries = _timed_summaries(t, result, common, splits)
        quality.save_checkpoint(checkpoint(folder, t.name), result.state, overwrite=True)
        runs = [dict(model=t.name, **row) for row in result.runs]
        write_table(folder, "trained_runs.csv", _merged(folder, "trained_runs.csv", runs))
        write_table(
            folder, "trained_summary.csv", _merged(folder, "trained_summary.csv", summaries)
        )
        write_table(folder, f"trained_curve_{t.name}.csv", [
            dict(**row, validation_ratio=row["validation_nats"] / base_val) for row in result.curve
        ])  # fmt: skip
    _sampling_checks(config, folder, splits)


def _kept(t: Trainee, folder: pathlib.Path) -> bool:
    """Whether the run folder holds all of ``t``'s training: its curve (written last), its
    rows in ``trained_runs.csv`` and ``trained_summary.csv`` (one per schedule), and a
    checkpoint that loads. A model with some of them missing or damaged (a run killed while
    it trained, a checkpoint that cannot be read) is trained again, and the log says why."""
    curve = folder / f"trained_curve_{t.name}.csv"
    if not curve.exists() and not checkpoint(folder, t.name).exists():
        return False  # not trained yet
    missing = [] if curve.exists() else [curve.name]
    for name, models in (
        ("trained_runs.csv", {t.name}),
        ("trained_summary.csv", {t.timed(s) for s in t.schedules}),
    ):
        if not models <= _models(folder / name):
            missing.append(f"its rows of {name}")
    if not missing:
        try:
            trained_model(t, folder)
            return True
        except CheckpointError as e:
            missing.append(str(e))
    print(f"    training {t.name} again: {'; '.join(missing)}", file=sys.stderr, flush=True)
    return False


def _models(path: pathlib.Path) -> set[str]:
    """The models a table of the run folder has rows of (none when it is missing or damaged)."""
    try:
        return set(pd.read_csv(path).model)
    except (OSError, ValueError, AttributeError):  # (pandas' parser errors are ValueErrors)
        return set()


def _merged(folder: pathlib.Path, name: str, new: list[dict]) -> list[dict]:
    """Rows of a table: those already there for other models (a resume) and the new ones."""
    path = folder / name
    old = pd.read_csv(path).to_dict("records") if path.exists() else []
    models = {row["model"] for row in new}
    return [row for row in old if row["model"] not in models] + new


class CheckpointError(ValueError):
    """A trained model's checkpoint that cannot be loaded: its path and why."""


def trained_model(trainee: Trainee, folder: pathlib.Path, schedule: str | None = None):
    """``trainee`` with the trained weights of its checkpoint in the run folder; one that
    cannot be loaded is a :class:`CheckpointError` naming it."""
    model = trainee.build(0) if schedule is None else trainee.build(0, schedule)
    path = checkpoint(folder, trainee.name)
    try:
        state = quality.load_checkpoint(path, nnx.state(model))
    except Exception as e:
        why = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise CheckpointError(
            f"checkpoint {path} cannot be loaded ({type(e).__name__}: {why})"
        ) from None
    nnx.update(model, state)
    return model


def _sampling_checks(config, folder: pathlib.Path, splits: Splits) -> None:
    """Grids, the curve plot, and the sampling table (module docstring)."""
    named = {t.name: t for t in trainees(config.profile)}
    height, width = splits.test.shape[1:]
    u = quality.draw_noise(1, SAMPLE_BATCH, height, width)
    real = splits.test[:SAMPLE_BATCH]
    rows = []
    for name, t in named.items():
        model = trained_model(t, folder)
        samples = np.asarray(jax.jit(_sample_fn(name))(model, u))
        sample_grid(folder / f"trained_samples_{name}.png", samples, real, title=name)
        if name == "pixelcnn":
            for weights, m in (("trained", model), ("random", t.build(0))):
                rows.append(_pixelcnn_checks(m, u, weights))
            continue
        wrong, ties = quality.identity_violations(model(samples), samples, u)
        rows.append(dict(model=name, weights="trained", rule_violations=wrong, near_ties=ties))
    write_table(folder, "trained_sampling.csv", rows, columns=_SAMPLING_COLUMNS)
    summary = pd.read_csv(folder / "trained_summary.csv").drop_duplicates("trained_as")
    best = dict(zip(summary.trained_as, summary.best_lr, strict=True))
    curves = {}
    for name in named:
        rows = pd.read_csv(folder / f"trained_curve_{name}.csv")
        lr = best.get(name)
        lr = rows.lr.min() if lr is None or lr != lr else lr
        curves[name] = rows[rows.lr == lr].to_dict("records")
    training_curves(
        folder / "trained_curves.png",
        curves,
        baseline_nats=float(summary.baseline_val_nats.iloc[0]),
        target_ratio=TARGET_RATIO,
    )


_SAMPLING_COLUMNS = [
    "model", "weights", "fixed_point_passes_mean", "fixed_point_passes_max",
    "samplers_identical", "rule_violations", "near_ties",
]  # fmt: skip


def _sample_fn(name: str):
    if name == "pixelcnn":
        return lambda m, u: pixelcnn.sample_cached(m.params, u)
    return lambda m, u: m.sample(u)


def _pixelcnn_checks(model, u, weights: str) -> dict:
    params = model.params
    images = [np.asarray(jax.jit(SAMPLERS[v])(params, u)) for v in ("naive", "cached")]
    fixed, _ = jax.jit(SAMPLERS["fixed-point"])(params, u)
    passes = quality.fixed_point_passes(params, u)
    x = images[1]
    wrong, ties = quality.identity_violations(model(x), x, u)
    return dict(
        model="pixelcnn",
        weights=weights,
        fixed_point_passes_mean=float(passes.mean()),
        fixed_point_passes_max=int(passes.max()),
        samplers_identical=bool((images[0] == x).all() and (np.asarray(fixed) == x).all()),
        rule_violations=wrong,
        near_ties=ties,
    )


# --- figures: samples beside real images, validation NLL against steps ------------------------


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
    return save(fig, path, dpi=100)


def training_curves(
    path: str | os.PathLike,
    curves: dict[str, list[dict]],
    *,
    baseline_nats: float,
    target_ratio: float,
) -> pathlib.Path:
    """A PNG of each model's validation NLL against training steps, as a fraction of the
    independent-pixel baseline, one line per seed (rows: ``step``, ``seed``,
    ``validation_nats``, at the model's chosen rate), with the target ratio dashed: the steps
    to the target, which do not depend on how fast a step runs."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for colour, (name, rows) in zip(plt.rcParams["axes.prop_cycle"].by_key()["color"],
                                    curves.items(), strict=False):  # fmt: skip
        for k, seed in enumerate(sorted({row["seed"] for row in rows})):
            mine = [row for row in rows if row["seed"] == seed and row["step"] > 0]
            ratio = [row["validation_nats"] / baseline_nats for row in mine]
            label = name if k == 0 else None
            ax.plot([row["step"] for row in mine], ratio, color=colour, alpha=0.8, label=label)
    ax.axhline(target_ratio, color="k", linestyle="--", linewidth=1, label=f"{target_ratio}×")
    ax.set_xlabel("training steps (one line per seed)")
    ax.set_ylabel("validation NLL / independent-pixel baseline")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save(fig, path, dpi=100)


# --- the report's section -----------------------------------------------------------------------


SONG_2021 = "Song et al. 2021 report 6.3× (PixelCNN++, MNIST) and 1.18× (CIFAR-10)"


def report_sections(folder: pathlib.Path, df: pd.DataFrame) -> list[Section]:
    """The suite's section, after the fits: time to quality as steps to the target × time per
    step, the samplers with trained weights, and the figures :func:`train_all` drew."""
    path = folder / "trained_summary.csv"
    if not path.exists():
        return []
    summary = pd.read_csv(path)
    base, val = float(summary.baseline_test_nats.iloc[0]), float(summary.baseline_val_nats.iloc[0])
    target = float(summary.target_nats.iloc[0])
    parts = [
        "\n## Trained on the data: time to quality, and sampling with trained weights\n\n",
        f"Independent-pixel baseline: {base:.4g} nats per image on the test split; target: a "
        f"validation NLL of {target:.4g} nats ({target / val:.3g}× the validation baseline). "
        "Time to the target = steps to the target (each model at its best rate of a grid, "
        "mean and 95% interval over seeds; the MDRNN trained once, its schedules computing one "
        "function) × time per training step (timed alone, per program).\n\n",
    ]
    columns = ["model", "best_lr", "lrs", "bracketed", "seeds_at_target", "steps_to_target",
               "steps_lo", "steps_hi", "resolution", "time_per_step_s", "time_per_step_rel_iqr",
               "time_to_target_s", "test_ratio", "params", "train_span_ops",
               "train_steps_executed"]  # fmt: skip
    parts.append(table(summary, [c for c in columns if c in summary]))
    sampling = folder / "trained_sampling.csv"
    if sampling.exists():
        parts.append("\nSamplers and the sampling rule x_p = [u_p < σ(ℓ_p(x))]:\n\n")
        parts.append(table(pd.read_csv(sampling)))
    rows = df[(df.suite == SUITE) & (df.status == "ok")]
    if not rows.empty:
        times = rows.pivot_table(index="model", columns="variant", values="time_median_s")
        lines = []
        needed = ["naive", "cached", "fixed-point"]
        for model, t in times.iterrows():
            if set(needed) <= set(t.index) and t[needed].notna().all():
                speedup = t["naive"] / t["fixed-point"]
                lines.append(
                    f"{model}: naive {t['naive'] * 1e3:.3g} ms, cached {t['cached'] * 1e3:.3g} "
                    f"ms, fixed-point {t['fixed-point'] * 1e3:.3g} ms: fixed-point "
                    + (f"{speedup:.2f}× faster" if speedup >= 1 else f"{1 / speedup:.2f}× slower")
                    + " than naive"
                )
        if lines:
            batch = ", ".join(str(b) for b in sorted(set(rows.batch.dropna().astype(int))))
            parts.append(
                f"\nSampler times (batch {batch}): " + "; ".join(lines) + f" ({SONG_2021}).\n"
            )
    images = sorted(p.name for p in folder.glob("trained_*.png"))
    parts.append("\n" + "".join(f"![{name}]({name})\n" for name in images))
    return [Section("".join(parts), after="fits")]


# --- cases: the samplers with trained and with random weights ---------------------------------


def _build_sample(profile: str, trainee_name: str, variant: str, weights: str, side: int):
    def build(context: BuildContext) -> Workload:
        trainee = {t.name: t for t in trainees(profile)}[trainee_name]
        folder = context.folder() if weights == "trained" else None  # None while planning
        model = trained_model(trainee, folder) if folder is not None else trainee.build(0)
        u = quality.draw_noise(1, SAMPLE_BATCH, side, side)
        if trainee_name == "pixelcnn":
            sampler = SAMPLERS[variant]
            fn, state = forward_fn(model, lambda m, u: sampler(m.params, u))
        else:
            fn, state = forward_fn(model, lambda m, u: m.sample(u))
        extra, passes = {"weights": weights}, None
        if variant == "fixed-point":
            passes = int(jax.jit(lambda s, u: fn(s, u))(state, u)[1])
            extra["passes"] = passes
        return Workload(
            fn,
            (state, u),
            n_params(model),
            binary_image_health,
            extra,
            batch_argnum=1,
            while_trip_count=passes,
            note=sampler_note(variant, side, passes),
        )

    return build


def cases(profile: str) -> list[Case]:
    side = 8  # the digits' image size (a --data file's images are sampled at the same size)
    out = []
    for weights in ("trained", "random"):
        for family, trainee, variants in (
            ("pixelcnn", "pixelcnn", tuple(SAMPLERS)),
            ("mdrnn", "mdrnn", ("diagonal",)),
        ):
            depth = SIZES[profile][family]["depth"]
            for variant in variants:
                pred = side * side * depth if family == "pixelcnn" else (2 * side - 1) * depth
                sizes = dict(batch=SAMPLE_BATCH, depth=depth, height=side, width=side)
                build = _build_sample(profile, trainee, variant, weights, side)
                name = f"{family}-{weights}"
                case = Case(SUITE, name, variant, "sample", build, sizes, pred, needs_context=True)
                out.append(case)
    return out


register(
    Suite(
        SUITE,
        "PixelCNN and the MDRNN trained on the digits: time to quality; samplers with trained "
        "vs random weights",
        cases,
        baselines={"sample": "naive"},
        prepare=train_all,
        # cpu: 44 s of CPU time measured (user + sys; 84-88 s of wall time on the 2 shared
        # cores under a load average of 7-8), most of it one core's.
        prepare_cost_s=dict(smoke=10, cpu=45, full=45),
        report_sections=report_sections,
    )
)
