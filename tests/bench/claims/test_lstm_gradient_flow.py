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


def run(prod_f_min, rho_min=None, rho_max=1.0, *, gates=0.004, one_minus_f=0.004, regime=None):
    """A sweep row whose Π f falls to ``prod_f_min``; ρ follows it unless ``rho_min`` says
    otherwise (ρ(1) = min ρ; the errors as flow_sweep computes them from ρ(t) and P(t))."""
    rho_min = prod_f_min if rho_min is None else rho_min
    horizon = -math.log(prod_f_min) if prod_f_min < 1 else 0.01
    rho = np.array([rho_min, rho_max, 1.0])
    prod_f = np.array([prod_f_min, 1.0, 1.0])
    return dict(
        regime=regime or f"r{prod_f_min}",
        b_i=-6,
        b_f=6,
        b_o=-6,
        w_h_scale=1.0,
        seq_len=max(2, round(horizon / one_minus_f)),
        mean_1_minus_f=one_minus_f,
        mean_i=gates,
        mean_o=gates,
        worst_1_minus_f=one_minus_f,
        worst_i=gates,
        worst_o=gates,
        horizon=horizon,
        rho_first=rho_min,
        rho_min=rho_min,
        rho_max=rho_max,
        prod_f_min=prod_f_min,
        err_unchanged=c4._log_error(rho, np.ones_like(rho)),
        err_prod_f=c4._log_error(rho, prod_f),
    )


NEAR_1 = [run(0.999), run(0.95)]  # Π f ≈ 1: both hypotheses fit, neither is tested
FOLLOWS_PROD_F = [run(math.exp(-2.0)), run(math.exp(-20.0))]
STAYS_AT_1 = [run(math.exp(-2.0), rho_min=0.9), run(math.exp(-20.0), rho_min=0.8)]
OPEN_GATES_EXPLODED = [run(0.999, rho_max=300.0, gates=0.5)]


def test_corrected_when_the_gradient_follows_the_product_of_forget_gates():
    v = judge(NEAR_1 + FOLLOWS_PROD_F + OPEN_GATES_EXPLODED)
    assert isinstance(v, Verdict) and v.claim == "C4"
    assert (v.verdict, v.slip) == ("CORRECTED", "mathematical error")


def test_pass_when_the_gradient_stays_at_1_where_the_product_falls():
    assert judge(NEAR_1 + STAYS_AT_1 + OPEN_GATES_EXPLODED).verdict == "PASS"


def test_either_hypothesis_can_miss_the_same_runs():
    rows = NEAR_1 + FOLLOWS_PROD_F
    assert not any(map(c4.fits_unchanged, FOLLOWS_PROD_F))
    assert all(map(c4.fits_prod_f, rows))
    assert not any(map(c4.fits_prod_f, STAYS_AT_1)) and all(map(c4.fits_unchanged, STAYS_AT_1))


def test_fail_when_the_gradient_follows_neither():
    # vanishes ten times faster than Π f
    off = [run(math.exp(-2.0), rho_min=math.exp(-4.5))]
    assert judge(NEAR_1 + FOLLOWS_PROD_F + off + OPEN_GATES_EXPLODED).verdict == "FAIL"
    # explodes with f ≈ 1 and i, o ≈ 0
    blown = [run(0.999, rho_max=5.0)]
    assert judge(NEAR_1 + FOLLOWS_PROD_F + blown + OPEN_GATES_EXPLODED).verdict == "FAIL"


def test_fail_when_some_runs_follow_1_and_others_the_product():
    mixed = [FOLLOWS_PROD_F[0], STAYS_AT_1[1]]
    assert judge(NEAR_1 + mixed + OPEN_GATES_EXPLODED).verdict == "FAIL"


def test_inconclusive_without_enough_runs_where_the_product_strays_from_1():
    v = judge(NEAR_1 + FOLLOWS_PROD_F[:1] + OPEN_GATES_EXPLODED)
    assert v.verdict == "INCONCLUSIVE"
    # products of 0.5 and 0.46 stay above 1/1.5²: a ρ there could fit both hypotheses
    assert judge(NEAR_1 + [run(0.5), run(0.46)] + OPEN_GATES_EXPLODED).verdict == "INCONCLUSIVE"


def test_inconclusive_when_no_run_exploded_anywhere():
    assert judge(NEAR_1 + FOLLOWS_PROD_F).verdict == "INCONCLUSIVE"


def test_the_regime_is_judged_at_the_worst_step_not_on_average():
    # Gates closed on average but open at some step: outside the seed's regime, so its
    # explosion is a control, not a counterexample.
    opened = dict(run(0.999, rho_max=30.0), worst_i=0.09)
    assert not c4.in_seed_regime(opened)
    assert judge(NEAR_1 + FOLLOWS_PROD_F + [opened]).verdict == "CORRECTED"
    assert judge(NEAR_1 + FOLLOWS_PROD_F + [dict(opened, worst_i=0.004)]).verdict == "FAIL"


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
    np.testing.assert_allclose(both["prod_f"][0, :5], alone["prod_f"][0], rtol=1e-12)
    np.testing.assert_allclose(both["prod_f"][:, -1], 1.0, rtol=1e-12)  # P(T) = 1: none ahead
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
    # With the gates closed by bias the gradient is the forget gates' product, to ×1.05.
    closed = [r for r in rows if c4.in_seed_regime(r) and r["w_h_scale"] == 1]
    assert closed and all(r["err_prod_f"] < math.log(1.05) for r in closed)
