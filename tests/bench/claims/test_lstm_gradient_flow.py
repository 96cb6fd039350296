"""C4's rule (bench/claims/lstm.py, judge_gradient_flow): every outcome from hand-made tables,
and a smoke run of the experiment."""

from __future__ import annotations

import csv
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from bench.claims import Verdict
from bench.claims import lstm as c4
from bench.claims.lstm import judge_gradient_flow as judge
from models.lstm import LSTM


def run(horizon, rho_min=1.0, rho_max=1.0, *, gates=0.004, one_minus_f=0.004, w_h_scale=1.0):
    """A sweep row; ρ(1) and its Π f prediction default to e^{−T(1−f)} when it vanished."""
    first = rho_min if rho_min < 1 else rho_max
    return dict(
        regime=f"r{horizon}",
        b_i=-6,
        b_f=6,
        b_o=-6,
        w_h_scale=w_h_scale,
        seq_len=round(horizon / one_minus_f),
        mean_1_minus_f=one_minus_f,
        mean_i=gates,
        mean_o=gates,
        worst_1_minus_f=one_minus_f,
        worst_i=gates,
        worst_o=gates,
        horizon=horizon,
        rho_first=first,
        rho_min=rho_min,
        rho_max=rho_max,
        prod_f_prediction=math.exp(-horizon) if rho_min < 1 else 1.0,
    )


SHORT = [run(0.01), run(0.05, rho_min=0.95)]
LONG_VANISHED = [run(2.0, rho_min=math.exp(-2.0)), run(20.0, rho_min=math.exp(-20.0))]
LONG_KEPT = [run(2.0, rho_min=0.9), run(20.0, rho_min=0.8)]
OPEN_GATES_EXPLODED = [run(0.01, rho_max=300.0, gates=0.5)]


def test_corrected_when_only_short_horizons_keep_the_gradient():
    v = judge(SHORT + LONG_VANISHED + OPEN_GATES_EXPLODED)
    assert isinstance(v, Verdict) and v.claim == "C4"
    assert (v.verdict, v.slip) == ("CORRECTED", "mathematical error")
    assert "iff T(1−f) ≪ 1" in v.statement
    assert "multiplied by Π f" in v.statement  # every run within ×2 of its Π f prediction
    assert "exploded in 1 runs outside it, all with i or o > 0.02" in v.statement


def test_corrected_statement_names_pi_f_only_when_the_data_match_it():
    off = [dict(r, prod_f_prediction=r["prod_f_prediction"] * 10) for r in LONG_VANISHED]
    v = judge(SHORT + off + OPEN_GATES_EXPLODED)
    assert v.verdict == "CORRECTED" and "Π f" not in v.statement


def test_pass_when_long_horizons_keep_it_too():
    v = judge(SHORT + LONG_KEPT + OPEN_GATES_EXPLODED)
    assert v.verdict == "PASS" and "carried unchanged" in v.statement


def test_fail_when_it_explodes_with_f_near_1_and_i_o_near_0():
    v = judge(SHORT + LONG_VANISHED + OPEN_GATES_EXPLODED + [run(0.01, rho_max=5.0)])
    assert v.verdict == "FAIL" and "exploded in 1 run" in v.statement


def test_fail_when_it_vanishes_at_a_short_horizon():
    v = judge(SHORT + [run(0.02, rho_min=0.3)] + LONG_VANISHED + OPEN_GATES_EXPLODED)
    assert v.verdict == "FAIL" and "vanished in 1 run(s) even with T(1−f) ≤ 0.1" in v.statement


def test_inconclusive_without_enough_long_runs_in_the_seed_regime():
    v = judge(SHORT + LONG_VANISHED[:1] + OPEN_GATES_EXPLODED)
    assert v.verdict == "INCONCLUSIVE" and "need ≥ 2 short and ≥ 2 long" in v.measured
    assert v.statement.startswith("the sweep cannot decide")


def test_inconclusive_when_no_run_exploded_anywhere():
    v = judge(SHORT + LONG_VANISHED)
    assert v.verdict == "INCONCLUSIVE" and "never shown able to see an explosion" in v.measured


def test_inconclusive_when_long_horizons_disagree():
    v = judge(SHORT + [LONG_KEPT[0], LONG_VANISHED[1]] + OPEN_GATES_EXPLODED)
    assert v.verdict == "INCONCLUSIVE" and "mixed (1/2 kept)" in v.measured


def test_the_regime_is_judged_at_the_worst_step_not_on_average():
    # Gates closed on average but open at some step: outside the seed's regime, so its
    # explosion is a control, not a counterexample.
    opened = dict(run(0.01, rho_max=30.0), worst_i=0.09)
    assert not c4.in_seed_regime(opened)
    assert judge(SHORT + LONG_VANISHED + [opened]).verdict == "CORRECTED"
    assert judge(SHORT + LONG_VANISHED + [dict(opened, worst_i=0.004)]).verdict == "FAIL"


def test_one_forward_pass_gives_each_horizon_the_gradient_of_a_run_of_that_length():
    with jax.enable_x64(True):
        base = jax.tree.map(
            lambda a: jnp.asarray(a, jnp.float64), LSTM(2, 3, rngs=nnx.Rngs(0)).params
        )
        params = c4.Regime("r", 0.0, 2.0, 0.0, 2.0).params(base)
        x = jax.random.normal(jax.random.key(1), (2, 12, 2), jnp.float64)
        both = jax.tree.map(np.asarray, c4.cell_gradient_flow(params, x, (5, 12)))
        alone = jax.tree.map(np.asarray, c4.cell_gradient_flow(params, x[:, :5], (5,)))
    np.testing.assert_allclose(both["rho"][0, :5], alone["rho"][0], rtol=1e-12)
    np.testing.assert_array_equal(both["rho"][0, 5:], 0.0)
    np.testing.assert_allclose(both["prod_f"][0], alone["prod_f"][0], rtol=1e-12)
    assert both["rho"][1, -1] == pytest.approx(1.0, abs=1e-12) and both["rho"].shape == (2, 12)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("c4")
    return run_dir, c4.gradient_flow("smoke", run_dir)


def test_smoke_experiment_writes_its_table_and_one_verdict(smoke):
    run_dir, verdicts = smoke
    (v,) = verdicts
    assert v.claim == "C4" and v.verdict in ("PASS", "FAIL", "CORRECTED", "INCONCLUSIVE")
    with open(run_dir / c4.FLOW_TABLE) as f:
        rows = list(csv.DictReader(f))
    horizons = c4.FLOW_SIZES["smoke"]["horizons"]
    assert len(rows) == len(c4.REGIMES) * len(horizons)
    types = {"regime": str, "seq_len": int}
    rows = [{k: types.get(k, float)(val) for k, val in r.items()} for r in rows]
    assert judge(rows) == v  # the verdict is a function of the written table
    assert all(r["rho_min"] <= 1 + 1e-12 and r["rho_max"] >= 1 - 1e-12 for r in rows)  # ρ(T) = 1
    # With i, o ≈ 0 and f = σ(0) ≈ ½ the gradient halves per step back.
    closed_bf0 = next(r for r in rows if r["regime"] == "closed_bf0" and r["seq_len"] == 10)
    assert closed_bf0["rho_first"] < 0.01
