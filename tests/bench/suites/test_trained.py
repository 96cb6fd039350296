"""The trained suite (bench/suites/trained.py): train to a target before the cases, save the
weights, sample with them beside random init; a resume reuses the weights."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from flax import nnx

from bench import analysis, quality, workloads
from bench.cli import main
from bench.config import RunConfig
from bench.data import load_mnist_npz
from bench.suites.trained import (
    SIZES,
    CheckpointError,
    _kept,
    steps_to_target,
    train_all,
    trained_model,
    trainees,
)
from models import mdrnn
from tests.bench.helpers import only_run


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("trained")
    argv = ["run", "--suite", "trained", "--profile", "smoke", "--no-experiments"]
    assert main([*argv, "--out", str(out)]) == 0
    run_dir = only_run(out)
    return run_dir


def test_training_writes_runs_curves_summary_checkpoints_and_grids(trained_run):
    summary = pd.read_csv(trained_run / "trained_summary.csv")
    timed = ["pixelcnn", "mdrnn-raster", "mdrnn-wavefront", "mdrnn-pipelined"]
    assert list(summary.model) == timed
    assert list(summary.trained_as) == ["pixelcnn", "mdrnn", "mdrnn", "mdrnn"]
    # The MDRNN is trained once: its schedules share one step count and one set of weights.
    mdrnns = summary[summary.trained_as == "mdrnn"]
    assert mdrnns.drop_duplicates(["best_lr", "seeds_at_target", "test_ratio"]).shape[0] == 1
    assert (summary.time_per_step_s > 0).all() and (summary.train_span_ops > 0).all()
    runs = pd.read_csv(trained_run / "trained_runs.csv")
    for name in ("pixelcnn", "mdrnn"):
        config = SIZES["smoke"][f"{name}_train"]
        assert len(runs[runs.model == name]) == len(config.lrs) * config.seeds
        assert (trained_run / "checkpoints" / name).is_dir()
        curve = pd.read_csv(trained_run / f"trained_curve_{name}.csv")
        assert curve.step.iloc[0] == 0 and set(curve.seed) == set(range(config.seeds))
        assert (trained_run / f"trained_samples_{name}.png").read_bytes()[:4] == b"\x89PNG"
    assert "## Trained on the data" in (trained_run / "report.md").read_text()


def test_steps_to_target_is_the_best_rates_mean_with_a_t_interval():
    runs = [dict(lr=lr, seed=s, target_step=t, resolution=10)
            for lr, steps in ((1e-2, (100, 110, 120)), (3e-2, (-1, 90, 80)))
            for s, t in enumerate(steps)]  # fmt: skip
    s = steps_to_target(runs, 1e-2)
    assert s["steps_to_target"] == 110 and s["seeds_at_target"] == s["seeds"] == 3
    assert s["steps_hi"] - 110 == pytest.approx(110 - s["steps_lo"])
    assert s["steps_hi"] - 110 == pytest.approx(4.303 * 10 / np.sqrt(3), rel=1e-3)
    none = steps_to_target(runs, None)
    assert np.isnan(none["steps_to_target"]) and none["seeds_at_target"] == 3


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
    # and their samples, the last ones written: rows without samples are cases never measured
    # (samples without rows would be rows lost, and the resume refuses them)
    dropped = {workloads.case_key(r) for r in analysis.load(trained_run).tail(2).to_dict("records")}
    samples = (copy / "samples.csv").read_text().splitlines(keepends=True)
    keys = [
        workloads.case_key(r)
        for r in analysis.load_samples(copy / "samples.csv").to_dict("records")
    ]
    kept = [line for line, key in zip(samples[1:], keys, strict=True) if key not in dropped]
    (copy / "samples.csv").write_text("".join(samples[:1] + kept))
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
    from bench.session import check_data

    check_data(str(path))  # no error: a well-formed file
    splits = load_mnist_npz(path)
    assert splits.test.shape == (12, 8, 8) and set(np.unique(splits.test)) <= {0, 1}
    assert splits.train.shape[0] + splits.validation.shape[0] == 60


@pytest.mark.parametrize("profile", sorted(SIZES))
def test_every_profile_trains_pixelcnn_and_the_mdrnn_once_and_times_each_schedule(profile):
    pix, md = trainees(profile)
    assert (pix.name, md.name) == ("pixelcnn", "mdrnn")
    assert sorted(md.schedules) == sorted(mdrnn.SCHEDULES) and pix.schedules == (None,)
    assert pix.config.batch == md.config.batch and pix.config.seeds == md.config.seeds >= 3
    assert pix.config.eval_every <= 10 and md.config.eval_every <= 10
    assert len(pix.config.lrs) >= 3 and len(md.config.lrs) >= 3  # a grid that can bracket
    for schedule in md.schedules:
        model = nnx.eval_shape(lambda s=schedule: md.build(0, s))
        assert model.mdrnn.schedule == schedule


def _copy(run_dir, tmp_path):
    copy = tmp_path / run_dir.name
    shutil.copytree(run_dir, copy)
    return copy


def _config(run_dir):
    return RunConfig.from_env(json.loads((run_dir / "env.json").read_text()))


TRAIN_GRID = quality.train_grid


class Killed(BaseException):
    """The process killed at this point (nothing after it runs)."""


def _count_training(monkeypatch, *, interrupt: str | None = None) -> list[str]:
    """The models ``quality.train_grid`` trains from now on (by their loss's module); with
    ``interrupt``, it is stopped (as a kill would) when it starts that one."""
    trained, real = [], TRAIN_GRID

    def train_grid(build, loss, *args, **kwargs):
        name = loss.__module__.rsplit(".", 1)[-1]
        trained.append(name)
        if name == interrupt:
            raise Killed
        return real(build, loss, *args, **kwargs)

    monkeypatch.setattr(quality, "train_grid", train_grid)
    return trained


@pytest.mark.slow  # (trains both models; the fast test of what is kept is below)
def test_a_run_killed_while_training_keeps_each_model_it_finished(
    trained_run, tmp_path, monkeypatch
):
    copy = _copy(trained_run, tmp_path)
    runs_before = pd.read_csv(copy / "trained_runs.csv")
    # what a run killed while it trained the MDRNN left before #34: PixelCNN's checkpoint
    # and curve, and neither table
    shutil.rmtree(copy / "checkpoints" / "mdrnn")
    for name in ("trained_curve_mdrnn.csv", "trained_summary.csv", "trained_runs.csv"):
        (copy / name).unlink()
    trained = _count_training(monkeypatch, interrupt="mdrnn")
    with pytest.raises(Killed):  # killed again, while it trains the MDRNN
        train_all(_config(copy), copy)
    assert trained == ["pixelcnn", "mdrnn"]  # PixelCNN's rows were lost: trained again
    assert set(pd.read_csv(copy / "trained_summary.csv").model) == {"pixelcnn"}
    runs = pd.read_csv(copy / "trained_runs.csv")
    assert len(runs) == len(runs_before[runs_before.model == "pixelcnn"])  # kept whole

    trained = _count_training(monkeypatch)
    train_all(_config(copy), copy)  # the resume
    assert trained == ["mdrnn"]
    summary = pd.read_csv(copy / "trained_summary.csv")
    assert list(summary.model) == ["pixelcnn", "mdrnn-raster", "mdrnn-wavefront", "mdrnn-pipelined"]
    runs = pd.read_csv(copy / "trained_runs.csv")
    assert runs.groupby("model").size().to_dict() == runs_before.groupby("model").size().to_dict()


def test_a_damaged_checkpoint_is_named_and_its_model_trained_again(
    trained_run, tmp_path, monkeypatch, capsys
):
    copy = _copy(trained_run, tmp_path)
    (copy / "checkpoints" / "pixelcnn" / "_METADATA").unlink()
    pixelcnn = trainees("smoke")[0]
    with pytest.raises(CheckpointError, match=str(copy / "checkpoints" / "pixelcnn")):
        trained_model(pixelcnn, copy)
    trained = _count_training(monkeypatch)
    train_all(_config(copy), copy)
    assert trained == ["pixelcnn"]
    err = capsys.readouterr().err
    assert "training pixelcnn again" in err and "checkpoints/pixelcnn" in err
    trained_model(pixelcnn, copy)  # loads


@pytest.mark.parametrize(
    "damage, said",
    [
        (lambda d: (d / "trained_curve_pixelcnn.csv").unlink(), "trained_curve_pixelcnn.csv"),
        (lambda d: _drop_model(d / "trained_runs.csv", "pixelcnn"), "rows of trained_runs.csv"),
        (lambda d: _drop_model(d / "trained_summary.csv", "pixelcnn"), "trained_summary.csv"),
        (lambda d: (d / "checkpoints/pixelcnn/_METADATA").unlink(), "checkpoints/pixelcnn"),
    ],
)
def test_a_model_whose_training_the_folder_lacks_in_part_is_trained_again(
    damage, said, trained_run, tmp_path, capsys
):
    copy = _copy(trained_run, tmp_path)
    pixelcnn, mdrnn = trainees("smoke")
    assert _kept(pixelcnn, copy) and _kept(mdrnn, copy)
    damage(copy)
    assert not _kept(pixelcnn, copy) and _kept(mdrnn, copy)
    err = capsys.readouterr().err
    assert "training pixelcnn again" in err and said in err


def _drop_model(path, model):
    table = pd.read_csv(path)
    table[table.model != model].to_csv(path, index=False)


def test_a_damaged_checkpoint_is_named(trained_run, tmp_path):
    copy = _copy(trained_run, tmp_path)
    (copy / "checkpoints" / "pixelcnn" / "_METADATA").unlink()
    with pytest.raises(CheckpointError, match="checkpoint .*checkpoints/pixelcnn cannot be loaded"):
        trained_model(trainees("smoke")[0], copy)
