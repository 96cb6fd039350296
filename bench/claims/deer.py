"""C13 (the suite's own claim): a nonlinear recurrence evaluated in parallel over time.

The claim, as filed: "a nonlinear recurrence of T steps (the LSTM) can be evaluated in
O(k·log T) sequential steps for k Newton iterations (DEER), at O(k·T·H³) work (O(k·T·H) for
quasi-DEER)". It is judged four times, each on its own measure:

* sequential steps (experiment, by tracing): ``steps_executed`` = k and ``span_ops`` / k a
  line in log₂ T, over T = 256 … 65,536 and k = 1 … 8 (:func:`judge_span`);
* work (experiment, by tracing): the exponents of ``work_flops`` in H and in T
  (:func:`judge_work`). The quasi-DEER clause is a counting error: each iteration evaluates
  the T LSTM cells, whose h(t-1)·W_h costs 8H² FLOPs per step, so its work is O(k·T·H²);
* Newton iterations vs T (experiment, run to convergence over T = 256 … 65,536): k fitted
  against log T; k must not grow with T, or the span is not O(log T) (:func:`judge_iterations`);
* wall time (derived from the timed rows): the speed-up over the sequential scan per
  (T, hidden), the crossover in hidden size on this device, and the limit model's speed-up;
  the issue's goal is a win at batch 1, hidden ≤ 8, T ≥ 4,096, decided on a device whose
  limit model leaves the parallel evaluator room to win there (:func:`judge_wall_time`).

The structural sweep traces programs without running them (``jax.ShapeDtypeStruct``
inputs), so every profile traces the same sizes, up to T = 65,536 and H = 64, in seconds.
Its experiment returns the first three verdicts (``claims = ("C13", "C13", "C13")``); the
derived rule, the last.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from bench.claims import (
    Claim,
    Curve,
    Derived,
    Experiment,
    Verdict,
    register,
    state,
)
from bench.fits import loglog_slope
from bench.store import write_table
from bench.structure import analyse
from bench.suites.deer import (
    FASTER,
    MAX_ITER,
    PARALLEL,
    SLOWER,
    crossovers,
    evaluator,
    outcome,
    problem,
    speedups,
)

CLAIM = "C13"

# --- The structural sweep (traced, not run) ------------------------------------------------

TRACE_ITERATIONS = 5
"""The trip count k of the T and H sweeps (DEER's typical count at the default init)."""
STRUCTURE = dict(
    seq_lens=(256, 1024, 4096, 16384, 65536),
    at_hidden=8,
    hiddens=(16, 32, 64),
    at_seq_len=1024,
    trips=(1, 2, 4, 8),
)
"""T sweep at H = ``at_hidden``; H sweep at T = ``at_seq_len``; k sweep at both. The H sweep
starts at 16 so that the leading power of H, not the lower-order terms, sets the exponent."""

SPAN_RESIDUAL = 0.05
"""span/k must lie within 5% of a line in log₂ T (and span within 5% of a line in k)."""
MIN_POINTS = 3
"""No verdict from a sweep of fewer points..."""
MIN_T_RANGE = 8.0
"""...or over less than 8× in T (4× in H, :data:`MIN_H_RANGE`)."""
MIN_H_RANGE = 4.0
DEER_H_EXPONENT = (2.7, 3.3)
"""O(k·T·H³): DEER's work exponent in H must lie here."""
QUASI_H_EXPONENT = (0.7, 1.3)
"""O(k·T·H), as claimed for quasi-DEER."""
QUASI_H_EXPONENT_CORRECTED = (1.7, 2.3)
"""O(k·T·H²): the cells' h·W_h, which the claim leaves out."""
T_EXPONENT = (0.95, 1.05)
"""Work linear in T, both variants."""


def _abstract_problem(batch: int, seq_len: int, hidden: int):
    shape = {"w_x": (hidden, 4 * hidden), "w_h": (hidden, 4 * hidden), "b": (4 * hidden,)}
    params = {name: jax.ShapeDtypeStruct(s, jnp.float32) for name, s in shape.items()}
    return params, jax.ShapeDtypeStruct((batch, seq_len, hidden), jnp.float32)


def trace(variant: str, seq_len: int, hidden: int, k: int, batch: int = 1) -> dict:
    """One row of the structural sweep: the forward program's counts at trip count k."""
    s = analyse(evaluator(variant), *_abstract_problem(batch, seq_len, hidden), while_trip_count=k)
    return dict(
        variant=variant,
        batch=batch,
        seq_len=seq_len,
        hidden=hidden,
        k=k if variant in PARALLEL else None,
        span_ops=s.span_ops,
        steps_executed=s.steps_executed,
        work_flops=s.work_flops,
    )


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
    if df.empty:
        return df
    return df[(df.sweep == sweep) & (df.variant == variant)]


def _decidable(values: Sequence[float], min_range: float) -> bool:
    values = [v for v in values if v == v]
    return len(values) >= MIN_POINTS and max(values) / min(values) >= min_range


SPAN_RULE = (
    f"FAIL iff a parallel program executes other than k loop steps, span/k misses a line in "
    f"log2 T by more than {SPAN_RESIDUAL:.0%}, or the span misses a line in k by more than "
    f"{SPAN_RESIDUAL:.0%}; INCONCLUSIVE with fewer than {MIN_POINTS} T or k values, T over "
    f"less than {MIN_T_RANGE:g}×, or a missing count; else PASS"
)


def span_decision(rows: Sequence[Mapping]) -> tuple[str, dict]:
    """(verdict, facts) of the sequential-steps clause. Facts: per parallel variant, the
    programs counted and those whose loop steps are not k (``wrong_steps``), the line span/k =
    a·log₂T + b and span = c·k + e with their largest relative residuals (``fits``); the
    variants that fail or cannot be judged (``undecided``: variant → why); the sequential
    scan's steps and span at its largest T (``sequential``)."""
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
        a, b, off_t = _line_residual(np.log2(by_t.seq_len), by_t.span_ops / by_t.k)
        per_k, c, off_k = _line_residual(by_k.k, by_k.span_ops)
        t_max = by_t.loc[by_t.seq_len.idxmax()]
        fits[variant] = dict(
            programs=len(counted), wrong_steps=int((counted.steps_executed != counted.k).sum()),
            per_log_t=a, at_log_t_0=b, residual_t=off_t, per_k=per_k, at_k_0=c, residual_k=off_k,
            seq_lens=(int(by_t.seq_len.min()), int(by_t.seq_len.max())),
            ks=[int(k) for k in by_k.k],
            at_t_max=dict(seq_len=int(t_max.seq_len), k=int(t_max.k), span=int(t_max.span_ops)),
        )  # fmt: skip
        if fits[variant]["wrong_steps"] or off_t > SPAN_RESIDUAL or off_k > SPAN_RESIDUAL:
            failures.append(variant)
    seq = _select(rows, "T", "sequential")
    sequential = None
    if not seq.empty and seq.span_ops.notna().all():
        top = seq.loc[seq.seq_len.idxmax()]
        sequential = dict(steps=int(top.steps_executed), span=int(top.span_ops),
                          seq_len=int(top.seq_len))  # fmt: skip
    facts = dict(fits=fits, failures=failures, undecided=undecided, sequential=sequential)
    return ("FAIL" if failures else "INCONCLUSIVE" if undecided else "PASS"), facts


def _span_sentences(verdict: str, f: dict) -> tuple[str, str]:
    """(measured, statement) of the sequential-steps clause, from :func:`span_decision`'s."""
    parts = []
    for variant, fit in f["fits"].items():
        parts.append(
            f"{variant}: steps_executed = k at all {fit['programs']} programs"
            if not fit["wrong_steps"]
            else f"{variant}: steps_executed ≠ k at {fit['wrong_steps']} programs"
        )
        top = fit["at_t_max"]
        parts[-1] += (
            f"; span/k = {fit['per_log_t']:.3g}·log2 T + {fit['at_log_t_0']:.3g} (largest "
            f"residual {fit['residual_t']:.1%}, T = {fit['seq_lens'][0]}…{fit['seq_lens'][1]}); "
            f"span = {fit['per_k']:.3g}·k + {fit['at_k_0']:.3g} (residual {fit['residual_k']:.1%}, "
            f"k = {', '.join(map(str, fit['ks']))}); at T = {top['seq_len']}, k = {top['k']}: "
            f"span {top['span']}"
        )
    if f["sequential"]:
        s = f["sequential"]
        parts.append(
            f"sequential scan: {s['steps']} loop steps, span {s['span']} at T = {s['seq_len']}"
        )
    undecided = [f"{v}: {why}" for v, why in f["undecided"].items()]
    statement = {
        "FAIL": f"the span of {', '.join(f['failures'])} does not grow as k·log T",
        "INCONCLUSIVE": "the traced sweep cannot decide: " + "; ".join(undecided),
        "PASS": "each Newton iteration is one loop step executed, whose span grows as log T: k "
        "iterations take O(k·log T) sequential steps, against T for the sequential scan",
    }[verdict]
    return "; ".join(parts + undecided), statement


def judge_span(rows: Sequence[Mapping]) -> Verdict:
    """The sequential-steps clause: O(k·log T) for k Newton iterations."""
    verdict, facts = span_decision(rows)
    measured, statement = _span_sentences(verdict, facts)
    return Verdict(
        claim=CLAIM,
        verdict=verdict,
        check=f"forward programs traced (not run) at trip counts k over T at H = "
        f"{STRUCTURE['at_hidden']} and over k at T = {STRUCTURE['at_seq_len']}, batch 1",
        measure="span_ops, steps_executed (traced)",
        rule=SPAN_RULE,
        measured=measured,
        statement=statement,
        facts=facts,
    )


WORK_RULE = (
    f"log-log slopes of work_flops: FAIL iff DEER's in H is outside {DEER_H_EXPONENT}, either "
    f"variant's in T outside {T_EXPONENT}, or quasi-DEER's in H outside both "
    f"{QUASI_H_EXPONENT} (as claimed) and {QUASI_H_EXPONENT_CORRECTED} (H²: the cells' h·W_h); "
    f"CORRECTED iff quasi-DEER's lies in the H² band; INCONCLUSIVE with fewer than "
    f"{MIN_POINTS} points, H over less than {MIN_H_RANGE:g}× or T over less than "
    f"{MIN_T_RANGE:g}×, or a missing count; else PASS"
)


WORK_CHECK = (
    f"forward programs traced at k = {TRACE_ITERATIONS} over H = "
    f"{', '.join(map(str, STRUCTURE['hiddens']))} at T = {STRUCTURE['at_seq_len']} and over "
    f"T = {STRUCTURE['seq_lens'][0]}…{STRUCTURE['seq_lens'][-1]} at H = {STRUCTURE['at_hidden']}"
)


def _within(value: float, band: tuple[float, float]) -> bool:
    return band[0] <= value <= band[1]


def work_decision(rows: Sequence[Mapping]) -> tuple[str, str, dict]:
    """(verdict, slip, facts) of the work clause: each variant's log-log slopes of the work in H
    and T (``exponents``: variant → (in H, in T, smallest H, largest H)), the variants whose
    sweep could not decide (``undecided``: variant → why) and the slopes out of their band
    (``failures``: (variant, axis, slope))."""
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
        return "INCONCLUSIVE", "", facts
    (deer_h, deer_t), (quasi_h, quasi_t) = exponents["deer"][:2], exponents["quasi-deer"][:2]
    failures = facts["failures"]
    if not _within(deer_h, DEER_H_EXPONENT):
        failures.append(("DEER", "H", deer_h))
    for v, e_t in (("DEER", deer_t), ("quasi-DEER", quasi_t)):
        if not _within(e_t, T_EXPONENT):
            failures.append((v, "T", e_t))
    corrected = _within(quasi_h, QUASI_H_EXPONENT_CORRECTED)
    if not (corrected or _within(quasi_h, QUASI_H_EXPONENT)):
        failures.append(("quasi-DEER", "H", quasi_h))
    if failures:
        return "FAIL", "", facts
    if corrected:
        return "CORRECTED", "mathematical error", facts
    return "PASS", "", facts


def _work_sentences(verdict: str, facts: dict) -> tuple[str, str]:
    """(measured, statement) of the work clause, from :func:`work_decision`'s facts."""
    if facts["undecided"]:
        measured = "; ".join(f"{v}: {why}" for v, why in facts["undecided"].items())
        return measured, "the traced sweep cannot decide the work"
    measured = "; ".join(
        f"{v}: work ∝ H^{e_h:.2f} (H = {int(lo)}…{int(hi)}), ∝ T^{e_t:.3f}"
        for v, (e_h, e_t, lo, hi) in facts["exponents"].items()
    )
    not_as = {("DEER", "H"): "not H³", ("quasi-DEER", "H"): "neither H nor H²"}
    statement = {
        "FAIL": "; ".join(
            f"{v}'s work grows as {axis}^{e:.2f}, {not_as.get((v, axis), 'not T')}"
            for v, axis, e in facts["failures"]
        ),
        "CORRECTED": "DEER's work is O(k·T·H³), quasi-DEER's O(k·T·H²), not O(k·T·H): its "
        "diagonal scan is O(T·H) per iteration, but every iteration also evaluates the T LSTM "
        "cells, and h(t-1)·W_h costs 8H² FLOPs per step (measured: "
        f"H^{facts['exponents']['quasi-deer'][0]:.2f})",
        "PASS": "DEER's work is O(k·T·H³) and quasi-DEER's O(k·T·H), linear in T",
    }[verdict]
    return measured, statement


def judge_work(rows: Sequence[Mapping]) -> Verdict:
    """The work clause: O(k·T·H³) for DEER, O(k·T·H) claimed for quasi-DEER."""
    verdict, slip, facts = work_decision(rows)
    measured, statement = _work_sentences(verdict, facts)
    return Verdict(
        claim=CLAIM,
        verdict=verdict,
        check=WORK_CHECK,
        measure="work_flops (traced)",
        rule=WORK_RULE,
        measured=measured,
        statement=statement,
        slip=slip,
        facts=facts,
    )


# --- Newton iterations vs T (run, not traced) ------------------------------------------------

ITERATION_SWEEP = {
    "smoke": dict(seq_lens=(), hidden=4, batch=1),
    "cpu": dict(seq_lens=(256, 1024, 4096, 16384, 65536), hidden=4, batch=1),
}
"""The forward pass of each parallel variant is run to convergence at these T (one compile
each; the smoke profile runs none). 256× in T: over 16× a k that grows
as log T rises by a factor 1.5 only, which no ×2 threshold of k(T_max)/k(T_min) can see."""
ITERATION_SWEEP["full"] = ITERATION_SWEEP["cpu"]
MIN_ITER_POINTS = 5
"""No verdict on the iterations from fewer values of T ..."""
MIN_ITER_RANGE = 64.0
"""... or from T over less than 64×."""
CONSTANT_SHARE = 1 / 3
"""k ≈ a + b·log₂T: the share g = b·log₂T_max / k(T_max) of k that grows with log T is 0 for a
constant k and 1 for k ∝ log T; k counts as constant iff g ≤ 1/3 ..."""
LOG_SHARE = (2 / 3, 4 / 3)
"""... as ∝ log T iff g lies here; above it, k grows faster than log T."""


def iteration_sweep(sweep: Mapping) -> list[dict]:
    """Rows (variant, batch, seq_len, hidden, newton_iterations, converged, max_iter): each
    parallel variant's forward pass run to convergence (suite defaults: tolerance, cap,
    initialisation, ``bench.suites.deer.problem``'s data)."""
    rows = []
    for variant in PARALLEL:
        for seq_len in sweep["seq_lens"]:
            params, x = problem(sweep["batch"], seq_len, sweep["hidden"])
            _, stats = jax.jit(evaluator(variant))(params, x)
            rows.append(
                dict(variant=variant, batch=sweep["batch"], seq_len=seq_len,
                     hidden=sweep["hidden"], newton_iterations=int(stats.iterations),
                     converged=bool(stats.converged), max_iter=min(MAX_ITER[variant], seq_len))
            )  # fmt: skip
    return rows


ITERATIONS_RULE = (
    f"per parallel variant, k ≈ a + b·log2 T fitted over ≥ {MIN_ITER_POINTS} values of T over "
    f"≥ {MIN_ITER_RANGE:g}× (else INCONCLUSIVE); g = b·log2 T_max / k(T_max): FAIL iff a run did "
    f"not converge within its cap or some g > {LOG_SHARE[1]:.3g}; PASS iff every g ≤ "
    f"{CONSTANT_SHARE:.3g} (k constant); CORRECTED iff some g lies in [{LOG_SHARE[0]:.3g}, "
    f"{LOG_SHARE[1]:.3g}] (k ∝ log T); else INCONCLUSIVE"
)


def log_share(seq_lens: Sequence[int], ks: Sequence[int]) -> tuple[float, float, float]:
    """(a, b, g) of the least-squares k ≈ a + b·log₂T and g = b·log₂T_max / (a + b·log₂T_max)."""
    x = np.log2(np.asarray(seq_lens, float))
    b, a = np.polyfit(x, np.asarray(ks, float), 1)
    top = a + b * x.max()
    return float(a), float(b), float(b * x.max() / top) if top > 0 else math.inf


def iterations_decision(rows: Sequence[Mapping]) -> tuple[str, str, dict]:
    """(verdict, slip, facts) of the iterations clause. Facts: ``fits`` (variant → its runs and
    k ≈ a + b·log₂T with the share g growing with log T), ``undecided`` (variant → (values of
    T, their range)), ``stalled`` (the runs that did not converge), ``faster`` and
    ``logarithmic`` (the variants whose g is above, or in, :data:`LOG_SHARE`)."""
    df = pd.DataFrame(list(rows))
    fits, undecided = {}, {}
    stalled = df[~df.converged.astype(bool)] if not df.empty else df
    for variant in PARALLEL:
        g = df[df.variant == variant].sort_values("seq_len") if not df.empty else df
        if len(g) < MIN_ITER_POINTS or g.seq_len.max() / g.seq_len.min() < MIN_ITER_RANGE:
            undecided[variant] = (len(g), g.seq_len.max() / g.seq_len.min() if len(g) else None)
            continue
        a, b, share = log_share(g.seq_len, g.newton_iterations)
        fits[variant] = dict(
            batch=int(g.batch.iloc[0]), hidden=int(g.hidden.iloc[0]), a=a, b=b, share=share,
            ks=[int(k) for k in g.newton_iterations], seq_lens=[int(t) for t in g.seq_len],
        )  # fmt: skip
    shares = {v: f["share"] for v, f in fits.items()}
    facts = dict(
        fits=fits, undecided=undecided, stalled=stalled.to_dict("records"),
        faster=[v for v, g in shares.items() if g > LOG_SHARE[1]],
        logarithmic=[v for v, g in shares.items() if LOG_SHARE[0] <= g <= LOG_SHARE[1]],
    )  # fmt: skip
    if facts["faster"] or facts["stalled"]:
        return "FAIL", "", facts
    if undecided:
        return "INCONCLUSIVE", "", facts
    if all(g <= CONSTANT_SHARE for g in shares.values()):
        return "PASS", "", facts
    if facts["logarithmic"]:
        return "CORRECTED", "mathematical error", facts
    return "INCONCLUSIVE", "", facts


def _iterations_sentences(verdict: str, facts: dict) -> tuple[str, str]:
    """(measured, statement) of the iterations clause, from :func:`iterations_decision`'s."""
    parts = [
        f"{v} (B={f['batch']}, H={f['hidden']}): k = {', '.join(map(str, f['ks']))} at T = "
        f"{', '.join(map(str, f['seq_lens']))}; k ≈ {f['a']:.3g} + {f['b']:.3g}·log2 T, "
        f"share growing with log T g = {f['share']:.2f}"
        for v, f in facts["fits"].items()
    ] + [
        f"{r['variant']} T={r['seq_len']} H={r['hidden']}: did not converge in "
        f"{r['newton_iterations']} iterations (cap {r['max_iter']})"
        for r in facts["stalled"]
    ]
    undecided = [
        f"{v}: {n} values of T" + (f" over {span:g}×" if n else "")
        for v, (n, span) in facts["undecided"].items()
    ]
    shares = {v: f["share"] for v, f in facts["fits"].items()}
    if verdict == "FAIL":
        faster, stalled = facts["faster"], facts["stalled"]
        statement = "; ".join(
            ([f"the iterations grow faster than log T ({', '.join(faster)})"] if faster else [])
            + ([f"{len(stalled)} runs did not converge within their cap"] if stalled else [])
        )
    elif verdict == "INCONCLUSIVE" and undecided:
        statement = (
            f"the iterations need ≥ {MIN_ITER_POINTS} values of T over ≥ {MIN_ITER_RANGE:g}×: "
            + "; ".join(undecided)
        )
    elif verdict == "PASS":
        statement = (
            f"the Newton iterations do not grow with T (at most {max(shares.values()):.0%} of k "
            "grows with log T), so the span k·O(log T) stays O(log T) at the default "
            "initialisation"
        )
    elif verdict == "CORRECTED":
        statement = (
            f"the Newton iterations of {', '.join(facts['logarithmic'])} grow as log T, so "
            "k·O(log T) sequential steps are O(log² T), not O(log T)"
        )
    else:
        statement = "k grows with T, but neither as a constant nor as log T: " + ", ".join(
            f"{v} g = {g:.2f}" for v, g in shares.items()
        )
    return "; ".join(parts + undecided) or "no parallel run", statement


def judge_iterations(rows: Sequence[Mapping]) -> Verdict:
    """Newton iterations vs T: the span O(k·log T) is O(log T) only if k does not grow."""
    verdict, slip, facts = iterations_decision(rows)
    measured, statement = _iterations_sentences(verdict, facts)
    return Verdict(
        claim=CLAIM,
        verdict=verdict,
        check="Newton iterations to converge (tolerance 8 ulp on the scaled update, default "
        "initialisation) of each parallel variant's forward pass, run over T",
        measure="Newton iterations vs log T",
        rule=ITERATIONS_RULE,
        measured=measured,
        statement=statement,
        slip=slip,
        facts=facts,
    )


def structure_experiment(profile: str, run_dir) -> list[Verdict]:
    rows = structure_sweep()
    write_table(run_dir, "deer_structure.csv", rows)
    for sweep, name in (("T", "deer_structure_T.csv"), ("H", "deer_structure_H.csv")):
        write_table(run_dir, name, [r for r in rows if r["sweep"] == sweep])
    iterations = iteration_sweep(ITERATION_SWEEP[profile])
    columns = ["variant", "batch", "seq_len", "hidden", "newton_iterations", "converged",
               "max_iter"]  # fmt: skip
    write_table(run_dir, "deer_iterations.csv", iterations, columns)
    return [judge_span(rows), judge_work(rows), judge_iterations(iterations)]


# --- From the timed rows: iterations and wall time ------------------------------------------

GOAL = dict(batch=1, max_hidden=8, min_seq_len=4096)
"""Where the issue expects the parallel evaluator to win on a CPU."""
MODEL_OFF = 2.0
"""The limit model decides only where it predicts the clock: the measured times at most this
many times its limits (median over the timed cases). A bound 10× below the time predicts
nothing, and the speed-up it implies moved between 1.1 and 1.9 from run to run here."""
WALL_RULE = (
    f"speed-up s = t_sequential / t_variant, a win iff s ≥ {FASTER} and a loss iff s ≤ "
    f"{SLOWER}, by the medians and by the fastest repeats alike (else a tie); the limit model's "
    f"speed-up ŝ = limit_sequential / limit_variant (bench.calibration, this device); at batch "
    f"{GOAL['batch']}, H ≤ {GOAL['max_hidden']}, T ≥ {GOAL['min_seq_len']}, a size decides iff "
    f"some variant's ŝ ≥ {FASTER}·m, m = the model's error: the median over the timed cases of "
    f"max(ŝ/s, s/ŝ) (the device leaves room for a win beyond the model's own error), and only "
    f"while the measured times are at most {MODEL_OFF:g}× the limits (median over the timed "
    "cases: a model farther from the clock decides nothing); judged by the better "
    "variant measured: FAIL iff it loses at a deciding size, PASS iff it wins at every one, "
    "else INCONCLUSIVE (also with no deciding size: this device cannot decide the claim)"
)


def _model_says(model_speedup: float) -> str:
    """The limit model's outcome: :func:`outcome` of its speed-up, or ``no limit``."""
    return outcome(model_speedup, model_speedup) if model_speedup == model_speedup else "no limit"


def wall_time_decision(table: pd.DataFrame) -> tuple[str, dict]:
    """(verdict, facts) of the wall-time clause. Facts: ``cells`` (each size at
    :data:`GOAL`: its variants' speed-ups, measured and modelled, the best one's outcome, and
    whether it ``decides``), ``deciding``, ``wins``, ``losses`` (the deciding sizes the best
    variant lost), ``modelled`` and ``disagree`` (the timed cases whose limit model's outcome
    differs from the measured one), ``crossovers`` and ``timed`` (every timed case)."""
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
            dict(mode=mode, seq_len=seq_len, hidden=hidden, best=best.outcome,
                 best_speedup=best.speedup, decides=bool((g.model_speedup >= room).any()),
                 variants=[(r.variant, r.speedup, r.model_speedup) for r in g.itertuples()])
        )  # fmt: skip
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
        crossovers=crossovers(table),
        timed=[
            (r.variant, r.mode, r.batch, r.seq_len, r.hidden, r.speedup) for r in timed.itertuples()
        ],
    )
    if not cells or not deciding:
        return "INCONCLUSIVE", facts
    if facts["losses"]:
        return "FAIL", facts
    return ("PASS" if facts["wins"] == facts["deciding"] else "INCONCLUSIVE"), facts


def _model_check(timed: pd.DataFrame) -> tuple[float, float]:
    """How far the limit model is from the clock over the timed cases: its speed-ups' typical
    factor from the measured ones, and the measured time over the limit (medians; NaN where
    no case has a limit)."""
    both = timed[(timed.model_speedup > 0) & (timed.speedup > 0) & (timed.limit_ms > 0)]
    if both.empty:
        return math.nan, math.nan
    off = np.exp(np.median(np.abs(np.log(both.model_speedup / both.speedup))))
    return float(off), float(np.median(both.time_ms / both.limit_ms))


def _wall_time_sentences(verdict: str, facts: dict) -> tuple[str, str]:
    """(measured, statement) of the wall-time clause, from :func:`wall_time_decision`'s."""
    cells = [
        f"{c['mode']} T={c['seq_len']} H={c['hidden']}: "
        + ", ".join(f"{v} ×{s:.3g} (limit model ×{m:.3g})" for v, s, m in c["variants"])
        + f" → {c['best']}"
        + ("" if c["decides"] else " (not deciding: the limit model leaves no room for a win)")
        for c in facts["cells"]
    ]
    where = f"batch {GOAL['batch']}, H ≤ {GOAL['max_hidden']}, T ≥ {GOAL['min_seq_len']}"
    if not cells:
        statement = f"no case at {where} was timed with both evaluators"
    elif not facts["limit_gap"] <= MODEL_OFF:
        statement = (
            "this device's limit model decides nothing: the measured times are "
            f"×{facts['limit_gap']:.3g} its limits (median; ×{MODEL_OFF:g} allowed), and its "
            f"speed-ups miss the measured ones by ×{facts['model_off']:.3g}"
            if facts["limit_gap"] == facts["limit_gap"]
            else "no timed case has a limit model (no calibration): the device cannot decide"
        )
    elif not facts["deciding"]:
        statement = (
            f"this device cannot decide the claim: at {where} its limit model (or its missing "
            "calibration) leaves the parallel evaluator no room to win; the claim is decided on a "
            "device where it does"
        )
    elif verdict == "FAIL":
        statement = (
            "on this device the sequential scan is faster where its limit model leaves the "
            "parallel evaluator room to win: "
            + "; ".join(
                f"T={c['seq_len']} H={c['hidden']} ({c['mode']}, best ×{c['best_speedup']:.2g})"
                for c in facts["losses"]
            )
        )
    elif verdict == "PASS":
        statement = (
            "on this device the parallel evaluator beats the sequential scan at every size of "
            f"{where} where the limit model leaves it room to win ({facts['deciding']} of "
            f"{len(cells)})"
        )
    else:
        statement = "the timings tie at some size where the limit model leaves room for a win"
    modelled, disagree = facts["modelled"], facts["disagree"]
    if modelled:
        statement += (
            f"; the limit model's outcome (win, tie, loss) matches the measured one in "
            f"{modelled - len(disagree)} of {modelled} timed cases"
            + (f", not in {', '.join(disagree)}" if disagree else "")
        )
    if facts["crossovers"]:
        statement += "; crossover in hidden size: " + "; ".join(facts["crossovers"])
    all_timed = ", ".join(
        f"{v} {mode} B={b} T={t} H={h} ×{s:.3g}" for v, mode, b, t, h, s in facts["timed"]
    )
    measured = "; ".join(cells) + (f" (all: {all_timed})" if all_timed else "")
    if facts["model_off"] == facts["model_off"]:
        measured += (
            f"; limit model checked: its speed-ups ×{facts['model_off']:.3g} from the measured "
            f"(median), the measured times ×{facts['limit_gap']:.3g} its limits"
        )
    return measured or "no parallel case timed against the sequential scan", statement


def judge_wall_time(table: pd.DataFrame) -> Verdict:
    """Does the parallel evaluator beat the scan where the issue expects it to, on a device
    whose limit model leaves it room to? (docs/claims.md: which device decides, and why)."""
    verdict, facts = wall_time_decision(table)
    measured, statement = _wall_time_sentences(verdict, facts)
    return Verdict(
        claim=CLAIM,
        verdict=verdict,
        check="wall time of the timed deer cases (forward and train) against the sequential "
        "scan at the same sizes, parameters and inputs, and against the limit model's speed-up",
        measure="wall time vs the sequential scan (speed-up)",
        rule=WALL_RULE,
        measured=measured,
        statement=statement,
        facts=facts,
    )


def judge_rows(df: pd.DataFrame, fits: pd.DataFrame, run_dir=None) -> list[Verdict]:
    table = speedups(df)
    if table.empty:
        return []
    return [judge_wall_time(table)]


register(
    Experiment(
        "deer",
        (CLAIM, CLAIM, CLAIM),
        structure_experiment,
        curves=(
            Curve(
                "deer_structure_T.csv",
                "seq_len",
                "span_ops",
                "variant",
                "sequence length T",
                "span (ops on the critical path)",
                f"span vs T (H = {STRUCTURE['at_hidden']}, k = {TRACE_ITERATIONS})",
                logx=True,
            ),
            Curve(
                "deer_structure_H.csv",
                "hidden",
                "work_flops",
                "variant",
                "hidden units H",
                "work (FLOPs)",
                f"work vs H (T = {STRUCTURE['at_seq_len']}, k = {TRACE_ITERATIONS})",
                logx=True,
            ),
        ),  # fmt: skip
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
        (SPAN_RULE, WORK_RULE, ITERATIONS_RULE, WALL_RULE),
        "structure traced; iterations run over T; wall time from the timed `deer` cases",
    )
)
