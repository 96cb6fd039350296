"""A 3-unit threshold RNN that adds two binary numbers: the seed's §1.

The task (Grosse's CSC321 "binary addition" exercise): two numbers arrive one bit per time
step, least-significant bit first, as x(t) = (a_t, b_t); the network must emit the bit y(t)
of the sum at the same step. With the step function H(z) = 1 if z > 0 else 0, column
vectors and h(0) = 0, the network is

    h(t) = H(W_xh x(t) + W_hh h(t-1) + b_h)        W_xh: 3×2, W_hh: 3×3, b_h: 3
    y(t) = H(W_hy · h(t) + b_y)                    W_hy: 3, b_y: scalar

and the seed's weights (``SEED_WEIGHTS``) are

    W_xh = [[1, 1], [1, 1], [1, 1]]     W_hh = [[0, 1, 0], [0, 1, 0], [0, 1, 0]]
    b_h  = (-0.1, -1.1, -2.1)           W_hy = (1, -1, 1)           b_y = -0.1

Why they work. Every row of W_hh picks h_2(t-1), so each unit sees the same count
s(t) = a_t + b_t + h_2(t-1) ∈ {0, 1, 2, 3} and fires on a threshold of it:
h_1 = [s ≥ 1], h_2 = [s ≥ 2], h_3 = [s ≥ 3]. Thus h_2(t) is exactly the carry out of column
t (carry = ⌊s/2⌋), and h_1 - h_2 + h_3 = 0, 1, 0, 1 for s = 0, 1, 2, 3, i.e. s mod 2, so
y(t) = H(s mod 2 - 0.1) is the sum bit. Every pre-activation is at least 0.1 away from the
threshold, so the tie convention at z = 0 never matters. The weights are right *with the
column-vector convention* W_hh h(t-1) the seed writes; the row-vector form h(t-1) W_hh (what
``h @ w`` computes) would feed unit 2 the sum h_1 + h_2 + h_3 and break the carry, so the
code below uses ``h @ W_hh.T``. An n-bit addition needs n + 1 steps: the final carry is
emitted at step n + 1 from an input of zeros.

The weights are stored as ``nnx.Param`` (22 scalars): they are the network's parameters,
set by hand. The step function has zero derivative almost everywhere, so they are not
learnable by gradient descent; nothing in this project trains them.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

MAX_BITS = 31  # int32 arithmetic in the int <-> bits helpers


def heaviside(z: jax.Array) -> jax.Array:
    """H(z) = 1 if z > 0 else 0, in the dtype of z."""
    return (z > 0).astype(z.dtype)


def int_to_bits(x: jax.Array, n_bits: int) -> jax.Array:
    """Non-negative integers (any shape S) -> float32 bits of shape S + (n_bits,), LSB first."""
    if not 1 <= n_bits <= MAX_BITS:
        raise ValueError(f"n_bits must be in 1..{MAX_BITS}, got {n_bits}")
    x = jnp.asarray(x, jnp.int32)
    return ((x[..., None] >> jnp.arange(n_bits, dtype=jnp.int32)) & 1).astype(jnp.float32)


def bits_to_int(bits: jax.Array) -> jax.Array:
    """LSB-first 0/1 bits of shape S + (n,) -> int32 integers of shape S."""
    n_bits = bits.shape[-1]
    if not 1 <= n_bits <= MAX_BITS:
        raise ValueError(f"at most {MAX_BITS} bits fit an int32, got {n_bits}")
    weights = jnp.left_shift(1, jnp.arange(n_bits, dtype=jnp.int32))
    return jnp.sum(jnp.asarray(bits).astype(jnp.int32) * weights, axis=-1)


@dataclasses.dataclass(frozen=True)
class AdderWeights:
    """A full set of weights for the 3-unit adder, as nested tuples (column-vector convention)."""

    w_xh: tuple  # (3, 2)
    w_hh: tuple  # (3, 3); row i holds the weights *into* unit i
    b_h: tuple  # (3,)
    w_hy: tuple  # (3,)
    b_y: float


SHAPES = {"w_xh": (3, 2), "w_hh": (3, 3), "b_h": (3,), "w_hy": (3,), "b_y": ()}


def adder_step(params: dict, h_Bx3: jax.Array, xw_Bx3: jax.Array):
    """One step given the precomputed input drive ``W_xh x(t) + b_h``. Returns (h(t), y(t))."""
    h_Bx3 = heaviside(xw_Bx3 + h_Bx3 @ params["w_hh"].T)  # W_hh h(t-1), column-vector form
    y_B = heaviside(h_Bx3 @ params["w_hy"] + params["b_y"])
    return h_Bx3, y_B


def adder_scan(params: dict, x_BxTx2: jax.Array) -> jax.Array:
    """Run the adder over time from h(0) = 0; returns the output bits y_BxT."""
    batch = x_BxTx2.shape[0]
    h0 = jnp.zeros((batch, 3), params["w_hh"].dtype)
    # The input drive does not depend on the recurrence: one einsum for all T steps.
    xw_TxBx3 = jnp.einsum("bti,hi->tbh", x_BxTx2, params["w_xh"]) + params["b_h"]
    _, y_TxB = jax.lax.scan(lambda h, xw: adder_step(params, h, xw), h0, xw_TxBx3)
    return y_TxB.T


class BinaryAdderRNN(nnx.Module):
    """The hand-wired threshold RNN; ``model(x_BxTx2)`` returns the sum bits ``y_BxT``.

    ``x_BxTx2[..., 0]`` and ``[..., 1]`` are the two addends' bits, LSB first, as 0./1.
    floats. ``rngs`` is accepted for a uniform constructor and unused: nothing is random.
    """

    def __init__(self, weights: AdderWeights | None = None, *, rngs: nnx.Rngs | None = None):
        weights = SEED_WEIGHTS if weights is None else weights
        for name, shape in SHAPES.items():
            got = np.shape(getattr(weights, name))
            if got != shape:
                raise ValueError(f"{name} must have shape {shape}, got {got}")
        self.w_xh = nnx.Param(jnp.asarray(weights.w_xh, jnp.float32))
        self.w_hh = nnx.Param(jnp.asarray(weights.w_hh, jnp.float32))
        self.b_h = nnx.Param(jnp.asarray(weights.b_h, jnp.float32))
        self.w_hy = nnx.Param(jnp.asarray(weights.w_hy, jnp.float32))
        self.b_y = nnx.Param(jnp.asarray(weights.b_y, jnp.float32))

    @property
    def params(self) -> dict:
        return {name: getattr(self, name)[...] for name in SHAPES}

    def __call__(self, x_BxTx2: jax.Array) -> jax.Array:
        if x_BxTx2.ndim != 3 or x_BxTx2.shape[-1] != 2:
            raise ValueError(f"expected bits of shape (batch, time, 2), got {x_BxTx2.shape}")
        return adder_scan(self.params, x_BxTx2.astype(jnp.float32))


def add(model: BinaryAdderRNN, a: jax.Array, b: jax.Array, n_bits: int) -> jax.Array:
    """a + b for n_bits-bit non-negative integers (broadcast together), computed by the network.

    Bits of a and b above n_bits - 1 are ignored. The network runs n_bits + 1 steps, the last
    on zero inputs, so the final carry comes out as bit n_bits of the result.
    """
    if not 1 <= n_bits < MAX_BITS:
        raise ValueError(f"n_bits must be in 1..{MAX_BITS - 1}, got {n_bits}")
    a, b = jnp.broadcast_arrays(jnp.asarray(a, jnp.int32), jnp.asarray(b, jnp.int32))
    x_BxNx2 = jnp.stack([int_to_bits(a.ravel(), n_bits), int_to_bits(b.ravel(), n_bits)], -1)
    x_BxTx2 = jnp.pad(x_BxNx2, ((0, 0), (0, 1), (0, 0)))  # T = n_bits + 1
    return bits_to_int(model(x_BxTx2)).reshape(a.shape)


# Named weight sets, as data.
SEED_WEIGHTS = AdderWeights(
    w_xh=((1.0, 1.0), (1.0, 1.0), (1.0, 1.0)),
    w_hh=((0.0, 1.0, 0.0), (0.0, 1.0, 0.0), (0.0, 1.0, 0.0)),
    b_h=(-0.1, -1.1, -2.1),
    w_hy=(1.0, -1.0, 1.0),
    b_y=-0.1,
)
# The seed's W_hh read in the row-vector convention h(t-1) W_hh (i.e. transposed): all of
# h(t-1) flows into unit 2 only. Kept as a negative control that the exhaustive check rejects.
SEED_WEIGHTS_ROW_CONVENTION = dataclasses.replace(
    SEED_WEIGHTS, w_hh=((0.0, 0.0, 0.0), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0))
)
