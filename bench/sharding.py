"""Data parallelism with ``jax.sharding``: one mesh axis ``"data"``, the batch split along it.

A workload (``bench.workloads.Workload``) is made data-parallel by *placing* its arguments,
nothing else: the data batch (``Workload.batch_argnum``) is sharded along its leading axis
over the mesh axis ``"data"``, every other argument (parameters, optimizer state) is
replicated. ``jax.jit`` compiles the unchanged step function for those input shardings, and
XLA's partitioner inserts the all-reduce of the gradients; there is no hand-written
collective. The mesh axis is ``AxisType.Auto`` for that reason: with ``Explicit`` axes the
traced shardings would be part of the types and the gradient contraction over the sharded
batch would need annotating by hand.

The scaling suite's rows become speed-up and efficiency in the report
(:func:`bench.suites.scaling.scaling_table`).

Several processes (multi-host): :func:`maybe_initialize_distributed` joins the JAX cluster
when the environment says so; the mesh then spans ``jax.devices()`` of all processes and
every process runs the same SPMD program (see ``docs/multihost.md``).
"""

from __future__ import annotations

import dataclasses
import os

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

from bench.workloads import ConfigError, Workload

DATA_AXIS = "data"

# The cluster description read by maybe_initialize_distributed().
DISTRIBUTED_ENV = ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID")


def data_mesh(n_devices: int) -> Mesh:
    """A 1-D mesh with axis ``"data"`` over ``n_devices`` devices.

    One process: its first ``n_devices`` devices. Several processes (after
    ``jax.distributed.initialize()``): every process takes part in every SPMD program, so
    ``n_devices`` must be a multiple of the process count and each process contributes its
    first ``n_devices / process_count`` local devices.
    """
    available, processes = jax.device_count(), jax.process_count()
    if not isinstance(n_devices, int) or n_devices < 1:
        raise ConfigError(f"number of devices must be a positive integer, got {n_devices!r}")
    if n_devices > available:
        raise ConfigError(
            f"{n_devices} devices requested but only {available} available "
            f"({jax.devices()[0].platform}); on CPU set JAX_NUM_CPU_DEVICES={n_devices} "
            "before JAX starts"
        )
    if n_devices % processes != 0:
        raise ConfigError(f"{n_devices} devices cannot be spread evenly over {processes} processes")
    per_process = n_devices // processes
    devices = []
    for k in range(processes):
        local = [d for d in jax.devices() if d.process_index == k]
        if len(local) < per_process:
            raise ConfigError(f"process {k} has {len(local)} devices, {per_process} needed")
        devices += local[:per_process]
    return jax.make_mesh((n_devices,), (DATA_AXIS,), (AxisType.Auto,), devices=devices)


def _place(x, sharding: NamedSharding) -> jax.Array:
    if sharding.is_fully_addressable:
        return jax.device_put(x, sharding)
    # Several processes: each one fills the shards on its own devices from its copy of the
    # value (the workloads are seeded, so every process built the same one).
    host = np.asarray(x)
    return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])


def shard_workload(w: Workload, n_devices: int, batch: int) -> Workload:
    """``w`` with its batch argument split over ``n_devices`` along ``"data"``, the rest replicated.

    ``batch`` is the global batch: the leading axis of every leaf of ``w.args[w.batch_argnum]``.
    The function is unchanged; the returned workload's arguments carry the shardings, and
    ``jax.jit`` compiles for them (:func:`bench.timing.time_back_to_back`'s ``device_put`` keeps
    them on one process). ``extra`` gains the row columns ``n_devices`` and ``per_device_batch``.
    """
    if w.batch_argnum is None:
        raise ConfigError("this workload has no batch argument (batch_argnum); cannot shard it")
    if batch % n_devices != 0:
        raise ConfigError(f"batch {batch} is not divisible by {n_devices} devices")
    leaves = jax.tree.leaves(w.args[w.batch_argnum])
    leading = {np.shape(leaf)[0] if np.ndim(leaf) else None for leaf in leaves}
    if leading != {batch}:
        raise ConfigError(
            f"the batch argument's leading axes are {sorted(map(str, leading))}, expected {batch}"
        )
    mesh = data_mesh(n_devices)
    split = NamedSharding(mesh, PartitionSpec(DATA_AXIS))
    replicated = NamedSharding(mesh, PartitionSpec())

    def place(i: int, arg):
        sharding = split if i == w.batch_argnum else replicated
        return jax.tree.map(lambda x: _place(x, sharding), arg)

    args = tuple(place(i, arg) for i, arg in enumerate(w.args))
    extra = {**w.extra, "n_devices": n_devices, "per_device_batch": batch // n_devices}
    return dataclasses.replace(w, args=args, extra=extra)


def maybe_initialize_distributed(*, auto: bool = False) -> bool:
    """Join a multi-process JAX cluster when the environment describes one; say whether it did.

    With ``JAX_COORDINATOR_ADDRESS`` (``host:port`` of process 0), ``JAX_NUM_PROCESSES`` and
    ``JAX_PROCESS_ID`` all set, calls ``jax.distributed.initialize`` with those values (JAX
    itself reads only the address from the environment). With none set, does nothing unless
    ``auto``: then ``jax.distributed.initialize()`` detects the cluster (SLURM, Open MPI,
    Kubernetes, Cloud TPU). A partial set is a ``ConfigError``. Must run before anything
    touches a device.
    """
    present = [name for name in DISTRIBUTED_ENV if os.environ.get(name)]
    if len(present) == len(DISTRIBUTED_ENV):
        try:
            num_processes = int(os.environ["JAX_NUM_PROCESSES"])
            process_id = int(os.environ["JAX_PROCESS_ID"])
        except ValueError:
            raise ConfigError("JAX_NUM_PROCESSES and JAX_PROCESS_ID must be integers") from None
        jax.distributed.initialize(
            os.environ["JAX_COORDINATOR_ADDRESS"],
            num_processes=num_processes,
            process_id=process_id,
        )
        return True
    if present:
        missing = [name for name in DISTRIBUTED_ENV if name not in present]
        raise ConfigError(f"{', '.join(present)} set but not {', '.join(missing)}")
    if auto:
        jax.distributed.initialize()
        return True
    return False


def process_suffix() -> str:
    """``""`` for a single process, else ``"-p<k>"``: each process's run folder is its own."""
    return "" if jax.process_count() == 1 else f"-p{jax.process_index()}"
