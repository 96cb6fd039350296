"""LSTM (Hochreiter & Schmidhuber 1997), the model of the seed's §2.

For input x(t) and previous state (h(t-1), c(t-1)), with σ the logistic function:

    i(t) = σ(W_xi x(t) + W_hi h(t-1) + b_i)        input gate
    f(t) = σ(W_xf x(t) + W_hf h(t-1) + b_f)        forget gate
    g(t) = tanh(W_xg x(t) + W_hg h(t-1) + b_g)     candidate cell
    o(t) = σ(W_xo x(t) + W_ho h(t-1) + b_o)        output gate
    c(t) = f(t) ⊙ c(t-1) + i(t) ⊙ g(t)
    h(t) = o(t) ⊙ tanh(c(t))

The four gates are fused: ``w_x`` is (I, 4H), ``w_h`` is (H, 4H), ``b`` is (4H,), gate order
i, f, g, o along the last axis. The maths lives in pure functions of a parameter dict
(``lstm_step``, ``lstm_scan``) so that the hand-derived backward pass of the seed's §2 can
sit beside them; :class:`LSTM` is the NNX module that owns the parameters.

Speed: the input projection x(t)·W_x does not depend on the recurrence, so it is computed for
all T steps as one (B·T, I)×(I, 4H) matmul before the scan; only h(t-1)·W_h stays inside it.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx


def _check_positive(**sizes: int) -> None:
    for name, value in sizes.items():
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


def gates(z_Bx4H: jax.Array):
    """Split fused pre-activations into (i, f, g, o) after their nonlinearities."""
    zi, zf, zg, zo = jnp.split(z_Bx4H, 4, axis=-1)
    return jax.nn.sigmoid(zi), jax.nn.sigmoid(zf), jnp.tanh(zg), jax.nn.sigmoid(zo)


def lstm_step(w_h: jax.Array, carry, xw_Bx4H: jax.Array):
    """One time step given the precomputed input projection ``x(t)·W_x + b``."""
    h, c = carry
    i, f, g, o = gates(xw_Bx4H + h @ w_h)
    c = f * c + i * g
    h = o * jnp.tanh(c)
    return (h, c), h


def lstm_scan(params: dict, x_BxTxI: jax.Array, carry=None):
    """Run the LSTM over time. Returns ``(final (h, c), h_BxTxH)``."""
    batch, hidden = x_BxTxI.shape[0], params["w_h"].shape[0]
    if carry is None:
        zeros = jnp.zeros((batch, hidden), x_BxTxI.dtype)
        carry = (zeros, zeros)
    xw_TxBx4H = jnp.einsum("bti,ig->tbg", x_BxTxI, params["w_x"]) + params["b"]
    carry, h_TxBxH = jax.lax.scan(lambda cr, xw: lstm_step(params["w_h"], cr, xw), carry, xw_TxBx4H)
    return carry, jnp.swapaxes(h_TxBxH, 0, 1)


class LSTM(nnx.Module):
    """A single-layer LSTM over a (batch, time, features) sequence, returning all h(t)."""

    def __init__(self, in_features: int, hidden: int, *, forget_bias: float = 1.0, rngs: nnx.Rngs):
        _check_positive(in_features=in_features, hidden=hidden)
        self.in_features, self.hidden = in_features, hidden
        init = nnx.initializers.lecun_normal()
        self.w_x = nnx.Param(init(rngs.params(), (in_features, 4 * hidden)))
        self.w_h = nnx.Param(nnx.initializers.orthogonal()(rngs.params(), (hidden, 4 * hidden)))
        # Forget-gate bias 1 is the usual initialisation (Jozefowicz et al. 2015).
        b = jnp.zeros((4 * hidden,)).at[hidden : 2 * hidden].set(forget_bias)
        self.b = nnx.Param(b)

    @property
    def params(self) -> dict:
        return {"w_x": self.w_x[...], "w_h": self.w_h[...], "b": self.b[...]}

    def __call__(self, x_BxTxI: jax.Array) -> jax.Array:
        return lstm_scan(self.params, x_BxTxI)[1]


class SequenceRegressor(nnx.Module):
    """LSTM + per-step linear read-out: the benchmark's trainable model (MSE loss)."""

    def __init__(self, in_features: int, hidden: int, out_features: int, *, rngs: nnx.Rngs):
        _check_positive(out_features=out_features)
        self.lstm = LSTM(in_features, hidden, rngs=rngs)
        self.readout = nnx.Linear(hidden, out_features, rngs=rngs)

    def __call__(self, x_BxTxI: jax.Array) -> jax.Array:
        return self.readout(self.lstm(x_BxTxI))


def mse_loss(model: nnx.Module, batch) -> jax.Array:
    x, y = batch
    return jnp.mean((model(x) - y) ** 2)
