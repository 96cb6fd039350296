"""C8 (bench/claims/pixelcnn.py): PixelCNN's training span, judged from timed rows whose
answer is known."""

import pandas as pd

from bench import fits
from bench.claims import pixelcnn
from tests.bench.test_fits import frame, pixelcnn_rows


def test_exact_line_accepts_collinear_integers_only():
    assert pixelcnn.exact_line([2, 4, 8], [25, 45, 85]) == (10, 5)
    assert pixelcnn.exact_line([2, 4, 8], [25, 45, 86]) is None


def test_c8_passes_when_training_span_is_linear_in_depth_and_flat_in_image_size():
    df = pixelcnn_rows(lambda side, depth: 10 * depth + 3)
    (row,) = pixelcnn.c8_pixelcnn_training_span(df, fits.fit(df))
    assert row.verdict == "PASS" and "= 10·d + 3 exactly" in row.measured


def test_c8_fails_when_the_span_grows_with_the_image():
    df = pixelcnn_rows(lambda side, depth: 10 * depth + side)
    (row,) = pixelcnn.c8_pixelcnn_training_span(df, fits.fit(df))
    assert row.verdict == "FAIL" and "(differs)" in row.measured


def test_c8_needs_its_measurements():
    empty = frame([])
    assert pixelcnn.c8_pixelcnn_training_span(empty, fits.fit(empty)) == []


def test_c8_is_inconclusive_on_rows_without_a_structural_count():
    df = pixelcnn_rows(lambda side, depth: 10 * depth + 3)
    df["span_ops"] = pd.NA
    df["note"] = "span/work not counted: UnknownLayout: structure: cannot read this JAX's scan"
    (c8,) = pixelcnn.c8_pixelcnn_training_span(df, fits.fit(df))
    assert c8.verdict == "INCONCLUSIVE"
    assert "6 of 6 rows have no span" in c8.measured and "UnknownLayout" in c8.measured
