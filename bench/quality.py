"""Training to a target NLL (time to quality), checkpoints, and sampling with trained weights.

Time to quality, the AlgoPerf way (Dahl et al. 2023, "Benchmarking neural network training
algorithms"): a model is trained with optax Adam on the train split until its validation NLL
reaches a target or a training-time budget runs out, and the score is the training wall time
at which the target was first reached.

* The clock counts training steps only. Evaluation (train / validation / test NLL on whole
  splits) happens with the clock stopped, every ``eval_every`` steps and at step 0.
* The train step and the evaluation are compiled ahead of time, before the clock starts;
  their compile seconds are recorded apart (``compile_s``).
* Model selection on validation: the parameters of the best validation NLL seen at any
  evaluation are kept and returned (early stopping, with an optional ``patience``). The
  test split is evaluated for the curve (the plot) and to report the selected parameters;
  no decision (target, selection, stopping) ever reads it.

The target is checked on the validation split, as AlgoPerf does: ``target_nats`` is a
validation NLL in nats per image, conventionally :func:`validation_target` =
``ratio × baseline`` with the independent-pixel baseline evaluated on the validation split.
The issue's goal is stated on the test split (test NLL ≤ ratio × the test baseline, for the
selected parameters); validation and test are disjoint random draws from the same images, so
the two ratios estimate the same quantity and differ by sampling noise of order
std(per-image NLL)/√n (a few percent of the baseline for the digits' 216 / 359 images). The
summary reports both, and the goal is judged on ``test_ratio``.

Sampling with trained weights: :func:`fixed_point_passes` counts the fixed-point sampler's
passes per image, :func:`identity_violations` checks a sample against the autoregressive
rule x_p = [u_p < σ(ℓ_p(x))], and :func:`sample_grid` draws samples beside real images.
"""

from __future__ import annotations

import dataclasses
import math
import os
import pathlib
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from bench.data import NLL, Splits, independent_pixel_nll
from bench.steps import n_params, train_step_fn
from bench.timing import compile_ahead
from models import pixelcnn

SPLITS = ("train", "validation", "test")
LR_SCHEDULES = ("constant", "cosine")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """How one model is trained to a target.

    ``max_steps`` Adam steps of ``batch`` images (epochs of a seeded shuffle, the last
    incomplete batch of an epoch dropped) at learning rate ``lr``, constant or (``lr_schedule
    = "cosine"``) decayed to 0 at ``max_steps`` by a half cosine; ``weight_decay`` > 0 makes
    it AdamW (decoupled weight decay, Loshchilov & Hutter 2019). Evaluation every
    ``eval_every`` steps; stop early at ``budget_s`` training seconds, after ``patience``
    evaluations in a row without a better validation NLL (None: never), or at the target when
    ``stop_at_target``. The train NLL is evaluated on the first ``train_eval_size`` training
    images (None: as many as the validation split; the train split is in random order), in
    chunks of ``eval_batch``.
    """

    batch: int = 64
    lr: float = 1e-3
    lr_schedule: str = "constant"
    weight_decay: float = 0.0
    max_steps: int = 1000
    eval_every: int = 50
    budget_s: float = math.inf
    patience: int | None = None
    stop_at_target: bool = False
    seed: int = 0
    eval_batch: int = 256
    train_eval_size: int | None = None

    def __post_init__(self):
        for name in ("batch", "max_steps", "eval_every", "eval_batch"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0 or self.budget_s <= 0:
            raise ValueError("lr and budget_s must be positive")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {self.lr_schedule!r}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if self.patience is not None and self.patience < 1:
            raise ValueError(f"patience must be >= 1 or None, got {self.patience}")


@dataclasses.dataclass
class TrainResult:
    """``curve``: one row per evaluation; ``summary``: one row; ``state``: the selected
    (best-validation) NNX state of the model, which the model itself also holds on return."""

    curve: list[dict]
    summary: dict
    state: nnx.State


def optimizer(config: TrainConfig) -> optax.GradientTransformation:
    """Adam (AdamW when ``config.weight_decay`` > 0) at the config's learning-rate schedule."""
    lr = config.lr
    if config.lr_schedule == "cosine":
        lr = optax.cosine_decay_schedule(config.lr, config.max_steps)
    if config.weight_decay > 0:
        return optax.adamw(lr, weight_decay=config.weight_decay)
    return optax.adam(lr)


def validation_target(splits: Splits, ratio: float) -> float:
    """The validation NLL target, nats per image: ``ratio`` × the independent-pixel baseline
    (training means) evaluated on the validation split."""
    return ratio * independent_pixel_nll(splits.train, splits.validation).nats_per_image


def per_image_nll(logits_BxHxW: jax.Array, x_BxHxW: jax.Array) -> jax.Array:
    """Bernoulli NLL of each image, nats: Σ_p softplus(ℓ_p) − x_p·ℓ_p, shape (B,)."""
    return jnp.sum(jax.nn.softplus(logits_BxHxW) - x_BxHxW * logits_BxHxW, axis=(1, 2))


def _chunks(images: np.ndarray, size: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """``images`` cut into (size, H, W) chunks, the last zero-padded, with 0/1 weights."""
    out = []
    for start in range(0, len(images), size):
        x = images[start : start + size]
        weight = np.zeros(size, np.float32)
        weight[: len(x)] = 1.0
        x = np.concatenate([x, np.zeros((size - len(x), *x.shape[1:]), x.dtype)])
        out.append((jax.device_put(x), jax.device_put(weight)))
    return out


def train_to_target(
    model: nnx.Module,
    loss: Callable[[nnx.Module, jax.Array], jax.Array],
    splits: Splits,
    config: TrainConfig,
    *,
    target_nats: float | None = None,
    name: str = "",
) -> TrainResult:
    """Train ``model`` (whose ``model(x)`` returns Bernoulli logits (B, H, W)) on
    ``splits.train`` with Adam on ``loss(model, batch)`` (nats per pixel), to a validation NLL
    target (nats per image; None: no target, train until another stop).

    Curve rows: ``step``, ``epoch``, ``train_s`` (training wall seconds so far, evaluation
    excluded) and, for each split, ``<split>_nats`` (per image) and ``<split>_bpd``.
    Summary: see the module docstring; ``time_to_target_s`` / ``target_step`` are NaN / -1
    when the target was not reached. The model is left holding the selected parameters.
    """
    n_train, height, width = splits.train.shape
    pixels = height * width
    if config.batch > n_train:
        raise ValueError(f"batch {config.batch} exceeds the {n_train} training images")
    tx = optimizer(config)
    step, (params, rest, opt_state) = train_step_fn(model, loss, tx)
    graphdef = nnx.graphdef(model)

    def train_step(params, rest, opt_state, data, idx_B):
        return step(params, rest, opt_state, jnp.take(data, idx_B, axis=0))

    def nll_sum(params, rest, x_BxHxW, weight_B):
        logits = nnx.merge(graphdef, params, rest)(x_BxHxW)
        return jnp.sum(per_image_nll(logits, x_BxHxW) * weight_B)

    data = jax.device_put(splits.train)
    n_train_eval = min(n_train, config.train_eval_size or len(splits.validation))
    evaluated = {
        "train": splits.train[:n_train_eval],
        "validation": splits.validation,
        "test": splits.test,
    }
    chunks = {s: _chunks(images, config.eval_batch) for s, images in evaluated.items()}
    idx0 = jnp.zeros(config.batch, jnp.int32)
    step_c, step_compile_s, _ = compile_ahead(train_step, (params, rest, opt_state, data, idx0))
    eval_c, eval_compile_s, _ = compile_ahead(nll_sum, (params, rest, *chunks["test"][0]))

    def evaluate(params, rest) -> dict[str, NLL]:
        out = {}
        for split, parts in chunks.items():
            total = sum(float(eval_c(params, rest, x, w)) for x, w in parts)
            out[split] = NLL.from_nats_per_image(total / len(evaluated[split]), pixels)
        return out

    rng = np.random.default_rng(config.seed)
    per_epoch = n_train // config.batch
    order = np.empty(0, np.int32)
    curve, best, best_state, best_step = [], math.inf, (params, rest), 0
    train_s, eval_s, steps, stale = 0.0, 0.0, 0, 0
    time_to_target, target_step, stop = math.nan, -1, "max_steps"
    while True:
        t0 = time.perf_counter()
        nll = evaluate(params, rest)
        eval_s += time.perf_counter() - t0
        curve.append(
            {"step": steps, "epoch": steps / per_epoch, "train_s": train_s}
            | {f"{s}_nats": nll[s].nats_per_image for s in SPLITS}
            | {f"{s}_bpd": nll[s].bits_per_dim for s in SPLITS}
        )
        val = nll["validation"].nats_per_image
        if not math.isfinite(val):
            stop = "non-finite validation NLL"
            break
        if val < best:
            best, best_state, best_step, stale = val, (params, rest), steps, 0
        else:
            stale += 1
        if target_nats is not None and target_step < 0 and val <= target_nats:
            time_to_target, target_step = train_s, steps
            if config.stop_at_target:
                stop = "target"
                break
        if config.patience is not None and stale >= config.patience:
            stop = "patience"
            break
        if steps >= config.max_steps:
            break
        if train_s >= config.budget_s:
            stop = "budget"
            break
        t0 = time.perf_counter()
        for _ in range(min(config.eval_every, config.max_steps - steps)):
            if len(order) < config.batch:
                order = rng.permutation(n_train)[: per_epoch * config.batch].astype(np.int32)
            idx, order = order[: config.batch], order[config.batch :]
            params, rest, opt_state, _ = step_c(params, rest, opt_state, data, idx)
            steps += 1
            if train_s + time.perf_counter() - t0 >= config.budget_s:
                break
        jax.block_until_ready(params)
        train_s += time.perf_counter() - t0

    nnx.update(model, *best_state)
    selected = curve[[row["step"] for row in curve].index(best_step)]
    base_val = independent_pixel_nll(splits.train, splits.validation).nats_per_image
    base_test = independent_pixel_nll(splits.train, splits.test).nats_per_image
    summary = {
        "model": name,
        "params": n_params(model),
        "batch": config.batch,
        "lr": config.lr,
        "steps": steps,
        "train_s": train_s,
        "eval_s": eval_s,
        "compile_s": step_compile_s + eval_compile_s,
        "stop": stop,
        "target_nats": math.nan if target_nats is None else target_nats,
        "time_to_target_s": time_to_target,
        "target_step": target_step,
        "best_step": best_step,
        "best_val_nats": best,
        "val_ratio": best / base_val,
        "test_nats": selected["test_nats"],
        "test_bpd": selected["test_bpd"],
        "test_ratio": selected["test_nats"] / base_test,
        "baseline_val_nats": base_val,
        "baseline_test_nats": base_test,
    }
    return TrainResult(curve, summary, nnx.state(model))


# ---------------------------------------------------------------------------- checkpoints


def save_checkpoint(path: str | os.PathLike, state: nnx.State, *, overwrite: bool = False):
    """Save an NNX state (``nnx.state(model)``) to the directory ``path`` with orbax-checkpoint.

    Blocks until the checkpoint is on disk. An existing ``path`` raises unless ``overwrite``.
    """
    import orbax.checkpoint as ocp

    path = pathlib.Path(path).absolute()
    with ocp.StandardCheckpointer() as checkpointer:
        checkpointer.save(path, state, force=overwrite)


def load_checkpoint(path: str | os.PathLike, like: nnx.State) -> nnx.State:
    """Restore the NNX state saved at ``path``, shaped like ``like`` (a state of the same
    model, concrete or from ``nnx.eval_shape``: only its tree, shapes and dtypes are used).

    Load into a model with ``nnx.update(model, load_checkpoint(path, nnx.state(model)))``.
    """
    import orbax.checkpoint as ocp

    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
    with ocp.StandardCheckpointer() as checkpointer:
        return checkpointer.restore(pathlib.Path(path).absolute(), abstract)


# ---------------------------------------------------------------------------- sampling


def draw_noise(seed: int, batch: int, height: int, width: int) -> jax.Array:
    """The per-pixel uniform noise u every sampler consumes, from a NumPy seed, float32."""
    u = np.random.default_rng(seed).random((batch, height, width), dtype=np.float32)
    return jnp.asarray(u)


def identity_violations(logits_BxHxW: jax.Array, x_BxHxW: jax.Array, u_BxHxW: jax.Array):
    """Pixels where a sample breaks x_p = [u_p < σ(ℓ_p(x))], ``logits`` being the model's
    logits evaluated on the sample ``x`` itself: ``(count, near_ties)``, where ``near_ties``
    counts violations with |u_p − σ(ℓ_p)| < 1e-6 (float rounding between two programs that
    compute the same logit, not a sampler bug)."""
    prob = jax.nn.sigmoid(logits_BxHxW)
    wrong = (u_BxHxW < prob).astype(x_BxHxW.dtype) != x_BxHxW
    near = wrong & (jnp.abs(u_BxHxW - prob) < 1e-6)
    return int(wrong.sum()), int(near.sum())


def fixed_point_passes(params: dict, u_BxHxW: jax.Array) -> np.ndarray:
    """Passes of the PixelCNN fixed-point sampler for each image on its own, (B,) int.

    ``sample_fixed_point`` on a batch stops when every image has stopped changing (the
    maximum over the batch); mapped over single images it gives each image's own count: the
    passes until that image stops changing, plus the confirming pass.
    """
    one = jax.jit(jax.vmap(lambda u: pixelcnn.sample_fixed_point(params, u[None])[1]))
    return np.asarray(one(u_BxHxW))
