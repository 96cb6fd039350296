"""A suite with a known answer, registered from outside the package (``BENCH_SUITE_MODULES``),
and the wall-time claims that read it: a loop of n dependent steps over a vector of width k,
as a ``serial`` variant (n steps), a ``wide`` one (32 steps, k from 8 to 128) and a
``chunked`` one (n/8 steps of 8× the width: the same work). Its counts come from the suite's
own programs (``bench.structure``); a test gives them times that follow a known cost and asks
the judge what they follow.

- ``C90`` reads all three: the steps and the work move apart (identifiable);
- ``C91`` reads the serial variant over n alone: the work grows with the steps (not
  identifiable, whatever the times follow)."""

import jax
import jax.numpy as jnp

from bench.claims import Derived, register, run_rounds, wall_time
from bench.judge import Count, WallTimeSpec, column
from bench.workloads import Case, Suite, Workload
from bench.workloads import register as register_suite

SUITE = "judged"
STEPS = (8, 16, 32, 64, 128, 256)
WIDTHS = (8, 32, 128)


def _loop(steps: int, width: int):
    def fn(x):
        return jax.lax.fori_loop(0, steps, lambda i, v: jnp.tanh(v * 1.01), x)

    return lambda: Workload(fn, (jnp.ones(width),), n_params=0)


def points():
    """(variant, n, k, loop steps, width) of every case."""
    out = [("serial", n, 8, n, 8) for n in STEPS]
    out += [("wide", 32, k, 32, k) for k in WIDTHS]  # the work moves, the steps do not
    out += [("chunked", n, 8, n // 8, 64) for n in STEPS]
    return out


def cases(profile: str) -> list[Case]:
    return [
        Case(SUITE, "loop", variant, "forward", _loop(steps, width),
             {"batch": 1, "seq_len": n, "hidden": k}, steps, regime="latency")
        for variant, n, k, steps, width in points()
    ]  # fmt: skip


def _n(rows):
    return rows.seq_len.to_numpy(float)


SEPARATING = WallTimeSpec(
    "C90", SUITE, "forward", ("serial", "wide", "chunked"), column("steps", "steps_executed"),
    rivals=(Count("n", "n for both variants", _n),), what="the loops",
)  # fmt: skip
COLLINEAR = WallTimeSpec(
    "C91", SUITE, "forward", ("serial",), column("steps", "steps_executed"), rivals=(),
    what="the serial loop",
)  # fmt: skip

register_suite(Suite(SUITE, "loops of n steps, serial and chunked (a test's plugin)", cases))
for spec in (SEPARATING, COLLINEAR):
    register(
        Derived((SUITE,), (spec.claim,), lambda df, fits, run_dir, s=spec: wall_time(
            s, df, run_rounds(run_dir)))
    )  # fmt: skip
