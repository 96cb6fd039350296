"""A sweep group for the interleaving tests (loaded via BENCH_SUITE_MODULES): three
latency-regime cases whose calls each sleep ``SLEEP_S`` on the host, so a test can stop the
run while it is in the group's rounds; and ``sweep-faulty``, a group of four whose third point
fails in the third round (:data:`GROUP_FAULT` says how)."""

import os
import signal
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


GROUP_FAULT = "BENCH_TEST_GROUP_FAULT"
"""How the faulty point of ``sweep-faulty`` fails once its rounds are under way: ``raise`` (an
error in its host callback, the default), ``memory`` (a MemoryError there), ``hang``, or
``ctrl-c`` (the user's Ctrl-C while it waits in its host callback)."""
FAULTY_AFTER = 6  # calls: its first and warm-up call (2), then two rounds' visits (2 each)


def _faulty():
    def fn(x):
        calls = []

        def host(v):
            calls.append(1)
            if len(calls) > FAULTY_AFTER:  # the third round
                fault = os.environ.get(GROUP_FAULT, "raise")
                if fault == "ctrl-c":
                    os.kill(os.getpid(), signal.SIGINT)
                if fault in ("hang", "ctrl-c"):
                    time.sleep(600)
                raise MemoryError("host buffer") if fault == "memory" else ValueError("broke")
            time.sleep(SLEEP_S)
            return v

        return jax.pure_callback(host, jax.ShapeDtypeStruct(x.shape, x.dtype), x)

    return lambda: Workload(fn, (jnp.ones(4),), n_params=0)


def faulty_cases(profile: str) -> list[Case]:
    sizes = [(1, _sleepy(1.0)), (2, _sleepy(1.5)), (3, _faulty()), (4, _sleepy(2.0))]
    return [
        Case(
            "sweep-faulty",
            "toy",
            "sleepy",
            "forward",
            build,
            {"batch": 1, "seq_len": n},
            n,
            regime="latency",
        )  # fmt: skip
        for n, build in sizes
    ]


register(
    Suite("sweep-faulty", "a sweep group of four points, one failing in round 3", faulty_cases)
)
