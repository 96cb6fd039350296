"""bench/data.py: the binarised digits, the mnist.npz loader and its errors, the baseline."""

import math

import numpy as np
import pytest

from bench.data import (
    TEST_FRACTION,
    VALIDATION_FRACTION,
    DataError,
    independent_pixel_nll,
    load_digits_binary,
    load_mnist_npz,
    pixel_means,
    split_indices,
)


@pytest.fixture(scope="module")
def digits():
    return load_digits_binary()


def test_digits_splits_are_binary_float32_8x8_with_the_documented_sizes(digits):
    assert digits.sizes == {"train": 1222, "validation": 216, "test": 359}
    for split in (digits.train, digits.validation, digits.test):
        assert split.dtype == np.float32 and split.shape[1:] == (8, 8)
        assert set(np.unique(split)) == {0.0, 1.0}


def test_digits_are_the_sklearn_images_thresholded_at_8_in_the_split_order(digits):
    from sklearn.datasets import load_digits

    images = load_digits().images
    train, val, test = split_indices(len(images), TEST_FRACTION, VALIDATION_FRACTION, seed=0)
    for split, idx in ((digits.train, train), (digits.validation, val), (digits.test, test)):
        np.testing.assert_array_equal(split, (images[idx] >= 8).astype(np.float32))


def test_digits_splits_are_disjoint_and_cover_every_image():
    train, val, test = split_indices(1797, 0.2, 0.15, seed=0)
    assert len(set(train) | set(val) | set(test)) == 1797
    assert len(train) + len(val) + len(test) == 1797


def test_digits_split_is_deterministic_and_depends_on_the_seed(digits):
    again = load_digits_binary()
    np.testing.assert_array_equal(digits.train, again.train)
    np.testing.assert_array_equal(digits.test, again.test)
    other = load_digits_binary(seed=1)
    assert not np.array_equal(digits.test, other.test)


def test_split_with_too_few_images_raises():
    with pytest.raises(ValueError, match="too few"):
        split_indices(3, 0.2, 0.15, seed=0)


# --- mnist.npz


def _mnist(rng, n_train=60, n_test=12, side=28, dtype=np.uint8):
    return {
        "x_train": rng.integers(0, 256, (n_train, side, side)).astype(dtype),
        "x_test": rng.integers(0, 256, (n_test, side, side)).astype(dtype),
    }


def test_mnist_npz_binarises_at_128_and_holds_out_a_sixth_for_validation(tmp_path):
    arrays = _mnist(np.random.default_rng(0))
    path = tmp_path / "mnist.npz"
    np.savez(path, **arrays, y_train=np.zeros(60, np.uint8))
    splits = load_mnist_npz(path)
    assert splits.sizes == {"train": 50, "validation": 10, "test": 12}
    assert splits.image_shape == (28, 28) and splits.train.dtype == np.float32
    np.testing.assert_array_equal(splits.test, (arrays["x_test"] >= 128).astype(np.float32))
    # Train and validation together are exactly x_train, binarised, in some order.
    seen = sorted(im.tobytes() for im in np.concatenate([splits.train, splits.validation]))
    want = sorted(im.tobytes() for im in (arrays["x_train"] >= 128).astype(np.float32))
    assert seen == want


def _error(path) -> str:
    with pytest.raises(DataError) as info:
        load_mnist_npz(path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message
    return message


def test_missing_mnist_file_is_one_line_naming_it(tmp_path):
    assert "no such file" in _error(tmp_path / "absent.npz")


def test_truncated_mnist_file_is_one_line_naming_it(tmp_path):
    good, bad = tmp_path / "good.npz", tmp_path / "truncated.npz"
    np.savez(good, **_mnist(np.random.default_rng(0)))
    bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    assert "not a readable npz" in _error(bad)


@pytest.mark.parametrize(
    "arrays, problem",
    [
        (dict(x_train=np.zeros((6, 28, 28), np.uint8)), "no array 'x_test'"),
        (
            dict(x_train=np.zeros((6, 784), np.uint8), x_test=np.zeros((2, 784), np.uint8)),
            "(N, H, W)",
        ),
        (dict(x_train=np.zeros((6, 28, 28)), x_test=np.zeros((2, 28, 28))), "uint8"),
        (
            dict(x_train=np.zeros((6, 28, 28), np.uint8), x_test=np.zeros((2, 14, 14), np.uint8)),
            "differ in size",
        ),
        (
            dict(x_train=np.zeros((5, 28, 28), np.uint8), x_test=np.zeros((2, 28, 28), np.uint8)),
            "too few",
        ),
    ],
)
def test_wrongly_shaped_or_typed_mnist_arrays_raise_data_error(tmp_path, arrays, problem):
    path = tmp_path / "odd.npz"
    np.savez(path, **arrays)
    assert problem in _error(path)


def test_data_error_is_a_value_error():
    assert issubclass(DataError, ValueError)


# --- the independent-pixel baseline


def test_pixel_means_follow_laplaces_rule():
    train = np.array([[[1, 0]], [[1, 0]], [[1, 1]]], np.float32)  # 3 images of 1×2
    np.testing.assert_allclose(pixel_means(train), [[4 / 5, 2 / 5]])


def test_baseline_nll_by_hand():
    train = np.array([[[1, 0]], [[1, 0]], [[1, 1]]], np.float32)
    images = np.array([[[1, 1]], [[0, 0]]], np.float32)
    # image 1: -log(4/5) - log(2/5); image 2: -log(1/5) - log(3/5).
    nats = (-math.log(4 / 5) - math.log(2 / 5) - math.log(1 / 5) - math.log(3 / 5)) / 2
    got = independent_pixel_nll(train, images)
    assert got.nats_per_image == pytest.approx(nats)
    assert got.bits_per_dim == pytest.approx(nats / 2 / math.log(2))


def test_baseline_is_finite_for_pixels_never_on_in_training(digits):
    # The digits' first column is (almost) never on: Laplace keeps its probability above 0.
    test = digits.test.copy()
    test[:, :, 0] = 1.0
    assert math.isfinite(independent_pixel_nll(digits.train, test).nats_per_image)


def test_digits_baseline_is_a_fraction_of_a_bit_per_pixel(digits):
    base = independent_pixel_nll(digits.train, digits.test)
    # About a third of the pixels are on; per-pixel entropies are well below 1 bit.
    assert 0.3 < base.bits_per_dim < 0.9
    assert base.nats_per_image == pytest.approx(base.bits_per_dim * 64 * math.log(2))


def test_an_npy_array_or_a_text_file_is_not_an_npz_archive(tmp_path):
    npy, text = tmp_path / "images.npy", tmp_path / "notes.npz"
    np.save(npy, np.zeros((6, 28, 28), np.uint8))
    text.write_text("x_train, x_test\n")
    assert "not an npz archive" in _error(npy)
    assert "not a readable npz" in _error(text)
