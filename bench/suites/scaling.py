"""Scaling suite: the LSTM train step, data-parallel over 1, 2, 4, 8 devices.

The workload is the LSTM suite's train step (``bench.suites.lstm``, variant ``autodiff``);
:func:`bench.sharding.shard_workload` splits its batch over a mesh axis ``"data"`` and
replicates parameters and optimizer state, and XLA reduces the gradients. Two variants:

- ``strong``: the global batch is fixed, each device gets ``batch / N`` (ideal: ``t_1 / N``);
- ``weak``: the per-device batch is fixed, the global batch is ``N`` times it (ideal: ``t_1``).

Device counts N are the powers of two up to ``jax.device_count()``: 1, 2, 4, 8 on eight
devices, N = 1 only on one. Each case places its own data (``Case.devices = N``), so the
run's ``--devices`` does not re-shard it; ``n_devices`` is part of a case's identity, and
the report's scaling table turns the rows into speed-up and efficiency.

Prediction: data parallelism splits the batch, not the time axis, so every device still
runs the whole recurrence: ``seq_steps_pred = T`` at every N.

On CPU, ``JAX_NUM_CPU_DEVICES=8`` makes 8 devices that share the host's cores: such a run
checks the plumbing, its speed-ups mean nothing.
"""

from __future__ import annotations

import jax

from bench.sharding import shard_workload
from bench.suites import lstm
from bench.workloads import Case, Suite, Workload, register

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
                    "scaling",
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


register(
    Suite(
        "scaling",
        "LSTM train step, data-parallel over 1, 2, 4, 8, ... devices (strong and weak scaling)",
        cases,
    )
)
