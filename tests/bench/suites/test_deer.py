"""The deer suite's wiring (bench/suites/deer.py): its smoke cases, its memory guard, and a
Newton iteration that does not converge recorded as ``diverged`` while the sweep goes on."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

from bench import analysis, environment, report, store, verdicts
from bench.claims import deer as claims_deer
from bench.config import RunConfig
from bench.runner import Protocol
from bench.session import Session
from bench.structure import analyse
from bench.suites import deer
from bench.suites.deer import JACOBIAN_ENTRIES_LIMIT, cases, fits_memory, health
from models.deer import Stats


@pytest.fixture(scope="module")
def smoke():
    """Every smoke case built once: {(mode, variant): (case, workload)}."""
    return {(c.mode, c.variant): (c, c.workload()) for c in cases("smoke")}


def test_smoke_cases_build_run_and_agree_with_the_sequential_scan(smoke):
    assert {key for key in smoke} == {
        (mode, variant) for mode in ("forward", "train") for variant in deer.VARIANTS
    }
    outputs = {}
    for (mode, variant), (case, work) in smoke.items():
        out = jax.jit(work.fn)(*work.args)
        assert health(out) == "ok", case.label
        outputs[mode, variant] = out
        if variant == "sequential":
            assert case.seq_steps_pred == case.sizes["seq_len"] and not work.extra
            continue
        # the iterations the build measured are the run's, and the structure counts them
        k = work.extra["newton_iterations"]
        assert work.while_trip_count == k == int(out[-1].iterations)
        assert work.extra["converged"] and work.note
        steps = analyse(work.fn, *work.args, while_trip_count=k).steps_executed
        assert steps == k
    for variant in ("deer", "quasi-deer"):
        # forward: every h(t); train: the loss and the updated parameters
        np.testing.assert_allclose(
            outputs["forward", variant][0], outputs["forward", "sequential"][0], atol=1e-5
        )
        got, want = outputs["train", variant], outputs["train", "sequential"]
        np.testing.assert_allclose(got[2], want[2], rtol=1e-5)
        for a, b in zip(jax.tree.leaves(got[0]), jax.tree.leaves(want[0]), strict=True):
            np.testing.assert_allclose(a, b, atol=1e-5)


def test_compared_variants_get_the_same_parameters_and_inputs(smoke):
    for mode in ("forward", "train"):
        base = smoke[mode, "sequential"][1].args
        for variant in ("deer", "quasi-deer"):
            args = smoke[mode, variant][1].args
            for a, b in zip(jax.tree.leaves(args), jax.tree.leaves(base), strict=True):
                np.testing.assert_array_equal(a, b)


def test_check_names_divergence_and_non_finite_values():
    stats = Stats(jnp.int32(3), jnp.float32(0.5), jnp.float32(0.1), jnp.array(False))
    assert health((jnp.zeros(2), stats)) == "diverged"
    assert health((jnp.zeros(2), stats._replace(converged=jnp.array(True)))) == "ok"
    assert health(({}, (), jnp.float32(jnp.nan), None)) == "nan"  # a train step's NaN loss
    assert health((jnp.ones(2), None)) == "ok"


def test_the_whole_grid_leaves_out_only_what_its_dense_jacobians_cannot_hold():
    full = {(c.variant, c.mode, *c.sizes.values()) for c in deer.cases_of(deer.WHOLE_GRID)}
    assert ("sequential", "forward", 16, 65536, 64) in full  # the scan has no guard
    assert ("quasi-deer", "forward", 1, 65536, 64) in full  # diagonal forward: O(T·H) memory
    assert ("deer", "forward", 1, 65536, 64) not in full  # 2^32 entries
    assert ("quasi-deer", "train", 1, 65536, 64) not in full  # its backward is dense
    assert ("deer", "forward", 1, 16384, 64) in full  # exactly at the limit
    assert fits_memory("deer", "forward", 1, 16384, 64)
    assert 16384 * 128**2 == JACOBIAN_ENTRIES_LIMIT
    assert not fits_memory("deer", "train", 16, 1024, 128)


def test_the_cpu_profile_times_all_three_evaluators_where_the_issue_expects_a_win():
    cpu = cases("cpu")
    goal = [c for c in cpu if c.sizes["batch"] == 1 and c.sizes["hidden"] <= 8]
    assert {c.variant for c in goal if c.sizes["seq_len"] >= 4096} == set(deer.VARIANTS)
    # the iterations vs T are swept untimed by C13's experiment, over five T across 256×
    sweep = claims_deer.ITERATION_SWEEP["cpu"]["seq_lens"]
    assert len(sweep) >= claims_deer.MIN_ITER_POINTS
    assert max(sweep) / min(sweep) >= claims_deer.MIN_ITER_RANGE


def all_cases(case) -> bool:
    return True


def test_a_newton_iteration_capped_short_of_converging_is_recorded_as_diverged(
    monkeypatch, tmp_path
):
    monkeypatch.setitem(deer.SIZES, "smoke", [("forward", 1, 16, 2)])
    monkeypatch.setattr(deer, "MAX_ITER", {"deer": 1, "quasi-deer": 1})
    config = RunConfig.create(profile="smoke", suites=["deer"], repeats=1, experiments=False)
    env = environment.environment("test", config)
    store.write_json(tmp_path / "env.json", env)
    session = Session(config, tmp_path, env, keep=all_cases, in_run=all_cases, experiments=False)
    session.log = lambda text: None
    session.measure_cases(Protocol.of(config, "test", tmp_path, calibration=None))

    df = analysis.load_measurements(tmp_path / "measurements.csv").set_index("variant")
    assert df.loc["sequential", "status"] == "ok"  # the sweep went on around them
    for variant in ("deer", "quasi-deer"):
        row = df.loc[variant]
        extra = json.loads(row.extra_json)
        assert row.status == "diverged" and pd.isna(row.time_median_s)
        assert extra["newton_iterations"] == 1 and extra["max_iter"] == 1
        assert extra["converged"] is False and extra["residual"] > 0
        assert row.steps_executed == 1  # counted for the run actually made
    text = report.render(verdicts.judge_run(tmp_path)).read_text()
    assert "diverged" in text.split("## DEER")[1]
