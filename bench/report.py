"""``report.md`` for a run folder, rendered from its CSVs alone (so it can be re-rendered).

Rendering also writes ``fits.csv`` (see :mod:`bench.fits`) and the PNG plots
(:mod:`bench.plots`). Sections: run context; claims (C1–C12 verdicts from the suites'
experiments and from the measurements); variant ratios (each variant's median time over its
suite's baseline variant, same sizes); fits; all measurements; failures. Tables are GitHub
markdown; numbers keep 3 significant digits.
"""

from __future__ import annotations

import pathlib

import pandas as pd

from bench import analysis, fits, plots, sharding
from bench.claims import derived as claims
from bench.workloads import SIZE_FIELDS


def _fmt(v) -> str:
    if v is None or v is pd.NA or (isinstance(v, float) and v != v):
        return ""
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


def table(df: pd.DataFrame, columns: list[str] | None = None) -> str:
    columns = columns or list(df.columns)
    if df.empty:
        return "_(none)_\n"
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for rec in df[columns].to_dict("records"):
        cells = [_fmt(rec[c]).replace("|", "\\|").replace("\n", " ") for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _sizes(df: pd.DataFrame) -> list[str]:
    return [f for f in SIZE_FIELDS if df[f].notna().any()]


def variant_ratios(df: pd.DataFrame, baselines: dict[str, dict[str, str]]) -> pd.DataFrame:
    """Median time of each variant divided by its suite's baseline variant at equal sizes."""
    ok = df[df.status == "ok"]
    out = []
    for (suite, mode), group in ok.groupby(["suite", "mode"]):
        base = baselines.get(suite, {}).get(mode)
        if base is None or base not in set(group.variant):
            continue
        keys = ["model", *SIZE_FIELDS]
        ref = group[group.variant == base][keys + ["time_median_s"]]
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
                    ratio=rec["time_median_s"] / rec["time_median_s_base"],
                )
            )
    return pd.DataFrame(out)


def peak_fractions(df: pd.DataFrame) -> pd.DataFrame:
    """Each case with analytic FLOPs as a fraction of its suite's measured matmul rate.

    A suite that times a ``model == "matmul"``, ``variant == "peak"`` case gets this table:
    the device's practical peak measured in the same run, not a datasheet number.
    """
    ok = df[(df.status == "ok") & df.achieved_flops_per_s.notna()]
    out = []
    for suite, group in ok.groupby("suite"):
        peak = group[(group.model == "matmul") & (group.variant == "peak")]
        if peak.empty:
            continue
        rate = float(peak.achieved_flops_per_s.max())
        for rec in group.drop(peak.index).to_dict("records"):
            sizes = " ".join(f"{f}={rec[f]}" for f in SIZE_FIELDS if not pd.isna(rec[f]))
            out.append(
                dict(
                    suite=suite,
                    model=rec["model"],
                    variant=rec["variant"],
                    mode=rec["mode"],
                    sizes=sizes,
                    gflop_per_s=rec["achieved_flops_per_s"] / 1e9,
                    matmul_gflop_per_s=rate / 1e9,
                    fraction=rec["achieved_flops_per_s"] / rate,
                )
            )
    return pd.DataFrame(out)


def render(run_dir: str | pathlib.Path) -> pathlib.Path:
    """Write ``run_dir/report.md`` from the run's CSVs and env.json; returns its path."""
    from bench.workloads import suites

    run_dir = pathlib.Path(run_dir)
    env = analysis.load_env(run_dir)
    df = analysis.load_measurements(run_dir / "measurements.csv")
    claims_path = run_dir / "claims.csv"
    measured_claims = analysis.load_claims(claims_path) if claims_path.exists() else None
    baselines = {name: s.baselines for name, s in suites().items()}

    parts = [f"# Run {run_dir.name}\n"]
    parts.append(
        f"- device: {env['device_count']} × {env['device_kind']} ({env['backend']}); "
        f"host CPU: {env['host_cpu']} ({env['host_cpu_count']} cores)\n"
        f"- jax {env['jax']}, jaxlib {env['jaxlib']}, flax {env['flax']}, optax {env['optax']}, "
        f"python {env['python']}\n"
        f"- profile: {env['profile']}; git {str(env.get('git_sha'))[:10]}"
        f"{' (dirty)' if env.get('git_dirty') else ''}; started {env['started_utc']}"
        f"{'; finished ' + env['finished_utc'] if env.get('finished_utc') else ' (unfinished)'}\n"
        f"- cases: {len(df)} ({(df.status == 'ok').sum()} ok)\n"
    )
    fitted = fits.fit(df)
    fitted.to_csv(run_dir / "fits.csv", index=False)
    derived = claims.derive(df, fitted)
    derived.to_csv(run_dir / "claims_derived.csv", index=False)
    found = [c for c in (measured_claims, derived) if c is not None and not c.empty]
    if found:
        every = pd.concat(found, ignore_index=True).sort_values("claim", key=_claim_order)
        parts.append("\n## Claims of the seed\n\n")
        parts.append(table(every, ["claim", "verdict", "measured", "check", "statement"]))
    ratios = variant_ratios(df, baselines)
    if not ratios.empty:
        parts.append("\n## Variants against their baseline (median time ratio, <1 is faster)\n\n")
        parts.append(table(ratios))
    peak = peak_fractions(df)
    if not peak.empty:
        parts.append("\n## Achieved FLOP/s against a large matmul on the same device\n\n")
        parts.append(table(peak))
    scaling = sharding.scaling_table(df)
    if not scaling.empty:
        parts.append("\n## Data-parallel scaling (efficiency: strong t1/(N·tN), weak t1/tN)\n\n")
        parts.append(table(scaling))
    if not fitted.empty:
        parts.append("\n## Scaling fits (log-log slope of time vs the swept axis)\n\n")
        parts.append(
            table(
                fitted,
                [
                    "suite",
                    "variant",
                    "mode",
                    "axis",
                    "fixed",
                    "slope",
                    "slope_ci95",
                    "pred_exponent_steps",
                    "pred_exponent_work",
                    "verdict",
                    "brent_r2",
                    "bound",
                ],
            )
        )
    pngs = plots.render(run_dir, df)
    if pngs:
        parts.append("\n## Plots\n\n" + "".join(f"![{p.stem}]({p.name})\n" for p in pngs))
    ok = df[df.status == "ok"].copy()
    if not ok.empty:
        ok["median_ms"] = ok.time_median_s * 1e3
        ok["iqr_ms"] = ok.time_iqr_s * 1e3
        cols = [
            "suite",
            "model",
            "variant",
            "mode",
            *_sizes(ok),
            "median_ms",
            "iqr_ms",
            "compile_s",
            "seq_steps_pred",
            "span_ops",
            "work_flops",
            "achieved_flops_per_s",
        ]
        cols = [c for c in cols if c in ok and ok[c].notna().any()]
        parts.append("\n## Measurements\n\n" + table(ok, cols))
    failed = df[df.status != "ok"]
    if not failed.empty:
        parts.append("\n## Cases that did not produce a time\n\n")
        parts.append(
            table(failed, ["suite", "model", "variant", "mode", *_sizes(failed), "status", "error"])
        )
    path = run_dir / "report.md"
    path.write_text("".join(parts))
    return path


def _claim_order(s: pd.Series) -> pd.Series:
    return s.str.extract(r"(\d+)")[0].astype(float)
