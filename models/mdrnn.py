"""2-D multi-dimensional RNN (Graves, Fernández & Schmidhuber 2007, "Multi-dimensional
recurrent neural networks"), the model of the seed's §4-2, with three schedules.

Layer ℓ = 1..d keeps a state s_ℓ(i, j) on an H×W grid. Its input is x(i, j) for ℓ = 1 and
h_{ℓ-1}(i, j) above; its recurrent inputs are the states of the cells above, u = (i-1, j),
and to the left, v = (i, j-1); states outside the grid are zero. With σ the logistic function
and z = W_x x_ℓ(i, j) + U_u h(u) + U_v h(v) + b, the 2-D LSTM cell (one forget gate per
direction) is

    i = σ(z_i),  f_u = σ(z_fu),  f_v = σ(z_fv),  g = tanh(z_g),  o = σ(z_o)
    c(i, j) = f_u ⊙ c(u) + f_v ⊙ c(v) + i ⊙ g
    h(i, j) = o ⊙ tanh(c(i, j))

and the tanh cell is h(i, j) = tanh(z). Gate order along the fused last axis: i, f_u, f_v,
g, o (G = 5k gates for the LSTM cell, G = k for tanh). The recurrent weights are fused as
``w_h = [U_u; U_v]`` of shape (2k, G).

Schedules (all compute the same function; they differ in the order of the work):

* raster: one ``lax.scan`` over the H·W cells in raster order per layer: H·W·d steps.
* wavefront: cell (i, j) only waits for cells on the anti-diagonal i + j - 1, so the grid is
  *skewed* (row i shifted right by i) into S = H + W - 1 diagonals × L = min(H, W) lanes and
  one scan step computes a whole diagonal: (H + W - 1)·d steps, the seed's O(√(HW)·d) for
  H = W.
* pipelined: layer ℓ only needs layer ℓ-1 on the *same* diagonal, so at step t layer ℓ
  computes diagonal t - ℓ and all d layers advance together: H + W + d - 2 steps.

In the skewed frame lane l holds row i = l (or column j = l when H > W, so the lane axis is
always the short side) and the up/left neighbours of a cell are, on the previous diagonal,
the same lane and the lane before it. Cells of the skewed grid outside the image are kept
at zero, which is exactly the zero boundary the recurrence needs.

Speed (what the wavefront does so as not to waste the machine):

* the input projection W_x x + b of a whole layer is one matmul before its scan (it is not
  recurrent); only h·[U_u | U_v] stays in the step, as one matmul on the previous diagonal
  whose two halves are then moved to the cells below / to the right (a lane shift commutes
  with the row-wise product);
* one logistic over all 5k gates (tanh(x) = 2σ(2x) - 1), so a step is one matmul and one
  elementwise kernel rather than one kernel per gate;
* the skewed grid holds L·(L+M-1) cells for L·M real ones, about twice for a square image.
  The diagonals are run as a few scans over *lane windows* (:func:`diagonal_windows`): the
  growing and shrinking triangles are cut into pieces, each computing only the lanes on the
  image, which brings the work to ~(1 + 1/pieces)× the raster's;
* layers 2..d are one ``lax.scan`` over stacked weights, so compile time does not grow with
  d (the windowed scans compile slowly on CPU: seconds for a train step).

Which schedule is fastest depends on the device and sizes: :func:`default_schedule` holds the
rule that ``schedule="auto"`` uses, drawn from measurements (``docs/design-notes.md``).

The generative model (:class:`MDRNNPixel`, compared with PixelCNN in the seed's §4-3)
predicts a binary pixel x(i, j) from the top layer at (i-1, j) and (i, j-1): its logit
depends only on pixels (i', j') ≤ (i, j) component-wise, (i', j') ≠ (i, j). All pixels of an
anti-diagonal are therefore independent given the earlier diagonals, and the sampler draws a
whole diagonal per step: (H + W - 1) steps of d layer updates, versus H·W for a raster-order
autoregressive model.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

# ---------------------------------------------------------------------------- helpers


class State(NamedTuple):
    """A layer's state at some cells: ``h`` and, for the LSTM cell, ``c`` (else None)."""

    h: jax.Array
    c: jax.Array | None


def _check_positive(**sizes: int) -> None:
    for name, value in sizes.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _zeros(cell: str, shape: tuple[int, ...], dtype) -> State:
    zeros = jnp.zeros(shape, dtype)
    return State(zeros, zeros if cell == "lstm" else None)


def _where(mask: jax.Array, state: State) -> State:
    """Zero the state outside ``mask`` (cells off the image, or layers not started)."""
    return jax.tree.map(lambda a: a * mask, state)


def lanes_first(x_BxHxWxC: jax.Array) -> tuple[jax.Array, bool]:
    """Put the shorter side on axis 1 (the lane axis): returns ``(x_BxLxMxC, transposed)``."""
    transposed = x_BxHxWxC.shape[1] > x_BxHxWxC.shape[2]
    return (jnp.swapaxes(x_BxHxWxC, 1, 2) if transposed else x_BxHxWxC), transposed


def skew(x_BxLxMxC: jax.Array) -> jax.Array:
    """Skew so that diagonal s = l + m is one leading index: ``y[s, b, l] = x[b, l, s - l]``.

    Zero outside the image. The pad-and-reshape trick: padding each lane to N = L + M and
    re-reading the flat buffer with rows of N - 1 shifts lane l right by l.
    """
    B, L, M, C = x_BxLxMxC.shape
    N = L + M
    x_BxLxNxC = jnp.pad(x_BxLxMxC, ((0, 0), (0, 0), (0, L), (0, 0)))
    flat_BxPxC = x_BxLxNxC.reshape(B, L * N, C)[:, : L * (N - 1)]
    y_BxLxSxC = flat_BxPxC.reshape(B, L, N - 1, C)
    return jnp.transpose(y_BxLxSxC, (2, 0, 1, 3))


def unskew(y_SxBxLxC: jax.Array, M: int) -> jax.Array:
    """Inverse of :func:`skew`: ``x[b, l, m] = y[l + m, b, l]`` for m < M."""
    S, B, L, C = y_SxBxLxC.shape
    N = S + 1
    flat_BxPxC = jnp.transpose(y_SxBxLxC, (1, 2, 0, 3)).reshape(B, L * S, C)
    flat_BxPxC = jnp.pad(flat_BxPxC, ((0, 0), (0, L), (0, 0)))
    return flat_BxPxC.reshape(B, L, N, C)[:, :, :M]


def diagonal_mask(L: int, M: int, depth: int = 1) -> np.ndarray:
    """``mask[t, ℓ, l] = 1`` where layer ℓ at step t (diagonal s = t - ℓ) is on the image.

    A static (T, depth, L, 1) float array, T = L + M - 1 + depth - 1.
    """
    t = np.arange(L + M - 1 + depth - 1)[:, None, None]
    s = t - np.arange(depth)[None, :, None]
    m = s - np.arange(L)[None, None, :]
    inside = (s >= 0) & (s < L + M - 1) & (m >= 0) & (m < M)
    return inside.astype(np.float32)[..., None]


@functools.cache
def diagonal_windows(L: int, M: int, depth: int = 1, pieces: int | None = None):
    """Split the T = L + M + depth - 2 steps into chunks ``(t0, t1, a, b)`` that only compute
    lanes [a, b): the cells on the image at those steps, plus lane a - 1's previous value.

    A dense (B, L) diagonal holds L(L + M - 1) cells for LM real ones (about twice for a
    square image). The growing and the shrinking triangle are each cut into ``pieces``
    chunks of equal length (the flat middle is one), each a scan over a narrower lane
    window: ~(1 + 1/pieces) of the work for 2·pieces + 1 scans. Default: one piece per 8
    lanes, at most 4 (on XLA:CPU more scans cost more compile time than they save);
    0 is a single dense scan.
    """
    pieces = min(4, L // 8) if pieces is None else pieces
    T, S = L + M + depth - 2, L + M - 1
    grow_end, shrink_start = L - 1, max(M + depth - 1, L - 1)
    cuts = {0, T}
    for j in range(pieces):
        cuts.add(round((j + 1) * grow_end / pieces))
        cuts.add(shrink_start + round(j * (T - shrink_start) / pieces))
    cuts = sorted(c for c in cuts if 0 <= c <= T)
    windows = []
    for t0, t1 in zip(cuts[:-1], cuts[1:], strict=True):
        first_diag, last_diag = max(0, t0 - depth + 1), min(t1 - 1, S - 1)
        # Lowest lane on the image at t0 is first_diag - M + 1; keep the one below it too,
        # because its value on the previous diagonal is a neighbour.
        windows.append((t0, t1, max(0, first_diag - M), min(last_diag, L - 1) + 1))
    return tuple(windows)


def rewindow(x: jax.Array, old: tuple[int, int], new: tuple[int, int]) -> jax.Array:
    """Move ``x`` (lanes [old) on axis -2) to lanes [new): slice what overlaps, zero the rest."""
    (a, b), (a2, b2) = old, new
    lo, hi = max(a, a2), min(b, b2)
    x = x[..., lo - a : hi - a, :]
    return jnp.pad(x, [(0, 0)] * (x.ndim - 2) + [(lo - a2, b2 - hi), (0, 0)])


def rewindow_state(state: State, old: tuple[int, int], new: tuple[int, int]) -> State:
    return jax.tree.map(functools.partial(rewindow, old=old, new=new), state)


def lane_shift(a: jax.Array | None) -> jax.Array | None:
    """Lane l gets lane l - 1 of the previous diagonal; lane 0 gets the zero border."""
    if a is None:
        return None
    pad = [(0, 0)] * (a.ndim - 2) + [(1, 0), (0, 0)]
    return jnp.pad(a, pad)[..., :-1, :]


def _same_lane(a):
    return a


def neighbour_maps(transposed: bool):
    """``(from_up, from_left)``: maps a previous-diagonal array to each cell's up / left value.

    Lanes are rows: up (i-1, j) is the lane before, left (i, j-1) the same lane. Lanes are
    columns (``transposed``): the other way round.
    """
    return (_same_lane, lane_shift) if transposed else (lane_shift, _same_lane)


# ---------------------------------------------------------------------------- cells


def lstm2d_cell(z: jax.Array, c_up: jax.Array, c_left: jax.Array) -> State:
    """2-D LSTM cell from its fused pre-activation ``z = W_x x + U_u h(u) + U_v h(v) + b``.

    One logistic over all 5k gates (with tanh(x) = 2σ(2x) - 1 for g) so that XLA emits one
    elementwise kernel per step, not one per gate.
    """
    k = z.shape[-1] // 5
    scale = jnp.concatenate([jnp.ones(3 * k), jnp.full(k, 2.0), jnp.ones(k)]).astype(z.dtype)
    i, f_up, f_left, g, o = jnp.split(jax.nn.sigmoid(z * scale), 5, axis=-1)
    c = f_up * c_up + f_left * c_left + i * (2 * g - 1)
    return State(o * jnp.tanh(c), c)


def tanh2d_cell(z: jax.Array, c_up: None, c_left: None) -> State:
    """Plain 2-D RNN cell ``h = tanh(W_x x + U_u h(u) + U_v h(v) + b)``."""
    del c_up, c_left
    return State(jnp.tanh(z), None)


CELLS = {"lstm": (lstm2d_cell, 5), "tanh": (tanh2d_cell, 1)}  # cell, gates per hidden unit


def _side_by_side(w_h: jax.Array) -> jax.Array:
    """[U_u; U_v] (..., 2k, G) -> [U_u | U_v] (..., k, 2G): one matmul of h gives both
    neighbours' contributions, which are then moved to their cells (the shift commutes)."""
    k = w_h.shape[-2] // 2
    return jnp.concatenate([w_h[..., :k, :], w_h[..., k:, :]], axis=-1)


# ---------------------------------------------------------------------------- schedules
#
# ``params``: w_in (C, G) layer 1 input weights; w_x (d-1, k, G) layers 2..d input weights;
# w_h (d, 2k, G) recurrent [U_u; U_v]; b (d, G). Each schedule returns the top layer's h,
# (B, H, W, k). Raster and wavefront run layer 1, then one ``lax.scan`` over layers 2..d (same
# shapes), so the compiled program does not grow with d.


def _layer_input_weights(params: dict, layer: int) -> jax.Array:
    return params["w_in"] if layer == 0 else params["w_x"][layer - 1]


def _over_layers(layer, h, params: dict):
    """``layer(h, (w_x, w_h, b))`` for layer 1, then scanned over the stacked layers 2..d."""
    h = layer(h, (params["w_in"], params["w_h"][0], params["b"][0]))
    h, _ = jax.lax.scan(
        lambda h, w: (layer(h, w), None), h, (params["w_x"], params["w_h"][1:], params["b"][1:])
    )
    return h


def mdrnn_raster(params: dict, x_BxHxWxC: jax.Array, cell: str = "lstm") -> jax.Array:
    """Reference schedule: per layer, one scan over the H·W cells in raster order."""
    cell_fn, _ = CELLS[cell]
    B, H, W, _ = x_BxHxWxC.shape
    hidden = params["w_h"].shape[1] // 2
    col_N = jnp.arange(H * W) % W

    def layer(h_BxHxWxK, weights):
        w_x, w_h, b = weights
        # The input projection is not recurrent: one matmul for all cells before the scan.
        xw_NxBxG = jnp.swapaxes((h_BxHxWxK @ w_x + b).reshape(B, H * W, -1), 0, 1)

        def step(row, inputs):
            # row[:, m] holds row i for columns m < j and row i-1 for columns m >= j.
            xw_BxG, j = inputs
            up = jax.tree.map(lambda a: jax.lax.dynamic_index_in_dim(a, j, 1, False), row)
            left = jax.tree.map(
                lambda a: (
                    jax.lax.dynamic_index_in_dim(a, jnp.maximum(j - 1, 0), 1, False) * (j > 0)
                ),
                row,
            )
            z = xw_BxG + jnp.concatenate([up.h, left.h], axis=-1) @ w_h
            new = cell_fn(z, up.c, left.c)
            row = jax.tree.map(
                lambda r, n: jax.lax.dynamic_update_index_in_dim(r, n, j, 1), row, new
            )
            return row, new.h

        row0 = _zeros(cell, (B, W, hidden), x_BxHxWxC.dtype)
        _, h_NxBxK = jax.lax.scan(step, row0, (xw_NxBxG, col_N))
        return jnp.swapaxes(h_NxBxK, 0, 1).reshape(B, H, W, hidden)

    return _over_layers(layer, x_BxHxWxC, params)


def mdrnn_wavefront(
    params: dict, x_BxHxWxC: jax.Array, cell: str = "lstm", pieces: int | None = None
) -> jax.Array:
    """Layer by layer, one scan step per anti-diagonal: (H + W - 1)·d steps, as the lane
    windows of :func:`diagonal_windows` (``pieces``; 0: one dense scan)."""
    cell_fn, _ = CELLS[cell]
    x_BxLxMxC, transposed = lanes_first(x_BxHxWxC)
    B, L, M, _ = x_BxLxMxC.shape
    hidden = params["w_h"].shape[1] // 2
    from_up, from_left = neighbour_maps(transposed)
    windows = diagonal_windows(L, M, 1, pieces)
    mask_SxLx1 = diagonal_mask(L, M)[:, 0]
    x_SxBxLxC = skew(x_BxLxMxC)

    def layer(h_chunks, weights):
        # h_chunks: the layer below on each window's diagonals and lanes, (t1-t0, B, b-a, ·).
        w_x, w_h, b_ = weights
        w_hh = _side_by_side(w_h)

        def step(prev, inputs):
            xw_BxLxG, mask_Lx1 = inputs
            hw_up, hw_left = jnp.split(prev.h @ w_hh, 2, axis=-1)
            z = xw_BxLxG + from_up(hw_up) + from_left(hw_left)
            new = _where(mask_Lx1, cell_fn(z, from_up(prev.c), from_left(prev.c)))
            return new, new.h

        prev, lanes, out = _zeros(cell, (B, L, hidden), x_BxHxWxC.dtype), (0, L), []
        for (t0, t1, a, b), h_TxBxLxK in zip(windows, h_chunks, strict=True):
            prev, lanes = rewindow_state(prev, lanes, (a, b)), (a, b)
            xw_TxBxLxG = h_TxBxLxK @ w_x + b_
            prev, h_TxBxLxK = jax.lax.scan(step, prev, (xw_TxBxLxG, mask_SxLx1[t0:t1, a:b]))
            out.append(h_TxBxLxK)
        return out

    x_chunks = [x_SxBxLxC[t0:t1, :, a:b] for t0, t1, a, b in windows]
    h_chunks = _over_layers(layer, x_chunks, params)
    h_SxBxLxK = jnp.concatenate(
        [rewindow(h, (a, b), (0, L)) for (_, _, a, b), h in zip(windows, h_chunks, strict=True)]
    )
    h_BxLxMxK = unskew(h_SxBxLxK, M)
    return jnp.swapaxes(h_BxLxMxK, 1, 2) if transposed else h_BxLxMxK


def mdrnn_pipelined(
    params: dict, x_BxHxWxC: jax.Array, cell: str = "lstm", pieces: int | None = None
) -> jax.Array:
    """All layers at once, layer ℓ on diagonal t - ℓ at step t: H + W + d - 2 steps (lane
    windows as in :func:`mdrnn_wavefront`)."""
    cell_fn, _ = CELLS[cell]
    x_BxLxMxC, transposed = lanes_first(x_BxHxWxC)
    B, L, M, _ = x_BxLxMxC.shape
    depth, hidden = params["w_h"].shape[0], params["w_h"].shape[1] // 2
    from_up, from_left = neighbour_maps(transposed)
    windows = diagonal_windows(L, M, depth, pieces)
    mask_TxDxLx1 = diagonal_mask(L, M, depth)
    x_TxBxLxC = jnp.pad(skew(x_BxLxMxC), ((0, depth - 1), (0, 0), (0, 0), (0, 0)))

    # One batched matmul per step: layer m's h feeds its own recurrence and layer m+1's input.
    w_next = jnp.pad(params["w_x"], ((0, 1), (0, 0), (0, 0)))
    w_hh = jnp.concatenate([_side_by_side(params["w_h"]), w_next], axis=-1)
    b_above = params["b"][1:, None, None]

    def step(prev, inputs):
        # prev: every layer's last diagonal, (d, B, L, k); layer ℓ-1's is layer ℓ's input.
        xw_BxLxG, mask_DxLx1 = inputs
        hw_up, hw_left, hw_next = jnp.split(jnp.einsum("dblk,dkg->dblg", prev.h, w_hh), 3, -1)
        xw_DxBxLxG = jnp.concatenate([xw_BxLxG[None], hw_next[:-1] + b_above])
        z = xw_DxBxLxG + from_up(hw_up) + from_left(hw_left)
        new = _where(mask_DxLx1[:, None], cell_fn(z, from_up(prev.c), from_left(prev.c)))
        return new, new.h[-1]

    prev, lanes, out = _zeros(cell, (depth, B, L, hidden), x_BxHxWxC.dtype), (0, L), []
    for t0, t1, a, b in windows:
        prev, lanes = rewindow_state(prev, lanes, (a, b)), (a, b)
        xw_TxBxLxG = x_TxBxLxC[t0:t1, :, a:b] @ params["w_in"] + params["b"][0]
        prev, h_TxBxLxK = jax.lax.scan(step, prev, (xw_TxBxLxG, mask_TxDxLx1[t0:t1, :, a:b]))
        out.append(rewindow(h_TxBxLxK, (a, b), (0, L)))
    h_BxLxMxK = unskew(jnp.concatenate(out)[depth - 1 :], M)
    return jnp.swapaxes(h_BxLxMxK, 1, 2) if transposed else h_BxLxMxK


SCHEDULES = {"raster": mdrnn_raster, "wavefront": mdrnn_wavefront, "pipelined": mdrnn_pipelined}


def sequential_steps(schedule: str, height: int, width: int, depth: int) -> int:
    """Scan steps on the critical path of each schedule (the seed's §4-2b quantity)."""
    return {
        "raster": height * width * depth,
        "wavefront": (height + width - 1) * depth,
        "pipelined": height + width + depth - 2,
    }[schedule]


def cells_computed(
    schedule: str, height: int, width: int, depth: int, pieces: int | None = None
) -> int:
    """Cell updates one image costs under ``schedule``: H·W·d for the raster scan. The
    wavefronts update whole lane windows at every step (:func:`diagonal_windows`; cells off
    the image are computed and masked), so they do more: the price of fewer steps."""
    if schedule == "raster":
        return height * width * depth
    L, M = sorted((height, width))
    if schedule == "wavefront":
        windows = diagonal_windows(L, M, 1, pieces)
        return depth * sum((t1 - t0) * (b - a) for t0, t1, a, b in windows)
    windows = diagonal_windows(L, M, depth, pieces)
    return depth * sum((t1 - t0) * (b - a) for t0, t1, a, b in windows)


RASTER_ROW_FLOATS = 16
"""CPU: the raster schedule wins while its carried row (batch × W × k floats of h) is this
small (see :func:`default_schedule`)."""


def default_schedule(
    batch: int, height: int, width: int, hidden: int, depth: int, backend: str | None = None
) -> str:
    """The schedule ``schedule="auto"`` uses: at the sizes the profiles run, the one measured
    fastest, and never one measured slower than 0.9× the raster schedule (the reference).

    CPU: the raster schedule where its carried row, batch·W·k floats of h, is at most
    :data:`RASTER_ROW_FLOATS`: so small a loop carry makes XLA:CPU run the raster scan's loop
    several times faster per step than the wavefront's, which outweighs its H·W steps against
    H + W - 1 on small grids (at batch 1, k = 2: up to 8×8; from 9×9 on the wavefront wins).
    Raster too for batch ≥ 16 on grids whose short side is ≤ 16: B·L rows per diagonal keep
    the cores busy, and the raster scan computes no off-image cells. Elsewhere the wavefront.
    The pipelined schedule is not picked on CPU: at batch 1 it kept up with the wavefront
    only at small k, and at batch 16 it fell behind the raster (a CPU step costs its
    arithmetic, so fewer and wider steps do not pay).
    Accelerators (not measured): pipelined, whose H+W+d-2 steps suit hardware where a step
    costs a fixed launch latency (at d = 1 it is the wavefront).
    The measured speed ratios behind this rule are in ``docs/design-notes.md``.
    """
    backend = backend or jax.default_backend()
    if backend != "cpu":
        return "pipelined" if depth > 1 else "wavefront"
    if batch * width * hidden <= RASTER_ROW_FLOATS:
        return "raster"
    if batch >= 16 and min(height, width) <= 16:
        return "raster"
    return "wavefront"


def connections(
    in_features: int, hidden: int, depth: int, height: int, width: int, cell: str = "lstm"
) -> int:
    """Weighted connections of the network unrolled over the grid (the seed's §4-2a count).

    A connection is one weight joining one input unit of a cell to one of its G gate units
    (G = 5k for the LSTM cell, k for tanh); biases are not connections. Cell (ℓ, i, j) has
    C (ℓ = 1) or k (ℓ > 1) input units and k per neighbour that exists, and there are
    (H-1)·W up and H·(W-1) left neighbour pairs per layer:

        G·[H·W·(C + (d-1)·k) + d·k·(2HW - H - W)]  =  Θ(d·H·W·k²).
    """
    _check_positive(in_features=in_features, hidden=hidden, depth=depth, height=height, width=width)
    gates, hw = CELLS[cell][1] * hidden, height * width
    neighbour_pairs = 2 * hw - height - width
    return gates * (hw * (in_features + (depth - 1) * hidden) + depth * hidden * neighbour_pairs)


def macs(
    in_features: int, hidden: int, depth: int, height: int, width: int, cell: str = "lstm"
) -> int:
    """Multiply-accumulates of one image's forward pass in the raster schedule, which also
    multiplies the zero border: G·H·W·(C + (d-1)·k + 2dk). The windowed wavefront does
    about (1 + 1/pieces)× this (cells off the image in each window)."""
    gates = CELLS[cell][1] * hidden
    return gates * height * width * (in_features + (depth - 1) * hidden + 2 * depth * hidden)


# ---------------------------------------------------------------------------- modules


def _lecun(key: jax.Array, shape: tuple[int, ...], fan_in: int) -> jax.Array:
    return jax.random.normal(key, shape) / math.sqrt(fan_in)


class MDRNN(nnx.Module):
    """d stacked 2-D RNN layers over a (B, H, W, C) grid, returning the top h (B, H, W, k)."""

    def __init__(
        self,
        in_features: int,
        hidden: int,
        depth: int,
        *,
        cell: str = "lstm",
        schedule: str = "auto",
        pieces: int | None = None,
        rngs: nnx.Rngs,
    ):
        """``pieces``: the wavefronts' lane windows per triangle (:func:`diagonal_windows`;
        0: one dense scan, which compiles several times faster and computes the off-image
        cells); the same function and steps either way."""
        _check_positive(in_features=in_features, hidden=hidden, depth=depth)
        if cell not in CELLS:
            raise ValueError(f"cell must be one of {sorted(CELLS)}, got {cell!r}")
        if schedule != "auto" and schedule not in SCHEDULES:
            raise ValueError(
                f"schedule must be 'auto' or one of {sorted(SCHEDULES)}, got {schedule!r}"
            )
        self.in_features, self.hidden, self.depth = in_features, hidden, depth
        self.cell, self.schedule, self.pieces = cell, schedule, pieces
        gates = CELLS[cell][1] * hidden
        self.w_in = nnx.Param(_lecun(rngs.params(), (in_features, gates), in_features))
        self.w_x = nnx.Param(_lecun(rngs.params(), (depth - 1, hidden, gates), hidden))
        self.w_h = nnx.Param(_lecun(rngs.params(), (depth, 2 * hidden, gates), 2 * hidden))
        # Forget biases 0: σ = 1/2 per direction, so c(i, j) starts as an average of its two
        # neighbours' cells. A bias of +1 (f_u + f_v ≈ 1.46) makes c grow along diagonals.
        self.b = nnx.Param(jnp.zeros((depth, gates)))

    @property
    def params(self) -> dict:
        return {
            "w_in": self.w_in[...],
            "w_x": self.w_x[...],
            "w_h": self.w_h[...],
            "b": self.b[...],
        }

    def schedule_for(self, x_BxHxWxC: jax.Array) -> str:
        if self.schedule != "auto":
            return self.schedule
        B, H, W, _ = x_BxHxWxC.shape
        return default_schedule(B, H, W, self.hidden, self.depth, jax.default_backend())

    def __call__(self, x_BxHxWxC: jax.Array) -> jax.Array:
        if x_BxHxWxC.ndim != 4 or x_BxHxWxC.shape[-1] != self.in_features:
            raise ValueError(f"expected (B, H, W, {self.in_features}) input, got {x_BxHxWxC.shape}")
        name = self.schedule_for(x_BxHxWxC)
        if name == "raster":
            return mdrnn_raster(self.params, x_BxHxWxC, self.cell)
        return SCHEDULES[name](self.params, x_BxHxWxC, self.cell, pieces=self.pieces)


def shift_down_right(h_BxHxWxK: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(h at (i-1, j), h at (i, j-1)), zero on the first row / column."""
    up = jnp.pad(h_BxHxWxK, ((0, 0), (1, 0), (0, 0), (0, 0)))[:, :-1]
    left = jnp.pad(h_BxHxWxK, ((0, 0), (0, 0), (1, 0), (0, 0)))[:, :, :-1]
    return up, left


class MDRNNPixel(nnx.Module):
    """Binary-image model: logit of x(i, j) = [h_d(i-1, j); h_d(i, j-1)]·v + b_out."""

    def __init__(
        self,
        hidden: int,
        depth: int,
        *,
        cell: str = "lstm",
        schedule: str = "auto",
        pieces: int | None = None,
        rngs: nnx.Rngs,
    ):
        self.mdrnn = MDRNN(1, hidden, depth, cell=cell, schedule=schedule, pieces=pieces, rngs=rngs)
        self.w_out = nnx.Param(_lecun(rngs.params(), (2 * hidden,), 2 * hidden))
        self.b_out = nnx.Param(jnp.zeros(()))

    def __call__(self, x_BxHxW: jax.Array) -> jax.Array:
        """Bernoulli logits (B, H, W) of every pixel given the pixels before it."""
        h_BxHxWxK = self.mdrnn(x_BxHxW[..., None])
        up, left = shift_down_right(h_BxHxWxK)
        return jnp.concatenate([up, left], axis=-1) @ self.w_out[...] + self.b_out[...]

    def sample(self, u_BxHxW: jax.Array) -> jax.Array:
        """Draw images one anti-diagonal at a time: x(i, j) = [u(i, j) < σ(logit(i, j))].

        ``u`` is pre-drawn uniform noise, so the result is a deterministic function of it.
        H + W - 1 scan steps, each d layer updates on one diagonal of all B images.
        """
        p, cell_fn = self.mdrnn.params, CELLS[self.mdrnn.cell][0]
        u_BxLxM, transposed = lanes_first(u_BxHxW[..., None])
        B, L, M, _ = u_BxLxM.shape
        depth, hidden = self.mdrnn.depth, self.mdrnn.hidden
        w_out, b_out = self.w_out[...], self.b_out[...]
        w_hh = _side_by_side(p["w_h"])
        from_up, from_left = neighbour_maps(transposed)

        def step(prev, inputs):
            # prev: every layer's state on the previous diagonal, (d, B, L, k).
            u_BxL, mask_Lx1 = inputs
            top = prev.h[-1]
            logit_BxL = jnp.concatenate([from_up(top), from_left(top)], -1) @ w_out + b_out
            x_BxL = (u_BxL < jax.nn.sigmoid(logit_BxL)).astype(u_BxL.dtype) * mask_Lx1[:, 0]
            h_BxLxK, new = x_BxL[..., None], []
            for layer in range(depth):  # layer ℓ needs layer ℓ-1 on this same diagonal
                w_x = _layer_input_weights(p, layer)
                h, c = prev.h[layer], None if prev.c is None else prev.c[layer]
                hw_up, hw_left = jnp.split(h @ w_hh[layer], 2, axis=-1)
                z = h_BxLxK @ w_x + p["b"][layer] + from_up(hw_up) + from_left(hw_left)
                new.append(_where(mask_Lx1, cell_fn(z, from_up(c), from_left(c))))
                h_BxLxK = new[-1].h
            return jax.tree.map(lambda *a: jnp.stack(a), *new), x_BxL

        prev0 = _zeros(self.mdrnn.cell, (depth, B, L, hidden), u_BxHxW.dtype)
        mask_SxLx1 = jnp.asarray(diagonal_mask(L, M)[:, 0])
        _, x_SxBxL = jax.lax.scan(step, prev0, (skew(u_BxLxM)[..., 0], mask_SxLx1))
        x_BxLxM = unskew(x_SxBxL[..., None], M)[..., 0]
        return jnp.swapaxes(x_BxLxM, 1, 2) if transposed else x_BxLxM


def nll_loss(model: MDRNNPixel, x_BxHxW: jax.Array) -> jax.Array:
    """Bernoulli negative log-likelihood, nats per pixel: softplus(l) - x·l, averaged."""
    logits = model(x_BxHxW)
    return jnp.mean(jax.nn.softplus(logits) - x_BxHxW * logits)
