"""The PixelCNN suite's wiring (bench/suites/pixelcnn.py) at the smoke profile."""

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from bench.nnx_adapters import binary_image_health, train_step_fn
from bench.structure import analyse
from bench.suites.pixelcnn import cases, numpy_initialized
from models import pixelcnn
from models.pixelcnn import PixelCNN, nll_loss, pixelcnn_logits
from tests.models.test_pixelcnn import shifted_copies_conv


def binary_images(key, shape):
    return jax.random.bernoulli(key, 0.5, shape).astype(jnp.float32)


def test_smoke_cases_build_run_and_pass_their_health_checks():
    first_of_each = {(c.mode, c.variant): c for c in reversed(cases("smoke"))}.values()
    assert {c.variant for c in first_of_each} == {"masked", "naive", "cached", "fixed-point"}
    for case in first_of_each:
        work = case.workload()
        out = jax.jit(work.fn)(*work.args)
        assert work.health(out) == "ok", case.label
        expected_steps = case.sizes["depth"] * (
            1 if case.mode == "train" else case.sizes["height"] * case.sizes["width"]
        )
        assert case.seq_steps_pred == expected_steps
    assert binary_image_health(jnp.full((1, 2, 2), 0.5)) == "range"
    # The NumPy-drawn weights must give a model whose logits depend on the image.
    model = numpy_initialized(depth=2, channels=4, seed=0)
    logits = jax.jit(pixelcnn_logits)(model.params, binary_images(jax.random.key(11), (2, 5, 5)))
    assert float(jnp.std(logits)) > 0.01


def train_step_span(kernel: int, depth: int) -> int:
    """Span (``bench.structure``) of one Adam step on the NLL, built as the benchmark builds it."""
    abstract = nnx.eval_shape(lambda: PixelCNN(kernel, depth, 2, rngs=nnx.Rngs(0)))
    graphdef, state = nnx.split(abstract)
    model = nnx.merge(graphdef, jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), state))
    step, state = train_step_fn(model, nll_loss, optax.adam(1e-3))
    return analyse(step, *state, jnp.zeros((1, 4, 4))).span_ops


def test_a_training_step_span_grows_with_depth_but_not_with_the_kernel(monkeypatch):
    # Summing a layer's K² taps is one parallel operation, forward and backward.
    spans = {(k, d): train_step_span(k, d) for k in (3, 5, 7) for d in (2, 4)}
    for depth in (2, 4):
        assert spans[3, depth] == spans[5, depth] == spans[7, depth], spans
    assert spans[3, 4] > spans[3, 2], spans
    # The test can fail: with the taps sliced from one input the span grows with K.
    monkeypatch.setattr(pixelcnn, "masked_conv", shifted_copies_conv)
    assert train_step_span(3, 4) < train_step_span(5, 4) < train_step_span(7, 4)
