"""Claims of the seed (C1–C12) and of the suite (C13): one home per claim.

Each model's module here holds the experiments that measure its claims, the rules that judge
them and the claims' texts (:class:`Claim`, registered with :func:`state`: the seed's section,
the claim in our words, the rule texts; ``docs/claims.md``'s table and rule lines are
generated from them by :mod:`bench.claims.doc`). Each rule is declared once, a :class:`Rule`
(its claim, check, measure and text), and judged in two steps: a decision that returns the
verdict and the facts that decided it (the numbers, by name: what the tests assert), and the
sentences (``measured``, ``statement``) formatted from those facts, so a rewording never
changes a verdict; :meth:`Rule.verdict` makes them one :class:`Verdict`. Experiment tables go
into the run folder through :func:`bench.store.write_table`. A module registers what it
measures with :func:`register` (a claim with a wall-time half: :func:`wall_time_claim`):

- an :class:`Experiment` runs once per run folder, after the suite's cases (it measures
  something the timed cases do not: exhaustive checks, gradient curves, exact counts);
- a :class:`Derived` claim is judged from the run's own measurements and fits, each time the
  report is rendered.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import pathlib
import pkgutil
from collections.abc import Callable, Iterable, Mapping

import pandas as pd

from bench import judge
from bench.figures import Curve, WallTimeFigure  # noqa: F401  (claims declare figures)
from bench.fits import round_times
from bench.judge import WallTimeSpec, rule_text
from bench.store import CLAIM_COLUMNS, VERDICTS, run_samples

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


@dataclasses.dataclass(frozen=True)
class Rule:
    """One rule of a claim, declared once in its claims file: the claim it judges, what it
    checks on which measure, and its text (the rule's line in ``docs/claims.md``). Each verdict
    of the rule is one call of :meth:`verdict`."""

    claim: str
    check: str
    measure: str
    text: str
    slip: str = "mathematical error"
    """The seed's slip that a CORRECTED verdict of this rule names."""

    def verdict(
        self,
        verdict: str,
        measured: str,
        statement: str,
        facts: Mapping,
        *,
        claim: str = "",
        check: str = "",
        slip: str | None = None,
    ) -> Verdict:
        """The rule's :class:`Verdict`. ``claim``, ``check`` and ``slip`` are the rule's unless
        given (where the data decides them); the rule's slip is named on CORRECTED only."""
        if slip is None:
            slip = self.slip if verdict == "CORRECTED" else ""
        said = (measured, statement, slip, facts)
        return Verdict(
            claim or self.claim, verdict, check or self.check, self.measure, self.text, *said
        )


@dataclasses.dataclass(frozen=True)
class Experiment:
    """The experiment behind some claims of one suite.

    ``run(profile, run_dir)`` measures, writes its tables with :func:`bench.store.write_table` and
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


# --- Wall time in the latency regime: every claim about sequential steps, one judge ---------


@functools.cache
def _rounds_of(path: str, stamp: tuple) -> dict:
    return round_times(run_samples(path))


def run_rounds(run_dir) -> dict:
    """Each interleaved case's per-round median times in a run folder (``{}`` without one),
    read once per state of its samples file."""
    if run_dir is None:
        return {}
    files = [pathlib.Path(run_dir) / n for n in ("samples.csv", "samples.csv.gz")]
    stamp = tuple((f.stat().st_mtime_ns, f.stat().st_size) for f in files if f.exists())
    return _rounds_of(str(run_dir), stamp) if stamp else {}


def wall_time_rule(spec: WallTimeSpec | None = None) -> str:
    """The wall-time rule's text for a claim's spec (None: the docs' general form)."""
    return rule_text(spec)


def wall_time(spec: WallTimeSpec, df: pd.DataFrame, rounds) -> list[Verdict]:
    """A claim's wall-time half, judged by :func:`bench.judge.judge` on the spec's design;
    nothing when the run timed no case of its suite and mode."""
    if ok_rows(df, spec.suite, spec.mode).empty:
        return []
    rule = Rule(
        spec.claim,
        f"wall time of {spec.what}, every latency-regime point in one joint fit (timed in "
        f"interleaved rounds), against {spec.count.name} and the rival counts",
        f"wall time vs {spec.count.name} (latency regime)",
        wall_time_rule(spec),
    )
    verdict, facts, measured, statement = judge.wall_time_verdict_parts(spec, df, rounds)
    return [rule.verdict(verdict, measured, statement, facts)]


def wall_time_claim(
    spec: WallTimeSpec,
    section: str,
    words: str,
    module: str,
    *,
    rules: tuple[str, ...],
    measure: str,
    axes: tuple[str, ...] = ("hw", "depth"),
    judged: Callable[..., list[Verdict]] | None = None,
    source: str = "",
) -> WallTimeSpec:
    """Declare a claim with a wall-time half in one call: state it (:class:`Claim`: its
    structural ``rules`` and the spec's wall-time rule, judged on the count column ``measure``
    and the wall time), register its :class:`Derived` (``judged``; by default the wall-time
    half alone) and declare its figure (time against ``measure`` along ``axes``)."""
    measured_on = f"`{measure}`; wall time (latency regime)"
    rules = (*rules, wall_time_rule(spec))
    state(Claim(spec.claim, section, words, measured_on, module, rules, source))

    def judge_wall_time(df: pd.DataFrame, fits: pd.DataFrame, run_dir=None) -> list[Verdict]:
        return wall_time(spec, df, run_rounds(run_dir))

    # Its home is the claim's module, where it is declared (as namedtuple does for its classes).
    judge_wall_time.__module__ = module
    judge_wall_time.__name__ = judge_wall_time.__qualname__ = f"{spec.claim.lower()}_wall_time"
    register(Derived((spec.suite,), (spec.claim,), judged or judge_wall_time))
    declare_figure(WallTimeFigure(spec.claim, (spec.suite,), spec.mode, measure, axes, (spec,)))
    return spec


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
    rule = Rule(claim, check, "span_ops", "no verdict from rows without a structural count")
    measured = f"{len(missing)} of {len(rows)} rows have no span: {'; '.join(notes)}"
    statement = "the structural count is missing, so the span cannot decide"
    facts = dict(missing=len(missing), rows=len(rows), notes=notes)
    return [rule.verdict("INCONCLUSIVE", measured, statement, facts)]
