"""Pure functions built from NNX modules: the things the harness compiles and times.

NNX graph traversal (split/merge, ``nnx.jit``'s bookkeeping) is Python work done per call.
To time the compiled maths only, each module is split once into a static ``graphdef`` and
an array ``state``; the functions below close over the graphdef and take the state as an
argument, so tracing merges once and the compiled executable sees plain arrays.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import optax
from flax import nnx


def n_params(model: nnx.Module) -> int:
    """Number of scalar parameters (``nnx.Param`` leaves) of a module."""
    params = nnx.state(model, nnx.Param)
    return sum(int(x.size) for x in jax.tree.leaves(params))


def forward_fn(model: nnx.Module, apply: Callable[[nnx.Module, Any], Any] | None = None):
    """``(fn, state)`` with ``fn(state, x) = apply(model, x)`` (default ``model(x)``)."""
    graphdef, state = nnx.split(model)
    apply = apply or (lambda m, x: m(x))

    def fn(state, x):
        return apply(nnx.merge(graphdef, state), x)

    return fn, state


def fresh(state):
    """A copy of ``state`` in new Variables, created at the current trace level.

    NNX refuses to merge Variables created outside a transformation (``jax.grad``) into
    modules that ``nnx.scan`` over (stacked BatchNorms, say): merge a fresh copy instead.
    """
    return jax.tree.map(lambda a: a, state)


def train_step_fn(
    model: nnx.Module,
    loss: Callable[[nnx.Module, Any], jax.Array],
    tx: optax.GradientTransformation,
):
    """``(step, (params, rest, opt_state))`` for one optax step on ``loss(model, batch)``.

    ``step(params, rest, opt_state, batch) -> (params, rest, opt_state, loss)``: gradients are
    taken with respect to ``nnx.Param`` leaves only; the other state (``rest``: BatchNorm's
    running averages, ...) is updated by the forward pass and returned, so repeated steps
    carry it like ``nnx.Optimizer`` would.
    """
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    opt_state = tx.init(params)

    def step(params, rest, opt_state, batch):
        def objective(p):
            m = nnx.merge(graphdef, p, fresh(rest))
            return loss(m, batch), nnx.state(m, nnx.Not(nnx.Param))

        (value, rest), grads = jax.value_and_grad(objective, has_aux=True)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), rest, opt_state, value

    return step, (params, rest, opt_state)


def finite_loss(out) -> str:
    """Health check for train steps whose last output is the loss."""
    loss = out[-1]
    return "ok" if bool(jax.numpy.isfinite(loss).all()) else "nan"


def binary_image_health(out) -> str:
    """Samples must be 0/1 images (the fixed-point sampler returns ``(x, passes)``)."""
    x = out[0] if isinstance(out, tuple) else out
    return "ok" if bool(((x == 0) | (x == 1)).all()) else "range"
