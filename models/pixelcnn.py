"""PixelCNN (van den Oord et al. 2016, "Pixel Recurrent Neural Networks"): the seed's §4-1.

An autoregressive model of H×W single-channel binary images in raster order (row by row,
left to right; pixel p = (i, j) has index i·W + j):

    p(x) = Π_p p(x_p | x_<p),      p(x_p = 1 | x_<p) = σ(ℓ_p(x_<p)).

The logits ℓ come from d masked K×K convolutions (zero "SAME" padding, K odd, C channels)
and a 1×1 read-out:

    h⁰ = x                                           (B, H, W, 1)
    h¹ = relu(conv(h⁰, W¹ ⊙ M_A) + b¹)               (B, H, W, C)
    hˡ = relu(conv(hˡ⁻¹, Wˡ ⊙ M_B) + bˡ)             l = 2..d
    ℓ  = hᵈ · w_out + b_out                          (B, H, W)

with r = K // 2 and the masks over kernel taps (a, b) ∈ [0, K)², centre (r, r):

    M_A[a, b] = 1  iff  a < r  or  (a = r and b < r)      taps strictly before the centre
    M_B[a, b] = 1  iff  a < r  or  (a = r and b ≤ r)      ... and the centre itself

So h¹ at p sees x only at q < p, and each mask-B layer adds nothing beyond q ≤ p: ℓ_p depends
on x_<p only (causal; tested by the Jacobian). This is the plain masked-convolution PixelCNN:
it has the well-known *blind spot* (pixels up and to the right, beyond the stacked K×K
triangles, never enter the receptive field; van den Oord et al. 2016b fix it with gated
vertical + horizontal stacks). The blind spot costs modelling power, not causality, and the
seed's complexity questions are about the plain model, so it is kept and documented here.

Why binary (Bernoulli logits) rather than 256-way softmax outputs: the seed asks about
connections and sequential steps, which do not depend on the output alphabet; one logit per
pixel keeps the read-out 1×1 (C weights, not 256·C) so the timed work is the masked
convolutions, and binarised 28×28 MNIST is the classic PixelCNN setting.

The mask is structural. In raster order over the K×K kernel the unmasked taps are exactly the
first n of them: n_A = (K² − 1)/2, n_B = (K² + 1)/2. A layer stores only those taps,
W: (n, C_in, C_out), and computes the convolution as n shifted copies of the (top, left and
right) zero-padded input concatenated along channels times W reshaped to (n·C_in, C_out): the
masked-out taps are neither stored nor multiplied. This is the same function as a full K×K
kernel times the mask (tested against ``lax.conv_general_dilated`` and a NumPy loop), about
half the work, and it lets the cached sampler use the very same weight matrix. The parameter
count is therefore

    n_A·C + C  +  (d − 1)·(n_B·C² + C)  +  C + 1.

A layer is one parallel step, forward and backward. The forward sums the n taps inside one
matmul. In the backward, the gradient of the padded input is the sum of the n taps' shifted
gradients; were the n shifted copies sliced from one array, autodiff would add them in a
chain of n − 1 adds and a training step's span would grow with K² (9·d + 23 at K = 3,
29·d + 3 at K = 7). Each tap therefore slices its own copy of the padded input (one
broadcast, split n ways), and the taps' gradients are summed by one reduction, the transpose
of that broadcast: the span of a training step does not depend on K (tested). The copies are
layout only: XLA slices the padded input directly, and the compiled step is as fast as before.

Sampling (seed §4-1b). All per-pixel noise is drawn up front, u ~ U[0, 1)^(B×H×W), and
x_p = [u_p < σ(ℓ_p)]; every sampler below consumes the same u, so they return the same image:

* ``sample_naive``: for each of the H·W pixels in raster order, run the whole network on the
  whole image and read the logit at p: H·W·d sequential layer applications, each doing
  O(H·W·K²·C²) work of which only O(K²·C²) is needed.
* ``sample_cached`` (Ramachandran et al. 2017, "Fast generation for convolutional
  autoregressive models"): keep every layer's activations hˡ in a cache; at pixel p compute,
  for l = 1..d, only hˡ_p from the taps of hˡ⁻¹ around p. The mask makes those taps read hˡ⁻¹
  at positions q < p (computed at earlier pixels, from x_<q ⊆ x_<p, hence final) and, for
  mask B, q = p (computed just before, at layer l − 1 of this pixel). The unmasked taps lie in
  the r + 1 rows at or above p, so each layer reads an (r + 1)×K window, whose first n entries
  in raster order are the taps. Work per pixel O(d·K²·C²), independent of H·W; still H·W·d
  sequential steps. The caches are padded by r on the top, left and right so every window is
  a fixed-size slice (no bounds logic).
* ``sample_fixed_point``: start from x = 0 and repeat x ← [u < σ(ℓ(x))] with full parallel
  passes until x stops changing. After k passes the first k pixels are final, so it stops
  after at most H·W + 1 passes (how many fewer depends on how strongly the weights couple
  pixels); the pass count is returned.

Connections (seed §4-1a). A connection is an edge from one input unit (layer l − 1, position
q, channel c) to one output unit (layer l, position p, channel c') through an unmasked tap
whose q lies inside the image (taps that land in the zero padding join no unit). Layer l
contributes C_in·C_out·Σ_{unmasked (a,b)} (H − |a − r|)⁺·(W − |b − r|)⁺, the 1×1 read-out
H·W·C. For H, W ≫ K this is ≈ ½·H·W·K²·(C + (d − 1)·C²): Θ(d·H·W·K²) at fixed C.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

MASK_TYPES = ("A", "B")


def _check_config(kernel: int, depth: int, channels: int) -> None:
    for name, value in (("depth", depth), ("channels", channels)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if not isinstance(kernel, int) or kernel < 3 or kernel % 2 == 0:
        raise ValueError(
            f"kernel must be an odd integer >= 3 (masks need a centre tap), got {kernel!r}"
        )


def causal_mask(kernel: int, mask_type: str) -> np.ndarray:
    """The K×K 0/1 mask M_A (centre excluded) or M_B (centre included), float32."""
    if mask_type not in MASK_TYPES:
        raise ValueError(f"mask_type must be 'A' or 'B', got {mask_type!r}")
    r = kernel // 2
    a, b = np.meshgrid(np.arange(kernel), np.arange(kernel), indexing="ij")
    allowed = (a < r) | ((a == r) & (b < r)) | ((a == r) & (b == r) & (mask_type == "B"))
    return allowed.astype(np.float32)


def n_taps(kernel: int, mask_type: str) -> int:
    """Unmasked taps: the first n of the K×K kernel in raster order."""
    if mask_type not in MASK_TYPES:
        raise ValueError(f"mask_type must be 'A' or 'B', got {mask_type!r}")
    return (kernel * kernel - 1) // 2 + (mask_type == "B")


def layer_mask_type(index: int) -> str:
    """Mask A for the first layer (it must not see x_p), B after it."""
    return "A" if index == 0 else "B"


def kernel_size(params: dict) -> int:
    """K, recovered from the first (mask A) layer's n_A = (K² − 1)/2 taps."""
    return math.isqrt(2 * params["layers"][0]["w"].shape[0] + 1)


def masked_conv(x_BxHxWxI: jax.Array, w_NxIxO: jax.Array, b_O: jax.Array, kernel: int):
    """Zero-padded 'SAME' K×K convolution using only the first n taps (the mask's)."""
    batch, height, width, c_in = x_BxHxWxI.shape
    n, r = w_NxIxO.shape[0], kernel // 2
    # No padding below: unmasked taps never reach rows after the centre.
    xp = jnp.pad(x_BxHxWxI, ((0, 0), (r, 0), (r, r), (0, 0)))
    # Each tap slices its own copy of xp, so that xp is used once: autodiff then sums the n
    # taps' gradients with one reduction (the transpose of the broadcast), not a chain of
    # n − 1 adds whose length would grow with K².
    copies = jax.lax.split(jnp.broadcast_to(xp, (n, *xp.shape)), [1] * n, axis=0)
    taps = [divmod(t, kernel) for t in range(n)]
    cols_BxHxWxNI = jnp.concatenate(
        [
            copy[0, :, a : a + height, b : b + width]
            for copy, (a, b) in zip(copies, taps, strict=True)
        ],
        -1,
    )
    return cols_BxHxWxNI @ w_NxIxO.reshape(n * c_in, -1) + b_O


def pixelcnn_logits(params: dict, x_BxHxW: jax.Array) -> jax.Array:
    """One parallel pass: the Bernoulli logits ℓ_p(x_<p) of every pixel, (B, H, W)."""
    kernel = kernel_size(params)
    h = x_BxHxW[..., None]
    for layer in params["layers"]:
        h = jax.nn.relu(masked_conv(h, layer["w"], layer["b"], kernel))
    return h @ params["head"]["w"] + params["head"]["b"]


def draw(logit: jax.Array, u: jax.Array) -> jax.Array:
    """x = [u < σ(logit)] as float32: the Bernoulli sample every sampler uses for its noise u."""
    return (u < jax.nn.sigmoid(logit)).astype(jnp.float32)


def nll(params: dict, x_BxHxW: jax.Array) -> jax.Array:
    """Negative log-likelihood in nats per pixel, averaged over the batch."""
    logits = pixelcnn_logits(params, x_BxHxW)
    # -log p(x | ℓ) = softplus(ℓ) - x·ℓ, the numerically stable Bernoulli NLL.
    return jnp.mean(jax.nn.softplus(logits) - x_BxHxW * logits)


# --- Samplers. naive and cached mirror each other: a per-pixel step, then the loop over pixels.


def naive_pixel_step(params: dict, x_BxHxW: jax.Array, u_BxHxW: jax.Array, p) -> jax.Array:
    """Set pixel p of x: run the whole network on the whole image, read the logit at p."""
    width = u_BxHxW.shape[2]
    i, j = p // width, p % width
    logits_BxHxW = pixelcnn_logits(params, x_BxHxW)
    logit_B = logits_BxHxW[:, i, j]
    x_B = draw(logit_B, u_BxHxW[:, i, j])
    return x_BxHxW.at[:, i, j].set(x_B)


def cached_pixel_step(params: dict, caches: tuple, u_BxHxW: jax.Array, p) -> tuple:
    """Set pixel p: per layer compute hˡ at p only, from the taps of the hˡ⁻¹ cache around p.

    ``caches[l]`` holds hˡ (h⁰ = x) padded by r rows on top and r columns left and right, so
    the window rows i−r..i, columns j−r..j+r start at padded (i, j) and the unpadded (i, j)
    sits at padded (i + r, j + r).
    """
    width = u_BxHxW.shape[2]
    i, j = p // width, p % width
    kernel = kernel_size(params)
    r = kernel // 2
    caches = list(caches)
    h_BxO = None
    for index, layer in enumerate(params["layers"]):
        n, c_in, c_out = layer["w"].shape
        batch = caches[index].shape[0]
        window = jax.lax.dynamic_slice(caches[index], (0, i, j, 0), (batch, r + 1, kernel, c_in))
        taps_BxNI = window.reshape(batch, (r + 1) * kernel, c_in)[:, :n].reshape(batch, n * c_in)
        h_BxO = jax.nn.relu(taps_BxNI @ layer["w"].reshape(n * c_in, c_out) + layer["b"])
        caches[index + 1] = jax.lax.dynamic_update_slice(
            caches[index + 1], h_BxO[:, None, None, :], (0, i + r, j + r, 0)
        )
    logit_B = h_BxO @ params["head"]["w"] + params["head"]["b"]
    x_B = draw(logit_B, u_BxHxW[:, i, j])
    caches[0] = jax.lax.dynamic_update_slice(
        caches[0], x_B[:, None, None, None], (0, i + r, j + r, 0)
    )
    return tuple(caches)


def init_caches(params: dict, u_BxHxW: jax.Array) -> tuple:
    """Zero caches for h⁰ = x and h¹..hᵈ, each padded by r on the top, left and right."""
    batch, height, width = u_BxHxW.shape
    r = kernel_size(params) // 2
    features = [1] + [layer["w"].shape[2] for layer in params["layers"]]
    return tuple(jnp.zeros((batch, height + r, width + 2 * r, f), jnp.float32) for f in features)


def sample_naive(params: dict, u_BxHxW: jax.Array) -> jax.Array:
    """Raster-order sampling, one whole-network pass per pixel: H·W·d steps, O(H·W) waste."""
    batch, height, width = u_BxHxW.shape
    x_BxHxW = jnp.zeros((batch, height, width), jnp.float32)
    step = lambda p, x: naive_pixel_step(params, x, u_BxHxW, p)  # noqa: E731
    return jax.lax.fori_loop(0, height * width, step, x_BxHxW)


def sample_cached(params: dict, u_BxHxW: jax.Array) -> jax.Array:
    """Raster-order sampling with per-layer caches: H·W·d steps of O(K²·C²) work each."""
    batch, height, width = u_BxHxW.shape
    caches = init_caches(params, u_BxHxW)
    step = lambda p, c: cached_pixel_step(params, c, u_BxHxW, p)  # noqa: E731
    caches = jax.lax.fori_loop(0, height * width, step, caches)
    r = kernel_size(params) // 2
    return caches[0][:, r:, r : r + width, 0]


def sample_fixed_point(params: dict, u_BxHxW: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Full parallel passes x ← [u < σ(ℓ(x))] from x = 0 until x stops changing.

    Returns ``(x, passes)``; ``passes ≤ H·W + 1`` because each pass fixes at least one more
    pixel (the first not-yet-final one) and the last pass only confirms nothing changed.
    """
    batch, height, width = u_BxHxW.shape
    max_passes = height * width + 1

    def cond(state):
        _, changed, passes = state
        return changed & (passes < max_passes)

    def body(state):
        x_BxHxW, _, passes = state
        new_BxHxW = draw(pixelcnn_logits(params, x_BxHxW), u_BxHxW)
        return new_BxHxW, jnp.any(new_BxHxW != x_BxHxW), passes + 1

    x0 = jnp.zeros((batch, height, width), jnp.float32)
    x_BxHxW, _, passes = jax.lax.while_loop(cond, body, (x0, jnp.array(True), jnp.array(0)))
    return x_BxHxW, passes


# --- Counting (seed §4-1a) and analytic work.


def layer_connections(
    height: int, width: int, kernel: int, mask_type: str, c_in: int, c_out: int
) -> int:
    """Edges of one masked layer: unmasked taps × output positions whose tap lands inside."""
    r = kernel // 2
    mask = causal_mask(kernel, mask_type)
    positions = sum(
        max(height - abs(a - r), 0) * max(width - abs(b - r), 0)
        for a in range(kernel)
        for b in range(kernel)
        if mask[a, b]
    )
    return int(positions) * c_in * c_out


def connections(height: int, width: int, kernel: int, depth: int, channels: int) -> int:
    """Exact connection count of the whole network (d masked layers + the 1×1 read-out)."""
    _check_config(kernel, depth, channels)
    total = layer_connections(height, width, kernel, "A", 1, channels)
    total += (depth - 1) * layer_connections(height, width, kernel, "B", channels, channels)
    return total + height * width * channels


def connections_order(height: int, width: int, kernel: int, depth: int, channels: int) -> int:
    """The seed's order d·H·W·K² with each layer's C_in·C_out written out: H·W·K²·(C + (d−1)·C²).

    Exact count / this → (K² ± 1)/(2K²) ≈ ½ for H, W ≫ K (the mask keeps about half the taps).
    """
    return height * width * kernel**2 * (channels + (depth - 1) * channels**2)


def macs_per_pixel(kernel: int, depth: int, channels: int) -> int:
    """Multiply-accumulates to compute one pixel's logit from cached inputs (all layers)."""
    _check_config(kernel, depth, channels)
    first = n_taps(kernel, "A") * channels
    rest = (depth - 1) * n_taps(kernel, "B") * channels * channels
    return first + rest + channels


# --- The module.


class MaskedConv(nnx.Module):
    """A K×K convolution that owns only the taps its mask (A or B) lets through."""

    def __init__(
        self, in_features: int, out_features: int, kernel: int, *, mask_type: str, rngs: nnx.Rngs
    ):
        _check_config(kernel, depth=1, channels=min(in_features, out_features))
        n = n_taps(kernel, mask_type)
        self.kernel, self.mask_type = kernel, mask_type
        init = nnx.initializers.he_normal(in_axis=(0, 1), out_axis=2)
        self.w = nnx.Param(init(rngs.params(), (n, in_features, out_features)))
        self.b = nnx.Param(jnp.zeros((out_features,)))

    def __call__(self, x_BxHxWxI: jax.Array) -> jax.Array:
        return masked_conv(x_BxHxWxI, self.w[...], self.b[...], self.kernel)


class PixelCNN(nnx.Module):
    """d masked K×K conv layers of C channels (mask A, then B) and a 1×1 Bernoulli read-out."""

    def __init__(self, kernel: int, depth: int, channels: int, *, rngs: nnx.Rngs):
        _check_config(kernel, depth, channels)
        self.kernel, self.depth, self.channels = kernel, depth, channels
        self.layers = nnx.List(
            [
                MaskedConv(
                    1 if index == 0 else channels,
                    channels,
                    kernel,
                    mask_type=layer_mask_type(index),
                    rngs=rngs,
                )
                for index in range(depth)
            ]
        )
        self.head_w = nnx.Param(nnx.initializers.lecun_normal()(rngs.params(), (channels, 1))[:, 0])
        self.head_b = nnx.Param(jnp.zeros(()))

    @property
    def params(self) -> dict:
        return {
            "layers": [{"w": layer.w[...], "b": layer.b[...]} for layer in self.layers],
            "head": {"w": self.head_w[...], "b": self.head_b[...]},
        }

    def __call__(self, x_BxHxW: jax.Array) -> jax.Array:
        return pixelcnn_logits(self.params, x_BxHxW)


def nll_loss(model: PixelCNN, x_BxHxW: jax.Array) -> jax.Array:
    """The training objective for ``bench.nnx_adapters.train_step_fn``: NLL in nats per pixel."""
    return nll(model.params, x_BxHxW)
