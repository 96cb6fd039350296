"""Device calibration and the limit model (bench/calibration.py).

The calibration is checked for structure only (four constants, positive, units, how each was
measured, a JSON round trip): its values are timings. The limit model is checked on toy
programs whose work and executed steps are known by hand (and counted by bench.structure),
under a made-up calibration whose round numbers make every term exact.
"""

import json
import math

import jax
import jax.numpy as jnp
import pytest

from bench.calibration import (
    Calibration,
    Constant,
    best_of,
    bytes_moved,
    calibrate,
    limit,
    limit_s,
    program_limit,
)
from bench.structure import analyse

# 1 GFLOP/s, 1 GB/s, 1 µs per loop iteration, 10 µs per dependent op.
TOY = Calibration.of(
    matmul_flops_per_s=1e9, bandwidth_bytes_per_s=1e9, loop_iteration_s=1e-6, dependent_op_s=1e-5
)


def sines(n):
    """A scan of n steps, one sin per step along the carry."""
    return lambda x: jax.lax.scan(lambda c, _: (jnp.sin(c), None), x, None, length=n)[0]


def nested_scans(x):  # 3 outer steps, each a scan of 4: 12 steps executed
    return jax.lax.scan(lambda c, _: (sines(4)(c), None), x, None, length=3)[0]


# --- calibration ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def smoke_calibration():
    return calibrate("smoke")


def test_calibration_has_four_positive_constants_with_units_and_method(smoke_calibration):
    units = {
        "matmul_flops_per_s": "FLOP/s",
        "bandwidth_bytes_per_s": "B/s",
        "loop_iteration_s": "s",
        "dependent_op_s": "s",
    }
    d = smoke_calibration.as_dict()
    assert set(d) == set(units)
    for name, unit in units.items():
        constant = getattr(smoke_calibration, name)
        assert isinstance(constant, Constant)
        assert constant.unit == unit
        assert math.isfinite(constant.value) and constant.value > 0
        assert constant.how  # says what was timed


def test_calibration_round_trips_through_json_for_env_json(smoke_calibration):
    text = json.dumps(smoke_calibration.as_dict())
    assert Calibration.from_dict(json.loads(text)) == smoke_calibration


def test_calibrate_rejects_an_unknown_profile():
    with pytest.raises(KeyError):
        calibrate("huge")


# --- the limit model: combination of the terms ---------------------------------------------


def test_limit_is_the_roofline_of_compute_and_memory_plus_the_steps():
    # 3 GFLOP (3 s), 2 GB (2 s), 1000 steps (1 ms)
    lim = limit(3e9, 2e9, 1000, TOY)
    assert (lim.compute_s, lim.memory_s, lim.steps_s) == pytest.approx((3.0, 2.0, 1e-3))
    assert lim.limit_s == pytest.approx(3.0 + 1e-3)
    assert lim.bound == "compute"
    assert limit_s(3e9, 2e9, 1000, TOY) == lim.limit_s


def test_the_bound_names_the_largest_term():
    assert limit(1e6, 1e9, 0, TOY).bound == "memory"
    assert limit(1e6, 1e6, 10**6, TOY).bound == "steps"


def test_dependent_ops_add_their_cost_to_the_steps_term():
    assert limit(0, 0, 10, TOY, dependent_ops=3).steps_s == pytest.approx(10e-6 + 30e-6)


def test_efficiency_is_limit_over_measured():
    lim = limit(2e9, 0, 0, TOY)  # 2 s
    assert lim.efficiency(4.0) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        lim.efficiency(0.0)


@pytest.mark.parametrize(
    "args", [(-1, 0, 0), (0, -1, 0), (0, 0, -1)], ids=["work", "bytes", "steps"]
)
def test_negative_counts_are_refused(args):
    with pytest.raises(ValueError):
        limit(*args, TOY)


def test_bytes_moved_is_argument_plus_output_plus_temp_or_none():
    memory = dict(mem_argument_bytes=10, mem_output_bytes=20, mem_temp_bytes=5)
    assert bytes_moved({**memory, "mem_generated_code_bytes": 99}) == 35
    assert bytes_moved({}) is None


# --- the limit model on toy programs with known counts --------------------------------------


def test_a_matmul_is_compute_bound_with_no_steps():
    n = 64
    a = jnp.ones((n, n), jnp.float32)
    lim = program_limit(jnp.matmul, (a, a), TOY)
    assert lim.compute_s == pytest.approx(2 * n**3 / 1e9)  # 2n³ FLOPs at 1 GFLOP/s
    assert lim.memory_s == pytest.approx(3 * n * n * 4 / 1e9)  # two inputs, one output
    assert lim.steps_s == 0
    assert lim.bound == "compute"


def test_an_elementwise_map_is_memory_bound():
    x = jnp.ones(10**5, jnp.float32)
    lim = program_limit(lambda x: x + 1.0, (x,), TOY)
    assert lim.compute_s == pytest.approx(1e5 / 1e9)  # one add per element
    assert lim.memory_s >= 2 * 4e5 / 1e9  # read and write 4e5 bytes at least
    assert lim.bound == "memory"


@pytest.mark.parametrize(
    ("program", "steps", "flops"),
    [(sines(50), 50, 50 * 3), (nested_scans, 12, 12 * 3)],
    ids=["scan of 50", "3 scans of 4"],
)
def test_a_scan_of_tiny_steps_is_bound_by_its_executed_steps(program, steps, flops):
    x = jnp.ones(3, jnp.float32)
    s = analyse(program, x)
    assert (s.steps_executed, s.work_flops) == (steps, flops)
    lim = program_limit(program, (x,), TOY)
    assert lim.steps_s == pytest.approx(steps * 1e-6)
    assert lim.compute_s == pytest.approx(flops / 1e9)
    assert lim.bound == "steps"
    assert lim.limit_s == pytest.approx(max(lim.compute_s, lim.memory_s) + steps * 1e-6)


def test_two_scans_one_after_the_other_add_their_steps():
    x = jnp.ones(3, jnp.float32)
    one, two = (
        program_limit(sines(7), (x,), TOY),
        program_limit(lambda x: sines(7)(sines(5)(x)), (x,), TOY),
    )
    assert two.steps_s - one.steps_s == pytest.approx(5e-6)


def test_best_of_takes_the_highest_rates_and_the_lowest_costs():
    slow = Calibration.of(
        matmul_flops_per_s=1e9,
        bandwidth_bytes_per_s=4e9,
        loop_iteration_s=1e-6,
        dependent_op_s=1e-6,
    )
    fast = Calibration.of(
        matmul_flops_per_s=2e9,
        bandwidth_bytes_per_s=3e9,
        loop_iteration_s=2e-6,
        dependent_op_s=5e-7,
    )
    best = best_of(slow, fast)
    assert best.matmul_flops_per_s.value == 2e9
    assert best.bandwidth_bytes_per_s.value == 4e9
    assert best.loop_iteration_s.value == 1e-6
    assert best.dependent_op_s.value == 5e-7
    assert best.matmul_flops_per_s.how.startswith("best of 2")
    with pytest.raises(ValueError):
        best_of()


def test_the_env_json_reader_checks_every_calibration_constant():
    """``bench.store`` keeps the names without importing JAX; they must be the dataclass's."""
    import dataclasses

    from bench import store
    from bench.calibration import Calibration

    assert store.CALIBRATION_CONSTANTS == tuple(f.name for f in dataclasses.fields(Calibration))
