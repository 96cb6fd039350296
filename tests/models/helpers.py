"""Helpers of the model tests, in plain Flax: the tests of ``models/`` import only ``models``."""

import jax
from flax import nnx


def n_params(model: nnx.Module) -> int:
    """Scalar parameters (``nnx.Param`` leaves) of a module, abstract or not."""
    return sum(int(leaf.size) for leaf in jax.tree.leaves(nnx.state(model, nnx.Param)))


def train(model: nnx.Module, loss, batch, tx, steps: int) -> list[float]:
    """``steps`` optimizer steps on ``loss(model, batch)`` (``nnx.Optimizer``, in place), and
    the loss before each step. Non-parameter state (BatchNorm statistics) is updated too."""
    optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)

    @nnx.jit
    def step(model, optimizer, batch):
        value, grads = nnx.value_and_grad(loss)(model, batch)
        optimizer.update(model, grads)
        return value

    return [float(step(model, optimizer, batch)) for _ in range(steps)]
