"""`compare --paired`: every case's old and new program timed again in back-to-back visits
(bench/paired.py), each case decided on its paired rounds (bench/compare.py, "Pairing").

The rule is fed rounds of a shared, busy machine (a load factor per round that moves both
visits of a round alike, and up to 11× between rounds, as on the 2-core CPU at load 2-7) and
must pass unchanged code and flag a planted 1.5× slowdown; two real workers, two checkouts,
then time a plugin case whose program the "new" checkout makes slower."""

import pathlib
import textwrap

import numpy as np
import pytest

from bench import compare as cmp
from bench import environment
from bench.paired import time_paired
from bench.workloads import case_key

ROOT = pathlib.Path(__file__).resolve().parents[2]


def busy_rounds(rng, factor, rounds=9, visits=20, median_s=1e-3):
    """Paired visits on a busy machine: in each round a share of the calls (drawn per round,
    10-90%) is held up by other work, by up to ~10× (single cases moved 3-11× between two
    real runs), the same for both visits of the round; the new program takes ``factor`` × the
    old one's time."""
    old, new = [], []
    for _ in range(rounds):
        busy = rng.uniform(0.1, 0.9)
        for side, f in ((old, 1.0), (new, factor)):
            held = (rng.random(visits) < busy) * np.exp(np.abs(rng.normal(0, 1.2, visits)))
            jitter = np.exp(0.01 * rng.standard_normal(visits))
            side.append(list(median_s * f * jitter * (1 + held)))
    return old, new


def outcomes(factor, cases=60, seed=0):
    rng = np.random.default_rng(seed)
    found = []
    for i in range(cases):
        ratio, lo, hi = cmp.paired_interval(*busy_rounds(rng, factor), seed=i)
        found.append(cmp.judge_paired(ratio, lo, hi, cmp.THRESHOLD))
    return found


def test_unchanged_code_on_a_busy_machine_is_unchanged_in_paired_rounds():
    assert outcomes(1.0).count("unchanged") >= 57  # the goal: 9 of 10


def test_a_planted_1_5x_slowdown_is_slower_in_paired_rounds():
    assert outcomes(1.5).count("slower") >= 57


def test_a_planted_speed_up_is_faster_and_a_change_within_the_threshold_is_not_flagged():
    assert outcomes(1 / 1.5).count("faster") >= 57
    assert "slower" not in outcomes(1.05)


def test_the_same_load_unpaired_hides_a_1_5x_slowdown():
    """Why pairing: the load that moves a round moves one run's whole case the same way, and
    the rule over two runs' samples then cannot resolve 1.5× (its interval spans the band)."""
    rng = np.random.default_rng(1)
    unresolved = 0
    for _ in range(20):
        old, _ = busy_rounds(rng, 1.0, rounds=1, visits=20)
        _, new = busy_rounds(rng, 1.5, rounds=1, visits=20)
        ratio, lo, hi = cmp.ratio_interval(np.array(old[0]), np.array(new[0]))
        unresolved += not lo > 1.1 or ratio > 3 or ratio < 1.1
    assert unresolved >= 5


def test_the_paired_interval_is_over_rounds_and_seeded():
    old, new = [[1.0, 9.0], [2.0, 2.0], [4.0, 7.0]], [[1.5, 1.5], [3.0, 8.0], [6.0, 6.0]]
    assert cmp.paired_interval(old, new) == (1.5, 1.5, 1.5)  # each visit's quickest call
    rng = np.random.default_rng(3)
    old, new = busy_rounds(rng, 1.2)
    assert cmp.paired_interval(old, new, seed=7) == cmp.paired_interval(old, new, seed=7)


PLUGIN = """
import jax, jax.numpy as jnp
from bench.workloads import Case, Suite, Workload, register

def _build():
    w = jnp.full((128, 128), 1.0 / 128, jnp.float32)
    fn = lambda x, w: jax.lax.fori_loop(0, {steps}, lambda i, v: jnp.tanh(v @ w), x)
    return Workload(fn, (jnp.ones((32, 128), jnp.float32), w), n_params=128 * 128)

register(Suite("paired_plant", "a test's plugin", lambda profile: [
    Case("paired_plant", "loop", "serial", "forward", _build, {{"hidden": 128}}, 40)]))
"""


def checkout(path, steps):
    """A stand-in checkout: this repository's bench and a plugin suite of ``steps`` steps."""
    path.mkdir()
    (path / "bench").symlink_to(ROOT / "bench")
    (path / "paired_plant.py").write_text(textwrap.dedent(PLUGIN.format(steps=steps)))
    return path


KEY = case_key(dict(suite="paired_plant", model="loop", variant="serial", mode="forward",
                    hidden=128, n_devices=1))  # fmt: skip


@pytest.mark.parametrize("steps, expected", [(40, "unchanged"), (80, "slower")])
def test_two_workers_time_two_checkouts_programs_in_paired_rounds(
    tmp_path, monkeypatch, steps, expected
):
    monkeypatch.setenv("BENCH_SUITE_MODULES", "paired_plant")
    old = (checkout(tmp_path / "old", 40), tmp_path, "smoke")
    new = (checkout(tmp_path / "new", steps), tmp_path, "smoke")
    timed, errors = time_paired(old, new, [KEY], rounds=5)
    assert errors == {}
    old_rounds, new_rounds = timed[KEY]
    assert len(old_rounds) == len(new_rounds) == 5
    ratio, lo, hi = cmp.paired_interval(old_rounds, new_rounds)
    assert cmp.judge_paired(ratio, lo, hi, 0.25) == expected, (ratio, lo, hi)  # 2× or 1×


def test_a_case_a_checkout_does_not_have_is_not_re_timed_and_said(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_SUITE_MODULES", "paired_plant")
    old = (checkout(tmp_path / "old", 40), tmp_path, "smoke")
    new = (checkout(tmp_path / "new", 40), tmp_path, "smoke")
    other = (*KEY[:2], "chunked", *KEY[3:])
    timed, errors = time_paired(old, new, [KEY, other], rounds=2)
    assert set(timed) == {KEY} and errors == {other: "LookupError: not a case of this checkout"}


def test_paired_refuses_a_checkout_of_other_code(tmp_path, capsys):
    from tests.bench.test_compare import run_compare, same_code

    same_code(tmp_path / "old")
    same_code(tmp_path / "new")
    (tmp_path / "elsewhere").mkdir()
    assert run_compare(str(tmp_path / "old"), str(tmp_path / "new"), "--paired",
                       str(tmp_path / "elsewhere")) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert "--paired is not old's code (run: git aaaaaaaaaa, checkout: git None)" in err
    assert environment.git_info(tmp_path / "elsewhere")["git_sha"] is None
