"""Seed §2-1 / §2-2: the LSTM's backward pass through time, written by hand, against autodiff.

The oracle is ``jax.grad``. For the per-step adjoints (h̄(t), c̄(t), ī(t), ...) it is
``jax.grad`` with respect to zero probes added to each intermediate (``lstm_scan_probed``),
which lets every equation of the seed be checked on its own, independently of our BPTT.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax.test_util import check_grads

from models.lstm import (
    LSTM,
    SequenceRegressor,
    adjoints_and_values,
    linear_loss,
    lstm_bptt,
    lstm_scan,
    lstm_scan_manual,
    lstm_scan_probed,
    lstm_scan_taped,
    mse_loss,
    random_problem,
    zero_probes,
)

# (batch, steps, in_features, hidden): generic; T = 1 with batch 1; hidden 1.
SHAPES = [(3, 5, 4, 6), (1, 1, 2, 3), (2, 4, 3, 1)]


def _problem(batch, steps, in_features, hidden, seed=0, dtype=np.float32):
    """Random parameters (gates away from saturation), inputs, initial state and cotangents."""
    return random_problem(batch, steps, in_features, hidden, dtype=dtype, seed=seed)


# L = Σ_t ⟨∂ℓ/∂h(t), h(t)⟩ + ⟨∂ℓ/∂h(T), h(T)⟩ + ⟨∂ℓ/∂c(T), c(T)⟩: a linear read-out of all
# outputs, so ∂L/∂h(t) direct is exactly ``dh``.
_loss = linear_loss


def _max_rel_err(actual, expected) -> float:
    """max |a - e| over all leaves, relative to the largest |e| (at least 1); in NumPy."""
    pairs = zip(jax.tree.leaves(actual), jax.tree.leaves(expected), strict=True)
    pairs = [(np.asarray(a), np.asarray(e)) for a, e in pairs]
    scale = max(1.0, *(np.abs(e).max() for _, e in pairs))
    return max(np.abs(a - e).max() for a, e in pairs) / scale


@jax.jit
def _manual_and_autodiff(params, x, carry, dh, dcarry):
    """The hand-written :class:`Grads` and jax.grad's (d params, d x, d carry)."""
    expected = jax.grad(_loss(lstm_scan, dh, dcarry), argnums=(0, 1, 2))(params, x, carry)
    return lstm_bptt(params, x, dh, carry, dcarry), expected


@pytest.mark.parametrize("shape", SHAPES)
def test_hand_written_bptt_equals_jax_grad_float32(shape):
    grads, expected = _manual_and_autodiff(*_problem(*shape))
    actual = (grads.params, grads.x, grads.carry)
    assert jax.tree.structure(actual) == jax.tree.structure(expected)
    assert _max_rel_err(actual, expected) <= 2e-6


def test_hand_written_bptt_equals_jax_grad_float64():
    with jax.enable_x64(True):
        grads, expected = _manual_and_autodiff(*_problem(*SHAPES[0], dtype=np.float64))
        assert grads.params["w_x"].dtype == jnp.float64
        assert _max_rel_err((grads.params, grads.x, grads.carry), expected) <= 1e-10


def _float64_problem_with_adjoints():
    """A float64 problem, autodiff's adjoints and the forward values, all as NumPy arrays."""
    with jax.enable_x64(True):
        problem = _problem(*SHAPES[0], dtype=np.float64)
        bar, values = adjoints_and_values(*problem)
        values = [values[k] for k in ("i", "f", "g", "o", "c", "c_prev")]
    return jax.tree.map(np.asarray, (problem, bar, values))


def test_zero_probes_reproduce_lstm_scan():
    params, x, carry, _, _ = _problem(*SHAPES[0])
    probes = zero_probes(*SHAPES[0][:2], SHAPES[0][3])
    only_c = {"c": probes["c"]}  # absent probes are zero

    @jax.jit
    def scans(p, x, c):
        return [lstm_scan_probed(p, x, pr, c)[1] for pr in (probes, only_c)], lstm_scan(p, x, c)[1]

    (probed, probed_c), plain = scans(params, x, carry)
    np.testing.assert_array_equal(probed, plain)
    np.testing.assert_array_equal(probed_c, plain)
    with pytest.raises(ValueError, match="unknown probes"):
        lstm_scan_probed(params, x, {"q": probes["c"]}, carry)


def test_per_step_adjoints_h_bar_c_bar_z_bar_equal_autodiff():
    problem, bar, _ = _float64_problem_with_adjoints()
    with jax.enable_x64(True):
        adjoints = _manual_and_autodiff(*problem)[0].adjoints
    for name in ("h", "c", "z"):
        assert _max_rel_err(adjoints[name], bar[name]) <= 1e-10, name


def test_seed_2_1_gate_equations_line_by_line():
    """Each §2-1 line, with autodiff's adjoints on both sides (our BPTT plays no part)."""
    (params, _, _, dh, dcarry), bar, (i, f, g, o, c, c_prev) = _float64_problem_with_adjoints()
    tanh_c = np.tanh(c)
    # c̄(t) = h̄(t) o(t)(1 - tanh² c(t)) + c̄(t+1) f(t+1), with c̄(T+1) f(T+1) := ∂ℓ/∂c(T)
    c_bar_next = np.concatenate([bar["c"][:, 1:] * f[:, 1:], dcarry[1][:, None]], axis=1)
    assert _max_rel_err(bar["h"] * o * (1 - tanh_c**2) + c_bar_next, bar["c"]) <= 1e-10
    assert _max_rel_err(bar["c"] * i, bar["g"]) <= 1e-10  # ḡ = c̄ i
    assert _max_rel_err(bar["h"] * tanh_c, bar["o"]) <= 1e-10  # ō = h̄ tanh c
    assert _max_rel_err(bar["c"] * c_prev, bar["f"]) <= 1e-10  # f̄ = c̄ c(t-1)
    # The seed's last line "ō(t) = c̄(t) g(t)" is ī(t), not ō(t).
    assert _max_rel_err(bar["c"] * g, bar["i"]) <= 1e-10
    assert _max_rel_err(bar["c"] * g, bar["o"]) > 0.1
    # z̄ = k̄ ⊙ k': σ' = σ(1 - σ), tanh' = 1 - tanh²; the seed's note (1-tanh²)/(1+tanh²) is not.
    zi, zf, zg, zo = np.split(bar["z"], 4, axis=-1)
    assert _max_rel_err(bar["i"] * i * (1 - i), zi) <= 1e-10
    assert _max_rel_err(bar["f"] * f * (1 - f), zf) <= 1e-10
    assert _max_rel_err(bar["o"] * o * (1 - o), zo) <= 1e-10
    assert _max_rel_err(bar["g"] * (1 - g**2), zg) <= 1e-10
    assert _max_rel_err(bar["g"] * (1 - g**2) / (1 + g**2), zg) > 1e-2
    # h̄(t) = ∂ℓ/∂h(t) + z̄(t+1) W_hᵀ (+ ∂ℓ/∂h(T) at t = T): the direct term is ∂ℓ/∂h(t),
    # where the seed writes dL/dC(t).
    h_bar_future = np.concatenate([bar["z"][:, 1:] @ params["w_h"].T, dcarry[0][:, None]], axis=1)
    assert _max_rel_err(dh + h_bar_future, bar["h"]) <= 1e-10
    assert _max_rel_err(bar["c"] + h_bar_future, bar["h"]) > 0.1


def test_seed_2_2_input_gate_weight_gradient():
    """W̄_xi = Σ_t x(t)ᵀ (c̄(t) ⊙ g(t) ⊙ i(t)(1-i(t))); the seed's Σ_t c̄ o(1-o) x̄ is not it."""
    problem, bar, (i, _, g, o, _, _) = _float64_problem_with_adjoints()
    params, x, carry, dh, dcarry = problem
    hidden = dh.shape[-1]
    with jax.enable_x64(True):
        _, expected = _manual_and_autodiff(*problem)
    w_xi_bar = expected[0]["w_x"][:, :hidden]
    corrected = np.einsum("bti,bth->ih", x, bar["c"] * g * i * (1 - i))
    as_written = np.einsum("bti,bth->ih", x, bar["c"] * o * (1 - o))
    assert _max_rel_err(corrected, w_xi_bar) <= 1e-10
    assert _max_rel_err(as_written, w_xi_bar) > 0.1


def test_custom_vjp_forward_is_lstm_scan_and_gradients_match():
    params, x, carry, dh, dcarry = _problem(*SHAPES[0])

    @jax.jit
    def both(params, x, carry):
        outs = lstm_scan(params, x, carry), lstm_scan_manual(params, x, carry)
        grads = [
            jax.grad(_loss(scan, dh, dcarry), argnums=(0, 1, 2))(params, x, carry)
            for scan in (lstm_scan, lstm_scan_manual)
        ]
        return outs, grads

    (out, out_manual), (grad, grad_manual) = both(params, x, carry)
    np.testing.assert_array_equal(out_manual[1], out[1])
    assert _max_rel_err(grad_manual, grad) <= 2e-6


def test_check_grads_on_custom_vjp_float64():
    with jax.enable_x64(True):
        params, x, carry, _, _ = _problem(2, 4, 3, 2, seed=3, dtype=np.float64)
        check_grads(
            jax.jit(lstm_scan_manual),
            (params, x, carry),
            order=1,
            modes=["rev"],
            atol=1e-6,
            rtol=1e-6,
        )


def test_module_manual_backward_gives_the_autodiff_loss_and_gradients():
    """``SequenceRegressor(..., backward="manual")``: the same loss and parameter gradients."""
    x = jax.random.normal(jax.random.key(1), (2, 6, 3))
    y = jax.random.normal(jax.random.key(2), (2, 6, 2))
    results = {}
    for backward in ("autodiff", "manual"):
        model = SequenceRegressor(3, 5, 2, backward=backward, rngs=nnx.Rngs(0))
        results[backward] = nnx.jit(nnx.value_and_grad(mse_loss))(model, (x, y))
    (loss_a, grads_a), (loss_m, grads_m) = results["autodiff"], results["manual"]
    assert abs(float(loss_a) - float(loss_m)) <= 1e-6 * abs(float(loss_a))
    assert float(jnp.max(jnp.abs(grads_a["lstm"]["w_h"][...]))) > 1e-4  # a real gradient
    assert _max_rel_err(grads_m, grads_a) <= 2e-6


def test_both_backward_passes_run_the_same_forward_step():
    """The hand-written backward's forward (its tape) is lstm_scan's, value for value."""
    params, x, carry, _, _ = _problem(*SHAPES[0])
    (final, h), tape = jax.jit(lstm_scan_taped)(params, x, carry)
    final_ref, h_ref = jax.jit(lstm_scan)(params, x, carry)
    np.testing.assert_array_equal(h, h_ref)
    np.testing.assert_array_equal(final[1], final_ref[1])
    np.testing.assert_array_equal(jnp.swapaxes(tape.steps.h, 0, 1), h_ref)


def test_invalid_backward_raises():
    with pytest.raises(ValueError, match="backward must be one of"):
        LSTM(3, 4, backward="numeric", rngs=nnx.Rngs(0))
