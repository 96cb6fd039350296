"""C13, the suite's own claim: the LSTM evaluated in O(k·log T) sequential steps by DEER.

Four verdicts, one per measure (docs/claims.md, C13, says how each is measured and why its rule
is so): the experiment's three, from programs traced with abstract inputs (the span and the
work) and run to convergence over T (the Newton iterations); and the wall time, derived from
the timed rows of the ``deer`` suite against the limit model's speed-up.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from bench.claims import Claim, Curve, Derived, Experiment, Rule, Verdict, register, state
from bench.fits import loglog_slope
from bench.store import write_table
from bench.structure import analyse
from bench.suites import deer as suite
from bench.suites.deer import FASTER, PARALLEL, SLOWER

CLAIM = "C13"

# --- The structural sweep (traced, not run) ------------------------------------------------

TRACE_ITERATIONS = 5  # the trip count k of the T and H sweeps (DEER's typical count)
STRUCTURE = dict(
    seq_lens=(256, 1024, 4096, 16384, 65536),
    at_hidden=8,
    hiddens=(16, 32, 64),
    at_seq_len=1024,
    trips=(1, 2, 4, 8),
)
"""T sweep at H = ``at_hidden``; H sweep at T = ``at_seq_len`` (from 16: the leading power of H
sets the slope); k sweep at both."""
SPAN_RESIDUAL = 0.05  # span/k within 5% of a line in log₂ T, and the span of a line in k
MIN_POINTS, MIN_T_RANGE, MIN_H_RANGE = 3, 8.0, 4.0  # no verdict from a shorter sweep
DEER_H_EXPONENT = (2.7, 3.3)  # O(k·T·H³)
QUASI_H_EXPONENT = (0.7, 1.3)  # O(k·T·H), as claimed for quasi-DEER
QUASI_H_EXPONENT_CORRECTED = (1.7, 2.3)  # O(k·T·H²): the cells' h·W_h, left out by the claim
T_EXPONENT = (0.95, 1.05)  # work linear in T, both variants


def trace(variant: str, seq_len: int, hidden: int, k: int) -> dict:
    """One row of the structural sweep: the forward program's counts at trip count k, batch 1,
    traced from ``jax.ShapeDtypeStruct`` inputs (nothing allocated, nothing run)."""
    f32 = functools.partial(jax.ShapeDtypeStruct, dtype=jnp.float32)
    w = f32((hidden, 4 * hidden))
    params = dict(w_x=w, w_h=w, b=f32((4 * hidden,)))
    s = analyse(suite.evaluator(variant), params, f32((1, seq_len, hidden)), while_trip_count=k)
    counts = {name: getattr(s, name) for name in ("span_ops", "steps_executed", "work_flops")}
    k = k if variant in PARALLEL else None
    return dict(variant=variant, batch=1, seq_len=seq_len, hidden=hidden, k=k, **counts)


def structure_sweep(sweep: Mapping = STRUCTURE) -> list[dict]:
    """Rows (sweep, variant, batch, seq_len, hidden, k, span_ops, steps_executed, work_flops)
    over T, H and k (``sweep`` = T, H or k), the sequential scan traced beside DEER."""
    k, h0, t0 = TRACE_ITERATIONS, sweep["at_hidden"], sweep["at_seq_len"]
    rows = []
    for variant in ("sequential", *PARALLEL):
        rows += [dict(sweep="T", **trace(variant, t, h0, k)) for t in sweep["seq_lens"]]
        rows += [dict(sweep="H", **trace(variant, t0, h, k)) for h in sweep["hiddens"]]
    for variant in PARALLEL:
        rows += [dict(sweep="k", **trace(variant, t0, h0, trips)) for trips in sweep["trips"]]
    return rows


def _line_residual(x, y) -> tuple[float, float, float]:
    """Least-squares line y ≈ a·x + b and its largest residual relative to y."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    a, b = np.polyfit(x, y, 1)
    return float(a), float(b), float(np.max(np.abs(y - (a * x + b)) / np.abs(y)))


def _select(rows, sweep: str, variant: str) -> pd.DataFrame:
    df = pd.DataFrame(list(rows))
    return df[(df.sweep == sweep) & (df.variant == variant)] if not df.empty else df


def _decidable(values: Sequence[float], min_range: float) -> bool:
    values = [v for v in values if v == v]
    return len(values) >= MIN_POINTS and max(values) / min(values) >= min_range


def _listed(values) -> str:
    return ", ".join(map(str, values))


# --- Sequential steps ------------------------------------------------------------------------

SPAN = Rule(
    CLAIM,
    f"forward programs traced (not run) at trip counts k over T at H = "
    f"{STRUCTURE['at_hidden']} and over k at T = {STRUCTURE['at_seq_len']}, batch 1",
    "span_ops, steps_executed (traced)",
    f"FAIL iff a parallel program executes other than k loop steps, span/k misses a line in "
    f"log2 T by more than {SPAN_RESIDUAL:.0%}, or the span misses a line in k by more than "
    f"{SPAN_RESIDUAL:.0%}; INCONCLUSIVE with fewer than {MIN_POINTS} T or k values, T over "
    f"less than {MIN_T_RANGE:g}×, or a missing count; else PASS",
)
SPAN_FIT = (
    "{variant}: steps_executed {steps}; span/k = {per_log_t:.3g}·log2 T + {at_log_t_0:.3g} "
    "(largest residual {residual_t:.1%}, T = {seq_lens[0]}…{seq_lens[1]}); span = "
    "{per_k:.3g}·k + {at_k_0:.3g} (residual {residual_k:.1%}, k = {k_list}); at T = "
    "{at_t_max[seq_len]}, k = {at_t_max[k]}: span {at_t_max[span]}"
)
SEQUENTIAL_SPAN = "sequential scan: {steps} loop steps, span {span} at T = {seq_len}"
SPAN_SAYS = {
    "FAIL": "the span of {failures} does not grow as k·log T",
    "INCONCLUSIVE": "the traced sweep cannot decide: {undecided}",
    "PASS": "each Newton iteration is one loop step executed, whose span grows as log T: k "
    "iterations take O(k·log T) sequential steps, against T for the sequential scan",
}


def span_decision(rows: Sequence[Mapping]) -> tuple[str, dict]:
    """(verdict, facts) of the sequential steps: per parallel variant its ``fits`` (programs,
    ``wrong_steps``, the lines span/k in log₂ T and span in k), ``failures``, ``undecided``
    (variant → why) and the ``sequential`` scan's steps and span at its largest T."""
    fits, failures, undecided = {}, [], {}
    for variant in PARALLEL:
        by_t, by_k = _select(rows, "T", variant), _select(rows, "k", variant)
        counted = pd.concat([by_t, by_k])
        if counted.empty or counted[["span_ops", "steps_executed"]].isna().any().any():
            undecided[variant] = "counts missing"
            continue
        if not (_decidable(by_t.seq_len, MIN_T_RANGE) and len(by_k) >= MIN_POINTS):
            undecided[variant] = "sweep too short"
            continue
        per_log_t = _line_residual(np.log2(by_t.seq_len), by_t.span_ops / by_t.k)
        per_k = _line_residual(by_k.k, by_k.span_ops)
        top = by_t.loc[by_t.seq_len.idxmax()]
        fit = fits[variant] = dict(
            programs=len(counted),
            wrong_steps=int((counted.steps_executed != counted.k).sum()),
            **dict(zip(("per_log_t", "at_log_t_0", "residual_t"), per_log_t, strict=True)),
            **dict(zip(("per_k", "at_k_0", "residual_k"), per_k, strict=True)),
            seq_lens=(int(by_t.seq_len.min()), int(by_t.seq_len.max())),
            ks=[int(k) for k in by_k.k],
            at_t_max=dict(seq_len=int(top.seq_len), k=int(top.k), span=int(top.span_ops)),
        )
        if fit["wrong_steps"] or max(fit["residual_t"], fit["residual_k"]) > SPAN_RESIDUAL:
            failures.append(variant)
    seq = _select(rows, "T", "sequential")
    sequential = None
    if not seq.empty and seq.span_ops.notna().all():
        s = seq.loc[seq.seq_len.idxmax()]
        sequential = dict(steps=int(s.steps_executed), span=int(s.span_ops), seq_len=int(s.seq_len))
    facts = dict(fits=fits, failures=failures, undecided=undecided, sequential=sequential)
    return ("FAIL" if failures else "INCONCLUSIVE" if undecided else "PASS"), facts


def judge_span(rows: Sequence[Mapping]) -> Verdict:
    """O(k·log T) sequential steps for k Newton iterations."""
    verdict, f = span_decision(rows)
    parts = []
    for variant, fit in f["fits"].items():
        right = f"= k at all {fit['programs']} programs"
        steps = f"≠ k at {fit['wrong_steps']} programs" if fit["wrong_steps"] else right
        parts.append(
            SPAN_FIT.format(variant=variant, steps=steps, k_list=_listed(fit["ks"]), **fit)
        )
    if f["sequential"]:
        parts.append(SEQUENTIAL_SPAN.format(**f["sequential"]))
    undecided = [f"{v}: {why}" for v, why in f["undecided"].items()]
    statement = SPAN_SAYS[verdict].format(
        failures=", ".join(f["failures"]), undecided="; ".join(undecided)
    )
    return SPAN.verdict(verdict, "; ".join(parts + undecided), statement, f)


# --- Work ----------------------------------------------------------------------------------

WORK = Rule(
    CLAIM,
    f"forward programs traced at k = {TRACE_ITERATIONS} over H = "
    f"{_listed(STRUCTURE['hiddens'])} at T = {STRUCTURE['at_seq_len']} and over "
    f"T = {STRUCTURE['seq_lens'][0]}…{STRUCTURE['seq_lens'][-1]} at H = {STRUCTURE['at_hidden']}",
    "work_flops (traced)",
    f"log-log slopes of work_flops: FAIL iff DEER's in H is outside {DEER_H_EXPONENT}, either "
    f"variant's in T outside {T_EXPONENT}, or quasi-DEER's in H outside both "
    f"{QUASI_H_EXPONENT} (as claimed) and {QUASI_H_EXPONENT_CORRECTED} (H²: the cells' h·W_h); "
    f"CORRECTED iff quasi-DEER's lies in the H² band; INCONCLUSIVE with fewer than "
    f"{MIN_POINTS} points, H over less than {MIN_H_RANGE:g}× or T over less than "
    f"{MIN_T_RANGE:g}×, or a missing count; else PASS",
)
WORK_FIT = "{variant}: work ∝ H^{e_h:.2f} (H = {lo}…{hi}), ∝ T^{e_t:.3f}"
WORK_MISS = "{variant}'s work grows as {axis}^{e:.2f}, {not_as}"
NOT_AS = {("DEER", "H"): "not H³", ("quasi-DEER", "H"): "neither H nor H²"}
WORK_SAYS = {
    "INCONCLUSIVE": "the traced sweep cannot decide the work",
    "FAIL": "{failures}",
    "CORRECTED": "DEER's work is O(k·T·H³), quasi-DEER's O(k·T·H²), not O(k·T·H): its diagonal "
    "scan is O(T·H) per iteration, but every iteration also evaluates the T LSTM cells, and "
    "h(t-1)·W_h costs 8H² FLOPs per step (measured: H^{quasi_h:.2f})",
    "PASS": "DEER's work is O(k·T·H³) and quasi-DEER's O(k·T·H), linear in T",
}


def work_decision(rows: Sequence[Mapping]) -> tuple[str, dict]:
    """(verdict, facts) of the work: ``exponents`` (variant → slopes in H and T, smallest and
    largest H), ``undecided`` (variant → why), ``failures`` ((variant, axis, slope) off band)."""
    exponents, undecided = {}, {}
    for variant in PARALLEL:
        by_h, by_t = _select(rows, "H", variant), _select(rows, "T", variant)
        if by_h.empty or by_t.empty or pd.concat([by_h, by_t]).work_flops.isna().any():
            undecided[variant] = "counts missing"
        elif not (_decidable(by_h.hidden, MIN_H_RANGE) and _decidable(by_t.seq_len, MIN_T_RANGE)):
            undecided[variant] = "sweep too short"
        else:
            e_h = loglog_slope(by_h.hidden, by_h.work_flops)[0]
            e_t = loglog_slope(by_t.seq_len, by_t.work_flops)[0]
            exponents[variant] = (e_h, e_t, by_h.hidden.min(), by_h.hidden.max())
    facts = {"exponents": exponents, "undecided": undecided, "failures": []}
    if undecided:
        return "INCONCLUSIVE", facts
    (deer_h, deer_t), (quasi_h, quasi_t) = exponents["deer"][:2], exponents["quasi-deer"][:2]
    bands = [
        ("DEER", "H", deer_h, [DEER_H_EXPONENT]),
        ("DEER", "T", deer_t, [T_EXPONENT]),
        ("quasi-DEER", "T", quasi_t, [T_EXPONENT]),
        ("quasi-DEER", "H", quasi_h, [QUASI_H_EXPONENT, QUASI_H_EXPONENT_CORRECTED]),
    ]
    facts["failures"] += [
        (v, axis, e) for v, axis, e, within in bands if not any(lo <= e <= hi for lo, hi in within)
    ]
    if facts["failures"]:
        return "FAIL", facts
    lo, hi = QUASI_H_EXPONENT_CORRECTED
    return ("CORRECTED" if lo <= quasi_h <= hi else "PASS"), facts


def judge_work(rows: Sequence[Mapping]) -> Verdict:
    """O(k·T·H³) work for DEER, O(k·T·H) as claimed for quasi-DEER."""
    verdict, f = work_decision(rows)
    fits = [
        WORK_FIT.format(variant=v, e_h=e_h, e_t=e_t, lo=int(lo), hi=int(hi))
        for v, (e_h, e_t, lo, hi) in f["exponents"].items()
    ]
    failures = [
        WORK_MISS.format(variant=v, axis=axis, e=e, not_as=NOT_AS.get((v, axis), "not T"))
        for v, axis, e in f["failures"]
    ]
    quasi_h = f["exponents"]["quasi-deer"][0] if "quasi-deer" in f["exponents"] else math.nan
    statement = WORK_SAYS[verdict].format(failures="; ".join(failures), quasi_h=quasi_h)
    undecided = [f"{v}: {why}" for v, why in f["undecided"].items()]
    return WORK.verdict(verdict, "; ".join(undecided or fits), statement, f)


# --- Newton iterations vs T (run, not traced) ----------------------------------------------

ITERATION_SWEEP = {
    "smoke": dict(seq_lens=(), hidden=4, batch=1),
    "cpu": dict(seq_lens=(256, 1024, 4096, 16384, 65536), hidden=4, batch=1),
}
"""Each parallel variant's forward pass is run to convergence at these T (the smoke profile
runs none); 256×, since over 16× a k ∝ log T grows by 1.5× only."""
ITERATION_SWEEP["full"] = ITERATION_SWEEP["cpu"]
MIN_ITER_POINTS, MIN_ITER_RANGE = 5, 64.0  # no verdict from fewer values of T, or a narrower T
CONSTANT_SHARE = 1 / 3  # k constant iff the share g of k growing with log T is ≤ this ...
LOG_SHARE = (2 / 3, 4 / 3)  # ... k ∝ log T iff g lies here; above it, k grows faster
ITERATIONS = Rule(
    CLAIM,
    "Newton iterations to converge (tolerance 8 ulp on the scaled update, default "
    "initialisation) of each parallel variant's forward pass, run over T",
    "Newton iterations vs log T",
    f"per parallel variant, k ≈ a + b·log2 T fitted over ≥ {MIN_ITER_POINTS} values of T over "
    f"≥ {MIN_ITER_RANGE:g}× (else INCONCLUSIVE); g = b·log2 T_max / k(T_max): FAIL iff a run did "
    f"not converge within its cap or some g > {LOG_SHARE[1]:.3g}; PASS iff every g ≤ "
    f"{CONSTANT_SHARE:.3g} (k constant); CORRECTED iff some g lies in [{LOG_SHARE[0]:.3g}, "
    f"{LOG_SHARE[1]:.3g}] (k ∝ log T); else INCONCLUSIVE",
)
ITERATION_COLUMNS = "variant batch seq_len hidden newton_iterations converged max_iter".split()
ITERATIONS_FIT = (
    "{variant} (B={batch}, H={hidden}): k = {k_list} at T = {t_list}; k ≈ {a:.3g} + "
    "{b:.3g}·log2 T, share growing with log T g = {share:.2f}"
)
STALLED = (
    "{variant} T={seq_len} H={hidden}: did not converge in {newton_iterations} iterations "
    "(cap {max_iter})"
)
ITERATIONS_SAYS = {
    "FAIL": "{failures}",
    "undecided": "the iterations need ≥ {min_points} values of T over ≥ {min_range:g}×: "
    "{undecided}",
    "PASS": "the Newton iterations do not grow with T (at most {top_share:.0%} of k grows with "
    "log T), so the span k·O(log T) stays O(log T) at the default initialisation",
    "CORRECTED": "the Newton iterations of {logarithmic} grow as log T, so k·O(log T) "
    "sequential steps are O(log² T), not O(log T)",
    "INCONCLUSIVE": "k grows with T, but neither as a constant nor as log T: {shares}",
}


def iteration_sweep(sweep: Mapping) -> list[dict]:
    """Rows of :data:`ITERATION_COLUMNS`: each parallel variant's forward pass run to
    convergence on the suite's data (its tolerance, cap and initialisation)."""
    batch, hidden, rows = sweep["batch"], sweep["hidden"], []
    for variant in PARALLEL:
        for seq_len in sweep["seq_lens"]:
            params, x = suite.problem(batch, seq_len, hidden)
            _, stats = jax.jit(suite.evaluator(variant))(params, x)
            k, cap = int(stats.iterations), min(suite.MAX_ITER[variant], seq_len)
            values = (variant, batch, seq_len, hidden, k, bool(stats.converged), cap)
            rows.append(dict(zip(ITERATION_COLUMNS, values, strict=True)))
    return rows


def log_share(seq_lens: Sequence[int], ks: Sequence[int]) -> tuple[float, float, float]:
    """(a, b, g) of the least-squares k ≈ a + b·log₂T and g = b·log₂T_max / (a + b·log₂T_max)."""
    x = np.log2(np.asarray(seq_lens, float))
    b, a = np.polyfit(x, np.asarray(ks, float), 1)
    top = a + b * x.max()
    return float(a), float(b), float(b * x.max() / top) if top > 0 else math.inf


def iterations_decision(rows: Sequence[Mapping]) -> tuple[str, dict]:
    """(verdict, facts) of the iterations: ``fits`` (variant → its runs, k ≈ a + b·log₂T and g),
    ``undecided`` (variant → (values of T, their range)), the ``stalled`` runs, and the variants
    whose g is above (``faster``) or in (``logarithmic``) :data:`LOG_SHARE`."""
    df = pd.DataFrame(list(rows))
    fits, undecided = {}, {}
    stalled = df[~df.converged.astype(bool)] if not df.empty else df
    for variant in PARALLEL:
        g = df[df.variant == variant].sort_values("seq_len") if not df.empty else df
        if len(g) < MIN_ITER_POINTS or g.seq_len.max() / g.seq_len.min() < MIN_ITER_RANGE:
            undecided[variant] = (len(g), g.seq_len.max() / g.seq_len.min() if len(g) else None)
            continue
        a, b, share = log_share(g.seq_len, g.newton_iterations)
        fits[variant] = dict(batch=int(g.batch.iloc[0]), hidden=int(g.hidden.iloc[0]), a=a, b=b)
        fits[variant] |= dict(share=share, ks=[int(k) for k in g.newton_iterations])
        fits[variant]["seq_lens"] = [int(t) for t in g.seq_len]
    shares = {v: f["share"] for v, f in fits.items()}
    facts = dict(fits=fits, undecided=undecided, stalled=stalled.to_dict("records"))
    facts["faster"] = [v for v, g in shares.items() if g > LOG_SHARE[1]]
    facts["logarithmic"] = [v for v, g in shares.items() if LOG_SHARE[0] <= g <= LOG_SHARE[1]]
    if facts["faster"] or facts["stalled"]:
        return "FAIL", facts
    if undecided:
        return "INCONCLUSIVE", facts
    if all(g <= CONSTANT_SHARE for g in shares.values()):
        return "PASS", facts
    return ("CORRECTED" if facts["logarithmic"] else "INCONCLUSIVE"), facts


def judge_iterations(rows: Sequence[Mapping]) -> Verdict:
    """Newton iterations vs T: the span O(k·log T) is O(log T) only if k does not grow."""
    verdict, f = iterations_decision(rows)
    parts = []
    for v, fit in f["fits"].items():
        lists = dict(k_list=_listed(fit["ks"]), t_list=_listed(fit["seq_lens"]))
        parts.append(ITERATIONS_FIT.format(variant=v, **lists, **fit))
    parts += [STALLED.format(**r) for r in f["stalled"]]
    undecided = [
        f"{v}: {n} values of T" + (f" over {span:g}×" if n else "")
        for v, (n, span) in f["undecided"].items()
    ]
    shares = {v: fit["share"] for v, fit in f["fits"].items()}
    failures = []
    if f["faster"]:
        failures.append(f"the iterations grow faster than log T ({', '.join(f['faster'])})")
    if f["stalled"]:
        failures.append(f"{len(f['stalled'])} runs did not converge within their cap")
    says = "undecided" if verdict == "INCONCLUSIVE" and undecided else verdict
    statement = ITERATIONS_SAYS[says].format(
        failures="; ".join(failures),
        undecided="; ".join(undecided),
        min_points=MIN_ITER_POINTS,
        min_range=MIN_ITER_RANGE,
        top_share=max(shares.values(), default=math.nan),
        logarithmic=", ".join(f["logarithmic"]),
        shares=", ".join(f"{v} g = {g:.2f}" for v, g in shares.items()),
    )
    measured = "; ".join(parts + undecided) or "no parallel run"
    return ITERATIONS.verdict(verdict, measured, statement, f)


def structure_experiment(profile: str, run_dir) -> list[Verdict]:
    rows = structure_sweep()
    write_table(run_dir, "deer_structure.csv", rows)
    for sweep in ("T", "H"):  # the tables of the figures (:func:`_structure_curve`)
        write_table(
            run_dir, f"deer_structure_{sweep}.csv", [r for r in rows if r["sweep"] == sweep]
        )
    iterations = iteration_sweep(ITERATION_SWEEP[profile])
    write_table(run_dir, "deer_iterations.csv", iterations, ITERATION_COLUMNS)
    return [judge_span(rows), judge_work(rows), judge_iterations(iterations)]


# --- Wall time, from the timed rows ----------------------------------------------------------

GOAL = dict(batch=1, max_hidden=8, min_seq_len=4096)  # where the issue expects a win on a CPU
MODEL_OFF = 2.0  # the limit model decides only while the times are at most this × its limits
WALL = Rule(
    CLAIM,
    "wall time of the timed deer cases (forward and train) against the sequential "
    "scan at the same sizes, parameters and inputs, and against the limit model's speed-up",
    "wall time vs the sequential scan (speed-up)",
    f"speed-up s = t_sequential / t_variant, a win iff s ≥ {FASTER} and a loss iff s ≤ "
    f"{SLOWER}, by the medians and by the fastest repeats alike (else a tie); the limit model's "
    f"speed-up ŝ = limit_sequential / limit_variant (bench.calibration, this device); at batch "
    f"{GOAL['batch']}, H ≤ {GOAL['max_hidden']}, T ≥ {GOAL['min_seq_len']}, a size decides iff "
    f"some variant's ŝ ≥ {FASTER}·m, m = the model's error: the median over the timed cases of "
    f"max(ŝ/s, s/ŝ) (the device leaves room for a win beyond the model's own error), and only "
    f"while the measured times are at most {MODEL_OFF:g}× the limits (median over the timed "
    "cases: a model farther from the clock decides nothing); judged by the better "
    "variant measured: FAIL iff it loses at a deciding size, PASS iff it wins at every one, "
    "else INCONCLUSIVE (also with no deciding size: this device cannot decide the claim)",
)
WHERE = f"batch {GOAL['batch']}, H ≤ {GOAL['max_hidden']}, T ≥ {GOAL['min_seq_len']}"
WALL_SAYS = {
    "untimed": "no case at {where} was timed with both evaluators",
    "uncalibrated": "no timed case has a limit model (no calibration): the device cannot decide",
    "far": "this device's limit model decides nothing: the measured times are ×{limit_gap:.3g} "
    "its limits (median; ×{allowed:g} allowed), and its speed-ups miss the measured ones by "
    "×{model_off:.3g}",
    "no room": "this device cannot decide the claim: at {where} its limit model (or its missing "
    "calibration) leaves the parallel evaluator no room to win; the claim is decided on a "
    "device where it does",
    "FAIL": "on this device the sequential scan is faster where its limit model leaves the "
    "parallel evaluator room to win: {lost}",
    "PASS": "on this device the parallel evaluator beats the sequential scan at every size of "
    "{where} where the limit model leaves it room to win ({deciding} of {sizes})",
    "INCONCLUSIVE": "the timings tie at some size where the limit model leaves room for a win",
}
WALL_CELL = "{mode} T={seq_len} H={hidden}: {speedups} → {best}{room}"
NO_ROOM = " (not deciding: the limit model leaves no room for a win)"
WALL_LOSS = "T={seq_len} H={hidden} ({mode}, best ×{best_speedup:.2g})"
MODEL_MATCHES = (
    "; the limit model's outcome (win, tie, loss) matches the measured one in {matches} of "
    "{modelled} timed cases"
)
MODEL_CHECKED = (
    "; limit model checked: its speed-ups ×{model_off:.3g} from the measured (median), the "
    "measured times ×{limit_gap:.3g} its limits"
)


def _model_says(model_speedup: float) -> str:
    """The limit model's outcome: :func:`outcome` of its speed-up, or ``no limit``."""
    return (
        suite.outcome(model_speedup, model_speedup)
        if model_speedup == model_speedup
        else "no limit"
    )


def _model_check(timed: pd.DataFrame) -> tuple[float, float]:
    """How far the limit model is from the clock over the timed cases: its speed-ups' typical
    factor from the measured ones, and the measured time over the limit (medians; NaN where
    no case has a limit)."""
    both = timed[(timed.model_speedup > 0) & (timed.speedup > 0) & (timed.limit_ms > 0)]
    if both.empty:
        return math.nan, math.nan
    off = np.exp(np.median(np.abs(np.log(both.model_speedup / both.speedup))))
    return float(off), float(np.median(both.time_ms / both.limit_ms))


def wall_time_decision(table: pd.DataFrame) -> tuple[str, dict]:
    """(verdict, facts) of the wall time: ``cells`` (each size at :data:`GOAL`: speed-ups
    measured and modelled, the best one's outcome, whether it ``decides``), ``deciding``,
    ``wins``, ``losses``, the timed cases ``modelled`` and those whose model outcome
    ``disagree``s with the clock's, ``crossovers``, every ``timed`` case."""
    timed = table[table.outcome.isin(["faster", "slower", "tie"])]
    goal = timed[
        (timed.batch == GOAL["batch"])
        & (timed.hidden <= GOAL["max_hidden"])
        & (timed.seq_len >= GOAL["min_seq_len"])
    ]
    off, gap = _model_check(timed)
    room = FASTER * (off if off == off else 1.0)  # a win beyond the model's own error
    cells = []
    for (mode, seq_len, hidden), g in goal.groupby(["mode", "seq_len", "hidden"]):
        best = g.loc[g.speedup.idxmax()]
        cells.append(
            dict(mode=mode, seq_len=seq_len, hidden=hidden, best=best.outcome)
            | dict(best_speedup=best.speedup, decides=bool((g.model_speedup >= room).any()))
            | dict(variants=[(r.variant, r.speedup, r.model_speedup) for r in g.itertuples()])
        )
    deciding = [c for c in cells if c["decides"]] if gap <= MODEL_OFF else []
    facts = dict(
        model_off=off,
        limit_gap=gap,
        cells=cells,
        deciding=len(deciding),
        wins=sum(c["best"] == "faster" for c in deciding),
        losses=[c for c in deciding if c["best"] == "slower"],
        disagree=[
            f"{r.variant} {r.mode} T={r.seq_len} H={r.hidden}"
            for r in timed.itertuples()
            if _model_says(r.model_speedup) not in ("no limit", r.outcome)
        ],
        modelled=sum(_model_says(r) != "no limit" for r in timed.model_speedup),
        crossovers=suite.crossovers(table),
        timed=[
            (r.variant, r.mode, r.batch, r.seq_len, r.hidden, r.speedup) for r in timed.itertuples()
        ],
    )
    if not cells or not deciding:
        return "INCONCLUSIVE", facts
    if facts["losses"]:
        return "FAIL", facts
    return ("PASS" if facts["wins"] == facts["deciding"] else "INCONCLUSIVE"), facts


def _wall_case(verdict: str, f: dict) -> str:
    """Which of :data:`WALL_SAYS` states the verdict."""
    if not f["cells"]:
        return "untimed"
    if not f["limit_gap"] <= MODEL_OFF:
        return "far" if f["limit_gap"] == f["limit_gap"] else "uncalibrated"
    return verdict if f["deciding"] else "no room"


def judge_wall_time(table: pd.DataFrame) -> Verdict:
    """Does the parallel evaluator beat the scan where the issue expects it to, on a device
    whose limit model leaves it room to?"""
    verdict, f = wall_time_decision(table)
    cells = []
    for c in f["cells"]:
        pairs = ", ".join(f"{v} ×{s:.3g} (limit model ×{m:.3g})" for v, s, m in c["variants"])
        cells.append(WALL_CELL.format(speedups=pairs, room="" if c["decides"] else NO_ROOM, **c))
    statement = WALL_SAYS[_wall_case(verdict, f)].format(
        lost="; ".join(WALL_LOSS.format(**c) for c in f["losses"]),
        sizes=len(cells),
        where=WHERE,
        allowed=MODEL_OFF,
        **f,
    )
    if f["modelled"]:
        matches = f["modelled"] - len(f["disagree"])
        statement += MODEL_MATCHES.format(matches=matches, modelled=f["modelled"])
        statement += f", not in {', '.join(f['disagree'])}" if f["disagree"] else ""
    if f["crossovers"]:
        statement += "; crossover in hidden size: " + "; ".join(f["crossovers"])
    timed = ", ".join(
        f"{v} {mode} B={b} T={t} H={h} ×{s:.3g}" for v, mode, b, t, h, s in f["timed"]
    )
    measured = "; ".join(cells) + (f" (all: {timed})" if timed else "")
    measured += MODEL_CHECKED.format(**f) if f["model_off"] == f["model_off"] else ""
    measured = measured or "no parallel case timed against the sequential scan"
    return WALL.verdict(verdict, measured, statement, f)


def judge_rows(df: pd.DataFrame, fits: pd.DataFrame, run_dir=None) -> list[Verdict]:
    table = suite.speedups(df)
    return [judge_wall_time(table)] if not table.empty else []


def _structure_curve(sweep: str, y: str, y_label: str, title: str) -> Curve:
    """A plot of the structural sweep over T or H (the other size and k fixed), one line per
    variant."""
    x, x_label, fixed = dict(
        T=("seq_len", "sequence length T", f"H = {STRUCTURE['at_hidden']}"),
        H=("hidden", "hidden units H", f"T = {STRUCTURE['at_seq_len']}"),
    )[sweep]
    title = f"{title} ({fixed}, k = {TRACE_ITERATIONS})"
    return Curve(f"deer_structure_{sweep}.csv", x, y, "variant", x_label, y_label, title, logx=True)


register(
    Experiment(
        "deer",
        (CLAIM, CLAIM, CLAIM),
        structure_experiment,
        curves=(
            _structure_curve("T", "span_ops", "span (ops on the critical path)", "span vs T"),
            _structure_curve("H", "work_flops", "work (FLOPs)", "work vs H"),
        ),
        cost_s=dict(smoke=2, cpu=15, full=15),
    )
)
register(Derived(("deer",), (CLAIM,), judge_rows))
state(
    Claim(
        CLAIM,
        "the suite's own",
        "a nonlinear recurrence of T steps (the LSTM) can be evaluated in O(k·log T) sequential "
        "steps by k Newton iterations over a parallel scan (DEER), at O(k·T·H³) work (O(k·T·H) "
        "with diagonal Jacobians, quasi-DEER)",
        "`steps_executed`, `span_ops`, `work_flops` (traced); Newton iterations vs log T; "
        "wall-time speed-up over the sequential scan, against the limit model's",
        __name__,
        (SPAN.text, WORK.text, ITERATIONS.text, WALL.text),
        "structure traced; iterations run over T; wall time from the timed `deer` cases",
    )
)
