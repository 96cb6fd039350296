"""models/lstm.py forward: the equations of the seed's §2, checked against a NumPy loop."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from models.lstm import LSTM, SequenceRegressor
from tests.models.helpers import n_params


def numpy_lstm(w_x, w_h, b, x_BxTxI):
    """The cell equations written out one gate at a time, one time step at a time."""
    sigmoid = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    hidden = w_h.shape[0]
    batch, steps, _ = x_BxTxI.shape
    h = np.zeros((batch, hidden))
    c = np.zeros((batch, hidden))
    hs = []
    for t in range(steps):
        z = x_BxTxI[:, t] @ w_x + h @ w_h + b
        i = sigmoid(z[:, :hidden])
        f = sigmoid(z[:, hidden : 2 * hidden])
        g = np.tanh(z[:, 2 * hidden : 3 * hidden])
        o = sigmoid(z[:, 3 * hidden :])
        c = f * c + i * g
        h = o * np.tanh(c)
        hs.append(h)
    return np.stack(hs, axis=1)


@pytest.mark.parametrize(
    "batch, steps, features, hidden", [(3, 7, 5, 4), (1, 1, 1, 1), (2, 20, 3, 6)]
)
def test_lstm_matches_a_numpy_loop_with_the_same_weights(batch, steps, features, hidden):
    model = LSTM(features, hidden, rngs=nnx.Rngs(0))
    x = jax.random.normal(jax.random.key(1), (batch, steps, features))
    p = {k: np.asarray(v, np.float64) for k, v in model.params.items()}
    expected = numpy_lstm(p["w_x"], p["w_h"], p["b"], np.asarray(x, np.float64))
    with jax.default_matmul_precision("highest"):
        got = model(x)
    assert got.shape == (batch, steps, hidden) and got.dtype == jnp.float32
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_output_is_finite_and_jit_agrees_with_eager():
    model = SequenceRegressor(4, 8, 3, rngs=nnx.Rngs(0))
    x = jax.random.normal(jax.random.key(2), (2, 9, 4))
    eager = model(x)
    jitted = nnx.jit(lambda m, x: m(x))(model, x)
    assert eager.shape == (2, 9, 3)
    assert bool(jnp.isfinite(eager).all())
    np.testing.assert_allclose(jitted, eager, rtol=1e-6, atol=1e-6)


def test_parameter_count_is_four_gates_plus_readout():
    features, hidden, out = 64, 256, 8
    model = SequenceRegressor(features, hidden, out, rngs=nnx.Rngs(0))
    gates = 4 * (features * hidden + hidden * hidden + hidden)
    assert n_params(model) == gates + hidden * out + out == 330_760


def test_forget_gate_bias_starts_at_one():
    b = LSTM(2, 3, rngs=nnx.Rngs(0)).params["b"]
    np.testing.assert_array_equal(b, [0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0])


@pytest.mark.parametrize("features, hidden", [(0, 4), (4, 0), (4, -1)])
def test_invalid_sizes_raise_a_clear_error(features, hidden):
    with pytest.raises(ValueError, match="must be a positive integer"):
        LSTM(features, hidden, rngs=nnx.Rngs(0))
