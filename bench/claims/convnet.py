"""C5 (seed §3-1): the VGG-style net has 207,507,816 parameters, 205,521,920 in FC-1024.

Experiment: the seed's net built abstractly (``nnx.eval_shape``: nothing allocated) and its
parameters counted exactly, per layer, against the seed's boxed numbers; plus the analytic
forward FLOPs against XLA's cost analysis on a small image (no loops, so XLA's count holds).

The rule is :data:`RULE`. It FAILs where the model's count disagrees with the analytic
formula because the model would then not be the seed's net, and its count could not judge the
seed; the statement of a CORRECTED verdict gives the exact counts and the layers that differ.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from bench.claims import Claim, Experiment, Rule, Verdict, register, state
from bench.nnx_adapters import forward_fn
from bench.store import write_table
from bench.suites.convnet import abstract_model, seed_net
from models.convnet import SEED, forward_flops, layer_param_counts, layer_table

# The seed's boxed per-layer counts (§3-1) and total: the claim under test.
SEED_CLAIM = {
    "conv1": 1_792,
    "conv2": 73_856,
    "conv3": 295_168,
    "conv4": 590_080,
    "fc1": 205_521_920,
    "fc2": 1_025_000,
}
SEED_TOTAL = 207_507_816
# What the seed writes for each layer before its boxed count: (weights, biases), each the
# product of the factors it writes (FC-1024 after its crossed-out first try).
SEED_EXPRESSIONS = {
    "conv1": ((64, 3, 3, 3), (64,)),
    "conv2": ((128, 64, 3, 3), (128,)),
    "conv3": ((256, 128, 3, 3), (256,)),
    "conv4": ((256, 256, 3, 3), (256,)),
    "fc1": ((1024, 28, 28, 256), (1024,)),
    "fc2": ((1000, 1024), (1000,)),
}


def evaluate(expression) -> int:
    weights, biases = expression
    return math.prod(weights) + math.prod(biases)


def xla_forward_flops(sizes: dict, batch: int) -> float:
    fn, state = forward_fn(abstract_model(sizes))
    side, channels = sizes["image_size"], sizes["in_channels"]
    x = jax.ShapeDtypeStruct((batch, side, side, channels), jnp.float32)
    return float(jax.jit(fn).lower(state, x).compile().cost_analysis()["flops"])


C5 = Rule(
    "C5",
    "exact count of the nnx.Param leaves of models.convnet.ConvNet at 224×224×3, "
    "1000 classes, per layer, vs the seed's 207,507,816 and 205,521,920",
    "exact parameter count",
    "PASS iff every layer's count and the total equal the seed's; CORRECTED iff the "
    "model (equal to the analytic formula) differs from the seed, a mathematical error iff "
    "the seed's written expression for a wrong layer misses the count too, else a "
    "transcription slip; FAIL iff the model differs from the formula",
)


def decision(
    counts: dict[str, int],
    formula: dict[str, int],
    seed: dict[str, int] = SEED_CLAIM,
    seed_total: int = SEED_TOTAL,
    seed_expressions: dict = SEED_EXPRESSIONS,
) -> tuple[str, str, dict]:
    """(verdict, slip, facts) of C5. Facts: the model's ``total`` and ``fc1`` count, whether
    the model equals the formula (``formula_ok``), the layers whose count differs from the
    seed's (``wrong``: layer → (seed's, counted)), those whose written expression gives the
    seed's wrong count (``bad_formula``), and the seed's total against the sum of its layers."""
    total, fc1 = sum(counts.values()), counts.get("fc1", 0)
    facts = dict(
        total=total, fc1=fc1, fc1_share=fc1 / total, formula_ok=counts == formula,
        per_layer=counts, per_layer_ok=counts == seed, seed_total=seed_total,
        seed_layers_total=sum(seed.values()), wrong={}, bad_formula=[],
    )  # fmt: skip
    if counts != formula:
        return "FAIL", "", facts
    if counts == seed and total == seed_total:
        return "PASS", "", facts
    # A wrong layer whose written expression is wrong too is a wrong formula (a mathematical
    # error); one whose expression gives the count was mis-evaluated or mis-copied, as is a
    # total that is not the sum of the seed's own layers.
    wrong = facts["wrong"] = {k: (seed.get(k), n) for k, n in counts.items() if seed.get(k) != n}
    facts["bad_formula"] = [
        k for k in wrong if k not in seed_expressions or evaluate(seed_expressions[k]) != counts[k]
    ]
    slip = "mathematical error" if facts["bad_formula"] else "notation or transcription slip"
    return "CORRECTED", slip, facts


def _sentences(verdict: str, f: dict, xla_ratio: float) -> tuple[str, str]:
    """(measured, statement) of C5, from :func:`decision`'s facts."""
    measured = (
        f"{f['total']:,} parameters in the Flax model (nnx.eval_shape, nothing allocated), "
        f"FC-1024 {f['fc1']:,} = {f['fc1_share']:.2%}; per-layer "
        + ("all six equal the seed's" if f["per_layer_ok"] else f"{f['per_layer']}")
        + f"; XLA cost analysis / analytic forward FLOPs = {xla_ratio:.4f} at 32 px"
    )
    if verdict == "FAIL":
        return measured, "the model's count disagrees with the formula"
    statement = (
        f"the net has {f['total']:,} parameters, {f['fc1']:,} ({f['fc1_share']:.2%}) of them in "
        "FC-1024"
    )
    if verdict == "PASS":
        return measured, statement
    parts = [
        f"{k} (seed {was:,}, counted {n:,}; its written expression "
        + ("gives the seed's wrong count" if k in f["bad_formula"] else "gives the count")
        + ")"
        if was is not None
        else f"{k} (not in the seed)"
        for k, (was, n) in f["wrong"].items()
    ]
    if f["seed_total"] != f["seed_layers_total"]:
        parts.append(f"the total (seed {f['seed_total']:,}, the sum of its layers "
                     f"{f['seed_layers_total']:,})")  # fmt: skip
    return measured, statement + "; the seed's count differs at " + ", ".join(parts)


def judge(
    counts: dict[str, int],
    formula: dict[str, int],
    xla_ratio: float,
    seed: dict[str, int] = SEED_CLAIM,
    seed_total: int = SEED_TOTAL,
    seed_expressions: dict = SEED_EXPRESSIONS,
) -> Verdict:
    verdict, slip, facts = decision(counts, formula, seed, seed_total, seed_expressions)
    measured, statement = _sentences(verdict, facts, xla_ratio)
    return C5.verdict(verdict, measured, statement, facts, slip=slip)


def run(profile: str, run_dir) -> list[Verdict]:
    counts = layer_param_counts(abstract_model(SEED))
    formula = {layer.name: layer.params for layer in layer_table(**SEED)}
    rows = [
        dict(layer=name, params_model=count, params_seed=SEED_CLAIM.get(name, ""),
             params_formula=formula.get(name, ""))
        for name, count in counts.items()
    ]  # fmt: skip
    rows.append(
        dict(layer="total", params_model=sum(counts.values()), params_seed=SEED_TOTAL,
             params_formula=sum(formula.values()))
    )  # fmt: skip
    write_table(run_dir, "convnet_params.csv", rows)

    small = seed_net(32)
    xla, analytic = xla_forward_flops(small, batch=2), forward_flops(batch=2, **small)
    write_table(
        run_dir,
        "convnet_flops.csv",
        [dict(image_size=32, batch=2, flops_analytic=analytic, flops_xla=int(xla),
              ratio_xla=round(xla / analytic, 5))],
    )  # fmt: skip
    return [judge(counts, formula, xla / analytic)]


register(Experiment("convnet", ("C5",), run, cost_s=dict(smoke=2, cpu=2, full=2)))
state(
    Claim(
        "C5",
        "§3-1",
        "the VGG-style net has 207,507,816 parameters, 205,521,920 of them in FC-1024",
        C5.measure,
        __name__,
        (C5.text,),
    )
)
