"""The LSTM suite (bench/suites/lstm.py): its GPU peer, cuDNN's LSTM, is our LSTM in cuDNN's
weight layout; on a CPU it is absent from the cases, with the reason shown by `list`."""

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import rnn

from bench.cli import main
from bench.suites.lstm import cases, cudnn_weights, unavailable
from models.lstm import lstm_scan, random_problem


def test_our_parameters_in_cudnns_layout_are_our_lstm_under_cudnns_reference():
    batch, steps, features, hidden = 3, 7, 4, 5
    params, x, _, _, _ = random_problem(batch, steps, features, hidden, dtype=np.float32)
    w_ih, w_hh, b_ih, b_hh = rnn.unpack_lstm_weights(
        cudnn_weights(params), features, hidden, 1, False
    )
    zeros = jnp.zeros((1, batch, hidden))
    lengths = jnp.full((batch,), steps, jnp.int32)
    y, h_n, c_n = rnn.lstm_ref(
        x, zeros, zeros, w_ih, w_hh, b_ih, b_hh, lengths, features, hidden, 1, 0.0, False
    )
    (h_T, c_T), h = jax.jit(lstm_scan)(params, x)
    np.testing.assert_allclose(y, h, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(c_n[0], c_T, atol=1e-5, rtol=1e-5)


def test_on_a_cpu_the_cudnn_variant_is_absent_and_list_says_why(capsys):
    if jax.default_backend() == "gpu":  # a GPU runs it; nothing is absent there
        assert unavailable() == {}
        return
    assert "CUDA GPU" in unavailable()["cudnn"]
    assert not any(c.variant == "cudnn" for c in cases("smoke"))
    assert main(["list"]) == 0
    assert "variant cudnn is absent here: needs a CUDA GPU" in capsys.readouterr().out
