"""C12 (bench/claims/mdrnn.py): training spans of PixelCNN and the MDRNN side by side."""

import pandas as pd

from bench import fits
from bench.claims.mdrnn import c12_training_parallelism
from tests.bench.test_fits import pixelcnn_rows


def test_c12_compares_training_spans_of_pixelcnn_and_mdrnn_at_equal_sizes():
    pix = pixelcnn_rows(lambda side, depth: 10 * depth + 3)
    mdrnn = pix.copy()
    mdrnn["suite"], mdrnn["model"], mdrnn["variant"] = "mdrnn", "mdrnn", "wavefront"
    mdrnn["span_ops"] = 7 * (2 * mdrnn.height - 1) * mdrnn.depth  # (H+W-1)·d steps
    (row,) = c12_training_parallelism(pd.concat([pix, mdrnn]), fits.fit(pix))
    assert row.verdict == "PASS" and "H=W=32 d=4 mdrnn wavefront" in row.measured
    mdrnn["span_ops"] = 5  # shallower than PixelCNN: the claim would be false
    (row,) = c12_training_parallelism(pd.concat([pix, mdrnn]), fits.fit(pix))
    assert row.verdict == "FAIL"
