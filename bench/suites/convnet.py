"""Conv-net suite (seed §3-1, claim C5): the VGG-style net's train step, and a peak matmul.

Cases: one optax SGD-momentum step (softmax cross-entropy on random labels) of the seed's
net — its channel widths and 1000 classes — at smaller images on CPU and at 224×224 on a
GPU, with ``flops_analytic`` = forward + backward (``models.convnet.train_step_flops``).
``seq_steps_pred`` is the number of weighted layers (6): a step's sequential depth is the
network's, whatever the batch or image size. Beside them, model ``matmul`` / variant
``peak``: one large square float32 matmul (2n³ FLOPs), the device's practical peak, so the
report can give the conv net's achieved fraction of it.

Weights are drawn with NumPy (He-normal kernels, zero biases) into the shapes of an
``nnx.eval_shape`` model instead of Flax's initialisers: the timing does not depend on the
values, and jax.random compiles a kernel per shape, seconds each on a loaded 2-core CPU.

Experiment (C5): the seed's net built abstractly (``nnx.eval_shape``: no memory) and its
parameters counted exactly, per layer, against the seed's numbers; plus the analytic forward
FLOPs against XLA's cost analysis on a small image (no loops, so XLA's count is valid).
"""

from __future__ import annotations

import csv

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from bench.steps import finite_loss, forward_fn, n_params, train_step_fn
from bench.workloads import Case, Suite, Workload, register
from models.convnet import (
    KERNEL,
    SEED,
    ConvNet,
    ConvNetConfig,
    cross_entropy_loss,
    forward_flops,
    layer_param_counts,
    layer_table,
    train_step_flops,
)

# (image size, batch) pairs for the train step, and the side of the peak matmul, per profile.
# CPU: measured on 2 cores, the step reached about half the matmul's FLOP rate at 32 px and
# batch 16-32 and a little less at 64 px (XLA:CPU's kernel-gradient convolutions are the
# slow part); the batches keep the suite within its time budget.
SIZES = {
    "smoke": dict(train=((16, 2),), matmul=256),
    "cpu": dict(train=((32, 32), (64, 16)), matmul=2048),
    "full": dict(train=((64, 256), (128, 128), (224, 64)), matmul=8192),
}
# The seed's boxed per-layer counts (§3-1) and total: the claim under test.
SEED_CLAIM = {
    "conv1": 1_792,
    "conv2": 73_856,
    "conv3": 295_168,
    "conv4": 590_080,
    "fc1": 205_521_920,
    "fc2": 1_025_000,
}
SEED_TOTAL = 207_507_816
DEPTH = len(layer_table(SEED))  # weighted layers: 4 conv + 2 FC


def config_for(image_size: int) -> ConvNetConfig:
    """The seed's net (widths, FC-1024, 1000 classes) on image_size × image_size × 3 inputs."""
    return ConvNetConfig(image_size=image_size)


def abstract_model(config: ConvNetConfig) -> ConvNet:
    return nnx.eval_shape(
        lambda: ConvNet(
            config.image_size,
            config.in_channels,
            config.num_classes,
            layers=config.layers,
            fc_features=config.fc_features,
            rngs=nnx.Rngs(0),
        )
    )


def numpy_initialized(config: ConvNetConfig, seed: int) -> ConvNet:
    """A ConvNet whose parameters are drawn by NumPy: N(0, 2/fan_in) kernels, zero biases."""
    graphdef, state = nnx.split(abstract_model(config))
    rng = np.random.default_rng(seed)

    def draw(leaf):
        if len(leaf.shape) == 1:
            return jnp.zeros(leaf.shape, leaf.dtype)
        fan_in = int(np.prod(leaf.shape[:-1]))
        return jnp.asarray(rng.normal(0.0, np.sqrt(2.0 / fan_in), leaf.shape).astype(leaf.dtype))

    return nnx.merge(graphdef, jax.tree.map(draw, state))


def _build_train(image_size: int, batch: int, seed: int):
    def build() -> Workload:
        config = config_for(image_size)
        model = numpy_initialized(config, seed)
        rng = np.random.default_rng(seed + 1)
        x = jnp.asarray(rng.normal(size=(batch, image_size, image_size, 3)).astype(np.float32))
        labels = jnp.asarray(rng.integers(0, config.num_classes, batch).astype(np.int32))
        step, state = train_step_fn(model, cross_entropy_loss, optax.sgd(1e-3, momentum=0.9))
        extra = {"flops_analytic": train_step_flops(config, batch)}
        return Workload(
            step, (*state, (x, labels)), n_params(model), finite_loss, extra, batch_argnum=3
        )

    return build


def _build_matmul(n: int, seed: int):
    def build() -> Workload:
        rng = np.random.default_rng(seed)
        a, b = (jnp.asarray(rng.normal(size=(n, n)).astype(np.float32)) for _ in range(2))

        def check(out) -> str:
            return "ok" if bool(jnp.isfinite(out).all()) else "nan"

        return Workload(jnp.matmul, (a, b), None, check, {"flops_analytic": 2 * n**3})

    return build


def cases(profile: str) -> list[Case]:
    s = SIZES[profile]
    out = [
        Case(
            "convnet",
            "convnet",
            "seed",
            "train",
            _build_train(size, batch, seed=0),
            dict(batch=batch, depth=DEPTH, height=size, width=size, kernel=KERNEL),
            seq_steps_pred=DEPTH,
        )
        for size, batch in s["train"]
    ]
    n = s["matmul"]
    out.append(
        Case(
            "convnet",
            "matmul",
            "peak",
            "forward",
            _build_matmul(n, seed=0),
            dict(height=n, width=n, hidden=n),
            seq_steps_pred=1,
        )
    )
    return out


def _xla_forward_flops(config: ConvNetConfig, batch: int) -> float:
    fn, state = forward_fn(abstract_model(config))
    x = jax.ShapeDtypeStruct((batch, config.image_size, config.image_size, 3), jnp.float32)
    return float(jax.jit(fn).lower(state, x).compile().cost_analysis()["flops"])


def experiments(profile: str, run_dir) -> list[dict]:
    counts = layer_param_counts(abstract_model(SEED))
    formula = {layer.name: layer.params for layer in layer_table(SEED)}
    with open(run_dir / "convnet_params.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["layer", "params_model", "params_seed", "params_formula"])
        for name, count in counts.items():
            writer.writerow([name, count, SEED_CLAIM.get(name, ""), formula.get(name, "")])
        writer.writerow(["total", sum(counts.values()), SEED_TOTAL, sum(formula.values())])

    small = config_for(32)
    xla, analytic = _xla_forward_flops(small, batch=2), forward_flops(small, batch=2)
    with open(run_dir / "convnet_flops.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["image_size", "batch", "flops_analytic", "flops_xla", "ratio_xla"])
        writer.writerow([small.image_size, 2, analytic, int(xla), f"{xla / analytic:.5f}"])

    total, fc1 = sum(counts.values()), counts.get("fc1", 0)
    share = fc1 / total
    per_layer_ok = counts == SEED_CLAIM
    measured = (
        f"{total:,} parameters in the Flax model (nnx.eval_shape, nothing allocated), "
        f"FC-1024 {fc1:,} = {share:.2%}; per-layer "
        + ("all six equal the seed's" if per_layer_ok else f"{counts}")
        + f"; XLA cost analysis / analytic forward FLOPs = {xla / analytic:.4f} at 32 px"
    )
    row = dict(
        claim="C5",
        check="exact count of the nnx.Param leaves of models.convnet.ConvNet at 224×224×3, "
        "1000 classes, per layer, vs the seed's 207,507,816 and 205,521,920",
        measured=measured,
        verdict="PASS" if per_layer_ok and total == SEED_TOTAL else "CORRECTED",
    )
    if row["verdict"] == "CORRECTED":
        row["statement"] = (
            f"the net has {total:,} parameters, {fc1:,} ({share:.2%}) of them in FC-1024"
        )
    return [row]


register(
    Suite(
        "convnet",
        "VGG-style net of seed §3-1: train step over image size, plus a peak matmul",
        cases,
        experiments,
    )
)
