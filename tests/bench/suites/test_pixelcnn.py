"""The PixelCNN suite's wiring (bench/suites/pixelcnn.py) at the smoke profile."""

import jax
import jax.numpy as jnp

from bench.suites.pixelcnn import binary_image_check, cases, numpy_initialized
from models.pixelcnn import pixelcnn_logits


def binary_images(key, shape):
    return jax.random.bernoulli(key, 0.5, shape).astype(jnp.float32)


def test_smoke_cases_build_run_and_pass_their_health_checks():
    first_of_each = {(c.mode, c.variant): c for c in reversed(cases("smoke"))}.values()
    assert {c.variant for c in first_of_each} == {"masked", "naive", "cached", "fixed-point"}
    for case in first_of_each:
        work = case.build()
        out = jax.jit(work.fn)(*work.args)
        assert work.check(out) == "ok", case.label
        expected_steps = case.sizes["depth"] * (
            1 if case.mode == "train" else case.sizes["height"] * case.sizes["width"]
        )
        assert case.seq_steps_pred == expected_steps
    assert binary_image_check(jnp.full((1, 2, 2), 0.5)) == "range"
    # The NumPy-drawn weights must give a model whose logits depend on the image.
    model = numpy_initialized(depth=2, channels=4, seed=0)
    logits = jax.jit(pixelcnn_logits)(model.params, binary_images(jax.random.key(11), (2, 5, 5)))
    assert float(jnp.std(logits)) > 0.01
