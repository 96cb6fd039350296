"""Wall-time claims about a suite registered from outside the package (tests/bench/
judged_suite.py, loaded through ``BENCH_SUITE_MODULES``) are judged right: their counts traced
from the suite's own programs, their times made to follow a known cost, their verdicts rendered
through the report's claims table and ``fits.csv``."""

import importlib
import sys

import pytest

from bench import claims, fits, verdicts, workloads
from bench.structure import analyse
from tests.bench.synthetic import timed

MODULE = "tests.bench.judged_suite"


@pytest.fixture
def plugin(monkeypatch):
    """The plugin loaded afresh into copies of the registries (nothing leaks to other tests)."""
    monkeypatch.setattr(workloads, "_REGISTRY", dict(workloads._REGISTRY))
    monkeypatch.setattr(claims, "_DERIVED", list(claims._DERIVED))
    monkeypatch.delitem(sys.modules, MODULE, raising=False)
    monkeypatch.setenv("BENCH_SUITE_MODULES", MODULE)
    workloads.suites()
    return importlib.import_module(MODULE)


def design(plugin):
    """One row per case of the plugin, its counts traced from the case's own program."""
    rows = []
    for case in workloads.suites()["judged"].cases("cpu"):
        w = case.workload()
        s = analyse(w.fn, *w.args)
        rows.append(dict(suite=case.suite, model=case.model, variant=case.variant,
                         mode=case.mode, **case.sizes, span_ops=s.span_ops,
                         steps_executed=s.steps_executed, work_flops=s.work_flops))  # fmt: skip
    return rows


def judged(plugin, tmp_path, time_of):
    df, samples = timed(design(plugin), time_of)
    samples.to_csv(tmp_path / "samples.csv", index=False)
    table = verdicts.claims_table(tmp_path, df, fits.fit(df, samples)).set_index("claim")
    return table, fits.fit(df, samples)


def test_time_that_follows_the_steps_passes_where_the_design_separates_them(plugin, tmp_path):
    steps = {(r["variant"], r["seq_len"]): r["steps_executed"] for r in design(plugin)}
    assert steps["serial", 256] == 256 and steps["chunked", 256] == 32  # traced trip counts
    table, _ = judged(plugin, tmp_path, lambda p: 5e-6 + 1e-6 * p["steps_executed"]
                      + 1e-10 * p["work_flops"])  # fmt: skip
    assert table.loc["C90", "verdict"] == "PASS", table.loc["C90", "measured"]
    assert table.loc["C91", "verdict"] == "INCONCLUSIVE"
    assert table.loc["C91", "measured"].startswith("not identifiable")


def test_time_that_follows_the_work_fails_where_the_design_separates_them(plugin, tmp_path):
    table, fitted = judged(plugin, tmp_path, lambda p: 5e-6 + 2e-8 * p["work_flops"])
    assert table.loc["C90", "verdict"] == "FAIL", table.loc["C90", "measured"]
    assert table.loc["C91", "verdict"] == "INCONCLUSIVE"  # the serial loop alone cannot say
    serial = fitted[(fitted.suite == "judged") & (fitted.variant == "serial")]
    over_n = serial[serial.axis == "seq_len"]
    assert (over_n.steps_follows == "not identifiable").all() and len(over_n) == 1
