"""The configuration of a run: built once from the command line, or from ``env.json`` on
``--resume``, then frozen and handed whole to the runner."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from bench.workloads import PROFILES, ConfigError, case_filter

DEFAULT_REPEATS = {"smoke": 2, "cpu": 5, "full": 10}
DEFAULT_ROUNDS = {"smoke": 3, "cpu": 12, "full": 20}
"""Interleaved rounds of a sweep group (``bench.timing.time_rounds``): the bootstrap of the
fits resamples them, so a dozen is the least that gives it an interval worth the name."""


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """What a run measures and how. Every value is the one actually used (defaults resolved),
    so ``env.json`` records it and a resume continues with the same settings."""

    profile: str
    suites: tuple[str, ...]
    repeats: int
    warmup: int = 1
    rounds: int = 12
    models: tuple[str, ...] = ()
    variants: tuple[str, ...] = ()
    case_timeout_s: float | None = None
    devices: int = 1
    experiments: bool = True
    data: str | None = None  # a local mnist.npz for the trained models (default: the digits)
    compile_cache: str | None = None  # JAX's persistent compilation cache folder (None: off)
    trace_dir: str | None = None  # jax.profiler traces of the timed calls, one folder per case

    def __post_init__(self):
        for name in ("suites", "models", "variants"):  # a name given twice is one name
            object.__setattr__(self, name, tuple(dict.fromkeys(getattr(self, name))))
        if self.profile not in PROFILES:
            raise ConfigError(f"unknown profile {self.profile!r}; available: {', '.join(PROFILES)}")
        for name in ("repeats", "warmup", "rounds", "devices"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        timeout = self.case_timeout_s
        finite = isinstance(timeout, int | float) and 0 < timeout < math.inf
        if timeout is not None and not finite:
            raise ConfigError(f"case timeout must be a positive finite number, got {timeout!r}")

    @classmethod
    def create(
        cls,
        *,
        profile: str,
        suites,
        repeats: int | None = None,
        warmup: int | None = None,
        rounds: int | None = None,
        **options,
    ) -> RunConfig:
        """A new run's configuration; ``repeats``, ``warmup`` and ``rounds`` default by
        profile."""
        if profile not in DEFAULT_REPEATS:
            raise ConfigError(f"unknown profile {profile!r}; available: {', '.join(PROFILES)}")
        options = {k: tuple(v) if isinstance(v, list) else v for k, v in options.items()}
        return cls(
            profile=profile,
            suites=tuple(suites),
            repeats=repeats or DEFAULT_REPEATS[profile],
            warmup=warmup or 1,
            rounds=rounds or DEFAULT_ROUNDS[profile],
            **{k: v for k, v in options.items() if v is not None},
        )

    def case_filter(self, suites):
        """The run's cases among those of ``suites`` (its ``--model`` / ``--variant``), as a
        predicate; a name no case has is refused (:func:`bench.workloads.case_filter`)."""
        return case_filter(suites, self.profile, self.models, self.variants)

    def to_env(self) -> dict[str, Any]:
        """The fields as ``env.json`` stores them (JSON lists for the tuples)."""
        return {
            f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v
            for f in dataclasses.fields(self)
        }

    @classmethod
    def from_env(cls, env: Mapping[str, Any]) -> RunConfig:
        """The configuration a run recorded in its ``env.json``."""
        fields = {f.name for f in dataclasses.fields(cls)}
        missing = {"profile", "suites", "repeats"} - set(env)
        if missing:
            raise ConfigError(f"env.json has no {', '.join(sorted(missing))}: not a run's record")
        values = {k: env[k] for k in fields if k in env and env[k] is not None}
        for name in ("suites", "models", "variants"):
            if name in values:
                values[name] = tuple(values[name])
        return cls(**values)
