"""Figures as data, and the one place a figure is saved.

Whoever owns a figure declares it here as data (a claim module its :class:`Curve` and its
:class:`WallTimeFigure`); :mod:`bench.plots` draws them and names no claim. A figure particular
to one suite (the DEER heat map, the trained models' curves) is drawn by that suite with the
pyplot imported from here, where the Agg backend is selected (no display needed), and every
figure goes into the run folder through :func:`save`: written aside and renamed by the store,
so a kill never leaves half a PNG.
"""

from __future__ import annotations

import dataclasses
import pathlib
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from bench import store  # noqa: E402

if TYPE_CHECKING:  # (a declaration names the judge's spec; drawing it is the plots')
    from bench.judge import WallTimeSpec

__all__ = ["Curve", "WallTimeFigure", "plt", "save"]


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
class WallTimeFigure:
    """The sweeps a claim's wall-time half reads, for its figure (``bench.plots``): time against
    the claim's depth ``measure``, per variant of each of ``suites`` in ``mode``."""

    claim: str
    suites: tuple[str, ...]
    mode: str
    measure: str
    axes: tuple[str, ...] = ("hw", "depth")
    specs: tuple[WallTimeSpec, ...] = ()
    """The joint fits that decided the claim, drawn through its points."""


def save(fig, path: pathlib.Path, **savefig) -> pathlib.Path:
    """Save ``fig`` as the PNG ``path`` whole (``store.write_whole``), then close it."""
    path = pathlib.Path(path)
    try:
        store.write_whole(path, lambda tmp: fig.savefig(tmp, format="png", **savefig))
    finally:
        plt.close(fig)
    return path
