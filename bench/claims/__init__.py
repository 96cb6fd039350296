"""Claims of the seed (C1–C12) and of the suite (C13): one home per claim.

Each model's module here holds the experiments that measure its claims, the rules that judge
them and the claims' texts (:class:`Claim`, registered with :func:`state`: the seed's section,
the claim in our words, the rule texts; ``docs/claims.md``'s table and rule lines are
generated from them by :mod:`bench.claims.doc`). A rule is two steps: a decision that returns
the verdict and the facts that decided it (the numbers, by name: what the tests assert), and
the sentences (``measured``, ``statement``) formatted from those facts, so a rewording never
changes a verdict. A rule returns a :class:`Verdict`; experiment tables go into the run folder
through :func:`write_table`. A module registers what it measures with :func:`register`:

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

from bench.fits import BIC_MARGIN, COUNTS, FIXED_GROWTH, MIN_ROUNDS, SHAPE_EXPONENT
from bench.store import CLAIM_COLUMNS, VERDICTS

SLIPS = ("", "mathematical error", "notation or transcription slip")


ROW_FIELDS = tuple(c for c in CLAIM_COLUMNS if c not in ("run_id", "suite"))
"""The fields of a :class:`Verdict` that ``claims.csv`` stores (the run and the suite are the
runner's to add)."""


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
    facts: Mapping = dataclasses.field(default_factory=dict, compare=False, repr=False)
    """The numbers that decided the verdict, by name (what the tests assert); ``measured`` and
    ``statement`` put them in words. Not a column of ``claims.csv``."""

    def as_row(self) -> dict[str, str]:
        """The verdict as a row of ``claims.csv`` (its columns but the run's and the suite's)."""
        return {name: getattr(self, name) for name in ROW_FIELDS}

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
    tmp = path.with_name(path.name + ".bench-tmp")  # (store.ASIDE: a resume removes it)
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
    """Seconds it takes per profile on a 2-core CPU, for ``python -m bench plan``."""


@dataclasses.dataclass(frozen=True)
class Derived:
    """Claims judged from a run's measurements: ``judge(measurements, fits, run_dir)`` returns
    their verdicts, or nothing when the run did not measure what they need (``run_dir`` holds
    the tables a suite wrote beside its rows, such as the trained suite's)."""

    suites: tuple[str, ...]
    claims: tuple[str, ...]
    judge: Callable[..., list[Verdict]]


@dataclasses.dataclass(frozen=True)
class Claim:
    """A claim as the report and ``docs/claims.md`` name it: where the seed makes it
    (``section``), the claim in our words, what it is judged on, and the rules its verdicts
    state (their ``rule`` texts, the same constants the rules write). The document's table of
    claims and its rule lines are generated from these (:mod:`bench.claims.doc`)."""

    id: str
    section: str
    words: str
    measure: str
    module: str
    rules: tuple[str, ...]
    source: str = ""
    """Where the measurements come from, where it is not the module's own experiment."""

    @property
    def path(self) -> str:
        return self.module.replace(".", "/") + ".py"


_EXPERIMENTS: list[Experiment] = []
_DERIVED: list[Derived] = []
_CLAIMS: dict[str, Claim] = {}


def state(claim: Claim) -> Claim:
    """Register a claim's texts (one per claim id)."""
    if _CLAIMS.get(claim.id, claim) != claim:
        raise ValueError(f"claim {claim.id} is stated twice")
    _CLAIMS[claim.id] = claim
    return claim


def stated() -> list[Claim]:
    """Every claim's texts, in claim order."""
    _load_all()
    return sorted(_CLAIMS.values(), key=lambda c: claim_number(c.id))


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

MIN_POINTS = 6
"""No verdict from a sweep of fewer points..."""
MIN_RANGE = 8.0
"""...and a sweep whose depth measure grows, but by less than this ratio, is shown, not judged:
its growth cannot be told from the fixed cost's noise."""
FASTER_THAN_WORK = 0.25
"""A sweep whose depth is constant fails when every candidate shape within
``bench.fits.BIC_MARGIN`` of the best has an exponent in the axis above the work's by more than
this."""


@dataclasses.dataclass(frozen=True)
class SweepJudgement:
    """One sweep judged by :func:`scaling_check`: PASS, FAIL, INCONCLUSIVE, or SHOWN (reported,
    not judged: its depth measure varies too little to test), with the facts that decided it.
    ``facts["reason"]`` names the branch of the rule that decided it; :attr:`why` puts it in
    words."""

    outcome: str
    sweep: str
    facts: dict = dataclasses.field(default_factory=dict)

    @property
    def why(self) -> str:
        return sweep_reason(self.facts)

    @property
    def text(self) -> str:
        return f"{self.sweep}: {self.why}"


def sweep_facts(r, name: str) -> dict:
    """The numbers of a sweep's growth model (``bench.fits``), for a verdict's row."""
    return {
        "name": name,
        "points": int(r.n_points),
        "axis_range": float(r.axis_range),
        "depth_range": float(r[f"{name}_range"]),
        "rounds": int(r.rounds) if r.rounds == r.rounds else 0,
        "follows": r[f"{name}_follows"],
        "c_us": r[f"{name}_c_s"] * 1e6,
        "c_us_ci": (r[f"{name}_c_lo"] * 1e6, r[f"{name}_c_hi"] * 1e6),
        "b_ns_per_step": r[f"{name}_b_s_per_step"] * 1e9,
        "b_ns_ci": (r[f"{name}_b_lo"] * 1e9, r[f"{name}_b_hi"] * 1e9),
        "a_ns_per_flop": r[f"{name}_a_s_per_flop"] * 1e9,
        "share_depth": r[f"{name}_share_depth"],
        "share_work": r[f"{name}_share_work"],
        "growth_ci": (r[f"{name}_growth_lo"], r[f"{name}_growth_hi"]),
        "delta_bic_depth": r[f"{name}_delta_bic_depth"],
        "delta_bic_work": r[f"{name}_delta_bic_work"],
        "collinear": r[f"{name}_collinear"] if isinstance(r[f"{name}_collinear"], str) else "",
        "shape_best": r.shape_best,
        "shapes_near": str(r.shapes_near).split("; ") if isinstance(r.shapes_near, str) else [],
        "shape_margin": r.shape_margin,
        "work_exponent": r.work_exponent,
    }


def _latency_row(fits, *, suite: str, variant: str, mode: str, axis: str):
    """The latency-regime fit of one sweep (its longest), or a reason why there is none."""
    if fits.empty or "regime" not in fits:
        return None, "no sweep"
    rows = fits[
        (fits.suite == suite)
        & (fits.variant == variant)
        & (fits["mode"] == mode)
        & (fits.axis == axis)
        & (fits.regime == "latency")
    ]
    if rows.empty:
        return None, "no latency sweep"
    return rows.sort_values("n_points").iloc[-1], ""


def _constant_depth(f: dict) -> tuple[str, str]:
    """(outcome, reason) of a sweep that adds no sequential step."""
    if f["follows"] == "fixed":
        return "PASS", "flat"
    if not f["shapes_near"]:
        return "INCONCLUSIVE", "no shape"
    work = f["work_exponent"] if f["work_exponent"] == f["work_exponent"] else 0.0
    faster = [SHAPE_EXPONENT[s] > work + FASTER_THAN_WORK for s in f["shapes_near"]]
    if all(faster):
        return "FAIL", "faster than work"
    if not any(faster):
        return "PASS", "no faster than work"
    return "INCONCLUSIVE", "shapes disagree"


def _growing_depth(f: dict) -> tuple[str, str]:
    """(outcome, reason) of a sweep whose depth measure grows by at least :data:`MIN_RANGE`."""
    follows, name = f["follows"], f["name"]
    if follows in (name, f"{name}+work"):
        return "PASS", "follows depth"
    if follows == "fixed":
        return "FAIL", "flat"
    if follows == "work":
        return "SHOWN", "work-bound"
    return "INCONCLUSIVE", "undecided"


def scaling_check(
    fits, *, suite: str, variant: str, mode: str, axis: str, measure: str
) -> SweepJudgement:
    """Does wall time follow ``measure`` (``span_ops`` or ``steps_executed``) along the
    latency-regime sweep of ``variant`` / ``mode`` over ``axis``? Decided by the sweep's growth
    model (``bench.fits.growth_model``, with ``measure`` as the depth):

    - INCONCLUSIVE with fewer than :data:`MIN_POINTS` points, fewer than
      ``bench.fits.MIN_ROUNDS`` interleaved rounds, or the measure not counted;
    - where the measure grows along the sweep by at least :data:`MIN_RANGE`: PASS iff the
      growth follows it (its term kept, alone or with the work's), FAIL iff the time does not
      grow (``fixed``), INCONCLUSIVE iff ``undecided``; a sweep whose growth follows only the
      work is work-bound on this device, outside the regime the claim is judged in: SHOWN;
    - where the measure is constant (no sequential step added along the sweep): PASS iff the
      growth is ``fixed``, or every candidate shape within the BIC margin of the best grows no
      faster than the work (exponent at most the work's + :data:`FASTER_THAN_WORK`); FAIL iff
      every such shape grows faster; else INCONCLUSIVE;
    - in between (the measure grows, by less than :data:`MIN_RANGE`): SHOWN, not judged.

    So the regime is measured, not assumed: a claim is judged on the sweeps that this device
    shows to be latency-bound (or flat), and is INCONCLUSIVE when none is.
    """
    name = COUNTS[measure]
    sweep = f"{suite} {variant} {mode} vs {axis}"
    r, missing = _latency_row(fits, suite=suite, variant=variant, mode=mode, axis=axis)
    if r is None:
        return SweepJudgement("INCONCLUSIVE", sweep, {"reason": missing})
    if r[f"{name}_follows"] == "not counted" or r[f"{name}_range"] != r[f"{name}_range"]:
        return SweepJudgement("INCONCLUSIVE", sweep, {"reason": "not counted", "measure": measure})
    f = sweep_facts(r, name)
    if f["points"] < MIN_POINTS or f["rounds"] < MIN_ROUNDS:
        outcome, reason = "INCONCLUSIVE", "too few"
    elif f["depth_range"] >= MIN_RANGE:
        outcome, reason = _growing_depth(f)
    elif f["depth_range"] == 1:
        outcome, reason = _constant_depth(f)
    else:
        outcome, reason = "SHOWN", "short range"
    return SweepJudgement(outcome, sweep, {**f, "reason": reason})


def _describe(f: dict) -> str:
    def ci(pair, digits=3):
        lo, hi = pair
        return f" [{lo:.{digits}g}, {hi:.{digits}g}]" if lo == lo else ""

    name = f["name"]
    text = (
        f"{f['points']} points over {f['axis_range']:.3g}× ({name} ×{f['depth_range']:.3g}), "
        f"{f['rounds']} rounds: t = c + a·work + b·{name}, c = {f['c_us']:.3g} µs"
        f"{ci(f['c_us_ci'])}, b = {f['b_ns_per_step']:.3g} ns per {name}{ci(f['b_ns_ci'])}, "
        f"a = {f['a_ns_per_flop']:.3g} ns per FLOP; growth follows {f['follows']}"
    )
    if f["follows"] in (name, f"{name}+work", "work"):
        text += f" ({name} {f['share_depth']:.0%} of it, work {f['share_work']:.0%})"
    if f["collinear"]:
        text += f" ({f['collinear']} along this sweep: one term)"
    lo, hi = f["growth_ci"]
    if lo == lo:
        text += f"; fitted growth over the sweep [{lo:+.0%}, {hi:+.0%}]"
    return text + f"; best shape {f['shape_best']} by ΔBIC {f['shape_margin']:.1f}"


def _undecided(f: dict) -> str:
    """Why a sweep's growth is undecided: no growth out of the noise, or terms not told apart."""
    lo, hi = f["growth_ci"]
    if lo == lo and lo > FIXED_GROWTH:
        return (
            f"time grows (×{1 + lo:.3g} to ×{1 + hi:.3g}) but neither the {f['name']} nor the "
            f"work explains it without the other (ΔBIC {f['delta_bic_depth']:.1f} and "
            f"{f['delta_bic_work']:.1f}, {BIC_MARGIN:g} needed)"
        )
    return "the growth does not stand out of the noise between rounds"


def sweep_reason(f: dict) -> str:
    """A sweep's judgement in words: the fit's numbers, then the branch of the rule that
    decided it (``f["reason"]``)."""
    reason = f["reason"]
    if reason in ("no sweep", "no latency sweep", "not counted"):
        return {
            "no sweep": "no sweep measured",
            "no latency sweep": "no latency-regime sweep measured",
            "not counted": f"{f.get('measure')} not counted",
        }[reason]
    name = f["name"]
    if reason == "too few":
        few = [f"fewer than {MIN_POINTS} points"] if f["points"] < MIN_POINTS else []
        few += [f"fewer than {MIN_ROUNDS} interleaved rounds"] if f["rounds"] < MIN_ROUNDS else []
        why = f"no verdict, {', '.join(few)}"
    elif reason == "undecided":
        why = f"no verdict, {_undecided(f)}"
    elif reason == "flat" and f["depth_range"] >= MIN_RANGE:
        why = f"the {name} grow ×{f['depth_range']:.3g} and the time does not"
    elif reason == "shapes disagree":
        why = (
            f"no verdict, the shapes the data cannot tell apart ({', '.join(f['shapes_near'])}) "
            "grow both slower and faster than the work"
        )
    elif reason == "short range":
        why = f"shown, not judged ({name} ×{f['depth_range']:.3g} < {MIN_RANGE:g})"
    else:
        why = {
            "follows depth": f"the {name} show on the clock",
            "flat": "no step is added and the time does not grow",
            "work-bound": "shown, not judged (work-bound here: the growth follows the work, "
            f"the {name} do not show)",
            "no shape": "no verdict, no shape was fitted",
            "faster than work": "time grows faster than the work along a sweep that adds no "
            + name,
            "no faster than work": "no step is added, and the time grows no faster than the work",
        }[reason]
    return f"{_describe(f)}: {why}"


RULE = (
    "per latency-regime sweep, interleaved rounds, t = c + a·work + b·{name} fitted "
    "(bench.fits: a term kept iff dropping it raises the BIC by ≥ {margin:g} and its bootstrap "
    "95% interval is above 0; no term kept: fixed iff the growth's interval lies within "
    "±{fixed:.0%}, else undecided). INCONCLUSIVE with < {points} points or < {rounds} rounds. "
    "Where the {name} grow ≥ {range:g}×: PASS iff the growth follows them, FAIL iff the time "
    "does not grow (fixed), INCONCLUSIVE iff undecided, shown but not judged iff it follows "
    "only the work (work-bound here); where they are constant: PASS iff fixed or every shape "
    "within the BIC margin grows no faster than the work, FAIL iff every one grows faster; in "
    "between: shown, not judged. Any FAIL "
    "fails the claim; PASS needs every judged sweep to pass"
)


def wall_time_rule(measure: str | None = None) -> str:
    """The wall-time rule's text for a claim judged against ``measure`` (any: the docs')."""
    return RULE.format(
        name=COUNTS[measure] if measure else "steps (or span)",
        margin=BIC_MARGIN,
        fixed=FIXED_GROWTH,
        points=MIN_POINTS,
        rounds=MIN_ROUNDS,
        range=MIN_RANGE,
    )


def time_verdict(claim: str, checks: Sequence[SweepJudgement], measure: str, what: str) -> Verdict:
    """A claim's wall-time half from its sweeps: FAIL if any sweep fails, PASS if every judged
    sweep passes (at least one), else INCONCLUSIVE (the sweeps that could not decide say why)."""
    judged = [c for c in checks if c.outcome != "SHOWN"]
    outcomes = {c.outcome for c in judged} or {"INCONCLUSIVE"}
    verdict = "FAIL" if "FAIL" in outcomes else "PASS" if outcomes == {"PASS"} else "INCONCLUSIVE"
    facts = {"sweeps": list(checks), "judged": len(judged)}
    return Verdict(
        claim=claim,
        verdict=verdict,
        check=f"wall time of {what} along latency-regime sweeps timed in interleaved rounds, "
        f"against the {measure}",
        measure=f"wall time vs {measure} (latency regime)",
        rule=wall_time_rule(measure),
        measured="; ".join(f"{c.text} [{c.outcome}]" for c in checks) or "no sweep",
        statement=_time_statement(verdict, facts, measure),
        facts=facts,
    )


def _time_statement(verdict: str, facts: dict, measure: str) -> str:
    by = {o: [c.sweep for c in facts["sweeps"] if c.outcome == o] for o in ("FAIL", "INCONCLUSIVE")}
    return {
        "PASS": f"in the latency regime, wall time grows as the {measure} do along every "
        f"judged sweep ({facts['judged']}), over a fixed cost per call",
        "FAIL": f"in the latency regime, wall time does not follow the {measure}: "
        + "; ".join(by["FAIL"]),
        "INCONCLUSIVE": "the sweeps cannot decide whether wall time follows the "
        f"{measure}: " + ("; ".join(by["INCONCLUSIVE"]) or "no sweep judged"),
    }[verdict]


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


@dataclasses.dataclass(frozen=True)
class WallTimeFigure:
    """The sweeps a claim's wall-time half reads, for its figure (``bench.plots``): time against
    the claim's depth ``measure``, per variant of each of ``suites`` in ``mode``."""

    claim: str
    suites: tuple[str, ...]
    mode: str
    measure: str
    axes: tuple[str, ...] = ("hw", "depth")


_FIGURES: list[WallTimeFigure] = []


def declare_figure(figure: WallTimeFigure) -> WallTimeFigure:
    _FIGURES.append(figure)
    return figure


def wall_time_figures() -> list[WallTimeFigure]:
    _load_all()
    return sorted(_FIGURES, key=lambda f: claim_number(f.claim))


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
            facts=dict(missing=len(missing), rows=len(rows), notes=notes),
        )
    ]
