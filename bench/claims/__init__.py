"""Claims of the seed (C1–C12) and of the suite (C13): one home per claim.

Each model's module here holds the experiments that measure its claims and the rules that
judge them (``docs/claims.md`` states every rule and threshold). A rule returns a
:class:`Verdict`; experiment tables go into the run folder through :func:`write_table`.
"""

from __future__ import annotations

import csv
import dataclasses
import os
import pathlib
from collections.abc import Iterable, Mapping, Sequence

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
