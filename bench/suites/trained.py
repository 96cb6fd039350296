"""Trained suite (seed §4-3): PixelCNN and the MDRNN trained on real data, then sampled.

Before its cases, the suite trains (``prepare``, once per run folder; a resume reuses what the
folder holds): PixelCNN, and the MDRNN pixel model under each schedule (raster, wavefront,
pipelined: the same function, so one size and one training config), each with optax Adam on the
training split of the binarised 8×8 digits (``bench.data``; or ``--data mnist.npz``) until a
validation NLL of :data:`TARGET_RATIO` × the independent-pixel baseline, or its step budget:
time to quality the AlgoPerf way (``bench.quality.train_to_target``: clock stopped while
evaluating, compile timed apart, best-validation parameters kept, test split only reported).
It writes, into the run folder:

* ``trained_curve_<model>.csv`` (step, training seconds, train / validation / test NLL in nats
  per image and bits per dimension) and ``trained_summary.csv`` (one row per model: time to
  target, steps, test NLL and its ratio to the baseline, parameters, compile seconds, and the
  training step's span and executed loop steps from ``bench.structure``);
* ``checkpoints/<model>/``: the selected weights (orbax-checkpoint);
* ``trained_samples_<model>.png`` (samples beside real test images) and ``trained_curves.png``
  (test NLL / baseline against training seconds, every model on one axis);
* ``trained_sampling.csv``: with trained and with random-init weights, the fixed-point
  sampler's passes per image (mean, max), whether the naive, cached and fixed-point samplers
  give identical images from the same noise, and violations of x_p = [u_p < σ(ℓ_p(x))].

Cases: the samplers at the digits' image size (8×8), batch 16, on the same noise, with the
trained weights and with random-init ones side by side (model ``<family>-trained`` /
``-random``): PixelCNN naive / cached / fixed-point, and the MDRNN's anti-diagonal sampler with
the weights trained under the default schedule. A trained case reads its weights from the run
folder (``bench.workloads.run_dir``). With ``--data`` the models train at the file's image
size and are still sampled at 8×8 (both are convolutional / recurrent in space, so the weights
apply at any size): the case identities stay the same for every data source.
"""

from __future__ import annotations

import dataclasses
import functools
import pathlib
from collections.abc import Callable

import jax
import numpy as np
import pandas as pd
from flax import nnx

from bench import quality
from bench.claims import write_table
from bench.data import Splits, independent_pixel_nll, load_digits_binary, load_mnist_npz
from bench.plots import sample_grid, training_curves
from bench.quality import TrainConfig
from bench.steps import binary_image_check, forward_fn, n_params, train_step_fn
from bench.structure import analyse
from bench.suites.pixelcnn import SAMPLERS, sampler_note
from bench.workloads import Case, Suite, Workload, register, run_dir
from models import mdrnn, pixelcnn

SUITE = "trained"
TARGET_RATIO = 0.75
"""The goal: test NLL ≤ 0.75 × the independent-pixel baseline (the validation target uses the
same ratio of the validation baseline)."""
SAMPLE_BATCH = 16


@dataclasses.dataclass(frozen=True)
class Trainee:
    """One model trained to the target: ``build(seed)`` makes it at random init."""

    name: str
    build: Callable[[int], nnx.Module]
    loss: Callable[[nnx.Module, jax.Array], jax.Array]
    config: TrainConfig


# Per profile: the PixelCNN and MDRNN sizes and how each is trained. The MDRNN's schedules
# compute the same function, so they share one size and config.
# cpu: measured on the digits on 2 shared cores (seeds 0-2): PixelCNN test 0.69-0.70× the
# baseline, the MDRNN 0.72-0.73×, the four trainings ~52 s of training time under a load of ~8.
# Batch 16 generalised better than 64 for both and is cheaper per step on CPU.
SIZES = {
    "smoke": dict(
        pixelcnn=dict(kernel=3, depth=2, channels=8),
        pixelcnn_train=TrainConfig(batch=32, lr=1e-2, max_steps=40, eval_every=10),
        mdrnn=dict(hidden=4, depth=2),  # depth 1 has an empty w_x, which orbax cannot save
        mdrnn_train=TrainConfig(batch=32, lr=1e-2, max_steps=20, eval_every=10),
    ),
    "cpu": dict(
        pixelcnn=dict(kernel=5, depth=4, channels=32),
        pixelcnn_train=TrainConfig(batch=16, lr=2e-3, max_steps=1200, eval_every=50, patience=8),
        mdrnn=dict(hidden=32, depth=2),
        mdrnn_train=TrainConfig(
            batch=16, lr=1e-2, lr_schedule="cosine", max_steps=1000, eval_every=50
        ),
    ),
}
# full keeps the cpu sizes: on the digits, wider or deeper MDRNNs and larger batches did not
# lower its test NLL (k = 48 / 64, d = 3, batch 64 / 128: 0.73-0.75×).
SIZES["full"] = SIZES["cpu"]


def trainees(profile: str) -> list[Trainee]:
    """PixelCNN, then the MDRNN pixel model under each schedule, sized for ``profile``."""
    s = SIZES[profile]
    out = [
        Trainee(
            "pixelcnn",
            lambda seed: pixelcnn.PixelCNN(**s["pixelcnn"], rngs=nnx.Rngs(seed)),
            pixelcnn.nll_loss,
            s["pixelcnn_train"],
        )
    ]
    for schedule in mdrnn.SCHEDULES:
        out.append(
            Trainee(
                f"mdrnn-{schedule}",
                lambda seed, sch=schedule: mdrnn.MDRNNPixel(
                    **s["mdrnn"], schedule=sch, rngs=nnx.Rngs(seed)
                ),
                mdrnn.nll_loss,
                s["mdrnn_train"],
            )
        )
    return out


@functools.cache
def load_splits(data: str | None) -> Splits:
    """The digits (default) or a local mnist.npz (``--data``); a bad file raises DataError."""
    return load_digits_binary() if data is None else load_mnist_npz(data)


def checkpoint(folder: pathlib.Path, name: str) -> pathlib.Path:
    return folder / "checkpoints" / name


def _structure(trainee: Trainee, splits: Splits) -> dict:
    """Span and executed loop steps of one training step (batch of the config)."""
    model = nnx.eval_shape(lambda: trainee.build(0))
    step, state = train_step_fn(model, trainee.loss, quality.optimizer(trainee.config))
    x = jax.ShapeDtypeStruct((trainee.config.batch, *splits.train.shape[1:]), np.float32)
    s = analyse(step, *state, x)
    return dict(train_span_ops=s.span_ops, train_steps_executed=s.steps_executed)


def train_all(config, folder: pathlib.Path) -> None:
    """``prepare``: train every model to the target, unless the run folder already holds it."""
    splits = load_splits(config.data)
    target = quality.validation_target(splits, TARGET_RATIO)
    summaries = []
    for t in trainees(config.profile):
        curve_path = folder / f"trained_curve_{t.name}.csv"
        if checkpoint(folder, t.name).exists() and curve_path.exists():
            continue  # a resumed run keeps its trained weights
        result = quality.train_to_target(
            t.build(0), t.loss, splits, t.config, target_nats=target, name=t.name
        )
        quality.save_checkpoint(checkpoint(folder, t.name), result.state, overwrite=True)
        write_table(folder, curve_path.name, result.curve)
        summaries.append({**result.summary, **_structure(t, splits)})
    if summaries:
        write_table(folder, "trained_summary.csv", _merged_summary(folder, summaries))
    _sampling_checks(config, folder, splits)


def _merged_summary(folder: pathlib.Path, new: list[dict]) -> list[dict]:
    """Rows of ``trained_summary.csv``: those already there (a resume) and the new ones."""
    path = folder / "trained_summary.csv"
    old = pd.read_csv(path).to_dict("records") if path.exists() else []
    names = {row["model"] for row in new}
    return [row for row in old if row["model"] not in names] + new


def trained_model(trainee: Trainee, folder: pathlib.Path) -> nnx.Module:
    model = trainee.build(0)
    nnx.update(model, quality.load_checkpoint(checkpoint(folder, trainee.name), nnx.state(model)))
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
    baseline = independent_pixel_nll(splits.train, splits.test).nats_per_image
    curves = {
        name: pd.read_csv(folder / f"trained_curve_{name}.csv").to_dict("records") for name in named
    }
    training_curves(
        folder / "trained_curves.png", curves, baseline_nats=baseline, target_ratio=TARGET_RATIO
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


# --- cases: the samplers with trained and with random weights ---------------------------------


def _build_sample(profile: str, trainee_name: str, variant: str, weights: str, side: int):
    def build() -> Workload:
        trainee = {t.name: t for t in trainees(profile)}[trainee_name]
        folder = run_dir() if weights == "trained" else None  # None while planning
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
            binary_image_check,
            extra,
            batch_argnum=1,
            while_trip_count=passes,
            note=sampler_note(variant, side, passes),
        )

    return build


def cases(profile: str) -> list[Case]:
    side = 8  # the digits' image size (a --data file's images are sampled at the same size)
    k, d = SIZES[profile]["mdrnn"]["hidden"], SIZES[profile]["mdrnn"]["depth"]
    schedule = mdrnn.default_schedule(SAMPLE_BATCH, side, side, k, d)
    out = []
    for weights in ("trained", "random"):
        for family, trainee, variants in (
            ("pixelcnn", "pixelcnn", tuple(SAMPLERS)),
            ("mdrnn", f"mdrnn-{schedule}", ("diagonal",)),
        ):
            depth = SIZES[profile][family]["depth"]
            for variant in variants:
                pred = side * side * depth if family == "pixelcnn" else (2 * side - 1) * depth
                sizes = dict(batch=SAMPLE_BATCH, depth=depth, height=side, width=side)
                build = _build_sample(profile, trainee, variant, weights, side)
                out.append(
                    Case(SUITE, f"{family}-{weights}", variant, "sample", build, sizes, pred)
                )
    return out


register(
    Suite(
        SUITE,
        "PixelCNN and the MDRNN trained on the digits: time to quality; samplers with trained "
        "vs random weights",
        cases,
        baselines={"sample": "naive"},
        prepare=train_all,
        prepare_cost_s=dict(smoke=15, cpu=70, full=70),
    )
)
