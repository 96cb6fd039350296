"""bench/suites/scaling.py: the scaling table turns the rows of each device count into speed-up
and efficiency, and the suite's headline and report section come from it."""

import numpy as np
import pandas as pd

from bench.suites.scaling import headline, report_sections, scaling_table


def _rows(kind: str, times: dict[int, float], batch_of) -> list[dict]:
    return [
        dict(
            suite="scaling",
            model="lstm",
            variant=kind,
            mode="train",
            status="ok",
            batch=batch_of(n),
            per_device_batch=batch_of(n) // n,
            seq_len=16,
            hidden=8,
            n_devices=n,
            time_median_s=t,
        )
        for n, t in times.items()
    ]


def test_scaling_table_speedup_and_efficiency_for_strong_and_weak_scaling():
    strong = _rows("strong", {1: 8.0, 2: 5.0, 4: 2.0}, lambda n: 64)
    weak = _rows("weak", {1: 1.0, 2: 1.25, 4: 2.0}, lambda n: 8 * n)
    failed = _rows("strong", {8: 0.1}, lambda n: 64)
    failed[0]["status"] = "oom"
    other = _rows("strong", {1: 1.0}, lambda n: 64)
    other[0]["suite"] = "lstm"
    t = scaling_table(pd.DataFrame(strong + weak + failed + other))

    assert list(zip(t.kind, t.n_devices, strict=True)) == [
        ("strong", 1),
        ("strong", 2),
        ("strong", 4),
        ("weak", 1),
        ("weak", 2),
        ("weak", 4),
    ]
    s, w = t[t.kind == "strong"], t[t.kind == "weak"]
    # strong: speed-up t1 / tN, efficiency t1 / (N tN)
    np.testing.assert_allclose(s.speedup, [1.0, 8 / 5, 8 / 2])
    np.testing.assert_allclose(s.efficiency, [1.0, 8 / (2 * 5), 8 / (4 * 2)])
    # weak: efficiency t1 / tN, speed-up N t1 / tN (throughput ratio)
    np.testing.assert_allclose(w.efficiency, [1.0, 1 / 1.25, 1 / 2])
    np.testing.assert_allclose(w.speedup, [1.0, 2 / 1.25, 4 / 2])
    np.testing.assert_allclose(s.time_ms, [8000.0, 5000.0, 2000.0])
    assert list(w.per_device_batch) == [8, 8, 8]


def test_scaling_table_without_a_one_device_row_leaves_speedup_empty():
    t = scaling_table(pd.DataFrame(_rows("strong", {2: 1.0, 4: 0.5}, lambda n: 64)))
    assert t.speedup.isna().all() and t.efficiency.isna().all()
    assert list(t.time_ms) == [1000.0, 500.0]


def test_scaling_table_of_no_scaling_rows_is_empty_with_its_columns():
    t = scaling_table(pd.DataFrame(_rows("strong", {1: 1.0}, lambda n: 64)).assign(suite="lstm"))
    assert t.empty and {"n_devices", "speedup", "efficiency"} <= set(t.columns)


def test_the_headline_gives_each_kinds_efficiency_at_the_most_devices():
    strong = _rows("strong", {1: 8.0, 2: 5.0, 4: 2.0}, lambda n: 64)
    alone = _rows("weak", {1: 1.0}, lambda n: 8)
    assert headline(pd.DataFrame(strong + alone)) == [
        "strong scaling efficiency 1.00 at 4 devices",
        "weak scaling: one device only, nothing to scale",
    ]


def test_the_section_follows_the_variant_ratios_and_is_absent_without_scaling_rows(tmp_path):
    rows = _rows("strong", {1: 8.0, 2: 5.0}, lambda n: 64)
    (section,) = report_sections(tmp_path, pd.DataFrame(rows))
    assert section.after == "variants"
    assert section.text.startswith("\n## Data-parallel scaling")
    assert "| 0.8 |" in section.text  # strong efficiency at two devices: 8 / (2 * 5)
    other = pd.DataFrame(rows).assign(suite="lstm")
    assert report_sections(tmp_path, other) == [] and headline(other) == []
