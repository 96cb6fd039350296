"""GitHub-markdown tables, for the report and for the sections suites add to it.

A leaf module: suites, claims and the report all write their tables through :func:`table`,
and it imports nothing of the suite. Numbers keep 3 significant digits, and a cell can be cut
at a word (:func:`shorten`; the CSVs keep the full text).
"""

from __future__ import annotations

import pandas as pd

MAX_CELL = 160
"""The longest text a report's table cell shows; longer text is cut at a word with "…"."""


def fmt(v) -> str:
    """A cell's text: blank for a missing value, 3 significant digits for a float."""
    if v is None or v is pd.NA or (isinstance(v, float) and v != v):
        return ""
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


def shorten(text: str, limit: int = MAX_CELL) -> str:
    """``text`` cut at a word boundary to at most ``limit`` characters, ending in "…"."""
    text = " ".join(str(text).split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    return (cut[: cut.rfind(" ")] if " " in cut[limit // 2 :] else cut).rstrip(" ,;:") + "…"


def table(df: pd.DataFrame, columns: list[str] | None = None, max_cell: int | None = None) -> str:
    """``df`` (its ``columns``) as a markdown table, each cell cut to ``max_cell``."""
    columns = columns or list(df.columns)
    if df.empty:
        return "_(none)_\n"
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for rec in df[columns].to_dict("records"):
        cells = [fmt(rec[c]).replace("\n", " ") for c in columns]
        if max_cell:
            cells = [shorten(c, max_cell) for c in cells]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"
