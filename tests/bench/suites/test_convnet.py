"""bench/suites/convnet.py: each case as a fraction of the peak matmul timed in the same run
(the suite's headline and report section), and the matmul as the run's calibration case."""

import pytest

from bench.suites import convnet
from bench.suites.convnet import peak_fractions
from bench.workloads import suites
from tests.bench.test_fits import frame


def _rows():
    return frame(
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


def test_each_case_gets_its_fraction_of_the_matmul_measured_in_the_same_run():
    (row,) = peak_fractions(_rows()).to_dict("records")
    assert row["model"] == "convnet" and row["fraction"] == pytest.approx(0.25)


def test_the_headline_and_the_section_show_only_the_suites_own_rows(tmp_path):
    (line,) = convnet.headline(_rows())
    assert line == "convnet train reaches 25% of the matmul's 200 GFLOP/s"
    (section,) = convnet.report_sections(tmp_path, _rows())
    assert section.after == "variants" and "| convnet | convnet | seed | train |" in section.text
    lstm_only = _rows()[lambda df: df.suite == "lstm"]
    assert convnet.headline(lstm_only) == [] and convnet.report_sections(tmp_path, lstm_only) == []


def test_the_peak_matmul_is_the_case_compare_normalises_by():
    assert suites()["convnet"].calibration_case == dict(model="matmul", variant="peak")
    timed = {(c.model, c.variant) for c in convnet.cases("smoke")}
    assert ("matmul", "peak") in timed
