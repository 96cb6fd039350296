"""Scaling suite: the LSTM train step, data-parallel over 1, 2, 4, 8 devices.

The workload is the LSTM suite's train step (``bench.suites.lstm``, variant ``autodiff``);
:func:`bench.sharding.shard_workload` splits its batch over a mesh axis ``"data"`` and
replicates parameters and optimizer state, and XLA reduces the gradients. Two variants:

- ``strong``: the global batch is fixed, each device gets ``batch / N`` (ideal: ``t_1 / N``);
- ``weak``: the per-device batch is fixed, the global batch is ``N`` times it (ideal: ``t_1``).

Device counts N are the powers of two up to ``jax.device_count()``: 1, 2, 4, 8 on eight
devices, N = 1 only on one. Each case places its own data (``Case.devices = N``), so the
run's ``--devices`` does not re-shard it; ``n_devices`` is part of a case's identity, and
the suite's section of the report (:func:`scaling_table`) turns the rows into speed-up and
efficiency.

Prediction: data parallelism splits the batch, not the time axis, so every device still
runs the whole recurrence: ``seq_steps_pred = T`` at every N.

On CPU, ``JAX_NUM_CPU_DEVICES=8`` makes 8 devices that share the host's cores: such a run
checks the plumbing, its speed-ups mean nothing.
"""

from __future__ import annotations

import jax
import pandas as pd

from bench.markdown import table
from bench.sharding import shard_workload
from bench.suites import lstm
from bench.workloads import SIZE_FIELDS, Case, Section, Suite, Workload, register

NAME = "scaling"

# Model sizes, the strong-scaling global batch and the weak-scaling per-device batch.
SIZES = {
    "smoke": dict(features=4, hidden=8, seq_len=4, strong_batch=16, weak_per_device=2),
    "cpu": dict(features=32, hidden=64, seq_len=32, strong_batch=64, weak_per_device=8),
    "full": dict(features=128, hidden=512, seq_len=128, strong_batch=1024, weak_per_device=128),
}
MODEL, LSTM_VARIANT = "lstm", "autodiff"  # our LSTM, JAX differentiates the scan


def device_counts() -> list[int]:
    """Powers of two up to the device count (1, 2, 4, 8 on eight devices).

    Several processes: only multiples of the process count, as every process must take part
    (see :func:`bench.sharding.data_mesh`).
    """
    counts = [2**k for k in range(jax.device_count().bit_length())]
    return [n for n in counts if n % jax.process_count() == 0]


def _build(n_devices: int, batch: int, features: int, hidden: int, seq_len: int, seed: int):
    def build() -> Workload:
        single = lstm.workload(LSTM_VARIANT, "train", batch, features, hidden, seq_len, seed)
        return shard_workload(single, n_devices, batch)

    return build


def cases(profile: str) -> list[Case]:
    s = SIZES[profile]
    out = []
    for kind in ("strong", "weak"):
        for n in device_counts():
            batch = s["strong_batch"] if kind == "strong" else n * s["weak_per_device"]
            build = _build(n, batch, s["features"], s["hidden"], s["seq_len"], seed=0)
            sizes = dict(batch=batch, seq_len=s["seq_len"], hidden=s["hidden"])
            out.append(
                Case(
                    NAME,
                    MODEL,
                    kind,
                    "train",
                    build,
                    sizes,
                    seq_steps_pred=s["seq_len"],
                    devices=n,
                )
            )
    return out


# --- the report: speed-up and efficiency per device count ------------------------------------


def scaling_table(df: pd.DataFrame) -> pd.DataFrame:
    """Time, speed-up and efficiency per device count, from the scaling suite's rows.

    Scaling vocabulary, with ``t_N`` the step time on N devices: *strong* scaling keeps the
    global batch fixed (ideal ``t_N = t_1 / N``), *weak* scaling the per-device batch (ideal
    ``t_N = t_1``). Groups the ``ok`` rows of suite ``scaling`` by run, model, kind (the
    variant: ``strong`` or ``weak``), mode and the sizes other than the batch; within a group
    the N = 1 row is the reference. Speed-up is the throughput ratio
    ``(B_N / t_N) / (B_1 / t_1)`` and efficiency ``speed-up / N`` (strong: ``t_1 / (N t_N)``,
    weak: ``t_1 / t_N``). A group without an N = 1 row gets empty speed-up and efficiency.
    Several rows for one N in a group (repeated runs merged without ``run_id``) are reduced
    to the median of their median times.
    """
    columns = ["model", "kind", "mode", "n_devices", "batch", "per_device_batch", "time_ms",
               "samples_per_s", "speedup", "efficiency"]  # fmt: skip
    rows = df
    if "suite" in rows:
        rows = rows[rows["suite"] == NAME]
    if "status" in rows:
        rows = rows[rows["status"] == "ok"]
    if rows.empty:
        return pd.DataFrame(columns=columns)
    rows = rows.assign(kind=rows["variant"])
    others = [f for f in SIZE_FIELDS if f != "batch" and f in rows and rows[f].notna().any()]
    keys = [k for k in ("run_id", "model", "kind", "mode") if k in rows] + others
    out = []
    for _, group in rows.groupby(keys, dropna=False, sort=True):
        per_n = (
            group.groupby("n_devices")
            .agg(
                batch=("batch", "first"),
                per_device_batch=("per_device_batch", "first"),
                time_s=("time_median_s", "median"),
            )
            .sort_index()
        )
        throughput = per_n["batch"].astype(float) / per_n["time_s"].astype(float)
        ref = throughput.get(1)
        first = group.iloc[0]
        for n, rec in per_n.iterrows():
            speedup = float(throughput[n] / ref) if ref is not None else float("nan")
            out.append(
                {
                    **{k: first[k] for k in keys},
                    "n_devices": int(n),
                    "batch": rec["batch"],
                    "per_device_batch": rec["per_device_batch"],
                    "time_ms": float(rec["time_s"]) * 1e3,
                    "samples_per_s": float(throughput[n]),
                    "speedup": speedup,
                    "efficiency": speedup / int(n),
                }
            )
    table = pd.DataFrame(out)
    return table[[c for c in keys if c not in columns] + columns].reset_index(drop=True)


def headline(df: pd.DataFrame) -> list[str]:
    """Each kind's efficiency at the largest device count."""
    parts = []
    for kind, g in scaling_table(df).groupby("kind"):
        top = g.sort_values("n_devices").iloc[-1]
        efficiency, n = top["efficiency"], top["n_devices"]
        if n > 1:
            parts.append(f"{kind} scaling efficiency {efficiency:.2f} at {n} devices")
        else:
            parts.append(f"{kind} scaling: one device only, nothing to scale")
    return parts


def report_sections(run_dir, df: pd.DataFrame) -> list[Section]:
    """The scaling table, after the variant ratios."""
    scaling = scaling_table(df)
    if scaling.empty:
        return []
    title = "\n## Data-parallel scaling (efficiency: strong t1/(N·tN), weak t1/tN)\n\n"
    return [Section(title + table(scaling), after="variants")]


register(
    Suite(
        NAME,
        "LSTM train step, data-parallel over 1, 2, 4, 8, ... devices (strong and weak scaling)",
        cases,
        headline=headline,
        report_sections=report_sections,
    )
)
