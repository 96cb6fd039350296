"""Seed §3-2: residual blocks with and without identity mapping (claim C6).

Post-act (He et al. 2015), pre-act (He et al. 2016) and plain blocks are the same layers with
the shortcut and the ReLU in different places; these tests pin the difference down exactly
(zeroed convolutions, exact Jacobians), check the stacked-and-scanned blocks against an
explicit loop, and BatchNorm's state. The experiment itself is in ``bench/suites/resnet.py``;
its verdict rule and its stateful train step are tested at the end.

Models are built from "rbg" keys: a threefry draw compiles a kernel per parameter shape,
seconds each on a CPU.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from models.resnet import (
    VARIANTS,
    PlainBlock,
    PostActBlock,
    PreActBlock,
    ResNet,
    cross_entropy_loss,
    forward_flops,
)
from tests.models.helpers import n_params, train

BLOCKS = {"post-act": PostActBlock, "pre-act": PreActBlock, "plain": PlainBlock}
ATOL = RTOL = 1e-5  # float32, small nets


def rngs(seed=0):
    return nnx.Rngs(jax.random.key(seed, impl="rbg"))


def images(batch=3, size=5, channels=3, seed=1):
    x = np.random.default_rng(seed).normal(size=(batch, size, size, channels))
    return jnp.asarray(x.astype(np.float32))


def make(variant, n_blocks=2, width=4, n_classes=5, seed=0):
    return ResNet(3, width, n_blocks, n_classes, variant=variant, rngs=rngs(seed))


def pure(module):
    """``f(*args) = module(*args)`` on a fresh copy of its state, usable under jax transforms
    (NNX refuses to mutate BatchNorm statistics created outside the current trace)."""
    graphdef, state = nnx.split(module)
    return lambda *args: nnx.merge(graphdef, jax.tree.map(lambda a: a, state))(*args)


def zero_kernels(block, *names):
    for name in names:
        conv = getattr(block, name)
        conv.kernel[...] = jnp.zeros_like(conv.kernel[...])


# --- the model as a model ----------------------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
def test_logits_are_batch_by_classes_float32_and_finite_in_both_modes(variant):
    model = make(variant)
    x = images()
    train = model(x)
    model.eval()
    inference = model(x)
    for logits in (train, inference):
        assert logits.shape == (3, 5) and logits.dtype == jnp.float32
        assert bool(jnp.isfinite(logits).all())


@pytest.mark.parametrize("variant", VARIANTS)
def test_jit_agrees_with_eager(variant):
    model, x = make(variant), images()
    jitted = nnx.jit(lambda model, x: model(x))(model, x)
    np.testing.assert_allclose(jitted, model(x), rtol=RTOL, atol=ATOL)


def test_parameter_count_is_exact_and_the_same_for_every_variant():
    # I = 3 input channels, C = 8, K = 10 classes; every conv 3×3 without bias:
    #   stem 9·3·8 = 216; per block 2 convs 2·9·8·8 = 1152 + 2 BatchNorms (scale, bias)
    #   2·2·8 = 32 → 1184; one more BatchNorm (after the stem, or before the head) 16;
    #   head 8·10 + 10 = 90.  N = 2: 216 + 2·1184 + 16 + 90 = 2690.
    for variant in VARIANTS:
        for n_blocks, expected in ((1, 1506), (2, 2690), (5, 6242)):
            build = lambda n=n_blocks, v=variant: ResNet(3, 8, n, 10, variant=v, rngs=rngs())  # noqa: E731
            model = nnx.eval_shape(build)
            assert n_params(model) == expected == 216 + n_blocks * 1184 + 16 + 90
            # BatchNorm running mean and variance are state, not parameters: 2·C per norm.
            stats = jax.tree.leaves(nnx.state(model, nnx.BatchStat))
            assert sum(s.size for s in stats) == (2 * n_blocks + 1) * 2 * 8


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(n_blocks=0), "n_blocks must be a positive integer"),
        (dict(n_blocks=-3), "n_blocks must be a positive integer"),
        (dict(width=0), "width must be a positive integer"),
        (dict(width=2.5), "width must be a positive integer"),
        (dict(in_channels=0), "in_channels must be a positive integer"),
        (dict(n_classes=0), "n_classes must be a positive integer"),
        (dict(variant="resnet-v3"), "unknown variant 'resnet-v3'"),
    ],
)
def test_invalid_config_raises_at_construction(kwargs, message):
    args = dict(in_channels=3, width=4, n_blocks=2, n_classes=5) | kwargs
    variant = args.pop("variant", "pre-act")
    with pytest.raises(ValueError, match=message):
        ResNet(**args, variant=variant, rngs=rngs())


# --- where the variants differ, exactly ------------------------------------------------------


def test_with_both_convolutions_zero_preact_is_the_identity_postact_relu_plain_zero():
    x = images(2, 3, 4)  # has negative entries
    outputs = {}
    for variant, cls in BLOCKS.items():
        block = cls(4, rngs=rngs())
        zero_kernels(block, "conv1", "conv2")
        outputs[variant] = block(x)
    np.testing.assert_array_equal(outputs["pre-act"], x)  # x + 0
    np.testing.assert_array_equal(outputs["post-act"], jax.nn.relu(x))  # relu(x + BN(0))
    np.testing.assert_array_equal(outputs["plain"], jnp.zeros_like(x))  # relu(BN(0))
    assert bool((x < 0).any())  # so relu(x) ≠ x and the three really differ


def test_identity_shortcut_jacobian_is_exactly_identity_plus_the_branch():
    """∂x_{l+1}/∂x_l = I + ∂F/∂x (pre-act), D(I + ∂F/∂x) (post-act), ∂F/∂x (plain).

    With the last convolution zeroed the branch contributes nothing, so the Jacobian is
    exactly I for pre-act, the ReLU mask diag(x > 0) for post-act, and 0 for plain; with it
    random, pre-act's Jacobian differs from I by the branch.
    """
    x = images(2, 3, 2)
    eye = np.eye(x.size, dtype=np.float32)
    expected = {"pre-act": eye, "post-act": np.diag((np.asarray(x) > 0).ravel()), "plain": 0 * eye}
    for variant, cls in BLOCKS.items():
        block = cls(2, rngs=rngs())
        full = jax.jacobian(pure(block))(x).reshape(x.size, x.size)
        zero_kernels(block, "conv2")
        off = jax.jacobian(pure(block))(x).reshape(x.size, x.size)
        np.testing.assert_array_equal(off, expected[variant], err_msg=variant)
        assert float(jnp.abs(full - off).max()) > 1e-3, variant  # the branch does contribute


@pytest.mark.parametrize("variant", ["post-act", "pre-act"])  # plain: post-act's stem and head
def test_scanned_blocks_and_probe_gradients_equal_an_explicit_loop(variant):
    """The stacked blocks under nnx.scan compute block N-1 ∘ … ∘ block 0, and the gradient
    with respect to the zero probe is ∂ℓ/∂x_l at each block input (and at the head)."""
    n_blocks, x, labels = 3, images(), jnp.array([0, 3, 1])
    model = make(variant, n_blocks=n_blocks)
    graphdef, state = nnx.split(model)
    block_def, stacked = nnx.split(model.blocks)

    def reference(x, eps):  # written out: stem, block by block, head
        m = nnx.merge(graphdef, jax.tree.map(lambda a: a, state))
        h = m.stem(x)
        if variant != "pre-act":
            h = jax.nn.relu(m.norm(h))
        for l in range(n_blocks):
            block = nnx.merge(block_def, jax.tree.map(lambda a, l=l: a[l], stacked))
            h = block(h + eps[l])
        h = h + eps[n_blocks]
        if variant == "pre-act":
            h = jax.nn.relu(m.norm(h))
        return m.head(h.mean(axis=(1, 2)))

    def loss(logits):
        return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

    probe = jnp.zeros((n_blocks + 1, 3, 5, 5, 4))
    scanned = pure(model)
    np.testing.assert_allclose(scanned(x, probe), scanned(x), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(scanned(x, probe), reference(x, list(probe)), rtol=RTOL, atol=ATOL)
    g_scan = jax.grad(lambda p: loss(scanned(x, p)))(probe)
    g_loop = jax.grad(lambda eps: loss(reference(x, eps)))(list(probe))
    for l in range(n_blocks + 1):
        np.testing.assert_allclose(g_scan[l], g_loop[l], rtol=1e-4, atol=1e-6)
    assert all(float(jnp.linalg.norm(g)) > 0 for g in g_scan)


# --- BatchNorm state -------------------------------------------------------------------------


def test_training_mode_uses_batch_statistics_and_updates_running_averages():
    model = make("post-act", n_blocks=2)  # post-act: the stem is conv → BN → ReLU
    x = images(4)
    stem = model.stem(x)
    model(x)
    # momentum 0.99 from mean 0 and variance 1 (two-pass, biased variance)
    np.testing.assert_allclose(
        model.norm.mean[...], 0.01 * stem.mean(axis=(0, 1, 2)), rtol=1e-5, atol=1e-7
    )
    np.testing.assert_allclose(
        model.norm.var[...], 0.99 + 0.01 * stem.var(axis=(0, 1, 2)), rtol=1e-5, atol=1e-7
    )
    for stat in jax.tree.leaves(nnx.state(model.blocks, nnx.BatchStat)):
        assert stat.shape == (2, 4)  # one row per block, carried out of the scan
    assert bool((model.blocks.norm1.mean[...] != 0).all())
    # A sample's output depends on the rest of its batch in training mode only.
    assert not np.allclose(model(x)[:1], model(x[:1]), atol=1e-3)
    model.eval()
    before = jax.tree.map(jnp.copy, nnx.state(model, nnx.BatchStat))
    np.testing.assert_allclose(model(x)[:1], model(x[:1]), rtol=RTOL, atol=ATOL)
    after = nnx.state(model, nnx.BatchStat)
    for a, b in zip(jax.tree.leaves(before), jax.tree.leaves(after), strict=True):
        np.testing.assert_array_equal(a, b)


def test_forward_flops_match_xla_cost_analysis_for_one_block():
    # One block: XLA counts a scan body once, which is then the whole network. forward_flops
    # counts every tap of the padded 3×3 convolutions; XLA skips the taps on the zero padding
    # (a fraction ((3S − 2)/(3S))² of them remains on S × S images) and adds normalisation,
    # ReLU and pooling (a few %).
    model = make("pre-act", n_blocks=1, width=8)
    model.eval()
    graphdef, state = nnx.split(model)
    x = jax.ShapeDtypeStruct((2, 8, 8, 3), jnp.float32)
    forward = jax.jit(lambda state, x: nnx.merge(graphdef, state)(x))
    xla = forward.lower(state, x).compile().cost_analysis()["flops"]
    convs, head = 2 * 2 * 64 * 9 * (3 * 8 + 2 * 8 * 8), 2 * 2 * 8 * 5
    assert forward_flops(2, 8, 3, 8, 1, 5) == convs + head
    in_bounds = convs * ((3 * 8 - 2) / (3 * 8)) ** 2 + head
    assert 1.0 <= xla / in_bounds <= 1.1


def test_training_updates_batchnorm_statistics_and_lowers_the_loss():
    model = make("pre-act", n_blocks=1)
    batch = (images(4), jnp.array([0, 1, 2, 3]))
    start = jax.tree.map(jnp.copy, nnx.state(model, nnx.BatchStat))
    losses = train(model, cross_entropy_loss, batch, optax.sgd(0.1, momentum=0.9), steps=5)
    assert losses[-1] < losses[0]
    moved = [
        float(jnp.abs(a - b).max())
        for a, b in zip(
            jax.tree.leaves(start), jax.tree.leaves(nnx.state(model, nnx.BatchStat)), strict=True
        )
    ]
    assert min(moved) > 0  # every running mean and variance was updated
