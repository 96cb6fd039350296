"""The report's tables, on rows whose answer is known."""

import pandas as pd


def test_cases_faster_than_their_limit_are_called_out_as_the_models_failure():

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
