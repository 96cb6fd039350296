"""A suite owns its output: its headline clauses, its sections of report.md (with their
figures) and its calibration case are hooks on ``Suite``; bench/report.py and bench/plots.py
name no suite and no model."""

import ast
import dataclasses
import io
import pathlib
import re
import shutil
import tokenize

import pandas as pd
import pytest

from bench import compare, report, verdicts, workloads
from bench.workloads import PROFILES, ConfigError, Section, suites

ROOT = pathlib.Path(__file__).resolve().parents[2]
GENERIC = ("bench/report.py", "bench/plots.py")
MODULE_PATH = re.compile(r"bench[./](?:suites|claims)[./](\w+)")


def suite_and_model_names() -> set[str]:
    """Every suite of the package (``bench/suites/``; not the suites other tests register) and
    every model its cases time, at any profile."""
    names = set()
    for name, suite in suites().items():
        if not suite.cases.__module__.startswith("bench.suites."):
            continue
        names.add(name)
        names |= {case.model for profile in PROFILES for case in suite.cases(profile)}
    return names


def names_used(source: str, names: set[str]) -> set[str]:
    """The ``names`` that ``source`` knows: as an identifier or a part of one between
    underscores (``deer``, ``trained_section``), as a whole string literal (``"matmul"``), or
    as a suite's or claim's module in a string or comment (``bench/suites/trained.py``,
    ``bench.claims.deer``). The same words in prose (a docstring saying "scaling") are not
    knowing a suite."""
    found = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.NAME:
            found |= {token.string, *token.string.split("_")} & names
        if token.type in (tokenize.STRING, tokenize.COMMENT):
            found |= set(MODULE_PATH.findall(token.string)) & names
        if token.type == tokenize.STRING and not token.string.lower().startswith(("f", "rf")):
            value = ast.literal_eval(token.string)
            if isinstance(value, str) and value in names:
                found.add(value)
    return found


def test_the_check_catches_each_way_a_module_names_a_suite():
    names = {"deer", "trained", "scaling", "matmul"}
    assert names_used("from bench.claims import deer\n", names) == {"deer"}
    assert names_used("def trained_section(df):\n    pass\n", names) == {"trained"}
    assert names_used('rows = rows[rows["suite"] == "scaling"]\n', names) == {"scaling"}
    assert names_used("peak = df.model == 'matmul'\n", names) == {"matmul"}
    assert names_used("# --- trained models (bench/suites/trained.py)\n", names) == {"trained"}
    assert names_used('"""From :func:`bench.claims.deer.speedups`."""\n', names) == {"deer"}
    generic = '"""The scaling of a sweep, a trained eye."""\nscale = f"{x} matmul_flops_per_s"\n'
    assert names_used(generic, names) == set()


@pytest.mark.parametrize("path", GENERIC)
def test_the_generic_output_modules_name_no_suite_and_no_model(path):
    names = suite_and_model_names()
    assert {"convnet", "matmul", "deer", "trained", "scaling", "lstm"} <= names
    assert names_used((ROOT / path).read_text(), names) == set()


def test_compare_normalises_by_the_case_a_suite_declares():
    assert {"suite": "convnet", "model": "matmul", "variant": "peak"} in compare.calibration_cases()
    rows = pd.DataFrame(
        dict(suite=["convnet", "lstm", "convnet"], model=["matmul", "matmul", "convnet"])
    ).assign(variant=["peak", "peak", "seed"])
    cases = [dict(suite="convnet", model="matmul", variant="peak")]
    assert compare._is_calibration_case(rows, cases).tolist() == [True, False, False]


def test_a_section_goes_after_a_part_the_report_has():
    with pytest.raises(ConfigError, match="one of variants, fits"):
        Section("text", after="summary")


@pytest.fixture
def hooked_run(smoke_run, tmp_path, monkeypatch):
    """The smoke run of the LSTM suite, its suite given a headline clause and three sections."""

    def sections(run_dir, df):
        assert (df.suite == "lstm").any() and run_dir == tmp_path / "run"
        return [
            Section("\n## Second after the fits\n", after="fits", order=1),
            Section("\n## First after the fits\n"),
            Section("\n## After the variants\n", after="variants"),
        ]

    hooked = dataclasses.replace(
        suites()["lstm"], headline=lambda df: [f"{len(df)} rows"], report_sections=sections
    )
    monkeypatch.setitem(workloads._REGISTRY, "lstm", hooked)
    shutil.copytree(smoke_run, tmp_path / "run")
    return tmp_path / "run"


def test_a_suites_hooks_place_its_headline_clause_and_sections(hooked_run):
    text = report.render(verdicts.judge_run(hooked_run)).read_text()
    rows = len(pd.read_csv(hooked_run / "measurements.csv"))
    (line,) = [line for line in text.splitlines() if line.startswith("- **lstm**:")]
    assert line.endswith(f" · {rows} rows")
    where = [
        text.index(heading)
        for heading in (
            "## Variants against their baseline",
            "## After the variants",
            "## First after the fits",
            "## Second after the fits",
            "## Measurements",
        )
    ]
    assert where == sorted(where)
