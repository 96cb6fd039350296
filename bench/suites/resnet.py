"""ResNet suite (seed §3-2, claim C6): post-act vs pre-act (identity mapping) vs plain blocks.

Cases: one optax SGD-momentum step (softmax cross-entropy on random labels, BatchNorm in
training mode) and one inference forward pass (BatchNorm on its running averages) of
``models.resnet.ResNet`` over the number of blocks N, for the three variants.
``seq_steps_pred = N``: the blocks are applied one after the other (a scan over N), so the
sequential depth of a step grows with N whatever the batch or image size.

Train steps (``bench.nnx_adapters.train_step_fn``) carry BatchNorm's running averages from step to
step.

Claim C6 is checked in ``bench/claims/resnet.py``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from bench.nnx_adapters import finite_loss, forward_fn, n_params, train_step_fn
from bench.workloads import Case, Suite, Workload, register
from models.resnet import (
    KERNEL,
    VARIANTS,
    ResNet,
    cross_entropy_loss,
    forward_flops,
    train_step_flops,
)

IN_CHANNELS, N_CLASSES = 3, 10

# Timed cases: batch, image side, channel width, and the depths N for each mode.
SIZES = {
    "smoke": dict(batch=4, image=8, width=4, train=(2,), forward=(), variants=tuple(VARIANTS)),
    "cpu": dict(batch=16, image=8, width=16, train=(2, 8), forward=(8,), variants=tuple(VARIANTS)),
    "full": dict(
        batch=128,
        image=32,
        width=64,
        train=(4, 16, 64),
        forward=(4, 16, 64),
        variants=tuple(VARIANTS),
    ),
}


def _random_batch(batch: int, image: int, seed: int):
    """Random images and labels (learnable only by memorisation)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(batch, image, image, IN_CHANNELS)).astype(np.float32)
    labels = rng.integers(0, N_CLASSES, batch).astype(np.int32)
    return jnp.asarray(x), jnp.asarray(labels)


def _resnet(variant: str, n_blocks: int, width: int, seed: int) -> ResNet:
    # An "rbg" key: XLA:CPU compiles a threefry draw in seconds per parameter shape, an
    # RngBitGenerator draw in a fraction of that; the distributions are the model's own.
    rngs = nnx.Rngs(jax.random.key(seed, impl="rbg"))
    return ResNet(IN_CHANNELS, width, n_blocks, N_CLASSES, variant=variant, rngs=rngs)


def _build(variant: str, mode: str, batch: int, image: int, width: int, n_blocks: int, seed):
    def build() -> Workload:
        model = _resnet(variant, n_blocks, width, seed)
        x, labels = _random_batch(batch, image, seed + 1)
        sizes = (batch, image, IN_CHANNELS, width, n_blocks, N_CLASSES)
        if mode == "train":
            tx = optax.sgd(0.1, momentum=0.9)
            step, state = train_step_fn(model, cross_entropy_loss, tx)
            extra = {"flops_analytic": train_step_flops(*sizes), "norm": "batch statistics"}
            return Workload(
                step, (*state, (x, labels)), n_params(model), finite_loss, extra, batch_argnum=3
            )
        model.eval()
        fn, state = forward_fn(model)
        extra = {"flops_analytic": forward_flops(*sizes), "norm": "running averages"}
        return Workload(fn, (state, x), n_params(model), _finite, extra, batch_argnum=1)

    return build


def _finite(out) -> str:
    return "ok" if bool(jnp.isfinite(out).all()) else "nan"


def cases(profile: str) -> list[Case]:
    s = SIZES[profile]
    out = []
    for mode in ("train", "forward"):
        for n_blocks in s[mode]:
            for variant in s["variants"]:
                sizes = dict(
                    batch=s["batch"],
                    depth=n_blocks,
                    height=s["image"],
                    width=s["image"],
                    kernel=KERNEL,
                    hidden=s["width"],
                )
                build = _build(variant, mode, s["batch"], s["image"], s["width"], n_blocks, seed=0)
                out.append(
                    Case("resnet", "resnet", variant, mode, build, sizes, seq_steps_pred=n_blocks)
                )
    return out


register(
    Suite(
        "resnet",
        "Residual blocks of seed §3-2: post-act vs pre-act (identity) vs plain, over depth N",
        cases,
        baselines={"train": "post-act", "forward": "post-act"},
    )
)
