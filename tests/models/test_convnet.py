"""Seed §3-1: the VGG-style net and its parameter count (claim C5), plus its FLOP model.

Models are abstract (``nnx.eval_shape``) where only shapes matter, and drawn from an "rbg"
key otherwise: a threefry draw compiles a kernel per shape, seconds each on a CPU.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from models.convnet import (
    POOL,
    SEED,
    ConvNet,
    cross_entropy_loss,
    forward_flops,
    layer_param_counts,
    layer_table,
    max_pool_2x2,
    train_step_flops,
    widened,
)
from tests.models.helpers import n_params, train

SEED_COUNTS = {
    "conv1": 1_792,
    "conv2": 73_856,
    "conv3": 295_168,
    "conv4": 590_080,
    "fc1": 205_521_920,
    "fc2": 1_025_000,
}
TINY = dict(image_size=16, in_channels=3, num_classes=5, layers=(4, POOL, 8, POOL, 8, 8, POOL),
            fc_features=16)  # fmt: skip
SMALL = {**SEED, "num_classes": 10, "image_size": 32}  # the seed's widths on 32×32 images


def images(batch, size=16, channels=3, seed=1):
    x = np.random.default_rng(seed).normal(size=(batch, size, size, channels))
    return jnp.asarray(x.astype(np.float32))


def abstract_model(sizes: dict) -> ConvNet:
    return nnx.eval_shape(lambda: ConvNet(**sizes, rngs=nnx.Rngs(0)))


@pytest.fixture(scope="module")
def tiny():
    return ConvNet(**TINY, rngs=nnx.Rngs(jax.random.key(0, impl="rbg")))


@pytest.fixture(scope="module")
def eager_logits(tiny):
    return tiny(images(3))


def abstract_seed_model():
    return abstract_model(SEED)


def test_seed_net_has_207_507_816_parameters_without_allocating():
    model = abstract_seed_model()
    leaves = jax.tree.leaves(nnx.state(model, nnx.Param))
    assert all(isinstance(leaf, jax.ShapeDtypeStruct) for leaf in leaves)  # nothing allocated
    assert n_params(model) == 207_507_816


def test_seed_per_layer_counts_and_fc1024_share():
    counts = layer_param_counts(abstract_seed_model())
    assert counts == SEED_COUNTS
    assert counts["fc1"] / sum(counts.values()) == pytest.approx(0.99043, abs=1e-5)


@pytest.mark.parametrize(
    "cfg",
    [
        SEED,
        {**SEED, "image_size": 32, "in_channels": 1, "num_classes": 10},
        {**SEED, "layers": widened(SEED["layers"], 0.25)},
        TINY,
    ],
    ids=["seed", "32px-gray", "seed-quarter-width", "tiny"],
)
def test_analytic_table_matches_the_model(cfg):
    counts = layer_param_counts(abstract_model(cfg))
    assert {layer.name: layer.params for layer in layer_table(**cfg)} == counts


def test_seed_activation_shapes():
    shapes = {layer.name: layer.out_shape for layer in layer_table(**SEED)}
    assert shapes == {
        "conv1": (224, 224, 64),
        "conv2": (112, 112, 128),
        "conv3": (56, 56, 256),
        "conv4": (56, 56, 256),
        "fc1": (1024,),
        "fc2": (1000,),
    }


def test_output_shape_dtype_finite_and_jit_agrees(tiny, eager_logits):
    assert eager_logits.shape == (3, 5) and eager_logits.dtype == jnp.float32
    assert bool(jnp.all(jnp.isfinite(eager_logits)))
    assert float(jnp.std(eager_logits)) > 0
    jitted = nnx.jit(lambda model, x: model(x))(tiny, images(3))
    np.testing.assert_allclose(jitted, eager_logits, rtol=1e-5, atol=1e-5)


def test_matches_a_plain_lax_reference(tiny, eager_logits):
    """conv(SAME)+bias+ReLU / reduce_window 2x2 max-pool / dense, written directly with lax."""

    @jax.jit
    def reference(h):
        convs = iter(tiny.convs)
        for entry in TINY["layers"]:
            if entry == POOL:
                h = jax.lax.reduce_window(
                    h, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID"
                )
            else:
                conv = next(convs)
                h = jax.lax.conv_general_dilated(
                    h,
                    conv.kernel[...],
                    (1, 1),
                    "SAME",
                    dimension_numbers=("NHWC", "HWIO", "NHWC"),
                    precision=jax.lax.Precision.HIGHEST,
                )
                h = jnp.maximum(h + conv.bias[...], 0.0)
        h = jnp.maximum(h.reshape(h.shape[0], -1) @ tiny.fc1.kernel[...] + tiny.fc1.bias[...], 0)
        return h @ tiny.fc2.kernel[...] + tiny.fc2.bias[...]

    np.testing.assert_allclose(eager_logits, reference(images(3)), rtol=1e-4, atol=1e-5)


def test_max_pool_2x2_equals_reduce_window_and_its_gradient():
    x = images(2, size=8, channels=3, seed=4)  # continuous values: no ties
    g = images(2, size=4, channels=3, seed=5)

    def loss(pool, x):
        return jnp.sum(pool(x) * g)

    ours = jax.jit(jax.value_and_grad(lambda x: loss(max_pool_2x2, x)))(x)
    ref = jax.jit(
        jax.value_and_grad(lambda x: loss(lambda y: nnx.max_pool(y, (2, 2), strides=(2, 2)), x))
    )(x)
    np.testing.assert_array_equal(ours[1], ref[1])
    np.testing.assert_allclose(ours[0], ref[0], rtol=1e-6)


def test_forward_flops_match_xla_cost_analysis():
    """No loops in the net, so XLA's count is valid; it adds bias/ReLU/pool ops (~0.3%)."""
    graphdef, state = nnx.split(abstract_model(SMALL))
    forward = jax.jit(lambda state, x: nnx.merge(graphdef, state)(x))
    x = jax.ShapeDtypeStruct((2, 32, 32, 3), jnp.float32)
    xla = forward.lower(state, x).compile().cost_analysis()["flops"]
    analytic = forward_flops(batch=2, **SMALL)
    assert analytic <= xla <= 1.01 * analytic, (xla, analytic)


def test_train_step_flops_match_xla_cost_analysis():
    """Forward + backward + SGD update vs 3·F - F_conv1: XLA's extra is elementwise (~1%)."""
    graphdef, params = nnx.split(abstract_model(SMALL))
    tx = optax.sgd(0.1)

    def step(params, batch):
        grads = jax.grad(lambda p: cross_entropy_loss(nnx.merge(graphdef, p), batch))(params)
        updates, _ = tx.update(grads, tx.init(params), params)
        return optax.apply_updates(params, updates)

    batch = (
        jax.ShapeDtypeStruct((2, 32, 32, 3), jnp.float32),
        jax.ShapeDtypeStruct((2,), jnp.int32),
    )
    xla = jax.jit(step).lower(params, batch).compile().cost_analysis()["flops"]
    analytic = train_step_flops(batch=2, **SMALL)
    assert analytic <= xla <= 1.03 * analytic, (xla, analytic)
    assert 2.9 < analytic / forward_flops(batch=2, **SMALL) < 3.0


def test_seed_forward_flops():
    # 2·(3S-2)²·C_in·C_out per conv (taps on the zero padding not counted) + 2·N_in·N_out per FC
    expected = 2 * (
        670**2 * 3 * 64
        + 334**2 * 64 * 128
        + 166**2 * (128 * 256 + 256 * 256)
        + 200_704 * 1024
        + 1024 * 1000
    )
    assert forward_flops(**SEED) == expected == 7_830_930_944


def test_a_few_sgd_steps_lower_the_loss():
    model = ConvNet(**TINY, rngs=nnx.Rngs(jax.random.key(1, impl="rbg")))  # trained in place
    batch = (images(8), jnp.arange(8) % 5)
    losses = train(model, cross_entropy_loss, batch, optax.sgd(0.05), steps=10)
    assert np.isfinite(losses).all() and losses[-1] < 0.9 * losses[0], losses


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(image_size=30), "not divisible by 2\\^3"),
        (dict(image_size=0), "image_size must be a positive integer"),
        (dict(num_classes=0), "num_classes must be a positive integer"),
        (dict(layers=(64, 0, POOL)), "layers entries"),
        (dict(layers=(POOL,)), "at least one convolution"),
    ],
)
def test_invalid_configs_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ConvNet(**kwargs, rngs=nnx.Rngs(0))


def test_wrong_image_shape_raises(tiny):
    with pytest.raises(ValueError, match="expected images"):
        tiny(images(1, size=32))
