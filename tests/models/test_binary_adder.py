"""Seed §1: a 3-hidden-unit threshold RNN with hand-set weights adds binary numbers (claim C1)."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from models.binary_adder import (
    SEED_WEIGHTS,
    SEED_WEIGHTS_ROW_CONVENTION,
    AdderWeights,
    BinaryAdderRNN,
    add,
    adder_step,
    bits_to_int,
    int_to_bits,
)
from tests.models.helpers import n_params

add_jit = jax.jit(add, static_argnums=3)  # one compile per n_bits instead of eager dispatch


def all_pairs(n_bits):
    a, b = np.meshgrid(np.arange(2**n_bits), np.arange(2**n_bits), indexing="ij")
    return jnp.asarray(a.ravel()), jnp.asarray(b.ravel())


def test_weights_are_the_seeds():
    p = BinaryAdderRNN().params
    np.testing.assert_array_equal(p["w_xh"], np.ones((3, 2), np.float32))
    np.testing.assert_array_equal(p["w_hh"], np.array([[0, 1, 0]] * 3, np.float32))
    np.testing.assert_array_equal(p["b_h"], np.array([-0.1, -1.1, -2.1], np.float32))
    np.testing.assert_array_equal(p["w_hy"], np.array([1, -1, 1], np.float32))
    np.testing.assert_array_equal(p["b_y"], np.float32(-0.1))


def test_parameter_count_is_22():
    # W_xh 3x2 + W_hh 3x3 + b_h 3 + W_hy 3 + b_y 1
    assert n_params(BinaryAdderRNN()) == 22


def test_one_step_truth_table():
    """Each unit thresholds s = a + b + carry; h_2 is the carry and y = s mod 2."""
    params = BinaryAdderRNN().params
    for a, b, carry in itertools.product((0, 1), repeat=3):
        s = a + b + carry
        xw = params["w_xh"] @ jnp.array([a, b], jnp.float32) + params["b_h"]
        h_prev = jnp.array([[carry, carry, 0]], jnp.float32)  # only h_2 is read by W_hh
        h, y = adder_step(params, h_prev, xw[None])
        np.testing.assert_array_equal(h[0], [s >= 1, s >= 2, s >= 3])
        assert int(y[0]) == s % 2, (a, b, carry)


@pytest.mark.parametrize("n_bits", range(1, 9))
def test_adds_every_pair_of_n_bit_numbers(n_bits):
    a, b = all_pairs(n_bits)
    total = add_jit(BinaryAdderRNN(), a, b, n_bits)
    wrong = int(jnp.sum(total != a + b))
    assert wrong == 0, f"{wrong} of {a.size} pairs wrong at n={n_bits}"


def test_output_bits_are_the_sum_bits_step_by_step():
    a, b = all_pairs(6)
    x = jnp.stack([int_to_bits(a, 7), int_to_bits(b, 7)], axis=-1).at[:, 6].set(0.0)
    np.testing.assert_array_equal(BinaryAdderRNN()(x), int_to_bits(a + b, 7))


def test_without_the_extra_step_the_final_carry_is_lost():
    n = 4
    a, b = all_pairs(n)
    x = jnp.stack([int_to_bits(a, n), int_to_bits(b, n)], axis=-1)
    np.testing.assert_array_equal(bits_to_int(BinaryAdderRNN()(x)), (a + b) % 2**n)


def test_row_vector_reading_of_w_hh_does_not_add():
    """The check has teeth: W_hh applied as h @ W_hh (transposed) breaks the carry."""
    a, b = all_pairs(4)
    total = add_jit(BinaryAdderRNN(SEED_WEIGHTS_ROW_CONVENTION), a, b, 4)
    assert int(jnp.sum(total != a + b)) > 0
    assert int(add(BinaryAdderRNN(SEED_WEIGHTS_ROW_CONVENTION), 1, 1, 2)) != 2


def test_shape_dtype_finite_and_jit_agrees():
    model = BinaryAdderRNN()
    x = jax.random.bernoulli(jax.random.key(0), 0.5, (5, 11, 2)).astype(jnp.float32)
    y = model(x)
    assert y.shape == (5, 11) and y.dtype == jnp.float32
    assert bool(jnp.all(jnp.isfinite(y))) and set(np.unique(y)) <= {0.0, 1.0}
    np.testing.assert_array_equal(jax.jit(lambda m, x: m(x))(model, x), y)


def test_bits_round_trip_lsb_first():
    np.testing.assert_array_equal(int_to_bits(jnp.array(6), 4), [0, 1, 1, 0])
    x = jnp.array([0, 1, 5, 2**30 - 1, 12345])
    np.testing.assert_array_equal(bits_to_int(int_to_bits(x, 31)), x)


def test_invalid_configs_raise():
    bad = AdderWeights(**{**SEED_WEIGHTS.__dict__, "w_hh": ((0.0, 1.0, 0.0),)})
    with pytest.raises(ValueError, match="w_hh must have shape"):
        BinaryAdderRNN(bad)
    with pytest.raises(ValueError, match=r"\(batch, time, 2\)"):
        BinaryAdderRNN()(jnp.zeros((2, 3, 3)))
    with pytest.raises(ValueError, match="n_bits"):
        add(BinaryAdderRNN(), 1, 1, 0)
    with pytest.raises(ValueError, match="n_bits"):
        int_to_bits(jnp.array(1), 32)
