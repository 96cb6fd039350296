"""C6 (seed §3-2): the identity-shortcut, pre-activation residual block is easier to train than
the post-activation one; its gradients neither vanish nor explode with depth.

The experiment, its rule and why it runs at the ``full`` profile only: docs/claims.md, C6. The
post-act, pre-act and plain variants of ``models.resnet.ResNet`` (the same layers and
initialisation: only the shortcut and the ReLU's place differ) are trained with SGD on the 8×8
digits of scikit-learn, each (variant, depth N) over a learning-rate grid extended past an end
that holds the best rate (:func:`train_grid`), seeds paired across variants and depths. Each
run gives the training loss (mean over the last ``TAIL`` of the steps), the held-out error
(BatchNorm on the held-out set's own statistics: after a few dozen steps the running averages
still carry their initial values) and one gradient metric, fixed before measuring,

    g(N) = log10( ‖∂ℓ/∂x_0‖ / ‖∂ℓ/∂x_N‖ )  at initialisation, on the first minibatch,

x_0 the first block's input, x_N the last block's output, by autodiff through zero probes
(``ResNet(x, probe)``): He et al. 2016's quantity, a ratio no stem, image or loss scale enters.
g < 0: the gradient shrinks towards the input (vanishes); g > 0: it grows (explodes).
"""

from __future__ import annotations

import math
import pathlib
from collections import defaultdict
from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from bench.claims import Claim, Curve, Experiment, Rule, Verdict, register, state
from bench.fits import t975
from bench.nnx_adapters import fresh
from bench.store import write_table
from models.resnet import VARIANTS, ResNet, cross_entropy_loss

RUNS_TABLE = "resnet_digits_runs.csv"
SUMMARY_TABLE = "resnet_digits_summary.csv"
N_CLASSES = 10
HELD_OUT = 497  # of the 1797 digits; 1300 train
MOMENTUM = 0.9
LR_STEP = math.sqrt(10)  # grid extension factor
TAIL = 0.2  # training loss = mean over the last 20% of the steps

RUN_AT = ("full",)  # the profiles that run the experiment (docs/claims.md, C6, says why)
SIZES = {  # smoke: the sizes the tests run the experiment at (:func:`train_and_judge`)
    "smoke": dict(depths=(2,), width=4, batch=8, steps=3, seeds=3, lrs=(0.03, 0.3), extend=0),
    # full: about a minute of one H100-class GPU (the whole profile's budget is 10 minutes);
    # N = 110 (He et al.'s depth) alone would take longer than that.
    "full": dict(
        depths=(2, 32), width=16, batch=64, steps=200, seeds=3, extend=1, lrs=(0.01, 0.03, 0.1, 0.3)
    ),
}
MIN_SEEDS = 3
GRAD_BOUND = 1.0  # |g| ≤ 1: the gradient changes by less than 10× across the N blocks
JUDGED = ("pre-act", "post-act")


def digits(held_out: int = HELD_OUT, seed: int = 0):
    """(x_train, y_train, x_test, y_test): NHWC float32 images, standardised on the training
    part; int32 labels; a fixed random split."""
    from sklearn.datasets import load_digits  # (a second's import, for this experiment only)

    data = load_digits()
    order = np.random.default_rng(seed).permutation(len(data.target))
    images = data.images[order].astype(np.float32)[..., None]
    labels = data.target[order].astype(np.int32)
    train, test = images[:-held_out], images[-held_out:]
    mean, std = train.mean(), train.std()
    return tuple(
        jnp.asarray(a)
        for a in ((train - mean) / std, labels[:-held_out], (test - mean) / std, labels[-held_out:])
    )


def initial_states(depth: int, width: int, seeds: int):
    """(params, rest) of ``seeds`` initialisations of a ``depth``-block network, each array
    stacked over the seeds (the model's own initialisers; "rbg" keys draw fast on XLA:CPU).

    The three variants own the same layers, drawn in the same order, so one initialisation
    serves all of them; and :func:`at_depth` takes the first N blocks of it for a shallower
    network, so the depths are paired too.
    """
    states = []
    for seed in range(seeds):
        rngs = nnx.Rngs(jax.random.key(seed, impl="rbg"))
        model = ResNet(1, width, depth, N_CLASSES, variant="pre-act", rngs=rngs)
        states.append(nnx.split(model, nnx.Param, ...)[1:])
    return jax.tree.map(lambda *a: jnp.stack(a), *states)


def conv_as_matmul(lhs, rhs, window_strides, padding, *, precision=None, **options):
    """The stride-1 'SAME' NHWC × HWIO convolution of ``models.resnet`` (``nnx.Conv``'s call
    of ``lax.conv_general_dilated``) as the K_h·K_w shifted copies of the zero-padded input
    concatenated along channels, times the kernel reshaped: the same function (tested), and
    on XLA:CPU at these widths cheaper per training step than its convolution (the figures:
    docs/claims.md, C6)."""
    unit = (1,) * (lhs.ndim - 2)
    nhwc = jax.lax.conv_dimension_numbers(lhs.shape, rhs.shape, ("NHWC", "HWIO", "NHWC"))
    if (
        tuple(window_strides) != unit
        or padding != "SAME"
        or any(tuple(options.get(k) or unit) != unit for k in ("lhs_dilation", "rhs_dilation"))
        or options.get("feature_group_count", 1) != 1
        or options.get("dimension_numbers") not in (None, nhwc)
    ):
        raise NotImplementedError("only stride-1 'SAME' NHWC×HWIO convolutions")
    k_h, k_w, c_in, c_out = rhs.shape
    _, height, width, _ = lhs.shape
    pads = ((0, 0), (k_h // 2, (k_h - 1) // 2), (k_w // 2, (k_w - 1) // 2), (0, 0))
    xp = jnp.pad(lhs, pads)
    taps = [xp[:, a : a + height, b : b + width] for a in range(k_h) for b in range(k_w)]
    cols = jnp.concatenate(taps, axis=-1)
    return jnp.matmul(cols, rhs.reshape(k_h * k_w * c_in, c_out), precision=precision)


def at_depth(variant: str, depth: int, width: int, params, rest):
    """(graphdef, params, rest) of the ``variant`` network with the first ``depth`` blocks of
    the stacked initialisations (the block axis follows the seed axis), its convolutions
    computed by :func:`conv_as_matmul`."""
    abstract = nnx.eval_shape(
        lambda: ResNet(1, width, depth, N_CLASSES, variant=variant, rngs=nnx.Rngs(0))
    )
    for _, module in nnx.iter_graph(abstract):
        if isinstance(module, nnx.Conv):
            module.conv_general_dilated = conv_as_matmul
    graphdef = nnx.split(abstract, nnx.Param, ...)[0]

    def first_blocks(path, leaf):
        in_blocks = any(getattr(k, "key", None) == "blocks" for k in path)
        return leaf[:, :depth] if in_blocks else leaf

    params, rest = (jax.tree_util.tree_map_with_path(first_blocks, s) for s in (params, rest))
    return graphdef, params, rest


def make_trainer(graphdef, data, *, depth: int, width: int, batch: int, steps: int):
    """``train(params_S, rest_S, seeds_S, lr) -> (losses_SxT, g_S, error_S)``: every seed
    trained at one learning rate, compiled once per (variant, depth) (the rate is an argument).
    The seeds run one after another (``lax.map``): vmapping them would turn every convolution
    into a grouped one, which is slower."""
    x_train, y_train, x_test, y_test = data
    image = x_train.shape[1:3]

    def loss_fn(params, probe, rest, minibatch):
        model = nnx.merge(graphdef, params, fresh(rest))
        loss = cross_entropy_loss(model, minibatch, probe)
        return loss, nnx.state(model, nnx.Not(nnx.Param))

    def train_one(params, rest, seed, lr):
        tx = optax.sgd(lr, momentum=MOMENTUM)
        probe = jnp.zeros((depth + 1, batch, *image, width), x_train.dtype)
        key = jax.random.key(seed)

        def step(carry, t):
            params, rest, opt_state = carry
            idx = jax.random.randint(jax.random.fold_in(key, t), (batch,), 0, len(y_train))
            (loss, rest), (grads, g_probe) = jax.value_and_grad(
                loss_fn, argnums=(0, 1), has_aux=True
            )(params, probe, rest, (x_train[idx], y_train[idx]))
            norms = jnp.sqrt(jnp.sum(g_probe**2, axis=(1, 2, 3, 4)))  # ‖∂ℓ/∂x_l‖, l = 0..N
            updates, opt_state = tx.update(grads, opt_state, params)
            carry = optax.apply_updates(params, updates), rest, opt_state
            return carry, (loss, jnp.log10(norms[0] / norms[-1]))

        carry = (params, rest, tx.init(params))
        (params, rest, _), (losses, g) = jax.lax.scan(step, carry, jnp.arange(steps))
        logits = nnx.merge(graphdef, params, fresh(rest))(x_test)
        return losses, g[0], jnp.mean(jnp.argmax(logits, -1) != y_test)

    def train_all(params, rest, seeds, lr):
        return jax.lax.map(lambda args: train_one(*args, lr), (params, rest, seeds))

    return jax.jit(train_all)


def final_loss(losses: np.ndarray) -> float:
    """Mean over the last ``TAIL`` of the steps; inf if training diverged."""
    tail = max(1, round(TAIL * len(losses)))
    value = float(np.mean(losses[-tail:]))
    return value if math.isfinite(value) else math.inf


def _best(results: Mapping[float, list[float]]) -> float:
    return min(results, key=lambda lr: np.mean(results[lr]))


def _runs(train, params, rest, n_seeds: int, lr: float, **labels) -> list[dict]:
    """Train every seed at one learning rate: one row per seed."""
    curves, g, error = jax.tree.map(np.asarray, train(params, rest, jnp.arange(n_seeds), lr))
    return [
        dict(**labels, lr=lr, seed=seed, train_loss=final_loss(curves[seed]))
        | dict(held_out_error=float(error[seed]), grad_log10_ratio=float(g[seed]))
        for seed in range(n_seeds)
    ]


def train_grid(profile: str) -> list[dict]:
    """One row per (variant, depth, learning rate, seed); the grid extended past an end
    that holds the best rate (module docstring)."""
    s = SIZES[profile]
    data = digits()
    rows = []
    initial = initial_states(max(s["depths"]), s["width"], s["seeds"])
    for variant in VARIANTS:
        for depth in s["depths"]:
            graphdef, params, rest = at_depth(variant, depth, s["width"], *initial)
            train = make_trainer(
                graphdef, data, depth=depth, width=s["width"], batch=s["batch"], steps=s["steps"]
            )
            losses = {}
            lrs, extended = list(s["lrs"]), {"low": 0, "high": 0}
            while lrs:
                lr = lrs.pop()
                runs = _runs(train, params, rest, s["seeds"], lr, variant=variant, depth=depth)
                losses[lr] = [r["train_loss"] for r in runs]
                rows += runs
                if lrs:
                    continue
                best, grid = _best(losses), sorted(losses)
                side = "low" if best == grid[0] else "high" if best == grid[-1] else None
                if side is not None and extended[side] < s["extend"]:
                    extended[side] += 1
                    lrs.append(grid[0] / LR_STEP if side == "low" else grid[-1] * LR_STEP)
    return rows


# --- Statistics and the rule -------------------------------------------------------------------


def interval(values: Sequence[float]) -> tuple[float, float, float]:
    """(mean, low, high): mean with its 95% Student-t interval (inf if any value is)."""
    v = np.asarray(values, float)
    if not np.isfinite(v).all():
        return math.inf, math.inf, math.inf
    mean = float(v.mean())
    half = t975(len(v) - 1) * float(v.std(ddof=1)) / math.sqrt(len(v)) if len(v) > 1 else math.inf
    return mean, mean - half, mean + half


def summarise(rows: Sequence[Mapping]) -> list[dict]:
    """One row per (variant, depth): the best learning rate, its grid, and the means with 95%
    intervals of the training loss, held-out error and g at that rate."""
    groups = defaultdict(lambda: defaultdict(list))
    for r in rows:
        groups[r["variant"], int(r["depth"])][float(r["lr"])].append(r)
    out = []
    for (variant, depth), by_lr in groups.items():
        best = _best({lr: [r["train_loss"] for r in rs] for lr, rs in by_lr.items()})
        grid = sorted(by_lr)
        runs = by_lr[best]
        row = dict(variant=variant, depth=depth, best_lr=best, lr_min=grid[0], lr_max=grid[-1])
        row.update(n_lrs=len(grid), bracketed=grid[0] < best < grid[-1], seeds=len(runs))
        for name in ("train_loss", "held_out_error", "grad_log10_ratio"):
            mean, low, high = interval([r[name] for r in runs])
            row.update({name: mean, f"{name}_lo": low, f"{name}_hi": high})
        out.append(row)
    return out


C6 = Rule(
    "C6",
    f"digits (sklearn, 8×8, {HELD_OUT} held out): post-act, pre-act and plain ResNets at "
    f"N = {{depths}}, SGD momentum {MOMENTUM}, {{budget}}learning-rate grid per variant and "
    "depth, seeds paired across variants",
    "training loss (mean of the last 20% of minibatch losses) and held-out error at each "
    "variant's best learning rate, mean and 95% t-interval over seeds; "
    "g = log10(‖∂ℓ/∂x_0‖/‖∂ℓ/∂x_N‖) at initialisation",
    f"≥ {MIN_SEEDS} seeds and every best learning rate of pre-act and post-act bracketed, else "
    "INCONCLUSIVE; at the deepest N, pre-act easier/harder iff its 95% training-loss interval "
    "lies below/above post-act's (overlap: undecided); pre-act's g = log10(‖∂ℓ/∂x_0‖/"
    f"‖∂ℓ/∂x_N‖) at init bounded iff every interval within ±{GRAD_BOUND:g}, unbounded iff one "
    "lies outside. FAIL: harder, or unbounded with training undecided; PASS: easier and "
    "bounded; CORRECTED: easier but unbounded; else INCONCLUSIVE",
)
"""C6's rule; its check names the depths and the steps of the run (``{depths}``, ``{budget}``)."""


def _ends(row: Mapping, name: str) -> tuple[float, float]:
    return row[f"{name}_lo"], row[f"{name}_hi"]


def _ci(row: Mapping, name: str, fmt: str = ".3g") -> str:
    return f"{row[name]:{fmt}} [{row[name + '_lo']:{fmt}}, {row[name + '_hi']:{fmt}}]"


def decision(rows: Sequence[Mapping]) -> tuple[str, dict]:
    """(verdict, facts) of C6 from the runs table. Facts: ``summary`` ((variant, N) → the row
    of :func:`summarise`), ``depths``, the variants with too few seeds (``few``) or an
    unbracketed best rate (``edge``); at the deepest N, ``training`` (pre-act ``easier``,
    ``harder`` or ``undecided`` than post-act) and ``gradient`` (pre-act's g ``bounded``,
    ``unbounded`` or ``undecided``), with the depths whose g lies outside the bound
    (``outside``)."""
    summary = {(r["variant"], r["depth"]): r for r in summarise(rows)}
    depths = sorted({d for _, d in summary})
    facts = dict(
        summary=summary,
        depths=depths,
        few=[k for k, r in summary.items() if r["seeds"] < MIN_SEEDS],
        edge=[(v, d) for (v, d), r in summary.items() if v in JUDGED and not r["bracketed"]],
    )
    if facts["few"] or facts["edge"]:
        return "INCONCLUSIVE", facts
    (pre_lo, pre_hi), (post_lo, post_hi) = (
        _ends(summary[v, depths[-1]], "train_loss") for v in JUDGED
    )
    training = "easier" if pre_hi < post_lo else "harder" if pre_lo > post_hi else "undecided"
    g = {d: _ends(summary["pre-act", d], "grad_log10_ratio") for d in depths}
    outside = [d for d, (lo, hi) in g.items() if lo > GRAD_BOUND or hi < -GRAD_BOUND]
    inside = all(-GRAD_BOUND <= lo and hi <= GRAD_BOUND for lo, hi in g.values())
    gradient = "unbounded" if outside else "bounded" if inside else "undecided"
    facts.update(training=training, gradient=gradient, outside=outside)
    if training == "harder" or (gradient == "unbounded" and training == "undecided"):
        return "FAIL", facts
    if training == "easier" and gradient in ("bounded", "unbounded"):
        return ("PASS" if gradient == "bounded" else "CORRECTED"), facts
    return "INCONCLUSIVE", facts


def _sentences(verdict: str, f: dict) -> tuple[str, str]:
    """(measured, statement) of C6, from :func:`decision`'s facts."""
    summary, depths = f["summary"], f["depths"]
    measured = "; ".join(
        f"{v} N={d}: lr {r['best_lr']:.3g}{'' if r['bracketed'] else ' (grid edge)'}, loss "
        f"{_ci(r, 'train_loss')}, error {_ci(r, 'held_out_error', '.3f')}, g "
        f"{_ci(r, 'grad_log10_ratio', '.2f')}"
        for (v, d), r in sorted(summary.items(), key=lambda item: (item[0][1], item[0][0]))
    )

    def cannot_decide(why: str) -> tuple[str, str]:
        return f"{why}; {measured}", f"the runs cannot decide: {why}"

    if f["few"]:
        return cannot_decide(
            f"fewer than {MIN_SEEDS} seeds for {f['few'][0][0]} N={f['few'][0][1]}"
        )
    if f["edge"]:
        edge = ", ".join(f"{v} N={d}" for v, d in f["edge"])
        return cannot_decide(f"best learning rate at the grid's edge: {edge}")
    pre, post = (summary[v, depths[-1]] for v in JUDGED)
    loss = (
        f"at N = {depths[-1]} pre-act's training loss {_ci(pre, 'train_loss')} vs "
        f"post-act's {_ci(post, 'train_loss')}"
    )
    g = ", ".join(f"N={d}: {_ci(summary['pre-act', d], 'grad_log10_ratio', '.2f')}" for d in depths)
    plain = summary.get(("plain", depths[-1]))
    loss_and_control = loss
    if plain and plain["train_loss_lo"] > max(pre["train_loss_hi"], post["train_loss_hi"]):
        loss_and_control = f"{loss}; without shortcuts (plain) {_ci(plain, 'train_loss')}"
    r = summary["pre-act", f["outside"][0]] if f["outside"] else None
    if f["training"] == "harder":
        return measured, f"the post-act network trained more easily: {loss}"
    if verdict == "FAIL":
        return measured, (
            f"pre-act's gradient {'grows' if r['grad_log10_ratio'] > 0 else 'shrinks'} "
            f"across its N = {r['depth']} blocks by 10^{r['grad_log10_ratio']:.2f} "
            f"(g {_ci(r, 'grad_log10_ratio', '.2f')}), and training does not separate "
            f"the variants ({loss})"
        )
    if verdict == "PASS":
        return measured, (
            f"pre-act trained more easily ({loss_and_control}) and its gradient stayed "
            f"within 10^±{GRAD_BOUND:g} across the blocks at every depth (g: {g})"
        )
    if verdict == "CORRECTED":
        return measured, (
            f"pre-act trained more easily ({loss_and_control}), but not because its "
            f"gradient stays bounded: across N = {r['depth']} blocks it changes by "
            f"10^{r['grad_log10_ratio']:.2f} (g: {g})"
        )
    undecided = [f"training {f['training']}"] if f["training"] == "undecided" else []
    if f["gradient"] == "undecided":
        undecided.append(f"pre-act's g interval crosses ±{GRAD_BOUND:g} ({g})")
    return cannot_decide(f"{'; '.join(undecided)} ({loss})")


def judge(rows: Sequence[Mapping], *, steps: int | None = None) -> Verdict:
    """C6's verdict from the runs table (columns as written by :func:`train_grid`)."""
    verdict, facts = decision(rows)
    measured, statement = _sentences(verdict, facts)
    budget = f"{steps} steps, " if steps else ""
    check = C6.check.format(depths=", ".join(map(str, facts["depths"])), budget=budget)
    return C6.verdict(verdict, measured, statement, facts, check=check)


def not_run(profile: str) -> Verdict:
    """C6's row at a profile that does not run the experiment (:data:`RUN_AT`)."""
    return C6.verdict(
        "INCONCLUSIVE",
        f"not measured at the {profile} profile",
        "not run at this profile: on a 2-core CPU, deciding C6 needs ~10 seeds per variant and "
        "4-5 learning rates at N = 32 (~200 s of training; docs/claims.md), more than this "
        f"profile's budget; `--profile {RUN_AT[0]}` runs it",
        dict(profile=profile, run_at=RUN_AT),
        check=f"not run at the {profile} profile (only at {', '.join(RUN_AT)})",
    )


def run(profile: str, run_dir: pathlib.Path) -> list[Verdict]:
    """C6 at the profiles of :data:`RUN_AT`; elsewhere a row that says it was not run."""
    return train_and_judge(profile, run_dir) if profile in RUN_AT else [not_run(profile)]


def train_and_judge(profile: str, run_dir: pathlib.Path) -> list[Verdict]:
    """Train the grid, write both tables, judge."""
    rows = train_grid(profile)
    write_table(run_dir, RUNS_TABLE, rows)
    write_table(run_dir, SUMMARY_TABLE, summarise(rows))
    return [judge(rows, steps=SIZES[profile]["steps"])]


BY_DEPTH = dict(table=SUMMARY_TABLE, x="depth", hue="variant", xlabel="blocks N", logx=True)
CURVES = tuple(  # a column of the summary against N, one line per variant, with its interval
    Curve(
        y=y, ylabel=ylabel, title=title, logy=False, y_low=f"{y}_lo", y_high=f"{y}_hi", **BY_DEPTH
    )
    for y, ylabel, title in (
        (
            "train_loss",
            "training loss at the best rate (95% CI)",
            "Residual variants on the digits: training loss vs depth",
        ),
        (
            "grad_log10_ratio",
            "log10 ‖∂ℓ/∂x_0‖ / ‖∂ℓ/∂x_N‖ at init (95% CI)",
            "Residual variants: gradient gain through the blocks vs depth",
        ),
    )
)
register(Experiment("resnet", ("C6",), run, CURVES, cost_s=dict(smoke=0, cpu=0, full=60)))
state(
    Claim(
        "C6",
        "§3-2",
        "the identity-shortcut (pre-activation) residual block is easier to train than the "
        "post-activation one; its gradients neither vanish nor explode with depth",
        "training loss on the digits; log10 gradient gain through the blocks",
        __name__,
        (C6.text,),
    )
)
