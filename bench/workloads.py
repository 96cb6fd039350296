"""What to measure: cases, suites and profiles, as data.

A *suite* is one model family (``lstm``, ``pixelcnn``, ...). For a profile it lists its
*cases*: one model, variant, mode and set of sizes each. A case knows its prediction
(``seq_steps_pred``: the sequential steps the seed's analysis predicts) and how to *build*
its workload: a pure function plus device-placed arguments, which the harness in
``bench.timing`` compiles and times. Building happens inside the runner's error guard, so a
case whose model cannot be built becomes a row with ``status = error``, not a crash.

Adding a model is one module in ``bench/suites/`` that calls :func:`register` (its claims, if
any, one module in ``bench/claims/``). Suites kept outside the package are loaded from the
modules named in ``BENCH_SUITE_MODULES`` (comma-separated import paths).
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import pathlib
import pkgutil
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

MODES = ("train", "forward", "sample")
REGIMES = ("work", "latency")
"""A case's regime: sized for the work to dominate (``work``), or small enough that the
sequential depth should (``latency``: the sweeps that judge claims about sequential steps)."""
PROFILES = ("smoke", "cpu", "full")

# Size columns every row carries (empty where a model has no such axis).
SIZE_FIELDS = ("batch", "depth", "height", "width", "kernel", "seq_len", "hidden")


class ConfigError(ValueError):
    """A bad user-supplied configuration; the CLI prints it as one line and exits 2."""


@dataclasses.dataclass
class Workload:
    """A built case: ``fn(*args)`` is the pure computation that gets jit-compiled and timed.

    ``fn`` must be a pure function of arrays/pytrees (NNX modules already split into a
    graphdef closed over and a state passed in), so the timed region is compiled maths only.
    ``health`` looks at the output once, after the warm-up, and returns a status other than
    ``"ok"`` (``"nan"``, ``"range"``) to replace the timing with that verdict.
    ``extra`` holds further columns for the row (analytic FLOPs, sampler iterations, ...).
    ``batch_argnum`` is the index in ``args`` of the data batch (a pytree whose leaves have
    the batch as leading axis): data-parallel runs shard that argument and replicate the rest.
    ``note`` explains, op by op, a difference in work from the variants it is compared with.
    """

    fn: Callable[..., Any]
    args: tuple
    n_params: int | None = None
    health: Callable[[Any], str] | None = None
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)
    nnx_mode: str = "functional"  # graphdef closed over, state passed in: no NNX traversal
    batch_argnum: int | None = None
    # trip count of a data-dependent while loop, for the span/work count (bench.structure)
    while_trip_count: int | None = None
    # for the row's note: why this case's numbers differ from its compared variants'
    note: str = ""


IDENTITY = ("suite", "model", "variant", "mode", *SIZE_FIELDS, "n_devices")
"""The columns that identify a case within a run, and the one definition of that identity:
``--resume`` (which cases are done), ``samples.csv`` (which row a sample belongs to), the
analysis, fits, report and ``compare`` all match cases by :func:`case_key` over these."""


def case_key(record: Mapping[str, Any]) -> tuple:
    """A case's identity as a tuple of ``str`` / ``int`` / ``None``, from any record of it:
    a row dict, a ``csv.DictReader`` record (strings, ``""`` when missing) or a pandas row
    (``NA`` when missing)."""
    return tuple(_plain(record.get(column)) for column in IDENTITY)


def _plain(value):
    missing = value is None or value is pd.NA or value == ""
    if missing or (isinstance(value, float) and value != value):  # NaN
        return None
    if isinstance(value, str):
        return int(value) if value.lstrip("-").isdigit() else value
    if isinstance(value, bool):
        return value
    if isinstance(value, int | np.integer) or (isinstance(value, float) and value.is_integer()):
        return int(value)
    return value


@dataclasses.dataclass(frozen=True)
class BuildContext:
    """What a case is built for, handed to the cases that need it (``Case.needs_context``).

    - a run: ``run_dir`` is its folder, where the suite's ``prepare`` wrote (trained weights);
    - a plan (``python -m bench plan``, ``planning``): nothing is prepared or run, so a case that
      reads prepared weights builds with fresh ones and one that measures a trip count at build
      takes a typical one: the same program, to estimate;
    - neither (a test, a notebook): a case that needs its run folder refuses to build.
    """

    run_dir: pathlib.Path | None = None
    planning: bool = False

    def folder(self) -> pathlib.Path | None:
        """The run folder; ``None`` while planning; a ``ConfigError`` outside a run."""
        if self.planning:
            return None
        if self.run_dir is None:
            raise ConfigError("this case needs a run folder (it reads what its suite prepared)")
        return pathlib.Path(self.run_dir)


PLANNING = BuildContext(planning=True)


@dataclasses.dataclass(frozen=True)
class Case:
    """One measurement: a model, variant, mode and sizes, and how to build its workload.

    ``devices`` is set only by a case that places its own data over that many devices (the
    scaling suite); every other case runs on one device, or data-parallel over the run's
    ``--devices`` when :meth:`placement` allows it.
    """

    suite: str
    model: str
    variant: str
    mode: str
    build: Callable[[], Workload] = dataclasses.field(compare=False, repr=False)
    sizes: dict[str, int] = dataclasses.field(default_factory=dict, compare=False)
    seq_steps_pred: int | None = None
    seed: int = 0
    devices: int | None = None
    regime: str = "work"
    interleave: str | None = None  # a sweep group shared across suites (see sweep_group)
    needs_context: bool = False  # build takes a BuildContext (see workload)

    def __post_init__(self):
        if self.mode not in MODES:
            raise ConfigError(f"mode {self.mode!r} is not one of {', '.join(MODES)}")
        if self.regime not in REGIMES:
            raise ConfigError(f"regime {self.regime!r} is not one of {', '.join(REGIMES)}")
        unknown = set(self.sizes) - set(SIZE_FIELDS)
        if unknown:
            raise ConfigError(f"unknown size fields {sorted(unknown)}; allowed: {SIZE_FIELDS}")

    def placement(self, run_devices: int) -> tuple[int, str]:
        """``(n_devices, reason)``: where this case runs in a run with ``--devices run_devices``.

        Training cases whose batch divides ``run_devices`` run data-parallel over them; the
        others run on one device, and the reason (empty when nothing was asked) says why.
        """
        if self.devices is not None:
            return self.devices, ""
        if run_devices == 1:
            return 1, ""
        batch = self.sizes.get("batch")
        if self.mode != "train":
            return 1, f"one device: data parallelism splits training batches, not {self.mode}"
        if batch is None:
            return 1, "one device: this case has no batch to split"
        if batch % run_devices:
            return 1, f"one device: batch {batch} is not divisible by --devices {run_devices}"
        return run_devices, ""

    def workload(self, context: BuildContext | None = None) -> Workload:
        """Build this case's workload. ``context`` says what for (a run, a plan, neither); only
        a case that declares ``needs_context`` (it reads its run folder, or builds differently
        for a plan) is handed it."""
        if self.needs_context:
            return self.build(context or BuildContext())
        return self.build()

    def key(self, run_devices: int = 1) -> tuple:
        """This case's identity (:data:`IDENTITY`) in a run with ``--devices run_devices``."""
        record = dict(
            suite=self.suite,
            model=self.model,
            variant=self.variant,
            mode=self.mode,
            **self.sizes,
            n_devices=self.placement(run_devices)[0],
        )
        return case_key(record)

    @property
    def sweep_group(self) -> str | None:
        """The cases timed together in interleaved rounds (``bench.timing.time_rounds``):
        every latency-regime case of one suite and mode (the sweeps a wall-time verdict reads,
        all their axes and variants), or the group a suite names in ``interleave`` (points
        compared across suites, such as PixelCNN's and the MDRNN's matched training steps).
        ``None``: timed alone, back to back."""
        if self.interleave is not None:
            return self.interleave
        return f"{self.suite}/{self.mode}" if self.regime == "latency" else None

    @property
    def label(self) -> str:
        sizes = " ".join(f"{k}={v}" for k, v in self.sizes.items())
        devices = f" devices={self.devices}" if self.devices is not None else ""
        return f"{self.suite}/{self.model}[{self.variant}] {self.mode} {sizes}{devices}"


SECTION_PLACES = ("variants", "fits")


@dataclasses.dataclass(frozen=True)
class Section:
    """Markdown a suite adds to ``report.md`` about its own results: its tables, and its
    figures (a section that draws a PNG writes it into the run folder and links it).

    ``after`` names the report's generic part the section follows: ``"variants"`` (the
    variant ratios table) or ``"fits"`` (the sequential-depth fits). The sections after one
    part are in ascending ``order``, then by suite name.
    """

    text: str
    after: str = "fits"
    order: int = 0

    def __post_init__(self):
        if self.after not in SECTION_PLACES:
            raise ConfigError(f"section after {self.after!r}: one of {', '.join(SECTION_PLACES)}")


@dataclasses.dataclass(frozen=True)
class Suite:
    """A model family: the cases it times, per profile, and what the report says of them.

    ``cases(profile)`` returns the list of :class:`Case` to time. ``baselines`` names, per
    mode, the variant the report divides the others' times by. ``prepare(config, run_dir)``
    (optional) is work its cases need done first, such as training the models they sample:
    the runner calls it before the suite's cases, once per run folder (it skips what the
    folder already holds, so a resume reuses it); cases find its outputs under
    the run folder their :class:`BuildContext` names. The claims about a suite's model live in
    ``bench/claims/``, not here.

    The output a suite owns, so that ``bench.report``, ``bench.plots`` and ``bench.compare``
    name no suite (as a benchmark's scoring knows no workload):

    - ``headline(df)``: clauses added to the suite's line of the report's summary, after its
      variant ratios, from the run's measurements (all suites' rows);
    - ``report_sections(run_dir, df)``: its own sections of ``report.md`` (:class:`Section`),
      with the figures they draw. A suite's figures are drawn by its sections, or by its
      ``prepare`` where they picture work done there (the trained models' samples): the
      generic sweep plots and the claims' curves (:class:`bench.claims.Curve`) need no hook;
    - ``calibration_case``: the ``model`` and ``variant`` of a case whose time stands for the
      device's speed, which ``python -m bench compare --normalise`` divides timings by.

    Both report hooks are called for the suites of the run and return nothing when their
    data are not there.
    """

    name: str
    description: str
    cases: Callable[[str], list[Case]]
    baselines: dict[str, str] = dataclasses.field(default_factory=dict)
    prepare: Callable[[Any, Any], None] | None = None
    prepare_cost_s: dict[str, float] = dataclasses.field(default_factory=dict)  # for the plan
    unavailable: Callable[[], dict[str, str]] | None = None  # variants this machine can't run
    headline: Callable[[pd.DataFrame], list[str]] | None = None
    report_sections: Callable[[Any, pd.DataFrame], list[Section]] | None = None
    calibration_case: dict[str, str] | None = None


_REGISTRY: dict[str, Suite] = {}


def register(suite: Suite) -> Suite:
    _REGISTRY[suite.name] = suite
    return suite


_BROKEN: dict[str, str] = {}  # plugin module -> why it could not be imported


def _load_all() -> None:
    import bench.suites

    for info in pkgutil.iter_modules(bench.suites.__path__):
        importlib.import_module(f"bench.suites.{info.name}")
    _BROKEN.clear()
    for name in filter(None, os.environ.get("BENCH_SUITE_MODULES", "").split(",")):
        name = name.strip()
        try:
            importlib.import_module(name)
        except Exception as e:  # a broken plugin must not break the suites that do load
            lines = str(e).strip().splitlines()
            _BROKEN[name] = f"{type(e).__name__}: {lines[0] if lines else ''}"


def plugin_errors() -> list[str]:
    """One line per module of ``BENCH_SUITE_MODULES`` that could not be imported."""
    return [f"BENCH_SUITE_MODULES: cannot import {n!r}: {why}" for n, why in _BROKEN.items()]


def suites() -> dict[str, Suite]:
    """The registered suites (those of a plugin that fails to import are missing: see
    :func:`plugin_errors`)."""
    _load_all()
    return dict(sorted(_REGISTRY.items()))


def get_suites(names: Iterable[str] | None) -> list[Suite]:
    """The named suites, or all of them; a broken plugin refuses "all" (a run would silently
    lack its suites), and a name it may have defined."""
    available = suites()
    if not names:
        if _BROKEN:
            raise ConfigError("; ".join(plugin_errors()))
        return list(available.values())
    chosen = []
    for name in names:
        if name not in available:
            hint = f" ({'; '.join(plugin_errors())})" if _BROKEN else ""
            raise ConfigError(f"unknown suite {name!r}; available: {', '.join(available)}{hint}")
        chosen.append(available[name])
    return chosen


def case_filter(suites: list[Suite], profile: str, models=None, variants=None):
    """A predicate keeping the cases of the named models/variants; unknown names are refused."""
    cases = [c for s in suites for c in s.cases(profile)]
    for flag, names, field in (("--model", models, "model"), ("--variant", variants, "variant")):
        known = sorted({getattr(c, field) for c in cases})
        for name in names or ():
            if name not in known:
                raise ConfigError(
                    f"unknown {field} {name!r} for {flag}; available: {', '.join(known)}"
                )

    def keep(case: Case) -> bool:
        return (not models or case.model in models) and (not variants or case.variant in variants)

    return keep


def check_profile(profile: str) -> str:
    if profile not in PROFILES:
        raise ConfigError(f"unknown profile {profile!r}; available: {', '.join(PROFILES)}")
    return profile


def default_profile(platform: str) -> str:
    """CPU gets a profile that finishes in minutes; accelerators get the full sizes."""
    return "cpu" if platform == "cpu" else "full"
