"""The wall-time judge: does the clock follow a claim's count of sequential steps better than
rival counts fixed in advance? It knows no claim: a claim hands it a :class:`WallTimeSpec`.

Over every latency-regime point of one suite and mode that the claim reads (its *design*:
one sweep group, timed in interleaved rounds), fit jointly

    t = c_v + a·work + b·count

with c_v the fixed cost of a call of variant v (one per variant: different programs), a the
cost of a FLOP and b the cost of one step of the count, both shared by every variant; none of
them negative (a negative fixed cost or cost per step is no physical process). Least squares
on relative error, (t − t̂)/t, to each point's median over the rounds.

The same model is fitted with the claim's count and with each rival count (always with
:data:`NO_COUNT`: the work alone), and each is scored by its *held-out* error: the median
over points of the leave-one-out relative error (PRESS residuals of the fit's active terms).
95% intervals come from :data:`BOOTSTRAP` resamples of the rounds (whole rounds: the noise a
busier machine adds hits every point of a round alike).

A design decides only where the count and the work move independently: the count's variance
inflation factor against the work and the variants' fixed costs (in the fit's weighting) must
stay under :data:`VIF_MAX`, and so must the count's against each rival's. Where the work and
the count grow together, no data can say which one the clock follows: *not identifiable*.

The rule, stated once in ``docs/claims.md`` (:func:`rule_text`):

- INCONCLUSIVE with fewer than :data:`MIN_POINTS` points or :data:`MIN_ROUNDS` rounds, or a
  design that is not identifiable;
- INCONCLUSIVE when no model predicts held-out time within :data:`LOF_MAX` (lack of fit: a
  model that does not describe the time can neither confirm nor refute);
- FAIL iff the claim's model fits and the count's share of the fitted time, where it is
  largest, has its 95% interval below :data:`MIN_SHARE`, or some rival that fits predicts
  held-out time as well or better (the 95% interval of its error over the claim's lies at or
  below 1);
- PASS iff the count's share lies above :data:`MIN_SHARE`, the claim's model predicts held-out
  time within :data:`LOF_MAX` (lack of fit), and every rival's held-out error is above the
  claim's (interval above 1) by at least :data:`MARGIN` (its median);
- else INCONCLUSIVE, saying which condition the data left open.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd
from scipy.optimize import nnls

from bench.workloads import case_key

MIN_POINTS = 8
"""No verdict from a design of fewer points..."""
MIN_ROUNDS = 8
"""...or fewer interleaved rounds (3 rounds gave intervals that covered 73-77% of the time)."""
VIF_MAX = 30.0
"""A count whose variance inflation factor against the other terms exceeds this cannot be
told apart from them: the design is not identifiable. (The usual 5-10 is for regressors on
one scale; in the fit's relative weighting the factor moves with the times themselves, 11-17
on PixelCNN's separating design for times that follow a per-pixel count. 30 is R² = 0.967: a
count that is nearly a combination of the other terms.)"""
MIN_SHARE = 0.10
"""The count must account for at least this share of the fitted time where it is largest."""
LOF_MAX = 0.15
"""Lack of fit: the claim's model must predict held-out time within this median relative
error to pass."""
MARGIN = 1.2
"""Every rival's held-out error must be at least this many times the claim's to pass."""
BOOTSTRAP = 200
"""Bootstrap resamples of the rounds."""
UNDECIDED = ("no latency points", "too few", "not identifiable")
"""The reasons (``facts["reason"]``) of a design that decided nothing: no fit to draw, no
interval to quote."""


@dataclasses.dataclass(frozen=True)
class Count:
    """A count of sequential steps per point: ``of(rows)`` gives one value per row of
    ``measurements.csv``; ``text`` says how, for the rule."""

    name: str
    text: str
    of: Callable[[pd.DataFrame], np.ndarray] = dataclasses.field(compare=False)


def column(name: str, col: str) -> Count:
    """A count read from a column of the measurements (``span_ops``, ``steps_executed``)."""
    return Count(name, f"`{col}`", lambda rows: rows[col].to_numpy(float))


def shapes(count: Count) -> tuple[Count, Count]:
    """The count's square root and square: time that grows slower or faster than the count
    itself, rivals of every claim (a linear cost per step is what the claim predicts)."""
    root = Count(f"√{count.name}", f"√ of {count.text}", lambda rows: np.sqrt(count.of(rows)))
    square = Count(f"{count.name}²", f"{count.text} squared", lambda rows: count.of(rows) ** 2)
    return root, square


NO_COUNT = Count("no count", "none: time follows the work alone", lambda rows: np.zeros(len(rows)))


@dataclasses.dataclass(frozen=True)
class WallTimeSpec:
    """A wall-time claim as the judge reads it: the latency-regime points of ``suite`` /
    ``mode`` / ``variants`` (the design), the claim's ``count`` and its ``rivals`` (fixed in
    advance; :data:`NO_COUNT` is always one), and ``same`` naming counts that coincide with
    the claim's here (say, the seed's formula) and so are no rival."""

    claim: str
    suite: str
    mode: str
    variants: tuple[str, ...]
    count: Count
    rivals: tuple[Count, ...]
    what: str
    same: str = ""

    @property
    def all_rivals(self) -> tuple[Count, ...]:
        """The work alone, the spec's rivals, and the claim's count in two other shapes."""
        return (NO_COUNT, *self.rivals, *shapes(self.count))


# --- The design: points, their rounds, the model's columns ----------------------------------


@dataclasses.dataclass(frozen=True)
class Design:
    """The points of one joint fit: their rows, times per round (points × rounds, NaN where a
    point lacks a round), work and variant."""

    rows: pd.DataFrame
    by_round: np.ndarray
    work: np.ndarray
    variant: np.ndarray  # an index into ``variants`` per point
    variants: tuple[str, ...]

    @property
    def times(self) -> np.ndarray:
        return np.nanmedian(self.by_round, axis=1)

    def columns(self, count: Count) -> np.ndarray:
        """The model's columns: one fixed cost per variant, the work, and the count (none for
        :data:`NO_COUNT`)."""
        fixed = np.eye(len(self.variants))[self.variant]
        cols = [fixed, self.work[:, None]]
        if count is not NO_COUNT:
            cols.append(count.of(self.rows)[:, None])
        return np.concatenate(cols, axis=1).astype(float)


def design(
    df: pd.DataFrame, rounds: Mapping[tuple, pd.Series], spec: WallTimeSpec
) -> Design | None:
    """The spec's latency-regime points, with their rounds; None when there are none."""
    rows = df[
        (df.suite == spec.suite)
        & (df["mode"] == spec.mode)
        & df.variant.isin(spec.variants)
        & (df.status == "ok")
        & (df.regime == "latency")
        & df.time_median_s.notna()
    ]
    rows = rows.dropna(subset=["work_flops"]).reset_index(drop=True)
    if rows.empty:
        return None
    series = [rounds.get(case_key(r)) for r in rows.to_dict("records")]
    if any(s is None for s in series):  # timed back to back: no rounds, one column
        by_round = rows.time_median_s.to_numpy(float)[:, None]
    else:
        by_round = pd.concat(series, axis=1).sort_index().to_numpy(float).T
    variants = tuple(v for v in spec.variants if (rows.variant == v).any())
    return Design(
        rows=rows,
        by_round=by_round,
        work=rows.work_flops.to_numpy(float),
        variant=rows.variant.map({v: i for i, v in enumerate(variants)}).to_numpy(int),
        variants=variants,
    )


# --- Fits ---------------------------------------------------------------------------------


def fit(X: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Non-negative least squares of t on X, on relative error: minimise Σ ((t − X·β)/t)²."""
    Xw = X / t[:, None]
    scale = np.abs(Xw).max(axis=0)
    scale[scale == 0] = 1.0
    coef, _ = nnls(Xw / scale, np.ones_like(t), maxiter=50 * X.shape[1])
    return coef / scale


def held_out(X: np.ndarray, t: np.ndarray, coef: np.ndarray) -> np.ndarray:
    """Each point's leave-one-out relative error: its residual over 1 − its leverage in the
    fit of the active (non-zero) terms. NaN for a point that alone sets a term."""
    Xw = X[:, coef > 0] / t[:, None]
    resid = 1.0 - (X @ coef) / t
    if Xw.shape[1] == 0:
        return np.abs(resid)
    leverage = np.einsum("ij,ji->i", Xw, np.linalg.pinv(Xw))
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.abs(resid / (1.0 - leverage))
    return np.where(leverage < 1 - 1e-9, out, np.nan)


def error(X: np.ndarray, t: np.ndarray) -> tuple[float, np.ndarray]:
    """The model's held-out error (median over points) and its coefficients."""
    coef = fit(X, t)
    errors = held_out(X, t, coef)
    errors = errors[np.isfinite(errors)]
    return (float(np.median(errors)) if len(errors) else math.nan), coef


def vif(target: np.ndarray, others: np.ndarray, t: np.ndarray) -> float:
    """The variance inflation factor of the column ``target`` against ``others``, in the fit's
    relative weighting: 1 / (1 − R²) of ``target`` regressed on them (inf when it is one of
    their combinations, a count that does not vary included)."""
    y, A = target / t, others / t[:, None]
    sst = float(((y - y.mean()) ** 2).sum())
    if sst <= 1e-30 * max(float(y @ y), 1e-300):
        return math.inf
    coef, *_ = np.linalg.lstsq(A, y, rcond=None)
    r2 = max(0.0, 1.0 - float(((y - A @ coef) ** 2).sum()) / sst)
    return 1.0 / (1.0 - r2) if r2 < 1 - 1e-12 else math.inf


def _interval(values) -> tuple[float, float]:
    values = np.asarray([v for v in values if v == v], float)
    if len(values) < 20:
        return math.nan, math.nan
    lo, hi = np.percentile(values, [2.5, 97.5])
    return float(lo), float(hi)


def _share(X: np.ndarray, coef: np.ndarray) -> float:
    """The count's (last column's) share of the fitted time where it is largest."""
    fitted = X @ coef
    return float(np.max(coef[-1] * X[:, -1] / np.where(fitted > 0, fitted, np.inf)))


# --- The judge ----------------------------------------------------------------------------


def judge(
    spec: WallTimeSpec,
    df: pd.DataFrame,
    rounds: Mapping[tuple, pd.Series],
    *,
    boot: int = BOOTSTRAP,
    seed: int = 0,
) -> tuple[str, dict]:
    """The verdict on a wall-time claim and the facts that decided it (the module docstring
    says the rule). ``rounds``: each interleaved case's per-round medians
    (``bench.fits.round_times``)."""
    d = design(df, rounds, spec)
    if d is None:
        return "INCONCLUSIVE", {"reason": "no latency points"}
    facts = _fit_facts(spec, d, boot, seed)
    return _decide(facts), facts


def _fit_facts(spec: WallTimeSpec, d: Design, boot: int, seed: int) -> dict:
    """Everything the rule reads: the design's size, identifiability, each model's held-out
    error and the claim's coefficients, with bootstrap intervals."""
    t = d.times
    counts = (spec.count, *spec.all_rivals)
    X = {c.name: d.columns(c) for c in counts}
    claim_X = X[spec.count.name]
    base = d.columns(NO_COUNT)
    facts: dict = {
        "points": len(t),
        "rounds": int(d.by_round.shape[1]) if d.by_round.shape[1] > 1 else 0,
        "variants": list(d.variants),
        "count": spec.count.name,
        "rivals": [r.name for r in spec.all_rivals],
        "vif": vif(claim_X[:, -1], base, t),
        "vif_rivals": {r.name: vif(claim_X[:, -1], X[r.name], t) for r in spec.rivals},
    }
    errors = {name: error(x, t) for name, x in X.items()}
    coef = errors[spec.count.name][1]
    v = len(d.variants)
    facts |= {
        "error": {name: e for name, (e, _) in errors.items()},
        "c_s": dict(zip(d.variants, coef[:v].tolist(), strict=True)),
        "a_s_per_flop": float(coef[v]),
        "b_s_per_step": float(coef[-1]),
        "share": _share(claim_X, coef),
    }
    draws = _bootstrap(d, X, boot, seed) if facts["rounds"] >= 2 else []
    facts["ratio"] = {
        r.name: errors[r.name][0] / errors[spec.count.name][0]
        if errors[spec.count.name][0] > 0
        else math.inf
        for r in spec.all_rivals
    }
    facts["ratio_ci"] = {
        r.name: _interval(
            [dr[r.name][0] / dr[spec.count.name][0] for dr in draws if dr[spec.count.name][0] > 0]
        )
        for r in spec.all_rivals
    }
    claim_coefs = [dr[spec.count.name][1] for dr in draws]
    facts["a_ci"] = _interval([c[v] for c in claim_coefs])
    facts["b_ci"] = _interval([c[-1] for c in claim_coefs])
    facts["share_ci"] = _interval([_share(claim_X, c) for c in claim_coefs])
    return facts


def _bootstrap(d: Design, X: dict, boot: int, seed: int) -> list[dict]:
    """Each model's (held-out error, coefficients) on ``boot`` resamples of the rounds."""
    rng = np.random.default_rng(seed)
    n_rounds = d.by_round.shape[1]
    draws = []
    for _ in range(boot):
        t = np.nanmedian(d.by_round[:, rng.integers(0, n_rounds, n_rounds)], axis=1)
        if np.isfinite(t).all() and (t > 0).all():
            draws.append({name: error(x, t) for name, x in X.items()})
    return draws


def _decide(f: dict) -> str:
    """The rule on the facts; ``f["reason"]`` names the branch that decided."""
    tangled = [name for name, v in f["vif_rivals"].items() if v > VIF_MAX]
    if f["vif"] > VIF_MAX or tangled:
        f["reason"] = "not identifiable"
        f["tangled"] = (["the work"] if f["vif"] > VIF_MAX else []) + tangled
        return "INCONCLUSIVE"
    if f["points"] < MIN_POINTS or f["rounds"] < MIN_ROUNDS:
        f["reason"] = "too few"
        return "INCONCLUSIVE"
    share_lo, share_hi = f["share_ci"]
    fits = {name for name, e in f["error"].items() if e <= LOF_MAX}
    if not fits:
        f["reason"], f["open"] = "open", ["lack of fit"]
        return "INCONCLUSIVE"
    beaten_by = [r for r in f["rivals"] if r in fits and f["ratio_ci"][r][1] <= 1]
    if (share_hi < MIN_SHARE and f["count"] in fits) or beaten_by:
        f["reason"] = "beaten" if beaten_by else "no share"
        f["beaten_by"] = beaten_by
        return "FAIL"
    open_ = []
    if not share_lo >= MIN_SHARE:
        open_.append("share")
    if not f["error"][f["count"]] <= LOF_MAX:
        open_.append("lack of fit")
    if not all(f["ratio_ci"][r][0] > 1 for r in f["rivals"]):
        open_.append("noise")
    elif not all(f["ratio"][r] >= MARGIN for r in f["rivals"]):
        open_.append("margin")
    f["open"] = open_
    f["reason"] = "open" if open_ else "beats every rival"
    return "INCONCLUSIVE" if open_ else "PASS"


def predicted(spec: WallTimeSpec, df: pd.DataFrame, rounds) -> dict[tuple, float]:
    """The claim's joint fit (with its own count) at each point of its design, by case key:
    what its figure draws (empty without a design)."""
    d = design(df, rounds, spec)
    if d is None:
        return {}
    X = d.columns(spec.count)
    at = X @ fit(X, d.times)
    return {case_key(r): float(t) for r, t in zip(d.rows.to_dict("records"), at, strict=True)}


# --- Words ----------------------------------------------------------------------------------


def rule_text(spec: WallTimeSpec | None = None) -> str:
    """The rule as a verdict states it (``spec``: its counts named; None: the docs' form)."""
    if spec is None:
        count = "the claim's count"
        rivals = "each rival count fixed in advance (the work alone included)"
    else:
        count = f"{spec.count.name} ({spec.count.text})"
        rivals = "; ".join(f"{r.name} ({r.text})" for r in spec.all_rivals)
        if spec.same:
            rivals += f"; {spec.same}"
    return (
        f"over every latency-regime point of the design, t = c_v + a·work + b·count fitted "
        f"jointly (c per variant; a, b shared; none negative; relative least squares on the "
        f"medians over interleaved rounds), with the count {count} and with each rival: "
        f"{rivals}; held-out error = median leave-one-out relative error; 95% intervals from "
        f"{BOOTSTRAP} resamples of the rounds. INCONCLUSIVE with < {MIN_POINTS} points or "
        f"< {MIN_ROUNDS} rounds, or when not identifiable (the count's variance inflation "
        f"against the work or a rival's count > {VIF_MAX:g}), or when no model's held-out error "
        f"is ≤ {LOF_MAX:.0%}; FAIL iff the count's share of the fitted time where largest is "
        f"below {MIN_SHARE:.0%} (interval) in a model that fits, or a rival that fits has a "
        f"held-out error at most the claim's (interval of the ratio ≤ 1); PASS iff the "
        f"share is above {MIN_SHARE:.0%}, the claim's held-out error ≤ {LOF_MAX:.0%} and every "
        f"rival's is above it (interval > 1) by ≥ {MARGIN:g}× (median); else INCONCLUSIVE"
    )


def _ci(pair, fmt="{:.3g}") -> str:
    lo, hi = pair
    return f" [{fmt.format(lo)}, {fmt.format(hi)}]" if lo == lo else ""


def headline(f: dict) -> str:
    """What decided, in one clause (no ``;``: the report's summary shows it): the branch of the
    rule, with the claim's held-out error and its closest rival's where they were fitted."""
    if "error" not in f or f["reason"] in UNDECIDED:
        return why(f)
    closest = min(f["rivals"], key=lambda r: f["ratio"][r])
    return (
        f"{why(f)} (held-out error {f['error'][f['count']]:.3f} with {f['count']}, "
        f"{f['error'][closest]:.3f} with {closest}, the closest rival)"
    )


def measured_text(f: dict) -> str:
    """What decided (:func:`headline`), then the facts in words (empty facts say so instead of
    printing NaN)."""
    if f["reason"] == "no latency points":
        return why(f)
    head = (
        f"{f['points']} points ({', '.join(f['variants'])}), {f['rounds']} rounds; "
        f"variance inflation of the count {f['vif']:.3g} against the work"
        + "".join(f", {v:.3g} against {n}" for n, v in f["vif_rivals"].items())
    )
    if "error" not in f:
        return f"{headline(f)}; {head}"
    fixed = ", ".join(f"{v} {c * 1e6:.3g} µs" for v, c in f["c_s"].items())
    per_flop = f"{f['a_s_per_flop'] * 1e9:.3g}{_ci(tuple(x * 1e9 for x in f['a_ci']))}"
    errors = "; ".join(
        f"{name} {f['error'][name]:.3f}"
        + (
            ""
            if name == f["count"]
            else f" (×{f['ratio'][name]:.3g}{_ci(f['ratio_ci'][name])} the claim's)"
        )
        for name in (f["count"], *f["rivals"])
    )
    return (
        f"{headline(f)}; {head}; with {f['count']}: c = {fixed}, a = {per_flop} ns/FLOP, "
        f"b = {f['b_s_per_step'] * 1e9:.3g} ns per "
        f"step{_ci(tuple(x * 1e9 for x in f['b_ci']))}, the count's share where largest "
        f"{f['share']:.0%}{_ci(f['share_ci'], '{:.0%}')}; held-out error: {errors}"
    )


def why(f: dict) -> str:
    """The branch of the rule that decided, in words."""
    reason = f["reason"]
    if reason == "no latency points":
        return "no latency-regime point measured (run `--profile cpu` or larger)"
    if reason == "too few":
        return (
            f"too few to decide ({f['points']} points, {f['rounds']} rounds; {MIN_POINTS} and "
            f"{MIN_ROUNDS} needed: run `--profile cpu` or larger)"
        )
    if reason == "not identifiable":
        return (
            "not identifiable: the count cannot be told from "
            + " or ".join(f["tangled"])
            + f" in this design (variance inflation > {VIF_MAX:g})"
        )
    if reason == "no share":
        return f"the count explains under {MIN_SHARE:.0%} of the time at every point"
    if reason == "beaten":
        return "predicted as well or better without the claim's count, by " + ", ".join(
            f["beaten_by"]
        )
    if reason == "beats every rival":
        return (
            f"the claim's count predicts held-out time best, ≥ {MARGIN:g}× better than every rival"
        )
    words = {
        "share": f"the count's share is not surely above {MIN_SHARE:.0%}",
        "lack of fit": f"no count fits: the claim's held-out error is above {LOF_MAX:.0%}",
        "noise": "the rounds are too noisy to rank the claim's count above every rival",
        "margin": f"the claim's count wins by less than {MARGIN:g}× against some rival",
    }
    return ", ".join(words[k] for k in f["open"])


def wall_time_verdict_parts(spec: WallTimeSpec, df, rounds, **kw) -> tuple[str, dict, str, str]:
    """(verdict, facts, measured, statement) of a wall-time claim."""
    verdict, facts = judge(spec, df, rounds, **kw)
    measured = measured_text(facts)
    statement = {
        "PASS": f"in the latency regime, wall time follows {spec.count.name} better than "
        + ", ".join(r.name for r in spec.all_rivals),
        "FAIL": f"in the latency regime, wall time does not follow {spec.count.name}: {why(facts)}",
        "INCONCLUSIVE": f"the clock cannot decide whether the time of {spec.what} follows "
        f"{spec.count.name}: {why(facts)}",
    }[verdict]
    return verdict, facts, measured, statement
