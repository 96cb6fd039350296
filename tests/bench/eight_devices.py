"""Data-parallel checks on eight CPU devices, run by ``test_sharding.test_eight_device_checks``
in a child pytest with ``JAX_NUM_CPU_DEVICES=8`` (not collected by the default run).
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import PartitionSpec

from bench.sharding import shard_workload
from bench.suites.scaling import scaling_table
from bench.workloads import suites
from tests.bench.helpers import only_run

EIGHT = 8
assert jax.device_count() == EIGHT, "run with JAX_NUM_CPU_DEVICES=8"

BATCH, FEATURES, HIDDEN, SEQ_LEN = 16, 4, 8, 5


@pytest.fixture(scope="module")
def lstm_step():
    """The LSTM suite's train workload, once on one device and once split over eight."""
    from bench.suites import lstm, scaling

    def build():
        return lstm.workload(scaling.LSTM_VARIANT, "train", BATCH, FEATURES, HIDDEN, SEQ_LEN, 0)

    return build(), shard_workload(build(), EIGHT, BATCH)


class TestOnEightDevices:
    def test_the_batch_is_split_over_the_data_axis(self, lstm_step):
        _, sharded = lstm_step
        for leaf in jax.tree.leaves(sharded.args[sharded.batch_argnum]):
            assert leaf.sharding.spec == PartitionSpec("data")
            assert len(leaf.addressable_shards) == EIGHT
            assert {s.data.shape[0] for s in leaf.addressable_shards} == {BATCH // EIGHT}
            assert len({s.device for s in leaf.addressable_shards}) == EIGHT
        assert sharded.extra == {"n_devices": EIGHT, "per_device_batch": BATCH // EIGHT}

    def test_parameters_and_optimizer_state_are_replicated(self, lstm_step):
        _, sharded = lstm_step
        others = [a for i, a in enumerate(sharded.args) if i != sharded.batch_argnum]
        leaves = jax.tree.leaves(others)
        assert leaves
        for leaf in leaves:
            assert leaf.sharding.is_fully_replicated
            assert len(leaf.addressable_shards) == EIGHT
            assert all(s.data.shape == leaf.shape for s in leaf.addressable_shards)

    def test_sharded_train_steps_give_the_single_device_parameters(self, lstm_step):
        single, sharded = lstm_step
        step_1 = jax.jit(single.fn)
        step_8 = jax.jit(sharded.fn).lower(*sharded.args).compile()
        # XLA inserted the gradient reduction across devices; we wrote no collective.
        assert "all-reduce" in step_8.as_text()
        (p1, rest1, o1, batch1), (p8, rest8, o8, batch8) = single.args, sharded.args
        for _ in range(3):
            p1, rest1, o1, loss1 = step_1(p1, rest1, o1, batch1)
            p8, rest8, o8, loss8 = step_8(p8, rest8, o8, batch8)
            np.testing.assert_allclose(loss8, loss1, rtol=1e-5)
        for a, b in zip(jax.tree.leaves(p8), jax.tree.leaves(p1), strict=True):
            assert a.sharding.is_fully_replicated  # the next step can take them as they are
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
        # and the step moved the parameters: the comparison is not between two no-ops
        moved = [
            float(jnp.max(jnp.abs(a - b)))
            for a, b in zip(jax.tree.leaves(p1), jax.tree.leaves(single.args[0]), strict=True)
        ]
        assert max(moved) > 1e-4

    def test_the_scaling_suite_spans_one_to_eight_devices(self):
        cases = suites()["scaling"].cases("smoke")
        assert [(c.variant, c.devices) for c in cases] == [
            *(("strong", n) for n in (1, 2, 4, 8)),
            *(("weak", n) for n in (1, 2, 4, 8)),
        ]
        assert len({c.key() for c in cases}) == len(cases)  # n_devices tells them apart

    def test_cli_run_of_the_scaling_suite_writes_rows_for_1_2_4_8_devices(self, tmp_path):
        from bench import analysis
        from bench.cli import main

        argv = ["run", "--suite", "scaling", "--profile", "smoke", "--out", str(tmp_path)]
        assert main(argv) == 0
        run_dir = only_run(tmp_path)
        df = analysis.load(run_dir)
        assert (df.suite == "scaling").all() and (df.status == "ok").all(), df.error
        strong, weak = df[df.variant == "strong"], df[df.variant == "weak"]
        assert list(strong.n_devices) == [1, 2, 4, 8] == list(weak.n_devices)
        assert (strong.batch == strong.batch.iloc[0]).all()  # global batch fixed
        assert (weak.per_device_batch == weak.per_device_batch.iloc[0]).all()  # per device fixed
        assert (df.per_device_batch * df.n_devices == df.batch).all()

        table = scaling_table(df)
        assert len(table) == 8
        assert (table[table.n_devices == 1].speedup == 1.0).all()
        assert table.efficiency.map(math.isfinite).all()

    def test_devices_flag_does_not_reshard_a_suite_that_places_its_own_data(self, tmp_path):
        from bench import analysis
        from bench.cli import main

        argv = [
            "run",
            "--suite",
            "scaling",
            "--profile",
            "smoke",
            "--out",
            str(tmp_path),
            "--devices",
            "8",
            "--no-experiments",
        ]
        assert main(argv) == 0
        run_dir = only_run(tmp_path)
        df = analysis.load(run_dir)
        assert list(df.n_devices) == [1, 2, 4, 8, 1, 2, 4, 8]

    def test_devices_8_runs_every_profile_case_divisible_training_cases_on_8(self, tmp_path):
        """`run --profile smoke --devices 8`: never a refusal. Training cases whose batch 8
        divides run data-parallel; the others run on one device and their note says why."""
        from bench import analysis
        from bench.cli import main

        argv = ["run", "--profile", "smoke", "--devices", "8", "--no-experiments"]
        assert main([*argv, "--suite", "lstm", "--suite", "pixelcnn", "--out", str(tmp_path)]) == 0
        run_dir = only_run(tmp_path)
        df = analysis.load(run_dir)
        assert (df.status == "ok").all(), df.error
        split = df[df.n_devices == 8]
        assert len(split) > 0 and (split["mode"] == "train").all()
        assert (split.batch % 8 == 0).all() and (split.per_device_batch * 8 == split.batch).all()
        single = df[df.n_devices == 1]
        assert len(single) > 0 and single.note.str.startswith("one device: ").all()
        assert set(single["mode"]) >= {"forward", "sample"}
