"""Data parallelism (bench.sharding, suite ``scaling``): batch split, parameters replicated.

The checks that need several devices live in ``eight_devices.py`` (not collected on its
own) and run in a child pytest with ``JAX_NUM_CPU_DEVICES=8``, started by
``test_eight_device_checks``: the device count is fixed when JAX starts, and this process
already has one device.
Fake CPU devices share the host's cores, so nothing here looks at a time.
"""

import os
import pathlib
import re
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bench import sharding
from bench.sharding import data_mesh, shard_workload
from bench.workloads import ConfigError, Workload, suites

EIGHT = 8
EIGHT_DEVICE_CHECKS = os.path.join(os.path.dirname(__file__), "eight_devices.py")


def _toy_workload(batch: int, batch_argnum: int | None = 1) -> Workload:
    """A linear least-squares step: parameters, then a batch (x, y) with leading axis batch."""
    params = {"w": jnp.ones((3, 2)), "b": jnp.zeros((2,))}
    x, y = jnp.ones((batch, 3)), jnp.ones((batch, 2))

    def fn(params, xy):
        x, y = xy
        return jnp.mean((x @ params["w"] + params["b"] - y) ** 2)

    return Workload(fn, (params, (x, y)), batch_argnum=batch_argnum)


# --- on one device (this process) ---------------------------------------------------------


def test_a_batch_not_divisible_by_the_devices_is_one_clear_error():
    with pytest.raises(ConfigError, match=r"^batch 30 is not divisible by 8 devices$"):
        shard_workload(_toy_workload(30), 8, 30)


def test_a_workload_without_a_batch_argument_cannot_be_sharded():
    with pytest.raises(ConfigError, match="no batch argument"):
        shard_workload(_toy_workload(4, batch_argnum=None), 1, 4)


def test_the_batch_given_must_be_the_leading_axis_of_the_batch_argument():
    with pytest.raises(ConfigError, match="leading axes are .*expected 8"):
        shard_workload(_toy_workload(4), 1, 8)


@pytest.mark.parametrize("n", [0, -1, jax.device_count() + 1])
def test_a_mesh_needs_between_one_and_the_available_devices(n):
    with pytest.raises(ConfigError, match="positive integer|only 1 available"):
        data_mesh(n)


def test_one_device_mesh_is_one_axis_named_data():
    mesh = data_mesh(1)
    assert mesh.axis_names == ("data",) and mesh.devices.shape == (1,)


def test_sharding_on_one_device_sets_the_row_columns_and_keeps_the_result():
    w = _toy_workload(4)
    s = shard_workload(w, 1, 4)
    assert s.extra == {"n_devices": 1, "per_device_batch": 4}
    assert s.fn is w.fn and s.batch_argnum == 1
    assert float(jax.jit(s.fn)(*s.args)) == pytest.approx(float(w.fn(*w.args)))


def test_on_one_device_the_scaling_suite_has_only_n_equals_1():
    cases = suites()["scaling"].cases("smoke")
    assert [(c.variant, c.devices) for c in cases] == [("strong", 1), ("weak", 1)]
    assert {c.mode for c in cases} == {"train"}


def test_a_single_process_has_no_run_folder_suffix_and_joins_no_cluster(monkeypatch):
    for name in sharding.DISTRIBUTED_ENV:
        monkeypatch.delenv(name, raising=False)
    assert sharding.process_suffix() == ""
    assert sharding.maybe_initialize_distributed() is False


def test_a_partial_cluster_description_is_an_error(monkeypatch):
    for name in sharding.DISTRIBUTED_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("JAX_COORDINATOR_ADDRESS", "localhost:1234")
    with pytest.raises(ConfigError, match="JAX_NUM_PROCESSES, JAX_PROCESS_ID"):
        sharding.maybe_initialize_distributed()


def test_eight_device_checks():
    env = {**os.environ, "JAX_NUM_CPU_DEVICES": str(EIGHT), "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            EIGHT_DEVICE_CHECKS,
            "-q",
            "-p",
            "no:cacheprovider",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    tests = re.findall(r"^    def test_", pathlib.Path(EIGHT_DEVICE_CHECKS).read_text(), re.M)
    assert f"{len(tests)} passed" in proc.stdout and "skipped" not in proc.stdout


# Run by each of two processes with 4 CPU devices each: one SPMD train step over all 8.
TWO_PROCESS_SCRIPT = """
import json, sys
from bench.sharding import maybe_initialize_distributed, process_suffix, shard_workload
assert maybe_initialize_distributed()
import jax, numpy as np
from bench.sharding import data_mesh
from bench.suites import lstm, scaling
w = shard_workload(lstm.workload(scaling.LSTM_VARIANT, "train", 16, 4, 8, 5, seed=0), 8, 16)
step = jax.jit(w.fn)
params, rest, opt, batch = w.args
for _ in range(3):
    params, rest, opt, loss = step(params, rest, opt, batch)
local = lambda a: np.asarray(a.addressable_shards[0].data)
print(json.dumps(dict(
    suffix=process_suffix(),
    n_devices=jax.device_count(),
    batch_rows_here=sum(s.data.shape[0] for s in jax.tree.leaves(batch)[0].addressable_shards),
    mesh2_processes=sorted({d.process_index for d in data_mesh(2).devices.flat}),
    loss=float(local(loss)),
    params=[local(p).tolist() for p in jax.tree.leaves(params)],
)))
"""


@pytest.mark.slow
def test_two_processes_run_one_spmd_train_step_that_matches_one_device():
    import json
    import socket

    from bench.suites import lstm, scaling

    with socket.socket() as s:
        s.bind(("localhost", 0))
        port = s.getsockname()[1]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", TWO_PROCESS_SCRIPT],
            env={
                **os.environ,
                "JAX_NUM_CPU_DEVICES": "4",
                "JAX_PLATFORMS": "cpu",
                "JAX_COORDINATOR_ADDRESS": f"localhost:{port}",
                "JAX_NUM_PROCESSES": "2",
                "JAX_PROCESS_ID": str(k),
            },
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for k in range(2)
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-3000:]
        results.append(json.loads(out.strip().splitlines()[-1]))

    single = lstm.workload(scaling.LSTM_VARIANT, "train", 16, 4, 8, 5, seed=0)
    step = jax.jit(single.fn)
    params, rest, opt, batch = single.args
    for _ in range(3):
        params, rest, opt, loss = step(params, rest, opt, batch)

    assert [r["suffix"] for r in results] == ["-p0", "-p1"]
    for r in results:
        assert r["n_devices"] == 8 and r["batch_rows_here"] == 8  # half the batch each
        assert r["mesh2_processes"] == [0, 1]  # a 2-device mesh takes one device from each
        np.testing.assert_allclose(r["loss"], float(loss), rtol=1e-5)
        for got, want in zip(r["params"], jax.tree.leaves(params), strict=True):
            np.testing.assert_allclose(np.asarray(got, np.float32), want, rtol=1e-5, atol=1e-5)
