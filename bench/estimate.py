"""A crude estimate of how long a profile takes, to stop a run far larger than the device suits.

``--profile full`` on a CPU asks a 2-core machine for GPU-sized cases: a run of days, not
minutes. :func:`check` refuses such a run (a profile larger than
:func:`bench.workloads.default_profile` for the backend) unless the user passes the flag
that accepts it, and says what it would cost.

The estimate is deliberately simple, and says so: the seconds each suite's cases took at the
``cpu`` profile on a 2-core CPU (:data:`CPU_PROFILE_S`), scaled by how much larger the asked
profile's cases are, measured by a size product per case (batch × depth × height × width ×
kernel² × seq_len × hidden²: a stand-in for the work, exact for none of the models). It is an
order of magnitude, for deciding whether to start, given at once; ``python -m bench plan``
(:mod:`bench.plan`) estimates each case from its traced program and the device's calibration,
after building every case, which for a profile this large is itself slow.
"""

from __future__ import annotations

import math

from bench.workloads import PROFILES, ConfigError, Suite, default_profile

CPU_PROFILE_S = {
    "binary_adder": 5.0,
    "convnet": 15.0,
    "lstm": 90.0,
    "mdrnn": 270.0,
    "pixelcnn": 90.0,
    "resnet": 30.0,
    "scaling": 10.0,
    "deer": 30.0,
    "trained": 85.0,
}
"""Seconds of building, compiling and timing the cases of each suite at the ``cpu`` profile on
a 2-core CPU, experiments not included. They are data, not constants of the code: per suite,
the compile and timed seconds of a cpu-profile run's rows × 1.5 for building and tracing,
rounded, or for a suite that run lacked, ``python -m bench plan --profile cpu`` on the same
machine (which includes a suite's ``prepare`` step). Refresh them the same way on the machine
the estimate should describe; where the present values come from: ``docs/design-notes.md``."""
UNKNOWN_SUITE_S = 60.0
"""The same for a suite not listed above (one loaded through BENCH_SUITE_MODULES)."""


def size_product(sizes: dict[str, int]) -> float:
    """A case's sizes multiplied, kernel and hidden squared: a crude stand-in for its work."""
    return float(math.prod(v * v if k in ("kernel", "hidden") else v for k, v in sizes.items()))


def estimate_s(suites: list[Suite], profile: str) -> float:
    """Seconds the cases of ``suites`` at ``profile`` would take on a 2-core CPU (crude)."""
    total = 0.0
    for suite in suites:
        asked = sum(size_product(c.sizes) for c in suite.cases(profile))
        known = sum(size_product(c.sizes) for c in suite.cases("cpu")) or 1.0
        total += CPU_PROFILE_S.get(suite.name, UNKNOWN_SUITE_S) * asked / known
    return total


def duration(seconds: float) -> str:
    for unit, size in (("days", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.3g} {unit}"
    return f"{seconds:.0f} s"


def check(suites: list[Suite], profile: str, backend: str, *, allowed: bool, flag: str) -> str:
    """Refuse (:class:`ConfigError`) a profile larger than the backend suits unless
    ``allowed``; returns the estimate's line when the run goes on anyway, else ``""``."""
    suited = default_profile(backend)
    if PROFILES.index(profile) <= PROFILES.index(suited):
        return ""
    line = (
        f"--profile {profile} on {backend} (suited: {suited}): crude estimate "
        f"{duration(estimate_s(suites, profile))} for the cases alone "
        "(the cpu profile's times scaled by the cases' size products)"
    )
    if not allowed:
        raise ConfigError(
            f"{line}; pass {flag} to run it anyway (`python -m bench plan --profile {profile}` "
            "estimates each case, after building them all)"
        )
    return line
