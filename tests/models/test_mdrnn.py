"""Seed §4-2: a 2-D MDRNN (Graves et al. 2007) and the schedules that evaluate it.

The specification: hidden state (i, j) is a function of the input at (i, j) and the states at
(i-1, j) and (i, j-1); a plain NumPy double loop is the reference. The raster, diagonal
wavefront and pipelined wavefront schedules compute the same function (values and
gradients); the pixel model is causal in the quadrant sense, and its diagonal sampler draws
the same image as pixel-by-pixel sampling with the full model.
"""

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from models.mdrnn import (
    MDRNN,
    SCHEDULES,
    MDRNNPixel,
    connections,
    default_schedule,
    diagonal_windows,
    macs,
    nll_loss,
    sequential_steps,
    skew,
    unskew,
)
from tests.models.helpers import n_params, train

TOL = dict(rtol=1e-5, atol=1e-5)  # float32 model vs float64 reference


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def reference_mdrnn(params, x_BxHxWxC, cell):
    """The seed's recurrence, one cell at a time, in float64: an independent reference."""
    p = {name: np.asarray(v, np.float64) for name, v in params.items()}
    B, H, W, _ = x_BxHxWxC.shape
    depth, k = p["w_h"].shape[0], p["w_h"].shape[1] // 2
    below = np.asarray(x_BxHxWxC, np.float64)
    for layer in range(depth):
        w_x = p["w_in"] if layer == 0 else p["w_x"][layer - 1]
        u_up, u_left, b = p["w_h"][layer][:k], p["w_h"][layer][k:], p["b"][layer]
        # Row/column 0 of h and c is the zero border; cell (i, j) lives at [i + 1, j + 1].
        h = np.zeros((B, H + 1, W + 1, k))
        c = np.zeros((B, H + 1, W + 1, k))
        for i in range(H):
            for j in range(W):
                z = below[:, i, j] @ w_x + h[:, i, j + 1] @ u_up + h[:, i + 1, j] @ u_left + b
                if cell == "lstm":
                    gi, f_up, f_left, g, o = np.split(z, 5, axis=-1)
                    c[:, i + 1, j + 1] = (
                        sigmoid(f_up) * c[:, i, j + 1]
                        + sigmoid(f_left) * c[:, i + 1, j]
                        + sigmoid(gi) * np.tanh(g)
                    )
                    h[:, i + 1, j + 1] = sigmoid(o) * np.tanh(c[:, i + 1, j + 1])
                else:
                    h[:, i + 1, j + 1] = np.tanh(z)
        below = h[:, 1:, 1:]
    return below


@functools.cache  # building draws weights with jax.random: a compile per shape; tests only read
def make(cell="lstm", in_features=2, hidden=3, depth=3, seed=0, schedule="auto"):
    return MDRNN(in_features, hidden, depth, cell=cell, schedule=schedule, rngs=nnx.Rngs(seed))


def randn(shape, seed=1):
    return jax.random.normal(jax.random.key(seed), shape, jnp.float32)


# ------------------------------------------------------------------ the recurrence itself


def run(schedule, params, x, cell="lstm"):
    return jax.jit(SCHEDULES[schedule], static_argnums=2)(params, x, cell)


# (4, 5): lanes are rows; (5, 3): H > W, lanes are columns.
@pytest.mark.parametrize("hw,cell", [((4, 5), "lstm"), ((5, 3), "lstm"), ((4, 5), "tanh")])
@pytest.mark.parametrize("schedule", list(SCHEDULES))
def test_schedule_matches_double_loop(schedule, hw, cell):
    model = make(cell)
    x = randn((2, *hw, 2))
    out = run(schedule, model.params, x, cell)
    np.testing.assert_allclose(out, reference_mdrnn(model.params, x, cell), **TOL)


@pytest.mark.parametrize("hw", [(1, 6), (6, 1), (1, 1)])
def test_degenerate_grids(hw):
    # One row / one column: the wavefront is a plain 1-D recurrence with a single lane.
    model = make(depth=2)
    x = randn((1, *hw, 2))
    ref = reference_mdrnn(model.params, x, "lstm")
    for schedule in SCHEDULES:
        np.testing.assert_allclose(run(schedule, model.params, x), ref, **TOL)


def test_single_layer():
    model = make(depth=1)
    x = randn((2, 4, 4, 2))
    ref = reference_mdrnn(model.params, x, "lstm")
    for schedule in SCHEDULES:
        np.testing.assert_allclose(run(schedule, model.params, x), ref, **TOL)


def test_gradients_agree_across_schedules():
    model = make(depth=2)
    x = randn((2, 4, 5, 2))

    def loss(schedule):
        return lambda p: jnp.sum(jnp.sin(SCHEDULES[schedule](p, x, "lstm")))

    ref = jax.jit(jax.grad(loss("raster")))(model.params)
    for schedule in ("wavefront", "pipelined"):
        grads = jax.jit(jax.grad(loss(schedule)))(model.params)
        for name in ref:
            np.testing.assert_allclose(grads[name], ref[name], rtol=1e-4, atol=1e-5)


def test_output_shape_dtype_finite_and_jit():
    model = make(hidden=4, depth=2)
    x = randn((3, 3, 4, 2))
    out = model(x)
    assert out.shape == (3, 3, 4, 4) and out.dtype == jnp.float32
    assert bool(jnp.isfinite(out).all())
    graphdef, state = nnx.split(model)
    jitted = jax.jit(lambda s, x: nnx.merge(graphdef, s)(x))(state, x)
    np.testing.assert_allclose(jitted, out, rtol=1e-6, atol=1e-6)


def test_large_grid_stays_finite():
    # 2-D cells sum two forget-gated neighbours; the state must not blow up over a big grid.
    model = make(in_features=1, hidden=8, depth=2, schedule="wavefront")
    graphdef, state = nnx.split(model)
    out = jax.jit(lambda s, x: nnx.merge(graphdef, s)(x))(state, randn((1, 48, 48, 1)))
    assert bool(jnp.isfinite(out).all()) and float(jnp.abs(out).max()) <= 1.0


def test_auto_schedule_follows_the_measured_rule():
    # CPU: raster for a carried row of <= 16 floats, and for batch >= 16 on short sides <= 16;
    # accelerators: pipelined.
    for side in (4, 6, 8):  # batch 1, k = 2: where the raster scan measured faster
        assert default_schedule(1, side, side, 2, 2, "cpu") == "raster"
    for side in (9, 12, 16, 32, 64, 96):  # ... and where it did not
        assert default_schedule(1, side, side, 2, 2, "cpu") == "wavefront"
    assert default_schedule(2, 8, 8, 2, 2, "cpu") == "wavefront"
    assert default_schedule(1, 8, 8, 4, 2, "cpu") == "wavefront"
    assert default_schedule(64, 16, 16, 32, 2, "cpu") == "raster"
    assert default_schedule(16, 16, 64, 32, 2, "cpu") == "raster"
    assert default_schedule(16, 32, 32, 32, 2, "cpu") == "wavefront"
    assert default_schedule(1, 16, 16, 32, 8, "cpu") == "wavefront"
    assert default_schedule(1, 64, 64, 32, 8, "gpu") == "pipelined"
    assert default_schedule(1, 64, 64, 32, 1, "gpu") == "wavefront"


# ------------------------------------------------------------------ skewing


def test_skew_puts_each_anti_diagonal_on_one_step():
    x = jnp.arange(2 * 3 * 4, dtype=jnp.float32).reshape(1, 3, 4, 2) + 1
    y = np.asarray(skew(x))  # (S, B, L, C) = (6, 1, 3, 2)
    assert y.shape == (6, 1, 3, 2)
    for s, lane in itertools.product(range(6), range(3)):
        m = s - lane
        expected = np.asarray(x[0, lane, m]) if 0 <= m < 4 else np.zeros(2)
        np.testing.assert_array_equal(y[s, 0, lane], expected)
    np.testing.assert_array_equal(unskew(skew(x), 4), x)


@pytest.mark.parametrize("pieces", [0, 1, 4])
@pytest.mark.parametrize("L,M,depth", [(4, 4, 1), (5, 9, 1), (8, 8, 3), (3, 3, 6), (1, 5, 2)])
def test_windows_cover_every_cell_once(L, M, depth, pieces):
    windows = diagonal_windows(L, M, depth, pieces)
    assert len(windows) <= 2 * pieces + 1
    steps = [t for t0, t1, _, _ in windows for t in range(t0, t1)]
    assert steps == list(range(L + M + depth - 2))  # the chunks partition the steps
    for t0, t1, a, b in windows:
        for t, layer, lane in itertools.product(range(t0, t1), range(depth), range(L)):
            on_image = 0 <= t - layer - lane < M and t - layer < L + M - 1
            if on_image:
                # the cell and its previous-diagonal neighbour lane are inside the window
                assert a <= lane < b and (lane == 0 or a <= lane - 1)


# ------------------------------------------------------------------ sizes and counts


def test_parameter_count_lstm():
    # G = 5k = 15 gates; w_in C·G + w_x (d-1)·k·G + w_h d·2k·G + b d·G = 15·(2 + 6 + 18 + 3)
    assert n_params(make("lstm", in_features=2, hidden=3, depth=3)) == 435


def test_parameter_count_tanh():
    # G = k = 3: 3·(2 + 6 + 18 + 3)
    assert n_params(make("tanh", in_features=2, hidden=3, depth=3)) == 87


def test_parameter_count_pixel_model():
    # MDRNN(1, 4, 2): 20·(1 + 4 + 16 + 2) = 460, read-out 2k + 1 = 9
    assert n_params(MDRNNPixel(4, 2, rngs=nnx.Rngs(0))) == 469


def enumerate_connections(C, k, d, H, W, gates):
    """Weighted edges of the unrolled network, by walking the cells: every input unit of a
    cell that exists (its own input, and its up/left neighbours inside the grid) is wired to
    each of the cell's gate units. Biases are not connections."""
    total = 0
    for layer, i, j in itertools.product(range(d), range(H), range(W)):
        fan_in = (C if layer == 0 else k) + k * (i > 0) + k * (j > 0)
        total += fan_in * gates
    return total


@pytest.mark.parametrize("C,k,d,H,W", [(1, 2, 1, 3, 4), (3, 4, 2, 5, 5), (2, 3, 4, 1, 7)])
@pytest.mark.parametrize("cell,gates_per_unit", [("lstm", 5), ("tanh", 1)])
def test_connection_formula_matches_enumeration(C, k, d, H, W, cell, gates_per_unit):
    expected = enumerate_connections(C, k, d, H, W, gates_per_unit * k)
    assert connections(C, k, d, H, W, cell) == expected


def count_dot_macs(jaxpr, scale=1):
    """Multiply-accumulates of every dot_general in a jaxpr, loops × their lengths."""
    total = 0
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "dot_general":
            (contract, _), _ = eqn.params["dimension_numbers"]
            lhs = eqn.invars[0].aval.shape
            total += (
                scale
                * int(np.prod(eqn.outvars[0].aval.shape))
                * int(np.prod([lhs[a] for a in contract]))
            )
        inner = scale * eqn.params["length"] if eqn.primitive.name == "scan" else scale
        for value in eqn.params.values():
            sub = getattr(value, "jaxpr", value)
            if hasattr(sub, "eqns"):
                total += count_dot_macs(sub, inner)
    return total


def test_raster_does_exactly_the_dense_multiply_adds():
    # The raster schedule multiplies every weight once per cell (zero borders included):
    # G·H·W·(C + (d-1)·k + 2dk) per image, read from its program.
    model = make(in_features=2, hidden=3, depth=3)
    x = randn((1, 4, 5, 2))
    jaxpr = jax.make_jaxpr(lambda p, x: SCHEDULES["raster"](p, x, "lstm"))(model.params, x)
    assert count_dot_macs(jaxpr.jaxpr) == macs(2, 3, 3, 4, 5, "lstm") == 15 * 20 * (2 + 6 + 18)


# ------------------------------------------------------------------ the generative model


@functools.cache
def pixel_model(schedule="auto", depth=2, hidden=4, cell="lstm"):
    return MDRNNPixel(hidden, depth, cell=cell, schedule=schedule, rngs=nnx.Rngs(0))


@pytest.mark.parametrize("schedule", list(SCHEDULES))
def test_pixel_logits_are_quadrant_causal(schedule):
    H, W = 4, 5
    model = pixel_model(schedule)
    x = jax.random.bernoulli(jax.random.key(2), 0.5, (1, H, W)).astype(jnp.float32)
    graphdef, state = nnx.split(model)
    logits = jax.jit(jax.jacrev(lambda x, s: nnx.merge(graphdef, s)(x)[0]))
    jac = logits(x, state)[:, :, 0]  # (H, W) logits × (H, W) pixels
    for i, j in itertools.product(range(H), range(W)):
        seen = np.zeros((H, W), bool)
        seen[: i + 1, : j + 1] = True
        seen[i, j] = False  # a pixel never sees itself
        np.testing.assert_array_equal(np.asarray(jac[i, j])[~seen], 0.0)
        if i > 0:
            assert jac[i, j, i - 1, j] != 0
        if j > 0:
            assert jac[i, j, i, j - 1] != 0
        if i > 0 and j > 0:
            assert jac[i, j, 0, 0] != 0  # the far corner of the quadrant reaches it too


def naive_sample(model, u_BxHxW):
    """Pixel by pixel in raster order, running the full model each time."""
    logits_fn = jax.jit(lambda x: model(x))
    x = np.zeros(u_BxHxW.shape, np.float32)
    for i, j in itertools.product(range(u_BxHxW.shape[1]), range(u_BxHxW.shape[2])):
        p = jax.nn.sigmoid(logits_fn(jnp.asarray(x)))[:, i, j]
        x[:, i, j] = np.asarray(u_BxHxW[:, i, j] < p, np.float32)
    return x


@pytest.mark.parametrize("hw,cell", [((4, 5), "lstm"), ((5, 3), "tanh")])
def test_diagonal_sampler_equals_naive_sampler(hw, cell):
    model = pixel_model("raster", depth=2, cell=cell)
    u = jax.random.uniform(jax.random.key(3), (3, *hw))
    fast = np.asarray(jax.jit(model.sample)(u))
    assert fast.shape == (3, *hw) and set(np.unique(fast)) <= {0.0, 1.0}
    np.testing.assert_array_equal(fast, naive_sample(model, u))
    assert 0 < fast.mean() < 1  # not a degenerate all-0 / all-1 draw


def test_nll_training_step_lowers_the_loss():
    model = pixel_model("raster", depth=2, hidden=8)
    x = (jax.random.uniform(jax.random.key(4), (8, 6, 6)) < 0.3).astype(jnp.float32)
    before = float(nll_loss(model, x))
    losses = train(model, nll_loss, x, optax.adam(3e-2), steps=15)
    assert np.isfinite(losses).all()
    assert losses[0] == pytest.approx(before, rel=1e-5)
    assert losses[-1] < 0.9 * losses[0]


# ------------------------------------------------------------------ sequential steps


def scan_steps(fn, *args):
    """Sequential scan steps of ``fn``'s program: a scan of length n costs n × its body's
    steps (at least 1), consecutive scans add up."""

    def steps(jaxpr):
        total = 0
        for eqn in jaxpr.eqns:
            subs = [getattr(v, "jaxpr", v) for v in eqn.params.values()]
            inner = max((steps(s) for s in subs if hasattr(s, "eqns")), default=0)
            total += eqn.params["length"] * max(1, inner) if eqn.primitive.name == "scan" else inner
        return total

    return steps(jax.make_jaxpr(fn)(*args).jaxpr)


@pytest.mark.parametrize("depth", [1, 3])
@pytest.mark.parametrize("schedule", list(SCHEDULES))
def test_sequential_steps_read_from_the_program(schedule, depth):
    H, W = 5, 7
    model = make(in_features=1, hidden=2, depth=depth)
    x = randn((1, H, W, 1))
    counted = scan_steps(lambda p, x: SCHEDULES[schedule](p, x, "lstm"), model.params, x)

    assert counted == sequential_steps(schedule, H, W, depth)
    assert (
        sequential_steps(schedule, H, W, depth)
        == {
            "raster": H * W * depth,
            "wavefront": (H + W - 1) * depth,
            "pipelined": H + W + depth - 2,
        }[schedule]
    )


def test_sampler_takes_one_scan_step_per_anti_diagonal():
    H, W = 5, 7
    model = pixel_model(depth=3)
    u = jax.random.uniform(jax.random.key(5), (1, H, W))
    assert scan_steps(model.sample, u) == H + W - 1  # each step: d = 3 layer updates


# ------------------------------------------------------------------ bad configurations


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(in_features=0),
        dict(hidden=0),
        dict(depth=0),
        dict(depth=2.0),
        dict(cell="gru"),
        dict(schedule="diagonal"),
    ],
)
def test_invalid_config_raises(kwargs):
    args = dict(in_features=2, hidden=3, depth=2) | kwargs
    options = {k: args.pop(k) for k in ("cell", "schedule") if k in args}
    with pytest.raises(ValueError):
        MDRNN(args["in_features"], args["hidden"], args["depth"], **options, rngs=nnx.Rngs(0))


def test_wrong_input_shape_raises():
    with pytest.raises(ValueError, match="expected"):
        make(in_features=2)(randn((1, 4, 4, 3)))
