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
    facet: str | None = None  # one panel per value of this column

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


@dataclasses.dataclass(frozen=True)
class Derived:
    """Claims judged from a run's measurements: ``judge(measurements, fits)`` returns their
    verdicts, or nothing when the run did not measure the cases they need."""

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
