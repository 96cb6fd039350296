"""The measuring protocol, in one place. Every benchmark in the suite is timed here.

1. Arguments are placed on the device (`jax.device_put`) and ready before any clock starts.
2. The function is lowered and compiled ahead of time (`jax.jit(fn).lower(*args).compile()`);
   that wall time is `compile_s`. The timed calls go to the compiled executable, which cannot
   retrace: arguments of another shape or dtype raise instead of silently recompiling.
3. One untimed first call (its output goes to the health check), then `warmup` untimed
   warm-up calls, then the timed calls, each ended by `jax.block_until_ready` on the whole
   output, timed with `time.perf_counter`.
4. The timed region runs under `jax.no_tracing` and a compile counter fed by
   `jax.monitoring`: any trace or backend compilation inside it raises `RecompilationError`
   rather than reporting a slower number.

Two ways to spend the timed calls:

- :func:`time_back_to_back`, one case: `repeats` calls, more for a fast call (as many as
  fill :data:`MIN_TIMED_S`, at most :data:`MAX_REPEATS`: the median of five 50 µs calls is
  mostly noise).
- :func:`time_rounds`, the points of a sweep *interleaved* (asv's ``--interleave-rounds``):
  every point is prepared first (:func:`prepare`), then `rounds` rounds each visit every
  point once, in a fresh seeded random order, for a short slice of calls (:data:`VISIT_S`)
  after one untimed call (switching programs costs: that call pays for the switch).
  A machine that gets busier, or a cache that warms, then hurts every point alike instead
  of the sweep's last ones, and the scatter *between rounds* is the noise a fit across the
  points must beat. Each sample keeps its round and the visit's position in the round.

The result keeps every raw sample; summaries (median, min, max, IQR) are derived from them.
``compile_s`` is honest about JAX's persistent compilation cache: each compile records
whether the cache served it (``compile_cache``: hit, miss, process or off).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import jax
import numpy as np
import pandas as pd

_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"
MIN_TIMED_S = 0.2
MAX_REPEATS = 100
NOISY_SPREAD = 0.25
"""A case whose spread exceeds this share of its median is too noisy to trust: the IQR of its
per-round medians when timed in rounds (the noise a fit across points must beat), else the IQR
of its samples (:func:`spread`)."""
VISIT_S = 0.01
"""An interleaved visit times calls for about this long (at least one call)."""
MAX_VISIT_CALLS = 20


class RecompilationError(RuntimeError):
    """Something was traced or compiled inside the timed region."""


@dataclasses.dataclass
class Timing:
    samples_s: list[float]
    compile_s: float | None = None
    memory: dict[str, int] = dataclasses.field(default_factory=dict)
    output: Any = None  # the last output, for health checks
    warmup_s: float = 0.0  # the untimed first call and warm-up calls
    rounds: list[int] | None = None  # interleaved: each sample's round (None: back to back)
    orders: list[int] | None = None  # ...and its visit's position in that round
    error: Exception | None = None  # interleaved, isolated: what a visit of it raised

    @property
    def n_rounds(self) -> int | None:
        return None if self.rounds is None else len(set(self.rounds))

    @property
    def round_medians_s(self) -> list[float]:
        """The median of each round's samples (interleaved timings only)."""
        by_round: dict[int, list[float]] = {}
        for r, t in zip(self.rounds or (), self.samples_s, strict=False):
            by_round.setdefault(r, []).append(t)
        return [statistics.median(v) for _, v in sorted(by_round.items())]

    @property
    def round_spread(self) -> float | None:
        """The IQR of the per-round medians over their median: the noise between rounds."""
        medians = self.round_medians_s
        if len(medians) < 2:
            return None
        q75, q50, q25 = np.percentile(medians, [75, 50, 25])
        return float((q75 - q25) / q50) if q50 > 0 else None

    @property
    def median_s(self) -> float:
        return statistics.median(self.samples_s)

    @property
    def min_s(self) -> float:
        return min(self.samples_s)

    @property
    def max_s(self) -> float:
        return max(self.samples_s)

    @property
    def iqr_s(self) -> float:
        q75, q25 = np.percentile(self.samples_s, [75, 25])
        return float(q75 - q25)


class _CompileCounter:
    """Counts backend compilations reported by jax.monitoring while active."""

    def __init__(self):
        self.count = 0
        self.active = False
        jax.monitoring.register_event_duration_secs_listener(self._on_event)

    def _on_event(self, event: str, duration: float, **kwargs) -> None:
        if self.active and event == _COMPILE_EVENT:
            self.count += 1


_counter: _CompileCounter | None = None


class _CacheEvents:
    """Counts the persistent compilation cache's hits and misses (jax.monitoring events)."""

    HIT, MISS = "/jax/compilation_cache/cache_hits", "/jax/compilation_cache/cache_misses"

    def __init__(self):
        self.hits = self.misses = 0
        jax.monitoring.register_event_listener(self._on_event)

    def _on_event(self, event: str, **kwargs) -> None:
        self.hits += event == self.HIT
        self.misses += event == self.MISS


_cache_events: _CacheEvents | None = None


@contextlib.contextmanager
def no_recompilation() -> Iterator[None]:
    """Raise RecompilationError if anything is traced or compiled inside the block."""
    global _counter
    if _counter is None:
        _counter = _CompileCounter()
    before = _counter.count
    _counter.active = True
    try:
        with jax.no_tracing(True):
            yield
    except Exception as e:
        if "no_tracing" in str(e):
            raise RecompilationError(f"traced inside the timed region: {e}") from e
        raise
    finally:
        _counter.active = False
    if _counter.count != before:
        raise RecompilationError(
            f"{_counter.count - before} backend compilation(s) inside the timed region"
        )


def spread(round_spread, iqr_s, median_s):
    """A case's relative spread as :data:`NOISY_SPREAD` reads it: ``round_spread`` where it
    was timed in rounds, else IQR / median (scalars, or pandas Series alike)."""
    if isinstance(round_spread, pd.Series):
        return round_spread.astype("Float64").fillna((iqr_s / median_s).astype("Float64"))
    if round_spread is not None and round_spread == round_spread:
        return round_spread
    return iqr_s / median_s if median_s else None


def time_calls(call: Callable[[], Any], *, repeats: int, warmup: int) -> Timing:
    """Time a zero-argument callable that dispatches device work and returns its output."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    out = None
    for _ in range(warmup):
        out = jax.block_until_ready(call())
    samples = []
    with no_recompilation():
        for _ in range(repeats):
            t0 = time.perf_counter()
            out = jax.block_until_ready(call())
            samples.append(time.perf_counter() - t0)
    return Timing(samples_s=samples, output=out)


def default_cache_dir() -> str:
    """Where compiled programs are kept between runs: $XDG_CACHE_HOME (or ~/.cache) /
    seqdepth-bench/jax."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "seqdepth-bench", "jax")


def use_compile_cache(path: str | None) -> None:
    """Turn JAX's persistent compilation cache on at ``path`` (every program, however quick
    to compile), or off (None, whatever ``JAX_COMPILATION_CACHE_DIR`` says). Must run before
    the first compile of a process."""
    jax.config.update("jax_enable_compilation_cache", path is not None)
    if path is None:
        return
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def compile_ahead(fn: Callable, args: tuple):
    """AOT-compile ``fn`` for ``args``. Returns ``(compiled, seconds, memory)``; ``memory``
    also says whether the persistent compilation cache served it (``compile_cache``: hit,
    miss, off when the cache is not in use, or process when neither: this process had
    compiled the same program already and JAX's in-memory cache served it). With a cache
    folder that cannot be written (read-only, a file in its place) JAX keeps no program there,
    and may have no cache at all: a compile without a cache event is off, not process (said
    once on stderr)."""
    global _cache_events
    if _cache_events is None:
        _cache_events = _CacheEvents()
    hits, misses = _cache_events.hits, _cache_events.misses
    t0 = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    seconds = time.perf_counter() - t0
    memory = memory_figures(compiled)
    if _cache_events.hits > hits:
        memory["compile_cache"] = "hit"
    elif _cache_events.misses > misses:
        memory["compile_cache"] = "miss"
    elif jax.config.jax_enable_compilation_cache and _writable(
        jax.config.jax_compilation_cache_dir
    ):
        memory["compile_cache"] = "process"
    else:
        memory["compile_cache"] = "off"
    return compiled, seconds, memory


@functools.cache
def _writable(cache_dir: str | None) -> bool:
    """Whether the compilation cache can keep programs in ``cache_dir`` (made if missing); if
    not, one line on stderr says so, once per process."""
    if not cache_dir:
        return False
    try:
        os.makedirs(cache_dir, exist_ok=True)
        with tempfile.TemporaryFile(dir=cache_dir):
            pass
    except OSError as e:
        print(
            f"bench: note: the compilation cache folder {cache_dir} cannot be written "
            f"({e.strerror or e}): compiles are not cached, rows say compile_cache=off",
            file=sys.stderr,
            flush=True,
        )
        return False
    return True


def memory_figures(compiled) -> dict[str, int]:
    """Byte counts from the executable's memory analysis, where the backend gives them."""
    try:
        stats = compiled.memory_analysis()
    except Exception:  # not every backend implements it
        return {}
    if stats is None:
        return {}
    fields = {
        "mem_argument_bytes": "argument_size_in_bytes",
        "mem_output_bytes": "output_size_in_bytes",
        "mem_temp_bytes": "temp_size_in_bytes",
        "mem_generated_code_bytes": "generated_code_size_in_bytes",
    }
    return {col: int(getattr(stats, attr)) for col, attr in fields.items() if hasattr(stats, attr)}


def _place(x):
    """Put a leaf on the device; arrays spread over several processes stay as they are."""
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
        return x
    return jax.device_put(x)


def repeats_for(call_s: float, repeats: int) -> int:
    """How many calls of ``call_s`` seconds are timed: at least ``repeats``, more for a fast
    call (as many as fill ``MIN_TIMED_S``, at most ``MAX_REPEATS``)."""
    return max(repeats, min(MAX_REPEATS, int(MIN_TIMED_S / max(call_s, 1e-9))))


@dataclasses.dataclass
class Ready:
    """A compiled program with its placed arguments, run once and warmed up: ready to time."""

    call: Callable[[], Any]
    compile_s: float
    memory: dict[str, Any]
    call_s: float  # the fastest warm-up call (the first call when there is no warm-up)
    output: Any
    warmup_s: float = 0.0  # the first call and the warm-up calls, in all


def prepare(fn: Callable, args: tuple, *, warmup: int = 1, before_timing=None) -> Ready:
    """Place, compile (timed apart), call once (``before_timing(output)`` sees that output and
    may raise to abort: a health check), then ``warmup`` more untimed calls."""
    args = jax.block_until_ready(jax.tree.map(_place, args))
    compiled, compile_s, memory = compile_ahead(fn, args)

    def call():
        return compiled(*args)

    t0 = time.perf_counter()
    out = jax.block_until_ready(call())
    call_s = time.perf_counter() - t0
    if before_timing is not None:
        before_timing(out)
    warm = []
    for _ in range(warmup):
        t0 = time.perf_counter()
        out = jax.block_until_ready(call())
        warm.append(time.perf_counter() - t0)
    return Ready(call, compile_s, memory, min(warm, default=call_s), out, call_s + sum(warm))


def _tracing(trace_dir: str | None):
    if not trace_dir:
        return contextlib.nullcontext()
    return jax.profiler.trace(trace_dir, create_perfetto_trace=True)


def time_back_to_back(
    fn: Callable,
    args: tuple,
    *,
    repeats: int,
    warmup: int = 1,
    before_timing=None,
    trace_dir: str | None = None,
) -> Timing:
    """One case back to back: :func:`prepare`, then ``repeats`` timed calls (more for a fast
    call, see the module docstring). With ``trace_dir``, the timed calls run under
    ``jax.profiler.trace`` (viewable in Perfetto or XProf)."""
    ready = prepare(fn, args, warmup=warmup, before_timing=before_timing)
    with _tracing(trace_dir):
        timing = time_calls(ready.call, repeats=repeats_for(ready.call_s, repeats), warmup=0)
    timing.compile_s, timing.memory, timing.warmup_s = ready.compile_s, ready.memory, ready.warmup_s
    return timing


def visit_calls(call_s: float) -> int:
    """Calls per interleaved visit of a point whose call takes ``call_s``."""
    return max(1, min(MAX_VISIT_CALLS, math.ceil(VISIT_S / max(call_s, 1e-9))))


def time_rounds(
    ready: Sequence[Ready],
    *,
    rounds: int,
    seed: int = 0,
    trace_dir: str | None = None,
    on_visit: Callable[[int], None] | None = None,
) -> list[Timing]:
    """Time prepared points interleaved: ``rounds`` rounds, each visiting every point once in
    a fresh random order (seeded), each visit :func:`visit_calls` calls. One :class:`Timing`
    per point, in the order given, with each sample's round and visit position.

    A point whose visit raises (an error in its program or host callback, a recompilation)
    costs only itself: its :class:`Timing` keeps the error (``error``) and no sample, it is
    not visited again, and the other points finish their rounds. ``on_visit(i)`` is told
    before each visit of point ``i`` (a watchdog's way to know which point a hang is in)."""
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    rng = np.random.default_rng(seed)
    calls = [visit_calls(r.call_s) for r in ready]
    timings = [
        Timing([], r.compile_s, r.memory, r.output, r.warmup_s, rounds=[], orders=[]) for r in ready
    ]
    with _tracing(trace_dir):
        for round_ in range(rounds):
            for position, i in enumerate(rng.permutation(len(ready))):
                timing = timings[i]
                if timing.error is not None:
                    continue
                if on_visit is not None:
                    on_visit(int(i))
                try:
                    with no_recompilation():
                        _visit(ready[i].call, calls[i], timing, round_, int(position))
                except Exception as e:
                    timing.error = e
                    timing.samples_s, timing.rounds, timing.orders = [], [], []
    return timings


def _visit(call: Callable[[], Any], n: int, timing: Timing, round_: int, position: int) -> None:
    """One visit of a point: an untimed call, then ``n`` timed ones, into ``timing``."""
    # the switch to this program is paid here, untimed: the first call of a visit ran ~1.3×
    # its case's median, the second ~1.05×
    jax.block_until_ready(call())
    for _ in range(n):
        t0 = time.perf_counter()
        out = jax.block_until_ready(call())
        timing.samples_s.append(time.perf_counter() - t0)
        timing.rounds.append(round_)
        timing.orders.append(position)
    timing.output = out
