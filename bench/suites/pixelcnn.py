"""PixelCNN suite (seed §4-1): training over d and H = W, and three samplers; claims C7, C9.

Cases (``models.pixelcnn``, K = 3, binary pixels):

* ``train``, variant ``masked``: one optax Adam step on the Bernoulli NLL, one parallel pass.
  ``seq_steps_pred = d`` (the seed's O(d); C8 is judged from these rows' spans and times).
* ``sample``, variants ``naive`` / ``cached`` / ``fixed-point`` on the same per-pixel noise
  (they return the same image). ``seq_steps_pred = H·W·d``: every sampler walks the pixels in
  raster order, d layers each (the fixed-point one in the worst case: it stops after
  ``passes`` ≤ H·W + 1 full passes, recorded in the row's ``extra_json``). The naive sampler
  is the report's baseline: the cached one does the same sequential steps with about
  1/(H·W) of the work.

``flops_analytic`` counts 2 FLOPs per multiply-accumulate of the masked layers and read-out:
a forward pass is 2·B·H·W·m with m = ``macs_per_pixel``; the cached sampler does exactly one
forward pass of work in all, the naive one H·W of them, the fixed-point one ``passes`` of
them; a train step is counted as 3 forward passes (forward + backward, the usual estimate).

Weights are drawn with NumPy into the shapes of an ``nnx.eval_shape`` model (He-normal taps,
zero biases): jax.random would compile a kernel per shape, seconds each on a CPU, and
neither the timings nor the span depend on the values. The fixed-point sampler's pass count
does: at this initialisation pixels are weakly coupled and it converges in a few passes.

CPU profile: naive vs cached at 8×8 and 16×16, d = 8, batch 16, C = 8 channels (a naive
call at 28×28 runs the whole network 784 times, too slow for a CPU: that size is the full
profile's), the cached and fixed-point samplers at 28×28, plus the latency-regime sweeps of
every sampler.

Claims C7-C9 are checked in ``bench/claims/pixelcnn.py``.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from bench.nnx_adapters import binary_image_health, finite_loss, forward_fn, n_params, train_step_fn
from bench.suites.mdrnn import MATCHED_TRAIN, TRAIN_LATENCY_GROUP
from bench.workloads import Case, Suite, Workload, register
from models.pixelcnn import (
    PixelCNN,
    macs_per_pixel,
    nll_loss,
    sample_cached,
    sample_fixed_point,
    sample_naive,
)

SUITE = "pixelcnn"
KERNEL = 3
SAMPLERS = {"naive": sample_naive, "cached": sample_cached, "fixed-point": sample_fixed_point}

SAMPLE_SIDES = (5, 7, 10, 14, 20, 28, 40, 50)
"""The latency-regime samplers' sides: 100× in pixels, and no power of two. On XLA:CPU the
cached sampler runs several times faster per step at power-of-two widths than at their
neighbours (a second family of times that no count predicts; ``docs/design-notes.md``); a
sweep mixing the two families measures it, not the sampler's steps."""

WIDTHS = (8, 16)
"""Latency-regime points at wider channels C (the work grows as C², the span not at all): with
the sweeps over d and H·W they let the wall-time judge (``bench.judge``) tell the span's cost
from the work's."""

# Per profile and regime: train runs (H = W, d[, C]) and sample runs (sampler, H = W, d[, C]),
# with the batch and channels C they run at (a run's own C where it names one). The work regime
# times MNIST-sized steps; the latency regime one image with C = 2..4 channels, where the chain
# of dependent steps (d layers to train; H·W·d to sample) should be what the time measures:
# ≥ 5 points over ≥ 8× per axis, and a few wider C (the work apart from the steps).
SIZES = {
    "smoke": dict(
        train=dict(work=dict(batch=2, channels=4, runs=((6, 1), (6, 2), (8, 2)))),
        sample=dict(
            work=dict(
                batch=2,
                channels=4,
                runs=(("naive", 5, 2), ("cached", 5, 2), ("fixed-point", 5, 2)),
            ),
        ),
    ),
    "cpu": dict(
        train=dict(
            work=dict(batch=16, channels=16, runs=((28, 2), (28, 4), (28, 8), (8, 8), (16, 8))),
            latency=dict(
                batch=1,
                channels=2,
                runs=(
                    *((8, d) for d in (1, 2, 4, 8, 16, 32, 64)),
                    *((side, 2) for side in (4, 6, 12, 16, 24, 32, 48, 64)),
                    *((8, 2, c) for c in (4, *WIDTHS)),  # the work moves, the span not
                ),
            ),
        ),
        sample=dict(
            work=dict(
                batch=16,
                channels=8,
                runs=(
                    *(("naive", side, 8) for side in (8, 16)),  # (28×28: the full profile)
                    *(("cached", side, 8) for side in (8, 16, 28)),
                    *(("cached", 28, depth) for depth in (2, 4)),
                    ("fixed-point", 28, 8),
                ),
            ),
            latency=dict(
                batch=1,
                channels=4,
                runs=tuple(
                    (sampler, side, depth, *width)
                    for sampler in SAMPLERS
                    for side, depth, *width in (
                        *((side, 2) for side in SAMPLE_SIDES),
                        *((10, d) for d in (1, 4, 8, 16, 32)),
                        *((10, 2, c) for c in WIDTHS),
                    )
                ),
            ),
        ),
    ),
    "full": dict(
        train=dict(
            work=dict(
                batch=64,
                channels=64,
                runs=(*((28, d) for d in (2, 4, 8, 16, 32)), *((s, 8) for s in (16, 32, 64))),
            ),
            latency=dict(
                batch=1,
                channels=2,
                runs=(
                    *((16, d) for d in (1, 2, 4, 8, 16, 32, 48)),
                    *((side, 2) for side in (4, 6, 8, 12, 16, 24, 32, 48, 64)),
                    *((16, 2, c) for c in WIDTHS),
                ),
            ),
        ),
        sample=dict(
            work=dict(
                batch=16,
                channels=64,
                runs=(
                    *(("naive", side, 8) for side in (8, 16, 28)),
                    *(("cached", side, 8) for side in (8, 16, 28, 32)),
                    *(("cached", 28, depth) for depth in (2, 4, 16)),
                    ("fixed-point", 28, 8),
                ),
            ),
            latency=dict(
                batch=1,
                channels=4,
                runs=tuple(
                    (sampler, side, depth, *width)
                    for sampler in SAMPLERS
                    for side, depth, *width in (
                        *((side, 2) for side in SAMPLE_SIDES),
                        *((20, d) for d in (1, 4, 8, 16, 32)),
                        *((20, 2, c) for c in WIDTHS),
                    )
                ),
            ),
        ),
    ),
}


@functools.cache
def _abstract(kernel: int, depth: int, channels: int):
    """The graph and parameter shapes of a PixelCNN (traced once per size: many cases share it)."""
    return nnx.split(nnx.eval_shape(lambda: PixelCNN(kernel, depth, channels, rngs=nnx.Rngs(0))))


def numpy_initialized(depth: int, channels: int, seed: int, kernel: int = KERNEL) -> PixelCNN:
    """A PixelCNN whose parameters are drawn by NumPy: N(0, 2/fan_in) taps, zero biases."""
    graphdef, state = _abstract(kernel, depth, channels)
    rng = np.random.default_rng(seed)

    def draw(path, leaf):
        names = [k.key for k in path if isinstance(k, jax.tree_util.DictKey)]
        if "head_w" in names:  # the 1×1 read-out: fan-in C
            std = np.sqrt(1.0 / leaf.shape[0])
        elif len(leaf.shape) == 3:  # taps (n, C_in, C_out): fan-in n·C_in
            std = np.sqrt(2.0 / (leaf.shape[0] * leaf.shape[1]))
        else:  # biases
            return jnp.zeros(leaf.shape, leaf.dtype)
        return jnp.asarray(rng.normal(0.0, std, leaf.shape).astype(np.float32))

    return nnx.merge(graphdef, jax.tree_util.tree_map_with_path(draw, state))


def forward_flops(batch: int, side: int, depth: int, channels: int) -> int:
    return 2 * batch * side * side * macs_per_pixel(KERNEL, depth, channels)


def _sizes(batch: int, side: int, depth: int, channels: int) -> dict:
    return dict(batch=batch, depth=depth, height=side, width=side, kernel=KERNEL, hidden=channels)


def _build_train(side: int, depth: int, batch: int, channels: int, seed: int):
    def build() -> Workload:
        model = numpy_initialized(depth, channels, seed)
        rng = np.random.default_rng(seed + 1)
        x = jnp.asarray((rng.random((batch, side, side)) < 0.5).astype(np.float32))
        step, state = train_step_fn(model, nll_loss, optax.adam(1e-3))
        extra = {"flops_analytic": 3 * forward_flops(batch, side, depth, channels)}
        return Workload(step, (*state, x), n_params(model), finite_loss, extra, batch_argnum=3)

    return build


def sampler_note(variant: str, side: int, passes: int) -> str:
    """Why a sampler's work differs from the naive sampler's (the baseline)."""
    pixels = side * side
    if variant == "cached":
        return (
            "cached: updates only each new pixel's receptive field, one forward pass of work in "
            f"all, where the naive sampler recomputes the whole image for each of the {pixels} "
            "pixels"
        )
    if variant == "fixed-point":
        return (
            f"fixed-point: {passes} parallel passes over the whole image (one forward pass "
            f"each) until the sample stops changing, against {pixels} for the naive sampler"
        )
    return ""


def _build_sample(variant: str, side: int, depth: int, batch: int, channels: int, seed: int):
    def build() -> Workload:
        model = numpy_initialized(depth, channels, seed)
        u = jnp.asarray(np.random.default_rng(seed + 1).random((batch, side, side), np.float32))
        sampler = SAMPLERS[variant]
        fn, state = forward_fn(model, lambda m, u: sampler(m.params, u))
        passes = {"naive": side * side, "cached": 1}.get(variant)
        extra = {}
        if variant == "fixed-point":
            # Data-dependent: run the sampler once to record how many passes it needs (through
            # a wrapper, so the harness's compile is timed afresh rather than found cached).
            passes = int(jax.jit(lambda s, u: fn(s, u))(state, u)[1])
            extra["passes"] = passes
        extra["flops_analytic"] = passes * forward_flops(batch, side, depth, channels)
        return Workload(
            fn,
            (state, u),
            n_params(model),
            binary_image_health,
            extra,
            batch_argnum=1,
            while_trip_count=passes if variant == "fixed-point" else None,
            note=sampler_note(variant, side, passes),
        )

    return build


def cases(profile: str) -> list[Case]:
    train, sample = SIZES[profile]["train"], SIZES[profile]["sample"]
    runs = [
        (regime, s["batch"], (*width, s["channels"])[0], side, depth)
        for regime, s in train.items()
        for side, depth, *width in s["runs"]
    ]
    matched = MATCHED_TRAIN.get(profile, {})
    runs += [
        (regime, m["batch"], m["width"], side, m["depth"])
        for regime, m in matched.items()
        for side in m["sides"]
    ]
    out, seen = [], set()
    for regime, batch, channels, side, depth in runs:
        if (batch, channels, side, depth) in seen:  # a matched size already in a sweep
            continue
        seen.add((batch, channels, side, depth))
        build = _build_train(side, depth, batch, channels, seed=0)
        sizes = _sizes(batch, side, depth, channels)
        group = TRAIN_LATENCY_GROUP if regime == "latency" else None
        out.append(
            Case(
                SUITE,
                SUITE,
                "masked",
                "train",
                build,
                sizes,
                depth,
                regime=regime,
                interleave=group,
            )
        )
    for regime, s in sample.items():
        for variant, side, depth, *width in s["runs"]:
            channels = (*width, s["channels"])[0]
            build = _build_sample(variant, side, depth, s["batch"], channels, seed=0)
            sizes = _sizes(s["batch"], side, depth, channels)
            pred = side * side * depth
            out.append(Case(SUITE, SUITE, variant, "sample", build, sizes, pred, regime=regime))
    return out


register(
    Suite(
        "pixelcnn",
        "PixelCNN (seed §4-1): train over d and H=W; naive vs cached vs fixed-point sampling",
        cases,
        baselines={"sample": "naive"},
    )
)
