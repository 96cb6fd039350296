"""Residual blocks with and without identity mapping, the model of the seed's §3-2.

Three blocks built from the same layers (two 3×3 convolutions of width C, two BatchNorms,
ReLU) that differ only in where the shortcut and the nonlinearity sit. With F the residual
branch and BN, conv, relu applied right to left:

    post-act (He et al. 2015, "Deep Residual Learning for Image Recognition"):
        x_{l+1} = relu(x_l + BN(conv(relu(BN(conv(x_l))))))
    pre-act  (He et al. 2016, "Identity Mappings in Deep Residual Networks"):
        x_{l+1} = x_l + conv(relu(BN(conv(relu(BN(x_l))))))
    plain    (the same layers as post-act, no shortcut):
        x_{l+1} = relu(BN(conv(relu(BN(conv(x_l))))))

The seed's claim (§3-2) is that the identity-mapping block is easier to train because its
gradients neither vanish nor explode. The reason given by He et al. 2016: unrolling the
pre-act recursion from block l to block L,

    x_L = x_l + Σ_{k=l}^{L-1} F_k(x_k),    ∂ℓ/∂x_l = ∂ℓ/∂x_L · (I + ∂/∂x_l Σ_k F_k(x_k)),

so the gradient at every block contains ∂ℓ/∂x_L itself, untouched by any weight or mask. In
post-act each step is ∂x_{l+1}/∂x_l = D_l (I + ∂F_l/∂x_l) with D_l the 0/1 mask of the ReLU
after the add; in the plain stack only the product of the ∂F_l/∂x_l remains. Whether that
matters at a given depth is measured (``bench/suites/resnet.py``), not assumed.

Network: a 3×3 stem convolution to width C, N blocks of width C at full resolution, global
average pooling and a linear classifier. The one extra BatchNorm + ReLU sits where each paper
puts it: after the stem for post-act and plain (conv→BN→ReLU, He 2015), before the pooling
for pre-act (the last sum still needs BN→ReLU, He 2016). So all three variants have exactly

    9·I·C (stem) + N·(2·9·C² + 2·2C) (blocks) + 2C (extra norm) + C·K + K (head)

parameters. Convolutions have no bias (each is followed by a BatchNorm, or in pre-act feeds a
sum whose next BatchNorm removes any constant) and He-normal weights, as in both papers.

Normalisation: BatchNorm in training mode (statistics of the current batch), the papers'
choice. It is what makes the gradient-at-init comparison meaningful: the claim is about these
networks as trained, and BatchNorm's batch statistics shape their gradients (it rescales the
residual branch relative to the growing shortcut, and a plain BatchNorm stack is known to
have gradients that grow with depth at init, Yang et al. 2019); a norm-free network would
instead measure the initialisation scale. Its state is handled the NNX way: every BatchNorm
owns ``nnx.BatchStat`` running averages, updated on each call in training mode (the default,
``model.train()``) and used instead of batch statistics in ``model.eval()``. Because a
sample's output depends on the rest of its batch in training mode, ∂ℓ/∂x includes the
cross-sample terms, which is what training sees. Variances are computed in two passes:
activations grow along a residual stack and E[x²] − E[x]² loses precision in float32.

The N blocks share one shape, so their parameters are stacked on a leading axis (the layout
``nnx.vmap`` would create) and applied with ``nnx.scan``: compile time does not grow with N,
and the BatchNorm running averages of all blocks are carried out of the scan as stacked state.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
from flax import nnx

KERNEL = 3  # every convolution is 3×3, "SAME" padding, stride 1
# He et al. 2015's initialisation, N(0, 2/fan_in), untruncated as in the paper; the head
# N(0, 1/fan_in).
HE_NORMAL = nnx.initializers.variance_scaling(2.0, "fan_in", "normal")
HEAD_NORMAL = nnx.initializers.variance_scaling(1.0, "fan_in", "normal")


def _check_positive(**sizes: int) -> None:
    for name, value in sizes.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _conv(in_channels: int, out_channels: int, rngs: nnx.Rngs) -> nnx.Conv:
    return nnx.Conv(
        in_channels,
        out_channels,
        kernel_size=(KERNEL, KERNEL),
        padding="SAME",
        use_bias=False,
        kernel_init=HE_NORMAL,
        rngs=rngs,
    )


def _norm(width: int, rngs: nnx.Rngs) -> nnx.BatchNorm:
    return nnx.BatchNorm(width, use_running_average=False, use_fast_variance=False, rngs=rngs)


def _stack(modules: list[nnx.Module]) -> nnx.Module:
    """One module whose arrays are the modules' arrays stacked on a new leading axis.

    This is the layout ``nnx.vmap`` gives a module created under it (same graphdef, every
    leaf with a leading axis of length N). Building the blocks one at a time keeps one shape
    per random draw whatever N: run eagerly, JAX compiles a PRNG kernel per shape (seconds
    each on a CPU), and only the cheap stacking is compiled per N.
    """
    graphdef, _ = nnx.split(modules[0])
    states = [nnx.split(m)[1] for m in modules]
    stacked = jax.tree.map(lambda *xs: jnp.stack(xs), *states)
    return nnx.merge(graphdef, stacked)


class _Block(nnx.Module):
    """The layers every variant owns: conv1, norm1, conv2, norm2 (width C → C)."""

    pre_activation = False  # whether the block starts with norm→relu (He 2016)

    def __init__(self, width: int, *, rngs: nnx.Rngs):
        _check_positive(width=width)
        self.conv1 = _conv(width, width, rngs)
        self.norm1 = _norm(width, rngs)
        self.conv2 = _conv(width, width, rngs)
        self.norm2 = _norm(width, rngs)


class PostActBlock(_Block):
    """He et al. 2015: conv→BN→relu→conv→BN, add the shortcut, relu after the add."""

    pre_activation = False

    def __call__(self, x_BxHxWxC: jax.Array) -> jax.Array:
        h = x_BxHxWxC
        h = self.conv1(h)
        h = self.norm1(h)
        h = nnx.relu(h)
        h = self.conv2(h)
        h = self.norm2(h)
        return nnx.relu(x_BxHxWxC + h)


class PreActBlock(_Block):
    """He et al. 2016: BN→relu→conv→BN→relu→conv, add the shortcut, nothing after the add."""

    pre_activation = True

    def __call__(self, x_BxHxWxC: jax.Array) -> jax.Array:
        h = x_BxHxWxC
        h = self.norm1(h)
        h = nnx.relu(h)
        h = self.conv1(h)
        h = self.norm2(h)
        h = nnx.relu(h)
        h = self.conv2(h)
        return x_BxHxWxC + h


class PlainBlock(_Block):
    """The post-act layers without the shortcut: conv→BN→relu→conv→BN→relu."""

    pre_activation = False

    def __call__(self, x_BxHxWxC: jax.Array) -> jax.Array:
        h = x_BxHxWxC
        h = self.conv1(h)
        h = self.norm1(h)
        h = nnx.relu(h)
        h = self.conv2(h)
        h = self.norm2(h)
        return nnx.relu(h)


class ResNet(nnx.Module):
    """Stem conv, ``n_blocks`` residual (or plain) blocks of one width, pooled linear head.

    Input ``x_BxHxWxI`` (NHWC), output logits ``(B, n_classes)``. ``variant`` names a block in
    :data:`VARIANTS`.
    """

    def __init__(
        self,
        in_channels: int,
        width: int,
        n_blocks: int,
        n_classes: int,
        *,
        variant: str = "pre-act",
        rngs: nnx.Rngs,
    ):
        _check_positive(
            in_channels=in_channels, width=width, n_blocks=n_blocks, n_classes=n_classes
        )
        if variant not in VARIANTS:
            raise ValueError(f"unknown variant {variant!r}; available: {', '.join(VARIANTS)}")
        block_cls = VARIANTS[variant]
        self.variant, self.width, self.n_blocks = variant, width, n_blocks
        self.pre_activation = block_cls.pre_activation
        self.stem = _conv(in_channels, width, rngs)
        self.norm = _norm(width, rngs)  # after the stem (post-act, plain) or before the head

        self.blocks = _stack([block_cls(width, rngs=rngs) for _ in range(n_blocks)])
        self.head = nnx.Linear(width, n_classes, kernel_init=HEAD_NORMAL, rngs=rngs)

    def __call__(self, x_BxHxWxI: jax.Array, probe_LxBxHxWxC: jax.Array | None = None):
        """Logits. ``probe`` (optional, L = N + 1) is added to the input x_l of block l and,
        last, to the head's input x_N; passed as zeros, it leaves the output unchanged and
        ``jax.grad`` with respect to it reads ∂ℓ/∂x_l at every block.
        """
        h = self.stem(x_BxHxWxI)
        if not self.pre_activation:
            h = nnx.relu(self.norm(h))
        if probe_LxBxHxWxC is None:
            h = _scan_blocks(h, self.blocks)
        else:
            h = _scan_blocks_probed(h, self.blocks, probe_LxBxHxWxC[:-1])
            h = h + probe_LxBxHxWxC[-1]
        if self.pre_activation:
            h = nnx.relu(self.norm(h))
        return self.head(jnp.mean(h, axis=(1, 2)))


@nnx.scan(in_axes=(nnx.Carry, 0), out_axes=nnx.Carry)
def _scan_blocks(h, block):
    return block(h)


@nnx.scan(in_axes=(nnx.Carry, 0, 0), out_axes=nnx.Carry)
def _scan_blocks_probed(h, block, probe_BxHxWxC):
    return block(h + probe_BxHxWxC)


def forward_flops(
    batch: int, image: int, in_channels: int, width: int, n_blocks: int, n_classes: int
) -> int:
    """FLOPs (2 per multiply-add) of the convolutions and the head on image × image inputs.

    Stem 9·I·C and 2N block convolutions of 9·C² multiply-adds per pixel (every tap of the
    padded convolution, as it is computed), head C·K per sample; normalisation, ReLU, adds
    and pooling (O(B·H·W·C·N)) are left out.
    """
    pixels = batch * image * image
    return 2 * pixels * KERNEL**2 * (in_channels * width + 2 * n_blocks * width**2) + (
        2 * batch * width * n_classes
    )


def train_step_flops(
    batch: int, image: int, in_channels: int, width: int, n_blocks: int, n_classes: int
) -> int:
    """Forward + backward: each layer's weight gradient and input gradient cost one forward
    each, except the stem's input gradient (the image needs none)."""
    sizes = (batch, image, in_channels, width, n_blocks, n_classes)
    stem = 2 * batch * image * image * KERNEL**2 * in_channels * width
    return 3 * forward_flops(*sizes) - stem


def cross_entropy_loss(model: ResNet, batch, probe_LxBxHxWxC: jax.Array | None = None):
    """Mean softmax cross-entropy of integer labels: the benchmark's training objective.

    Labels go through a one-hot product rather than a gather, so the gradient has no scatter
    (a jaxpr that ``bench.structure`` can count); the value is the same.
    """
    x, labels = batch
    logits = model(x, probe_LxBxHxWxC)
    one_hot = jax.nn.one_hot(labels, logits.shape[-1], dtype=logits.dtype)
    return optax.softmax_cross_entropy(logits, one_hot).mean()


# The variants compared by the seed's §3-2, by name.
VARIANTS: dict[str, type[_Block]] = {
    "post-act": PostActBlock,
    "pre-act": PreActBlock,
    "plain": PlainBlock,
}
