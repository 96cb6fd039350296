"""Binary image data for the trained-model workloads, and the independent-pixel baseline.

Two sources, both offline:

* :func:`load_digits_binary` (the default): the 8×8 handwritten digits shipped inside
  scikit-learn (``sklearn.datasets.load_digits``: 1,797 images, integer values 0..16, no
  download), binarised by ``value >= 8`` (half the value range; about 32% of pixels on).
* :func:`load_mnist_npz`: binarised MNIST from a local file in the common ``mnist.npz`` layout
  (``x_train``, ``x_test``: uint8 arrays (N, H, W) of values 0..255), binarised by
  ``value >= 128``. Anything wrong with the file raises one :class:`DataError` whose message is
  a single line naming the file and the problem.

Every split is a float32 array (N, H, W) of 0/1. Splits are made by a seeded permutation
(:func:`split_indices`), so the same seed gives the same split on every machine; the test split
is held out for reporting only, model selection uses the validation split.

The baseline (:func:`independent_pixel_nll`) treats each pixel as an independent Bernoulli
with its training mean, the model with no pixel interactions that an autoregressive model has
to beat.
"""

from __future__ import annotations

import dataclasses
import math
import os
import zipfile

import numpy as np

DIGITS_THRESHOLD = 8
"""A digits pixel (0..16) is on iff value >= 8."""

MNIST_THRESHOLD = 128
"""An MNIST pixel (0..255) is on iff value >= 128."""

TEST_FRACTION = 0.2
VALIDATION_FRACTION = 0.15
"""Digits: 20% of the images are the test split, 15% of the rest the validation split
(1,797 images → 1,222 train / 216 validation / 359 test)."""

MNIST_VALIDATION = 10_000
"""MNIST: the validation split is 10,000 images drawn (seeded) from ``x_train``, at most a
sixth of it."""


class DataError(ValueError):
    """A data file that cannot be used; the message is one line naming the file."""


@dataclasses.dataclass(frozen=True)
class Splits:
    """Binarised train / validation / test images, float32 (N, H, W) of 0/1."""

    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray
    source: str
    rule: str

    @property
    def image_shape(self) -> tuple[int, int]:
        return tuple(self.train.shape[1:])

    @property
    def sizes(self) -> dict[str, int]:
        return {name: len(getattr(self, name)) for name in ("train", "validation", "test")}


@dataclasses.dataclass(frozen=True)
class NLL:
    """A negative log-likelihood in nats per image and in bits per dimension (pixel)."""

    nats_per_image: float
    bits_per_dim: float

    @classmethod
    def from_nats_per_image(cls, nats: float, pixels: int) -> NLL:
        return cls(float(nats), float(nats) / (pixels * math.log(2)))


def split_indices(
    n: int, test_fraction: float, validation_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Disjoint (train, validation, test) index arrays covering ``range(n)``.

    One seeded permutation: the first ``round(test_fraction·n)`` indices are the test split,
    the next ``round(validation_fraction·rest)`` the validation split, the remainder train.
    """
    if not (0 < test_fraction < 1 and 0 < validation_fraction < 1):
        raise ValueError("test_fraction and validation_fraction must lie in (0, 1)")
    order = np.random.default_rng(seed).permutation(n)
    n_test = round(test_fraction * n)
    n_val = round(validation_fraction * (n - n_test))
    if n_test < 1 or n_val < 1 or n - n_test - n_val < 1:
        raise ValueError(f"{n} images are too few for non-empty train/validation/test splits")
    test, val, train = np.split(order, [n_test, n_test + n_val])
    return train, val, test


def load_digits_binary(
    *,
    seed: int = 0,
    test_fraction: float = TEST_FRACTION,
    validation_fraction: float = VALIDATION_FRACTION,
) -> Splits:
    """The scikit-learn 8×8 digits, binarised (value >= 8), split by a seeded permutation."""
    from sklearn.datasets import load_digits  # shipped with scikit-learn: no download

    images = load_digits().images  # (1797, 8, 8) float64, integer values 0..16
    binary = (images >= DIGITS_THRESHOLD).astype(np.float32)
    train, val, test = split_indices(len(binary), test_fraction, validation_fraction, seed)
    return Splits(
        binary[train],
        binary[val],
        binary[test],
        source="sklearn.datasets.load_digits (8x8)",
        rule=f"pixel >= {DIGITS_THRESHOLD} of 0..16",
    )


def _mnist_array(path: str, arrays, key: str) -> np.ndarray:
    if key not in arrays.files:
        raise DataError(f"{path}: no array {key!r} (the file has {sorted(arrays.files)})")
    try:
        x = arrays[key]
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise DataError(f"{path}: cannot read {key!r} ({_one_line(e)})") from None
    if x.dtype != np.uint8 or x.ndim != 3 or min(x.shape) < 1:
        raise DataError(
            f"{path}: {key!r} must be uint8 images (N, H, W), got {x.dtype} {tuple(x.shape)}"
        )
    return x


def _one_line(e: BaseException) -> str:
    return " ".join(f"{type(e).__name__}: {e}".split())


def load_mnist_npz(path: str | os.PathLike, *, seed: int = 0) -> Splits:
    """Binarised MNIST (value >= 128) from ``path`` in the ``mnist.npz`` layout.

    ``x_train`` and ``x_test`` must be uint8 arrays (N, H, W) of the same image size (labels,
    if present, are ignored). The validation split is ``min(10,000, N/6)`` training images
    chosen by a seeded permutation; the test split is ``x_test`` as given.

    Raises :class:`DataError` (one line, naming the file) for a missing or unreadable file
    (not an npz, truncated), a missing array, or arrays of the wrong dtype or shape.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise DataError(f"{path}: no such file")
    # Opened here, not by np.load: numpy leaks its own handle when a zip turns out truncated.
    with open(path, "rb") as file:
        try:
            arrays = np.load(file, allow_pickle=False)
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
            raise DataError(f"{path}: not a readable npz file ({_one_line(e)})") from None
        if not isinstance(arrays, np.lib.npyio.NpzFile):  # a bare .npy array
            raise DataError(f"{path}: an .npy array, not an npz archive of x_train and x_test")
        with arrays:
            x_train = _mnist_array(path, arrays, "x_train")
            x_test = _mnist_array(path, arrays, "x_test")
    if x_train.shape[1:] != x_test.shape[1:]:
        raise DataError(
            f"{path}: x_train images {x_train.shape[1:]} and x_test images "
            f"{x_test.shape[1:]} differ in size"
        )
    n_val = min(MNIST_VALIDATION, len(x_train) // 6)
    if n_val < 1:
        raise DataError(f"{path}: x_train has {len(x_train)} images, too few to hold out any")
    order = np.random.default_rng(seed).permutation(len(x_train))
    binary = (x_train >= MNIST_THRESHOLD).astype(np.float32)
    return Splits(
        binary[order[n_val:]],
        binary[order[:n_val]],
        (x_test >= MNIST_THRESHOLD).astype(np.float32),
        source=f"{os.path.basename(path)} ({x_train.shape[1]}x{x_train.shape[2]})",
        rule=f"pixel >= {MNIST_THRESHOLD} of 0..255",
    )


def pixel_means(train: np.ndarray) -> np.ndarray:
    """Each pixel's probability of being on, (H, W), by Laplace's rule of succession.

    p = (k + 1) / (N + 2) for a pixel on in k of N training images: the training mean pulled
    towards 1/2 so it lies in [1/(N + 2), 1 − 1/(N + 2)], never 0 or 1, so a test pixel never
    seen on (the digits' border columns) costs log(N + 2) nats, not infinity.
    """
    train = np.asarray(train, np.float64)
    return (train.sum(axis=0) + 1.0) / (len(train) + 2.0)


def independent_pixel_nll(train: np.ndarray, images: np.ndarray) -> NLL:
    """Mean NLL of ``images`` under independent Bernoulli pixels with ``train``'s means."""
    p = pixel_means(train)
    x = np.asarray(images, np.float64)
    per_image = -(x * np.log(p) + (1 - x) * np.log1p(-p)).sum(axis=(1, 2))
    return NLL.from_nats_per_image(per_image.mean(), p.size)
