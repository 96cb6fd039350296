"""``report.md`` for a run folder, rendered from its CSVs alone (so it can be re-rendered).

The run is judged first (:mod:`bench.verdicts`: ``fits.csv``, ``shapes.csv``,
``claims_derived.csv``); rendering writes ``report.md`` and the PNG plots (:mod:`bench.plots`). The
report opens with a summary a reader can act on in ten seconds: one line per claim about sequential
steps judged by the clock (what it says of the claim's count against its rivals, how sure, and which
command can decide where this profile cannot: :func:`clock_lines`), the verdict counts, one line per
claim and measure (the claim in plain words, its verdict and the figure that decided it), the
headline speed-up of each suite, and the cases too noisy to trust (spread above :data:`NOISY_IQR` of
the median). The evidence follows: each claim's rule and measurements in full; variant speed-ups
(each variant's over its suite's baseline variant, same sizes, with its work ratio); fits; each case
against its limit; plots; all measurements; failures. Tables are GitHub markdown, numbers keep 3
significant digits, and no cell holds more than :data:`MAX_CELL` characters (the CSVs keep the full
text).

What is particular to one suite is the suite's own (``bench.workloads.Suite``): the clauses it
adds to its headline and its sections, placed after the variant ratios or after the fits. This
module renders any suite the same way and names none, as a benchmark's scoring knows no
workload; a new suite brings its summary in its own file.
"""

from __future__ import annotations

import math
import pathlib
import re
from collections.abc import Mapping

import pandas as pd

from bench import claims, fits, judge, plots, store, timing
from bench.config import DEFAULT_ROUNDS
from bench.markdown import MAX_CELL, fmt, shorten, table
from bench.verdicts import Judged
from bench.workloads import SIZE_FIELDS, suites

NOISY_IQR = timing.NOISY_SPREAD
"""A case whose spread (``bench.timing.spread``: of its per-round medians when timed in rounds)
exceeds this fraction of its median is listed as too noisy to trust (its ratios and fits carry
that noise), by the same measure as its row's note."""
SPEEDUP = "the baseline's median time over the variant's, ×2 = twice as fast, ×0.5 = half as fast"
"""How every speed-up in the report reads: headline, variant table, the suites' sections (the
DEER section's) and the claims (C13's ``s = t_sequential / t_variant``) alike."""
CLAIM_CELL = 110
"""The claim's words in the summary table are cut at this length (in full below)."""


def _sizes(df: pd.DataFrame) -> list[str]:
    return [f for f in SIZE_FIELDS if df[f].notna().any()]


def _spread(df: pd.DataFrame) -> pd.Series:
    """Each row's spread as the runner's note reads it (``bench.timing.spread``)."""
    rounds = df.round_spread if "round_spread" in df else pd.Series(pd.NA, index=df.index)
    return timing.spread(rounds, df.time_iqr_s, df.time_median_s)


def _noisy(df: pd.DataFrame) -> pd.Series:
    """Rows too noisy to trust: spread above :data:`NOISY_IQR` of their median."""
    return (_spread(df) > NOISY_IQR).fillna(False).astype(bool)


def variant_ratios(df: pd.DataFrame, baselines: dict[str, dict[str, str]]) -> pd.DataFrame:
    """Each variant's speed-up over its suite's baseline variant at equal sizes (the
    baseline's median time over the variant's: above 1 the variant is faster, the direction
    of every speed-up the report writes, :data:`SPEEDUP`) and its work over the baseline's; a
    work ratio outside [0.9, 1.1] should be explained by the variant's note."""
    ok = df[df.status == "ok"]
    out = []
    for (suite, mode), group in ok.groupby(["suite", "mode"]):
        base = baselines.get(suite, {}).get(mode)
        if base is None or base not in set(group.variant):
            continue
        keys = ["model", *SIZE_FIELDS, "n_devices"]
        group = group.assign(noisy=_noisy(group))
        ref = group[group.variant == base][keys + ["time_median_s", "work_flops", "noisy"]]
        merged = group.merge(ref, on=keys, suffixes=("", "_base"), how="inner")
        merged = merged[merged.variant != base]
        for rec in merged.to_dict("records"):
            sizes = " ".join(f"{f}={rec[f]}" for f in SIZE_FIELDS if not pd.isna(rec[f]))
            out.append(
                dict(
                    suite=suite,
                    mode=mode,
                    variant=rec["variant"],
                    baseline=base,
                    sizes=sizes,
                    time_ms=rec["time_median_s"] * 1e3,
                    baseline_ms=rec["time_median_s_base"] * 1e3,
                    speedup=rec["time_median_s_base"] / rec["time_median_s"],
                    work_ratio=rec["work_flops"] / rec["work_flops_base"],
                    too_noisy=bool(rec["noisy"] or rec["noisy_base"]),
                    note=rec["note"],
                )
            )
    return pd.DataFrame(out)


def depth_table(fitted: pd.DataFrame) -> pd.DataFrame:
    """The sweeps, latency-bound and work-bound ones of a variant side by side."""
    t = fitted.sort_values(["suite", "variant", "mode", "axis", "regime"]).copy()
    t["slope"] = [
        f"{s:.2f} ± {c:.2f}" if c == c else f"{s:.2f}"
        for s, c in zip(t.slope, t.slope_ci95, strict=True)
    ]
    t["points"] = [f"{n} over {r:.3g}×" for n, r in zip(t.n_points, t.axis_range, strict=True)]
    columns = ["suite", "variant", "mode", "axis", "regime", "fixed", "points", "slope",
               "span_exponent", "steps_exponent", "work_exponent", "span_share",
               "steps_share", "bound"]  # fmt: skip
    return t[columns].rename(
        columns={
            "span_exponent": "span",
            "steps_exponent": "steps",
            "work_exponent": "work",
            "span_share": "span share",
            "steps_share": "steps share",
        }  # fmt: skip
    )


def _brent_groups(fitted: pd.DataFrame) -> pd.DataFrame:
    """One row per fitted group whose Brent fit has both a positive work and span term."""
    terms = ["brent_span_a_s_per_flop", "brent_span_b_s_per_step"]
    if not set(terms) <= set(fitted.columns):
        return pd.DataFrame(columns=terms)
    groups = fitted.drop_duplicates(fits.GROUP)
    both = (groups.brent_span_a_s_per_flop > 0) & (groups.brent_span_b_s_per_step > 0)
    return groups[both & _precise(groups)]


def _precise(fitted: pd.DataFrame) -> pd.Series:
    """Fits whose slope's 95% interval is narrower than the slope itself: only they give
    constants (a slope of 0.32 ± 0.67 says nothing about the device)."""
    if not {"slope", "slope_ci95"} <= set(fitted.columns):
        return pd.Series(True, index=fitted.index)
    slope, half = fitted.slope.astype(float), fitted.slope_ci95.astype(float)
    return (half < slope.abs()).fillna(False)


def device_constants(fitted: pd.DataFrame) -> str:
    """What the Brent fits (time ≈ a·work + b·span) say about the device: the cost of one
    operation on the critical path, of one FLOP, and the work per operation below which a step
    waits on its depth."""
    usable = _brent_groups(fitted)
    if usable.empty:
        if not fitted.empty:
            return (
                "\nNo device constants: no fitted group has both Brent terms positive and a "
                "slope whose 95% interval is narrower than the slope.\n"
            )
        return ""
    b = usable.brent_span_b_s_per_step.median()
    a = usable.brent_span_a_s_per_flop.median()
    return (
        f"\nAcross the {len(usable)} fitted groups with both terms, the median constants are "
        f"b = {b * 1e6:.3g} µs per operation on the critical path and a = {a * 1e9:.3g} ns per "
        f"FLOP (≈ {1 / a / 1e9:.3g} GFLOP/s): on this device a step whose work per dependent "
        f"operation is below b/a ≈ {b / a:.3g} FLOPs waits on its depth, above it on its work.\n"
    )


def limits_section(env: dict, df: pd.DataFrame, fitted: pd.DataFrame) -> str:
    """The device calibration, each case's efficiency against its limit (ranked), the term
    that bounds each suite, and the calibration beside the Brent fits' constants."""
    cal = env.get("calibration")
    rows = df[(df.status == "ok") & df.efficiency.notna()].copy()
    if not cal or rows.empty:
        return ""
    parts = [
        "\n## Every case against its limit\n\n",
        "The limit of a case is the time this device could not beat: max(work / peak FLOP/s, "
        "bytes moved / bandwidth) + loop steps executed × the cost of one loop iteration, from "
        "the calibration below (bench/calibration.py); efficiency = limit / the fastest "
        "repeat.\n\n",
        table(
            pd.DataFrame(
                [
                    dict(constant=k, value=v["value"], unit=v["unit"], how=v["how"])
                    for k, v in cal.items()
                ]
            )  # fmt: skip
        ),
    ]
    a = _brent_groups(fitted).brent_span_a_s_per_flop
    if not a.empty:
        ratio = cal["matmul_flops_per_s"]["value"] * a.median()  # peak / the fits' rate
        parts.append(
            f"\nBeside it, the Brent fits' median cost of a FLOP is {a.median() * 1e9:.3g} ns "
            f"(≈ {1 / a.median() / 1e9:.3g} GFLOP/s), against the calibrated peak of "
            f"{cal['matmul_flops_per_s']['value'] / 1e9:.3g} GFLOP/s: the cases' own "
            + (f"arithmetic runs {ratio:.3g}× below" if ratio >= 1
               else f"arithmetic runs {1 / ratio:.3g}× above")
            + " a large matmul's.\n"
        )  # fmt: skip
    by_suite = rows.groupby("suite").agg(
        cases=("efficiency", "size"),
        median_efficiency=("efficiency", "median"),
        best=("efficiency", "max"),
        bound=("limit_bound", lambda b: b.mode().iloc[0]),
    )
    parts.append("\nPer suite (the term that bounds most of its cases):\n\n")
    parts.append(table(by_suite.reset_index()))
    parts.append(_beaten_limits(rows, cal))
    rows["sizes"] = [
        " ".join(f"{f}={r[f]}" for f in SIZE_FIELDS if not pd.isna(r[f]))
        for r in rows.to_dict("records")
    ]
    rows["median_ms"], rows["limit_ms"] = rows.time_median_s * 1e3, rows.limit_s * 1e3
    ranked = rows.sort_values("efficiency")
    columns = ["suite", "model", "variant", "mode", "sizes", "median_ms", "limit_ms",
               "limit_bound", "efficiency"]  # fmt: skip
    parts.append("\nThe least efficient cases first (all of them in `measurements.csv`):\n\n")
    parts.append(table(ranked.head(15), columns))
    return "".join(parts)


def _beaten_limits(rows: pd.DataFrame, cal: dict) -> str:
    """A case faster than its limit (efficiency > 1) is the model's failure, not the case's
    success: say which, by which term, and what the case achieved against that term's
    calibrated constant."""
    beaten = rows[rows.efficiency > 1.0]
    if beaten.empty:
        return ""
    groups = beaten.groupby(["suite", "limit_bound"]).efficiency.agg(["size", "max"])
    listed = "; ".join(
        f"{suite} ({int(n)} bound by {bound}, up to {top:.3g})"
        for (suite, bound), (n, top) in groups.iterrows()
    )
    seen = []
    steps = beaten[(beaten.limit_bound == "steps") & (beaten.steps_executed > 0)]
    if not steps.empty:
        per_step = (steps.time_min_s / steps.steps_executed).min()
        seen.append(
            f"the steps-bound ones ran down to {per_step * 1e9:.3g} ns per loop iteration, "
            f"against the calibrated {cal['loop_iteration_s']['value'] * 1e9:.3g} ns (a loop "
            "cheaper than the calibration's, e.g. one XLA:CPU compiles into a single native "
            "function, bench/calibration.py)"
        )
    compute = beaten[(beaten.limit_bound == "compute") & (beaten.work_flops > 0)]
    if not compute.empty:
        rate = (compute.work_flops / compute.time_min_s).max()
        seen.append(
            f"the compute-bound ones reached {rate / cal['matmul_flops_per_s']['value']:.3g}× "
            "the calibrated matmul rate"
        )
    memory = beaten[beaten.limit_bound == "memory"]
    if not memory.empty:
        seen.append(f"{len(memory)} memory-bound: fewer bytes moved than the compiled program's")
    return (
        f"\n**{len(beaten)} case(s) ran faster than their limit** (efficiency > 1): {listed}. "
        "There the limit model does not hold and their efficiency means nothing"
        + (": " + "; ".join(seen) if seen else "")
        + ".\n"
    )


def claim_texts() -> dict[str, str]:
    """Each claim in plain words, as its module states it (``bench.claims.Claim.words``: also
    the "the claim, in our words" column of ``docs/claims.md``)."""
    return {c.id: c.words for c in claims.stated()}


def first_clause(text: str) -> str:
    """The text up to its first ``;`` outside brackets: the figure a verdict's ``measured``
    leads with."""
    depth = 0
    for i, ch in enumerate(str(text)):
        depth += ch in "([{"
        depth -= ch in ")]}"
        if ch == ";" and depth == 0:
            return str(text)[:i]
    return str(text)


def _anchor(claim: str) -> str:
    return f"claim-{claim.lower()}"


WALL_TIME = "wall time"
"""A verdict row whose measure starts with this judges a claim about sequential steps by the
clock: the first screen gives each such row a line of its own (:func:`clock_lines`)."""
NEXT = {
    "smoke": 'a larger profile: `make bench ARGS="--profile cpu"` (it times the latency sweeps '
    f"in {DEFAULT_ROUNDS['cpu']} interleaved rounds) or, on an accelerator, `make bench` "
    "(profile `full`)",
    "cpu": "the `full` profile on an accelerator may: `make bench` on a GPU machine (it picks "
    "the profile by device)",
    "full": "no profile of this suite decides it: see the rule in `docs/claims.md`",
}
"""Where a profile's run leaves a wall-time claim INCONCLUSIVE, the command that can decide it."""
QUIETER = "a quieter machine can: the same run with the load average below the cores (`uptime`)"


def _sure(facts: Mapping) -> str:
    """How sure a joint-fit verdict is (``bench.judge``'s facts): the closest rival's held-out
    error over the claim's, with its 95% interval; empty where the facts hold no such fit."""
    ratio, ci = facts.get("ratio") or {}, facts.get("ratio_ci") or {}
    usable = [r for r in ratio if r in ci and all(x == x for x in ci[r]) and ratio[r] == ratio[r]]
    if not usable:
        return ""
    closest = min(usable, key=lambda r: ratio[r])
    lo, hi = ci[closest]
    return (
        f"the closest rival ({closest}) has ×{ratio[closest]:.3g} [{lo:.3g}, {hi:.3g}] the "
        f"claim's held-out error (95% interval, {facts.get('rounds')} rounds resampled; above 1: "
        "the claim's count predicts better)"
    )


def _said(statement: str, measured: str) -> str:
    """The statement's first clause with the figure that decided it (``measured``'s first
    clause) merged in where the statement ends with its words, else after it in brackets."""
    said = first_clause(statement) or "no statement"
    decided = shorten(first_clause(measured), MAX_CELL)
    for boundary in re.finditer(": ", said):  # the longest end of the statement it repeats
        if decided.startswith(said[boundary.end() :]):
            return said[: boundary.end()] + decided
    return said if not decided or decided in said else f"{said} ({decided})"


def _next(verdict: str, facts: Mapping, profile: str | None) -> str:
    """Which command can decide a wall-time claim this run left INCONCLUSIVE."""
    if verdict != "INCONCLUSIVE":
        return ""
    if profile != "smoke" and "noise" in (facts.get("open") or ()):
        return QUIETER
    return NEXT.get(str(profile), NEXT["cpu"])


def clock_lines(every: pd.DataFrame, profile: str | None) -> str:
    """One line per wall-time verdict row: what the clock says of the claim's count against its
    rivals, how sure, and where this profile cannot decide, which command can; never cut."""
    rows = every[every.measure.astype(str).str.startswith(WALL_TIME)]
    if rows.empty:
        return ""
    texts = claim_texts()
    lines = [
        "**Sequential depth on the clock** (one line per claim about sequential steps: does "
        "wall time follow the claim's count better than its rivals? rule: `docs/claims.md`):\n\n"
    ]
    for rec in rows.to_dict("records"):
        facts = rec.get("facts") if isinstance(rec.get("facts"), Mapping) else {}
        parts = [_said(fmt(rec["statement"]), fmt(rec["measured"]))]
        sure = "" if facts.get("reason") in judge.UNDECIDED else _sure(facts)
        if sure:
            parts.append(f"how sure: {sure}")
        then = _next(rec["verdict"], facts, profile)
        if then:
            parts.append(f"to decide: {then}")
        words = shorten(texts.get(rec["claim"], fmt(rec["check"])), CLAIM_CELL)
        lines.append(
            f"- [{rec['claim']}](#{_anchor(rec['claim'])}) **{rec['verdict']}**, {words}: "
            + "; ".join(" ".join(p.split()) for p in parts)
            + "\n"
        )
    return "".join(lines) + "\n"


def verdict_summary(every: pd.DataFrame) -> str:
    """The verdict counts and one line per claim and measure."""
    counts = every.verdict.value_counts()
    tally = " · ".join(f"{counts.get(v, 0)} {v}" for v in store.VERDICTS)
    lines = [
        f"**Verdicts:** {tally} ({len(every)} rows over {every.claim.nunique()} claims; a "
        "claim about sequential steps has one row per measure)\n\n"
    ]
    texts = claim_texts()
    rows = pd.DataFrame(
        {
            "claim": [f"[{c}](#{_anchor(c)})" for c in every.claim],
            "verdict": every.verdict,
            "the seed's claim": [
                texts.get(c, chk) for c, chk in zip(every.claim, every.check, strict=True)
            ],
            "measure": every.measure,
            "decided by": [first_clause(m) for m in every.measured],
        }
    )
    rows["the seed's claim"] = [shorten(t, CLAIM_CELL) for t in rows["the seed's claim"]]
    lines.append(table(rows, max_cell=MAX_CELL))
    return "".join(lines)


def claim_details(every: pd.DataFrame, limit: int = 700) -> str:
    """Each claim's row in full, as paragraphs: what was checked, the rule, the numbers."""
    parts, seen = [], set()
    for rec in every.to_dict("records"):
        anchor = "" if rec["claim"] in seen else f'<a id="{_anchor(rec["claim"])}"></a>\n'
        seen.add(rec["claim"])
        slip = f" ({rec['slip']})" if rec.get("slip") and not pd.isna(rec["slip"]) else ""
        parts.append(
            f"\n{anchor}### {rec['claim']} · {rec['verdict']}{slip} · {rec['measure']}\n\n"
            f"{fmt(rec['statement']) or '_(no statement)_'}\n\n"
            f"- checked: {fmt(rec['check'])}\n"
            f"- rule: {fmt(rec['rule'])}\n"
            f"- measured: {shorten(fmt(rec['measured']), limit)}"
            + (" (full text: `claims.csv`)" if len(fmt(rec["measured"])) > limit else "")
            + "\n"
        )
    return "".join(parts)


def _geomean(x: pd.Series) -> float:
    return float(math.exp(x.astype(float).apply(math.log).mean()))


def headlines(
    df: pd.DataFrame, ratios: pd.DataFrame, own: Mapping[str, list[str]] | None = None
) -> list[str]:
    """One line per suite: its compared variants' speed-up over the baseline (:data:`SPEEDUP`;
    geometric mean over the matched sizes, with the range), then the clauses the suite gives
    itself in ``own`` (its ``Suite.headline``: a FLOP-rate fraction, a scaling efficiency). A ratio
    whose case or baseline is too noisy to trust (:func:`noisy_cases`) is left out of the
    mean and counted."""
    lines = []
    for suite in sorted(df.suite.dropna().unique()):
        parts = []
        mine = ratios[ratios.suite == suite] if not ratios.empty else ratios
        for (mode, base), group in mine.groupby(["mode", "baseline"]) if not mine.empty else ():
            each = [_headline(variant, g) for variant, g in group.groupby("variant")]
            parts.append(f"{mode}, speed-up over {base}: " + "; ".join(each))
        parts += (own or {}).get(suite, [])
        lines.append(f"- **{suite}**: " + (" · ".join(parts) or "no variant compared here"))
    return lines


def _headline(variant: str, g: pd.DataFrame) -> str:
    """``variant ×1.1 (n cases, range)``, its speed-up over the cases not too noisy to trust."""
    noisy = g.too_noisy.sum() if "too_noisy" in g else 0
    left_out = f"; {noisy} too noisy, left out" if noisy else ""
    g = g[~g.too_noisy] if "too_noisy" in g else g
    if g.empty:
        cases = "its one case" if noisy == 1 else f"all {noisy} cases"
        return f"{variant}: {cases} too noisy to trust, no ratio"
    spread = f"×{g.speedup.min():.3g}–{g.speedup.max():.3g}" if len(g) > 1 else ""
    cases = f"{len(g)} cases, {spread}" if len(g) > 1 else "1 case"
    return f"{variant} ×{_geomean(g.speedup):.3g} ({cases}{left_out})"


def noisy_cases(df: pd.DataFrame, limit: int = 12) -> str:
    """The ok cases too noisy to trust (:func:`_noisy`), worst first."""
    ok = df[(df.status == "ok") & df.time_iqr_s.notna() & (df.time_median_s > 0)]
    spread = _spread(ok).astype(float)
    noisy = ok.assign(spread=spread)[spread > NOISY_IQR].sort_values("spread", ascending=False)
    head = (
        f"**Too noisy to trust** (IQR of the per-round medians, or of the raw times for a case "
        f"timed back to back, above {NOISY_IQR:.0%} of the median): "
        f"{len(noisy)} of {len(ok)} timed cases"
    )
    if noisy.empty:
        return head + ".\n"
    items = [
        f"- {_case_label(r)}: IQR {r['spread']:.0%} of {r['time_median_s'] * 1e3:.3g} ms\n"
        for r in noisy.head(limit).to_dict("records")
    ]
    if len(noisy) > limit:
        items.append(
            f"- and {len(noisy) - limit} more (`measurements.csv`: round_spread, time_iqr_s)\n"
        )
    return head + ":\n\n" + "".join(items)


def _case_label(rec: dict) -> str:
    sizes = " ".join(f"{f}={rec[f]}" for f in SIZE_FIELDS if not pd.isna(rec[f]))
    return f"{rec['suite']}/{rec['variant']} {rec['mode']} {sizes}"


def time_section(env: dict) -> str:
    """Where each session's wall time went (``env.json``: its ``time_s``, bench/account.py)."""
    parts = []
    for session in store.sessions(env):
        spent = session.get("time_s")
        if not spent:
            continue
        total = spent.get("total", 0.0)
        rows = sorted(((k, v) for k, v in spent.items() if k != "total"), key=lambda kv: -kv[1])
        lines = [f"| {k} | {v:.1f} | {v / total:.0%} |" for k, v in rows if total > 0]
        parts.append(
            f"\nSession {session.get('session', 1)}: {total:.0f} s of wall time before this "
            "report (rendering it and its plots is booked apart: `report_s` in env.json)"
            ".\n\n| part | seconds | share |\n|---|---|---|\n" + "\n".join(lines) + "\n"
        )
    if not parts:
        return ""
    return "\n## Where the time went\n" + "".join(parts)


def _load(env: dict) -> str:
    loads = [env.get("load_avg_start"), env.get("load_avg_finish")]
    shown = [f"{x[0]:.2g}" for x in loads if x]
    return f"; load average {' → '.join(shown)}" if shown else ""


def suite_output(run_dir: pathlib.Path, df: pd.DataFrame, run_suites: set[str]):
    """What the run's suites say of themselves (``Suite.headline``, ``Suite.report_sections``):
    ``({suite: headline clauses}, [(section, suite), ...])``, the sections sorted by their
    ``order``, then suite name."""
    own = {name: s for name, s in suites().items() if name in run_suites}
    headline = {name: s.headline(df) for name, s in own.items() if s.headline}
    sections = sorted(
        ((section, name) for name, s in own.items() if s.report_sections
         for section in s.report_sections(run_dir, df)),
        key=lambda pair: (pair[0].order, pair[1]),
    )  # fmt: skip
    return headline, sections


def summary(
    env: dict, df: pd.DataFrame, every: pd.DataFrame, ratios: pd.DataFrame, own: Mapping
) -> str:
    """The report's title line and its summary: the verdicts, the cases, each suite's
    headline (its ratios and the clauses ``own`` gives it) and the cases too noisy to trust."""
    parts = [
        f"{env['device_count']} × {env['device_kind']} ({env['backend']}), host CPU "
        f"{env['host_cpu']} ({env['host_cpu_count']} cores); jax {env['jax']}, flax "
        f"{env['flax']}; profile {env['profile']}; git {str(env.get('git_sha'))[:10]}"
        f"{' (dirty)' if env.get('git_dirty') else ''}; started {env['started_utc']}"
        f"{', finished ' + env['finished_utc'] if env.get('finished_utc') else ' (unfinished)'}"
        f"{_load(env)}. Details: [Run context](#run-context).\n"
    ]
    parts.append("\n## Summary\n\n")
    if not every.empty:
        parts.append(clock_lines(every, env.get("profile")))
        parts.append(verdict_summary(every))
    elif env.get("experiments") is False:
        parts.append(
            "**Claims: not checked**: this run was made with `--no-experiments`, so no claim "
            "of the seed was judged (run without it to judge them).\n"
        )
    else:
        parts.append("**Claims:** none judged in this run (its suites' experiments gave none).\n")
    failed = df[df.status != "ok"]
    cases = f"**Cases:** {len(df)} timed, {(df.status == 'ok').sum()} ok"
    if not failed.empty:
        counts = failed.status.value_counts()
        cases += (
            ", "
            + ", ".join(f"{n} {status}" for status, n in counts.items())
            + " (see [Cases that did not produce a time](#cases-that-did-not-produce-a-time))"
        )
    parts.append(f"\n{cases}.\n\n")
    parts.append(
        f"**Headline per suite** (speed-up of each variant over the suite's baseline at equal "
        f"sizes and model, {SPEEDUP}; geometric mean over the matched cases whose "
        "times are not too noisy to trust (below), range in brackets):\n\n"
        + "\n".join(headlines(df, ratios, own))
        + "\n\n"
    )
    parts.append(noisy_cases(df))
    return "".join(parts)


def run_context(env: dict) -> str:
    """Device, versions, profile, git, times and command of the run."""
    return (
        "\n## Run context\n\n"
        f"- device: {env['device_count']} × {env['device_kind']} ({env['backend']}); "
        f"host CPU: {env['host_cpu']} ({env['host_cpu_count']} cores)\n"
        f"- jax {env['jax']}, jaxlib {env['jaxlib']}, flax {env['flax']}, optax {env['optax']}, "
        f"python {env['python']}\n"
        f"- profile: {env['profile']}; git {str(env.get('git_sha'))[:10]}"
        f"{' (dirty)' if env.get('git_dirty') else ''}; started {env['started_utc']}"
        f"{'; finished ' + env['finished_utc'] if env.get('finished_utc') else ' (unfinished)'}\n"
        f"- command: `{env.get('command', '')}`\n"
    )


def visit_line(samples: pd.DataFrame | None) -> str:
    """How far a visit's first timed call sits from its case's median (``fits.visit_bias``)."""
    bias = fits.visit_bias(samples)
    if bias.empty:
        return ""
    within = float(((bias - 1).abs() <= 0.10).mean())
    return (
        f"\n**Switching programs**: the first timed call of an interleaved visit runs "
        f"×{bias.median():.3g} its case's median (median over {len(bias)} interleaved cases; "
        f"{within:.0%} of them within 10%). Runs of this version open each visit with an "
        "untimed call that pays for the switch; in runs without it this ratio was about 1.3.\n"
    )


def depth_section(fitted: pd.DataFrame, samples: pd.DataFrame | None = None) -> str:
    """The sweeps' fits (:func:`depth_table`), the device constants they give, and what the
    switch between interleaved programs leaves in the samples."""
    if fitted.empty:
        return ""
    return (
        "\n## Sequential depth on the clock: latency-bound and work-bound sweeps\n\n"
        "Each row is a sweep of one size axis (hw: the pixel count H·W). `slope` is the "
        "fitted log-log exponent of wall time, ± its 95% interval; the span, steps and work "
        "columns are the exponents of those counts over the same points. `span share` is the "
        "share of the time the Brent fit time ≈ a·work + b·span gives the span term (`steps "
        "share`: the same with the loop steps executed as the depth); a sweep is "
        f"latency-bound from {fits.LATENCY_SHARE}.\n\n"
        + table(depth_table(fitted))
        + device_constants(fitted)
        + visit_line(samples)
    )


def spread_cells(ok: pd.DataFrame) -> list[str]:
    """Each row's spread (:func:`_spread`, the measure :func:`noisy_cases` counts by), marked
    "too noisy" on the row itself above :data:`NOISY_IQR` (a note cut in its cell, or written
    by an older runner, cannot hide it)."""
    return [
        "" if pd.isna(x) else f"{float(x):.0%}" + (" too noisy" if x > NOISY_IQR else "")
        for x in _spread(ok)
    ]


def measurements_section(df: pd.DataFrame) -> str:
    """Every timed case (its ``spread`` column says where it is too noisy to trust), then the
    cases that did not produce a time."""
    parts = []
    ok = df[df.status == "ok"].copy()
    if not ok.empty:
        ok["median_ms"] = ok.time_median_s * 1e3
        ok["iqr_ms"] = ok.time_iqr_s * 1e3
        ok["spread"] = spread_cells(ok)
        cols = ["suite", "model", "variant", "mode", *_sizes(ok), "n_devices", "median_ms",
                "iqr_ms", "spread", "compile_s", "seq_steps_pred", "span_ops", "steps_executed",
                "work_flops", "achieved_flops_per_s", "note"]  # fmt: skip
        cols = [c for c in cols if c in ok and ok[c].notna().any()]
        parts.append("\n## Measurements\n\n" + table(ok, cols, max_cell=MAX_CELL))
    failed = df[df.status != "ok"]
    if not failed.empty:
        parts.append("\n## Cases that did not produce a time\n\n")
        parts.append(
            table(
                failed,
                ["suite", "model", "variant", "mode", *_sizes(failed), "status", "error"],
                max_cell=MAX_CELL,
            )
        )
    return "".join(parts)


def render(judged: Judged, env: dict | None = None) -> pathlib.Path:
    """Write ``report.md`` for a judged run folder (:func:`bench.verdicts.judge_run`) and its
    env.json (``env``: as the session that ends is about to write it); returns its path."""
    run_dir, df, samples, fitted = judged.run_dir, judged.df, judged.samples, judged.fitted
    every = judged.every
    env = store.load_env(run_dir) if env is None else env
    baselines = {name: s.baselines for name, s in suites().items()}
    run_suites = set(df.suite.dropna()) | set(env.get("suites", ()))
    ratios = variant_ratios(df, baselines)
    headline, sections = suite_output(run_dir, df, run_suites)

    parts = [f"# Run {env.get('run_id') or run_dir.name}\n\n"]
    parts.append(summary(env, df, every, ratios, headline))
    parts.append(run_context(env))
    parts.append(time_section(env))
    if not every.empty:
        parts.append(
            "\n## Claims in detail\n\nEach claim's verdict row in full (also in `claims.csv` and "
            "`claims_derived.csv`; the rules: `docs/claims.md`).\n"
        )
        parts.append(claim_details(every))
    if not ratios.empty:
        parts.append(
            f"\n## Variants against their baseline (speed-up: {SPEEDUP}; work ratio: the "
            "variant's work over the baseline's, from the jaxpr, explained by the note where it "
            "is not ≈ 1)\n\n"
        )
        parts.append(table(ratios, max_cell=MAX_CELL))
    parts += [section.text for section, _ in sections if section.after == "variants"]
    parts.append(depth_section(fitted, samples))
    parts += [section.text for section, _ in sections if section.after == "fits"]
    parts.append(limits_section(env, df, fitted))
    curves = [c for e in claims.experiments(run_suites) for c in e.curves]
    figures = [f for f in claims.wall_time_figures() if set(f.suites) & run_suites]
    pngs = plots.render(run_dir, df, curves, samples, figures)
    if pngs:
        parts.append("\n## Plots\n\n" + "".join(f"![{p.stem}]({p.name})\n" for p in pngs))
    parts.append(measurements_section(df))
    path = run_dir / "report.md"
    store.write_text(path, "".join(parts))
    return path
