"""bench/quality.py: steps to a target over a rate × seed grid, time per step, checkpoints,
sampling with trained weights."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from bench.data import load_digits_binary
from bench.nnx_adapters import train_step_fn
from bench.quality import (
    TrainConfig,
    _Orders,
    draw_noise,
    fixed_point_passes,
    identity_violations,
    load_checkpoint,
    save_checkpoint,
    time_per_step,
    train_grid,
    validation_target,
)
from bench.suites.trained import sample_grid, training_curves
from models import mdrnn, pixelcnn

GRID = TrainConfig(lrs=(1e-3, 1e-2), seeds=2, batch=32, max_steps=60, eval_every=10)
TARGET_RATIO = 1.25  # × the baseline: the tiny model at 1e-2 passes it after about 30 steps


def tiny_pixelcnn(seed=0, _schedule=None):
    return pixelcnn.PixelCNN(3, 2, 8, rngs=nnx.Rngs(seed))


@pytest.fixture(scope="module")
def digits():
    return load_digits_binary()


@pytest.fixture(scope="module")
def target(digits):
    return validation_target(digits, TARGET_RATIO)


@pytest.fixture(scope="module")
def grid(digits, target):
    return train_grid(tiny_pixelcnn, pixelcnn.nll_loss, digits, GRID, target)


@pytest.fixture(scope="module")
def trained(grid):
    """The tiny PixelCNN holding the grid's selected weights."""
    model = tiny_pixelcnn()
    nnx.update(model, grid.state)
    return model


def test_each_run_counts_its_steps_at_the_first_evaluation_under_the_target(grid, target):
    assert [(r["lr"], r["seed"]) for r in grid.runs] == [(1e-3, 0), (1e-3, 1), (1e-2, 0), (1e-2, 1)]
    for run in grid.runs:
        curve = [c for c in grid.curve if (c["lr"], c["seed"]) == (run["lr"], run["seed"])]
        assert [c["step"] for c in curve] == list(range(0, run["steps"] + 1, 10))
        under = [c["step"] for c in curve if c["validation_nats"] <= target]
        assert run["target_step"] == (under[0] if under else -1)
        assert run["resolution"] == (10 if under else -1)
    assert grid.best_lr == 1e-2 and all(
        r["target_step"] > 0 for r in grid.runs if r["lr"] == 1e-2
    )  # fmt: skip


def test_a_rate_stops_once_it_cannot_beat_a_rate_already_done(grid):
    # The middle rate (1e-2) trains first; 1e-3, far slower, stops as soon as its mean could
    # not be lower even if all its seeds reached the target at the next evaluation.
    fast = [r["target_step"] for r in grid.runs if r["lr"] == 1e-2]
    slow = [r for r in grid.runs if r["lr"] == 1e-3]
    assert all(r["target_step"] == -1 for r in slow)
    stop = max(0, math.ceil((np.mean(fast) - 10) / 10) * 10)
    assert slow[0]["steps"] == stop < GRID.max_steps
    assert {r["steps"] for r in grid.runs if r["lr"] == 1e-2} == {max(fast)}


def test_a_seed_fixes_the_initialisation_shared_by_every_rate(grid):
    at0 = {(c["lr"], c["seed"]): c["validation_nats"] for c in grid.curve if c["step"] == 0}
    assert at0[1e-3, 0] == at0[1e-2, 0] and at0[1e-3, 1] == at0[1e-2, 1]
    assert at0[1e-2, 0] != at0[1e-2, 1]


def test_a_run_of_the_grid_is_adam_at_its_rate_on_its_seeds_minibatches(digits):
    """The vmapped grid trains each run as Adam alone would: no run sees another's."""
    config = TrainConfig(lrs=(1e-2, 3e-2), seeds=1, batch=32, max_steps=20, eval_every=10)
    result = train_grid(tiny_pixelcnn, pixelcnn.nll_loss, digits, config, target_nats=0.0)
    assert result.best_lr is None and all(r["target_step"] == -1 for r in result.runs)
    step, state = train_step_fn(tiny_pixelcnn(0), pixelcnn.nll_loss, optax.adam(1e-2))
    step = jax.jit(step)
    for idx in _Orders(0, len(digits.train), 32).take(20):
        state = step(*state, jnp.asarray(digits.train[idx]))[:3]
    # No rate reached the target: the selected run is the first rate's seed 0.
    alone = jax.tree.leaves(state[0])
    selected = jax.tree.leaves(nnx.state(result.state, nnx.Param))
    for a, b in zip(alone, selected, strict=True):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5)


def test_coarse_evaluations_report_the_coarser_resolution(digits, target):
    config = TrainConfig(lrs=(1e-2,), seeds=1, batch=32, max_steps=40, eval_every=10,
                         coarse_every=40)  # fmt: skip
    result = train_grid(tiny_pixelcnn, pixelcnn.nll_loss, digits, config, target)
    assert [c["step"] for c in result.curve] == [0, 40]  # 44 nats at init: not within 1.1×
    assert result.runs[0]["target_step"] == 40 and result.runs[0]["resolution"] == 40


def test_the_selected_weights_are_the_best_rates_first_seed(grid, trained, digits):
    last = max(c["step"] for c in grid.curve)
    row = next(c for c in grid.curve if (c["step"], c["lr"], c["seed"]) == (last, 1e-2, 0))
    for split, expected in (("validation", row["validation_nats"]), ("test", grid.test_nats)):
        x = jnp.asarray(getattr(digits, split))
        logits = trained(x)
        nats = float(jnp.mean(jnp.sum(jax.nn.softplus(logits) - x * logits, axis=(1, 2))))
        assert nats == pytest.approx(expected, rel=1e-4), split


def test_invalid_configs_raise():
    with pytest.raises(ValueError, match="batch"):
        TrainConfig(lrs=(1e-2,), batch=0)
    with pytest.raises(ValueError, match="lrs"):
        TrainConfig(lrs=(1e-2, 1e-2))
    with pytest.raises(ValueError, match="multiple"):
        TrainConfig(lrs=(1e-2,), max_steps=25, eval_every=10)
    with pytest.raises(ValueError, match="coarse_every"):
        TrainConfig(lrs=(1e-2,), coarse_every=15)


def test_time_per_step_times_one_runs_step_by_the_protocol(digits):
    timing = time_per_step(tiny_pixelcnn(), pixelcnn.nll_loss, digits.train[:16], 1e-2, repeats=3)
    assert len(timing.samples_s) >= 3 and timing.median_s > 0 and timing.compile_s > 0


# --- checkpoints


def _assert_same_state(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        assert x.dtype == y.dtype and x.shape == y.shape
        assert np.asarray(x).tobytes() == np.asarray(y).tobytes()  # bitwise equal


def test_checkpoint_round_trips_a_trained_state_exactly(trained, tmp_path):
    model = trained
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
    model = trained
    save_checkpoint(tmp_path / "ck", nnx.state(model))
    with pytest.raises(ValueError):
        save_checkpoint(tmp_path / "ck", nnx.state(model))
    save_checkpoint(tmp_path / "ck", nnx.state(model), overwrite=True)


# --- sampling with trained weights


def test_trained_pixelcnn_samplers_agree_and_obey_the_sampling_rule(trained):
    model = trained
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
    model = trained
    u = draw_noise(1, 2, 8, 8)
    x = jax.jit(pixelcnn.sample_cached)(model.params, u)
    # Flip the last pixel: its own rule breaks (no later pixel reads it).
    flipped = x.at[0, 7, 7].set(1 - x[0, 7, 7])
    assert identity_violations(model(flipped), flipped, u) == (1, 0)


def test_trained_mdrnn_sampler_obeys_the_sampling_rule(digits):
    def build(seed, schedule="raster"):
        return mdrnn.MDRNNPixel(4, 1, schedule=schedule, rngs=nnx.Rngs(seed))

    config = TrainConfig(lrs=(1e-2,), seeds=1, batch=32, max_steps=10, eval_every=10)
    result = train_grid(build, mdrnn.nll_loss, digits, config, target_nats=0.0)
    assert result.curve[-1]["validation_nats"] < result.curve[0]["validation_nats"]
    model = build(0)
    nnx.update(model, result.state)
    u = draw_noise(2, 16, 8, 8)
    x = jax.jit(lambda u: model.sample(u))(u)
    wrong, near_ties = identity_violations(model(x), x, u)
    assert wrong == near_ties <= 1  # the raster forward and the diagonal sampler round apart


def test_sample_grid_and_curve_plot_write_pngs(tmp_path, digits, grid, target):
    images = sample_grid(tmp_path / "grid.png", digits.test[:16], digits.test[16:32], title="t")
    curves = training_curves(
        tmp_path / "curves.png",
        {"tiny": [c for c in grid.curve if c["lr"] == grid.best_lr]},
        baseline_nats=target / TARGET_RATIO,
        target_ratio=TARGET_RATIO,
    )
    for path in (images, curves):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
