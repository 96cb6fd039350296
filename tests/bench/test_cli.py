"""The command line: a run writes a complete run folder; bad input is one line, exit 2."""

import json
import shutil

import pytest

from bench import analysis
from bench.cli import main
from bench.config import RunConfig
from bench.store import COLUMNS, SCHEMA_VERSION
from bench.workloads import suites
from tests.bench.helpers import only_run


def test_run_writes_a_complete_run_folder(smoke_run):
    names = {p.name for p in smoke_run.iterdir()}
    assert {"measurements.csv", "samples.csv", "env.json", "report.md", "fits.csv"} <= names
    assert {"time_lstm.png", "span_lstm.png"} <= names
    env = json.loads((smoke_run / "env.json").read_text())
    assert env["schema_version"] == SCHEMA_VERSION
    assert env["profile"] == "smoke" and env["backend"] == "cpu"
    for key in (
        "git_sha",
        "jax",
        "jaxlib",
        "flax",
        "optax",
        "device_kind",
        "XLA_FLAGS",
        "host_cpu",
        "command",
        "finished_utc",
    ):
        assert key in env


def test_every_case_of_the_suite_has_one_row_and_its_raw_samples(smoke_run):
    df = analysis.load(smoke_run)
    cases = suites()["lstm"].cases("smoke")
    assert len(df) == len(cases)
    assert (df.status == "ok").all()
    assert set(df.variant) == {"autodiff", "manual-bwd", "flax-optimized"}
    assert (df.seq_steps_pred == df.seq_len).all()
    samples = analysis.load_samples(smoke_run / "samples.csv")
    assert len(samples) == int(df.repeats.sum())
    # the median column is the median of the raw samples
    first = df.iloc[0]
    mine = samples[
        (samples.variant == first.variant)
        & (samples["mode"] == first["mode"])
        & (samples.seq_len == first.seq_len)
    ]
    assert mine.time_s.median() == pytest.approx(first.time_median_s)


def test_report_is_rerendered_from_the_csvs(smoke_run, tmp_path):
    copy = tmp_path / smoke_run.name
    shutil.copytree(smoke_run, copy)
    original = (copy / "report.md").read_text()
    (copy / "report.md").unlink()
    assert main(["report", str(copy)]) == 0
    assert (copy / "report.md").read_text() == original
    assert "flax-optimized" in original and "| speedup |" in original


def test_resuming_a_finished_run_measures_nothing_and_changes_nothing(smoke_run, tmp_path, capsys):
    copy = tmp_path / smoke_run.name
    shutil.copytree(smoke_run, copy)
    before = {p.name: p.read_bytes() for p in copy.iterdir() if p.is_file()}
    assert main(["run", "--resume", str(copy)]) == 0
    assert "this run is already complete" in capsys.readouterr().err
    after = {p.name: p.read_bytes() for p in copy.iterdir() if p.is_file()}
    assert after == before  # env.json keeps its sessions, report.md is not rewritten


def test_resuming_a_run_whose_last_session_did_not_finish_renders_its_report(smoke_run, tmp_path):
    """Every case has its row, but the session was killed before its end (no finished_utc, no
    report): the resume is a session of its own, which renders the report."""
    copy = tmp_path / smoke_run.name
    shutil.copytree(smoke_run, copy)
    env = json.loads((copy / "env.json").read_text())
    env.pop("finished_utc")
    (copy / "env.json").write_text(json.dumps(env))
    (copy / "report.md").unlink()
    assert main(["run", "--resume", str(copy)]) == 0
    assert (copy / "report.md").is_file()
    assert len(json.loads((copy / "env.json").read_text())["sessions"]) == 2


@pytest.mark.parametrize(
    "argv, message",
    [
        (["run", "--suite", "nope"], "unknown suite 'nope'; available: "),
        (["run", "--profile", "huge"], "unknown profile 'huge'; available: smoke, cpu, full"),
        (["run", "--repeats", "0"], "expected a positive integer, got 0"),
        (["run", "--repeats", "many"], "expected a positive integer, got 'many'"),
        (["run", "--resume", "no/such/run"], "not a run folder"),
        (["run", "--resume", "r", "--trace", "t"], "a resume keeps the run's"),
        (["run", "--resume", "r", "--no-compile-cache"], "a resume keeps the run's"),
        (["run", "--budget-s", "0"], "expected a positive finite number, got 0.0"),
        (["report", "no/such/run"], "no such run folder"),
        (["run", "--suite", "pixelcnn", "--variant", "cachd"], "unknown variant 'cachd'"),
        (["run", "--suite", "lstm", "--model", "gru"], "unknown model 'gru' for --model"),
        (["run", "--devices", "2"], "--devices 2: only 1 device(s) visible"),
        (["run", "--case-timeout", "-1"], "expected a positive finite number, got -1.0"),
        (["run", "--case-timeout", "inf"], "expected a positive finite number, got inf"),
        (["frobnicate"], "invalid choice"),
        (["run", "--trace", "pyproject.toml"], "is a file, not a folder for the traces"),
    ],
)
def test_bad_arguments_are_one_line_exit_2_and_write_nothing(argv, message, tmp_path, capsys):
    assert main([*argv, "--out", str(tmp_path)] if argv[0] == "run" else argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_list_with_a_bad_profile_prints_only_its_error(capsys):
    assert main(["list", "--profile", "huge"]) == 2
    out, err = capsys.readouterr()
    assert out == ""  # no suite listed before the error
    assert err == "bench: error: unknown profile 'huge'; available: smoke, cpu, full\n"


def test_measurement_columns_are_the_documented_schema(smoke_run):
    header = (smoke_run / "measurements.csv").read_text().splitlines()[0].split(",")
    assert header == list(COLUMNS)


def test_model_and_variant_filters_keep_only_those_cases(tmp_path):
    argv = [
        "run",
        "--suite",
        "lstm",
        "--variant",
        "manual-bwd",
        "--profile",
        "smoke",
        "--out",
        str(tmp_path),
        "--no-experiments",
    ]
    assert main(argv) == 0
    run_dir = only_run(tmp_path)
    df = analysis.load(run_dir)
    assert set(df.variant) == {"manual-bwd"} and len(df) == 3  # train only, three T


def test_a_suite_model_or_variant_named_twice_is_measured_once():
    config = RunConfig.create(
        profile="smoke", suites=["binary_adder", "binary_adder"], models=["m", "m"],
        variants=["v", "w", "v"],
    )  # fmt: skip
    assert config.suites == ("binary_adder",) and config.models == ("m",)
    assert config.variants == ("v", "w")
    assert RunConfig.from_env(config.to_env()) == config


@pytest.mark.parametrize("command", ["report", "list", "plan", "compare", "history"])
def test_every_option_of_the_reading_commands_says_what_it_does(command):
    from bench.cli import parser

    (sub,) = [a for a in parser()._actions if getattr(a, "choices", None)]
    actions = [a for a in sub.choices[command]._actions if a.dest != "help"]
    assert actions and all(a.help for a in actions), [a.dest for a in actions if not a.help]
