"""The report's tables, on rows whose answer is known."""

import numpy as np
import pandas as pd
import pytest

from bench.report import scaling_table
from tests.bench.test_fits import frame


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


def test_report_gives_each_case_its_fraction_of_the_matmul_measured_in_the_same_run():
    from bench.report import peak_fractions

    df = frame(
        [
            dict(
                suite="convnet",
                model="matmul",
                variant="peak",
                mode="forward",
                status="ok",
                achieved_flops_per_s=2e11,
            ),
            dict(
                suite="convnet",
                model="convnet",
                variant="seed",
                mode="train",
                status="ok",
                batch=8,
                achieved_flops_per_s=5e10,
            ),
            dict(
                suite="lstm",
                model="lstm",
                variant="autodiff",
                mode="train",
                status="ok",
                achieved_flops_per_s=1e10,
            ),  # no matmul in its suite: no row
        ]
    )
    (row,) = peak_fractions(df).to_dict("records")
    assert row["model"] == "convnet" and row["fraction"] == pytest.approx(0.25)


def test_cases_faster_than_their_limit_are_called_out_as_the_models_failure():
    import pandas as pd

    from bench.report import _beaten_limits

    cal = {"loop_iteration_s": {"value": 60e-9}, "matmul_flops_per_s": {"value": 1e11}}
    rows = pd.DataFrame(
        dict(
            suite=["binary_adder", "lstm", "convnet"],
            limit_bound=["steps", "compute", "compute"],
            efficiency=[4.6, 0.4, 1.02],
            steps_executed=[1000, 0, 0],
            time_min_s=[15e-6, 1.0, 0.5],
            work_flops=[1e4, 1e9, 5.1e10],
        )
    )
    text = _beaten_limits(rows, cal)
    assert "2 case(s) ran faster than their limit" in text
    assert "binary_adder (1 bound by steps, up to 4.6)" in text and "lstm" not in text
    assert "down to 15 ns per loop iteration, against the calibrated 60 ns" in text
    assert "reached 1.02× the calibrated matmul rate" in text
    assert _beaten_limits(rows[rows.suite == "lstm"], cal) == ""
