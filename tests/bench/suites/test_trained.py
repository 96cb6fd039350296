"""The trained suite (bench/suites/trained.py): train to a target before the cases, save the
weights, sample with them beside random init; a resume reuses the weights."""

import numpy as np
import pandas as pd
import pytest
from flax import nnx

from bench import analysis
from bench.cli import main
from bench.data import load_mnist_npz
from bench.suites.trained import SIZES, trainees
from models import mdrnn
from tests.bench.helpers import only_run


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("trained")
    argv = ["run", "--suite", "trained", "--profile", "smoke", "--no-experiments"]
    assert main([*argv, "--out", str(out)]) == 0
    run_dir = only_run(out)
    return run_dir


def test_training_writes_curves_summary_checkpoints_and_grids(trained_run):
    summary = pd.read_csv(trained_run / "trained_summary.csv")
    names = ["pixelcnn", "mdrnn-raster", "mdrnn-wavefront", "mdrnn-pipelined"]
    assert list(summary.model) == names
    for name in names:
        assert (trained_run / "checkpoints" / name).is_dir()
        curve = pd.read_csv(trained_run / f"trained_curve_{name}.csv")
        assert curve.step.iloc[0] == 0 and (curve.train_s.diff().dropna() >= 0).all()
        assert (trained_run / f"trained_samples_{name}.png").read_bytes()[:4] == b"\x89PNG"
    assert (summary.train_span_ops > 0).all()  # the training step's depth, counted
    assert "## Trained on the data" in (trained_run / "report.md").read_text()


def test_samplers_agree_and_obey_the_sampling_rule_with_trained_weights(trained_run):
    checks = pd.read_csv(trained_run / "trained_sampling.csv").set_index(["model", "weights"])
    assert checks.loc[("pixelcnn", "trained"), "samplers_identical"]
    assert (checks.rule_violations == checks.near_ties).all()  # only float ties, if any


def test_sampler_cases_run_with_trained_and_with_random_weights(trained_run):
    df = analysis.load(trained_run)
    assert (df.status == "ok").all(), df.error.dropna().tolist()
    assert set(df.model) == {"pixelcnn-trained", "pixelcnn-random", "mdrnn-trained", "mdrnn-random"}


def test_a_resume_reuses_the_trained_weights(trained_run, tmp_path):
    import shutil

    copy = tmp_path / trained_run.name
    shutil.copytree(trained_run, copy)
    rows = (copy / "measurements.csv").read_text().splitlines(keepends=True)
    (copy / "measurements.csv").write_text("".join(rows[:-2]))  # two cases to measure again
    curve = copy / "trained_curve_pixelcnn.csv"
    before = curve.stat().st_mtime_ns, (copy / "trained_summary.csv").read_text()
    assert main(["run", "--resume", str(copy)]) == 0
    assert (curve.stat().st_mtime_ns, (copy / "trained_summary.csv").read_text()) == before
    assert len(analysis.load(copy)) == len(rows) - 1


def test_a_bad_data_file_is_one_line_and_nothing_is_written(tmp_path, capsys):
    bad = tmp_path / "mnist.npz"
    bad.write_bytes(b"PK\x03\x04 truncated")
    out = tmp_path / "results"
    assert main(["run", "--suite", "trained", "--data", str(bad), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(bad) in err and "not a readable npz" in err
    assert not out.exists()


def test_a_small_mnist_file_is_accepted(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "mnist.npz"
    x = lambda n: rng.integers(0, 256, (n, 8, 8), dtype=np.uint8)  # noqa: E731
    np.savez(path, x_train=x(60), x_test=x(12))
    from bench.cli import check_data

    check_data(str(path))  # no error: a well-formed file
    splits = load_mnist_npz(path)
    assert splits.test.shape == (12, 8, 8) and set(np.unique(splits.test)) <= {0, 1}
    assert splits.train.shape[0] + splits.validation.shape[0] == 60


@pytest.mark.parametrize("profile", sorted(SIZES))
def test_every_profile_trains_pixelcnn_and_the_mdrnn_under_each_schedule(profile):
    workloads = trainees(profile)
    names = [w.name for w in workloads]
    assert names == ["pixelcnn"] + [f"mdrnn-{s}" for s in mdrnn.SCHEDULES]
    mdrnns = workloads[1:]
    assert len({w.config for w in mdrnns}) == 1  # the schedules share one config
    for w, schedule in zip(mdrnns, mdrnn.SCHEDULES, strict=True):
        model = nnx.eval_shape(lambda w=w: w.build(0))
        assert model.mdrnn.schedule == schedule
