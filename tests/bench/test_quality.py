"""bench/quality.py: training to a target, checkpoints, sampling with trained weights."""

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from bench.data import load_digits_binary
from bench.plots import sample_grid, training_curves
from bench.quality import (
    TrainConfig,
    draw_noise,
    fixed_point_passes,
    identity_violations,
    load_checkpoint,
    save_checkpoint,
    train_to_target,
    validation_target,
)
from models import mdrnn, pixelcnn

SHORT = TrainConfig(batch=32, lr=1e-2, max_steps=40, eval_every=10)
TARGET_RATIO = 1.25  # × the baseline: the tiny model passes it after about 30 steps


def tiny_pixelcnn(seed=0):
    return pixelcnn.PixelCNN(3, 2, 8, rngs=nnx.Rngs(seed))


@pytest.fixture(scope="module")
def digits():
    return load_digits_binary()


@pytest.fixture(scope="module")
def target(digits):
    return validation_target(digits, TARGET_RATIO)


@pytest.fixture(scope="module")
def trained(digits, target):
    """A tiny PixelCNN after 40 Adam steps on the digits, and its training result."""
    model = tiny_pixelcnn()
    result = train_to_target(
        model, pixelcnn.nll_loss, digits, SHORT, target_nats=target, name="tiny"
    )
    return model, result


def test_a_short_training_run_lowers_the_test_nll(trained):
    _, result = trained
    first = result.curve[0]
    assert result.summary["test_nats"] < 0.8 * first["test_nats"]
    assert result.summary["steps"] == 40 and result.summary["stop"] == "max_steps"


def test_curve_rows_every_eval_with_nats_and_bits_per_dim(trained):
    _, result = trained
    assert [row["step"] for row in result.curve] == [0, 10, 20, 30, 40]
    times = [row["train_s"] for row in result.curve]
    assert times[0] == 0 and all(b > a for a, b in zip(times, times[1:], strict=False))
    for row in result.curve:
        for split in ("train", "validation", "test"):
            assert row[f"{split}_bpd"] == pytest.approx(row[f"{split}_nats"] / (64 * math.log(2)))


def test_time_to_target_is_the_first_evaluation_under_it_on_validation(trained, target):
    _, result = trained
    first = next(row for row in result.curve if row["validation_nats"] <= target)
    assert 0 < first["step"] < 40
    assert result.summary["target_step"] == first["step"]
    assert result.summary["time_to_target_s"] == first["train_s"]


def test_the_model_holds_the_best_validation_parameters(trained, digits):
    model, result = trained
    vals = [row["validation_nats"] for row in result.curve]
    best = int(np.argmin(vals))
    assert result.summary["best_step"] == result.curve[best]["step"]
    assert result.summary["best_val_nats"] == vals[best]
    assert result.summary["test_nats"] == result.curve[best]["test_nats"]
    # The returned model's test NLL is the one reported for the selected step.
    x = jnp.asarray(digits.test)
    logits = model(x)
    nats = float(jnp.mean(jnp.sum(jax.nn.softplus(logits) - x * logits, axis=(1, 2))))
    assert nats == pytest.approx(result.summary["test_nats"], rel=1e-5)


def test_the_test_split_drives_no_decision(trained, digits, target):
    """The same run with other test images: other test numbers, the same everything else."""
    _, result = trained
    other = dataclasses.replace(digits, test=1.0 - digits.test)
    again = train_to_target(tiny_pixelcnn(), pixelcnn.nll_loss, other, SHORT, target_nats=target)
    for key in ("steps", "stop", "best_step", "best_val_nats", "target_step"):
        assert again.summary[key] == result.summary[key], key
    assert again.summary["test_nats"] != result.summary["test_nats"]
    for a, b in zip(jax.tree.leaves(again.state), jax.tree.leaves(result.state), strict=True):
        np.testing.assert_array_equal(a, b)


def test_stop_at_target_ends_training_at_the_first_evaluation_under_it(digits, target):
    config = dataclasses.replace(SHORT, max_steps=200, stop_at_target=True)
    result = train_to_target(tiny_pixelcnn(), pixelcnn.nll_loss, digits, config, target_nats=target)
    s = result.summary
    assert s["stop"] == "target" and s["steps"] == s["target_step"] < 200
    assert result.curve[-1]["validation_nats"] <= target < result.curve[-2]["validation_nats"]


def test_a_target_never_reached_is_nan_at_step_minus_one(digits):
    config = dataclasses.replace(SHORT, max_steps=10)
    result = train_to_target(tiny_pixelcnn(), pixelcnn.nll_loss, digits, config, target_nats=0.0)
    assert result.summary["target_step"] == -1 and math.isnan(result.summary["time_to_target_s"])


def test_invalid_configs_raise():
    with pytest.raises(ValueError, match="batch"):
        TrainConfig(batch=0)
    with pytest.raises(ValueError, match="patience"):
        TrainConfig(patience=0)
    with pytest.raises(ValueError, match="lr_schedule"):
        TrainConfig(lr_schedule="linear")


# --- checkpoints


def _assert_same_state(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        assert x.dtype == y.dtype and x.shape == y.shape
        assert np.asarray(x).tobytes() == np.asarray(y).tobytes()  # bitwise equal


def test_checkpoint_round_trips_a_trained_state_exactly(trained, tmp_path):
    model, _ = trained
    save_checkpoint(tmp_path / "pixelcnn", nnx.state(model))
    fresh = tiny_pixelcnn(seed=1)
    restored = load_checkpoint(tmp_path / "pixelcnn", nnx.state(fresh))
    _assert_same_state(restored, nnx.state(model))
    nnx.update(fresh, restored)
    x = jnp.asarray(np.random.default_rng(0).random((2, 8, 8)) < 0.5, jnp.float32)
    np.testing.assert_array_equal(fresh(x), model(x))


def test_checkpoint_round_trips_an_mdrnn_from_an_abstract_like(tmp_path):
    model = mdrnn.MDRNNPixel(4, 2, schedule="raster", rngs=nnx.Rngs(0))
    save_checkpoint(tmp_path / "mdrnn", nnx.state(model))
    like = nnx.state(nnx.eval_shape(lambda: mdrnn.MDRNNPixel(4, 2, rngs=nnx.Rngs(1))))
    _assert_same_state(load_checkpoint(tmp_path / "mdrnn", like), nnx.state(model))


def test_checkpoint_refuses_to_overwrite_unless_asked(trained, tmp_path):
    model, _ = trained
    save_checkpoint(tmp_path / "ck", nnx.state(model))
    with pytest.raises(ValueError):
        save_checkpoint(tmp_path / "ck", nnx.state(model))
    save_checkpoint(tmp_path / "ck", nnx.state(model), overwrite=True)


# --- sampling with trained weights


def test_trained_pixelcnn_samplers_agree_and_obey_the_sampling_rule(trained):
    model, _ = trained
    params, u = model.params, draw_noise(0, 8, 8, 8)
    naive = jax.jit(pixelcnn.sample_naive)(params, u)
    cached = jax.jit(pixelcnn.sample_cached)(params, u)
    fixed, passes = jax.jit(pixelcnn.sample_fixed_point)(params, u)
    np.testing.assert_array_equal(naive, cached)
    np.testing.assert_array_equal(naive, fixed)
    wrong, near_ties = identity_violations(model(naive), naive, u)
    assert wrong == near_ties == 0
    per_image = fixed_point_passes(params, u)
    assert per_image.shape == (8,) and per_image.max() == int(passes)
    assert 1 <= per_image.min() and per_image.max() <= 65


def test_identity_violations_counts_a_flipped_pixel(trained):
    model, _ = trained
    u = draw_noise(1, 2, 8, 8)
    x = jax.jit(pixelcnn.sample_cached)(model.params, u)
    # Flip the last pixel: its own rule breaks (no later pixel reads it).
    flipped = x.at[0, 7, 7].set(1 - x[0, 7, 7])
    assert identity_violations(model(flipped), flipped, u) == (1, 0)


def test_trained_mdrnn_sampler_obeys_the_sampling_rule(digits):
    model = mdrnn.MDRNNPixel(4, 1, schedule="raster", rngs=nnx.Rngs(0))
    config = dataclasses.replace(SHORT, max_steps=10)
    result = train_to_target(model, mdrnn.nll_loss, digits, config)
    assert result.summary["test_nats"] < result.curve[0]["test_nats"]
    u = draw_noise(2, 16, 8, 8)
    x = jax.jit(lambda u: model.sample(u))(u)
    wrong, near_ties = identity_violations(model(x), x, u)
    assert wrong == near_ties <= 1  # the raster forward and the diagonal sampler round apart


def test_sample_grid_and_curve_plot_write_pngs(tmp_path, digits, trained):
    _, result = trained
    grid = sample_grid(tmp_path / "grid.png", digits.test[:16], digits.test[16:32], title="t")
    curves = training_curves(
        tmp_path / "curves.png",
        {"tiny": result.curve},
        baseline_nats=result.summary["baseline_test_nats"],
    )
    for path in (grid, curves):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
