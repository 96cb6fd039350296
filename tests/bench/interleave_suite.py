"""A sweep group for the interleaving tests (loaded via BENCH_SUITE_MODULES): three
latency-regime cases whose calls each sleep ``SLEEP_S`` on the host, so a test can stop the
run while it is in the group's rounds."""

import time

import jax
import jax.numpy as jnp

from bench.workloads import Case, Suite, Workload, register

SLEEP_S = 0.02


def _sleepy(scale: float):
    def fn(x):
        def wait(v):
            time.sleep(SLEEP_S * scale)
            return v

        y = jax.pure_callback(wait, jax.ShapeDtypeStruct(x.shape, x.dtype), x)
        return jnp.sin(y) * scale

    return lambda: Workload(fn, (jnp.ones(4),), n_params=0)


def cases(profile: str) -> list[Case]:
    return [
        Case(
            "sweep",
            "toy",
            "sleepy",
            "forward",
            _sleepy(s),
            {"batch": 1, "seq_len": n},
            n,
            regime="latency",
        )  # fmt: skip
        for n, s in ((1, 1.0), (2, 1.5), (4, 2.0))
    ] + [Case("sweep", "toy", "alone", "forward", _sleepy(1.0), {"batch": 1, "seq_len": 1})]


register(Suite("sweep", "a sweep group of three sleepy cases, and one case timed alone", cases))
