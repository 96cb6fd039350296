"""A VGG-style convolutional net (Simonyan & Zisserman 2015), the model of the seed's §3-1.

The seed's network, on a 224×224×3 image, every convolution 3×3 with stride 1, SAME padding
and a bias, every pool 2×2 max with stride 2, ReLU after every layer but the last:

    conv3-64 → pool → conv3-128 → pool → conv3-256 → conv3-256 → pool → FC-1024 → FC-1000

Parameters (weights + biases), with S the image side after the three pools (224 / 8 = 28):

    conv: K²·C_in·C_out + C_out         1,792 / 73,856 / 295,168 / 590,080
    FC:   N_in·N_out + N_out            FC-1024: (S²·256)·1024 + 1024 = 205,521,920
                                        FC-1000: 1024·1000 + 1000 = 1,025,000
    total                               207,507,816 (99.04% of it in FC-1024)

FLOPs (``layer_table``, ``forward_flops``): a multiply-add counts as 2 FLOPs and only the
convolutions and dense layers are counted (2·MACs). A SAME convolution multiplies some taps
by the zero padding; those are not counted (as in XLA's cost analysis): along one axis of
size S, a K-tap kernel with padding p = (K-1)/2 has K·S - p(p+1) in-image (position, tap)
pairs, 3S - 2 for K = 3, instead of K·S. Bias adds, ReLUs and pools are left out: they are
O(activations), 0.2% of XLA's forward count at the seed's widths (1% of a training step).

    conv: 2·(3H-2)·(3W-2)·C_in·C_out          FC: 2·N_in·N_out            (per example)

(The full-window count 2·H·W·K²·C_in·C_out is larger by (3S/(3S-2))² per layer: 0.6% at
S = 224, 2.4% at S = 56, 19% at S = 8.)

A training step (``train_step_flops``) is forward + backward. The backward pass of each layer
is two products of the forward's size (gradient with respect to the weights, and with respect
to the layer's input), so a step is ≈ 3× the forward; exactly 3·F − F_conv1 here, because
the gradient with respect to the image is never formed. The optimizer's update is O(params)
and left out.

Layer names are ``conv1``.. ``convN`` and ``fc1``, ``fc2`` in network order.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import optax
from flax import nnx

POOL = "M"  # a 2×2 max-pool with stride 2 in a layer list (torchvision's VGG notation)
KERNEL = 3


SEED_LAYERS = (64, POOL, 128, POOL, 256, 256, POOL)  # the seed's convolutions and pools


def check_sizes(image_size: int, in_channels: int, num_classes: int, layers, fc_features: int):
    """Refuse sizes the net cannot have, with a message naming the bad one."""
    for name, value in (
        ("image_size", image_size),
        ("in_channels", in_channels),
        ("num_classes", num_classes),
        ("fc_features", fc_features),
    ):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    for entry in layers:
        if entry != POOL and (not isinstance(entry, int) or entry < 1):
            raise ValueError(f"layers entries must be positive ints or {POOL!r}, got {entry!r}")
    if not any(entry != POOL for entry in layers):
        raise ValueError("layers must contain at least one convolution")
    n_pools = tuple(layers).count(POOL)
    if image_size % 2**n_pools:
        raise ValueError(
            f"image_size {image_size} is not divisible by 2^{n_pools} ({n_pools} pools)"
        )


def widened(layers: tuple, mult: float) -> tuple:
    """``layers`` with every conv's channel count scaled by ``mult`` (at least 1)."""
    return tuple(e if e == POOL else max(1, round(e * mult)) for e in layers)


def max_pool_2x2(x_BxHxWxC: jax.Array) -> jax.Array:
    """2×2 max-pool with stride 2 (H and W even), as the maximum of the window's 4 corners.

    The same function as ``nnx.max_pool(x, (2, 2), strides=(2, 2))`` (reduce_window), but its
    gradient is elementwise selects rather than XLA's select_and_scatter, which XLA:CPU runs
    several times slower (``docs/design-notes.md``). At exact ties the gradient is shared
    instead of going to one element; ties only occur between ReLU zeros, whose gradient is
    zero either way.
    """
    b, h, w, c = x_BxHxWxC.shape
    x_BxHhx2xWhx2xC = x_BxHxWxC.reshape(b, h // 2, 2, w // 2, 2, c)
    top = jnp.maximum(x_BxHhx2xWhx2xC[:, :, 0, :, 0], x_BxHhx2xWhx2xC[:, :, 0, :, 1])
    bottom = jnp.maximum(x_BxHhx2xWhx2xC[:, :, 1, :, 0], x_BxHhx2xWhx2xC[:, :, 1, :, 1])
    return jnp.maximum(top, bottom)


def _in_image_taps(size: int) -> int:
    """(output position, kernel tap) pairs along one axis that read the image, not padding."""
    pad = (KERNEL - 1) // 2
    return KERNEL * size - pad * (pad + 1)


@dataclasses.dataclass(frozen=True)
class Layer:
    name: str
    out_shape: tuple  # per example, (H, W, C) or (N,)
    params: int
    flops: int  # forward, per example, 2·MACs


def layer_table(
    image_size: int = 224,
    in_channels: int = 3,
    num_classes: int = 1000,
    layers: tuple = SEED_LAYERS,
    fc_features: int = 1024,
) -> list[Layer]:
    """Analytic parameter count, output shape and forward FLOPs of each weighted layer."""
    check_sizes(image_size, in_channels, num_classes, layers, fc_features)
    size, channels, table = image_size, in_channels, []
    for entry in layers:
        if entry == POOL:
            size //= 2
            continue
        macs = _in_image_taps(size) ** 2 * channels * entry
        params = KERNEL**2 * channels * entry + entry
        table.append(Layer(f"conv{len(table) + 1}", (size, size, entry), params, 2 * macs))
        channels = entry
    n_in = size * size * channels
    for i, n_out in enumerate((fc_features, num_classes)):
        table.append(Layer(f"fc{i + 1}", (n_out,), n_in * n_out + n_out, 2 * n_in * n_out))
        n_in = n_out
    return table


def forward_flops(*, batch: int = 1, **sizes) -> int:
    """FLOPs (2·MACs of convs and dense layers) of one forward pass over ``batch`` images."""
    return batch * sum(layer.flops for layer in layer_table(**sizes))


def train_step_flops(*, batch: int = 1, **sizes) -> int:
    """FLOPs of forward + backward: 3× forward, less conv1's (unneeded) input gradient."""
    table = layer_table(**sizes)
    return batch * (3 * sum(layer.flops for layer in table) - table[0].flops)


class ConvNet(nnx.Module):
    """The VGG-style classifier; ``model(x_BxHxWxC)`` returns logits ``B×num_classes``."""

    def __init__(
        self,
        image_size: int = 224,
        in_channels: int = 3,
        num_classes: int = 1000,
        *,
        layers: tuple = SEED_LAYERS,
        fc_features: int = 1024,
        rngs: nnx.Rngs,
    ):
        check_sizes(image_size, in_channels, num_classes, layers, fc_features)
        self.image_size, self.in_channels, self.layers = image_size, in_channels, tuple(layers)
        convs, channels = [], in_channels
        for entry in self.layers:
            if entry != POOL:
                convs.append(nnx.Conv(channels, entry, (KERNEL, KERNEL), padding="SAME", rngs=rngs))
                channels = entry
        self.convs = nnx.List(convs)
        final_size = image_size // 2 ** self.layers.count(POOL)
        self.fc1 = nnx.Linear(final_size**2 * channels, fc_features, rngs=rngs)
        self.fc2 = nnx.Linear(fc_features, num_classes, rngs=rngs)

    def __call__(self, x_BxHxWxC: jax.Array) -> jax.Array:
        size, channels = self.image_size, self.in_channels
        if x_BxHxWxC.shape[1:] != (size, size, channels):
            raise ValueError(
                f"expected images (batch, {size}, {size}, {channels}), got {x_BxHxWxC.shape}"
            )
        x, convs = x_BxHxWxC, iter(self.convs)
        for entry in self.layers:
            if entry == POOL:
                x = max_pool_2x2(x)
            else:
                x = jax.nn.relu(next(convs)(x))
        x_BxN = x.reshape(x.shape[0], -1)
        return self.fc2(jax.nn.relu(self.fc1(x_BxN)))


def layer_param_counts(model: ConvNet) -> dict[str, int]:
    """Exact parameter count per layer, read from the module's ``nnx.Param`` leaves.

    Works on an abstract model from ``nnx.eval_shape`` (only shapes are read).
    """
    counts: dict[str, int] = {}
    for path, leaf in nnx.to_flat_state(nnx.state(model, nnx.Param)):
        name = f"conv{path[1] + 1}" if path[0] == "convs" else path[0]
        counts[name] = counts.get(name, 0) + int(leaf.size)
    return counts


def cross_entropy_loss(model: ConvNet, batch) -> jax.Array:
    """Mean softmax cross-entropy of integer labels.

    Labels go through a one-hot product rather than a gather, so the gradient has no
    scatter: the same value, and a jaxpr that ``bench.structure`` can count.
    """
    x, labels = batch
    logits = model(x)
    one_hot = jax.nn.one_hot(labels, logits.shape[-1], dtype=logits.dtype)
    return optax.softmax_cross_entropy(logits, one_hot).mean()


# Named sizes, as data: keyword arguments of ConvNet and of the counting functions above.
SEED = dict(image_size=224, in_channels=3, num_classes=1000, layers=SEED_LAYERS, fc_features=1024)
"""The seed's §3-1 network: 207,507,816 parameters (``ConvNet(**SEED, rngs=...)``)."""
