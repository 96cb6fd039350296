"""The LSTM evaluated in parallel over time by Newton's method (DEER and quasi-DEER).

Lim et al., "Parallelizing non-linear sequential models over the sequence length" (ICLR 2024,
DEER); Gonzalez et al., "Towards scalable and stable parallelization of nonlinear RNNs"
(NeurIPS 2024, quasi-DEER). The CSE 891 HW3 solution runs its LSTM (its §2, ``models/lstm.py``)
one step after another: T dependent steps. Here the whole trajectory is one unknown.

The system. Write the LSTM state as s(t) = (h(t), c(t)) ∈ R^{2H} and one step of
:func:`models.lstm.lstm_cell` as s(t) = F(s(t-1), x(t)). The trajectory s(1..T) is the root of

    s(t) - F(s(t-1), x(t)) = 0,    t = 1..T,    s(0) given.

Newton. Given a guess s^k, linearise every step around s^k(t-1) at once (in parallel over t),
with J(t) = ∂F/∂s at s^k(t-1):

    s^{k+1}(t) = F(s^k(t-1)) + J(t) (s^{k+1}(t-1) - s^k(t-1))
               = J(t) s^{k+1}(t-1) + u(t),        u(t) = F(s^k(t-1)) - J(t) s^k(t-1),

a *linear* recurrence, solved by ``jax.lax.associative_scan`` over the pairs (J(t), u(t)) with
the associative combine (J₂, u₂) ∘ (J₁, u₁) = (J₂ J₁, J₂ u₁ + u₂): depth O(log T), about 2T
combines. Since s(0) is known, u(1) = F(s(0)) and the scanned u's are the states themselves.

* ``jacobian="full"`` (DEER): the dense 2H×2H Jacobian; a combine is a 2H×2H matrix product,
  O(H³), and this is exactly Newton's method (quadratic convergence near the root).
* ``jacobian="diagonal"`` (quasi-DEER): only diag J(t); a combine is elementwise, O(H). A
  quasi-Newton method: linear convergence, and the linear recurrence can be unstable
  (|diag J| > 1 over long stretches overflows), which Gonzalez et al. damp with ELK (not here).

The Jacobian is written out (:func:`linearise`) rather than taken with ``jax.jacfwd`` (2H
tangents through h·W_h, O(H³) per step; the tests use it as the oracle): s(t) sees h(t-1)
only through the pre-activations z = x W_x + h(t-1) W_h + b, and c(t-1) unit by unit, so the
per-unit derivatives of the cell (O(H)) and one broadcast against W_h (O(H²)) give J, and its
diagonal in O(H).

Why Newton on this system is exact after at most T iterations. The system is lower
block-triangular in time: the equation of step t involves only s(t) and s(t-1). If the first
k states of s^k are exact, then in iteration k+1 every F(s^k(t-1)) with t ≤ k+1 is evaluated
at an exact state, and the linear recurrence gives s^{k+1}(t) = F(s(t-1)) = s(t) for t ≤ k+1
(the J-terms vanish because s^{k+1}(t-1) = s^k(t-1) there). Iteration 1 makes s(1) exact,
because s(0) is given. So after k iterations at least the first k states are exact, whatever
the Jacobian: this holds for DEER, for quasi-DEER and even for J = 0 (the Jacobi /
fixed-point sweep s^{k+1}(t) = F(s^k(t-1))). Consequences for the cap: k = T iterations always
give the exact trajectory (up to rounding), so a cap above T is never needed and the
effective cap is min(max_iter, T); but T iterations of O(log T) depth are slower than the
sequential scan, so the method pays only when it converges in k ≪ T / log T iterations. The
worst case is a recurrence that carries information forward one step per iteration.

Stopping rule. Iterate in a ``lax.while_loop`` until the scaled update

    δ^k = max over (t, batch, j) of |s^k_j(t) - s^{k-1}_j(t)| / (1 + |s^k_j(t)|)

(relative to the state's own scale, with an absolute floor of 1, the natural scale of h) is at
most ``tol``, or k reaches the cap. A non-finite δ (overflow) stops the loop too. At k = T the
trajectory is exact by the argument above, so there the criterion is the residual instead.
The result reports the iterations k, the last δ, the final residual max_t |s(t) - F(s(t-1))|
(absolute) and ``converged``: δ ≤ tol, or k = T with the scaled residual ≤ tol. A case that
does not converge within its cap is reported, not raised. ``tol`` must sit above the rounding
noise of the scan: near 1e-6 in float32, a slowly contracting quasi-Newton iteration
(|diag J| close to 1) can stagnate a little above it and run to its cap with an accurate
trajectory; the residual tells that case from a real failure.

Gradients: implicit differentiation (DEER's way), a ``jax.custom_vjp``. At the solution
s(t) = F(s(t-1), x(t); W_h), the adjoint of a cotangent ḡ(t) on s(t) is the linear recurrence
backwards in time

    λ(t) = ḡ(t) + J(t+1)ᵀ λ(t+1),    λ(T+1) = 0,

solved by the same associative scan (reversed) with the transposed *full* Jacobians at the
converged trajectory, for both variants: the diagonal is only a device to reach the root, the
gradient of the root needs the exact J. Then one vector-Jacobian product of F over all t at
once gives W̄_h, the input projection's cotangent and s̄(0) (= J(1)ᵀ λ(1)). Why implicit and
not through the iterations: (1) JAX cannot reverse-differentiate a ``lax.while_loop`` with a
data-dependent trip count; (2) unrolling a fixed k would keep k trajectories and k sets of
Jacobians (k·T·4H² numbers for DEER), and its gradient only approaches the gradient of the
solution as k grows; (3) the implicit gradient is the gradient of the exact trajectory,
evaluated at the converged one, for one extra scan whatever k was. For quasi-DEER that scan is
dense (O(T·H³)): its cheap forward does not make a cheap backward.

What the work, span and memory are. Per iteration: one parallel evaluation of F (O(T·H²)
work, h·W_h is H×4H per step), the Jacobians (O(T·H²) full, O(T·H) diagonal) and the scan
(O(T·H³) full, O(T·H) diagonal), at span O(log T). So DEER is O(k·T·H³), but quasi-DEER on
this LSTM is O(k·T·H²), not O(k·T·H): evaluating F itself is quadratic in H, as in the
sequential scan. The full variant holds T·B·(2H)² Jacobian entries, a few times over inside
the scan: 4 GiB per copy in float32 at T = 65,536, H = 64, B = 1.

The binary adder's threshold RNN (``models/binary_adder.py``) is handled by
:func:`adder_fixed_point`: its step function has zero derivative almost everywhere, so the
Newton step degenerates into the Jacobi sweep h^{k+1}(t) = F(h^k(t-1)): no linear recurrence is
left to solve and every iteration is one parallel step. Started from h = 0, the iterates rise
monotonically (F is monotone in the carry) and a carry travels one column per iteration, so it
needs 2 + D iterations to reach the fixed point, where D is the longest run of "propagate"
columns (a_t ≠ b_t) following a "generate" column (a_t = b_t = 1), plus one to observe that
nothing changed; at most T (the cap): D ≈ log₂ n for random n-bit addends, D = n - 1 for
2ⁿ - 1 + 1, which makes it as sequential as the scan.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from models.binary_adder import adder_step
from models.lstm import _input_projection, _zero_carry, cell_update, gates, lstm_cell

JACOBIANS = ("full", "diagonal")
"""``full``: DEER (Newton); ``diagonal``: quasi-DEER (diag J only)."""

DEFAULT_TOL = {jnp.dtype(jnp.float32): 1e-6, jnp.dtype(jnp.float64): 1e-12}
"""Default ``tol`` on the scaled update, by dtype: about 8 ulp in float32, 4500 in float64;
8 ulp for any other floating dtype."""


class Stats(NamedTuple):
    """How the Newton iteration ended (scalars, over the whole batch)."""

    iterations: jax.Array
    """Newton iterations run (int32)."""
    update: jax.Array
    """Last scaled update δ (see the module docstring)."""
    residual: jax.Array
    """max over (t, batch, j) of |s(t) - F(s(t-1), x(t))| at the returned trajectory."""
    converged: jax.Array
    """δ ≤ tol, or k = T and the scaled residual ≤ tol (bool)."""


class Options(NamedTuple):
    """Static options of the solve (hashable: a ``nondiff_argnum`` of the custom VJP)."""

    jacobian: str
    tol: float
    max_iter: int


# --- The cell as a map of the stacked state s = (h, c), and its derivatives ------------------


def _split(s: jax.Array):
    return jnp.split(s, 2, axis=-1)


def transition(w_h: jax.Array, s_prev: jax.Array, xw: jax.Array) -> jax.Array:
    """s(t) = F(s(t-1), x(t)) for any leading axes: :func:`lstm_cell` on s = (h, c)."""
    (h, c), _ = lstm_cell(w_h, tuple(_split(s_prev)), xw)
    return jnp.concatenate([h, c], axis=-1)


class _CellDerivatives(NamedTuple):
    """Per-unit derivatives of one LSTM step (each (..., H), unit j against unit j)."""

    dh_dz: tuple  # ∂h_j/∂z_{k,j} for the gate blocks k = i, f, g, o
    dc_dz: tuple  # ∂c_j/∂z_{k,j} for k = i, f, g (∂c/∂z_o = 0)
    dh_dc: jax.Array  # ∂h_j/∂c_j(t-1)
    dc_dc: jax.Array  # ∂c_j/∂c_j(t-1)


def _cell_derivatives(w_h: jax.Array, s_prev: jax.Array, xw: jax.Array):
    """F(s_prev, x) (..., 2H) and :class:`_CellDerivatives`, for any leading axes (...).

    By the chain rule through :func:`models.lstm.gates` and :func:`models.lstm.cell_update`,
    with σ' = σ(1-σ) and tanh' = 1 - tanh²:

        ∂c/∂z_i = g i(1-i)   ∂c/∂z_f = c(t-1) f(1-f)   ∂c/∂z_g = i (1-g²)   ∂c/∂z_o = 0
        ∂h/∂z_k = o (1 - tanh² c) ∂c/∂z_k  (k = i, f, g)   ∂h/∂z_o = tanh c · o(1-o)
        ∂c/∂c(t-1) = f        ∂h/∂c(t-1) = o (1 - tanh² c) f
    """
    h_prev, c_prev = _split(s_prev)
    i, f, g, o = gates(xw + h_prev @ w_h)
    h, c = cell_update(c_prev, i, f, g, o)
    tanh_c = jnp.tanh(c)
    dh_dc = o * (1 - tanh_c**2)
    dc_dz = (g * i * (1 - i), c_prev * f * (1 - f), i * (1 - g**2))
    dh_dz = (*(dh_dc * d for d in dc_dz), tanh_c * o * (1 - o))
    return jnp.concatenate([h, c], axis=-1), _CellDerivatives(dh_dz, dc_dz, dh_dc * f, f)


def linearise(w_h: jax.Array, s_prev: jax.Array, xw: jax.Array, jacobian: str = "full"):
    """F(s_prev, x) and its Jacobian ∂F/∂s_prev, for any leading axes (...).

    ``full``: (..., 2H, 2H) with J[a, b] = ∂s_a(t)/∂s_b(t-1); ``diagonal``: its diagonal
    (..., 2H). From :func:`_cell_derivatives`: s(t) sees h(t-1) only through
    z_k = ... + h(t-1) W_hk (W_hk = W_h[:, kH:(k+1)H]), so with rows j over units,

        ∂h_j/∂h_m(t-1) = Σ_k ∂h_j/∂z_{k,j} · W_hk[m, j]      (likewise ∂c/∂h(t-1))

    and c(t-1) only unit by unit: ∂h/∂c(t-1) and ∂c/∂c(t-1) are diagonal.
    """
    hidden = w_h.shape[0]
    w_hk = jnp.split(w_h, 4, axis=-1)  # W_hk[m, j]
    s, d = _cell_derivatives(w_h, s_prev, xw)
    if jacobian == "diagonal":
        unit = jnp.arange(hidden)  # W_hk[j, j] by indexing: jnp.diagonal is platform-dependent
        dh_dh = sum(dk * wk[unit, unit] for dk, wk in zip(d.dh_dz, w_hk, strict=True))
        return s, jnp.concatenate([dh_dh, d.dc_dc], axis=-1)

    def rows(ds_dz):  # Σ_k ∂s_j/∂z_{k,j} W_hk[m, j] as (..., j, m): broadcasts, no dot
        return sum(dk[..., None] * wk.T for dk, wk in zip(ds_dz, w_hk, strict=False))

    eye = jnp.eye(hidden, dtype=s.dtype)
    top = jnp.concatenate([rows(d.dh_dz), d.dh_dc[..., None] * eye], axis=-1)
    bottom = jnp.concatenate([rows(d.dc_dz), d.dc_dc[..., None] * eye], axis=-1)
    return s, jnp.concatenate([top, bottom], axis=-2)


# --- Linear recurrences by associative scan --------------------------------------------------


def _combine_full(earlier, later):
    j1, u1 = earlier
    j2, u2 = later
    return j2 @ j1, jnp.einsum("...ab,...b->...a", j2, u1) + u2


def _combine_diagonal(earlier, later):
    j1, u1 = earlier
    j2, u2 = later
    return j2 * j1, j2 * u1 + u2


def linear_recurrence(j_T: jax.Array, u_T: jax.Array, *, reverse: bool = False) -> jax.Array:
    """All y(t) = J(t) y(t-1) + u(t) from y(0) = 0, along axis 0, in O(log T) depth.

    ``j_T`` is (T, ..., n, n) (dense) or (T, ..., n) (diagonal, same shape as ``u_T``).
    ``reverse``: y(t) = J(t) y(t+1) + u(t) from y(T+1) = 0.
    """
    combine = _combine_diagonal if j_T.shape == u_T.shape else _combine_full
    return jax.lax.associative_scan(combine, (j_T, u_T), reverse=reverse)[1]


def _apply(j: jax.Array, v: jax.Array) -> jax.Array:
    """J v for a dense (..., n, n) or diagonal (..., n) J."""
    return j * v if j.shape == v.shape else jnp.einsum("...ab,...b->...a", j, v)


# --- The Newton solve ------------------------------------------------------------------------


def _previous(s0_Bx2H: jax.Array, s_TxBx2H: jax.Array) -> jax.Array:
    """s(t-1) for t = 1..T: (s(0), s(1), ..., s(T-1))."""
    return jnp.concatenate([s0_Bx2H[None], s_TxBx2H[:-1]], axis=0)


def _max_norm(diff: jax.Array, scale: jax.Array | float = 0.0) -> jax.Array:
    """max |diff| / (1 + scale), or NaN if anything is not finite (XLA:CPU's max reduction
    can drop NaNs, so a diverged trajectory would otherwise look converged)."""
    finite = jnp.all(jnp.isfinite(diff)) & jnp.all(jnp.isfinite(scale))
    return jnp.where(finite, jnp.max(jnp.abs(diff) / (1 + scale)), jnp.nan)


def _newton(w_h, xw_TxBx4H, s0_Bx2H, options: Options):
    steps = xw_TxBx4H.shape[0]
    cap = min(options.max_iter, steps)

    def step(carry):
        k, s, _ = carry
        f, j = linearise(w_h, _previous(s0_Bx2H, s), xw_TxBx4H, options.jacobian)
        # u(t) = F(s^k(t-1)) - J(t) s^k(t-1); at t = 1 the J-term is zero: s(0) is exact.
        u = f - _apply(j, _previous(jnp.zeros_like(s0_Bx2H), s))
        s_new = linear_recurrence(j, u)
        return k + 1, s_new, _max_norm(s_new - s, jnp.abs(s_new))

    def keep_going(carry):
        k, _, update = carry
        return (k < cap) & (update > options.tol) & ~jnp.isnan(update)  # NaN: diverged

    s_init = jnp.broadcast_to(s0_Bx2H, (steps, *s0_Bx2H.shape))
    start = (jnp.int32(0), s_init, jnp.array(jnp.inf, s0_Bx2H.dtype))
    k, s, update = jax.lax.while_loop(keep_going, step, start)
    defect = s - transition(w_h, _previous(s0_Bx2H, s), xw_TxBx4H)
    exact = (k >= steps) & (_max_norm(defect, jnp.abs(s)) <= options.tol)
    stats = Stats(k, update, _max_norm(defect), (update <= options.tol) | exact)
    return s, stats


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def _solve(w_h, xw_TxBx4H, s0_Bx2H, options: Options):
    return _newton(w_h, xw_TxBx4H, s0_Bx2H, options)


def _solve_fwd(w_h, xw_TxBx4H, s0_Bx2H, options):
    s, stats = _newton(w_h, xw_TxBx4H, s0_Bx2H, options)
    return (s, stats), (w_h, xw_TxBx4H, s0_Bx2H, s)


def _solve_bwd(options, residuals, cotangents):
    w_h, xw_TxBx4H, s0_Bx2H, s = residuals
    s_bar, _ = cotangents  # the stats are not differentiable
    s_prev = _previous(s0_Bx2H, s)
    _, j = linearise(w_h, s_prev, xw_TxBx4H, "full")
    # λ(t) = s̄(t) + J(t+1)ᵀ λ(t+1): the transposed Jacobians, shifted by one step
    jt_next = jnp.concatenate([jnp.swapaxes(j[1:], -1, -2), jnp.zeros_like(j[:1])], axis=0)
    lam = linear_recurrence(jt_next, s_bar, reverse=True)
    _, vjp = jax.vjp(transition, w_h, s_prev, xw_TxBx4H)
    w_h_bar, s_prev_bar, xw_bar = vjp(lam)
    return w_h_bar, xw_bar, s_prev_bar[0]


_solve.defvjp(_solve_fwd, _solve_bwd)


def _options(jacobian: str, tol: float | None, max_iter: int | None, dtype, steps: int):
    if jacobian not in JACOBIANS:
        raise ValueError(f"jacobian must be one of {JACOBIANS}, got {jacobian!r}")
    if max_iter is not None and (not isinstance(max_iter, int) or max_iter < 1):
        raise ValueError(f"max_iter must be a positive integer, got {max_iter!r}")
    if tol is None:
        tol = DEFAULT_TOL.get(jnp.dtype(dtype), 8 * float(jnp.finfo(dtype).eps))
    if not tol > 0:
        raise ValueError(f"tol must be positive, got {tol!r}")
    return Options(jacobian, float(tol), steps if max_iter is None else max_iter)


def lstm_deer(
    params: dict,
    x_BxTxI: jax.Array,
    carry=None,
    *,
    jacobian: str = "full",
    tol: float | None = None,
    max_iter: int | None = None,
):
    """:func:`models.lstm.lstm_scan` evaluated by Newton iterations parallel over time.

    Returns ``((h(T), c(T)), h_BxTxH), stats`` (:class:`Stats`): the same values as
    ``lstm_scan`` once converged. ``jacobian``: "full" (DEER) or "diagonal" (quasi-DEER).
    ``tol``: on the scaled update (module docstring); default by dtype (:data:`DEFAULT_TOL`).
    ``max_iter``: iteration cap, default T (exact by construction); min(max_iter, T) is used.
    Differentiable (implicitly, see the module docstring) in ``params``, ``x`` and ``carry``.
    """
    hidden = params["w_h"].shape[0]
    if carry is None:
        carry = _zero_carry(x_BxTxI, hidden)
    xw_TxBx4H = _input_projection(params, x_BxTxI)
    options = _options(jacobian, tol, max_iter, xw_TxBx4H.dtype, x_BxTxI.shape[1])
    s0_Bx2H = jnp.concatenate(carry, axis=-1)
    s_TxBx2H, stats = _solve(params["w_h"], xw_TxBx4H, s0_Bx2H, options)
    h_TxBxH, c_TxBxH = _split(s_TxBx2H)
    return ((h_TxBxH[-1], c_TxBxH[-1]), jnp.swapaxes(h_TxBxH, 0, 1)), stats


# --- The binary adder's threshold RNN: the Jacobi sweep --------------------------------------


class AdderStats(NamedTuple):
    """How the fixed-point sweep of :func:`adder_fixed_point` ended."""

    iterations: jax.Array
    """Sweeps run (int32), the last one the sweep that changed nothing unless capped."""
    converged: jax.Array
    """The last sweep changed nothing, or k = T (exact by construction) (bool)."""


def adder_fixed_point(params: dict, x_BxTx2: jax.Array, max_iter: int | None = None):
    """:func:`models.binary_adder.adder_scan` by Jacobi sweeps h^{k+1}(t) = F(h^k(t-1)).

    Newton with the threshold's derivative (zero almost everywhere) is this sweep. Returns
    ``(y_BxT, stats)``; ``max_iter`` defaults to T, at which the result is exact.
    """
    batch, steps, _ = x_BxTx2.shape
    cap = steps if max_iter is None else min(max_iter, steps)
    h0_Bx3 = jnp.zeros((batch, 3), params["w_hh"].dtype)
    xw_TxBx3 = jnp.einsum("bti,hi->tbh", x_BxTx2, params["w_xh"]) + params["b_h"]

    def sweep(carry):
        k, h_TxBx3, _ = carry
        new, _ = adder_step(params, _previous(h0_Bx3, h_TxBx3), xw_TxBx3)
        return k + 1, new, jnp.any(new != h_TxBx3)

    def keep_going(carry):
        k, _, changed = carry
        return (k < cap) & changed

    start = (jnp.int32(0), jnp.broadcast_to(h0_Bx3, xw_TxBx3.shape), jnp.array(True))
    k, h_TxBx3, changed = jax.lax.while_loop(keep_going, sweep, start)
    _, y_TxB = adder_step(params, _previous(h0_Bx3, h_TxBx3), xw_TxBx3)
    return y_TxB.T, AdderStats(k, ~changed | (k >= steps))
