"""PixelCNN (seed §4-1): masked convolutions, causality, training, three samplers, counting."""

from __future__ import annotations

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from models.pixelcnn import (
    MaskedConv,
    PixelCNN,
    cached_pixel_step,
    causal_mask,
    connections,
    connections_order,
    draw,
    init_caches,
    layer_connections,
    macs_per_pixel,
    masked_conv,
    n_taps,
    naive_pixel_step,
    nll,
    nll_loss,
    pixelcnn_logits,
    sample_cached,
    sample_fixed_point,
    sample_naive,
)
from tests.models.helpers import n_params, train

ATOL = 1e-5  # float32, sums of at most a few hundred O(1) products


def model_params(kernel=3, depth=3, channels=4, seed=0, scale=1.0) -> dict:
    """Parameters shaped by the module (built abstractly), drawn by NumPy: He-scaled weights
    times ``scale``, small biases. Cheaper than compiling JAX's RNG for every configuration."""
    abstract = nnx.eval_shape(lambda: PixelCNN(kernel, depth, channels, rngs=nnx.Rngs(0)))
    rng = np.random.default_rng(seed)

    def weights(shape, fan_in):
        return jnp.asarray(rng.normal(0.0, scale * np.sqrt(2 / fan_in), shape), jnp.float32)

    def biases(shape):
        return jnp.asarray(rng.normal(0.0, 0.1, shape), jnp.float32)

    layers = []
    for layer in abstract.layers:
        n, c_in, c_out = layer.w.shape
        layers.append({"w": weights((n, c_in, c_out), n * c_in), "b": biases((c_out,))})
    head = {"w": weights((channels,), channels), "b": biases(())}
    return {"layers": layers, "head": head}


def binary_images(key, shape) -> jax.Array:
    return (jax.random.uniform(key, shape) < 0.5).astype(jnp.float32)


def full_kernel(w_NxIxO: np.ndarray, kernel: int) -> np.ndarray:
    """Scatter the stored taps back into a K×K kernel (masked taps = 0)."""
    n, c_in, c_out = w_NxIxO.shape
    full = np.zeros((kernel * kernel, c_in, c_out), np.float32)
    full[:n] = w_NxIxO
    return full.reshape(kernel, kernel, c_in, c_out)


def numpy_masked_conv(x_BxHxWxI, w_KxKxIxO, b_O, mask_KxK):
    """Reference: a loop over output pixels and kernel taps, zero padding by skipping."""
    batch, height, width, _ = x_BxHxWxI.shape
    kernel, r = mask_KxK.shape[0], mask_KxK.shape[0] // 2
    y = np.zeros((batch, height, width, w_KxKxIxO.shape[3]), np.float64)
    for i, j, a, b in itertools.product(range(height), range(width), range(kernel), range(kernel)):
        qi, qj = i + a - r, j + b - r
        if mask_KxK[a, b] and 0 <= qi < height and 0 <= qj < width:
            y[:, i, j] += x_BxHxWxI[:, qi, qj] @ w_KxKxIxO[a, b]
    return y + b_O


# --- Masks: mask A is the taps strictly before the centre in raster order, B adds the centre.


def test_masks_for_k3():
    np.testing.assert_array_equal(causal_mask(3, "A"), [[1, 1, 1], [1, 0, 0], [0, 0, 0]])
    np.testing.assert_array_equal(causal_mask(3, "B"), [[1, 1, 1], [1, 1, 0], [0, 0, 0]])


@pytest.mark.parametrize("kernel", [3, 5, 7])
@pytest.mark.parametrize("mask_type", ["A", "B"])
def test_unmasked_taps_are_the_first_n_in_raster_order(kernel, mask_type):
    flat = causal_mask(kernel, mask_type).ravel()
    n = n_taps(kernel, mask_type)
    assert flat[:n].all() and not flat[n:].any()


@pytest.mark.parametrize("kernel", [3, 5])
@pytest.mark.parametrize("mask_type", ["A", "B"])
def test_masked_conv_equals_full_masked_kernel_conv(kernel, mask_type):
    kx, kw, kb = jax.random.split(jax.random.key(kernel), 3)
    x = jax.random.normal(kx, (2, 5, 6, 3))
    w = jax.random.normal(kw, (n_taps(kernel, mask_type), 3, 4))
    b = jax.random.normal(kb, (4,))
    mask = causal_mask(kernel, mask_type)
    w_full = full_kernel(np.asarray(w), kernel)
    with jax.default_matmul_precision("highest"):
        got = jax.jit(masked_conv, static_argnums=3)(x, w, b, kernel)
        lax_conv = (
            jax.jit(
                lambda x, w: jax.lax.conv_general_dilated(
                    x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
                )
            )(x, w_full * mask[:, :, None, None])
            + b
        )
    loop = numpy_masked_conv(np.asarray(x), w_full, np.asarray(b), mask)
    np.testing.assert_allclose(got, loop, atol=ATOL, rtol=1e-5)
    np.testing.assert_allclose(got, lax_conv, atol=ATOL, rtol=1e-5)


def shifted_copies_conv(x_BxHxWxI, w_NxIxO, b_O, kernel):
    """The formulation ``masked_conv`` replaced: the n taps sliced from ONE padded input, so
    autodiff sums their gradients in a chain of n − 1 adds."""
    _, height, width, _ = x_BxHxWxI.shape
    r = kernel // 2
    xp = jnp.pad(x_BxHxWxI, ((0, 0), (r, 0), (r, r), (0, 0)))
    taps = [divmod(t, kernel) for t in range(w_NxIxO.shape[0])]
    cols = jnp.concatenate([xp[:, a : a + height, b : b + width] for a, b in taps], -1)
    return cols @ w_NxIxO.reshape(-1, w_NxIxO.shape[2]) + b_O


@pytest.mark.parametrize("kernel, mask_type", [(3, "A"), (3, "B"), (5, "B"), (7, "B")])
def test_masked_conv_and_its_gradients_equal_the_shifted_copies_formulation(kernel, mask_type):
    kx, kw, kb, kg = jax.random.split(jax.random.key(10 + kernel), 4)
    x = jax.random.normal(kx, (2, 5, 6, 3))
    w = jax.random.normal(kw, (n_taps(kernel, mask_type), 3, 4))
    b = jax.random.normal(kb, (4,))
    cotangent = jax.random.normal(kg, (2, 5, 6, 4))

    @functools.partial(jax.jit, static_argnums=0)
    def value_and_vjp(conv, x, w, b, cotangent):
        y, vjp = jax.vjp(lambda x, w, b: conv(x, w, b, kernel), x, w, b)
        return y, *vjp(cotangent)

    with jax.default_matmul_precision("highest"):
        got = value_and_vjp(masked_conv, x, w, b, cotangent)
        want = value_and_vjp(shifted_copies_conv, x, w, b, cotangent)
    for name, g, v in zip(("y", "dx", "dw", "db"), got, want, strict=True):
        np.testing.assert_allclose(g, v, atol=1e-4, rtol=1e-5, err_msg=name)


# --- The model: shapes, values, jit, parameter count, bad configurations.


def test_logits_shape_dtype_finite_and_module_matches_pure_function():
    model = PixelCNN(3, 3, 4, rngs=nnx.Rngs(0))
    x = binary_images(jax.random.key(1), (2, 7, 5))
    logits = nnx.jit(lambda m, x: m(x))(model, x)
    assert logits.shape == (2, 7, 5) and logits.dtype == jnp.float32
    assert bool(jnp.isfinite(logits).all())
    assert float(jnp.std(logits)) > 0
    np.testing.assert_array_equal(logits, jax.jit(pixelcnn_logits)(model.params, x))


def test_jit_matches_eager():
    params = model_params(5, 2, 4)
    x = binary_images(jax.random.key(2), (2, 6, 6))
    np.testing.assert_allclose(
        jax.jit(pixelcnn_logits)(params, x), pixelcnn_logits(params, x), atol=ATOL, rtol=1e-5
    )


def test_parameter_count_is_exact():
    # n_A·C + C + (d-1)·(n_B·C² + C) + C + 1, with n_A = (K²-1)/2, n_B = (K²+1)/2.
    # K=3, d=3, C=8: 4·8 + 8 + 2·(5·64 + 8) + 8 + 1 = 705
    assert n_params(nnx.eval_shape(lambda: PixelCNN(3, 3, 8, rngs=nnx.Rngs(0)))) == 705
    # K=5, d=2, C=4: 12·4 + 4 + (13·16 + 4) + 4 + 1 = 269
    assert n_params(nnx.eval_shape(lambda: PixelCNN(5, 2, 4, rngs=nnx.Rngs(0)))) == 269


@pytest.mark.parametrize(
    "kernel, depth, channels, match",
    [(4, 2, 4, "odd"), (1, 2, 4, "odd"), (3, 0, 4, "depth"), (3, 2, 0, "channels")],
)
def test_invalid_config_raises(kernel, depth, channels, match):
    with pytest.raises(ValueError, match=match):
        PixelCNN(kernel, depth, channels, rngs=nnx.Rngs(0))


def test_invalid_layer_raises():
    with pytest.raises(ValueError, match="mask_type"):
        MaskedConv(2, 3, 3, mask_type="C", rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="odd"):
        MaskedConv(2, 3, 2, mask_type="A", rngs=nnx.Rngs(0))


# --- Causality, by the Jacobian: ℓ_p depends on x_q for q < p only.


def logit_jacobian(params, height, width, x) -> np.ndarray:
    """J[p, q] = ∂ℓ_p / ∂x_q for one image, p and q raster indices."""

    def flat_logits(x_flat):
        return pixelcnn_logits(params, x_flat.reshape(1, height, width)).ravel()

    with jax.default_matmul_precision("highest"):
        return np.asarray(jax.jit(jax.jacrev(flat_logits))(x.ravel()))


@pytest.mark.parametrize("kernel, depth", [(3, 1), (3, 3), (5, 2)])
def test_logit_at_p_has_zero_gradient_wrt_pixels_at_or_after_p(kernel, depth):
    height, width = 6, 7
    # Positive biases keep most ReLUs active, so a pixel's dependence on its past is visible.
    params = model_params(kernel, depth, 4, seed=depth)
    params["layers"] = [{"w": layer["w"], "b": layer["b"] + 1.0} for layer in params["layers"]]
    x = jax.random.uniform(jax.random.key(3), (height, width))
    jac = logit_jacobian(params, height, width, x)
    for i, j in [(0, 0), (0, 4), (2, 0), (3, 3), (5, 6)]:
        p = i * width + j
        # Masking removes the edges: the zeros are exact, not small.
        assert not jac[p, p:].any(), f"pixel {(i, j)} sees itself or the future"
        # ... and the past is seen (pixel 0 has no past: its logit is a constant).
        assert (jac[p, :p] != 0).any() == (p > 0), f"pixel {(i, j)} sees none of its past"


def receptive_field(height, width, kernel, depth) -> np.ndarray:
    """R[p, q] = 1 iff a path of unmasked taps joins x_q to ℓ_p, all units inside the image."""
    r = kernel // 2

    def adjacency(mask_type):
        a = np.zeros((height * width, height * width), np.int64)
        taps = np.argwhere(causal_mask(kernel, mask_type))
        for i, j, (ka, kb) in itertools.product(range(height), range(width), taps):
            qi, qj = i + ka - r, j + kb - r
            if 0 <= qi < height and 0 <= qj < width:
                a[i * width + j, qi * width + qj] = 1
        return a

    reach = adjacency("A")
    for _ in range(depth - 1):
        reach = np.minimum(adjacency("B") @ reach, 1)
    return reach.astype(bool)


@pytest.mark.parametrize("kernel, depth", [(3, 3), (5, 2)])
def test_dependencies_are_exactly_the_masked_receptive_field_with_its_blind_spot(kernel, depth):
    # Positive weights and inputs keep every ReLU active and rule out cancellation, so the
    # non-zero pattern of the Jacobian is the graph's reachability, computed independently.
    height, width = 7, 8
    params = jax.tree.map(jnp.abs, model_params(kernel, depth, 3, seed=1))
    params = jax.tree.map(lambda v: v + 0.1, params)
    x = jax.random.uniform(jax.random.key(4), (height, width)) + 0.1
    jac = logit_jacobian(params, height, width, x)
    expected = receptive_field(height, width, kernel, depth)
    np.testing.assert_array_equal(jac != 0, expected)
    assert not np.triu(expected).any()  # causal: nothing on or above the diagonal
    # The blind spot: one row up and r + 1 columns right is never seen, at any depth,
    # while two rows up it is (depth >= 2).
    r, i, j = kernel // 2, 4, 2
    p = i * width + j
    assert not expected[p, (i - 1) * width + j + r + 1]
    assert expected[p, (i - 2) * width + j + r + 1]


# --- Training: NLL, one parallel pass, one optax step.


def test_nll_is_the_bernoulli_negative_log_likelihood():
    params = model_params()
    x = binary_images(jax.random.key(5), (3, 5, 4))
    logits, loss = jax.jit(lambda p, x: (pixelcnn_logits(p, x), nll(p, x)))(params, x)
    probs = 1 / (1 + np.exp(-np.asarray(logits, np.float64)))
    xn = np.asarray(x, np.float64)
    expected = -np.mean(xn * np.log(probs) + (1 - xn) * np.log1p(-probs))
    np.testing.assert_allclose(loss, expected, rtol=1e-5)


def test_train_steps_lower_the_nll_of_a_fixed_batch():
    model = PixelCNN(3, 3, 4, rngs=nnx.Rngs(0))  # the shapes above: JAX's RNG kernels are reused
    # Vertical stripes: every pixel equals the one above it, learnable through the mask.
    stripes = binary_images(jax.random.key(6), (8, 1, 6))
    x = jnp.broadcast_to(stripes, (8, 6, 6))
    losses = train(model, nll_loss, x, optax.adam(1e-2), steps=30)
    assert np.isfinite(losses).all()
    assert losses[-1] < 0.6 * losses[0], losses


# --- Sampling: naive, cached and fixed-point consume the same noise and agree exactly.


@pytest.mark.parametrize("kernel, depth", [(3, 1), (3, 2), (3, 3), (5, 1), (5, 2), (5, 3)])
def test_the_three_samplers_return_identical_images(kernel, depth):
    naive, cached, fixed = map(jax.jit, (sample_naive, sample_cached, sample_fixed_point))
    for seed in range(3):
        # Larger weights couple pixels strongly, so the images are far from all-0 or all-1.
        params = model_params(kernel, depth, 4, seed=seed, scale=2.0)
        u = jax.random.uniform(jax.random.key(100 + seed), (2, 5, 6))
        x_naive = naive(params, u)
        x_cached = cached(params, u)
        x_fixed, passes = fixed(params, u)
        np.testing.assert_array_equal(x_cached, x_naive)
        np.testing.assert_array_equal(x_fixed, x_naive)
        assert set(np.unique(x_naive)) <= {0.0, 1.0}
        assert 1 <= int(passes) <= 5 * 6 + 1


def test_a_sample_is_the_fixed_point_of_one_parallel_pass():
    # The definition of raster sampling with noise u: x_p = [u_p < σ(ℓ_p(x_<p))] for all p.
    params = model_params(3, 3, 4, seed=7, scale=2.0)
    u = jax.random.uniform(jax.random.key(8), (3, 6, 5))
    x = jax.jit(sample_cached)(params, u)
    redrawn = jax.jit(lambda p, x, u: draw(pixelcnn_logits(p, x), u))(params, x, u)
    np.testing.assert_array_equal(redrawn, x)
    assert 0.1 < float(x.mean()) < 0.9  # not a trivial image
    # ... and a different noise gives a different image.
    u2 = jax.random.uniform(jax.random.key(9), (3, 6, 5))
    assert (jax.jit(sample_cached)(params, u2) != x).any()


def test_fixed_point_passes_reach_the_bound_for_a_chain():
    # A model whose pixel p copies pixel p-1 inverted: every pass fixes exactly one pixel.
    params = model_params(3, 1, 1, seed=0)
    w = jnp.zeros_like(params["layers"][0]["w"]).at[3, 0, 0].set(-20.0)  # tap (r, r-1): left
    params["layers"][0] = {"w": w, "b": jnp.full((1,), 20.0)}
    params["head"] = {"w": jnp.ones((1,)), "b": jnp.full((), -10.0)}
    u = jnp.full((1, 1, 6), 0.5)
    x, passes = jax.jit(sample_fixed_point)(params, u)
    np.testing.assert_array_equal(x[0, 0], [1, 0, 1, 0, 1, 0])
    assert int(passes) == 6 + 1
    np.testing.assert_array_equal(jax.jit(sample_naive)(params, u), x)


def step_flops(step, params, state_of, height, width) -> float:
    u = jnp.zeros((2, height, width))
    compiled = jax.jit(step).lower(params, state_of(params, u), u, 7).compile()
    return compiled.cost_analysis()["flops"]


def test_cached_step_work_does_not_grow_with_the_image_but_naive_does():
    params = model_params(3, 3, 4)
    caches = lambda p, u: init_caches(p, u)  # noqa: E731
    image = lambda p, u: u  # noqa: E731
    cached_small = step_flops(cached_pixel_step, params, caches, 5, 6)
    cached_large = step_flops(cached_pixel_step, params, caches, 12, 14)
    naive_small = step_flops(naive_pixel_step, params, image, 5, 6)
    naive_large = step_flops(naive_pixel_step, params, image, 12, 14)
    assert cached_small == cached_large
    assert cached_small >= 2 * 2 * macs_per_pixel(3, 3, 4)  # batch 2, 2 FLOPs per MAC
    assert naive_large > 4 * naive_small  # 168 vs 30 pixels per pass


# --- Connections (seed §4-1a), counted over the masks.


def brute_force_layer_connections(height, width, kernel, mask_type, c_in, c_out) -> int:
    r, mask, edges = kernel // 2, causal_mask(kernel, mask_type), 0
    for i, j, a, b in itertools.product(range(height), range(width), range(kernel), range(kernel)):
        edges += bool(mask[a, b]) and 0 <= i + a - r < height and 0 <= j + b - r < width
    return edges * c_in * c_out


@pytest.mark.parametrize("height, width, kernel", [(4, 5, 3), (6, 6, 5), (3, 2, 5), (9, 7, 7)])
@pytest.mark.parametrize("mask_type", ["A", "B"])
def test_layer_connections_match_brute_force(height, width, kernel, mask_type):
    got = layer_connections(height, width, kernel, mask_type, 2, 3)
    assert got == brute_force_layer_connections(height, width, kernel, mask_type, 2, 3)


@pytest.mark.parametrize("mask_type", ["A", "B"])
def test_layer_connections_are_the_jacobians_nonzeros(mask_type):
    # Each connection is one weight·input product, so (generic weights) one Jacobian entry.
    height, width, kernel, c_in, c_out = 5, 6, 3, 2, 3
    w = jax.random.normal(jax.random.key(10), (n_taps(kernel, mask_type), c_in, c_out))
    x = jnp.zeros((1, height, width, c_in))
    jac = jax.jit(jax.jacrev(lambda x: masked_conv(x, w, jnp.zeros(c_out), kernel)))(x)
    got = int((np.asarray(jac) != 0).sum())
    assert got == layer_connections(height, width, kernel, mask_type, c_in, c_out)


def test_network_connections_small_example_and_leading_order():
    # K=3, H=W=4, d=2, C=2. Mask A taps (-1,-1),(-1,0),(-1,1),(0,-1) land inside at
    # 9 + 12 + 9 + 12 = 42 positions; mask B adds the centre: 42 + 16 = 58.
    # Total: 42·1·2 + 58·2·2 + 16·2 (read-out) = 84 + 232 + 32 = 348.
    assert connections(4, 4, 3, 2, 2) == 348
    # For H, W ≫ K and d ≫ 1 the count tends to n_B/K² = (K²+1)/(2K²) of H·W·K²·(C+(d-1)C²).
    ratio = connections(512, 512, 3, 64, 8) / connections_order(512, 512, 3, 64, 8)
    assert abs(ratio - 5 / 9) < 0.01
    ratio = connections(512, 512, 7, 64, 8) / connections_order(512, 512, 7, 64, 8)
    assert abs(ratio - 25 / 49) < 0.01
