"""models/deer.py: the LSTM by Newton iterations parallel over time, against the sequential scan.

The oracle is ``models.lstm.lstm_scan`` (one ``lax.scan`` step per time step) for values and
``jax.grad`` of it for gradients; the Jacobians are checked against ``jax.jacfwd``. For the
binary adder the oracle is ``adder_scan``.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from models.binary_adder import SEED_WEIGHTS, BinaryAdderRNN, adder_scan, int_to_bits
from models.deer import adder_fixed_point, linearise, lstm_deer, transition
from models.lstm import lstm_scan

# (batch, steps, in_features, hidden): generic; T = 1; H = 1 over a longer sequence.
SHAPES = [(2, 37, 3, 4), (1, 1, 2, 3), (1, 64, 1, 1)]
JACOBIANS = ["full", "diagonal"]


def _problem(batch, steps, in_features, hidden, *, seed=0, w_scale=1.0, dtype=np.float32):
    """Random parameters (W ~ N(0, 1/fan-in)), inputs, initial state and output cotangents."""
    rng = np.random.default_rng(seed)
    normal = lambda *shape: rng.normal(size=shape)  # noqa: E731
    params = {
        "w_x": normal(in_features, 4 * hidden) / np.sqrt(in_features),
        "w_h": w_scale * normal(hidden, 4 * hidden) / np.sqrt(hidden),
        "b": 0.1 * normal(4 * hidden),
    }
    x = normal(batch, steps, in_features)
    carry = (0.5 * normal(batch, hidden), 0.5 * normal(batch, hidden))
    cotangents = (normal(batch, steps, hidden), normal(batch, hidden), normal(batch, hidden))
    return jax.tree.map(lambda a: jnp.asarray(a, dtype), (params, x, carry, cotangents))


def _rel_err(actual, expected) -> float:
    """max |a - e| over all leaves, relative to the largest |e| (at least 1)."""
    pairs = [
        (np.asarray(a), np.asarray(e))
        for a, e in zip(*map(jax.tree.leaves, (actual, expected)), strict=True)
    ]
    scale = max(1.0, *(np.abs(e).max() for _, e in pairs))
    return max(np.abs(a - e).max() for a, e in pairs) / scale


def _loss(fn, cotangents):
    """L = Σ_t ⟨dh(t), h(t)⟩ + ⟨dh_T, h(T)⟩ + ⟨dc_T, c(T)⟩: every output is read. ``fn``
    returns (outputs, stats); the loss returns them as its auxiliary output."""
    dh, dh_T, dc_T = cotangents

    def loss(params, x, carry):
        ((h_T, c_T), h), stats = fn(params, x, carry)
        value = jnp.sum(dh * h) + jnp.sum(dh_T * h_T) + jnp.sum(dc_T * c_T)
        return value, (((h_T, c_T), h), stats)

    return loss


SOLVERS = {
    "scan": lambda params, x, carry: (lstm_scan(params, x, carry), None),
    **{j: functools.partial(lstm_deer, jacobian=j) for j in JACOBIANS},
}


# --- The Jacobians ---------------------------------------------------------------------------


@pytest.mark.parametrize("hidden", [1, 5])
def test_jacobian_and_its_diagonal_equal_jacfwd_of_the_lstm_step(hidden):
    params, x, carry, _ = _problem(3, 1, 2, hidden)
    s_prev = jnp.concatenate(carry, axis=-1)
    xw = x[:, 0] @ params["w_x"] + params["b"]
    step = lambda s, xw: transition(params["w_h"], s, xw)  # noqa: E731
    expected = jax.jit(jax.vmap(jax.jacfwd(step)))(s_prev, xw)
    value, full = jax.jit(linearise, static_argnums=3)(params["w_h"], s_prev, xw, "full")
    _, diagonal = jax.jit(linearise, static_argnums=3)(params["w_h"], s_prev, xw, "diagonal")
    assert full.shape == (3, 2 * hidden, 2 * hidden) and diagonal.shape == (3, 2 * hidden)
    np.testing.assert_allclose(full, expected, atol=1e-6)
    np.testing.assert_allclose(diagonal, jnp.diagonal(expected, axis1=-2, axis2=-1), atol=1e-6)
    np.testing.assert_allclose(value, step(s_prev, xw), rtol=1e-6, atol=1e-7)


# --- Values and gradients --------------------------------------------------------------------


@jax.jit
def _solve_and_differentiate(params, x, carry, cotangents):
    """For lstm_scan and lstm_deer (both variants): the outputs, the Newton stats and
    jax.grad of the loss with respect to (params, x, carry); one compiled program per shape."""
    out = {}
    for name, fn in SOLVERS.items():
        loss = _loss(fn, cotangents)
        grads, aux = jax.grad(loss, argnums=(0, 1, 2), has_aux=True)(params, x, carry)
        out[name] = (*aux, grads)
    return out


@pytest.fixture(scope="module")
def float32_results():
    return {shape: _solve_and_differentiate(*_problem(*shape)) for shape in SHAPES}


@pytest.mark.parametrize("jacobian", JACOBIANS)
@pytest.mark.parametrize("shape", SHAPES)
def test_float32_values_equal_the_sequential_scan(float32_results, shape, jacobian):
    (carry, h), stats, _ = float32_results[shape][jacobian]
    (carry_ref, h_ref), _, _ = float32_results[shape]["scan"]
    batch, steps, _, hidden = shape
    assert h.shape == (batch, steps, hidden) and h.dtype == jnp.float32
    assert bool(stats.converged) and 1 <= int(stats.iterations) <= steps
    assert _rel_err(h, h_ref) <= 1e-5  # every h(t)
    assert _rel_err(carry, carry_ref) <= 1e-5  # final h(T), c(T)
    assert float(stats.residual) <= 1e-5


@pytest.mark.parametrize("jacobian", JACOBIANS)
@pytest.mark.parametrize("shape", SHAPES)
def test_float32_gradients_equal_jax_grad_of_the_scan(float32_results, shape, jacobian):
    """Implicit differentiation (custom VJP) against autodiff through the sequential scan."""
    *_, grads = float32_results[shape][jacobian]
    *_, expected = float32_results[shape]["scan"]
    assert jax.tree.structure(grads) == jax.tree.structure(expected)
    assert _rel_err(grads, expected) <= 1e-5


def test_float64_values_and_gradients_equal_the_sequential_scan():
    with jax.enable_x64(True):
        results = _solve_and_differentiate(*_problem(*SHAPES[0], dtype=np.float64))
        (carry_ref, h_ref), _, grads_ref = results["scan"]
        for jacobian in JACOBIANS:
            (carry, h), stats, grads = results[jacobian]
            assert h.dtype == jnp.float64 and grads[0]["w_h"].dtype == jnp.float64
            assert bool(stats.converged)
            assert _rel_err(h, h_ref) <= 1e-10, jacobian
            assert _rel_err(carry, carry_ref) <= 1e-10, jacobian
            assert _rel_err(grads, grads_ref) <= 1e-10, jacobian


def test_full_newton_needs_fewer_iterations_than_the_diagonal(float32_results):
    """Newton converges quadratically, quasi-Newton linearly: on the same problem, fewer."""
    iterations = {j: float32_results[SHAPES[0]][j][1].iterations for j in JACOBIANS}
    assert 1 < int(iterations["full"]) < int(iterations["diagonal"])


def test_a_non_finite_trajectory_is_reported_as_diverged():
    """A NaN anywhere stops the iteration with converged False (XLA:CPU's max can drop NaNs)."""
    params, x, carry, cotangents = _problem(*SHAPES[0])
    results = _solve_and_differentiate(params, x.at[0, 5, 0].set(jnp.nan), carry, cotangents)
    for jacobian in JACOBIANS:
        _, stats, _ = results[jacobian]
        assert not bool(stats.converged) and np.isnan(float(stats.update))
        assert int(stats.iterations) < SHAPES[0][1]


# --- The triangular structure and the cap ----------------------------------------------------


@pytest.mark.parametrize("jacobian", JACOBIANS)
def test_capped_before_convergence_reported_with_the_first_k_states_exact(jacobian):
    """Not converging within the cap is a result, not an error. Whatever the Jacobian,
    iteration k fixes state k: after k iterations the first k states are exact."""
    params, x, carry, _ = _problem(2, 40, 2, 4, w_scale=3.0)
    _, h_ref = lstm_scan(params, x, carry)
    k = 3
    (_, h), stats = lstm_deer(params, x, carry, jacobian=jacobian, max_iter=k)
    assert int(stats.iterations) == k and not bool(stats.converged)
    assert float(stats.update) > 1e-6 and float(stats.residual) > 1e-6
    assert np.abs(h[:, :k] - h_ref[:, :k]).max() <= 1e-6
    assert np.abs(h[:, k:] - h_ref[:, k:]).max() > 1e-3


def test_a_cap_above_t_is_cut_to_t_where_the_result_is_exact():
    """Still updating at k = T (slow quasi-Newton): stopped there, exact by construction."""
    params, x, carry, _ = _problem(1, 6, 2, 3, w_scale=3.0)
    (_, h), stats = lstm_deer(params, x, carry, jacobian="diagonal", max_iter=100)
    assert float(stats.update) > 1e-6  # the update criterion alone would go on
    assert int(stats.iterations) == 6 and bool(stats.converged)
    assert _rel_err(h, lstm_scan(params, x, carry)[1]) <= 1e-6


@pytest.mark.slow
def test_overflow_is_reported_as_diverged():
    """Newton's linear recurrence multiplies T Jacobians; expanding ones overflow float32."""
    params, x, carry, _ = _problem(1, 2000, 2, 8, w_scale=8.0)
    (_, h), stats = lstm_deer(params, x, carry, jacobian="full", max_iter=5)
    assert not bool(stats.converged)
    assert np.isnan(float(stats.update)) and np.isnan(float(stats.residual))
    assert int(stats.iterations) < 5  # a non-finite update stops the loop


@pytest.mark.parametrize(
    "options, message",
    [
        ({"jacobian": "dense"}, "jacobian"),
        ({"max_iter": 0}, "max_iter"),
        ({"tol": 0.0}, "tol"),
    ],
)
def test_invalid_options_raise(options, message):
    params, x, carry, _ = _problem(1, 3, 2, 2)
    with pytest.raises(ValueError, match=message):
        lstm_deer(params, x, carry, **options)


# --- The binary adder: Newton degenerates into the Jacobi sweep -------------------------------


def _adder_inputs(pairs, n_bits):
    a, b = (jnp.asarray(v, jnp.int32) for v in zip(*pairs, strict=True))
    x = jnp.stack([int_to_bits(a, n_bits), int_to_bits(b, n_bits)], axis=-1)
    return jnp.pad(x, ((0, 0), (0, 1), (0, 0)))  # T = n + 1: the last step emits the carry


def _sweeps_needed(x_BxTx2) -> int:
    """2 + D to reach the fixed point, D the longest run of propagate columns (a ≠ b) after a
    generate column (a = b = 1); 1 if nothing generates a carry; plus one sweep to see it."""
    needed = 1
    for row in np.asarray(x_BxTx2, int):
        run = None
        for a, b in row:
            run = 0 if a == b == 1 else (run + 1 if a != b and run is not None else None)
            if run is not None:
                needed = max(needed, 2 + run)
    return needed + 1


ADDER_BITS, ADDER_BATCH = 16, 8


@functools.partial(jax.jit, static_argnames="max_iter")
def _adder_both_ways(x_BxTx2, max_iter=None):
    """The sweep's sum bits and stats, and adder_scan's bits (the seed's weights)."""
    params = BinaryAdderRNN(SEED_WEIGHTS).params
    return *adder_fixed_point(params, x_BxTx2, max_iter), adder_scan(params, x_BxTx2)


def _padded(pairs):
    """``pairs`` then (0, 0) rows up to the batch size: one input shape, one compilation."""
    pairs = list(map(tuple, pairs))
    return _adder_inputs(pairs + [(0, 0)] * (ADDER_BATCH - len(pairs)), ADDER_BITS)


@pytest.mark.parametrize(
    "pairs",
    [np.random.default_rng(0).integers(0, 2**ADDER_BITS, size=(ADDER_BATCH, 2)), [(5, 2)]],
    ids=["random", "no-carry"],
)
def test_adder_fixed_point_adds_and_needs_the_predicted_number_of_sweeps(pairs):
    x = _padded(pairs)
    y, stats, expected = _adder_both_ways(x)
    np.testing.assert_array_equal(y, expected)
    assert int(stats.iterations) == _sweeps_needed(x) and bool(stats.converged)


def test_adder_worst_case_carry_chain_needs_t_sweeps():
    """(2ⁿ - 1) + 1: the carry crosses every column, one column per sweep."""
    x = _padded([(2**ADDER_BITS - 1, 1)])
    y, stats, expected = _adder_both_ways(x)
    np.testing.assert_array_equal(y, expected)
    assert int(stats.iterations) == ADDER_BITS + 1 == x.shape[1] and bool(stats.converged)
    _, capped, _ = _adder_both_ways(x, max_iter=ADDER_BITS)
    assert int(capped.iterations) == ADDER_BITS and not bool(capped.converged)
