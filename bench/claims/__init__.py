"""Claims of the seed (C1–C12) and of the suite (C13): one home per claim.

Each model's module here holds the experiments that measure its claims and the rules that
judge them (``docs/claims.md`` states every rule and threshold, and which module checks which
claim). A rule returns a :class:`Verdict`; experiment tables go into the run folder through
:func:`write_table`. A module registers its claims with :func:`register`:

- an :class:`Experiment` runs once per run folder, after the suite's cases (it measures
  something the timed cases do not: exhaustive checks, gradient curves, exact counts);
- a :class:`Derived` claim is judged from the run's own measurements and fits, each time the
  report is rendered.
"""

from __future__ import annotations

import csv
import dataclasses
import importlib
import os
import pathlib
import pkgutil
from collections.abc import Callable, Iterable, Mapping, Sequence

import pandas as pd

from bench.fits import COUNTS, LATENCY_SHARE

VERDICTS = ("PASS", "FAIL", "CORRECTED", "INCONCLUSIVE", "ERROR")
"""PASS: the seed's claim holds as stated. FAIL: the measurements contradict it.
CORRECTED: the seed was wrong and the statement gives the right claim, with ``slip`` saying
whether the seed made a mathematical error or a notation/transcription slip.
INCONCLUSIVE: the data cannot decide (too few points, an interval wider than the rule's
tolerance, missing counts); ``measured`` says why. ERROR: the check itself crashed."""

SLIPS = ("", "mathematical error", "notation or transcription slip")


@dataclasses.dataclass(frozen=True)
class Verdict:
    """One claim judged: what was checked, on which measure, by which rule, with which numbers.

    ``statement`` is generated from the measurements (nothing the data did not decide);
    for CORRECTED it is the right claim.
    """

    claim: str
    verdict: str
    check: str
    measure: str
    rule: str
    measured: str
    statement: str = ""
    slip: str = ""

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict {self.verdict!r} is not one of {VERDICTS}")
        if self.slip not in SLIPS:
            raise ValueError(f"slip {self.slip!r} is not one of {SLIPS}")
        if (self.verdict == "CORRECTED") != bool(self.slip):
            raise ValueError("a CORRECTED verdict, and only one, names the seed's slip")


def write_table(
    run_dir: pathlib.Path, name: str, rows: Iterable[Mapping], columns: Sequence[str] | None = None
) -> pathlib.Path:
    """Write an experiment table ``run_dir/name`` (CSV) whole: written aside, then renamed, so
    a run killed mid-write never leaves half a table behind."""
    rows = list(rows)
    columns = list(columns or (rows[0].keys() if rows else ()))
    path = pathlib.Path(run_dir) / name
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="raise")
        writer.writeheader()
        writer.writerows(rows)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


@dataclasses.dataclass(frozen=True)
class Curve:
    """A plot of an experiment table, drawn by :mod:`bench.plots`: ``y`` against ``x``, one
    line per value of ``hue`` (error bars from ``y_low``/``y_high`` columns where named)."""

    table: str
    x: str
    y: str
    hue: str
    xlabel: str
    ylabel: str
    title: str
    logx: bool = False
    logy: bool = True
    y_low: str | None = None
    y_high: str | None = None

    @property
    def png(self) -> str:
        return self.table.replace(".csv", ".png")


@dataclasses.dataclass(frozen=True)
class Experiment:
    """The experiment behind some claims of one suite.

    ``run(profile, run_dir)`` measures, writes its tables with :func:`write_table` and
    returns one :class:`Verdict` per claim id in ``claims``, in that order.
    """

    suite: str
    claims: tuple[str, ...]
    run: Callable[[str, pathlib.Path], list[Verdict]]
    curves: tuple[Curve, ...] = ()
    cost_s: Mapping[str, float] = dataclasses.field(default_factory=dict)
    """Seconds it takes per profile (measured on a 2-core CPU), for ``python -m bench plan``."""


@dataclasses.dataclass(frozen=True)
class Derived:
    """Claims judged from a run's measurements: ``judge(measurements, fits, run_dir)`` returns
    their verdicts, or nothing when the run did not measure what they need (``run_dir`` holds
    the tables a suite wrote beside its rows, such as the trained suite's)."""

    suites: tuple[str, ...]
    claims: tuple[str, ...]
    judge: Callable[..., list[Verdict]]


_EXPERIMENTS: list[Experiment] = []
_DERIVED: list[Derived] = []


def register(item: Experiment | Derived) -> Experiment | Derived:
    (_EXPERIMENTS if isinstance(item, Experiment) else _DERIVED).append(item)
    return item


def _load_all() -> None:
    for info in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{info.name}")


def experiments(suites: Iterable[str] | None = None) -> list[Experiment]:
    """The registered experiments (of the named suites), in claim order."""
    _load_all()
    chosen = [e for e in _EXPERIMENTS if suites is None or e.suite in set(suites)]
    return sorted(chosen, key=lambda e: claim_number(e.claims[0]))


def derived() -> list[Derived]:
    _load_all()
    return sorted(_DERIVED, key=lambda d: claim_number(d.claims[0]))


def claim_number(claim: str) -> int:
    """``"C12"`` → 12, for ordering claims."""
    digits = "".join(ch for ch in claim if ch.isdigit())
    return int(digits) if digits else 10**6


# --- Wall time in a latency-bound regime: one rule for every claim about sequential steps ----

MIN_POINTS = 5
"""No verdict from a sweep of fewer points."""
MIN_RANGE = 8.0
"""...or over less than this ratio between its largest and smallest value of the axis."""
TOLERANCE = 0.15
"""The fitted wall-time exponent must lie within this of the structural count's exponent."""
MAX_CI = 0.15
"""...and be known this well (95% half-width); a wider interval cannot decide."""


@dataclasses.dataclass(frozen=True)
class Check:
    """One sweep judged by :func:`scaling_check`: PASS, FAIL or INCONCLUSIVE, and why."""

    outcome: str
    text: str


def scaling_check(fits, *, suite: str, variant: str, mode: str, axis: str, measure: str) -> Check:
    """Does wall time follow ``measure`` (a structural count) along the latency-bound sweep
    of ``variant`` / ``mode`` over ``axis``?

    The count's own log-log slope over the same points is the prediction, so the constant
    terms of a count (9·d + 23 is not ∝ d) are predicted too. INCONCLUSIVE, with the reason,
    when the sweep has fewer than :data:`MIN_POINTS` points, spans less than
    :data:`MIN_RANGE`, is not latency-bound on this device (the Brent fit with ``measure`` as
    the depth gives it less than ``bench.fits.LATENCY_SHARE`` of the time), or its interval is
    wider than
    :data:`MAX_CI`; else decided by :func:`against_tolerance`.
    """
    name = f"{suite} {variant} {mode} vs {axis}"
    if fits.empty:
        return Check("INCONCLUSIVE", f"{name}: no sweep measured")
    rows = fits[
        (fits.suite == suite)
        & (fits.variant == variant)
        & (fits["mode"] == mode)
        & (fits.axis == axis)
        & (fits.regime == "latency")
    ]
    if rows.empty:
        return Check("INCONCLUSIVE", f"{name}: no latency-bound sweep measured")
    r = rows.sort_values("n_points").iloc[-1]
    count = f"{COUNTS[measure]}_exponent"
    predicted = r[count]
    share = r[f"{COUNTS[measure]}_share"]
    text = (
        f"{name}: time ∝ {axis}^{r.slope:.2f} ± {r.slope_ci95:.2f}, {measure} ∝ "
        f"{axis}^{predicted:.2f} ({r.n_points} points over {r.axis_range:.3g}×, "
        f"{COUNTS[measure]} share {share:.2f})"
    )
    reasons = []
    if r.n_points < MIN_POINTS:
        reasons.append(f"fewer than {MIN_POINTS} points")
    if r.axis_range < MIN_RANGE:
        reasons.append(f"a range under {MIN_RANGE:g}×")
    if predicted != predicted:
        reasons.append(f"{measure} not counted")
    if not share >= LATENCY_SHARE:
        reasons.append(f"not latency-bound here ({COUNTS[measure]} share < {LATENCY_SHARE})")
    if not r.slope_ci95 <= MAX_CI:
        reasons.append(f"interval wider than ±{MAX_CI}")
    if reasons:
        return Check("INCONCLUSIVE", f"{text}: no verdict, {', '.join(reasons)}")
    outcome, why = against_tolerance(r.slope, r.slope_ci95, predicted)
    return Check(outcome, f"{text}: {why}")


def against_tolerance(slope: float, ci95: float, predicted: float) -> tuple[str, str]:
    """PASS iff the whole 95% interval of the fitted exponent lies within ±:data:`TOLERANCE`
    of the predicted one; FAIL iff it lies wholly outside; INCONCLUSIVE when it straddles an
    edge of that band: then the data cannot tell a small difference from a large one, and a
    point estimate would flip between PASS and FAIL from one run to the next (it did, on a
    2-core CPU, for exponents 0.15 below the count's)."""
    lo, hi = slope - ci95, slope + ci95
    band = f"{predicted:.2f} ± {TOLERANCE}"
    if predicted - TOLERANCE <= lo and hi <= predicted + TOLERANCE:
        return "PASS", f"within {TOLERANCE} (interval [{lo:.2f}, {hi:.2f}] inside {band})"
    if hi < predicted - TOLERANCE or lo > predicted + TOLERANCE:
        off = abs(slope - predicted)
        return "FAIL", f"off by {off:.2f} (interval [{lo:.2f}, {hi:.2f}] outside {band})"
    return "INCONCLUSIVE", f"no verdict, interval [{lo:.2f}, {hi:.2f}] straddles the edge of {band}"


def time_verdict(claim: str, checks: Sequence[Check], measure: str, what: str) -> Verdict:
    """A claim's wall-time half from its sweeps: FAIL if any sweep fails, PASS if all pass,
    else INCONCLUSIVE (the sweeps that could not decide say why)."""
    outcomes = {c.outcome for c in checks}
    if not checks:
        outcomes = {"INCONCLUSIVE"}
    verdict = "FAIL" if "FAIL" in outcomes else "PASS" if outcomes == {"PASS"} else "INCONCLUSIVE"
    failed = [c.text.split(":")[0] for c in checks if c.outcome == "FAIL"]
    statement = {
        "PASS": f"in the latency-bound regime, wall time grows as the {measure} does, along "
        f"every sweep ({len(checks)})",
        "FAIL": f"in the latency-bound regime, wall time does not follow the {measure}: "
        + "; ".join(failed),
        "INCONCLUSIVE": f"the sweeps measured here cannot decide whether wall time follows "
        f"the {measure}",
    }[verdict]
    return Verdict(
        claim=claim,
        verdict=verdict,
        check=f"wall time of {what} along latency-bound sweeps, against the {measure}",
        measure=f"wall time vs {measure} (latency-bound)",
        rule=f"per sweep: INCONCLUSIVE with < {MIN_POINTS} points, a range < {MIN_RANGE:g}×, a "
        f"{measure} share < {LATENCY_SHARE} or a 95% interval > ±{MAX_CI}; else PASS iff the "
        f"fitted exponent's 95% interval lies within {TOLERANCE} of the {measure}'s exponent, "
        "FAIL iff it lies wholly outside, INCONCLUSIVE if it straddles; any FAIL fails the claim",
        measured="; ".join(c.text for c in checks) or "no sweep",
        statement=statement,
    )


def wall_time(
    claim: str, df, fits, *, suite: str, mode: str, variants: Sequence[str],
    axes: Sequence[str], measure: str, what: str,
) -> list[Verdict]:  # fmt: skip
    """A claim's wall-time half: :func:`scaling_check` of every variant along every axis,
    judged by :func:`time_verdict`; nothing when the run timed no ``suite`` / ``mode`` case."""
    if ok_rows(df, suite, mode).empty:
        return []
    checks = [
        scaling_check(fits, suite=suite, variant=v, mode=mode, axis=a, measure=measure)
        for v in variants
        for a in axes
    ]
    return [time_verdict(claim, checks, measure, what)]


def ok_rows(df: pd.DataFrame, suite: str, mode: str) -> pd.DataFrame:
    return df[(df.suite == suite) & (df["mode"] == mode) & (df.status == "ok")]


def uncounted(rows: pd.DataFrame, claim: str, check: str) -> list[Verdict]:
    """An INCONCLUSIVE row when some of ``rows`` have no span (the analyser could not count
    their program: the row's note says why); else nothing."""
    missing = rows[rows.span_ops.isna()]
    if missing.empty:
        return []
    notes = sorted({str(n) for n in missing.note.dropna()}) or ["no note"]
    return [
        Verdict(
            claim=claim,
            verdict="INCONCLUSIVE",
            check=check,
            measure="span_ops",
            rule="no verdict from rows without a structural count",
            measured=f"{len(missing)} of {len(rows)} rows have no span: {'; '.join(notes)}",
            statement="the structural count is missing, so the span cannot decide",
        )
    ]
