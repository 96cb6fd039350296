"""Binary-adder suite (seed §1, claim C1): the hand-wired 3-unit threshold RNN.

Timing: the forward pass over n-bit inputs (a batch of random pairs) is n steps of a scan,
so ``seq_steps_pred = n``. The check compares the output with the true sum bits (a NumPy
ripple-carry reference), so a wrong network shows up as status ``wrong``, not as a timing.

Experiment (C1): every pair of n-bit numbers for n = 1..N (4^n pairs, n + 1 steps, the last
on zero input so the final carry comes out), plus random pairs at larger n; and the same
check on a negative control (the seed's W_hh read as a row-vector map) to show it can fail.
"""

from __future__ import annotations

import csv

import jax
import jax.numpy as jnp
import numpy as np

from bench.steps import forward_fn, n_params
from bench.workloads import Case, Suite, Workload, register
from models.binary_adder import SEED_WEIGHTS_ROW_CONVENTION, BinaryAdderRNN, add

SIZES = {
    "smoke": dict(batch=256, seq_lens=(8, 16)),
    "cpu": dict(batch=1024, seq_lens=(16, 64, 256, 1024)),
    "full": dict(batch=65536, seq_lens=(16, 64, 256, 1024, 4096)),
}
# Exhaustive up to this many bits; then RANDOM_PAIRS random pairs at each of RANDOM_BITS.
EXHAUSTIVE_BITS = {"smoke": 6, "cpu": 10, "full": 10}
RANDOM_BITS, RANDOM_PAIRS = (16, 24, 30), 1 << 16

# 2·MACs per step and pair: W_xh x (3×2) + W_hh h (3×3) + W_hy·h (3).
FLOPS_PER_STEP = 2 * (6 + 9 + 3)


def reference_sum_bits(x_BxTx2: np.ndarray) -> np.ndarray:
    """Ripple-carry addition of LSB-first bit streams, in NumPy: the oracle for the check."""
    x = x_BxTx2.astype(np.int64)
    carry = np.zeros(x.shape[0], np.int64)
    out = np.empty(x.shape[:2], np.float32)
    for t in range(x.shape[1]):
        s = x[:, t, 0] + x[:, t, 1] + carry
        out[:, t], carry = s & 1, s >> 1
    return out


def _build(batch: int, seq_len: int, seed: int):
    def build() -> Workload:
        model = BinaryAdderRNN()
        rng = np.random.default_rng(seed)
        x_np = rng.integers(0, 2, (batch, seq_len, 2)).astype(np.float32)
        expected = reference_sum_bits(x_np)

        def check(y) -> str:
            y = np.asarray(y)
            if not np.isin(y, (0.0, 1.0)).all():
                return "range"
            return "ok" if np.array_equal(y, expected) else "wrong"

        fn, state = forward_fn(model)
        extra = {"flops_analytic": FLOPS_PER_STEP * batch * seq_len}
        x = jnp.asarray(x_np)
        return Workload(fn, (state, x), n_params(model), check, extra, batch_argnum=1)

    return build


def cases(profile: str) -> list[Case]:
    s = SIZES[profile]
    return [
        Case(
            "binary_adder",
            "binary_adder",
            "seed",
            "forward",
            _build(s["batch"], n, seed=0),
            dict(batch=s["batch"], seq_len=n, hidden=3),
            seq_steps_pred=n,
        )
        for n in s["seq_lens"]
    ]


def _count_wrong(model, n_bits: int, a: np.ndarray, b: np.ndarray, add_jit) -> int:
    total = add_jit(model, jnp.asarray(a), jnp.asarray(b), n_bits)
    return int(np.sum(np.asarray(total, np.int64) != a.astype(np.int64) + b))


def experiments(profile: str, run_dir) -> list[dict]:
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

    with open(run_dir / "binary_adder_exhaustive.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)

    seed = [r for r in rows if r["weights"] == "seed"]
    control = [r for r in rows if r["weights"] != "seed"]
    n_ex = EXHAUSTIVE_BITS[profile]
    checked, wrong = sum(r["n_pairs"] for r in seed), sum(r["n_wrong"] for r in seed)
    ctrl_checked, ctrl_wrong = (sum(r[k] for r in control) for k in ("n_pairs", "n_wrong"))
    return [
        dict(
            claim="C1",
            check=(
                f"seed weights in the Flax RNN (W_hh applied as W_hh·h(t-1)); all 4^n pairs for "
                f"n = 1..{n_ex} plus {RANDOM_PAIRS} random pairs at n = "
                f"{', '.join(map(str, RANDOM_BITS))}; n+1 steps, LSB first, y(t) read from h(t)"
            ),
            measured=(
                f"{wrong} of {checked} pairs wrong; control (W_hh read as h(t-1)·W_hh): "
                f"{ctrl_wrong} of {ctrl_checked} wrong"
            ),
            verdict="PASS" if wrong == 0 and ctrl_wrong > 0 else "FAIL",
        )
    ]


register(
    Suite(
        "binary_adder",
        "3-unit threshold RNN adding binary numbers (seed §1) over the number of bits",
        cases,
        experiments,
    )
)
