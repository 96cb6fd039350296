"""Device calibration and the limit model: the time a device could not beat for a case.

Calibration (:func:`calibrate`, seconds in all) times four micro-benchmarks with the suite's
protocol (:func:`bench.timing.time_back_to_back`: compiled ahead, warmed up, min of the repeats) and
keeps, for each, its value, unit and how it was measured (:class:`Constant`):

``matmul_flops_per_s``
    One n×n float32 matmul, 2n³ FLOPs: the device's practical peak arithmetic rate.
``bandwidth_bytes_per_s``
    ``a·x + y`` on float32 vectors larger than the last-level cache: 3 × the vector's bytes
    (two reads, one write) per call, the streaming rate of main memory.
``loop_iteration_s``
    Per iteration of a ``lax.scan`` whose body is one add on its carry, from the difference
    of two lengths (so the call's fixed cost cancels). The carry is 1024 floats: XLA:CPU
    compiles a loop whose carry is a few scalars into one native function (``small_call``),
    whose iterations cost nanoseconds; real loop bodies (a matmul, ...) are never compiled
    that way, so the loop measured is one the runtime drives iteration by iteration.
``dependent_op_s``
    Per operation of a chain of dependent tiny (8×8) matmuls inside a scan, from the
    difference of two chain lengths: what one kernel on a critical path costs however small
    its arithmetic (a matmul is its own kernel on every backend; elementwise ops would fuse).

The limit model (:func:`limit`). For a case with ``work_flops`` W, ``bytes_moved`` Q and
``steps_executed`` S (loop iterations executed one after another, :mod:`bench.structure`):

    limit_s = max(W / matmul_flops_per_s, Q / bandwidth_bytes_per_s) + S · loop_iteration_s

* W / peak: no schedule does the arithmetic faster than the device's best rate.
* Q / bandwidth: every byte of the arguments and outputs is read or written at least once,
  and every temporary buffer written at least once (``bytes_moved``: the compiled program's
  ``memory_analysis`` argument + output + temp bytes).
* the two overlap (out-of-order cores and prefetchers run loads beside arithmetic; a
  GPU's warps hide memory latency), so the bound takes their maximum, the roofline;
* loop iterations do not overlap: a runtime evaluates a loop's condition and dispatches its
  body once per iteration, in sequence with the body's kernels (XLA:CPU's while thunk runs
  them synchronously on one thread; a GPU launches the body's kernels after the predicate
  comes back), so S · per-iteration cost adds to the rest.

Each term alone is a lower bound on the time, hence so is the max; the sum with the steps
term is a lower bound as long as loop control cannot overlap the body (true on XLA:CPU and
XLA:GPU without command buffers). ``efficiency = limit / measured`` is ≤ 1 up to noise, and
:attr:`Limit.bound` names the largest term: where efficiency is low, that term's resource is
the one the case does not use well.

Two caveats. The peak is a large square matmul's rate, which small matmuls (a recurrence's
(B×H)·(H×4H) step) do not reach on any device: that makes the limit lower (looser) than
what the same recurrence could reach. And ``bytes_moved`` counts temporaries that a cache may
hold, charged at main memory's rate: where a case is memory-bound with a working set smaller
than the last-level cache, the memory term can exceed what the device needs, and efficiency
can exceed 1 (the bound term says so).
The dependent-op cost is calibrated but not in the default limit: a fused program may put
fewer kernels on its critical path than the jaxpr has operations, so ``span_ops`` times it
is not a bound. Pass ``dependent_ops`` (kernels known to be on the critical path, e.g. one
matmul per recurrent step) to add them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from bench.structure import analyse
from bench.timing import memory_figures, time_back_to_back

# Sizes per profile: (matmul side, axpy vector MiB, loop lengths, chain lengths, scan length).
SIZES = {
    "smoke": dict(matmul=256, vector_mib=8, loop_lengths=(200, 2000), chain=(1, 3), length=200),
    "cpu": dict(matmul=2048, vector_mib=128, loop_lengths=(1000, 10000), chain=(1, 5), length=1000),
    "full": dict(
        matmul=8192, vector_mib=512, loop_lengths=(1000, 10000), chain=(1, 5), length=1000
    ),
}
LOOP_CARRY = 1024  # floats in the trivial loop's carry (see the module docstring)
CHAIN_SIDE = 8  # side of the tiny matmuls of the dependent chain


class CalibrationError(RuntimeError):
    """A difference of two timings was not positive: the machine was too noisy to calibrate."""


@dataclasses.dataclass(frozen=True)
class Constant:
    """One calibrated device constant: its value, unit, and how it was measured."""

    value: float
    unit: str
    how: str

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Calibration:
    """The four device constants of the limit model (see the module docstring)."""

    matmul_flops_per_s: Constant
    bandwidth_bytes_per_s: Constant
    loop_iteration_s: Constant
    dependent_op_s: Constant

    def as_dict(self) -> dict[str, dict[str, Any]]:
        """JSON-ready, for ``env.json``: ``{name: {"value", "unit", "how"}}``."""
        return {f.name: getattr(self, f.name).as_dict() for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Mapping[str, Any]]) -> Calibration:
        return cls(**{f.name: Constant(**d[f.name]) for f in dataclasses.fields(cls)})

    @classmethod
    def of(
        cls,
        *,
        matmul_flops_per_s: float,
        bandwidth_bytes_per_s: float,
        loop_iteration_s: float,
        dependent_op_s: float,
        how: str = "given",
    ) -> Calibration:
        """A calibration from plain numbers (for tests, or another run's constants)."""
        return cls(
            Constant(matmul_flops_per_s, "FLOP/s", how),
            Constant(bandwidth_bytes_per_s, "B/s", how),
            Constant(loop_iteration_s, "s", how),
            Constant(dependent_op_s, "s", how),
        )


# --- The micro-benchmarks --------------------------------------------------------------------


def _normal(shape: tuple[int, ...], seed: int) -> jax.Array:
    rng = np.random.default_rng(seed)
    return jnp.asarray(rng.standard_normal(shape).astype(np.float32))


def peak_matmul(n: int = 2048, *, repeats: int = 5) -> Constant:
    """FLOP/s of one n×n float32 matmul (2n³ FLOPs), fastest of ``repeats`` calls."""
    t = time_back_to_back(jnp.matmul, (_normal((n, n), 0), _normal((n, n), 1)), repeats=repeats)
    return Constant(
        2 * n**3 / t.min_s,
        "FLOP/s",
        f"{n}x{n} float32 matmul, 2n^3 FLOPs / min of {repeats} calls ({t.min_s:.3g} s)",
    )


def _axpy(x, y):
    return 2.0 * x + y


def memory_bandwidth(mib: int = 128, *, repeats: int = 7) -> Constant:
    """Bytes/s of ``2·x + y`` on float32 vectors of ``mib`` MiB: 3 × that per call."""
    n = mib * 2**20 // 4
    t = time_back_to_back(
        _axpy, (jnp.ones(n, jnp.float32), jnp.ones(n, jnp.float32)), repeats=repeats
    )
    moved = 3 * n * 4
    return Constant(
        moved / t.min_s,
        "B/s",
        f"axpy 2x+y on {mib} MiB float32 vectors, 3x{mib} MiB moved / min of {repeats} calls "
        f"({t.min_s:.3g} s)",
    )


def _slope(time_of: Callable[[int], float], n1: int, n2: int) -> tuple[float, float, float]:
    """(t(n2) - t(n1)) / (n2 - n1), with both times; measured again once if not positive."""
    for _ in range(2):
        t1, t2 = time_of(n1), time_of(n2)
        if t2 > t1:
            return (t2 - t1) / (n2 - n1), t1, t2
    raise CalibrationError(f"time did not grow from {n1} to {n2} ({t1:.3g} s, {t2:.3g} s)")


def _trivial_loop(length: int):
    def run(c):
        return jax.lax.scan(lambda c, _: (c + 1.0, None), c, None, length=length)[0]

    return run


def loop_iteration(lengths: tuple[int, int] = (1000, 10000), *, repeats: int = 9) -> Constant:
    """Seconds per iteration of a scan whose body adds 1 to a carry of 1024 floats."""
    carry = jnp.zeros(LOOP_CARRY, jnp.float32)

    def time_of(n: int) -> float:
        return time_back_to_back(_trivial_loop(n), (carry,), repeats=repeats).min_s

    per, t1, t2 = _slope(time_of, *lengths)
    n1, n2 = lengths
    return Constant(
        per,
        "s",
        f"scan with body carry+1 on {LOOP_CARRY} float32, (t({n2}) - t({n1})) / {n2 - n1}, "
        f"min of {repeats} calls each ({t1:.3g} s, {t2:.3g} s)",
    )


def _matmul_chain(ops: int, length: int):
    def run(c, w):
        def body(c, _):
            for _ in range(ops):
                c = c @ w
            return c, None

        return jax.lax.scan(body, c, None, length=length)[0]

    return run


def dependent_op(
    chain: tuple[int, int] = (1, 5), length: int = 1000, *, repeats: int = 9
) -> Constant:
    """Seconds per op of a chain of dependent 8×8 matmuls, from two chain lengths per scan
    step: (t(chain₂) - t(chain₁)) / ((chain₂ - chain₁) · length)."""
    c = _normal((CHAIN_SIDE, CHAIN_SIDE), 2)
    # Orthogonal: the chain neither blows up nor vanishes (no denormals) over many products.
    w = jnp.asarray(np.linalg.qr(np.asarray(_normal((CHAIN_SIDE, CHAIN_SIDE), 3)))[0])

    def time_of(ops: int) -> float:
        return time_back_to_back(_matmul_chain(ops, length), (c, w), repeats=repeats).min_s

    per_step, t1, t2 = _slope(time_of, *chain)
    k1, k2 = chain
    return Constant(
        per_step / length,
        "s",
        f"chain of dependent {CHAIN_SIDE}x{CHAIN_SIDE} float32 matmuls in a scan of {length}, "
        f"(t({k2} per step) - t({k1} per step)) / ({k2 - k1}x{length}), min of {repeats} calls "
        f"each ({t1:.3g} s, {t2:.3g} s)",
    )


def calibrate(profile: str = "cpu") -> Calibration:
    """All four constants at the profile's sizes (:data:`SIZES`)."""
    s = SIZES[profile]
    return Calibration(
        matmul_flops_per_s=peak_matmul(s["matmul"]),
        bandwidth_bytes_per_s=memory_bandwidth(s["vector_mib"]),
        loop_iteration_s=loop_iteration(s["loop_lengths"]),
        dependent_op_s=dependent_op(s["chain"], s["length"]),
    )


def best_of(*calibrations: Calibration) -> Calibration:
    """The best each constant was measured in several calibrations (highest rates, lowest
    costs): on a shared machine, the device's limit is what it showed it can do, so a run
    that calibrates before and after its cases should judge them against the best of both."""
    if not calibrations:
        raise ValueError("best_of needs at least one calibration")

    def pick(name: str, best) -> Constant:
        chosen = best((getattr(c, name) for c in calibrations), key=lambda k: k.value)
        return dataclasses.replace(
            chosen, how=f"best of {len(calibrations)} calibrations: {chosen.how}"
        )

    return Calibration(
        matmul_flops_per_s=pick("matmul_flops_per_s", max),
        bandwidth_bytes_per_s=pick("bandwidth_bytes_per_s", max),
        loop_iteration_s=pick("loop_iteration_s", min),
        dependent_op_s=pick("dependent_op_s", min),
    )


# --- The limit model -------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Limit:
    """The terms of the limit model for one case, in seconds (see the module docstring)."""

    compute_s: float
    memory_s: float
    steps_s: float

    @property
    def limit_s(self) -> float:
        return max(self.compute_s, self.memory_s) + self.steps_s

    @property
    def bound(self) -> str:
        """The largest term: ``"compute"``, ``"memory"`` or ``"steps"``."""
        terms = {"compute": self.compute_s, "memory": self.memory_s, "steps": self.steps_s}
        return max(terms, key=terms.__getitem__)

    def efficiency(self, measured_s: float) -> float:
        """limit / measured: 1 is the device's limit, lower is time the case leaves unused."""
        if measured_s <= 0:
            raise ValueError(f"measured time must be positive, got {measured_s}")
        return self.limit_s / measured_s


def limit(
    work_flops: float,
    bytes_moved: float,
    steps_executed: int,
    calibration: Calibration,
    *,
    dependent_ops: int = 0,
) -> Limit:
    """The limit model's terms. ``dependent_ops``: kernels known to run one after another
    besides the loop control (e.g. one per recurrent step), each costing ``dependent_op_s``."""
    for name, value in (("work_flops", work_flops), ("bytes_moved", bytes_moved)):
        if value < 0:
            raise ValueError(f"{name} must be >= 0, got {value}")
    if steps_executed < 0 or dependent_ops < 0:
        raise ValueError("steps_executed and dependent_ops must be >= 0")
    c = calibration
    return Limit(
        compute_s=work_flops / c.matmul_flops_per_s.value,
        memory_s=bytes_moved / c.bandwidth_bytes_per_s.value,
        steps_s=steps_executed * c.loop_iteration_s.value + dependent_ops * c.dependent_op_s.value,
    )


def limit_s(
    work_flops: float, bytes_moved: float, steps_executed: int, calibration: Calibration, **kw
) -> float:
    """``limit(...).limit_s``: the time the device could not beat."""
    return limit(work_flops, bytes_moved, steps_executed, calibration, **kw).limit_s


MEMORY_TERMS = ("mem_argument_bytes", "mem_output_bytes", "mem_temp_bytes")


def bytes_moved(memory: Mapping[str, int]) -> int | None:
    """Argument + output + temp bytes of a compiled program (``bench.timing.memory_figures``),
    or None where the backend does not report them."""
    if not all(k in memory for k in MEMORY_TERMS):
        return None
    return sum(int(memory[k]) for k in MEMORY_TERMS)


def program_limit(fn: Callable, args: tuple, calibration: Calibration, **kw) -> Limit:
    """The limit of ``fn(*args)``: work and executed steps counted from its jaxpr
    (:func:`bench.structure.analyse`), bytes from its compiled ``memory_analysis``."""
    s = analyse(fn, *args)
    moved = bytes_moved(memory_figures(jax.jit(fn).lower(*args).compile()))
    return limit(s.work_flops, moved or 0, s.steps_executed, calibration, **kw)
