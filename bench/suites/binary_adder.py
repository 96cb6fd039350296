"""Binary-adder suite (seed §1, claim C1): the hand-wired 3-unit threshold RNN.

Timing: the forward pass over n-bit inputs (a batch of random pairs) is n steps of a scan,
so ``seq_steps_pred = n``. The check compares the output with the true sum bits (a NumPy
ripple-carry reference), so a wrong network shows up as status ``wrong``, not as a timing.
C1 itself is checked exhaustively in ``bench/claims/binary_adder.py``.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from bench.nnx_adapters import forward_fn, n_params
from bench.workloads import Case, Suite, Workload, register
from models.binary_adder import BinaryAdderRNN

# (batch, numbers of bits n) per regime and profile. The latency sweep adds one pair at a time
# over long numbers: each step is a handful of scalar operations, so the chain of n steps
# is all there is to wait for.
SIZES = {
    "smoke": dict(work=(256, (8, 16)), latency=(1, (64, 128, 256, 512, 1024))),
    "cpu": dict(
        work=(1024, (16, 64, 256, 1024)), latency=(1, (2048, 4096, 8192, 16384, 32768, 65536))
    ),
    # full: a batch of 4096 pairs of 4096 bits is already 128 MiB of input and its NumPy
    # reference; a 3-unit step is latency-bound on any accelerator at any batch.
    "full": dict(
        work=(4096, (16, 64, 256, 1024, 4096)),
        latency=(1, (2048, 4096, 8192, 16384, 32768)),
    ),
}
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
    return [
        Case(
            "binary_adder",
            "binary_adder",
            "seed",
            "forward",
            _build(batch, n, seed=0),
            dict(batch=batch, seq_len=n, hidden=3),
            seq_steps_pred=n,
            regime=regime,
        )
        for regime, (batch, seq_lens) in SIZES[profile].items()
        for n in seq_lens
    ]


register(
    Suite(
        "binary_adder",
        "3-unit threshold RNN adding binary numbers (seed §1) over the number of bits",
        cases,
    )
)
