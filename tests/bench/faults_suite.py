"""Suites that fail on purpose, for the reliability and fault-injection tests (loaded via
BENCH_SUITE_MODULES).

- ``faults``: cases that fail in the ordinary ways (build error, OOM, NaN, ...);
- ``faults-hang``: a case that never finishes, then one that does;
- ``faults-rude``: cases that try to end the run from inside (``SystemExit``, their own
  ``KeyboardInterrupt``, ``MemoryError``, a 64 TiB array, an error in a host callback, a stall
  in one timed call), safe to run in the test process;
- ``faults-crash``: a case that aborts the process measuring it, then one that is fine;
- ``faults-worker``: for ``--case-timeout``: a case that starts slowly, one that aborts its
  worker, one that hangs, one after them;
- ``faults-sized``: two quick cases whose sizes depend on the profile, as a real suite's do;
- ``faults-ctrl-c``: a case, then one whose host callback gets the user's Ctrl-C.
"""

import multiprocessing
import os
import signal
import time

import jax
import jax.numpy as jnp

from bench.nnx_adapters import finite_loss
from bench.workloads import Case, Suite, Workload, register

SLOW_WORKER_START = "BENCH_TEST_SLOW_WORKER_START"
"""Seconds a worker process (``--case-timeout``) spends importing this module: a slow start
that must not count against a case's timeout."""
if multiprocessing.parent_process() is not None:
    time.sleep(float(os.environ.get(SLOW_WORKER_START, "0")))


def _raise(error):
    def build():
        raise error

    return build


def _workload(fn, *args, health=None):
    return lambda: Workload(fn, args, n_params=0, health=health)


def _in_unit_range(x):
    return "ok" if bool(((x >= 0) & (x <= 1)).all()) else "range"


def _halve_by_linear_solve(x):
    return jax.lax.custom_linear_solve(lambda v: 2.0 * v, x, lambda matvec, b: b / 2.0)


def _sleep(seconds):
    def build():
        time.sleep(seconds)
        return Workload(lambda x: x + 1, (jnp.ones(3),), n_params=0)

    return build


FAULTS = {
    "build-error": ("forward", _raise(ValueError("kernel must be odd, got 4"))),
    "oom": ("train", _raise(RuntimeError("RESOURCE_EXHAUSTED: Out of memory allocating 1TB"))),
    "shape-error": ("forward", _workload(lambda a, b: a @ b, jnp.ones((2, 3)), jnp.ones((4, 5)))),
    "nan": ("train", _workload(lambda x: (x, jnp.log(-x).sum()), jnp.ones(3), health=finite_loss)),
    "range": ("sample", _workload(lambda x: x * 3, jnp.ones(3), health=_in_unit_range)),
    "fine": ("forward", _workload(lambda x: jnp.sin(x), jnp.ones(3))),
    # runs fine, but bench.structure has no rule for custom_linear_solve: no span/work
    "uncountable": ("forward", _workload(_halve_by_linear_solve, jnp.ones(3))),
}


def cases(profile):
    return [
        Case("faults", "toy", name, mode, build, {"batch": 1})
        for name, (mode, build) in FAULTS.items()
    ]


def hang_cases(profile):
    return [
        Case("faults-hang", "toy", "hangs", "forward", _sleep(600), {"batch": 1}),
        Case("faults-hang", "toy", "after", "forward", _sleep(0), {"batch": 1}),
    ]


def _call(fn):
    def build():
        fn()
        return Workload(lambda x: x + 1, (jnp.ones(3),), n_params=0)

    return build


def _exit():
    raise SystemExit(0)


def _own_interrupt():
    raise KeyboardInterrupt("raised by the case, not by the user")


def _memory():
    bytearray(2**62)


def _abort():
    os.abort()  # as an XLA check failure would


def _huge(x):
    return jnp.zeros((2**44,), jnp.float32) + x  # 64 TiB: no machine has it


def _failing_callback(x):
    def host(v):
        raise ValueError("the host callback failed")

    return jax.pure_callback(host, jax.ShapeDtypeStruct(x.shape, x.dtype), x)


def _stalls_once(stall_s=1.0, normal_s=0.25):
    """A call of ``normal_s`` whose third call (the second timed one) stalls for ``stall_s``."""
    calls = []

    def host(v):
        calls.append(1)
        time.sleep(stall_s if len(calls) == 3 else normal_s)
        return v

    def fn(x):
        return jax.pure_callback(host, jax.ShapeDtypeStruct(x.shape, x.dtype), x)

    return _workload(fn, jnp.ones(3))


RUDE = {
    "exits": ("forward", _call(_exit)),
    "interrupts": ("forward", _call(_own_interrupt)),
    "memory": ("forward", _call(_memory)),
    "huge": ("forward", _workload(_huge, jnp.float32(1))),
    "callback": ("forward", _workload(_failing_callback, jnp.ones(3))),
    "stall": ("forward", _stalls_once()),
    "fine": ("forward", _workload(lambda x: jnp.sin(x), jnp.ones(3))),
}


def rude_cases(profile):
    return [
        Case("faults-rude", "toy", name, mode, build, {"batch": 1})
        for name, (mode, build) in RUDE.items()
    ]


def crash_cases(profile):
    return [
        Case("faults-crash", "toy", "aborts", "forward", _call(_abort), {"batch": 1}),
        Case("faults-crash", "toy", "fine", "forward", _sleep(0), {"batch": 1}),
    ]


def worker_cases(profile):
    return [
        Case("faults-worker", "toy", "slow-start", "forward", _sleep(2), {"batch": 1}),
        Case("faults-worker", "toy", "aborts", "forward", _call(_abort), {"batch": 1}),
        Case("faults-worker", "toy", "hangs", "forward", _sleep(600), {"batch": 1}),
        Case("faults-worker", "toy", "after", "forward", _sleep(0), {"batch": 1}),
    ]


SIZED = {"smoke": 1, "cpu": 2, "full": 4}  # the batch of each profile


def sized_cases(profile):
    return [
        Case("faults-sized", "toy", name, "forward", _sleep(0), {"batch": SIZED[profile]})
        for name in ("first", "second")
    ]


register(Suite("faults", "cases that fail on purpose", cases))
register(Suite("faults-hang", "a case that never finishes", hang_cases))
register(Suite("faults-rude", "cases that try to end the run", rude_cases))
register(Suite("faults-crash", "a case that kills the process", crash_cases))
register(Suite("faults-worker", "cases for --case-timeout", worker_cases))
register(Suite("faults-sized", "cases sized by the profile", sized_cases))


def _ctrl_c_in_callback(x):
    def host(v):
        os.kill(os.getpid(), signal.SIGINT)  # the user's Ctrl-C, while the callback runs
        time.sleep(5)
        return v

    return jax.pure_callback(host, jax.ShapeDtypeStruct(x.shape, x.dtype), x)


def ctrl_c_cases(profile):
    return [
        Case("faults-ctrl-c", "toy", "fine", "forward", _sleep(0), {"batch": 1}),
        Case(
            "faults-ctrl-c",
            "toy",
            "in-callback",
            "forward",
            _workload(_ctrl_c_in_callback, jnp.ones(3)),
            {"batch": 1},
        ),  # fmt: skip
    ]


register(Suite("faults-ctrl-c", "a Ctrl-C while a case's host callback runs", ctrl_c_cases))
