"""Compare two runs case by case: what broke, vanished or appeared, and what got slower.

A run is a run folder (``measurements.csv``, ``samples.csv``, ``env.json``) or a
pytest-benchmark save written with ``--benchmark-save-data`` (``make bench-pytest``), whose
entries carry the case identity in ``extra_info`` and their raw times in ``stats.data``.
Cases are matched by the one case identity, :func:`bench.workloads.case_key`, and the
parameter count of the program timed (:func:`program_key`): a profile sizes some models by its
own config (the trained MDRNN has 469 parameters at smoke, 26,145 at cpu, at the same sizes),
and two programs of different size are different cases (one vanished, one appeared), never one
case that got slower. Each case gets one outcome:

- ``broke``: ``ok`` in the old run, any other status in the new one;
- ``vanished`` / ``appeared``: in one run only;
- ``slower`` / ``faster``: ``ok`` in both, and the change is significant *and* beyond the
  threshold (below);
- ``unchanged``: ``ok`` in both, no significant change beyond the threshold;
- ``fixed`` (not ok → ok), ``failing`` (not ok in both): reported, never a regression;
- ``calibration``: the case a ``--normalise``'d comparison divides by (its ratio is 1).

**The test.** For a case with raw samples ``a`` (old) and ``b`` (new), the ratio of medians
``r = median(b) / median(a)`` is estimated with a 95% percentile bootstrap interval
``[lo, hi]``: :data:`RESAMPLES` resamples of each run's samples with replacement, from a
generator seeded by :data:`SEED` and the case's identity (the same inputs give the same
answer). ``slower`` iff ``lo > 1 + threshold``: the new run is slower by more than the
threshold with 97.5% confidence, so a difference the samples cannot resolve, or one within
the threshold, never fails. ``faster`` iff ``hi < 1 / (1 + threshold)``. With fewer than
:data:`MIN_SAMPLES` samples on either side a bootstrap says little, and the interval is the
range of all ratios instead, ``[min(b) / max(a), max(b) / min(a)]``.

**The run's own noise.** A run timed in interleaved rounds (``samples.csv``'s ``round``,
``measurements.csv``'s ``round_spread``: the IQR of a case's per-round medians over their
median) measured how much a case moves between rounds, which the back-to-back samples do not
see. Where the runs carry it, ``slower`` also needs ``r - 1 > NOISE_K ×
sqrt(spread_old² + spread_new²)``: the growth beyond :data:`NOISE_K` times the combined
between-round spread (``faster`` likewise; a run without rounds adds no term, so where only
one run has them, its spread alone counts). Two runs without rounds keep the rule above.

**Against the typical case.** Two runs of the same code differ as a whole (a machine busier
in one run: the typical case moved 0.85-1.16x between consecutive runs on an idle 2-core CPU,
0.79-1.4x at load 4-6) and case by case (what ran beside each case: 12-50% robust SD between
two such runs at load 4-6). With at least :data:`MIN_SCATTER_CASES` timed cases, each case is
judged against the typical case (the median ratio) and against the cases' own scatter around
it: ``slower`` also needs log(ratio / typical) > :data:`SCATTER_K` × the robust SD of
log(ratio / typical) over the timed cases (and the interval and the noise term above are taken
over the typical ratio too). The smallest change a comparison can flag is therefore its own:
``exp(SCATTER_K × scatter)``, printed in its rule line; a 1.5× slowdown of one case is seen
where cases scatter by less than about 7% (``tests/bench/test_compare.py`` feeds the rule A/A
runs and planted slowdowns). The whole run moving is judged apart: beyond :data:`DRIFT_BAND`
it is a problem of its own (below), which a case judged against the typical one cannot show.

**Re-measuring.** :func:`remeasure` (``compare --remeasure``) times the cases flagged slower
again, in the current checkout (which must be the new run's commit), :data:`REMEASURE_ROUNDS`
interleaved rounds of every flagged case in turn (``bench.timing.compile_ahead`` and
``time_calls``, the runner's protocol), and decides on those samples instead of the new run's:
a case that was slow only while the machine was busy comes back unchanged, and the rounds
give the case's own between-round spread.

**Pairing.** On a shared machine two runs of the same code differ case by case by what ran
beside each case: on the 2-core CPU at load 2-7 single cases moved 3-11× between two smoke runs
of one commit, a robust SD of 0.4-0.5 in log(ratio / typical) (#35), which puts the smallest
change the rule above can flag at ×5-7: neither it nor ``--remeasure`` (which re-times only
the cases flagged, and only the new side) can see a 1.5× slowdown of one case there.
:func:`paired` (``compare --paired OLD_CHECKOUT``) times every case both runs timed again,
the old run's code (a checkout of its commit) and the new run's (this checkout) in visits
that alternate back to back (:mod:`bench.paired`), and decides each case on those rounds
alone: a round's ratio is its new visit's time over its old visit's, taken moments apart,
so load that comes and goes weighs on both. A visit's time is its quickest call: on a shared
machine other work only adds time to a call, and at load 5-6 the medians of two visits moments
apart still differed up to 8× while their quickest calls agreed within 5% in most rounds
(#35). ``r`` is the median of the rounds' ratios and
``[lo, hi]`` its :data:`CONFIDENCE` percentile bootstrap interval over the rounds (seeded
by the case). ``slower`` iff ``lo > 1 + threshold``, ``faster`` iff
``hi < 1 / (1 + threshold)``; no typical case, scatter or machine test: the machine is the
same for both sides of a round, so a slower case is a regression (exit 1) whatever the load
(a case that broke, vanished or appeared still comes from the runs' own rows).

**A machine that moved.** A case's time also moves with what else ran on the machine.
The comparison sees that the whole machine moved when the calibration (``env.json``'s, or the
matmul case) took a time outside ``[1/(1 + threshold), 1 + threshold]`` of the old run's, when
the typical (median) case ratio lies outside that band (over at least
:data:`MIN_TYPICAL_CASES` timed cases), or when either run's load average
exceeded its cores. The same holds for a whole run slower beyond :data:`DRIFT_BAND`: on a
machine that did not move (calibration and load) it is a regression (exit 1). Then slower
cases are not called a regression: the outcome is
"machine moved: re-run on a quiet machine" and the exit status :data:`EXIT_MOVED` (3), which
still fails a gate but says why. A case that broke, vanished or appeared is a regression
(exit 1) whatever the machine did.

**Normalising.** The samples of one case are taken back to back, so the interval above sees
the noise within a case, not a machine that is busier in one run than in the other. With
``normalise=True`` each run's times are divided by that run's own calibration, measured on
the same machine in the same run: the device constant ``matmul_flops_per_s`` from
``env.json["calibration"]`` where both runs have it (:mod:`bench.calibration`, measured as
the run starts; one value, taken as exact), else the samples of the convnet suite's
``matmul`` / ``peak`` case (a large float32 matmul). The ratio becomes
``(median(b) / median(b_cal)) / (median(a) / median(a_cal))`` and the bootstrap resamples the
calibration's samples too. Either is measured at one moment of the run: load that comes and
goes during a run moves single cases past any calibration, and the header warns when a
run's load average exceeded its cores.

:func:`compare` returns a :class:`Comparison`; :func:`render` prints it with a header that
says what differs between the two environments (host, device, versions, git, load).
"""

from __future__ import annotations

import dataclasses
import json
import math
import pathlib
import zlib

import numpy as np
import pandas as pd

from bench import analysis, environment, store
from bench.workloads import IDENTITY, SIZE_FIELDS, case_key, suites

THRESHOLD = 0.10
"""Default: a case is slower when its median grew by more than this fraction (significantly)."""
CONFIDENCE = 0.95
"""Two-sided level of the bootstrap interval of the ratio of medians."""
RESAMPLES = 2000
MIN_SAMPLES = 5
"""Fewer samples than this on either side: the interval is the range of all ratios."""
SEED = 0
CALIBRATION_CONSTANT = "matmul_flops_per_s"
"""The constant of ``env.json["calibration"]`` (measured as each run starts), preferred."""
PROBLEMS = ("broke", "vanished", "appeared", "slower")
"""Outcomes that make a comparison fail (exit status 1), unless allowed."""
OUTCOMES = (*PROBLEMS, "faster", "fixed", "failing", "unchanged", "calibration")
NOISE_K = 3.0
"""With interleaved rounds in both runs, a change must exceed this many combined
between-round spreads (see the module docstring)."""
MIN_TYPICAL_CASES = 4
"""The typical ratio says the whole machine moved only over at least this many timed cases (over
fewer, one changed case would be the whole run)."""
SCATTER_K = 4.0
"""With at least :data:`MIN_SCATTER_CASES` timed cases, a case is slower (faster) only when its
ratio over the typical case's lies beyond this many times the cases' scatter: the robust
standard deviation (1.4826 × the median absolute deviation) of log(ratio / typical) over the
timed cases, how far a case of these two runs moves from the rest when nothing changed it. At
4, a case in a normal scatter is flagged once in about 30,000; the tails of real runs are
heavier (``tests/bench/test_compare.py``: A/A and planted slowdowns through this code)."""
MIN_SCATTER_CASES = 8
"""Fewer timed cases than this give no scatter: each case is judged alone (the rule above)."""
DRIFT_BAND = 0.25
"""A whole run that moved (the typical case's ratio) by less than this is not a verdict: the
same code moved 0.85-1.16x between consecutive smoke runs on an idle 2-core CPU (#35). Beyond
it, every case moved: "machine moved" (exit 3) where the calibration or the load says the
machine moved, else a regression of the whole run (exit 1)."""
REMEASURE_ROUNDS = 5
"""Interleaved rounds of ``--remeasure``."""
EXIT_REGRESSION = 1
EXIT_MOVED = 3
"""Exit status of a comparison whose only problems are slower cases on a machine that moved."""

# Run context compared in the header: (label, key in the run's context).
CONTEXT = (
    ("host", "host"),
    ("host CPU", "host_cpu"),
    ("CPU cores", "host_cpu_count"),
    ("backend", "backend"),
    ("device", "device_kind"),
    ("devices", "device_count"),
    ("python", "python"),
    ("jax", "jax"),
    ("jaxlib", "jaxlib"),
    ("flax", "flax"),
    ("optax", "optax"),
    ("numpy", "numpy"),
    ("git", "git_sha"),
    ("git dirty", "git_dirty"),
    ("profile", "profile"),
    ("repeats the cases ran", "repeats_ran"),
    ("XLA_FLAGS", "XLA_FLAGS"),
    ("JAX_* env", "jax_env"),
    ("load avg at start", "load_avg_start"),
    ("load avg at finish", "load_avg_finish"),
)


MACHINE = (("host CPU", "host_cpu"), ("CPU cores", "host_cpu_count"), ("device", "device_kind"))
"""Context that tells two machines apart: runs that differ in it are not compared for speed."""


class CompareError(ValueError):
    """Two runs that cannot be compared (the CLI exits 2)."""


@dataclasses.dataclass
class Run:
    """One side of a comparison: its rows (``measurements.csv`` shape), raw samples per case
    identity, run context, and where it came from."""

    path: pathlib.Path
    kind: str
    rows: pd.DataFrame
    samples: dict[tuple, np.ndarray]
    context: dict
    rounds: dict[tuple, np.ndarray] = dataclasses.field(default_factory=dict)
    """Per case, the interleaved round of each sample (cases timed in rounds only)."""

    @property
    def label(self) -> str:
        parts = [self.kind, self.context.get("started_utc")]
        sha = self.context.get("git_sha")
        parts.append(f"git {str(sha)[:7]}" if sha else None)
        return f"{self.path} ({', '.join(str(p) for p in parts if p)})"


def open_run(path: str | pathlib.Path) -> Run:
    """A run folder or a pytest-benchmark JSON save, with its raw samples."""
    path = pathlib.Path(path)
    try:
        if path.is_dir():
            return _open_run_folder(path)
        if path.suffix == ".json":
            return _open_pytest_benchmark(path)
    except store.SchemaError as e:
        raise CompareError(str(e)) from None
    raise CompareError(f"{path}: not a run folder or a pytest-benchmark JSON save")


def _samples_by_case(samples: pd.DataFrame) -> dict[tuple, np.ndarray]:
    out: dict[tuple, list] = {}
    for rec in samples.to_dict("records"):
        out.setdefault(case_key(rec), []).append(float(rec["time_s"]))
    return {k: np.asarray(v) for k, v in out.items()}


def _rounds_by_case(samples: pd.DataFrame) -> dict[tuple, np.ndarray]:
    """Each case's samples' round numbers, for the cases whose every sample has one
    (``samples.csv``'s ``round`` column; absent in runs timed back to back)."""
    if "round" not in samples:
        return {}
    out: dict[tuple, list] = {}
    for rec in samples.to_dict("records"):
        value = rec["round"]
        out.setdefault(case_key(rec), []).append(None if pd.isna(value) else int(value))
    return {k: np.asarray(v) for k, v in out.items() if None not in v}


def _repeats_ran(rows: pd.DataFrame) -> str | None:
    """The repeats the ok cases actually ran: ``n`` or ``lo–hi``."""
    repeats = pd.to_numeric(rows.loc[rows.status == "ok", "repeats"]).dropna()
    if repeats.empty:
        return None
    lo, hi = int(repeats.min()), int(repeats.max())
    return str(lo) if lo == hi else f"{lo}–{hi}"


def _open_run_folder(path: pathlib.Path) -> Run:
    env = store.load_env(path)
    rows = store.load_measurements(path / "measurements.csv")
    store.check_rows_kept(path, rows)
    samples = store.run_samples(path)
    return Run(
        path=path,
        kind="run folder",
        rows=rows,
        samples={} if samples is None else _samples_by_case(samples),
        context={**env, "repeats_ran": _repeats_ran(rows)},
        rounds={} if samples is None else _rounds_by_case(samples),
    )


def _open_pytest_benchmark(path: pathlib.Path) -> Run:
    rows = analysis.load_pytest_benchmark(path)
    samples = analysis.load_pytest_benchmark_samples(path)
    data = json.loads(path.read_text())
    machine, commit = data.get("machine_info", {}), data.get("commit_info", {})
    cpu = machine.get("cpu", {})
    context = {
        "repeats_ran": _repeats_ran(rows),
        "started_utc": data.get("datetime"),
        "host": machine.get("node"),
        "host_cpu": cpu.get("brand_raw"),
        "host_cpu_count": cpu.get("count"),
        "python": machine.get("python_version"),
        "git_sha": commit.get("id"),
        "git_dirty": commit.get("dirty"),
        "profile": analysis.pytest_benchmark_context(data)["profile"],
        **machine.get("bench", {}),  # versions and device, see tests/conftest.py
        **{
            k: v
            for k, v in (data.get("benchmarks") or [{}])[0].get("extra_info", {}).items()
            if k.startswith("load_avg")
        },  # per session, in extra_info (not machine_info)
    }
    return Run(path, "pytest-benchmark", rows, _samples_by_case(samples), context)


# --- Calibration ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Reference:
    """A run's calibration: times that stand for the machine's speed in that run."""

    what: str
    samples: np.ndarray
    key: tuple | None = None  # the calibration case's identity, when it is a case

    @property
    def median_s(self) -> float:
        return float(np.median(self.samples))

    def show(self) -> str:
        """The reference in its own terms: a case's median time, or the calibrated rate."""
        if self.key is None:
            return f"{1 / self.median_s / 1e9:.3g} GFLOP/s"
        return f"{_ms(self.median_s)} ms"


def calibration_cases() -> list[dict[str, str]]:
    """The cases that stand for the device's speed in a run, with their suite: those the
    suites declare (``Suite.calibration_case``)."""
    return [
        {"suite": name, **suite.calibration_case}
        for name, suite in suites().items()
        if suite.calibration_case
    ]


def _is_calibration_case(rows: pd.DataFrame, cases: list[dict[str, str]]) -> pd.Series:
    wanted = {(c["suite"], c["model"], c["variant"]) for c in cases}
    found = [key in wanted for key in zip(rows.suite, rows.model, rows.variant, strict=True)]
    return pd.Series(found, index=rows.index, dtype=bool)


def calibrations(old: Run, new: Run) -> tuple[Reference, Reference]:
    """Each run's own calibration, the same kind for both (see the module docstring)."""
    constants = [
        (run.context.get("calibration") or {}).get(CALIBRATION_CONSTANT, {}).get("value")
        for run in (old, new)
    ]
    if all(isinstance(c, int | float) and c > 0 for c in constants):
        what = f"env.json calibration {CALIBRATION_CONSTANT}"
        return tuple(Reference(what, np.array([1.0 / c])) for c in constants)
    cases, keys = calibration_cases(), []
    for run in (old, new):
        rows = run.rows[_is_calibration_case(run.rows, cases) & (run.rows.status == "ok")]
        keys.append({case_key(r) for r in rows.to_dict("records")} & set(run.samples))
    common = sorted(keys[0] & keys[1], key=str)
    if not common:
        missing = [str(r.path) for r, k in zip((old, new), keys, strict=True) if not k]
        raise CompareError(
            "--normalise: no calibration in both runs (neither env.json "
            f"calibration.{CALIBRATION_CONSTANT} nor an ok "
            + " or ".join(f"{c['model']}/{c['variant']}" for c in cases)
            + " case with samples, e.g. `--suite "
            + (cases[0]["suite"] if cases else "<a suite with a calibration case>")
            + "`) in "
            + (", ".join(missing) or "both at the same sizes")
        )
    key = common[-1]  # the largest matmul both runs timed, when there are several
    what = f"case {case_label(key)}"
    return tuple(Reference(what, run.samples[key], key) for run in (old, new))


# --- The test ---------------------------------------------------------------------------------


def _resampled_medians(x: np.ndarray, rng: np.random.Generator, resamples: int) -> np.ndarray:
    if len(x) == 1:
        return np.full(resamples, float(x[0]))
    return np.median(x[rng.integers(0, len(x), size=(resamples, len(x)))], axis=1)


def ratio_interval(
    old: np.ndarray,
    new: np.ndarray,
    *,
    seed: int = SEED,
    resamples: int = RESAMPLES,
    old_ref: np.ndarray | None = None,
    new_ref: np.ndarray | None = None,
) -> tuple[float, float, float]:
    """``(ratio, lo, hi)``: the ratio of medians new/old (each divided by its run's reference
    when given) and its :data:`CONFIDENCE` interval (see the module docstring)."""
    one = np.ones(1)
    old_ref = one if old_ref is None else np.asarray(old_ref, float)
    new_ref = one if new_ref is None else np.asarray(new_ref, float)
    old, new = np.asarray(old, float), np.asarray(new, float)
    ratio = (np.median(new) / np.median(new_ref)) / (np.median(old) / np.median(old_ref))
    if min(len(old), len(new)) < MIN_SAMPLES:
        lo = (new.min() / new_ref.max()) / (old.max() / old_ref.min())
        hi = (new.max() / new_ref.min()) / (old.min() / old_ref.max())
        return float(ratio), float(lo), float(hi)
    rng = np.random.default_rng(seed)
    draws = (
        _resampled_medians(new, rng, resamples) / _resampled_medians(new_ref, rng, resamples)
    ) / (_resampled_medians(old, rng, resamples) / _resampled_medians(old_ref, rng, resamples))
    tail = (1 - CONFIDENCE) / 2
    lo, hi = np.quantile(draws, [tail, 1 - tail])
    return float(ratio), float(lo), float(hi)


def round_spread(run: Run, key: tuple) -> float | None:
    """The case's between-round spread in ``run``: the IQR of its per-round medians over their
    median (from the samples' rounds, else the row's ``round_spread``); None when the case
    was not timed in rounds."""
    rounds = run.rounds.get(key)
    if rounds is not None and len(np.unique(rounds)) >= 2:
        times = run.samples[key]
        medians = np.array([np.median(times[rounds == r]) for r in np.unique(rounds)])
        q1, q3 = np.percentile(medians, [25, 75])
        return float((q3 - q1) / np.median(medians))
    if "round_spread" in run.rows:
        for rec in run.rows.to_dict("records"):
            if case_key(rec) == key and not pd.isna(rec["round_spread"]):
                return float(rec["round_spread"])
    return None


def _case_seed(seed: int, key: tuple) -> int:
    return seed * 2**32 + zlib.crc32(repr(key).encode())


def program_key(record) -> tuple:
    """A case's identity (:func:`bench.workloads.case_key`) and the parameter count of its
    program (None where the run did not count it): what tells two programs apart."""
    params = record.get("n_params")
    known = params is not None and params is not pd.NA and params == params and params != ""
    return (*case_key(record), int(float(params)) if known else None)


def case_label(key: tuple) -> str:
    """``suite/model[variant] mode sizes``, with ``params=N`` for a :func:`program_key`."""
    rec = dict(zip(IDENTITY, key[: len(IDENTITY)], strict=True))
    sizes = " ".join(f"{f}={rec[f]}" for f in SIZE_FIELDS if rec[f] is not None)
    devices = f" devices={rec['n_devices']}" if rec["n_devices"] not in (None, 1) else ""
    params = key[len(IDENTITY)] if len(key) > len(IDENTITY) else None
    params = f" params={params:,}" if params is not None else ""
    return (
        f"{rec['suite']}/{rec['model']}[{rec['variant']}] {rec['mode']} {sizes}{devices}{params}"
    ).strip()


# --- Comparing --------------------------------------------------------------------------------


@dataclasses.dataclass
class Comparison:
    old: Run
    new: Run
    threshold: float
    cases: pd.DataFrame
    """One row per case in either run: ``case``, ``outcome``, ``status_old``, ``status_new``,
    ``median_old_s``, ``median_new_s``, ``n_old``, ``n_new``, ``ratio``, ``lo``, ``hi``."""
    references: tuple[Reference, Reference] | None = None
    allowed: tuple[str, ...] = ()
    remeasured: list[str] = dataclasses.field(default_factory=list)
    remeasure_rounds: int = 0
    """The cases whose new samples :func:`remeasure` took again (their labels)."""
    shift: float = 1.0
    """The typical case's ratio the cases were judged against (1: each judged alone)."""
    spread: float | None = None
    """The cases' scatter around it (:func:`scatter`; None: too few cases to have one)."""
    paired: dict | None = None
    """With :func:`paired`: ``rounds``, ``old_checkout`` and the cases neither side could
    build again (``errors``: label -> why)."""

    @property
    def drifted(self) -> bool:
        """The whole run slower beyond :data:`DRIFT_BAND` (judged where cases were judged
        against the typical one, which cannot see it)."""
        return self.spread is not None and self.shift > 1 + DRIFT_BAND

    def of(self, outcome: str) -> pd.DataFrame:
        return self.cases[self.cases.outcome == outcome]

    @property
    def itself(self) -> bool:
        """One run compared with itself (the same folder or file)."""
        return self.old.path.resolve() == self.new.path.resolve()

    @property
    def typical(self) -> float | None:
        """The median ratio over the timed cases (None when none was timed in both)."""
        timed = self.cases[self.cases.outcome.isin(["slower", "faster", "unchanged"])]
        return None if timed.empty else float(np.median(timed.ratio))

    def machine_moved(self) -> list[str]:
        """Why the whole machine moved between the runs (empty when it did not): the
        calibration's time beyond the threshold band, or a load average above the cores; the
        typical case's ratio beyond the band is added to those, never alone (a change that
        slows every case moves it too: that is a regression, not the machine)."""
        band = (1 / (1 + self.threshold), 1 + self.threshold)
        why = self.other_machine()
        if self.references is None:
            try:
                ro, rn = calibrations(self.old, self.new)
                moved = rn.median_s / ro.median_s
                if not band[0] <= moved <= band[1]:
                    why.append(f"the calibration took {moved:.3g}× the time")
            except CompareError:
                pass
        why += _busy(self.old) + _busy(self.new)
        typical = self.typical
        timed = self.cases.outcome.isin(["slower", "faster", "unchanged"]).sum()
        if why and timed >= MIN_TYPICAL_CASES and not band[0] <= typical <= band[1]:
            why.append(f"the typical case's ratio is {typical:.3g}")
        return why

    def other_machine(self) -> list[str]:
        """What says the two runs ran on different machines (host CPU, cores, device): no
        time of one says anything about the code against the other's."""
        return [
            f"the {label} differs ({_show(self.old.context.get(key))} → "
            f"{_show(self.new.context.get(key))})"
            for label, key in MACHINE
            if self.old.context.get(key) is not None
            and self.new.context.get(key) is not None
            and _show(self.old.context.get(key)) != _show(self.new.context.get(key))
        ]

    @property
    def problems(self) -> pd.DataFrame:
        failing = [o for o in PROBLEMS if o not in self.allowed]
        return self.cases[self.cases.outcome.isin(failing)]

    @property
    def exit_code(self) -> int:
        """0: no problem; 1 (:data:`EXIT_REGRESSION`): a case broke, vanished, appeared or got
        slower; 3 (:data:`EXIT_MOVED`): the only problems are slower cases, and the machine
        moved (:meth:`machine_moved`)."""
        problems = self.problems
        if problems.empty and not self.drifted:
            return 0
        if self.paired is not None:  # both sides timed together: the machine cancels
            return EXIT_REGRESSION
        if (problems.outcome == "slower").all() and self.machine_moved():
            return EXIT_MOVED
        return EXIT_REGRESSION


def _index(run: Run) -> dict[tuple, dict]:
    out, seen = {}, set()
    for rec in run.rows.to_dict("records"):
        if rec["status"] == "skipped":  # not measured (--budget-s): absent, not broken
            continue
        key = program_key(rec)
        if key[:-1] in seen:
            raise CompareError(f"{run.path}: case {case_label(key)} appears twice")
        seen.add(key[:-1])
        out[key] = rec
    return out


def compare(
    old: Run,
    new: Run,
    *,
    threshold: float = THRESHOLD,
    normalise: bool = False,
    seed: int = SEED,
    resamples: int = RESAMPLES,
    allow: tuple[str, ...] = (),
) -> Comparison:
    """Every case of either run with its outcome (see the module docstring)."""
    if not (isinstance(threshold, int | float) and math.isfinite(threshold) and threshold >= 0):
        raise CompareError(f"threshold must be a finite number ≥ 0, got {threshold!r}")
    unknown = set(allow) - set(PROBLEMS)
    if unknown:
        raise CompareError(f"cannot allow {sorted(unknown)}; allowed: {', '.join(PROBLEMS)}")
    rows_old, rows_new = _index(old), _index(new)
    _match_uncounted(rows_old, rows_new)
    if not set(rows_old) & set(rows_new):
        raise CompareError(f"{old.path} and {new.path} have no case in common")
    refs = calibrations(old, new) if normalise else None
    out = []
    for key in sorted(set(rows_old) | set(rows_new), key=lambda k: case_label(k)):
        key, params = key[: len(IDENTITY)], key
        a, b = rows_old.get(params), rows_new.get(params)
        rec = {
            "case": case_label(params),
            **dict(zip(IDENTITY, key, strict=True)),
            "n_params": params[-1],
            "status_old": None if a is None else a["status"],
            "status_new": None if b is None else b["status"],
            "median_old_s": _number(a, "time_median_s"),
            "median_new_s": _number(b, "time_median_s"),
            "n_old": len(old.samples.get(key, ())),
            "n_new": len(new.samples.get(key, ())),
            "ratio": math.nan,
            "lo": math.nan,
            "hi": math.nan,
            "noise": math.nan,
        }
        rec["outcome"] = _outcome(key, a, b, old, new, refs, threshold, seed, resamples, rec)
        out.append(rec)
    cases = pd.DataFrame(out)
    timed = cases.outcome == TIMED
    shift, spread = scatter(cases.ratio[timed])
    cases["over_typical"] = cases.ratio / shift
    cases.loc[timed, "outcome"] = [
        judge_timed(rec, threshold, shift, spread) for rec in cases[timed].to_dict("records")
    ]
    return Comparison(
        old, new, float(threshold), cases, refs, tuple(allow), shift=shift, spread=spread
    )


def _match_uncounted(rows_old: dict, rows_new: dict) -> None:
    """A case one run counted the parameters of and the other did not (an older run, a save
    without the count) is matched by its identity alone: only two counts that differ make two
    programs."""
    for rows, other in ((rows_old, rows_new), (rows_new, rows_old)):
        counted = {k[:-1]: k for k in other if k[-1] is not None}
        for key in [k for k in rows if k[-1] is None and k[:-1] in counted]:
            rows[counted[key[:-1]]] = rows.pop(key)


def _number(rec: dict | None, column: str) -> float:
    value = None if rec is None else rec[column]
    return math.nan if value is None or pd.isna(value) else float(value)


def _outcome(key, a, b, old, new, refs, threshold, seed, resamples, rec) -> str:
    if a is None:
        return "appeared"
    if b is None:
        return "vanished"
    ok_a, ok_b = a["status"] == "ok", b["status"] == "ok"
    if ok_a and not ok_b:
        return "broke"
    if not ok_a:
        return "fixed" if ok_b else "failing"
    if refs is not None and refs[0].key == key:
        rec.update(ratio=1.0, lo=1.0, hi=1.0)
        return "calibration"
    sa, sb = old.samples.get(key), new.samples.get(key)
    if sa is None or sb is None:
        missing = old.path if sa is None else new.path
        raise CompareError(f"{missing}: case {case_label(key)} is ok but has no raw samples")
    ratio, lo, hi = ratio_interval(
        sa,
        sb,
        seed=_case_seed(seed, key),
        resamples=resamples,
        old_ref=None if refs is None else refs[0].samples,
        new_ref=None if refs is None else refs[1].samples,
    )
    rec.update(ratio=ratio, lo=lo, hi=hi)
    spreads = [x for x in (round_spread(old, key), round_spread(new, key)) if x is not None]
    if spreads:
        rec["noise"] = NOISE_K * math.hypot(*spreads)
    return TIMED


TIMED = "timed"
"""A case ok in both runs, its ratio measured: :func:`judge_timed` gives its outcome."""


def scatter(ratios) -> tuple[float, float | None]:
    """``(typical, scatter)`` of the timed cases' ratios: the median ratio, and the robust
    standard deviation of log(ratio / typical) (:data:`SCATTER_K`); ``(1, None)`` under
    :data:`MIN_SCATTER_CASES` cases, which are each judged alone."""
    logs = np.log(np.asarray([r for r in ratios if r > 0], float))
    if len(logs) < MIN_SCATTER_CASES:
        return 1.0, None
    centre = float(np.median(logs))
    return float(np.exp(centre)), float(1.4826 * np.median(np.abs(logs - centre)))


def judge_timed(rec: dict, threshold: float, shift: float = 1.0, spread: float | None = None):
    """A timed case's outcome (the module docstring): its ratio over the typical case's
    (``shift``) beyond the threshold significantly, beyond its rounds' noise and beyond
    :data:`SCATTER_K` × the cases' ``spread`` (where there is one)."""
    ratio, lo, hi = (rec[k] / shift for k in ("ratio", "lo", "hi"))
    floor = 0.0 if pd.isna(rec["noise"]) else rec["noise"]
    bar = 0.0 if spread is None else SCATTER_K * spread
    if lo > 1 + threshold and ratio - 1 > floor and math.log(ratio) > bar:
        return "slower"
    if hi < 1 / (1 + threshold) and 1 / ratio - 1 > floor and -math.log(ratio) > bar:
        return "faster"
    return "unchanged"


# --- Re-measuring -----------------------------------------------------------------------------


def remeasure(c: Comparison, *, rounds: int = REMEASURE_ROUNDS, **options) -> Comparison:
    """``c`` decided again after timing its slower cases anew in the current checkout, in
    ``rounds`` interleaved rounds (see the module docstring); ``options`` go to
    :func:`compare` (threshold, normalise, ...) as ``c`` was made."""
    from bench.timing import prepare, time_rounds
    from bench.workloads import BuildContext, suites

    flagged = [case_key(r) for r in c.of("slower").to_dict("records")]
    if not flagged:
        return c
    new = c.new
    if new.kind != "run folder":
        raise CompareError("--remeasure re-times a run folder's cases, not a pytest-benchmark save")
    _check_code(new, environment.git_info(), "--remeasure times the current checkout, which")
    registered = suites()
    profile = new.context.get("profile")
    ready = []
    context = BuildContext(run_dir=new.path)  # where a suite's prepared files (weights) are
    for key in flagged:
        suite = registered.get(key[0])
        cases = [] if suite is None else suite.cases(profile)
        match = [case for case in cases if case.key(1) == key]
        if not match:
            raise CompareError(f"--remeasure: case {case_label(key)} is not a registered case")
        w = match[0].workload(context)
        ready.append(prepare(w.fn, w.args))  # the runner's protocol, and its rounds
    timings = time_rounds(ready, rounds=rounds)
    for timing in timings:
        if timing.error is not None:
            raise timing.error
    samples = {key: t.samples_s for key, t in zip(flagged, timings, strict=True)}
    round_of = {key: t.rounds for key, t in zip(flagged, timings, strict=True)}
    rows = new.rows.copy()
    for i, rec in enumerate(rows.to_dict("records")):
        if case_key(rec) in samples:
            rows.loc[rows.index[i], "time_median_s"] = float(np.median(samples[case_key(rec)]))
    again = dataclasses.replace(
        new,
        rows=rows,
        samples={**new.samples, **{k: np.asarray(v) for k, v in samples.items()}},
        rounds={**new.rounds, **{k: np.asarray(v) for k, v in round_of.items()}},
    )
    result = compare(c.old, again, allow=c.allowed, **options)
    result.remeasured = list(c.of("slower").case)
    result.remeasure_rounds = rounds
    return result


def paired(
    c: Comparison,
    old_checkout: str | pathlib.Path,
    *,
    rounds: int | None = None,
    seed: int = SEED,
    resamples: int = RESAMPLES,
) -> Comparison:
    """``c`` decided again on paired rounds (the module docstring's "Pairing"): every case
    timed in both runs, its old program from ``old_checkout`` and its new one from this
    checkout, in alternating visits (:func:`bench.paired.time_paired`)."""
    from bench.paired import ROUNDS, PairedError, time_paired

    rounds = ROUNDS if rounds is None else rounds
    old_checkout = pathlib.Path(old_checkout)
    if not old_checkout.is_dir():
        raise CompareError(f"--paired {old_checkout}: not a folder (a checkout of the old run)")
    for run, root, what in ((c.old, old_checkout, "--paired"), (c.new, None, "this checkout")):
        if run.kind != "run folder":
            raise CompareError("--paired re-times run folders' cases, not pytest-benchmark saves")
        _check_code(run, environment.git_info(root), what)
    profiles = {run.context.get("profile") for run in (c.old, c.new)}
    if len(profiles) != 1:
        raise CompareError(f"--paired: the runs' profiles differ ({' and '.join(profiles)})")
    timed = c.cases[c.cases.outcome.isin(["slower", "faster", "unchanged"])]
    keys = [case_key(r) for r in timed.to_dict("records")]
    profile = profiles.pop()
    try:
        rounds_of, errors = time_paired(
            (old_checkout, c.old.path, profile),
            (pathlib.Path(__file__).resolve().parent.parent, c.new.path, profile),
            keys,
            rounds=rounds,
            seed=seed,
        )
    except PairedError as e:
        raise CompareError(f"--paired: {e}") from None
    cases = c.cases.copy()
    for i, key in zip(timed.index, keys, strict=True):
        if key not in rounds_of:  # not re-timed (said under the table): the runs' verdict
            continue
        old_rounds, new_rounds = rounds_of[key]
        ratio, lo, hi = paired_interval(
            old_rounds, new_rounds, seed=_case_seed(seed, key), resamples=resamples
        )
        cases.loc[i, ["ratio", "lo", "hi", "over_typical"]] = [ratio, lo, hi, ratio]
        cases.loc[i, ["n_old", "n_new"]] = [len(old_rounds), len(new_rounds)]
        cases.loc[i, ["median_old_s", "median_new_s"]] = [
            float(np.median([np.min(v) for v in old_rounds])),
            float(np.median([np.min(v) for v in new_rounds])),
        ]  # the rounds' typical visit: its quickest call
        cases.loc[i, "noise"] = math.nan
        cases.loc[i, "outcome"] = judge_paired(ratio, lo, hi, c.threshold)
    info = dict(
        rounds=rounds,
        old_checkout=str(old_checkout),
        errors={case_label(k): why for k, why in errors.items()},
    )
    return dataclasses.replace(c, cases=cases, shift=1.0, spread=None, paired=info)


def _check_code(run: Run, here: dict, what: str) -> None:
    """Refuse to re-time ``run``'s cases from a checkout (``here``: its
    :func:`bench.environment.git_info`) that is not the code the run measured."""
    ran = {k: run.context.get(k) for k in ("git_sha", "git_diff_sha256")}
    if ran != {k: here.get(k) for k in ran}:
        raise CompareError(
            f"{what} is not {run.path.name}'s code (run: git {str(ran['git_sha'])[:10]}, "
            f"checkout: git {str(here['git_sha'])[:10]}"
            + (", uncommitted changes differ" if ran["git_sha"] == here["git_sha"] else "")
            + ")"
        )


def paired_interval(
    old_rounds, new_rounds, *, seed: int = SEED, resamples: int = RESAMPLES
) -> tuple[float, float, float]:
    """``(ratio, lo, hi)``: the median over rounds of (quickest new call / quickest old call
    of the round's two visits), and its :data:`CONFIDENCE` percentile bootstrap interval,
    resampling the rounds."""
    per = np.array([np.min(b) / np.min(a) for a, b in zip(old_rounds, new_rounds, strict=True)])
    if len(per) == 0:
        raise CompareError("paired rounds: none")
    rng = np.random.default_rng(seed)
    draws = np.median(per[rng.integers(0, len(per), size=(resamples, len(per)))], axis=1)
    tail = (1 - CONFIDENCE) / 2
    lo, hi = np.quantile(draws, [tail, 1 - tail])
    return float(np.median(per)), float(lo), float(hi)


def judge_paired(ratio: float, lo: float, hi: float, threshold: float) -> str:
    """A paired case's outcome: its interval wholly beyond the threshold band."""
    if lo > 1 + threshold:
        return "slower"
    if hi < 1 / (1 + threshold):
        return "faster"
    return "unchanged"


# --- Rendering --------------------------------------------------------------------------------


def _show(value) -> str:
    if isinstance(value, list | tuple):
        return "/".join(f"{v:.2f}" if isinstance(v, float) else str(v) for v in value)
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in sorted(value.items())) or "(none)"
    if isinstance(value, str) and len(value) == 40 and all(c in "0123456789abcdef" for c in value):
        return value[:10]
    return "(none)" if value in (None, "") else str(value)


def _typical(c: Comparison) -> list[str]:
    """The median ratio over the timed cases, and a warning when it lies beyond the
    threshold: then the whole run moved, which one case's interval cannot tell apart."""
    timed = c.cases[c.cases.outcome.isin(["slower", "faster", "unchanged"])]
    if timed.empty:
        return []
    typical = c.typical
    cases = "1 timed case" if len(timed) == 1 else f"{len(timed)} timed cases"
    line = f"typical case: ratio {typical:.3g} (median over {cases})"
    if 1 / (1 + c.threshold) <= typical <= 1 + c.threshold:
        return [line]
    why = (
        "the calibration, measured at one moment, did not see the load the cases saw; "
        "read the raw comparison too"
        if c.references is not None
        else "a machine busier or quieter in one run, or a change that touches every case "
        "(--normalise divides by each run's calibration)"
    )
    return [f"WARNING: {line}: the whole run moved: {why}"]


def _busy(run: Run) -> list[str]:
    """Why a run's machine was busy: a 1-minute load average above its core count."""
    cores = run.context.get("host_cpu_count")
    loads = [run.context.get(k) for k in ("load_avg_start", "load_avg_finish")]
    worst = max((x[0] for x in loads if x), default=None)
    if cores and worst is not None and worst > cores:
        return [f"{run.path.name} ran at load average {worst:.3g} on {cores} cores"]
    return []


def environment_diff(old: Run, new: Run) -> tuple[list[str], list[str]]:
    """``(differs, same)``: one ``label: old → new`` line per context field that differs,
    and the labels of those that are the same (fields neither run records are left out)."""
    differs, same = [], []
    for label, key in CONTEXT:
        a, b = old.context.get(key), new.context.get(key)
        if a is None and b is None:
            continue
        if key.startswith("load_avg") or _show(a) != _show(b):
            differs.append(f"{label}: {_show(a)} → {_show(b)}")
        else:
            same.append(f"{label} {_show(a)}")
    return differs, same


def _ms(v) -> str:
    return "" if v is None or v != v else f"{v * 1e3:.4g}"


def _status(value) -> str:
    return "—" if value is None or pd.isna(value) or value == "" else str(value)


def _table(c: Comparison, rows: pd.DataFrame, timed: bool) -> str:
    lines = []
    for r in rows.itertuples():
        if timed:
            noise = "" if pd.isna(r.noise) else f", round noise ±{r.noise:.3f}"
            typical = f", ×{r.over_typical:.3f} the typical" if c.spread is not None else ""
            n = "paired rounds" if c.paired is not None else "n"
            lines.append(
                f"  {r.case}: {_ms(r.median_old_s)} → {_ms(r.median_new_s)} ms, ratio "
                f"{r.ratio:.3f} [{r.lo:.3f}, {r.hi:.3f}]{typical} ({n} {r.n_old}/{r.n_new}"
                f"{noise})"
            )
        else:
            lines.append(f"  {r.case}: {_status(r.status_old)} → {_status(r.status_new)}")
    return "\n".join(lines)


def _header(c: Comparison) -> list[str]:
    """The runs compared, how their environments differ, and whether the machine was shared:
    what a reader must know before trusting any ratio below."""
    differs, same = environment_diff(c.old, c.new)
    lines = [f"old: {c.old.label}", f"new: {c.new.label}"]
    if c.itself:
        lines.append(
            "NOTE: this compares a run with itself (the same folder or file): every ratio is 1 "
            "by construction, which says nothing about noise or speed"
        )
    lines.append("environments differ in: " + ("; ".join(differs) if differs else "nothing"))
    if same:
        lines.append("same: " + "; ".join(same))
    busy = _busy(c.old) + _busy(c.new)
    if busy:
        lines.append(
            "WARNING: "
            + "; ".join(busy)
            + ": other processes shared the machine, and a case's time depends on what ran "
            "beside it then; expect flagged cases that the code did not cause"
        )
    return lines


def _times_basis(c: Comparison) -> list[str]:
    """Whether the times are normalised by each run's calibration, and if raw, how much the
    calibration itself moved: the machine's share of any change."""
    if c.references is not None:
        ro, rn = c.references
        return [
            f"times NORMALISED: each run's times divided by its own calibration, {ro.what}: "
            f"{ro.show()} → {rn.show()} (time {rn.median_s / ro.median_s:.3g}×)"
        ]
    lines = ["times: raw (not normalised; --normalise divides by each run's calibration)"]
    try:
        ro, rn = calibrations(c.old, c.new)
        lines.append(
            f"  the calibration ({ro.what}: {ro.show()} → {rn.show()}) itself took "
            f"{rn.median_s / ro.median_s:.3g}× the time: the machine's speed, not the code's"
        )
    except CompareError:
        pass
    return lines


def _rule(c: Comparison) -> list[str]:
    """The rule that flags a case slower or faster, and any remeasuring: how to read a flag."""
    level = f"{CONFIDENCE:.0%}"
    if c.paired is not None:
        lines = [
            f"rule: PAIRED: every case timed in both runs was timed again, the old run's code "
            f"({c.paired['old_checkout']}) and the new run's (this checkout) in "
            f"{c.paired['rounds']} rounds of back-to-back visits; a round's ratio is its new "
            f"visit's quickest call over its old one's; slower iff the {level} bootstrap "
            f"interval of the rounds' median ratio lies above 1 + {c.threshold:g}, faster iff "
            f"below 1/(1 + {c.threshold:g}); the machine weighs on both sides of a round alike"
        ]
        lines += [
            f"  not re-timed ({why}; the two runs' verdict stands): {case}"
            for case, why in c.paired["errors"].items()
        ]
        return lines
    lines = [
        f"rule: slower iff the {level} bootstrap interval of the ratio of medians new/old "
        f"({RESAMPLES} resamples, seeded) lies above 1 + {c.threshold:g}; faster iff below "
        f"1/(1 + {c.threshold:g}); under {MIN_SAMPLES} samples a side, the interval is the "
        "range of all ratios"
        + (
            f"; where a run was timed in interleaved rounds, the change must also exceed "
            f"{NOISE_K:g}× the combined between-round spread"
            if c.cases.noise.notna().any()
            else ""
        )
    ]
    if c.spread is not None:
        lines.append(
            f"  each case judged against the typical case (ratio ×{c.shift:.3g}, the median "
            f"over the timed cases): its ratio over it must also lie beyond {SCATTER_K:g}× the "
            f"cases' scatter (robust SD of log ratio / typical: {c.spread:.3f}, so beyond "
            f"×{math.exp(SCATTER_K * c.spread):.3g}); the whole run counts as slower beyond "
            f"×{1 + DRIFT_BAND:g}"
        )
    if c.remeasured:
        lines.append(
            f"REMEASURED: {len(c.remeasured)} case(s) flagged slower were timed again in this "
            f"checkout, {c.remeasure_rounds} interleaved rounds; their new times are those samples"
        )
    return lines


def _outcome_tables(c: Comparison, every: bool) -> list[str]:
    """One table per outcome worth a look (the problems first), then with ``every`` all timed
    cases: the cases behind the verdict."""
    lines = []
    for outcome in (*PROBLEMS, "faster", "fixed", "failing"):
        rows = c.of(outcome)
        if rows.empty:
            continue
        allowed = " (allowed)" if outcome in c.allowed else ""
        lines.append(f"\n{outcome}{allowed} ({len(rows)}):")
        timed = outcome in ("slower", "faster")
        rows = rows.sort_values("ratio", ascending=outcome == "faster") if timed else rows
        lines.append(_table(c, rows, timed))
    if every:
        timed = c.cases[c.cases.ratio.notna()].sort_values("ratio", ascending=False)
        lines.append(f"\nevery timed case ({len(timed)}):")
        lines.append(_table(c, timed, True))
    return lines


def _verdict(c: Comparison) -> list[str]:
    """The count of cases per outcome and the verdict (regression, machine moved, or none):
    the comparison's last word, matching its exit status."""
    counts = c.cases.outcome.value_counts()
    summary = ", ".join(f"{counts[o]} {o}" for o in OUTCOMES if o in counts)
    lines = [f"\n{len(c.cases)} cases: {summary}"]
    problems = c.problems
    whole = f"the whole run slower (typical case ×{c.shift:.3g}, beyond ×{1 + DRIFT_BAND:g})"
    if c.exit_code == EXIT_MOVED:
        what = f"{len(problems)} case(s) slower" if len(problems) else whole
        other = c.other_machine()
        head, why, then = (
            ("OTHER MACHINE", "between runs on two machines", "compare two runs of one machine")
            if other
            else ("MACHINE MOVED", "while the whole machine moved", "re-run on a quiet machine")
        )
        lines.append(
            f"{head}: {what} {why} ("
            + "; ".join(other or c.machine_moved())
            + f"): {then} (exit status 3, not a regression verdict)"
        )
    elif c.exit_code == EXIT_REGRESSION:
        if len(problems):
            lines.append(
                f"REGRESSION: {len(problems)} case(s) broke, vanished, appeared or got slower"
            )
        if c.drifted:
            lines.append(f"REGRESSION: {whole}, and neither the calibration nor the load moved")
    else:
        lines.append("no regression" + (" (a run compared with itself)" if c.itself else ""))
    return lines


def render(c: Comparison, *, every: bool = False) -> str:
    """The comparison for a terminal: header, the problems, then (with ``every``) all cases."""
    lines = _header(c) + _times_basis(c) + _rule(c) + _typical(c) + _outcome_tables(c, every)
    return "\n".join(lines + _verdict(c))


def last_runs(
    results: pathlib.Path, n: int = 2, left_out: list[str] | None = None
) -> list[pathlib.Path]:
    """The ``n`` run folders under ``results`` started last (by ``env.json``'s
    ``started_utc``); a pointer such as ``results/latest`` is not a second copy. A folder
    whose env.json is damaged is left out, with a line in ``left_out``
    (:func:`bench.store.find_runs`)."""
    found, damaged = store.find_runs(results)
    if left_out is not None:
        left_out.extend(damaged)
    return [folder for _, folder in found[-n:]]


def last_saves(storage: pathlib.Path, n: int = 2) -> list[pathlib.Path]:
    """The ``n`` newest pytest-benchmark saves (``NNNN_*.json``, numbered in order)."""
    return sorted(storage.glob("*/*.json"), key=lambda p: (p.name, str(p)))[-n:]
