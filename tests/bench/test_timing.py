"""The measuring protocol (bench.timing): compile apart, repeats counted, recompiles caught."""

import jax
import jax.numpy as jnp
import pandas as pd
import pytest

from bench import fits, timing
from bench.timing import RecompilationError, time_back_to_back, time_calls
from bench.workloads import IDENTITY


def test_measure_counts_repeats_and_splits_compile_time(monkeypatch):
    monkeypatch.setattr(timing, "MIN_TIMED_S", 0.0)  # no extra repeats for a fast call
    t = time_back_to_back(lambda x: jnp.sin(x) @ x, (jnp.ones((64, 64)),), repeats=4, warmup=2)
    assert len(t.samples_s) == 4
    assert t.compile_s is not None and t.compile_s > 0
    assert all(s > 0 for s in t.samples_s)
    assert t.min_s <= t.median_s <= t.max_s
    assert t.iqr_s >= 0
    assert t.output.shape == (64, 64)


def test_a_fast_call_is_repeated_for_long_enough_to_time_it():
    t = time_back_to_back(lambda x: x + 1.0, (jnp.ones(3),), repeats=2)
    assert 2 < len(t.samples_s) <= timing.MAX_REPEATS


def test_measure_reports_memory_figures_from_the_executable():
    t = time_back_to_back(lambda x: x * 2, (jnp.ones((1000,), jnp.float32),), repeats=1)
    # CPU's memory_analysis gives argument/output sizes: 1000 float32 each way.
    assert t.memory["mem_argument_bytes"] == 4000
    assert t.memory["mem_output_bytes"] == 4000


def test_warmup_calls_happen_outside_the_timed_samples():
    calls = []

    def call():
        calls.append(1)
        return jnp.zeros(())

    t = time_calls(call, repeats=3, warmup=2)
    assert len(calls) == 5 and len(t.samples_s) == 3


def test_a_recompilation_inside_the_timed_region_is_an_error():
    sizes = iter(range(1, 100))

    def call():  # a new shape every call: jit must retrace and recompile
        return jax.jit(lambda x: x + 1)(jnp.ones(next(sizes)))

    with pytest.raises(RecompilationError):
        time_calls(call, repeats=3, warmup=0)


def test_health_check_sees_the_first_output_before_timing():
    seen = []

    def health(out):
        seen.append(float(out))
        raise RuntimeError("unhealthy")

    with pytest.raises(RuntimeError, match="unhealthy"):
        time_back_to_back(lambda x: x.sum(), (jnp.ones(3),), repeats=2, before_timing=health)
    assert seen == [3.0]


def test_invalid_repeats_is_refused():
    with pytest.raises(ValueError, match="repeats"):
        time_calls(lambda: jnp.zeros(()), repeats=0, warmup=0)


CACHE_PROBE = """
import sys, jax, jax.numpy as jnp
from bench.timing import time_back_to_back, use_compile_cache
use_compile_cache(sys.argv[1] if sys.argv[1] != "none" else None)
t = time_back_to_back(lambda x: jnp.tanh(x) @ x + 1.0, (jnp.ones((32, 32)),), repeats=2)
print(t.memory["compile_cache"])
"""


def _compile_in_a_new_process(cache: str, env=None) -> str:
    import os
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", CACHE_PROBE, cache],
        capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-1000:]
    return done.stdout.strip().splitlines()[-1]


def test_a_second_process_compiling_the_same_program_hits_the_persistent_cache(tmp_path):
    assert _compile_in_a_new_process(str(tmp_path / "cache")) == "miss"
    assert _compile_in_a_new_process(str(tmp_path / "cache")) == "hit"


def test_no_cache_means_none_not_even_the_one_jax_compilation_cache_dir_names(tmp_path):
    env = {"JAX_COMPILATION_CACHE_DIR": str(tmp_path / "cache")}
    assert _compile_in_a_new_process(str(tmp_path / "cache")) == "miss"  # now cached there
    assert _compile_in_a_new_process("none", env) == "off"


def test_a_trace_of_the_timed_calls_is_written_and_loads(tmp_path):
    import gzip
    import json

    def timed_sine(x):
        return jnp.sin(x) * 2.0

    t = time_back_to_back(timed_sine, (jnp.ones(64),), repeats=2, trace_dir=str(tmp_path))
    (trace,) = tmp_path.rglob("*.trace.json.gz")
    events = json.loads(gzip.decompress(trace.read_bytes()))["traceEvents"]
    calls = [e for e in events if "jit(timed_sine)" in str(e.get("name", ""))]
    assert len(calls) >= len(t.samples_s)  # every timed call is in the trace


def test_prepare_makes_one_first_call_then_every_warmup_call_it_is_asked_for():
    calls = []

    def fn(x):
        jax.debug.callback(lambda: calls.append(1))
        return x + 1

    ready = timing.prepare(fn, (jnp.ones(3),), warmup=3)
    assert len(calls) == 1 + 3  # (the old protocol counted the first call as a warm-up)
    assert ready.compile_s > 0 and ready.call_s > 0


def test_interleaved_rounds_visit_every_point_once_per_round_in_a_fresh_order():
    visits = []
    ready = [
        timing.Ready(lambda i=i: visits.append(i) or jnp.zeros(()), 0.0, {}, 1.0, None)
        for i in range(4)
    ]  # a 1 s call: one call per visit
    found = timing.time_rounds(ready, rounds=5, seed=3)
    assert visits and len(visits) == 4 * 5 * 2  # each visit: one untimed call, one timed
    assert visits[::2] == visits[1::2]  # ... of the same point
    rounds = [visits[8 * r : 8 * r + 8 : 2] for r in range(5)]
    assert all(sorted(r) == [0, 1, 2, 3] for r in rounds)
    assert len({tuple(r) for r in rounds}) > 1  # the order changes from round to round
    for i, t in enumerate(found):
        assert t.rounds == [0, 1, 2, 3, 4] and t.n_rounds == 5
        assert [rounds[r].index(i) for r in range(5)] == t.orders
        assert len(t.round_medians_s) == 5 and t.round_spread is not None


def test_a_visit_pays_the_switch_with_an_untimed_call_before_its_timed_ones():
    calls = []
    ready = [timing.Ready(lambda: calls.append(1) or jnp.zeros(()), 0.0, {}, timing.VISIT_S / 3,
                          None)]  # fmt: skip
    found = timing.time_rounds(ready, rounds=4)
    timed = found[0].samples_s
    assert len(timed) == 4 * 3 and len(calls) == 4 * (3 + 1)


def test_the_visit_bias_is_the_first_timed_call_of_each_visit_over_the_cases_median():
    rows = [
        dict.fromkeys(IDENTITY) | {"suite": "s", "variant": "v", "mode": "forward",
                                   "repeat": 3 * r + i, "round": r, "time_s": 1.3 if i == 0 else 1}
        for r in range(4)
        for i in range(3)
    ]  # fmt: skip
    (bias,) = fits.visit_bias(pd.DataFrame(rows)).tolist()
    assert bias == pytest.approx(1.3)
    assert fits.visit_bias(pd.DataFrame(rows).assign(round=None)).empty  # back to back


def test_a_fast_point_gets_several_calls_per_visit_a_slow_one_one():
    assert timing.visit_calls(1.0) == 1
    assert timing.visit_calls(timing.VISIT_S / 4) == 4
    assert timing.visit_calls(1e-9) == timing.MAX_VISIT_CALLS
