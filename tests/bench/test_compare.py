"""`compare` as a gate: it fails on a broken, vanished, appeared or significantly slower case,
never on noise; slower cases on a machine that moved between the runs are their own outcome
(exit 3, "re-run on a quiet machine"); and it says why it cannot compare.

Every run here is written by the test from recorded samples (no timing in the test)."""

import csv
import dataclasses
import json
import shutil

import numpy as np
import pytest

from bench import analysis, timing
from bench import compare as cmp
from bench.cli import main
from bench.store import COLUMNS, SAMPLE_COLUMNS, SCHEMA_VERSION

LSTM = dict(suite="lstm", model="lstm", variant="autodiff", mode="train", batch=4, hidden=8)
MATMUL = dict(suite="convnet", model="matmul", variant="peak", mode="forward")
BASE_S = {16: 0.010, 32: 0.020, 64: 0.040}  # seq_len -> median seconds of the LSTM cases


def case(seq_len=None, **identity):
    return {**(identity or LSTM), **({"seq_len": seq_len} if seq_len else {}), "n_devices": 1}


def noisy(median_s, n=20, spread=0.05, seed=0):
    """``n`` recorded times around ``median_s``, log-normal with the given spread."""
    rng = np.random.default_rng(seed)
    return [float(t) for t in median_s * np.exp(spread * rng.standard_normal(n))]


def write_run(path, cases, env=None):
    """A run folder: ``cases`` maps a case identity (a dict) to ``(status, samples)``."""
    path.mkdir(parents=True)
    env = {
        "schema_version": SCHEMA_VERSION,
        "run_id": path.name,
        "git_sha": "a" * 40,
        "profile": "cpu",
        "suites": ["lstm", "convnet"],
        "repeats": 20,
        "started_utc": "2026-11-30T12:00:00Z",
        **{key: "recorded" for key in ("python", "jax", "jaxlib", "flax", "optax")},
        "backend": "cpu",
        "device_kind": "cpu",
        "device_count": 1,
        "host_cpu": "test cpu",
        "host_cpu_count": 2,
        **(env or {}),
    }
    (path / "env.json").write_text(json.dumps(env))
    with (
        open(path / "measurements.csv", "w", newline="") as m,
        open(path / "samples.csv", "w", newline="") as s,
    ):
        rows = csv.DictWriter(m, fieldnames=list(COLUMNS), restval="")
        samples = csv.DictWriter(s, fieldnames=list(SAMPLE_COLUMNS), restval="")
        rows.writeheader()
        samples.writeheader()
        for identity, (status, times) in cases:
            ok = status == "ok"
            rows.writerow(
                {
                    "run_id": path.name,
                    **identity,
                    "status": status,
                    "repeats": len(times) if ok else "",
                    **{
                        f"time_{stat}_s": repr(float(getattr(np, stat)(times))) if ok else ""
                        for stat in ("median", "min", "max")
                    },
                }
            )
            for i, t in enumerate(times if ok else ()):
                ident = {k: v for k, v in identity.items() if k in SAMPLE_COLUMNS}
                samples.writerow({"run_id": path.name, **ident, "repeat": i, "time_s": repr(t)})
    return path


def same_code(path, load=1.0, seed=0, env=None, drop=(), statuses=None, slower=None):
    """A run of the LSTM cases and the matmul calibration, everything ``load`` times slower
    (a busier machine); ``slower`` maps a seq_len to an extra factor (a slower code path)."""
    statuses, slower = statuses or {}, slower or {}
    cases = [
        (
            case(T),
            (statuses.get(T, "ok"), noisy(BASE_S[T] * load * slower.get(T, 1), seed=seed + T)),
        )
        for T in BASE_S
        if T not in drop
    ]
    cases.append((case(**MATMUL), ("ok", noisy(0.050 * load, seed=seed + 1))))
    return write_run(path, cases, env)


def run_compare(*argv):
    return main(["compare", *map(str, argv)])


def test_the_same_run_compared_with_itself_passes_and_says_so(tmp_path, capsys):
    old = same_code(tmp_path / "old")
    assert run_compare(old, old) == 0
    out = capsys.readouterr().out
    assert "no regression (a run compared with itself)" in out and "4 unchanged" in out
    assert "NOTE: this compares a run with itself" in out
    assert run_compare(old, same_code(tmp_path / "new", seed=100)) == 0
    assert "with itself" not in capsys.readouterr().out


def test_the_header_shows_the_repeats_the_cases_ran(tmp_path, capsys):
    old = same_code(tmp_path / "old", env={"repeats": 2})  # the run asked for at least 2
    new = write_run(tmp_path / "new", [(case(16), ("ok", noisy(0.01, n=7))),
                                       (case(32), ("ok", noisy(0.02, n=30)))])  # fmt: skip
    run_compare(old, new)
    out = capsys.readouterr().out
    assert "repeats the cases ran: 20 → 7–30" in out


def test_a_case_that_broke_fails_the_comparison(tmp_path, capsys):
    old = same_code(tmp_path / "old")
    new = same_code(tmp_path / "new", seed=100, statuses={32: "timeout"})
    assert run_compare(old, new) == 1
    out = capsys.readouterr().out
    assert "broke (1):" in out and "seq_len=32 hidden=8: ok → timeout" in out


def test_a_case_skipped_by_the_budget_is_absent_not_broken(tmp_path, capsys):
    old = same_code(tmp_path / "old")
    new = same_code(tmp_path / "new", seed=100, statuses={32: "skipped"})
    assert run_compare(old, new, "--allow", "vanished") == 0
    out = capsys.readouterr().out
    assert "1 vanished, 3 unchanged" in out and "seq_len=32 hidden=8: ok → —" in out


def test_a_vanished_case_fails_the_comparison(tmp_path, capsys):
    old = same_code(tmp_path / "old")
    new = same_code(tmp_path / "new", seed=100, drop=(64,))
    assert run_compare(old, new) == 1
    assert "vanished (1):" in capsys.readouterr().out


def test_an_appeared_case_fails_unless_allowed(tmp_path):
    old = same_code(tmp_path / "old", drop=(64,))
    new = same_code(tmp_path / "new", seed=100)
    assert run_compare(old, new) == 1
    assert run_compare(old, new, "--allow", "appeared") == 0


def test_a_significantly_slower_case_fails_the_comparison(tmp_path, capsys):
    old = same_code(tmp_path / "old")
    new = same_code(tmp_path / "new", seed=100, slower={16: 1.5})
    assert run_compare(old, new) == 1
    out = capsys.readouterr().out
    assert "slower (1):" in out and "seq_len=16" in out.split("slower (1):")[1].splitlines()[1]


def test_a_slowdown_within_the_threshold_passes(tmp_path):
    old = same_code(tmp_path / "old", load=1.0)
    new = same_code(tmp_path / "new", seed=100, slower={16: 1.05})
    assert run_compare(old, new, "--threshold", "0.10") == 0


def test_a_slowdown_the_samples_cannot_resolve_passes():
    """Medians 30% apart, but the samples spread so widely that the interval reaches 1."""
    old = [0.004, 0.007, 0.009, 0.011, 0.015, 0.02]
    new = [1.3 * t for t in (0.011, 0.02, 0.004, 0.015, 0.009, 0.007)]
    ratio, lo, hi = cmp.ratio_interval(old, new)
    assert ratio == pytest.approx(1.3) and lo < 1 < hi


def test_a_busier_machine_is_machine_moved_raw_and_passes_normalised(tmp_path, capsys):
    """The same code, every case 2.5× slower because the machine was loaded: the raw times
    flag every case, and the outcome is "machine moved" (exit 3), not a regression; divided by
    each run's own matmul calibration, none is flagged."""
    old = same_code(tmp_path / "old", load=1.0, env={"load_avg_start": [0.5, 0.4, 0.3]})
    busy = {"load_avg_start": [6.0, 5.0, 4], "host_cpu_count": 2}
    new = same_code(tmp_path / "new", load=2.5, seed=100, env=busy)
    assert run_compare(old, new) == cmp.EXIT_MOVED == 3
    raw = capsys.readouterr().out
    assert "MACHINE MOVED: 4 case(s) slower" in raw and "re-run on a quiet machine" in raw
    assert "REGRESSION" not in raw
    ratios = {
        T: np.median(noisy(BASE_S[T] * 2.5, seed=100 + T)) / np.median(noisy(BASE_S[T], seed=T))
        for T in BASE_S
    }
    calibration = np.median(noisy(0.050 * 2.5, seed=101)) / np.median(noisy(0.050, seed=1))
    typical = np.median([*ratios.values(), calibration])
    assert f"WARNING: typical case: ratio {typical:.3g}" in raw and "the whole run moved" in raw
    assert "slower (4):" in raw and f"itself took {calibration:.3g}× the time" in raw
    assert run_compare(old, new, "--normalise") == 0
    out = capsys.readouterr().out
    assert "NORMALISED" in out and "convnet/matmul[peak]" in out
    assert "load avg at start: 0.50/0.40/0.30 → 6.00/5.00/4" in out
    assert "WARNING: new ran at load average 6 on 2 cores" in out and "old ran" not in out


def test_normalising_still_catches_a_slower_case_on_a_busier_machine(tmp_path):
    old = same_code(tmp_path / "old", load=1.0)
    new = same_code(tmp_path / "new", load=2.5, seed=100, slower={64: 1.6})
    assert run_compare(old, new, "--normalise") == 1


def test_normalising_without_a_calibration_cannot_compare(tmp_path, capsys):
    old = write_run(tmp_path / "old", [(case(16), ("ok", noisy(0.01)))])
    new = write_run(tmp_path / "new", [(case(16), ("ok", noisy(0.01, seed=3)))])
    assert run_compare(old, new, "--normalise") == 2
    err = capsys.readouterr().err
    assert "no calibration" in err and err.count("\n") == 1


@pytest.mark.parametrize("threshold", ["nan", "inf", "-0.1", "ten"])
def test_a_threshold_that_is_not_a_finite_fraction_is_refused(tmp_path, threshold, capsys):
    old = same_code(tmp_path / "old")
    assert run_compare(old, old, "--threshold", threshold) == 2
    assert "--threshold" in capsys.readouterr().err


def test_runs_with_no_case_in_common_cannot_be_compared(tmp_path):
    old = write_run(tmp_path / "old", [(case(16), ("ok", noisy(0.01)))])
    new = write_run(tmp_path / "new", [(case(32), ("ok", noisy(0.01)))])
    assert run_compare(old, new) == 2


def test_without_arguments_the_last_two_runs_under_results_are_compared(
    tmp_path, monkeypatch, capsys
):
    results = tmp_path / "results"
    same_code(results / "b-first", env={"started_utc": "2026-01-01T00:00:00+00:00"})
    same_code(results / "a-second", env={"started_utc": "2026-01-02T00:00:00+00:00"}, drop=(16,))
    (results / "latest").symlink_to("a-second")
    monkeypatch.chdir(tmp_path)
    assert run_compare() == 1  # seq_len=16 vanished from the later run
    out = capsys.readouterr().out
    assert out.startswith("old: results/b-first") and "new: results/a-second" in out
    monkeypatch.chdir(results)
    assert run_compare() == 2  # no results/ here


def test_the_header_says_what_differs_between_the_environments(tmp_path, capsys):
    old = same_code(tmp_path / "old", env={"jax": "0.10.2", "host": "a", "device_kind": "cpu"})
    new = same_code(tmp_path / "new", env={"jax": "0.10.3", "host": "a", "device_kind": "cpu"})
    run_compare(old, new)
    out = capsys.readouterr().out
    assert "environments differ in: jax: 0.10.2 → 0.10.3" in out
    (same,) = [line for line in out.splitlines() if line.startswith("same: ")]
    assert "host a; " in same and "device cpu; " in same and "jax" not in same.replace("jaxlib", "")


def test_the_interval_is_seeded_and_uses_the_range_below_five_samples():
    old, new = noisy(0.01, seed=1), noisy(0.012, seed=2)
    assert cmp.ratio_interval(old, new) == cmp.ratio_interval(old, new)
    ratio, lo, hi = cmp.ratio_interval([1.0, 2.0], [3.0, 4.0])
    assert (ratio, lo, hi) == (3.5 / 1.5, 3.0 / 2.0, 4.0 / 1.0)


# --- pytest-benchmark saves -------------------------------------------------------------------


def write_save(path, benchmarks, data=True, **top):
    """A pytest-benchmark save: ``benchmarks`` maps a case identity to its raw times."""
    path.parent.mkdir(parents=True, exist_ok=True)
    entries = []
    for identity, times in benchmarks:
        stats = {"rounds": len(times), "median": float(np.median(times)), "min": min(times)}
        stats.update(max=max(times), iqr=0.0, **({"data": times} if data else {}))
        entries.append({"name": "test_workload", "extra_info": identity, "stats": stats})
    path.write_text(json.dumps({"datetime": "2026-11-30T00:00:00", "benchmarks": entries, **top}))
    return path


def test_a_pytest_benchmark_save_loads_with_a_run_folders_context_columns(tmp_path):
    """`bench.analysis.load` gives a save the run-context columns of a run folder, from its
    commit_info, machine_info (tests/conftest.py's `bench` entry) and extra_info."""
    machine = {"cpu": {"brand_raw": "test cpu"}, "bench": {"jax": "0.10.2", "jaxlib": "0.10.2",
               "flax": "0.12.8", "backend": "cpu"}}  # fmt: skip
    save = write_save(
        tmp_path / "0001_a.json",
        [({**case(16), "profile": "smoke"}, noisy(0.01))],
        machine_info=machine,
        commit_info={"id": "b" * 40, "dirty": True},
    )
    folder = analysis.load(same_code(tmp_path / "run"))
    df = analysis.load(save)
    assert list(df.columns) == list(folder.columns)
    assert dict(df.dtypes) == dict(folder.dtypes)
    row = df.iloc[0]
    assert (row.git_sha, row.git_dirty, row.jax, row.backend) == ("b" * 40, True, "0.10.2", "cpu")
    assert (row.host_cpu, row.profile, row.flax) == ("test cpu", "smoke", "0.12.8")


def test_pytest_benchmark_saves_follow_the_same_rules(tmp_path, capsys):
    old = write_save(tmp_path / "s" / "0001_a.json", [(case(16), noisy(0.01))])
    slow = write_save(tmp_path / "s" / "0002_b.json", [(case(16), noisy(0.02, seed=5))])
    assert run_compare(old, old) == 0
    assert run_compare(old, slow) == 1
    assert "slower (1):" in capsys.readouterr().out


def test_a_pytest_benchmark_entry_without_the_case_identity_is_refused(tmp_path, capsys):
    anonymous = {k: v for k, v in case(16).items() if k != "variant"}
    old = write_save(tmp_path / "0001_a.json", [(anonymous, noisy(0.01))])
    assert run_compare(old, old) == 2
    assert "no variant in extra_info" in capsys.readouterr().err


def test_a_pytest_benchmark_save_without_raw_times_is_refused(tmp_path, capsys):
    old = write_save(tmp_path / "0001_a.json", [(case(16), noisy(0.01))], data=False)
    assert run_compare(old, old) == 2
    assert "--benchmark-save-data" in capsys.readouterr().err


def test_a_calibration_caught_in_a_load_spike_is_called_out(tmp_path, capsys):
    """Only the calibration was slow in the new run: normalised, every case looks faster, and
    the header says the whole run moved rather than reporting it silently."""
    old = same_code(tmp_path / "old")
    new = write_run(
        tmp_path / "new",
        [(case(T), ("ok", noisy(BASE_S[T], seed=T + 7))) for T in BASE_S]
        + [(case(**MATMUL), ("ok", noisy(0.050 * 2.0, seed=9)))],
    )
    assert run_compare(old, new, "--normalise") == 0
    out = capsys.readouterr().out
    calibration = np.median(noisy(0.050 * 2.0, seed=9)) / np.median(noisy(0.050, seed=1))
    ratios = [
        np.median(noisy(BASE_S[T], seed=T + 7)) / np.median(noisy(BASE_S[T], seed=T)) / calibration
        for T in BASE_S
    ]
    typical = np.median(ratios)  # normalised, the calibration case is not a timed case
    assert f"WARNING: typical case: ratio {typical:.3g}" in out and "measured at one moment" in out
    # raw: the calibration case itself is the one slower, and it moved the machine's yardstick
    assert run_compare(old, new) == cmp.EXIT_MOVED
    assert "the calibration took" in capsys.readouterr().out


def test_on_a_machine_that_moved_a_broken_case_is_still_a_regression(tmp_path, capsys):
    old = same_code(tmp_path / "old")
    new = same_code(tmp_path / "new", load=2.5, seed=100, statuses={32: "timeout"})
    assert run_compare(old, new) == 1
    assert "REGRESSION: 4 case(s)" in capsys.readouterr().out  # the broken one, 3 slower


def test_a_quiet_machine_with_one_slower_case_is_a_regression_not_machine_moved(tmp_path):
    old = same_code(tmp_path / "old")
    new = same_code(tmp_path / "new", seed=100, slower={16: 1.5})
    result = cmp.compare(cmp.open_run(old), cmp.open_run(new), resamples=200)
    assert result.machine_moved() == [] and result.exit_code == 1


def test_code_that_slows_every_case_is_a_regression_though_the_typical_ratio_moves(tmp_path):
    """The calibration and the load did not move: a typical ratio of 1.6 is the code's."""
    old = same_code(tmp_path / "old")
    new = same_code(tmp_path / "new", seed=100, slower={T: 1.6 for T in BASE_S})
    result = cmp.compare(cmp.open_run(old), cmp.open_run(new), resamples=200)
    assert result.typical > 1.3 and result.machine_moved() == [] and result.exit_code == 1


# --- runs timed in interleaved rounds ---------------------------------------------------------


def rounds_run(path, factor, round_noise, seed):
    """A run (built in memory) of one case timed in 5 interleaved rounds of 8 samples: each
    round's times scattered by ``round_noise`` (log-normal) around ``factor`` × 10 ms, the
    samples within a round by 1%."""
    rng = np.random.default_rng(seed)
    key = cmp.case_key(case(16))
    shifts = np.repeat(np.exp(round_noise * rng.standard_normal(5)), 8)
    times = 0.010 * factor * shifts * np.exp(0.01 * rng.standard_normal(40))
    rows = cmp.pd.DataFrame([{**case(16), "status": "ok", "repeats": 40,
                              "time_median_s": float(np.median(times))}])  # fmt: skip
    return cmp.Run(path, "run folder", rows, {key: times}, {}, {key: np.repeat(np.arange(5), 8)})


def test_with_rounds_a_change_within_the_between_round_spread_is_not_slower(tmp_path):
    """1.3× slower by the back-to-back samples, but the rounds of each run scatter by ~20%:
    the change is within 3× their combined spread; with rounds that agree to 1%, it is slower."""
    noisy_old, noisy_new = (rounds_run(tmp_path / n, f, 0.2, s) for n, f, s in
                            (("a", 1.0, 1), ("b", 1.3, 2)))  # fmt: skip
    result = cmp.compare(noisy_old, noisy_new, resamples=200)
    (row,) = result.cases.to_dict("records")
    spreads = [cmp.round_spread(r, cmp.case_key(case(16))) for r in (noisy_old, noisy_new)]
    assert row["noise"] == pytest.approx(3 * np.hypot(*spreads)) and row["ratio"] - 1 < row["noise"]
    assert row["outcome"] == "unchanged"
    quiet_old, quiet_new = (rounds_run(tmp_path / n, f, 0.01, s) for n, f, s in
                            (("c", 1.0, 1), ("d", 1.3, 2)))  # fmt: skip
    (row,) = cmp.compare(quiet_old, quiet_new, resamples=200).cases.to_dict("records")
    assert row["outcome"] == "slower" and row["noise"] < 0.1


def test_the_round_spread_is_the_iqr_of_the_per_round_medians_over_their_median(tmp_path):
    run = rounds_run(tmp_path / "a", 1.0, 0.2, 3)
    key = cmp.case_key(case(16))
    medians = [np.median(run.samples[key][i * 8 : (i + 1) * 8]) for i in range(5)]
    q1, q3 = np.percentile(medians, [25, 75])
    assert cmp.round_spread(run, key) == pytest.approx((q3 - q1) / np.median(medians))
    no_rounds = cmp.Run(run.path, run.kind, run.rows, run.samples, {})
    assert cmp.round_spread(no_rounds, key) is None


# --- --remeasure ------------------------------------------------------------------------------


def slow_down(run_dir, label_part, factor):
    """Multiply one case's times (its row and its samples) in a run folder by ``factor``: a
    planted slowdown (the case is the first whose label contains ``label_part``)."""
    target = None
    for name, columns in (("measurements.csv", TIME_COLUMNS), ("samples.csv", ("time_s",))):
        path = run_dir / name
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
        for row in rows:
            key = cmp.case_key({k: (int(v) if v.isdigit() else v or None) for k, v in row.items()})
            if target is None and label_part in cmp.case_label(key):
                target = key
            if key == target:
                for column in columns:
                    row[column] = repr(float(row[column]) * factor)
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    return target


TIME_COLUMNS = ("time_median_s", "time_min_s", "time_max_s", "time_iqr_s")


def test_remeasure_times_the_flagged_case_again_in_interleaved_rounds(
    smoke_run, tmp_path, monkeypatch
):
    """The new run's case looks 3× slower (its recorded times were multiplied): --remeasure
    times it again in this checkout and decides on those samples, taken in rounds."""
    # how many calls fit a visit depends on the machine's load: fixed here, so the count is
    monkeypatch.setattr(timing, "visit_calls", lambda call_s: cmp.MIN_SAMPLES)
    new = tmp_path / "new"
    shutil.copytree(smoke_run, new)
    key = slow_down(new, "manual-bwd] train batch=8 seq_len=8", 3.0)
    first = cmp.compare(cmp.open_run(smoke_run), cmp.open_run(new), resamples=200)
    (label,) = [c for c in first.of("slower").case if c.startswith(cmp.case_label(key) + " ")]
    assert label.endswith(" params=488")  # the program's size is part of its identity
    again = cmp.remeasure(first, rounds=3)
    (row,) = again.cases[again.cases.case == label].to_dict("records")
    assert again.remeasured == list(first.of("slower").case)
    assert row["n_new"] == 3 * cmp.MIN_SAMPLES and row["noise"] == row["noise"]  # rounds: a spread
    assert row["median_new_s"] != first.cases.set_index("case").loc[label, "median_new_s"]
    assert "REMEASURED:" in cmp.render(again)


def test_a_case_paired_cannot_re_time_keeps_the_runs_verdict(smoke_run, tmp_path, monkeypatch):
    """A case one checkout cannot build is not re-timed: it keeps what the two runs said (a
    slower case still fails the gate), not an "unchanged" no data decided."""
    import bench.paired

    new = tmp_path / "new"
    shutil.copytree(smoke_run, new)
    key = slow_down(new, "manual-bwd] train batch=8 seq_len=8", 3.0)
    first = cmp.compare(cmp.open_run(smoke_run), cmp.open_run(new), resamples=200)
    monkeypatch.setattr(cmp, "_check_code", lambda run, here, what: None)
    monkeypatch.setattr(bench.paired, "time_paired", lambda *a, **k: ({}, {key: "LookupError"}))
    again = cmp.paired(first, tmp_path)
    assert list(again.of("slower").case) == list(first.of("slower").case) != []
    assert again.exit_code == 1  # (paired: a slower case fails whatever the machine did)


def test_remeasure_refuses_a_run_of_other_code(smoke_run, tmp_path, capsys):
    new = tmp_path / "new"
    shutil.copytree(smoke_run, new)
    slow_down(new, "manual-bwd] train batch=8 seq_len=8", 3.0)
    env = json.loads((new / "env.json").read_text())
    (new / "env.json").write_text(json.dumps({**env, "git_sha": "f" * 40}))
    assert run_compare(smoke_run, new, "--remeasure") == 2
    err = capsys.readouterr().err
    assert "the current checkout, which is not new's code (run: git ffffffffff" in err


# --- what makes a case a different program -----------------------------------------------------

TRAINED = dict(suite="trained", model="mdrnn-trained", variant="diagonal", mode="sample",
               batch=16, depth=2, height=8, width=8)  # fmt: skip


def test_two_sizes_of_one_model_are_two_cases_never_one_that_got_slower(tmp_path, capsys):
    """The profile sizes the trained MDRNN (469 parameters at smoke, 26,145 at cpu): the same
    identity, a different program; a run that did not count the parameters still matches."""
    small = write_run(tmp_path / "smoke", [(case(**TRAINED, n_params=469), ("ok", noisy(0.01)))])
    big = write_run(tmp_path / "cpu", [(case(**TRAINED, n_params=26145), ("ok", noisy(0.079)))])
    uncounted = write_run(tmp_path / "old", [(case(**TRAINED), ("ok", noisy(0.01, seed=1)))])
    with pytest.raises(cmp.CompareError, match="no case in common"):
        cmp.compare(cmp.open_run(small), cmp.open_run(big))
    result = cmp.compare(cmp.open_run(uncounted), cmp.open_run(small), resamples=200)
    (row,) = result.cases.to_dict("records")
    assert row["outcome"] == "unchanged" and row["case"].endswith("width=8 params=469")
    other = (case(16), ("ok", noisy(0.01)))
    both = write_run(
        tmp_path / "both", [(case(**TRAINED, n_params=469), ("ok", noisy(0.01))), other]
    )
    bigger = (case(**TRAINED, n_params=26145), ("ok", noisy(0.079)))
    resized = write_run(tmp_path / "resized", [bigger, other])
    assert run_compare(both, resized) == 1
    out = capsys.readouterr().out
    assert "vanished (1):\n  trained/mdrnn-trained[diagonal] sample" in out and "params=469" in out
    assert "appeared (1):" in out and "params=26,145" in out and "slower (" not in out
    assert "(median over 1 timed case)" in out  # not "1 cases"


# --- A/A and planted slowdowns through the suite's own compare ----------------------------------


def synthetic_run(path, rng, *, drift, case_noise, factors=None, n_cases=30, n=20):
    """A run (in memory) of ``n_cases`` cases of 0.1-10 ms: the whole run ``drift`` times
    slower (the machine), each case moved by its own log-normal ``case_noise`` (what ran beside
    it), its ``n`` samples scattered by 3%; ``factors`` maps a case's index to a change of the
    code (a planted slowdown)."""
    rows, samples = [], {}
    for i, base in enumerate(np.geomspace(1e-4, 1e-2, n_cases)):
        identity = case(seq_len=i + 1)
        t = base * drift * (factors or {}).get(i, 1.0) * np.exp(case_noise * rng.standard_normal())
        times = t * np.exp(0.03 * rng.standard_normal(n))
        samples[cmp.case_key(identity)] = times
        rows.append({**identity, "status": "ok", "repeats": n,
                     "time_median_s": float(np.median(times))})  # fmt: skip
    return cmp.Run(path, "run folder", cmp.pd.DataFrame(rows), samples, {"host_cpu_count": 2})


def aa_and_planted(tmp_path, case_noise, pairs=10, seed=0):
    """Exit statuses of ``pairs`` A/A comparisons and of ``pairs`` with case 7 planted 1.5×
    slower, each pair's runs moved 0.85-1.16× as a whole (consecutive runs of one commit on an
    idle 2-core CPU, #35); and whether the planted case was flagged slower."""
    rng = np.random.default_rng(seed)
    aa, planted, flagged = [], [], []
    for _ in range(pairs):
        old = synthetic_run(tmp_path / "a", rng, drift=1.0, case_noise=case_noise)
        drift = float(np.exp(rng.uniform(np.log(0.85), np.log(1.16))))
        same = synthetic_run(tmp_path / "b", rng, drift=drift, case_noise=case_noise)
        aa.append(cmp.compare(old, same, resamples=200).exit_code)
        slow = synthetic_run(tmp_path / "c", rng, drift=drift, case_noise=case_noise,
                             factors={7: 1.5})  # fmt: skip
        result = cmp.compare(old, slow, resamples=200)
        planted.append(result.exit_code)
        flagged.append(result.of("slower").seq_len.tolist() == [8])
    return aa, planted, flagged


def test_unchanged_code_passes_and_a_planted_1_5x_slowdown_is_flagged(tmp_path):
    """A rule must be able to say no: fed A/A runs whose whole run moved by up to 16% and whose
    cases moved 5% each, it passes; fed the same with one case 1.5× slower, it flags that case
    and only it."""
    aa, planted, flagged = aa_and_planted(tmp_path, case_noise=0.05)
    assert aa.count(0) >= 9, aa
    assert planted.count(1) >= 9 and sum(flagged) >= 9, (planted, flagged)


def test_where_cases_scatter_too_much_to_see_1_5x_the_comparison_says_how_much_it_can_see(
    tmp_path, capsys
):
    """Cases that move 30% each between runs (a 2-core CPU at load 4-6 moved them 12-50%):
    unchanged code still passes, and the rule line says the smallest change it could flag,
    which is above the 1.5× it then misses."""
    aa, _, flagged = aa_and_planted(tmp_path, case_noise=0.3, pairs=5)
    assert aa.count(0) >= 4, aa
    rng = np.random.default_rng(1)
    old = synthetic_run(tmp_path / "a", rng, drift=1.0, case_noise=0.3)
    new = synthetic_run(tmp_path / "b", rng, drift=1.0, case_noise=0.3, factors={7: 1.5})
    text = cmp.render(cmp.compare(old, new, resamples=200))
    beyond = float(text.split("so beyond ×")[1].split(")")[0])
    assert beyond > 1.5 and "no regression" in text


def test_code_that_slows_the_whole_run_is_a_regression_the_case_scatter_cannot_hide(tmp_path):
    rng = np.random.default_rng(2)
    old = synthetic_run(tmp_path / "a", rng, drift=1.0, case_noise=0.05)
    new = synthetic_run(tmp_path / "b", rng, drift=1.6, case_noise=0.05)
    result = cmp.compare(old, new, resamples=200)
    assert result.of("slower").empty and result.drifted and result.exit_code == 1
    assert "REGRESSION: the whole run slower (typical case ×1.6" in cmp.render(result)
    busy = dataclasses.replace(new, context={"host_cpu_count": 2, "load_avg_start": [5.0]})
    assert cmp.compare(old, busy, resamples=200).exit_code == cmp.EXIT_MOVED


def test_runs_of_two_machines_are_not_a_regression_nor_a_re_run_on_a_quiet_one(tmp_path, capsys):
    old = same_code(tmp_path / "old", env={"host_cpu": "Intel(R) Xeon(R) Processor"})
    new = same_code(tmp_path / "new", seed=100, slower={16: 1.5}, env={"host_cpu": "AMD EPYC"})
    assert run_compare(old, new) == cmp.EXIT_MOVED
    out = capsys.readouterr().out
    assert "OTHER MACHINE: 1 case(s) slower between runs on two machines (the host CPU" in out
    assert "(Intel(R) Xeon(R) Processor → AMD EPYC)" in out and "compare two runs of one" in out
    assert "REGRESSION" not in out and "quiet machine" not in out.split("OTHER MACHINE")[1]
