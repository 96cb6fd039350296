"""Training to a target NLL (time to quality, split in its two factors), checkpoints, and
sampling with trained weights.

Time to quality (after AlgoPerf: Dahl et al. 2023, "Benchmarking neural network training
algorithms") is the product of two things that a single timed training run mixes up:

* **steps to the target** (statistical efficiency): :func:`train_grid` trains a model from
  several seeds at each rate of a small learning-rate grid, one optimiser (Adam, constant
  rate) and one batch size, and reads the first step at which each run's validation NLL is
  at or under the target, at a resolution of ``eval_every`` steps. Those runs train side by
  side in one program, so their wall time says nothing about one run's speed;
* **time per step** (what parallelism buys): :func:`time_per_step` times one run's training
  step alone, by the suite's measuring protocol (``bench.timing.time_back_to_back``).

The target is checked on the validation split, as AlgoPerf does: ``target_nats`` is a
validation NLL in nats per image, conventionally :func:`validation_target` =
``ratio × baseline`` with the independent-pixel baseline evaluated on the validation split.
The test split drives no decision; :func:`train_grid` reports the selected weights on it.

Sampling with trained weights: :func:`fixed_point_passes` counts the fixed-point sampler's
passes per image, :func:`identity_violations` checks a sample against the autoregressive
rule x_p = [u_p < σ(ℓ_p(x))], and ``bench.suites.trained.sample_grid`` draws samples beside real
images.
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

from bench.data import Splits, independent_pixel_nll
from bench.nnx_adapters import train_step_fn
from bench.timing import compile_ahead, time_back_to_back
from models import pixelcnn


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """How one model is trained for its steps to a target.

    Every (learning rate, seed) pair of ``lrs`` × ``seeds`` is one run: Adam at that constant
    rate on minibatches of ``batch`` images (epochs of a shuffle seeded by the run's seed, the
    last incomplete batch of an epoch dropped). A seed fixes the initialisation and the
    minibatch order, shared by every rate (paired runs). The validation NLL is evaluated every
    ``eval_every`` steps (the resolution of a step count), in chunks of ``eval_batch`` images,
    up to ``max_steps``; with ``coarse_every``, only every ``coarse_every`` steps until a seed
    of the rate is within :data:`FINE_BAND` × the target (a run that crosses the target before
    that has the coarser resolution, and says so).
    """

    lrs: tuple[float, ...]
    seeds: int = 3
    batch: int = 16
    max_steps: int = 1000
    eval_every: int = 10
    eval_batch: int = 256
    coarse_every: int | None = None

    def __post_init__(self):
        for name in ("seeds", "batch", "max_steps", "eval_every", "eval_batch"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.lrs or min(self.lrs) <= 0 or len(set(self.lrs)) != len(self.lrs):
            raise ValueError(f"lrs must be distinct positive rates, got {self.lrs}")
        if self.max_steps % self.eval_every:
            raise ValueError(
                f"max_steps ({self.max_steps}) must be a multiple of eval_every ({self.eval_every})"
            )
        if self.coarse_every is not None and (
            self.coarse_every < self.eval_every or self.coarse_every % self.eval_every
        ):
            raise ValueError(
                f"coarse_every ({self.coarse_every}) must be a multiple of eval_every "
                f"({self.eval_every})"
            )


FINE_BAND = 1.1
"""A rate's evaluation turns from ``coarse_every`` to ``eval_every`` once one of its seeds is
within this factor of the target (validation NLL ≤ FINE_BAND × target)."""


@dataclasses.dataclass
class TrainResult:
    """``runs``: one row per (lr, seed): ``target_step`` (the first evaluation at or under the
    target; -1 if not reached), ``resolution`` (steps since the evaluation before it: the
    target was crossed within them) and ``steps`` (how far the run went); ``curve``: one row per
    (evaluation, run) with the validation NLL; ``state``: the NNX state of the selected run
    (the best rate's seed 0, where training stopped); ``best_lr``: the rate of least mean steps
    to the target over seeds (None if no rate had every seed reach it); ``test_nats``: the
    selected run's test NLL, nats per image (reported; no decision reads the test split);
    ``cost``: seconds spent compiling, training (all seeds together) and evaluating."""

    runs: list[dict]
    curve: list[dict]
    state: nnx.State
    best_lr: float | None
    test_nats: float
    cost: dict


def validation_target(splits: Splits, ratio: float) -> float:
    """The validation NLL target, nats per image: ``ratio`` × the independent-pixel baseline
    (training means) evaluated on the validation split."""
    return ratio * independent_pixel_nll(splits.train, splits.validation).nats_per_image


def per_image_nll(logits_BxHxW: jax.Array, x_BxHxW: jax.Array) -> jax.Array:
    """Bernoulli NLL of each image, nats: Σ_p softplus(ℓ_p) − x_p·ℓ_p, shape (B,)."""
    return jnp.sum(jax.nn.softplus(logits_BxHxW) - x_BxHxW * logits_BxHxW, axis=(1, 2))


def _chunks(images: np.ndarray, size: int) -> list[tuple[jax.Array, jax.Array]]:
    """``images`` cut into (size, H, W) chunks, the last zero-padded, with 0/1 weights."""
    size, out = min(size, len(images)), []
    for start in range(0, len(images), size):
        x = images[start : start + size]
        weight = np.zeros(size, np.float32)
        weight[: len(x)] = 1.0
        x = np.concatenate([x, np.zeros((size - len(x), *x.shape[1:]), x.dtype)])
        out.append((jax.device_put(x), jax.device_put(weight)))
    return out


class _Orders:
    """The minibatch indices of one seed: epochs of a shuffle seeded by it."""

    def __init__(self, seed: int, n_train: int, batch: int):
        self.rng, self.n, self.batch = np.random.default_rng(seed), n_train, batch
        self.left = np.empty(0, np.int32)

    def take(self, steps: int) -> np.ndarray:
        out = []
        for _ in range(steps):
            if len(self.left) < self.batch:
                per_epoch = self.n // self.batch
                self.left = self.rng.permutation(self.n)[: per_epoch * self.batch].astype(np.int32)
            out.append(self.left[: self.batch])
            self.left = self.left[self.batch :]
        return np.stack(out)


@dataclasses.dataclass(frozen=True)
class _GridPrograms:
    """A grid's seeds at init, data and programs, compiled once so that every rate reuses them."""

    seeds: list[int]
    params0: nnx.State
    rest0: nnx.State
    data: jax.Array
    n_train: int
    validation: list[tuple[jax.Array, jax.Array]]
    n_validation: int
    init: Callable
    chunk: Callable
    nll_sums: Callable
    compile_s: float


def _compile_grid(
    build: Callable[[int], nnx.Module],
    loss: Callable[[nnx.Module, jax.Array], jax.Array],
    splits: Splits,
    config: TrainConfig,
) -> _GridPrograms:
    """Build the seeds' models and compile the grid's programs ahead, the compile time apart."""
    seeds = list(range(config.seeds))
    graphdef, *per_seed = zip(*(nnx.split(build(s), nnx.Param, ...) for s in seeds), strict=True)
    graphdef = graphdef[0]
    params0, rest0 = (jax.tree.map(lambda *a: jnp.stack(a), *p) for p in per_seed)
    tx = optax.inject_hyperparams(optax.adam)(learning_rate=1.0)  # Adam; the rate an argument
    step, _ = train_step_fn(build(0), loss, tx)

    def init(params, lr):
        state = jax.vmap(tx.init)(params)
        state.hyperparams["learning_rate"] = jnp.full(len(seeds), lr, jnp.float32)
        return state

    # eval_every steps of every seed: jax.vmap over the seeds of a lax.scan over the steps
    def chunk(params, rest, opt_state, data, idx_SxTxB):
        def one_run(p, r, o, idx_TxB):
            def body(carry, idx_B):
                return step(*carry, jnp.take(data, idx_B, axis=0))[:3], None

            return jax.lax.scan(body, (p, r, o), idx_TxB)[0]

        return jax.vmap(one_run)(params, rest, opt_state, idx_SxTxB)

    # each seed's NLL summed over a chunk of images weighted 0/1 (the last chunk is padded)
    def nll_sums(params, rest, x, w):
        def one(p, r):
            return jnp.sum(per_image_nll(nnx.merge(graphdef, p, r)(x), x) * w)

        return jax.vmap(one)(params, rest)

    data = jax.device_put(splits.train)
    init_c = jax.jit(init)
    idx_shape = jnp.zeros((len(seeds), config.eval_every, config.batch), jnp.int32)
    val = _chunks(splits.validation, config.eval_batch)
    opt0 = init_c(params0, 1.0)
    chunk_c, chunk_compile_s, _ = compile_ahead(chunk, (params0, rest0, opt0, data, idx_shape))
    eval_c, eval_compile_s, _ = compile_ahead(nll_sums, (params0, rest0, *val[0]))
    return _GridPrograms(
        seeds, params0, rest0, data, len(splits.train), val, len(splits.validation),
        init_c, chunk_c, eval_c, chunk_compile_s + eval_compile_s,
    )  # fmt: skip


def _validation_nats(programs: _GridPrograms, params, rest, cost: dict) -> np.ndarray:
    """Each seed's validation NLL, nats per image; its time is booked as ``eval_s`` (a cost)."""
    t0 = time.perf_counter()
    nats = sum(np.asarray(programs.nll_sums(params, rest, x, w)) for x, w in programs.validation)
    nats = nats / programs.n_validation
    cost["eval_s"] += time.perf_counter() - t0
    return nats


def _train_chunk(
    programs: _GridPrograms, state: tuple, orders: list[_Orders], config: TrainConfig, cost: dict
) -> tuple:
    """Train every seed ``eval_every`` more steps; the time, all seeds together, is a cost."""
    idx = jnp.asarray(np.stack([o.take(config.eval_every) for o in orders]))
    t0 = time.perf_counter()
    state = jax.block_until_ready(programs.chunk(*state, programs.data, idx))
    cost["train_s"] += time.perf_counter() - t0
    cost["steps"] += config.eval_every
    return state


def _train_rate(
    programs: _GridPrograms,
    config: TrainConfig,
    target_nats: float,
    lr: float,
    best_mean: float,
    cost: dict,
) -> tuple[list[dict], list[dict], tuple]:
    """Train one rate's seeds side by side until the target, max_steps, or it cannot win."""
    seeds, params0 = programs.seeds, programs.params0
    state = (params0, programs.rest0, programs.init(params0, lr))  # (params, rest, opt_state)
    orders = [_Orders(s, programs.n_train, config.batch) for s in seeds]
    target_step, resolution = np.full(len(seeds), -1), np.full(len(seeds), -1)
    curve, steps, last_eval = [], 0, 0
    fine = config.coarse_every is None  # evaluating every eval_every steps
    while True:
        if fine or steps % config.coarse_every == 0 or steps >= config.max_steps:
            nats = _validation_nats(programs, *state[:2], cost)
            curve += [dict(step=steps, lr=lr, seed=s, validation_nats=float(nats[s]))
                      for s in seeds]  # fmt: skip
            reached = (target_step < 0) & (nats <= target_nats)
            target_step[reached], resolution[reached] = steps, steps - last_eval
            last_eval, fine = steps, fine or bool((nats <= FINE_BAND * target_nats).any())
            # Its mean if every seed still going reached the target at the next evaluation.
            bound = np.where(target_step >= 0, target_step, steps + config.eval_every).mean()
            if (target_step >= 0).all() or steps >= config.max_steps or bound >= best_mean:
                break
        state = _train_chunk(programs, state, orders, config, cost)
        steps += config.eval_every
    rows = [dict(lr=lr, seed=s, target_step=int(target_step[s]),
                 resolution=int(resolution[s]), steps=steps) for s in seeds]  # fmt: skip
    return rows, curve, state[:2]


def _all_reached(rows: list[dict]) -> bool:
    """Whether every seed of a rate reached the target (only such a rate can be the best)."""
    return all(r["target_step"] >= 0 for r in rows)


def _train_rates(programs: _GridPrograms, config: TrainConfig, target_nats: float, cost: dict):
    """Train the rates in turn, the middle (expected best) first so the others can stop early."""
    middle = len(config.lrs) // 2
    order = [config.lrs[middle], *config.lrs[:middle], *config.lrs[middle + 1 :]]
    runs, curve, states, best_mean = {}, [], {}, math.inf
    for lr in order:
        runs[lr], rate_curve, states[lr] = _train_rate(
            programs, config, target_nats, lr, best_mean, cost
        )
        curve += rate_curve
        if _all_reached(runs[lr]):
            best_mean = min(best_mean, np.mean([r["target_step"] for r in runs[lr]]))
    return runs, curve, states


def _select_run(
    build: Callable[[int], nnx.Module],
    programs: _GridPrograms,
    config: TrainConfig,
    runs: dict[float, list[dict]],
    states: dict[float, tuple],
    test_images: np.ndarray,
) -> tuple[float | None, nnx.Module, float]:
    """The best rate's seed-0 model and its test NLL (reported, never decided on)."""
    done = [lr for lr in config.lrs if _all_reached(runs[lr])]
    best = min(done, key=lambda lr: np.mean([r["target_step"] for r in runs[lr]]), default=None)
    model = build(0)
    chosen = states[config.lrs[0] if best is None else best]
    nnx.update(model, *(jax.tree.map(lambda a: a[0], x) for x in chosen))
    size = len(programs.validation[0][1])
    test = sum(
        np.asarray(programs.nll_sums(*chosen, x, w))[0] for x, w in _chunks(test_images, size)
    )
    return best, model, float(test) / len(test_images)


def train_grid(
    build: Callable[[int], nnx.Module],
    loss: Callable[[nnx.Module, jax.Array], jax.Array],
    splits: Splits,
    config: TrainConfig,
    target_nats: float,
) -> TrainResult:
    """Train every (rate, seed) run of ``config`` to a validation NLL of ``target_nats``
    (nats per image): ``build(seed)`` makes the model at random init, ``loss(model, batch)``
    is its training loss (nats per pixel), ``model(x)`` its Bernoulli logits (B, H, W).

    The rates are trained one after another, the middle one of the grid first (a grid is
    centred on the expected best); the seeds of a rate side by side in one compiled program
    (``jax.vmap`` over the seeds of a ``lax.scan`` of ``eval_every`` steps; the rate is an
    argument, so one compile serves the grid). A run counts its steps to the target at the
    first evaluation at or under it. A rate stops when all its seeds are there, at
    ``max_steps``, or as soon as it cannot beat a rate already done: its mean could not be
    lower even if its other seeds reached the target at the next evaluation. Wall times here
    are of all seeds together (a cost, not a measure: :func:`time_per_step` times one run).
    """
    n_train = len(splits.train)
    if config.batch > n_train:
        raise ValueError(f"batch {config.batch} exceeds the {n_train} training images")
    programs = _compile_grid(build, loss, splits, config)
    cost = dict(compile_s=programs.compile_s, train_s=0.0, eval_s=0.0, steps=0)
    runs, curve, states = _train_rates(programs, config, target_nats, cost)
    best, model, test_nats = _select_run(build, programs, config, runs, states, splits.test)
    rows = [row for lr in config.lrs for row in runs[lr]]
    curve.sort(key=lambda c: (config.lrs.index(c["lr"]), c["seed"], c["step"]))
    return TrainResult(rows, curve, nnx.state(model), best, test_nats, cost)


def time_per_step(model: nnx.Module, loss, images: np.ndarray, lr: float, *, repeats: int):
    """One run's Adam step on the first ``len(images)`` images, timed by the measuring
    protocol (:func:`bench.timing.time_back_to_back`): a :class:`bench.timing.Timing`."""
    step, state = train_step_fn(model, loss, optax.adam(lr))
    return time_back_to_back(step, (*state, jnp.asarray(images)), repeats=repeats, warmup=2)


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
