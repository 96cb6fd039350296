"""Where a session's wall time went: its account, kept in ``env.json`` (each session's
``time_s``) and shown in the report ("Where the time went").

The runner books every case's parts from its row (``build_s``, ``count_s``, ``compile_s``,
``warmup_s``, ``timed_s``: the row says the same), each suite's preparation and each claim
experiment; the CLI books the start-up (imports, checks), the calibration and the report. What
no part explains is booked as ``other``, so the parts sum to the session's wall time.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

CASE_PARTS = {
    "build_s": "cases: build",
    "count_s": "cases: trace and count",
    "compile_s": "cases: compile",
    "warmup_s": "cases: first and warm-up calls",
    "timed_s": "cases: timed calls",
}


class TimeAccount:
    """Seconds spent per part of a session that began at ``started`` (``time.perf_counter``)."""

    def __init__(self, started: float):
        self.started = started
        self.parts: dict[str, float] = {}

    def add(self, part: str, seconds: float) -> None:
        self.parts[part] = self.parts.get(part, 0.0) + max(float(seconds), 0.0)

    @contextlib.contextmanager
    def spend(self, part: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.add(part, time.perf_counter() - t0)

    def add_unit(self, rows: list[dict], elapsed_s: float) -> None:
        """Book the parts of the cases measured together (one case, or a sweep group) from
        their rows, and the rest of the ``elapsed_s`` the runner spent on them as the cases'
        own overhead."""
        booked = 0.0
        for row in rows:
            for column, part in CASE_PARTS.items():
                value = row.get(column)
                if value is not None and value == value:
                    self.add(part, value)
                    booked += float(value)
        self.add("cases: other (rows, logs, workers)", elapsed_s - booked)

    def closed(self) -> dict[str, float]:
        """The parts, ``other`` (the rest of the wall time) and ``total``, rounded to ms."""
        total = time.perf_counter() - self.started
        parts = dict(sorted(self.parts.items()))
        parts["other"] = total - sum(parts.values())
        parts["total"] = total
        return {k: round(v, 3) for k, v in parts.items()}
