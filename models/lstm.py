"""LSTM (Hochreiter & Schmidhuber 1997), the model of the seed's §2, with its backward pass.

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

Backward: ``lstm_bptt`` is backpropagation through time written by hand from the seed's §2-1
and §2-2 equations (corrected where the seed slips; see its docstring), as a reverse
``lax.scan``; ``lstm_scan_manual`` is ``lstm_scan`` with that backward pass attached as a
``jax.custom_vjp``. ``LSTM(..., backward="manual")`` uses it, ``"autodiff"`` (default) lets JAX
differentiate the scan. ``lstm_scan_probed`` adds zero-valued probes to every intermediate so
that ``jax.grad`` with respect to the probes gives the per-step adjoints h̄(t), c̄(t), ī(t), ...:
the autodiff oracle for each equation separately.

Speed: the input projection x(t)·W_x does not depend on the recurrence, so it could be one
(B·T, I)×(I, 4H) matmul before the scan. On XLA:CPU that hoisting makes the forward and the
gradient two to three times slower than projecting x(t) inside each step: the scan then
slices a large (T, B, 4H) operand per step (the measurement: ``docs/design-notes.md``). So
:func:`lstm_step` projects per step, and both backward passes run that same forward
(:func:`lstm_steps`): the hand-written one keeps every step's values on its :class:`Tape`, as
autodiff keeps its residuals, so the two differ only in the backward. That backward keeps the
parallel form: only h̄ and c̄ are recurrent, and every weight gradient is one 2-D matmul over
all (t, b) after the reverse scan. The forward also emits c(t-1) per step, so the backward
never shifts a (T, B, H) array by concatenation (on XLA:CPU that copy, and one for h(t-1),
cost a noticeable part of a train step).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx


def _check_positive(**sizes: int) -> None:
    for name, value in sizes.items():
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _zero_carry(x_BxTxI: jax.Array, hidden: int):
    zeros = jnp.zeros((x_BxTxI.shape[0], hidden), x_BxTxI.dtype)
    return zeros, zeros


def _input_projection(params: dict, x_BxTxI: jax.Array) -> jax.Array:
    """x(t)·W_x + b for all t at once, time-major: (T, B, 4H)."""
    return jnp.einsum("bti,ig->tbg", x_BxTxI, params["w_x"]) + params["b"]


def gates(z_Bx4H: jax.Array):
    """Split fused pre-activations into (i, f, g, o) after their nonlinearities."""
    zi, zf, zg, zo = jnp.split(z_Bx4H, 4, axis=-1)
    return jax.nn.sigmoid(zi), jax.nn.sigmoid(zf), jnp.tanh(zg), jax.nn.sigmoid(zo)


class StepValues(NamedTuple):
    """What one time step computes, each (B, H): the new state and the four gates."""

    h: jax.Array
    c: jax.Array
    i: jax.Array
    f: jax.Array
    g: jax.Array
    o: jax.Array


def cell_update(c_prev: jax.Array, i, f, g, o):
    """c(t) = f ⊙ c(t-1) + i ⊙ g and h(t) = o ⊙ tanh c(t), given the gates. Returns (h, c)."""
    c = f * c_prev + i * g
    return o * jnp.tanh(c), c


def lstm_cell(w_h: jax.Array, carry, xw_Bx4H: jax.Array):
    """One step given its input projection ``x(t)·W_x + b``: the new (h, c) and the gates."""
    h, c = carry
    i, f, g, o = gates(xw_Bx4H + h @ w_h)
    h, c = cell_update(c, i, f, g, o)
    return (h, c), StepValues(h, c, i, f, g, o)


def lstm_step(params: dict, carry, x_BxI: jax.Array):
    """One time step: x(t) is projected inside the step (see the module docstring)."""
    return lstm_cell(params["w_h"], carry, x_BxI @ params["w_x"] + params["b"])


def lstm_steps(params: dict, x_BxTxI: jax.Array, carry):
    """The forward pass, the same for both backward passes: :func:`lstm_step` scanned over
    time. Returns the final (h, c), every step's :class:`StepValues` and the cell state each
    step started from, c(t-1), all time-major (T, B, H) (values a caller does not use are
    dead code to XLA)."""

    def step(carry, x_BxI):
        new_carry, values = lstm_step(params, carry, x_BxI)
        return new_carry, (values, carry[1])

    carry, (values, c_prev_TxBxH) = jax.lax.scan(step, carry, jnp.swapaxes(x_BxTxI, 0, 1))
    return carry, values, c_prev_TxBxH


def lstm_scan(params: dict, x_BxTxI: jax.Array, carry=None):
    """Run the LSTM over time. Returns ``(final (h, c), h_BxTxH)``."""
    if carry is None:
        carry = _zero_carry(x_BxTxI, params["w_h"].shape[0])
    carry, values, _ = lstm_steps(params, x_BxTxI, carry)
    return carry, jnp.swapaxes(values.h, 0, 1)


# --- Backward pass through time, by hand (seed §2-1, §2-2) ---------------------------------


class Tape(NamedTuple):
    """What the forward pass keeps for the backward pass: the inputs, the initial state,
    every step's :class:`StepValues` and c(t-1) (time-major), as autodiff keeps its
    residuals."""

    x_BxTxI: jax.Array
    h0: jax.Array
    c0: jax.Array
    steps: StepValues
    c_prev: jax.Array


class Grads(NamedTuple):
    """Result of :func:`lstm_bptt`.

    ``params``: ∂L/∂{w_x, w_h, b}; ``x``: ∂L/∂x (B, T, I); ``carry``: (∂L/∂h(0), ∂L/∂c(0));
    ``adjoints``: the per-step total derivatives h̄(t), c̄(t) (B, T, H) and the pre-activation
    gradients z̄(t) = (ī⊙σ'(z_i), f̄⊙σ'(z_f), ḡ⊙tanh'(z_g), ō⊙σ'(z_o)) (B, T, 4H).
    """

    params: dict
    x: jax.Array
    carry: tuple
    adjoints: dict


def lstm_scan_taped(params: dict, x_BxTxI: jax.Array, carry):
    """``lstm_scan`` (the same forward, :func:`lstm_steps`) that also returns the
    :class:`Tape` the backward pass needs."""
    h0, c0 = carry
    carry, steps, c_prev_TxBxH = lstm_steps(params, x_BxTxI, carry)
    return (carry, jnp.swapaxes(steps.h, 0, 1)), Tape(x_BxTxI, h0, c0, steps, c_prev_TxBxH)


def previous_states(tape: Tape):
    """(h(t-1), c(t-1)) for t = 1..T, time-major (T, B, H)."""
    h_prev_TxBxH = jnp.concatenate([tape.h0[None], tape.steps.h[:-1]], axis=0)
    return h_prev_TxBxH, tape.c_prev


def preactivations(params: dict, tape: Tape) -> jax.Array:
    """z(t) = x(t) W_x + h(t-1) W_h + b for all t at once (T, B, 4H): no recurrence left."""
    h_prev_TxBxH, _ = previous_states(tape)
    return _input_projection(params, tape.x_BxTxI) + h_prev_TxBxH @ params["w_h"]


def bptt_step(w_h: jax.Array, carry, inputs):
    """One reverse step t of backpropagation through time (equations in :func:`lstm_bptt`).

    ``carry`` = (z̄(t+1) W_hᵀ, c̄(t+1) ⊙ f(t+1)), the parts of h̄(t) and c̄(t) coming from step
    t+1; ``inputs`` = (∂ℓ/∂h(t), i, f, g, o, c(t), c(t-1)) at step t.
    """
    h_bar_next, c_bar_next = carry
    dh, i, f, g, o, c, c_prev = inputs
    tanh_c = jnp.tanh(c)
    h_bar = dh + h_bar_next
    c_bar = h_bar * o * (1 - tanh_c**2) + c_bar_next
    i_bar = c_bar * g
    f_bar = c_bar * c_prev
    g_bar = c_bar * i
    o_bar = h_bar * tanh_c
    z_bar = jnp.concatenate(
        [i_bar * i * (1 - i), f_bar * f * (1 - f), g_bar * (1 - g**2), o_bar * o * (1 - o)],
        axis=-1,
    )
    return (z_bar @ w_h.T, c_bar * f), (h_bar, c_bar, z_bar)


def bptt_from_tape(params: dict, tape: Tape, dcarry, dh_TxBxH: jax.Array) -> Grads:
    """The backward pass of :func:`lstm_bptt` given the forward's :class:`Tape`."""
    w_x, w_h = params["w_x"], params["w_h"]
    s = tape.steps
    steps, batch, hidden = s.h.shape
    inputs = (dh_TxBxH, s.i, s.f, s.g, s.o, s.c, tape.c_prev)
    (h0_bar, c0_bar), (h_bar, c_bar, z_bar_TxBx4H) = jax.lax.scan(
        lambda cr, xs: bptt_step(w_h, cr, xs), dcarry, inputs, reverse=True
    )
    # Weight gradients: one 2-D matmul each over all (t, b), on flattened time-major arrays.
    z_bar_TBx4H = z_bar_TxBx4H.reshape(steps * batch, 4 * hidden)
    x_TBxI = jnp.swapaxes(tape.x_BxTxI, 0, 1).reshape(steps * batch, -1)
    # Σ_t h(t-1)ᵀ z̄(t) = h(0)ᵀ z̄(1) + Σ_{t≥2} h(t-1)ᵀ z̄(t): contiguous slices, no shifted copy.
    h_TBxH = s.h.reshape(steps * batch, hidden)
    d_params = {
        "w_x": x_TBxI.T @ z_bar_TBx4H,
        "w_h": tape.h0.T @ z_bar_TxBx4H[0] + h_TBxH[:-batch].T @ z_bar_TBx4H[batch:],
        "b": z_bar_TBx4H.sum(axis=0),
    }
    dx_BxTxI = jnp.swapaxes((z_bar_TBx4H @ w_x.T).reshape(steps, batch, -1), 0, 1)
    adjoints = {
        name: jnp.swapaxes(a, 0, 1) for name, a in (("h", h_bar), ("c", c_bar), ("z", z_bar_TxBx4H))
    }
    return Grads(d_params, dx_BxTxI, (h0_bar, c0_bar), adjoints)


def lstm_bptt(
    params: dict, x_BxTxI: jax.Array, dh_BxTxH: jax.Array, carry=None, dcarry=None
) -> Grads:
    """Backpropagation through time by hand: all gradients of L given ∂ℓ/∂h(t) for every t.

    ``dh_BxTxH`` is the upstream cotangent ∂ℓ/∂h(t) of the h sequence (the loss's direct
    dependence on each h(t)); ``dcarry`` = (∂ℓ/∂h(T), ∂ℓ/∂c(T)) on the final state (default 0).
    Writing k'(t) for the derivative of gate k's nonlinearity at its pre-activation
    (σ' = k(1-k) for i, f, o; tanh' = 1-g² for g), for t = T, ..., 1, with the step-(T+1) terms
    replaced by ``dcarry``; column-vector maths as in the module docstring, weight gradients
    in the code's layout (``w_x`` is (I, 4H), so its gradient is Σ x(t)ᵀ z̄(t) for row vectors):

        h̄(t) = ∂ℓ/∂h(t) + Σ_{k∈{i,f,g,o}} W_hkᵀ (k̄(t+1) ⊙ k'(t+1))     (code: z̄(t+1) W_hᵀ)
        c̄(t) = h̄(t) ⊙ o(t) ⊙ (1 - tanh² c(t)) + c̄(t+1) ⊙ f(t+1)
        ī(t) = c̄(t) ⊙ g(t)        f̄(t) = c̄(t) ⊙ c(t-1)
        ḡ(t) = c̄(t) ⊙ i(t)        ō(t) = h̄(t) ⊙ tanh c(t)
        z̄(t) = (ī ⊙ i(1-i), f̄ ⊙ f(1-f), ḡ ⊙ (1-g²), ō ⊙ o(1-o))  at t
        W̄_x = Σ_t x(t)ᵀ z̄(t)      W̄_h = Σ_t h(t-1)ᵀ z̄(t)      b̄ = Σ_t z̄(t)
        x̄(t) = z̄(t) W_xᵀ          h̄(0) = z̄(1) W_hᵀ            c̄(0) = c̄(1) ⊙ f(1)

    (sums also run over the batch.) In particular the seed's §2-2 input-gate weights are the
    i-block of W̄_x:  W̄_xi = Σ_t x(t)ᵀ (c̄(t) ⊙ g(t) ⊙ i(t)(1 - i(t))).

    Where the seed slips (autodiff confirms the right-hand versions, see the tests):

    §2-1 h̄(t)
      * seed writes "[+ dL/dC(t) if loss function has h(t) term]"; correct is
        "+ ∂ℓ/∂h(t)", the loss's direct partial with respect to h(t), not anything about c.
      * seed writes "≈" between the two first lines; it is an equality.
      * seed annotates σ' as "σ(x) = σ(x)(1-σ(x))"; correct is σ'(x) = σ(x)(1-σ(x)).
      * seed annotates tanh' as "tanh(x) = (1-tanh²x)/(1+tanh²x)"; correct is
        tanh'(x) = 1 - tanh²(x) (the factor it actually uses, 1 - tanh²(w_xg x(t+1) + w_hg h(t)),
        is right apart from the missing bias b_g).
      * the scalar products "· w_hk" are, for vectors, multiplication by W_hkᵀ (column form).
    §2-1 gates
      * c̄(t), ḡ(t) = c̄ ⊙ i, ō(t) = h̄ ⊙ tanh c(t) and f̄(t) = c̄ ⊙ c(t-1) are right (h̄(t) being
        the total derivative, including the path through the gates of step t+1).
      * seed writes ō(t) a second time as "ō(t) = c̄(t) · g(t)"; that line is ī(t) = c̄(t) ⊙ g(t).
    §2-2 W̄_xi
      * seed writes Σ_t ∂L/∂i(t) · do(t)/dw_xi = Σ_t c̄(t) · o(t)(1-o(t)) · x̄(t); correct is
        Σ_t ∂L/∂i(t) · di(t)/dW_xi = Σ_t x(t)ᵀ (c̄(t) ⊙ g(t) ⊙ i(t)(1-i(t))): the derivative of i,
        not o (σ' at the input gate, i(1-i), not o(1-o)); the factor g(t) of ī = c̄ ⊙ g is
        missing; and x(t) is the input, not a gradient x̄(t).
    """
    hidden = params["w_h"].shape[0]
    if carry is None:
        carry = _zero_carry(x_BxTxI, hidden)
    if dcarry is None:
        dcarry = _zero_carry(x_BxTxI, hidden)
    _, tape = lstm_scan_taped(params, x_BxTxI, carry)
    return bptt_from_tape(params, tape, dcarry, jnp.swapaxes(dh_BxTxH, 0, 1))


@jax.custom_vjp
def _lstm_scan_manual(params: dict, x_BxTxI: jax.Array, carry):
    return lstm_scan(params, x_BxTxI, carry)


def _lstm_scan_manual_fwd(params, x_BxTxI, carry):
    out, tape = lstm_scan_taped(params, x_BxTxI, carry)
    return out, (params, tape)


def _lstm_scan_manual_bwd(residuals, cotangent):
    params, tape = residuals
    dcarry, dh_BxTxH = cotangent
    grads = bptt_from_tape(params, tape, dcarry, jnp.swapaxes(dh_BxTxH, 0, 1))
    return grads.params, grads.x, grads.carry


_lstm_scan_manual.defvjp(_lstm_scan_manual_fwd, _lstm_scan_manual_bwd)


def lstm_scan_manual(params: dict, x_BxTxI: jax.Array, carry=None):
    """:func:`lstm_scan` whose gradient is the hand-written :func:`lstm_bptt` (custom_vjp)."""
    if carry is None:
        carry = _zero_carry(x_BxTxI, params["w_h"].shape[0])
    return _lstm_scan_manual(params, x_BxTxI, carry)


# --- Probes: the autodiff oracle for each per-step adjoint -----------------------------------

PROBE_NAMES = ("z", "i", "f", "g", "o", "c", "h")


def zero_probes(batch: int, steps: int, hidden: int, dtype=jnp.float32) -> dict:
    """Zero probes for :func:`lstm_scan_probed`: "z" is (B, T, 4H), the others (B, T, H)."""
    return {
        name: jnp.zeros((batch, steps, 4 * hidden if name == "z" else hidden), dtype)
        for name in PROBE_NAMES
    }


def lstm_scan_probed(params: dict, x_BxTxI: jax.Array, probes: dict, carry=None):
    """:func:`lstm_scan` with an additive probe after every intermediate of every step.

        z(t) += p_z(t);  i, f, g, o (t) += p_i, p_f, p_g, p_o (t);  c(t) += p_c(t);  h(t) += p_h(t)

    With zero probes it computes exactly what ``lstm_scan`` computes, and ∂L/∂p_k(t) is the
    total derivative of L with respect to k(t): h̄(t), c̄(t), ī(t), ..., z̄(t), by autodiff.
    ``probes`` may hold any subset of :data:`PROBE_NAMES` (B, T, ·); absent ones are zero.
    """
    unknown = set(probes) - set(PROBE_NAMES)
    if unknown:
        raise ValueError(f"unknown probes {sorted(unknown)}; allowed: {PROBE_NAMES}")
    w_h = params["w_h"]
    if carry is None:
        carry = _zero_carry(x_BxTxI, w_h.shape[0])
    probes_T = {name: jnp.swapaxes(p, 0, 1) for name, p in probes.items()}

    def step(cr, inputs):
        x_BxI, probe = inputs
        p = {name: probe.get(name, 0.0) for name in PROBE_NAMES}
        h, c = cr
        i, f, g, o = gates(x_BxI @ params["w_x"] + params["b"] + h @ w_h + p["z"])
        i, f, g, o = i + p["i"], f + p["f"], g + p["g"], o + p["o"]
        c = f * c + i * g + p["c"]
        h = o * jnp.tanh(c) + p["h"]
        return (h, c), h

    carry, h_TxBxH = jax.lax.scan(step, carry, (jnp.swapaxes(x_BxTxI, 0, 1), probes_T))
    return carry, jnp.swapaxes(h_TxBxH, 0, 1)


# --- Autodiff oracles for checking a backward pass ---------------------------------------------


def random_problem(batch, seq_len, features, hidden, *, dtype, seed=0):
    """Params with gates away from saturation, inputs, initial state, cotangents (NumPy RNG)."""
    rng = np.random.default_rng(seed)  # NumPy: the same problem on every JAX version

    def normal(*shape, scale=1.0):
        return jnp.asarray(scale * rng.standard_normal(shape), dtype)

    params = {
        "w_x": normal(features, 4 * hidden, scale=features**-0.5),
        "w_h": normal(hidden, 4 * hidden, scale=hidden**-0.5),
        "b": normal(4 * hidden, scale=0.5),
    }
    x = normal(batch, seq_len, features)
    carry = (normal(batch, hidden, scale=0.5), normal(batch, hidden))
    dh = normal(batch, seq_len, hidden)
    dcarry = (normal(batch, hidden), normal(batch, hidden))
    return params, x, carry, dh, dcarry


def linear_loss(scan, dh, dcarry):
    """L = Σ_t ⟨dh(t), h(t)⟩ + ⟨dh_T, h(T)⟩ + ⟨dc_T, c(T)⟩, so ∂ℓ/∂h(t) direct is ``dh``."""

    def loss(params, x, carry):
        (h_T, c_T), h = scan(params, x, carry)
        return jnp.sum(dh * h) + jnp.sum(dcarry[0] * h_T) + jnp.sum(dcarry[1] * c_T)

    return loss


@jax.jit
def adjoints_and_values(params, x, carry, dh, dcarry):
    """Autodiff's ∂L/∂k(t) for every intermediate k (B, T, ·), and the forward's values."""

    def loss(probes):
        scan = lambda p, xx, cr: lstm_scan_probed(p, xx, probes, cr)  # noqa: E731
        return linear_loss(scan, dh, dcarry)(params, x, carry)

    bar = jax.grad(loss)(zero_probes(*dh.shape, dh.dtype))
    _, tape = lstm_scan_taped(params, x, carry)
    _, c_prev = previous_states(tape)
    s = tape.steps
    values = dict(i=s.i, f=s.f, g=s.g, o=s.o, c=s.c, c_prev=c_prev)
    return bar, {k: jnp.swapaxes(v, 0, 1) for k, v in values.items()}


# --- Modules ---------------------------------------------------------------------------------

# How the gradient of the scan is obtained: JAX's autodiff, or the hand-written BPTT.
BACKWARDS = {"autodiff": lstm_scan, "manual": lstm_scan_manual}


def _check_backward(backward: str) -> None:
    if backward not in BACKWARDS:
        raise ValueError(f"backward must be one of {sorted(BACKWARDS)}, got {backward!r}")


class LSTM(nnx.Module):
    """A single-layer LSTM over a (batch, time, features) sequence, returning all h(t).

    ``backward="manual"`` computes the same forward with the hand-written backward pass
    (:func:`lstm_scan_manual`); ``"autodiff"`` lets JAX differentiate the scan.
    """

    def __init__(
        self,
        in_features: int,
        hidden: int,
        *,
        forget_bias: float = 1.0,
        backward: str = "autodiff",
        rngs: nnx.Rngs,
    ):
        _check_positive(in_features=in_features, hidden=hidden)
        _check_backward(backward)
        self.in_features, self.hidden, self.backward = in_features, hidden, backward
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
        return BACKWARDS[self.backward](self.params, x_BxTxI)[1]


class SequenceRegressor(nnx.Module):
    """LSTM + per-step linear read-out: the benchmark's trainable model (MSE loss)."""

    def __init__(
        self,
        in_features: int,
        hidden: int,
        out_features: int,
        *,
        backward: str = "autodiff",
        rngs: nnx.Rngs,
    ):
        _check_positive(out_features=out_features)
        self.lstm = LSTM(in_features, hidden, backward=backward, rngs=rngs)
        self.readout = nnx.Linear(hidden, out_features, rngs=rngs)

    def __call__(self, x_BxTxI: jax.Array) -> jax.Array:
        return self.readout(self.lstm(x_BxTxI))


def mse_loss(model: nnx.Module, batch) -> jax.Array:
    x, y = batch
    return jnp.mean((model(x) - y) ** 2)
