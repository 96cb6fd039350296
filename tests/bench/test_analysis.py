"""Loading results: proper dtypes, env joined, and corrupt files refused with file and line."""

import json
import pathlib
import shutil

import pandas as pd
import pytest

from bench import analysis
from bench.analysis import SchemaError
from bench.store import SCHEMA_VERSION


@pytest.fixture
def run_copy(smoke_run, tmp_path):
    copy = tmp_path / smoke_run.name
    shutil.copytree(smoke_run, copy)
    return copy


def test_load_gives_typed_columns_joined_with_the_run_context(smoke_run):
    df = analysis.load(smoke_run)
    assert df["batch"].dtype == "Int64" and df["time_median_s"].dtype == "Float64"
    assert df["status"].dtype == "string"
    assert df["depth"].isna().all()  # the LSTM has no depth axis: empty, not 0
    env = json.loads((smoke_run / "env.json").read_text())
    assert (df["jax"] == env["jax"]).all() and (df["profile"] == "smoke").all()


def test_several_runs_load_into_one_frame(smoke_run):
    df = analysis.load([smoke_run, smoke_run / "measurements.csv"])
    assert len(df) == 2 * len(analysis.load(smoke_run))


def _edit(path, fn):
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(fn(lines)))


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda ls: ls[:-1] + [ls[-1][: len(ls[-1]) // 2]], r"line \d+: the last row has no line"),
        (lambda ls: [ls[0].replace("time_median_s", "median")] + ls[1:], "line 1: header"),
        (lambda ls: [ls[0], ls[1].replace(",ok,", ",fine,", 1)] + ls[2:], "line 2: status 'fine'"),
        (
            lambda ls: [ls[0], ls[1].replace(",train,8,", ",train,two,", 1)] + ls[2:],
            "line 2: column 'batch' has 'two'",
        ),
        (lambda ls: [], "line 1: empty file"),
    ],
    ids=["truncated-row", "renamed-column", "unknown-status", "text-in-number", "empty"],
)
def test_a_corrupt_measurements_file_is_refused_naming_file_and_line(run_copy, edit, message):
    path = run_copy / "measurements.csv"
    _edit(path, edit)
    with pytest.raises(SchemaError, match=message) as e:
        analysis.load(run_copy)
    assert str(path) in str(e.value)


def test_an_older_schema_version_is_refused_clearly(run_copy):
    env = json.loads((run_copy / "env.json").read_text())
    env["schema_version"] = 0
    (run_copy / "env.json").write_text(json.dumps(env))
    expected = f"schema_version 0; this version of the suite reads 2, {SCHEMA_VERSION}"
    with pytest.raises(SchemaError, match=expected):
        analysis.load(run_copy)


def test_a_schema_2_run_reads_with_its_new_columns_missing():
    """The committed schema-2 reference run loads: rounds and round_spread empty."""
    ref = pathlib.Path(__file__).parents[2] / "results/reference/cpu-2core-549e082"
    df = analysis.load(ref)
    assert len(df) == 183 and df.rounds.isna().all() and df.round_spread.isna().all()
    samples = analysis.load_samples(ref / "samples.csv")
    assert samples["round"].isna().all() and samples.time_s.notna().all()


def test_a_foreign_file_is_refused(tmp_path):
    foreign = tmp_path / "data.csv"
    foreign.write_text("a,b\n1,2\n")
    with pytest.raises(SchemaError, match="not a run folder"):
        analysis.load(foreign)
    with pytest.raises(SchemaError, match="env.json: file not found"):
        analysis.load(tmp_path)


def test_pytest_benchmark_json_loads_into_the_same_shape(tmp_path):
    path = tmp_path / "0001_run.json"
    path.write_text(
        json.dumps(
            {
                "datetime": "2026-11-25T00:00:00",
                "machine_info": {"cpu": {"brand_raw": "Test CPU"}},
                "benchmarks": [
                    {
                        "extra_info": {
                            "suite": "lstm",
                            "model": "lstm",
                            "variant": "ours",
                            "mode": "train",
                            "batch": 2,
                            "seq_len": 4,
                            "n_devices": 1,
                            "span_ops": 10,
                        },
                        "stats": {"rounds": 3, "median": 0.5, "min": 0.4, "max": 0.6, "iqr": 0.1},
                    }
                ],
            }
        )
    )
    df = analysis.load(path)
    row = df.iloc[0]
    assert row.time_median_s == 0.5 and row.repeats == 3 and row.span_ops == 10
    assert pd.isna(row.depth) and row.host_cpu == "Test CPU"
    assert df["batch"].dtype == "Int64"


REFERENCE = pathlib.Path(__file__).parents[2] / "results/reference/cpu-2core-6f122ee"


def test_a_reference_run_keeps_its_samples_gzipped_and_whole():
    df = analysis.load(REFERENCE)
    samples = analysis.run_samples(REFERENCE)
    assert not (REFERENCE / "samples.csv").exists()
    counts = samples.groupby(["variant", "mode", "seq_len", "height", "depth", "batch", "hidden"],
                             dropna=False).size()  # fmt: skip
    assert len(samples) == int(df[df.status == "ok"].repeats.sum()) and counts.min() > 0
    latency = df[(df.regime == "latency") & (df.status == "ok")]
    assert (latency.rounds == 12).all() and samples["round"].notna().sum() > 0


@pytest.mark.slow
def test_re_rendering_the_reference_run_gives_its_verdicts_fits_and_report(tmp_path):
    """The report of the committed reference run, rendered again by this checkout, is the one
    committed: the same verdicts, fits, shapes and text (a refactor that changes one fails
    here). The figures drawn while the run trained its models are neither committed nor drawn
    again: the committed report's links to them are the only lines a re-render leaves out."""
    from bench import report, verdicts

    copy = tmp_path / REFERENCE.name
    shutil.copytree(REFERENCE, copy)
    report.render(verdicts.judge_run(copy))
    for name in ("claims_derived.csv", "fits.csv", "shapes.csv"):
        assert (copy / name).read_text() == (REFERENCE / name).read_text(), name
    drawn_in_training = [  # (the figures a re-render draws are not committed either)
        line
        for line in (REFERENCE / "report.md").read_text().splitlines()
        if line.startswith("![") and not (copy / line[line.index("(") + 1 : -1]).exists()
    ]
    assert all("trained_" in line for line in drawn_in_training)
    expected = [
        line
        for line in (REFERENCE / "report.md").read_text().splitlines()
        if line not in drawn_in_training
    ]
    assert (copy / "report.md").read_text().splitlines() == expected
