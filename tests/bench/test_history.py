"""`bench history`: one row per case and run folder, in order of the runs' start, with each
run's median and noise band, and a plot with the commits' short SHAs on the axis."""

import errno
import gzip
import json
import os

import matplotlib.figure
import numpy as np
import pandas as pd
import pytest

from bench import history
from bench.cli import main
from tests.bench.test_compare import BASE_S, noisy, same_code

SHAS = ("a" * 40, "b" * 40, "c" * 40)


@pytest.fixture
def results(tmp_path):
    """Three runs of three commits, written in another order than they started."""
    folder = tmp_path / "results"
    for i in (2, 0, 1):
        started = f"2026-12-0{i + 1}T10:00:00+00:00"
        same_code(folder / f"run{i}", seed=10 * i, env={"git_sha": SHAS[i], "started_utc": started})
    (folder / "latest").symlink_to("run2")
    return folder


def test_history_has_a_row_per_case_and_run_in_order_of_start(results, capsys):
    assert main(["history", str(results)]) == 0
    assert "4 cases over 3 runs" in capsys.readouterr().out
    df = pd.read_csv(results / "history.csv")
    assert len(df) == 4 * 3  # the link `latest` is not a fourth run
    one = df[df.seq_len == 16]
    assert one.git_short.tolist() == [s[:7] for s in SHAS] and one.band.eq("samples").all()
    expected = noisy(BASE_S[16], seed=10 + 16)  # run1's samples of seq_len=16
    row = one.iloc[1]
    assert row.median_s == pytest.approx(np.median(expected))
    assert (row.band_lo_s, row.band_hi_s) == pytest.approx(tuple(np.percentile(expected, [25, 75])))
    assert (results / "history.png").stat().st_size > 10_000


def test_history_of_one_case_and_a_suite(results, tmp_path):
    out = tmp_path / "out"
    assert main(["history", str(results), "--case", "seq_len=32", "--out", str(out)]) == 0
    assert pd.read_csv(out / "history.csv").seq_len.tolist() == [32, 32, 32]
    assert main(["history", str(results), "--suite", "convnet", "--out", str(out)]) == 0
    assert set(pd.read_csv(out / "history.csv").model) == {"matmul"}


def test_nothing_to_draw_is_a_one_line_error(results, tmp_path, capsys):
    assert main(["history", str(tmp_path / "empty")]) == 2
    assert main(["history", str(results), "--case", "no such case"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and "not a folder" in err[0] and "no measured case" in err[1]


def test_the_band_of_a_run_timed_in_rounds_spans_its_per_round_medians():
    times = np.array([1.0, 1.1, 2.0, 2.1, 3.0, 3.1, 4.0, 4.1])
    lo, hi, band = history._band(times, np.repeat(np.arange(4), 2))
    assert band == "rounds"
    assert (lo, hi) == pytest.approx(tuple(np.percentile([1.05, 2.05, 3.05, 4.05], [25, 75])))


def test_two_sizes_of_one_model_and_two_profiles_never_share_a_line(tmp_path):
    """The trained MDRNN has 469 parameters at smoke and 26,145 at cpu, at the same sizes: two
    cases, each in its profile's panel."""
    from tests.bench.test_compare import TRAINED, case, write_run

    folder = tmp_path / "results"
    for name, profile, params, day in (("s", "smoke", 469, 1), ("c", "cpu", 26145, 2)):
        env = {"profile": profile, "started_utc": f"2026-12-0{day}T10:00:00+00:00"}
        write_run(folder / name, [(case(**TRAINED, n_params=params), ("ok", noisy(0.01)))], env)
    _, _, df = history.write(folder)
    assert sorted(df.case) == [
        "trained/mdrnn-trained[diagonal] sample batch=16 depth=2 height=8 width=8 params=26,145",
        "trained/mdrnn-trained[diagonal] sample batch=16 depth=2 height=8 width=8 params=469",
    ]
    assert history.panels(df) == [("trained", "cpu"), ("trained", "smoke")]


def test_a_panel_of_many_cases_draws_their_typical_time_and_the_cases_that_moved_most():
    rows = [
        dict(case=f"lstm/case{i}", run_id=run, median_s=1.0 * (3.0 if i == 7 and run == "b"
                                                               else 1.0 + 0.01 * i),
             band_lo_s=0.9, band_hi_s=1.1)
        for i in range(80) for run in ("a", "b", "c")
    ]  # fmt: skip
    lines = history.panel_lines(pd.DataFrame(rows), one_case=False)
    assert len(lines) == 1 + history.MOVERS <= history.MAX_LINES
    assert lines[0][0] == "typical of its 80 cases (median; bar: their IQR)"
    assert lines[1][0] == "case7"  # moved 3× in run b
    assert lines[0][1].median_s.tolist() == pytest.approx([1.0, 1.0, 1.0])
    few = history.panel_lines(pd.DataFrame(rows[: 3 * 4]), one_case=False)
    assert [name for name, _ in few] == ["case0", "case1", "case2", "case3"]


def _damage(run_dir, **fields):
    env = json.loads((run_dir / "env.json").read_text())
    (run_dir / "env.json").write_text(json.dumps({**env, **fields}))


def test_a_damaged_run_is_left_out_by_name_and_the_others_drawn(results, capsys):
    _damage(results / "run1", started_utc=1733650000)  # a number: unsortable with the others
    (results / "run2" / "env.json").write_text('{"schema_version": 3, "run_')  # cut short
    assert main(["history", str(results)]) == 0
    captured = capsys.readouterr()
    assert "4 cases over 1 runs" in captured.out
    warnings = [ln for ln in captured.err.splitlines() if ln.startswith("bench: warning:")]
    assert len(warnings) == 2 and "Traceback" not in captured.err
    assert "run1 left out" in warnings[0] and "started_utc is 1733650000" in warnings[0]
    assert "run2 left out" in warnings[1] and "invalid JSON" in warnings[1]


def test_a_run_whose_samples_are_damaged_is_left_out_by_name(results, capsys):
    samples = results / "run1" / "samples.csv"
    with gzip.open(samples.with_suffix(".csv.gz"), "wb") as f:
        f.write(samples.read_bytes())
    samples.unlink()
    gz = samples.with_suffix(".csv.gz")
    gz.write_bytes(gz.read_bytes()[:-30])  # cut short
    assert main(["history", str(results)]) == 0
    captured = capsys.readouterr()
    assert "4 cases over 2 runs" in captured.out
    assert "run1 left out" in captured.err and "samples.csv.gz" in captured.err


DAMAGED_ENV = {  # env.json of the run started last, and what the warning says of it
    "calibration-a-string": ({"calibration": "fast"}, 'calibration is "fast"'),
    "byte-0xff": (b'{"schema_version": 3, "run_id": "\xff"}', "not UTF-8"),
    "a-list": (b"[1, 2]", "a JSON list"),
}


@pytest.mark.parametrize("damage, said", DAMAGED_ENV.values(), ids=DAMAGED_ENV)
def test_the_default_compare_names_a_damaged_run_and_compares_the_last_two_sound_ones(
    damage, said, results, monkeypatch, capsys
):
    if isinstance(damage, bytes):
        (results / "run2" / "env.json").write_bytes(damage)
    else:
        _damage(results / "run2", **damage)  # the run started last
    monkeypatch.chdir(results.parent)
    assert main(["compare"]) == 0
    captured = capsys.readouterr()
    assert "run2 left out" in captured.err and said in captured.err
    assert "Traceback" not in captured.err
    assert "run0" in captured.out and "run1" in captured.out


@pytest.mark.parametrize("error", [errno.ENOSPC, errno.EROFS])
def test_a_history_that_cannot_be_written_is_one_line_and_leaves_the_old_files(
    error, results, monkeypatch, capsys
):
    assert main(["history", str(results)]) == 0
    before = {p.name: p.read_bytes() for p in results.iterdir() if p.is_file()}
    real = matplotlib.figure.Figure.savefig

    def full(self, path, **kwargs):
        real(self, path, **kwargs)
        with open(path, "r+b") as f:  # half of it written, then the disk is full
            f.truncate(100)
        raise OSError(error, os.strerror(error), str(path))

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", full)
    capsys.readouterr()
    assert main(["history", str(results)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("bench: error: history: cannot write into") and err.count("\n") == 1
    assert os.strerror(error) in err and "Traceback" not in err
    assert {p.name: p.read_bytes() for p in results.iterdir() if p.is_file()} == before
