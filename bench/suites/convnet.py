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
values, and jax.random compiles a kernel per parameter shape, which on a CPU costs more than
the draws themselves.

The suite owns the report's table of achieved FLOP/s against its matmul and the matching
clause of its headline (:func:`peak_fractions`), and names the matmul as the case that stands
for the device's speed (``Suite.calibration_case``: ``python -m bench compare --normalise``
divides timings by it when a run has no calibration constant).

C5 (the parameter count) is checked in ``bench/claims/convnet.py``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pandas as pd
from flax import nnx

from bench.markdown import table
from bench.nnx_adapters import finite_loss, n_params, train_step_fn
from bench.workloads import SIZE_FIELDS, Case, Section, Suite, Workload, register
from models.convnet import (
    KERNEL,
    SEED,
    ConvNet,
    cross_entropy_loss,
    layer_table,
    train_step_flops,
)

# (image size, batch) pairs for the train step, and the side of the peak matmul, per profile.
# On a CPU the batches keep the suite within its time budget; the step's slow part there is
# XLA:CPU's kernel-gradient convolutions (the figures: docs/design-notes.md).
SIZES = {
    "smoke": dict(train=((16, 2),), matmul=256),
    "cpu": dict(train=((32, 32), (64, 16)), matmul=2048),
    "full": dict(train=((64, 256), (128, 128), (224, 64)), matmul=8192),
}
NAME = "convnet"
DEPTH = len(layer_table(**SEED))  # weighted layers: 4 conv + 2 FC
PEAK = dict(model="matmul", variant="peak")
"""The peak matmul case: the device's practical FLOP rate, measured in the same run."""


def seed_net(image_size: int) -> dict:
    """The seed's net (widths, FC-1024, 1000 classes) on image_size × image_size × 3 inputs."""
    return {**SEED, "image_size": image_size}


def abstract_model(sizes: dict) -> ConvNet:
    """The net's structure and parameter shapes, nothing allocated."""
    return nnx.eval_shape(lambda: ConvNet(**sizes, rngs=nnx.Rngs(0)))


def numpy_initialized(sizes: dict, seed: int) -> ConvNet:
    """A ConvNet whose parameters are drawn by NumPy: N(0, 2/fan_in) kernels, zero biases."""
    graphdef, state = nnx.split(abstract_model(sizes))
    rng = np.random.default_rng(seed)

    def draw(leaf):
        if len(leaf.shape) == 1:
            return jnp.zeros(leaf.shape, leaf.dtype)
        fan_in = int(np.prod(leaf.shape[:-1]))
        return jnp.asarray(rng.normal(0.0, np.sqrt(2.0 / fan_in), leaf.shape).astype(leaf.dtype))

    return nnx.merge(graphdef, jax.tree.map(draw, state))


def _build_train(image_size: int, batch: int, seed: int):
    def build() -> Workload:
        sizes = seed_net(image_size)
        model = numpy_initialized(sizes, seed)
        rng = np.random.default_rng(seed + 1)
        x = jnp.asarray(rng.normal(size=(batch, image_size, image_size, 3)).astype(np.float32))
        labels = jnp.asarray(rng.integers(0, sizes["num_classes"], batch).astype(np.int32))
        step, state = train_step_fn(model, cross_entropy_loss, optax.sgd(1e-3, momentum=0.9))
        extra = {"flops_analytic": train_step_flops(batch=batch, **sizes)}
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
            NAME,
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
            NAME,
            PEAK["model"],
            PEAK["variant"],
            "forward",
            _build_matmul(n, seed=0),
            dict(height=n, width=n, hidden=n),
            seq_steps_pred=1,
        )
    )
    return out


# --- the report: each case's fraction of the matmul's FLOP rate ------------------------------


def peak_fractions(df: pd.DataFrame) -> pd.DataFrame:
    """Each case with analytic FLOPs as a fraction of its suite's measured :data:`PEAK` rate:
    the device's practical peak measured in the same run, not a datasheet number (a suite's
    rows without a peak case give none)."""
    ok = df[(df.status == "ok") & df.achieved_flops_per_s.notna()]
    out = []
    for suite, group in ok.groupby("suite"):
        peak = group[(group.model == PEAK["model"]) & (group.variant == PEAK["variant"])]
        if peak.empty:
            continue
        rate = float(peak.achieved_flops_per_s.max())
        for rec in group.drop(peak.index).to_dict("records"):
            sizes = " ".join(f"{f}={rec[f]}" for f in SIZE_FIELDS if not pd.isna(rec[f]))
            out.append(
                dict(
                    suite=suite,
                    model=rec["model"],
                    variant=rec["variant"],
                    mode=rec["mode"],
                    sizes=sizes,
                    gflop_per_s=rec["achieved_flops_per_s"] / 1e9,
                    matmul_gflop_per_s=rate / 1e9,
                    fraction=rec["achieved_flops_per_s"] / rate,
                )
            )
    return pd.DataFrame(out)


def headline(df: pd.DataFrame) -> list[str]:
    """The best fraction of the matmul's rate among this suite's cases."""
    mine = peak_fractions(df[df.suite == NAME])
    if mine.empty:
        return []
    best = mine.sort_values("fraction").iloc[-1]
    return [
        f"{best['model']} {best['mode']} reaches {best['fraction']:.0%} of the "
        f"matmul's {best['matmul_gflop_per_s']:.3g} GFLOP/s"
        + (f" (best of {len(mine)} cases)" if len(mine) > 1 else "")
    ]


def report_sections(run_dir, df: pd.DataFrame) -> list[Section]:
    """The table of every case's fraction, after the variant ratios."""
    mine = peak_fractions(df[df.suite == NAME])
    if mine.empty:
        return []
    title = "\n## Achieved FLOP/s against a large matmul on the same device\n\n"
    return [Section(title + table(mine), after="variants")]


register(
    Suite(
        NAME,
        "VGG-style net of seed §3-1: train step over image size, plus a peak matmul",
        cases,
        headline=headline,
        report_sections=report_sections,
        calibration_case=PEAK,
    )
)
