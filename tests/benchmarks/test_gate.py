"""pytest-benchmark's own gate works out of the box: a save, then `--benchmark-compare
--benchmark-compare-fail=...` on the same commit, with this project's hooks (tests/conftest.py)
and `filterwarnings = error` as in pyproject.toml.

pytest-benchmark warns when a save's machine_info differs from the session's, and
`filterwarnings = error` makes that warning a crash (INTERNALERROR, exit 3): machine_info must
hold only what stays the same on one machine. The benchmark is a tiny pure-Python function
with few rounds, timed by a clock that advances by 2⁻¹⁰ s a reading
(``--benchmark-timer``): every round takes exactly that, so the test checks that the gate runs
and compares, never a timing, and a tight fail threshold holds.
"""

import json

import pytest

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestAssertRewriteWarning")

CLOCK = """
_now = 0.0


def tick():
    global _now
    _now += 2**-10  # (exact in binary: every difference of two readings is too)
    return _now
"""

TINY = """
def test_tiny(benchmark):
    benchmark.pedantic(sum, args=(range(100),), rounds=5, iterations=10)
"""


def test_the_gate_passes_twice_in_a_row_on_one_commit(pytester, monkeypatch):
    loads = iter(range(1000))  # the machine's load differs at every reading, as it does
    monkeypatch.setattr("os.getloadavg", lambda: (next(loads) / 10, 0.5, 0.25))
    pytester.makepyfile(test_tiny=TINY, fake_clock=CLOCK)
    pytester.syspathinsert()
    pytester.makeini("[pytest]\nfilterwarnings = error\n")
    store = pytester.path / "store"
    # A session of its own: in a `make test` worker pytest-benchmark would see xdist (the
    # plugin, the worker's variable) and disable itself
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    common = ["-p", "tests.conftest", "-p", "no:cacheprovider", "-p", "no:xdist",
              f"--benchmark-storage={store}", "--benchmark-timer=fake_clock.tick"]  # fmt: skip
    first = pytester.runpytest_inprocess(*common, "--benchmark-autosave")
    assert first.ret == 0, first.stdout.str()
    for _ in range(2):
        gate = pytester.runpytest_inprocess(
            *common,
            "--benchmark-autosave",
            "--benchmark-compare",
            "--benchmark-compare-fail=median:1%",
        )
        assert gate.ret == 0, gate.stdout.str()
        assert "Comparing against benchmarks from" in gate.stderr.str()
        assert "test_tiny (NOW)" in gate.stdout.str()  # the table of the comparison
    saves = sorted(store.glob("*/*.json"))
    assert len(saves) == 3
    infos = [json.loads(p.read_text()) for p in saves]
    assert infos[0]["machine_info"] == infos[2]["machine_info"]
    assert "load_avg_start" not in json.dumps(infos[0]["machine_info"])
    assert {i["benchmarks"][0]["stats"]["median"] for i in infos} == {2**-10 / 10}  # the clock
    extra = infos[0]["benchmarks"][0]["extra_info"]
    assert len(extra["load_avg_start"]) == 3 and len(extra["load_avg_finish"]) == 3
