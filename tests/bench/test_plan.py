"""The plan (bench/plan.py): estimates per case and in total, before anything runs."""

import jax
import jax.numpy as jnp
import pytest

from bench import plan
from bench.calibration import Calibration
from bench.cli import main
from bench.suites import binary_adder, deer, trained
from bench.timing import repeats_for
from bench.workloads import PLANNING, ConfigError

TOY = Calibration.of(
    matmul_flops_per_s=1e10, bandwidth_bytes_per_s=1e9, loop_iteration_s=1e-6, dependent_op_s=1e-6
)


def test_program_size_counts_equations_and_loops_once_per_body():
    def f(x):
        y = jax.lax.scan(lambda c, _: (jnp.sin(c) * 2.0, None), x, None, length=9)[0]
        return y + 1.0

    eqns, loops = plan.program_size(jax.make_jaxpr(f)(jnp.ones(3)).jaxpr)
    assert loops == 1 and eqns == 2 + 2  # scan and add; sin and mul in the body


def test_a_call_costs_its_work_and_its_loop_steps():
    from bench.structure import analyse

    s = analyse(lambda x: jax.lax.scan(lambda c, _: (c @ c, None), x, None, length=10)[0],
                jnp.ones((10, 10)))  # fmt: skip
    expected = s.work_flops / (plan.ASSUMED_EFFICIENCY * 1e10) + 10 * 1e-6 + plan.CALL_OVERHEAD_S
    assert plan.call_seconds(s, TOY) == expected
    assert repeats_for(1.0, 5) == 5 and repeats_for(1e-6, 5) == 100


def test_the_plan_command_prints_every_case_and_a_total(capsys):
    assert main(["plan", "--profile", "smoke", "--suite", "binary_adder"]) == 0
    out = capsys.readouterr().out
    assert out.count("binary_adder/binary_adder[seed]") == len(binary_adder.cases("smoke"))
    assert "claims C1" in out and "cases, estimated" in out


def test_the_plan_says_what_it_does_before_the_first_case_is_built(monkeypatch, capsys):
    """Building and tracing every case of a large profile takes minutes: the plan says so
    first, then each suite as it is done, on stderr (stdout keeps the table)."""
    said = []
    estimate = plan.estimate

    def spy(*args, **kwargs):
        said.append(capsys.readouterr().err)
        return estimate(*args, **kwargs)

    monkeypatch.setattr(plan, "estimate", spy)
    argv = ["plan", "--profile", "smoke", "--suite", "binary_adder", "--assume", "h100"]
    assert main(argv) == 0
    n = len(binary_adder.cases("smoke"))
    assert said[0].startswith(f"planning {n} cases of the smoke profile: building and tracing")
    err = "".join(said) + capsys.readouterr().err
    assert f"binary_adder: {n} cases traced" in err


def test_while_planning_cases_neither_read_a_run_folder_nor_run_to_count_their_loops():
    quasi = next(c for c in deer.cases("smoke") if c.variant == "quasi-deer")
    sampler = next(c for c in trained.cases("smoke") if c.model.endswith("-trained"))
    assert PLANNING.folder() is None
    assert quasi.workload(PLANNING).while_trip_count == deer.TYPICAL_ITERATIONS["quasi-deer"]
    assert sampler.workload(PLANNING).fn is not None  # fresh weights stand in for trained ones
    with pytest.raises(ConfigError, match="needs a run folder"):  # outside a run and a plan
        sampler.workload()
