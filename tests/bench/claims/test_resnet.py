"""C6's rule (bench.claims.resnet): every outcome from hand-made run tables, and a smoke
run of the experiment on the digits."""

from __future__ import annotations

import csv
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from bench.claims import Verdict
from bench.claims import resnet as c6

LRS = (0.01, 0.1, 1.0)
DEPTHS = (2, 32)


def runs(loss, g=0.3, *, spread=0.01, g_spread=0.05, seeds=3, best_lr=0.1, depths=DEPTHS):
    """Rows for all variants: ``loss``/``g`` map (variant, depth) to the seeds' mean at the
    best rate (default: the value itself for every variant and depth); the other rates
    lose 1 nat more. Seeds deviate by −spread, 0, +spread (and so on)."""

    def value(spec, variant, depth):
        return spec(variant, depth) if callable(spec) else spec

    offsets = np.linspace(-1, 1, seeds)
    rows = []
    for variant in ("post-act", "pre-act", "plain"):
        for depth in depths:
            best = best_lr(variant, depth) if callable(best_lr) else best_lr
            for lr in LRS:
                for seed, off in enumerate(offsets):
                    mean = value(loss, variant, depth) + (0 if lr == best else 1.0)
                    rows.append(
                        dict(
                            variant=variant,
                            depth=depth,
                            lr=lr,
                            seed=seed,
                            train_loss=mean + off * spread,
                            held_out_error=0.05,
                            grad_log10_ratio=value(g, variant, depth) + off * g_spread,
                        )
                    )
    return rows


def by_variant(pre, post, plain=1.0):
    return lambda variant, depth: {"pre-act": pre, "post-act": post, "plain": plain}[variant]


def test_interval_is_the_mean_with_a_student_t_half_width():
    mean, low, high = c6.interval([1.0, 2.0, 3.0])
    assert mean == 2.0 and high - mean == pytest.approx(4.303 * 1.0 / math.sqrt(3), rel=1e-3)
    assert c6.interval([1.0, math.inf, 2.0]) == (math.inf, math.inf, math.inf)


def test_pass_when_pre_act_trains_more_easily_and_its_gradient_stays_bounded():
    v = c6.judge(runs(by_variant(0.1, 0.5, plain=2.0)))
    assert isinstance(v, Verdict) and (v.claim, v.verdict) == ("C6", "PASS")
    assert (v.facts["training"], v.facts["gradient"]) == ("easier", "bounded")
    # the plain stack (no shortcuts) is reported beside them, worse than both
    at_32 = {variant: r for (variant, depth), r in v.facts["summary"].items() if depth == 32}
    assert at_32["plain"]["train_loss_lo"] > at_32["post-act"]["train_loss_hi"]


def test_fail_when_post_act_trains_more_easily():
    v = c6.judge(runs(by_variant(0.5, 0.1)))
    assert v.verdict == "FAIL" and v.facts["training"] == "harder"


def test_fail_when_the_gradient_explodes_and_training_does_not_separate_them():
    g = lambda variant, depth: 2.0 if depth == 32 else 0.3  # noqa: E731
    v = c6.judge(runs(by_variant(0.30, 0.35), g=g, spread=0.2))
    assert v.verdict == "FAIL" and v.facts["training"] == "undecided"
    assert v.facts["gradient"] == "unbounded" and v.facts["outside"] == [32]
    assert v.facts["summary"]["pre-act", 32]["grad_log10_ratio"] == pytest.approx(2.0)


def test_corrected_when_pre_act_is_easier_but_its_gradient_is_not_bounded():
    g = lambda variant, depth: -1.8 if depth == 32 else 0.3  # noqa: E731
    v = c6.judge(runs(by_variant(0.1, 0.5), g=g))
    assert (v.verdict, v.slip) == ("CORRECTED", "mathematical error")
    assert (v.facts["training"], v.facts["gradient"]) == ("easier", "unbounded")


def test_inconclusive_when_the_training_intervals_overlap():
    v = c6.judge(runs(by_variant(0.30, 0.35), spread=0.2))
    assert v.verdict == "INCONCLUSIVE"
    assert (v.facts["training"], v.facts["gradient"]) == ("undecided", "bounded")


def test_inconclusive_when_the_gradient_interval_crosses_the_bound():
    v = c6.judge(runs(by_variant(0.1, 0.5), g=1.0, g_spread=0.3))
    assert v.verdict == "INCONCLUSIVE"
    assert (v.facts["training"], v.facts["gradient"]) == ("easier", "undecided")


def test_inconclusive_when_a_best_learning_rate_is_at_the_grid_edge():
    edge = lambda variant, depth: 1.0 if (variant, depth) == ("pre-act", 32) else 0.1  # noqa: E731
    v = c6.judge(runs(by_variant(0.1, 0.5), best_lr=edge))
    assert v.verdict == "INCONCLUSIVE" and v.facts["edge"] == [("pre-act", 32)]
    # The plain control is not judged: its edge does not matter.
    edge_plain = lambda variant, depth: 1.0 if variant == "plain" else 0.1  # noqa: E731
    assert c6.judge(runs(by_variant(0.1, 0.5), best_lr=edge_plain)).verdict == "PASS"


def test_inconclusive_with_fewer_than_three_seeds():
    v = c6.judge(runs(by_variant(0.1, 0.5), seeds=2))
    assert v.verdict == "INCONCLUSIVE" and len(v.facts["few"]) == 3 * len(DEPTHS)


def test_diverged_runs_never_win_the_learning_rate_grid():
    rows = runs(by_variant(0.1, 0.5))
    for r in rows:
        if r["lr"] == 1.0 and r["variant"] == "pre-act":
            r["train_loss"] = math.inf
    summary = {(r["variant"], r["depth"]): r for r in c6.summarise(rows)}
    assert summary["pre-act", 32]["best_lr"] == 0.1


def test_digits_split_is_standardised_and_keeps_every_class():
    x_train, y_train, x_test, y_test = c6.digits()
    assert x_train.shape == (1797 - c6.HELD_OUT, 8, 8, 1) and x_test.shape[0] == c6.HELD_OUT
    assert abs(float(x_train.mean())) < 1e-5 and abs(float(x_train.std()) - 1) < 1e-4
    assert set(np.unique(y_test)) == set(range(10))


def test_conv_as_matmul_is_the_same_convolution_and_gradient():
    kx, kw, kg = jax.random.split(jax.random.key(0), 3)
    x, w = jax.random.normal(kx, (2, 5, 6, 3)), jax.random.normal(kw, (3, 3, 3, 4))
    cotangent = jax.random.normal(kg, (2, 5, 6, 4))

    def lax_conv(x, w):
        return jax.lax.conv_general_dilated(
            x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
        )

    def value_and_vjp(conv):
        y, vjp = jax.vjp(conv, x, w)
        return y, *vjp(cotangent)

    with jax.default_matmul_precision("highest"):
        got = jax.jit(lambda: value_and_vjp(lambda x, w: c6.conv_as_matmul(x, w, (1, 1), "SAME")))()
        want = jax.jit(lambda: value_and_vjp(lax_conv))()
    for g, v in zip(got, want, strict=True):
        np.testing.assert_allclose(g, v, atol=1e-4, rtol=1e-5)
    with pytest.raises(NotImplementedError):
        c6.conv_as_matmul(x, w, (2, 2), "SAME")


def test_networks_share_the_initialisation_across_variants_and_depths():
    params, rest = c6.initial_states(3, 4, 2)
    x = jnp.asarray(np.random.default_rng(0).normal(size=(4, 8, 8, 1)), jnp.float32)
    for variant in ("post-act", "pre-act"):
        graphdef, p, r = c6.at_depth(variant, 2, 4, params, rest)
        blocks = p["blocks"]["conv1"]["kernel"][...]
        assert blocks.shape == (2, 2, 3, 3, 4, 4)  # (seeds, N, 3, 3, C, C)
        np.testing.assert_array_equal(blocks, params["blocks"]["conv1"]["kernel"][...][:, :2])
        model = nnx.merge(graphdef, *(jax.tree.map(lambda a: a[0], s) for s in (p, r)))
        assert model(x).shape == (4, 10)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("c6")
    return run_dir, c6.train_and_judge("smoke", run_dir)


def test_smoke_experiment_writes_its_tables_and_one_verdict(smoke):
    run_dir, (v,) = smoke
    s = c6.SIZES["smoke"]
    assert v.claim == "C6" and v.verdict in ("PASS", "FAIL", "CORRECTED", "INCONCLUSIVE")
    with open(run_dir / c6.RUNS_TABLE) as f:
        rows = list(csv.DictReader(f))
    types = {"variant": str, "depth": int, "seed": int}
    rows = [{k: types.get(k, float)(x) for k, x in r.items()} for r in rows]
    assert len(rows) == 3 * len(s["depths"]) * len(s["lrs"]) * s["seeds"]
    assert all(0 <= r["held_out_error"] <= 1 and math.isfinite(r["grad_log10_ratio"]) for r in rows)
    assert c6.judge(rows, steps=s["steps"]) == v  # the verdict is a function of the table
    with open(run_dir / c6.SUMMARY_TABLE) as f:
        assert len(list(csv.DictReader(f))) == 3 * len(s["depths"])


@pytest.mark.parametrize("profile", ["smoke", "cpu"])
def test_profiles_that_cannot_decide_say_so_in_the_row_and_train_nothing(profile, tmp_path):
    assert profile not in c6.RUN_AT
    (v,) = c6.run(profile, tmp_path)
    assert v.claim == "C6" and v.verdict == "INCONCLUSIVE"
    assert v.facts == {"profile": profile, "run_at": ("full",)}
    assert not list(tmp_path.iterdir())  # no table: nothing was trained


def test_the_full_profile_runs_the_experiment():
    assert c6.RUN_AT == ("full",) and set(c6.RUN_AT) <= set(c6.SIZES)
