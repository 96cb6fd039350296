"""Suites that fail on purpose, for the reliability tests (loaded via BENCH_SUITE_MODULES)."""

import time

import jax
import jax.numpy as jnp

from bench.steps import finite_loss
from bench.workloads import Case, Suite, Workload, register


def _raise(error):
    def build():
        raise error

    return build


def _workload(fn, *args, check=None):
    return lambda: Workload(fn, args, n_params=0, check=check)


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
    "nan": ("train", _workload(lambda x: (x, jnp.log(-x).sum()), jnp.ones(3), check=finite_loss)),
    "range": ("sample", _workload(lambda x: x * 3, jnp.ones(3), check=_in_unit_range)),
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


register(Suite("faults", "cases that fail on purpose", cases))
register(Suite("faults-hang", "a case that never finishes", hang_cases))
