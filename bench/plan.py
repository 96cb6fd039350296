"""Plan a run before making it: each case's estimated time, and the total.

Two estimates, one quick and one careful:

* :func:`refuse_oversized`, at once, before every run: ``--profile full`` on a CPU asks a
  2-core machine for GPU-sized cases, a run of days; a profile larger than
  :func:`bench.workloads.default_profile` for the backend is refused unless the user passes the
  flag that accepts it, with its cost. The estimate is deliberately crude, and says so: the
  seconds each suite's cases took at the ``cpu`` profile on a 2-core CPU
  (:data:`CPU_PROFILE_S`), scaled by how much larger the asked profile's cases are, measured
  by a size product per case (batch × depth × height × width × kernel² × seq_len × hidden²: a
  stand-in for the work, exact for none of the models). An order of magnitude, for deciding
  whether to start.
* the plan below, which builds every case first (for a profile far too large, itself slow).

``python -m bench plan`` builds and traces every case of the chosen profile (no compile, no
timing), calibrates the device for a few seconds (:func:`bench.calibration.calibrate` and
:func:`compile_cost`), and estimates per case

    total ≈ build and trace (measured while planning) + compile + (warm-up + repeats) × call

* compile ≈ a + b · equations + c · loops of the traced program (nested bodies counted once),
  with a, b, c from compiling three synthetic programs on this device, cache bypassed
  (:func:`compile_cost`). A program the persistent compilation cache already holds compiles
  in a fraction of that, so the plan is for a cold cache;
* call ≈ work / (:data:`ASSUMED_EFFICIENCY` × the calibrated matmul FLOP/s) + loop steps
  executed × the calibrated cost of one iteration + :data:`CALL_OVERHEAD_S`;
* repeats as :func:`bench.timing.time_back_to_back` chooses them (fast calls fill
  ``MIN_TIMED_S``).

Suites' ``prepare`` steps and the claims' experiments declare their own cost per profile
(``cost_s``, measured on a 2-core CPU), added as they are. :class:`Budget` gives one
case's estimate from what the runner already holds, so ``--budget-s`` needs no second build.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Iterable

import jax
import jax.numpy as jnp
from jax.extend.core import subjaxprs

from bench import claims
from bench.calibration import Calibration
from bench.structure import Structure, analyse_jaxpr
from bench.timing import repeats_for, visit_calls
from bench.workloads import PLANNING, PROFILES, Case, ConfigError, Suite, default_profile

# --- At once: a profile too large for this device ---------------------------------------------

CPU_PROFILE_S = {
    "binary_adder": 5.0,
    "convnet": 15.0,
    "lstm": 90.0,
    "mdrnn": 270.0,
    "pixelcnn": 90.0,
    "resnet": 30.0,
    "scaling": 10.0,
    "deer": 30.0,
    "trained": 85.0,
}
"""Seconds of building, compiling and timing the cases of each suite at the ``cpu`` profile on
a 2-core CPU, experiments not included. They are data, not constants of the code: per suite,
the compile and timed seconds of a cpu-profile run's rows × 1.5 for building and tracing,
rounded, or for a suite that run lacked, ``python -m bench plan --profile cpu`` on the same
machine (which includes a suite's ``prepare`` step). Refresh them the same way on the machine
the estimate should describe; where the present values come from: ``docs/design-notes.md``."""
UNKNOWN_SUITE_S = 60.0
"""The same for a suite not listed above (one loaded through BENCH_SUITE_MODULES)."""


def size_product(sizes: dict[str, int]) -> float:
    """A case's sizes multiplied, kernel and hidden squared: a crude stand-in for its work."""
    return float(math.prod(v * v if k in ("kernel", "hidden") else v for k, v in sizes.items()))


def rough_seconds(suites: list[Suite], profile: str) -> float:
    """Seconds the cases of ``suites`` at ``profile`` would take on a 2-core CPU (crude)."""
    total = 0.0
    for suite in suites:
        asked = sum(size_product(c.sizes) for c in suite.cases(profile))
        known = sum(size_product(c.sizes) for c in suite.cases("cpu")) or 1.0
        total += CPU_PROFILE_S.get(suite.name, UNKNOWN_SUITE_S) * asked / known
    return total


def duration(seconds: float) -> str:
    for unit, size in (("days", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.3g} {unit}"
    return f"{seconds:.0f} s"


def refuse_oversized(
    suites: list[Suite], profile: str, backend: str, *, allowed: bool, flag: str
) -> str:
    """Refuse (:class:`ConfigError`) a profile larger than the backend suits unless
    ``allowed``; returns the estimate's line when the run goes on anyway, else ``""``."""
    suited = default_profile(backend)
    if PROFILES.index(profile) <= PROFILES.index(suited):
        return ""
    line = (
        f"--profile {profile} on {backend} (suited: {suited}): crude estimate "
        f"{duration(rough_seconds(suites, profile))} for the cases alone "
        "(the cpu profile's times scaled by the cases' size products)"
    )
    if not allowed:
        raise ConfigError(
            f"{line}; pass {flag} to run it anyway (`python -m bench plan --profile {profile}` "
            "estimates each case, after building them all)"
        )
    return line


# --- The plan: every case built, traced and estimated -----------------------------------------

ASSUMED_EFFICIENCY = 0.25
"""Fraction of the calibrated matmul rate a case's arithmetic is assumed to reach: a typical
value of the suite's own cases, whose fractions spread over more than an order of magnitude
(``docs/design-notes.md``), so a case's estimate is an order of magnitude too."""
CALL_OVERHEAD_S = 30e-6
"""Dispatching one compiled call and waiting for it, on a CPU (a GPU adds launch latency)."""


@dataclasses.dataclass(frozen=True)
class CompileCost:
    """Seconds to compile a program: ``fixed_s + per_eqn_s · equations + per_loop_s · loops``
    (nested bodies counted once), the three costs solved on the device at hand by
    :func:`compile_cost`; how well this form fitted the suite's own cases:
    ``docs/design-notes.md``."""

    fixed_s: float
    per_eqn_s: float
    per_loop_s: float

    def seconds(self, n_eqns: int, n_loops: int) -> float:
        return self.fixed_s + self.per_eqn_s * n_eqns + self.per_loop_s * n_loops


def _chain(n: int, salt: float):
    def f(x, w):
        for k in range(n):
            x = jnp.tanh(x @ w + (salt + k)) if k % 4 == 0 else jnp.sin(x) * (salt + k)
        return x

    return f


def _loops(n: int, salt: float):
    def f(x, w):
        for k in range(n):
            body = lambda c, _, k=k: (jnp.tanh(c @ w + (salt + k)), None)  # noqa: E731
            x = jax.lax.scan(body, x, None, length=8)[0]
        return x

    return f


def _compile_seconds(program) -> float:
    x = jnp.ones((32, 32), jnp.float32)
    lowered = jax.jit(program).lower(x, x)
    t0 = time.perf_counter()
    lowered.compile()
    return time.perf_counter() - t0


def compile_cost(n_eqns: int = 200, n_loops: int = 8) -> CompileCost:
    """Compile a one-equation program, a chain of ``n_eqns`` and ``n_loops`` one-line scans
    (constants made unique, so no cache serves them) and solve for the three costs."""
    salt = time.time() % 1000
    tiny = _compile_seconds(_chain(1, salt))
    chain = _compile_seconds(_chain(n_eqns, salt))
    loops = _compile_seconds(_loops(n_loops, salt))
    per_eqn = max((chain - tiny) / (n_eqns - 1), 0.0)
    per_loop = max((loops - tiny) / n_loops - 3 * per_eqn, 0.0)
    return CompileCost(tiny, per_eqn, per_loop)


def program_size(jaxpr) -> tuple[int, int]:
    """(equations, loops) of a program, each nested body counted once."""
    eqns = len(jaxpr.eqns)
    loops = sum(e.primitive.name in ("scan", "while") for e in jaxpr.eqns)
    for sub in subjaxprs(jaxpr):
        n, k = program_size(getattr(sub, "jaxpr", sub))
        eqns, loops = eqns + n, loops + k
    return eqns, loops


ASSUMED = {
    "h100": (
        Calibration.of(
            matmul_flops_per_s=200e12,
            bandwidth_bytes_per_s=2.5e12,
            loop_iteration_s=10e-6,
            dependent_op_s=5e-6,
            how="assumed for one H100-class GPU: ~200 TFLOP/s float32 matmul (TF32, the "
            "default precision), 2.5 TB/s, ~10 µs per loop iteration (a kernel launch and "
            "the loop's predicate), ~5 µs per dependent kernel",
        ),
        CompileCost(fixed_s=0.5, per_eqn_s=2e-3, per_loop_s=0.2),
    )
}
"""Device constants for planning a run on a machine other than this one (``plan --assume``):
a calibration and a compile cost, stated here rather than measured."""


@dataclasses.dataclass(frozen=True)
class Estimate:
    label: str
    build_s: float
    compile_s: float
    call_s: float
    repeats: int
    total_s: float


def call_seconds(s: Structure, cal: Calibration) -> float:
    return _call_seconds(s.work_flops, s.steps_executed, cal)


def _call_seconds(work_flops: float, steps_executed: int, cal: Calibration) -> float:
    rate = ASSUMED_EFFICIENCY * cal.matmul_flops_per_s.value
    return work_flops / rate + steps_executed * cal.loop_iteration_s.value + CALL_OVERHEAD_S


def remaining_seconds(
    jaxpr, work_flops: float, steps_executed: int, cal: Calibration | None, cost: CompileCost,
    repeats: int, rounds: int | None = None,
) -> tuple[float, float, int]:  # fmt: skip
    """``(compile_s, call_s, calls timed)`` of a traced program still to be compiled and timed
    (the first and warm-up calls come on top): ``rounds`` visits of
    :func:`bench.timing.visit_calls` calls for a case of a sweep group, else ``repeats`` (more
    for a fast call). Without a calibration only the compile is estimated."""
    compile_s = cost.seconds(*program_size(jaxpr))
    if cal is None:
        return compile_s, 0.0, 0
    call = _call_seconds(work_flops, steps_executed, cal)
    timed = rounds * visit_calls(call) if rounds else repeats_for(call, repeats)
    return compile_s, call, timed


@dataclasses.dataclass(frozen=True)
class Budget:
    """What is left of a session's ``--budget-s`` as a case starts, and what estimates the
    rest of the case once it is built (the plan's model, :func:`remaining_seconds`)."""

    left_s: float
    compile: CompileCost
    calibration: Calibration | None  # None: only the time already spent can stop a case

    def case_seconds(
        self, jaxpr, counts: dict, *, repeats: int, warmup: int, rounds: int | None = None
    ) -> float:
        """Seconds a built and traced workload (``jaxpr``) will still take: compile, warm-up
        and repeats. ``counts``: its structure columns (work and loop steps; absent ones count
        as 0)."""
        compile_s, call, n = remaining_seconds(
            jaxpr,
            counts.get("work_flops") or 0.0,
            counts.get("steps_executed") or 0,
            self.calibration,
            self.compile,
            repeats,
            rounds,
        )
        return compile_s + (1 + warmup + n) * call


def estimate(
    case: Case,
    cal: Calibration,
    cost: CompileCost,
    *,
    repeats: int,
    warmup: int,
    rounds: int | None = None,
) -> Estimate:
    """Build and trace ``case`` (timed: that is part of its cost) and estimate the rest: a
    case of a sweep group is timed ``rounds`` visits of :func:`bench.timing.visit_calls`
    calls (``bench.timing.time_rounds``), any other ``repeats`` calls (more for a fast one)."""
    t0 = time.perf_counter()
    w = case.workload(PLANNING)  # nothing prepared: fresh weights, typical trip counts
    closed = jax.make_jaxpr(w.fn)(*w.args)
    s = analyse_jaxpr(closed, while_trip_count=w.while_trip_count)
    build_s = time.perf_counter() - t0
    grouped = rounds if case.sweep_group is not None else None
    compile_s, call, n = remaining_seconds(
        closed.jaxpr, s.work_flops, s.steps_executed, cal, cost, repeats, grouped
    )
    total = build_s + compile_s + (1 + warmup + n) * call
    return Estimate(case.label, build_s, compile_s, call, n, total)


def side_costs(suites: Iterable[Suite], profile: str, experiments: bool) -> list[tuple[str, float]]:
    """The declared costs of the suites' prepare steps and the claims' experiments."""
    names = [s.name for s in suites]
    out = [
        (f"prepare {s.name}", s.prepare_cost_s.get(profile, 0.0))
        for s in suites
        if s.prepare is not None
    ]
    if experiments:
        out += [
            (f"claims {', '.join(dict.fromkeys(e.claims))}", e.cost_s.get(profile, 0.0))
            for e in claims.experiments(names)
        ]
    return out


def render(config, cal: Calibration, cost: CompileCost, device: str, log=lambda line: None) -> str:
    """``python -m bench plan``: a table of every case's estimate and the side costs, and the
    total on ``device`` (described in words), for ``config`` (a :class:`bench.config.RunConfig`).
    Building and tracing every case of a large profile takes minutes on a CPU: ``log`` is told
    so before the first, then each suite as its cases are done."""
    import pandas as pd

    from bench.markdown import table
    from bench.workloads import get_suites

    chosen = get_suites(config.suites)
    keep = config.case_filter(chosen)
    todo = [(s.name, [c for c in s.cases(config.profile) if keep(c)]) for s in chosen]
    log(
        f"planning {sum(len(cases) for _, cases in todo)} cases of the {config.profile} profile: "
        "building and tracing each (no compile, no timing) ..."
    )
    rows, total = [], 0.0
    for name, cases in todo:
        began = time.perf_counter()
        for case in cases:
            e = estimate(
                case, cal, cost, repeats=config.repeats, warmup=config.warmup, rounds=config.rounds
            )
            rows.append(dict(case=e.label, compile_s=e.compile_s, call_ms=e.call_s * 1e3,
                             repeats=e.repeats, total_s=e.total_s))  # fmt: skip
            total += e.total_s
        if cases:
            log(f"    {name}: {len(cases)} cases traced ({time.perf_counter() - began:.1f} s)")
    side = side_costs(chosen, config.profile, config.experiments)
    rows += [dict(case=name, total_s=seconds) for name, seconds in side]
    total += sum(seconds for _, seconds in side)
    return (
        table(pd.DataFrame(rows))
        + "\n"
        + (
            f"{len(rows) - len(side)} cases, estimated {total:.0f} s ({total / 60:.1f} min) in all "
            f"on {device}, cold compilation cache "
            f"(compile {cost.fixed_s:.2f} s + {cost.per_eqn_s * 1e3:.2f} ms per equation + "
            f"{cost.per_loop_s * 1e3:.0f} ms per loop; "
            f"arithmetic at {ASSUMED_EFFICIENCY:.0%} of "
            f"{cal.matmul_flops_per_s.value / 1e9:.3g} GFLOP/s)"
        )
    )
