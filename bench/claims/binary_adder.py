"""C1 (seed §1): the hand-wired 3-unit threshold RNN adds two binary numbers, LSB first.

Experiment: every pair of n-bit numbers for n = 1..N (4^n pairs, n + 1 steps, the last on
zero input so the final carry comes out), plus random pairs at larger n; and the same check
on a negative control (the seed's W_hh read as a row-vector map), to show the check can fail.

The rule is :data:`RULE`: a control that is right too means the check proved nothing.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from bench.claims import Claim, Experiment, Rule, Verdict, register, state
from bench.store import write_table
from models.binary_adder import SEED_WEIGHTS_ROW_CONVENTION, BinaryAdderRNN, add

# Exhaustive up to this many bits; then RANDOM_PAIRS random pairs at each of RANDOM_BITS.
EXHAUSTIVE_BITS = {"smoke": 6, "cpu": 10, "full": 10}
RANDOM_BITS, RANDOM_PAIRS = (16, 24, 30), 1 << 16


def _count_wrong(model, n_bits: int, a: np.ndarray, b: np.ndarray, add_jit) -> int:
    total = add_jit(model, jnp.asarray(a), jnp.asarray(b), n_bits)
    return int(np.sum(np.asarray(total, np.int64) != a.astype(np.int64) + b))


def exhaustive(profile: str) -> list[dict]:
    """Rows: weights (seed | row_convention_control), n_bits, pairs, n_pairs, n_wrong."""
    add_jit = jax.jit(add, static_argnums=3)
    rng = np.random.default_rng(0)
    rows = []
    for weights_name, model in (
        ("seed", BinaryAdderRNN()),
        ("row_convention_control", BinaryAdderRNN(SEED_WEIGHTS_ROW_CONVENTION)),
    ):
        for n in range(1, EXHAUSTIVE_BITS[profile] + 1):
            a, b = (g.ravel() for g in np.meshgrid(np.arange(2**n), np.arange(2**n)))
            wrong = _count_wrong(model, n, a, b, add_jit)
            rows.append(
                dict(weights=weights_name, n_bits=n, pairs="all", n_pairs=a.size, n_wrong=wrong)
            )
        for n in RANDOM_BITS if weights_name == "seed" else ():
            a, b = (rng.integers(0, 2**n, RANDOM_PAIRS) for _ in range(2))
            wrong = _count_wrong(model, n, a, b, add_jit)
            rows.append(
                dict(weights=weights_name, n_bits=n, pairs="random", n_pairs=a.size, n_wrong=wrong)
            )
    return rows


C1 = Rule(
    "C1",
    "seed weights in the Flax RNN (W_hh applied as W_hh·h(t-1)); all 4^n pairs for "
    f"n = 1..{{exhaustive_bits}} plus {RANDOM_PAIRS} random pairs at n = "
    f"{', '.join(map(str, RANDOM_BITS))}; n+1 steps, LSB first, y(t) read from h(t)",
    "exact count of wrong sums",
    "PASS iff 0 pairs wrong and the control has > 0 wrong; FAIL iff any pair wrong; "
    "INCONCLUSIVE iff the control is also right",
)
"""C1's rule; its check names the profile's exhaustive bits (``{exhaustive_bits}``)."""


def judge(rows: list[dict], exhaustive_bits: int) -> Verdict:
    seed = [r for r in rows if r["weights"] == "seed"]
    control = [r for r in rows if r["weights"] != "seed"]
    checked, wrong = sum(r["n_pairs"] for r in seed), sum(r["n_wrong"] for r in seed)
    ctrl_checked, ctrl_wrong = (sum(r[k] for r in control) for k in ("n_pairs", "n_wrong"))
    if wrong:
        verdict = "FAIL"
        statement = f"the seed's weights add {wrong} of {checked} pairs wrongly"
    elif not ctrl_wrong:
        verdict = "INCONCLUSIVE"
        statement = "the negative control passed too, so this check cannot tell right from wrong"
    else:
        verdict = "PASS"
        statement = f"the seed's network adds all {checked} pairs checked correctly"
    measured = (
        f"{wrong} of {checked} pairs wrong; control (W_hh read as h(t-1)·W_hh): "
        f"{ctrl_wrong} of {ctrl_checked} wrong"
    )
    facts = dict(
        checked=checked, wrong=wrong, control_checked=ctrl_checked, control_wrong=ctrl_wrong
    )
    check = C1.check.format(exhaustive_bits=exhaustive_bits)
    return C1.verdict(verdict, measured, statement, facts, check=check)


def run(profile: str, run_dir) -> list[Verdict]:
    rows = exhaustive(profile)
    write_table(run_dir, "binary_adder_exhaustive.csv", rows)
    return [judge(rows, EXHAUSTIVE_BITS[profile])]


register(Experiment("binary_adder", ("C1",), run, cost_s=dict(smoke=2, cpu=5, full=5)))
state(
    Claim(
        "C1",
        "§1",
        "a 3-unit threshold RNN with the seed's hand-set weights adds two binary numbers, least "
        "significant bit first",
        C1.measure,
        __name__,
        (C1.text,),
    )
)
