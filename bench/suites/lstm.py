"""LSTM suite (seed §2): our LSTM vs Flax's ``nnx.RNN(nnx.OptimizedLSTMCell)``, over T.

Variants: ``autodiff`` (our LSTM, JAX differentiates the scan), ``manual-bwd`` (the same
forward with the hand-derived backward pass attached as a ``custom_vjp``; train mode only,
its forward is the same program) and ``flax-optimized`` (the baseline).
Prediction: one recurrence step per time step, so ``seq_steps_pred = T`` in both modes.
Claims C2–C4 (hand-written BPTT vs ``jax.grad``, gradient flow) are in ``bench/claims/lstm.py``.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from bench.nnx_adapters import finite_loss, forward_fn, n_params, train_step_fn
from bench.workloads import Case, Suite, Workload, register
from models.lstm import SequenceRegressor, mse_loss

# (batch, input features, hidden) and the sweep over seq_len T, per profile.
SIZES = {
    "smoke": dict(batch=8, features=4, hidden=8, seq_lens=(4, 8, 16)),
    "cpu": dict(batch=32, features=64, hidden=256, seq_lens=(32, 64, 128, 256)),
    "full": dict(batch=64, features=128, hidden=512, seq_lens=(64, 128, 256, 512, 1024)),
}
# The latency-bound sweep: one sequence of a 4-unit LSTM, forward, over long T; each step's
# arithmetic is a few hundred FLOPs, so the chain of T steps is what the time measures.
LATENCY = {
    "smoke": dict(batch=1, features=4, hidden=4, seq_lens=(16, 32, 64, 128, 256)),
    "cpu": dict(batch=1, features=4, hidden=4, seq_lens=(256, 512, 1024, 2048, 4096, 8192)),
    "full": dict(batch=1, features=4, hidden=4, seq_lens=(1024, 2048, 4096, 8192, 16384)),
}
OUT_FEATURES = 8


class FlaxSequenceRegressor(nnx.Module):
    """The same task built from the library's optimized cell, for comparison."""

    def __init__(self, in_features: int, hidden: int, out_features: int, *, rngs: nnx.Rngs):
        self.hidden = hidden
        self.rnn = nnx.RNN(nnx.OptimizedLSTMCell(in_features, hidden, rngs=rngs))
        self.readout = nnx.Linear(hidden, out_features, rngs=rngs)

    def __call__(self, x):
        # An explicit zero carry: the cell's own initialize_carry draws from its Rngs,
        # which would mutate NNX state inside the traced function.
        zeros = jnp.zeros((x.shape[0], self.hidden), x.dtype)
        return self.readout(self.rnn(x, initial_carry=(zeros, zeros)))


def cudnn_weights(params: dict) -> jax.Array:
    """Our LSTM's parameters in the flat layout of cuDNN's (``jax.experimental.rnn``): W_ih
    (4H, I), W_hh (4H, H), b_ih, b_hh (4H,), gates in the same order i, f, g, o."""
    return jnp.concatenate(
        [
            params["w_x"].T.ravel(),
            params["w_h"].T.ravel(),
            params["b"],
            jnp.zeros_like(params["b"]),
        ]
    )


class CudnnSequenceRegressor(nnx.Module):
    """Our LSTM's parameters evaluated by cuDNN's fused LSTM kernel (GPU only), the same
    read-out: the vendor's implementation of the same function, for comparison."""

    def __init__(self, in_features: int, hidden: int, out_features: int, *, rngs: nnx.Rngs):
        self.lstm = SequenceRegressor(in_features, hidden, out_features, rngs=rngs).lstm
        self.readout = nnx.Linear(hidden, out_features, rngs=rngs)

    def __call__(self, x):
        from jax.experimental import rnn  # imported here: it is only usable on a CUDA GPU

        batch, _, features = x.shape
        hidden = self.lstm.hidden
        zeros = jnp.zeros((1, batch, hidden), x.dtype)
        lengths = jnp.full((batch,), x.shape[1], jnp.int32)
        y, _, _ = rnn.lstm(
            x, zeros, zeros, cudnn_weights(self.lstm.params), lengths, features, hidden,
            num_layers=1, dropout=0.0, bidirectional=False,
        )  # fmt: skip
        return self.readout(y)


VARIANTS = {
    "autodiff": SequenceRegressor,
    "manual-bwd": lambda *a, rngs: SequenceRegressor(*a, backward="manual", rngs=rngs),
    "flax-optimized": FlaxSequenceRegressor,
    "cudnn": CudnnSequenceRegressor,
}


def unavailable() -> dict[str, str]:
    """Variants this machine cannot run, and why (``python -m bench list`` shows them)."""
    if jax.default_backend() == "gpu":
        return {}
    return {"cudnn": f"needs a CUDA GPU for cuDNN's LSTM kernel; this is {jax.default_backend()}"}


def modes() -> dict[str, tuple[str, ...]]:
    usable = [v for v in VARIANTS if v not in unavailable()]
    return {"train": tuple(usable), "forward": tuple(v for v in usable if v != "manual-bwd")}


def workload(
    variant: str, mode: str, batch: int, features: int, hidden: int, seq_len: int, seed: int
) -> Workload:
    """One LSTM train step (Adam on the MSE of a linear read-out) or forward pass."""
    model = VARIANTS[variant](features, hidden, OUT_FEATURES, rngs=nnx.Rngs(seed))
    # data drawn by NumPy: jax.random compiles a kernel for every new shape (each T here)
    rng = np.random.default_rng(seed + 1)
    x = jnp.asarray(rng.standard_normal((batch, seq_len, features), np.float32))
    y = jnp.asarray(rng.standard_normal((batch, seq_len, OUT_FEATURES), np.float32))
    if variant == "cudnn":
        check_against_ours(model, (x, y))
    if mode == "train":
        step, state = train_step_fn(model, mse_loss, optax.adam(1e-3))
        return Workload(step, (*state, (x, y)), n_params(model), health=finite_loss, batch_argnum=3)
    fn, state = forward_fn(model)
    return Workload(fn, (state, x), n_params(model), batch_argnum=1)


def check_against_ours(model: CudnnSequenceRegressor, batch) -> None:
    """Before a peer is timed: its loss and gradients equal ours on the same weights."""
    ours = SequenceRegressor(model.lstm.in_features, model.lstm.hidden, OUT_FEATURES,
                             rngs=nnx.Rngs(0))  # fmt: skip
    nnx.update(ours.lstm, nnx.state(model.lstm))
    nnx.update(ours.readout, nnx.state(model.readout))
    (loss_p, grads_p), (loss_o, grads_o) = (
        nnx.jit(nnx.value_and_grad(mse_loss))(m, batch) for m in (model, ours)
    )
    pairs = zip(jax.tree.leaves(grads_p), jax.tree.leaves(grads_o), strict=True)
    worst = max(float(jnp.max(jnp.abs(a - b)) / (jnp.max(jnp.abs(b)) + 1e-30)) for a, b in pairs)
    if abs(float(loss_p - loss_o)) > 1e-4 * abs(float(loss_o)) or worst > 1e-3:
        raise ValueError(f"cuDNN LSTM differs from ours: loss {loss_p} vs {loss_o}, grad {worst}")


def cases(profile: str) -> list[Case]:
    s = SIZES[profile]
    out = []
    for mode, variants in modes().items():
        for seq_len in s["seq_lens"]:
            for variant in variants:
                sizes = dict(batch=s["batch"], seq_len=seq_len, hidden=s["hidden"])
                args = (variant, mode, s["batch"], s["features"], s["hidden"], seq_len, 0)
                build = functools.partial(workload, *args)
                out.append(
                    Case("lstm", "lstm", variant, mode, build, sizes, seq_steps_pred=seq_len)
                )
    s = LATENCY[profile]
    for seq_len in s["seq_lens"]:
        sizes = dict(batch=s["batch"], seq_len=seq_len, hidden=s["hidden"])
        args = ("autodiff", "forward", s["batch"], s["features"], s["hidden"], seq_len, 0)
        build = functools.partial(workload, *args)
        out.append(
            Case("lstm", "lstm", "autodiff", "forward", build, sizes, seq_len, regime="latency")
        )
    return out


register(
    Suite(
        "lstm",
        "LSTM (seed §2) vs Flax OptimizedLSTMCell over sequence length",
        cases,
        baselines={"train": "flax-optimized", "forward": "flax-optimized"},
        unavailable=unavailable,
    )
)
