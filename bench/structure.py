"""Structural counts of a JAX function, read from its jaxpr: span (sequential depth) and work.

The seed's claims about sequential cost (PixelCNN trains in O(d) sequential steps and samples
in O(H·W·d); an MDRNN wavefront needs O((H+W)·d); an LSTM O(T)) are claims about the
*critical path* of a computation. Wall time on a real device mixes that with launch overhead
and bandwidth, so the suite also measures it exactly, from the program itself:

``span_ops``
    The length of the longest chain of dependent primitive operations. Every primitive counts
    1, except the pure layout/metadata primitives in :data:`LAYOUT` (reshape, broadcast,
    transpose, slicing, gather, concatenate, dtype conversion, ...), which count 0: they move
    or relabel data and do no arithmetic. A primitive is one parallel step whatever its size:
    a (1024×1024)·(1024×1024) matmul and a reduction over a million elements each count 1
    (their internal log-depth trees are not counted). Arrays are atomic: an operation waits
    for the whole of each input array.

``work_flops``
    Total floating-point (or integer) operations, with loops multiplied by their trip counts:

    * ``dot_general``: 2 × (output elements) × (contracted size), i.e. 2·M·N·K per batch;
    * ``conv_general_dilated``: 2 × (output elements) × (kernel spatial size × input channels
      per group); padding and dilation holes are counted as if they were data;
    * elementwise primitives (:data:`ELEMENTWISE`): 1 per output element, transcendental ones
      (exp, tanh, logistic, erf_inv, ...) and ``integer_pow`` included; ``random_bits`` too,
      although the hash behind it costs more;
    * reductions and cumulative ops (:data:`REDUCTIONS`): 1 per *input* element;
    * combining scatters (``scatter-add`` ...): 1 per update element;
    * layout primitives: 0.

    Any other primitive is counted by the default rule (span 1, 1 per output element) and its
    name is listed in :attr:`Structure.defaulted`, so nothing is silently mis-counted.
    Operations whose results are never used (dead code, e.g. the loss value inside
    ``jax.grad``) are not counted, as XLA would remove them. XLA's ``cost_analysis()`` counts a
    loop body once, which is why loops are counted here instead.

Nested programs:

* call-like primitives (``jit``/``pjit``, ``closed_call``, ``core_call``, ``remat``/
  ``checkpoint``, ``custom_jvp_call``, ``custom_vjp_call``, ``custom_vjp_call_jaxpr``) are
  transparent: the wrapper costs 0 and the inner program is inlined exactly, so output k of
  the call sits at depth max over inputs j of (depth of j + longest inner path from j to k).
  Under ``custom_jvp``/``custom_vjp`` the primal function is what is counted (under
  differentiation JAX has already replaced it with the rules' operations).
* ``scan`` of length n is the exact n-fold composition of its body: the carry chain is
  followed through every iteration, so a body with a 2-op path along the carry and a 10-op
  path from ``xs`` to ``ys`` has span about 2n + 10, not 12n. Stacked outputs ``ys`` sit at
  the depth of the deepest iteration. Work is n × the body's work.
* ``while`` is the same as a scan with the body's carry, run for its trip count. The trip
  count must be static: the ``fori_loop`` pattern (the condition is ``counter < bound``, the
  body adds a positive literal to the counter, and the start and bound are literals) is
  recognised; otherwise pass ``while_trip_count``. The loop condition's result is control,
  not data: it is not on the span path, but its work is counted trip count + 1 times.
* ``cond``/``switch``: span and work of the most expensive branch (the branch taken is not
  known statically); the outputs also wait for the branch index.

Two measures of sequential depth. They answer different questions and both are exact:

``span_ops`` (above) is the dataflow ideal: the critical path of a machine that starts every
operation as soon as its inputs exist, so iterations of two *independent* loops may overlap.

``steps_executed``
    The loop iterations the program executes one after another, every loop a barrier, as
    XLA runs it (a ``while``/``scan`` is one sequential loop; nothing overlaps two loops).
    A loop of n trips adds n × (its body's own executed steps, or 1 if the body has no
    loop); programs one after another add; ``cond`` takes its largest branch; call-like
    primitives are transparent; dead loops are not counted. Two independent scans of n and
    m steps: ``steps_executed = n + m``, while the span crosses max(n, m) of them. A
    loop-free program has 0.

Claims about "sequential steps" name which of the two they are judged on (docs/claims.md).
The windowed MDRNN wavefront is where they differ most: its d layers run one scan per lane
window, many windows are independent of each other, so its span crosses fewer loop steps than
the (H+W−1)·d iterations that execute.

Loop steps on the critical path. Besides the span, each path records how many loop iterations
it crosses, counted at the innermost level: an iteration of a loop whose own path crosses
inner loops counts their steps, any other iteration counts 1. For an LSTM scan of length T
this is T (``loop_steps``); :attr:`Structure.critical_loops` lists these step counts per loop
crossed, in path order, for the outermost loops on one critical path (among equally long
paths, the one that crosses the most loop steps).

JAX versions. The parameters of ``scan`` changed in jax 0.11 (``num_consts``/``num_carry``
became the flat tree ``ft_in``); :func:`scan_layout` reads both, and a layout it does not know
raises :class:`UnknownLayout` rather than counting wrongly.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Mapping
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.extend.core import ClosedJaxpr, Jaxpr, JaxprEqn, Literal, Var, subjaxprs

LAYOUT = frozenset(
    {
        "bitcast_convert_type",
        "broadcast_in_dim",
        "concatenate",
        "convert_element_type",
        "copy",
        "copy_p",
        "device_put",
        "dynamic_slice",
        "dynamic_update_slice",
        "expand_dims",
        "gather",
        "iota",
        "layout_constraint",
        "mesh_cast",
        "optimization_barrier",
        "pad",
        "random_unwrap",
        "random_wrap",
        "reduce_precision",
        "reshape",
        "reshard",
        "rev",
        "scatter",
        "sharding_constraint",
        "slice",
        "split",
        "squeeze",
        "transpose",
    }
)
"""Pure layout/metadata primitives: 0 span, 0 work."""

ELEMENTWISE = frozenset(
    {
        "abs", "acos", "acosh", "add", "add_any", "and", "asin", "asinh", "atan", "atan2",
        "atanh", "cbrt", "ceil", "clamp", "clz", "complex", "conj", "cos", "cosh", "digamma",
        "div", "eq", "erf", "erf_inv", "erfc", "exp", "exp2", "expm1", "floor", "ge", "gt",
        "imag", "integer_pow", "is_finite", "le", "lgamma", "log", "log1p", "logistic", "lt",
        "max", "min", "mul", "ne", "neg", "nextafter", "not", "or", "population_count", "pow",
        "random_bits", "random_fold_in", "random_seed", "random_split", "real", "rem",
        "round", "rsqrt", "select_n", "shift_left", "shift_right_arithmetic",
        "shift_right_logical", "sign", "sin", "sinh", "sqrt", "square", "sub", "tan", "tanh",
        "xor",
    }
)  # fmt: skip
"""Elementwise primitives: span 1, work 1 per output element."""

REDUCTIONS = frozenset(
    {
        "argmax", "argmin", "cumlogsumexp", "cummax", "cummin", "cumprod", "cumsum",
        "reduce_and", "reduce_max", "reduce_min", "reduce_or", "reduce_prod", "reduce_sum",
        "reduce_xor",
    }
)  # fmt: skip
"""Reductions and cumulative ops: span 1, work 1 per input element."""

SCATTER_COMBINE = frozenset(
    {"scatter-add", "scatter-sub", "scatter-mul", "scatter-min", "scatter-max"}
)
"""Scatters that combine into the operand: span 1, work 1 per update element."""

CALLS = {
    "jit": "jaxpr",
    "pjit": "jaxpr",
    "closed_call": "call_jaxpr",
    "core_call": "call_jaxpr",
    "remat2": "jaxpr",
    "checkpoint": "jaxpr",
    "custom_jvp_call": "call_jaxpr",
    "custom_vjp_call": "call_jaxpr",
    "custom_vjp_call_jaxpr": "fun_jaxpr",
}
"""Call-like primitives, inlined transparently, and the parameter that holds their program."""


@dataclasses.dataclass(frozen=True)
class Structure:
    """Structural counts of one traced function (see the module docstring for conventions)."""

    span_ops: int
    """Longest chain of dependent non-layout primitives, loops unrolled."""
    work_flops: int
    """Total operations of the live program, loops multiplied by their trip counts."""
    steps_executed: int
    """Loop iterations the program executes one after another, every loop a barrier."""
    work_by_primitive: dict[str, int]
    """``work_flops`` split by primitive name (``dot_general``: 2 × multiply-adds)."""
    loop_steps: int
    """Innermost loop iterations crossed by the critical path."""
    critical_loops: tuple[int, ...]
    """Loop steps per outermost loop crossed by the critical path, in order."""
    n_eqns: int
    """Equations in the program text, nested programs included, each counted once."""
    defaulted: tuple[str, ...]
    """Primitives without a rule here, counted as span 1 and 1 op per output element."""


def analyse(fn: Callable, *args, while_trip_count: int | None = None, **kwargs) -> Structure:
    """Trace ``fn(*args, **kwargs)`` with ``jax.make_jaxpr`` and count its structure.

    ``fn`` may be plain or jitted; static arguments must be closed over (``functools.partial``).
    ``while_trip_count`` is used for every ``while`` loop whose trip count is not static.
    """
    closed = jax.make_jaxpr(fn)(*args, **kwargs)
    return analyse_jaxpr(closed, while_trip_count=while_trip_count)


def critical_loop_trips(fn: Callable, *args, **kwargs) -> list[int]:
    """Loop steps of each outermost loop on the critical path of ``fn(*args, **kwargs)``.

    E.g. ``[T]`` for an LSTM over T steps; ``[H+W-1] * d`` for d layers of a wavefront scan
    written as a Python loop, ``[(H+W-1)*d]`` for the same layers as an outer scan.
    """
    return list(analyse(fn, *args, **kwargs).critical_loops)


def analyse_jaxpr(closed: ClosedJaxpr, *, while_trip_count: int | None = None) -> Structure:
    """Count the structure of a traced program (see :func:`analyse`)."""
    counter = _Counter(while_trip_count)
    jaxpr = closed.jaxpr
    deepest = max(
        (path for out in counter.paths(jaxpr) for path in out.values()),
        key=_Path.rank,
        default=_ZERO,
    )
    cost, _ = counter.work(jaxpr, (True,) * len(jaxpr.outvars))
    return Structure(
        span_ops=deepest.length,
        work_flops=cost.flops,
        steps_executed=cost.steps,
        work_by_primitive=dict(sorted(cost.by_primitive)),
        loop_steps=deepest.steps,
        critical_loops=deepest.loops,
        n_eqns=_count_eqns(jaxpr),
        defaulted=tuple(sorted(counter.defaulted)),
    )


# --- Paths: longest-path lengths in the (max, +) semiring ---------------------------------


class _Path(NamedTuple):
    """A longest path: its op count, the loop steps it crosses, and its outermost loops."""

    length: int
    steps: int
    loops: tuple[int, ...]

    def rank(self) -> tuple[int, int]:
        return (self.length, self.steps)


_ZERO = _Path(0, 0, ())
CONST = -1
"""Source key of paths that start at a literal, a constant or an operation without inputs."""

Paths = dict[int, _Path]
"""Longest path to one variable from each source: the inputs of the enclosing program (by
position) and :data:`CONST`. Depth of the variable = max over sources of (depth + length)."""


def _join(*all_paths: Paths) -> Paths:
    """Keep the longest path from each source. (Paths are never changed in place, so one
    set of paths is returned as it is: the span of a large program is walked in seconds.)"""
    if len(all_paths) == 1:
        return all_paths[0]
    out: Paths = dict(all_paths[0]) if all_paths else {}
    for paths in all_paths[1:]:
        for source, path in paths.items():
            kept = out.get(source)
            if kept is None or (path.length, path.steps) > (kept.length, kept.steps):
                out[source] = path
    return out


def _substitute(paths: Paths, sources: Mapping[int, Paths]) -> Paths:
    """Re-express paths from sources that are themselves reached by ``sources[source]``.

    Sources missing from the mapping (``CONST``, loop invariants) are kept as they are.
    """
    out: Paths = {}
    for source, path in paths.items():  # (the join of the re-expressed paths, done in place)
        via = sources.get(source)
        for s, p in ((source, _ZERO),) if via is None else via.items():
            length, steps = p.length + path.length, p.steps + path.steps
            kept = out.get(s)
            if kept is None or (length, steps) > (kept.length, kept.steps):
                out[s] = _Path(length, steps, p.loops + path.loops)
    return out


def _iterate(step: dict[int, Paths], n: int) -> tuple[dict[int, Paths], dict[int, Paths]]:
    """n-fold composition of a loop step, by repeated squaring.

    ``step`` maps each carry slot to its paths after one iteration, from the initial carry
    slots and from loop invariants. Returns the carry after n iterations and the join of the
    carry after 0, 1, ..., n-1 iterations (what the stacked outputs of a scan see).
    """

    def compose(later: dict[int, Paths], earlier: dict[int, Paths]) -> dict[int, Paths]:
        return {slot: _substitute(paths, earlier) for slot, paths in later.items()}

    def join(a: dict[int, Paths], b: dict[int, Paths]) -> dict[int, Paths]:
        return {slot: _join(a[slot], b[slot]) for slot in a}

    power = {slot: {slot: _ZERO} for slot in step}  # after m iterations
    seen: dict[int, Paths] = {slot: {} for slot in step}  # join over t < m
    for bit in bin(n)[2:]:
        seen, power = join(seen, compose(power, seen)), compose(power, power)  # m -> 2m
        if bit == "1":
            seen, power = join(seen, power), compose(step, power)  # m -> m + 1
    return power, seen


def _as_iteration(paths: Paths, offset: int = 0) -> Paths:
    """Paths of a loop body as one iteration: sources shifted to the loop's inputs, each
    iteration at least one step, inner loop lists dropped (the steps keep their count)."""
    return {
        (s if s == CONST else s + offset): _Path(p.length, max(p.steps, 1), ())
        for s, p in paths.items()
    }


def _as_loop(paths: Paths) -> Paths:
    """Paths through a whole loop: the loop appears once in the list, with its steps."""
    return {s: p._replace(loops=(p.steps,) if p.steps else ()) for s, p in paths.items()}


class _Cost(NamedTuple):
    """Work of a program: its operations (in all and per primitive), and the loop iterations
    it executes in sequence."""

    flops: int
    steps: int
    by_primitive: tuple[tuple[str, int], ...] = ()

    def __add__(self, other: _Cost) -> _Cost:  # programs one after the other
        merged = dict(self.by_primitive)
        for name, flops in other.by_primitive:
            merged[name] = merged.get(name, 0) + flops
        return _Cost(self.flops + other.flops, self.steps + other.steps, tuple(merged.items()))

    def repeat(self, n: int) -> _Cost:
        """n iterations of a loop whose body costs ``self``: each iteration executes the
        body's own loops in sequence, or counts one step if it has none."""
        scaled = tuple((name, n * flops) for name, flops in self.by_primitive)
        return _Cost(n * self.flops, n * max(self.steps, 1), scaled)

    def most(self, other: _Cost) -> _Cost:
        """The larger of two alternatives (``cond`` branches), measure by measure."""
        merged = dict(self.by_primitive)
        for name, flops in other.by_primitive:
            merged[name] = max(merged.get(name, 0), flops)
        return _Cost(
            max(self.flops, other.flops), max(self.steps, other.steps), tuple(merged.items())
        )


_FREE = _Cost(0, 0, ())


# --- The counter ---------------------------------------------------------------------------


class _Counter:
    """Walks jaxprs; memoises per (jaxpr, needed outputs) within one analysis."""

    def __init__(self, while_trip_count: int | None):
        self.while_trip_count = while_trip_count
        self.defaulted: set[str] = set()
        self._paths: dict[int, tuple[Jaxpr, list[Paths]]] = {}
        self._work: dict[tuple[int, tuple[bool, ...]], tuple[Jaxpr, _Cost, tuple[bool, ...]]] = {}

    # span ---------------------------------------------------------------------------------

    def paths(self, jaxpr: Jaxpr) -> list[Paths]:
        """For each output of ``jaxpr``, its longest paths from each input and from CONST."""
        if id(jaxpr) not in self._paths:
            env: dict[Var, Paths] = {v: {i: _ZERO} for i, v in enumerate(jaxpr.invars)}
            env.update({v: {CONST: _ZERO} for v in jaxpr.constvars})

            def read(v) -> Paths:
                return {CONST: _ZERO} if isinstance(v, Literal) else env[v]

            for eqn in jaxpr.eqns:
                outs = self._eqn_paths(eqn, [read(v) for v in eqn.invars])
                env.update(zip(eqn.outvars, outs, strict=True))
            self._paths[id(jaxpr)] = (jaxpr, [read(v) for v in jaxpr.outvars])
        return self._paths[id(jaxpr)][1]

    def _eqn_paths(self, eqn: JaxprEqn, ins: list[Paths]) -> list[Paths]:
        name, params = eqn.primitive.name, eqn.params
        sources = dict(enumerate(ins))
        if name in CALLS:
            inner = self.paths(_open(params[CALLS[name]]))
        elif name == "scan":
            inner = self._scan_paths(eqn)
        elif name == "while":
            inner = self._while_paths(eqn)
        elif name == "cond":
            inner = self._cond_paths(eqn)
        else:
            _reject_unknown_nested(eqn)
            before = _join(*ins) if ins else {CONST: _ZERO}
            if name not in LAYOUT:  # one operation more on every path
                before = {s: _Path(p.length + 1, p.steps, p.loops) for s, p in before.items()}
            return [before] * len(eqn.outvars)
        return [_substitute(paths, sources) for paths in inner]

    def _scan_paths(self, eqn: JaxprEqn) -> list[Paths]:
        n, (n_consts, n_carry) = eqn.params["length"], scan_layout(eqn)
        body = [_as_iteration(p) for p in self.paths(_open(eqn.params["jaxpr"]))]
        slots = range(n_consts, n_consts + n_carry)  # carry slots, as scan input positions
        final, seen = _iterate(dict(zip(slots, body[:n_carry], strict=True)), n)
        carry = [final[slot] for slot in slots]
        ys = [_substitute(y, seen) if n else {CONST: _ZERO} for y in body[n_carry:]]
        return [_as_loop(p) for p in carry + ys]

    def _while_paths(self, eqn: JaxprEqn) -> list[Paths]:
        n_cond, n_body = while_layout(eqn)
        body = [_as_iteration(p, n_cond) for p in self.paths(_open(eqn.params["body_jaxpr"]))]
        start = n_cond + n_body  # carry slots, as while input positions
        slots = range(start, len(eqn.invars))
        final, _ = _iterate(dict(zip(slots, body, strict=True)), self.trip_count(eqn))
        return [_as_loop(final[slot]) for slot in slots]

    def _cond_paths(self, eqn: JaxprEqn) -> list[Paths]:
        branches = [self.paths(_open(b)) for b in eqn.params["branches"]]
        index = {0: _ZERO}  # the outputs wait for the branch index
        return [
            _join(index, *({_shift(s, 1): p for s, p in b[k].items()} for b in branches))
            for k in range(len(eqn.outvars))
        ]

    # work ---------------------------------------------------------------------------------

    def work(self, jaxpr: Jaxpr, needed: tuple[bool, ...]) -> tuple[_Cost, tuple[bool, ...]]:
        """Cost of the outputs flagged in ``needed`` (operations and executed loop steps); and
        which inputs they read."""
        key = (id(jaxpr), needed)
        if key not in self._work:
            live = {
                v
                for v, need in zip(jaxpr.outvars, needed, strict=True)
                if need and not isinstance(v, Literal)
            }
            total = _FREE
            for eqn in reversed(jaxpr.eqns):
                out_needed = tuple(v in live for v in eqn.outvars)
                if not any(out_needed) and not eqn.effects:
                    continue  # dead code
                cost, in_needed = self._eqn_work(eqn, out_needed)
                total = total + cost
                live.update(
                    v
                    for v, need in zip(eqn.invars, in_needed, strict=True)
                    if need and not isinstance(v, Literal)
                )
            self._work[key] = (jaxpr, total, tuple(v in live for v in jaxpr.invars))
        return self._work[key][1:]

    def _eqn_work(self, eqn: JaxprEqn, needed: tuple[bool, ...]) -> tuple[_Cost, tuple[bool, ...]]:
        name, params = eqn.primitive.name, eqn.params
        if name in CALLS:
            return self.work(_open(params[CALLS[name]]), needed)
        if name == "scan":
            n, (n_consts, n_carry) = params["length"], scan_layout(eqn)
            body = _open(params["jaxpr"])
            cost, in_needed, carry = self._loop_work(body, needed, n_consts, n_carry, n)
            return cost.repeat(n), (
                *in_needed[:n_consts],
                *carry,
                *in_needed[n_consts + n_carry :],
            )
        if name == "while":
            n, (n_cond, n_body) = self.trip_count(eqn), while_layout(eqn)
            n_carry = len(eqn.outvars)
            cond_cost, cond_in = self.work(_open(params["cond_jaxpr"]), (True,))
            needed = tuple(a or b for a, b in zip(needed, cond_in[n_cond:], strict=True))
            body = _open(params["body_jaxpr"])
            cost, in_needed, carry = self._loop_work(body, needed, n_body, n_carry, n)
            carry = tuple(a or b for a, b in zip(carry, cond_in[n_cond:], strict=True))
            # the condition runs n + 1 times, inside the loop's steps
            test = cond_cost._replace(steps=0).repeat(n + 1)._replace(steps=0)
            return cost.repeat(n) + test, (*cond_in[:n_cond], *in_needed[:n_body], *carry)
        if name == "cond":
            branches = [self.work(_open(b), needed) for b in params["branches"]]
            in_needed = [any(col) for col in zip(*(b[1] for b in branches), strict=True)]
            most = functools.reduce(_Cost.most, (b[0] for b in branches))
            return most, (True, *in_needed)
        _reject_unknown_nested(eqn)
        flops = self._flops(eqn)
        return _Cost(flops, 0, ((name, flops),) if flops else ()), (True,) * len(eqn.invars)

    def _loop_work(self, body: Jaxpr, needed, n_consts: int, n_carry: int, n: int):
        """Cost of one iteration of a loop body, with the carry's liveness at its fixed point.

        Returns (cost per iteration, body inputs read, initial carry slots read)."""
        needed = list(needed)
        while True:
            cost, in_needed = self.work(body, tuple(needed))
            carry_in = in_needed[n_consts : n_consts + n_carry]
            grown = [a or b for a, b in zip(needed[:n_carry], carry_in, strict=True)]
            if grown == needed[:n_carry]:
                break
            needed[:n_carry] = grown
        if n == 0:  # nothing runs: the initial carry is the result
            return _FREE, (False,) * len(in_needed), tuple(needed[:n_carry])
        return cost, in_needed, tuple(carry_in)

    def _flops(self, eqn: JaxprEqn) -> int:
        name = eqn.primitive.name
        if name in LAYOUT:
            return 0
        out_size = sum(_size(v) for v in eqn.outvars)
        if name == "dot_general":
            (lhs_contract, _), _ = eqn.params["dimension_numbers"]
            lhs = eqn.invars[0].aval.shape
            return 2 * out_size * math.prod(lhs[d] for d in lhs_contract)
        if name == "conv_general_dilated":
            rhs = eqn.invars[1].aval.shape
            out_feature_dim = eqn.params["dimension_numbers"].rhs_spec[0]
            return 2 * out_size * (math.prod(rhs) // rhs[out_feature_dim])
        if name in REDUCTIONS:
            return _size(eqn.invars[0])
        if name in SCATTER_COMBINE:
            return _size(eqn.invars[2])  # operand, indices, updates
        if name not in ELEMENTWISE:
            self.defaulted.add(name)
        return out_size

    # loops ----------------------------------------------------------------------------------

    def trip_count(self, eqn: JaxprEqn) -> int:
        """Trip count of a ``while``: static if it matches the fori_loop pattern, else the hint."""
        n = _static_trip_count(eqn)
        if n is not None:
            return n
        if self.while_trip_count is None:
            raise ValueError(
                "a while loop has no static trip count (its condition is not `counter < bound` "
                "with literal start, bound and step); pass while_trip_count=..."
            )
        return self.while_trip_count


def _static_trip_count(eqn: JaxprEqn) -> int | None:
    """Trip count of ``while`` for the fori_loop pattern, or None.

    Pattern: the condition is a single ``lt counter bound``; the counter is a carry whose
    start is a literal and which the body increases by a positive literal; the bound is a
    literal, a literal condition constant, or a literal carry the body passes through.
    """
    n_cond, n_body = while_layout(eqn)
    cond, body = _open(eqn.params["cond_jaxpr"]), _open(eqn.params["body_jaxpr"])
    if len(cond.eqns) != 1 or cond.eqns[0].primitive.name != "lt":
        return None
    carry_start = eqn.invars[n_cond + n_body :]

    def carry_slot(v) -> int | None:
        if isinstance(v, Literal) or v not in cond.invars[n_cond:]:
            return None
        return cond.invars.index(v) - n_cond

    def static_bound(v) -> int | None:
        if isinstance(v, Literal):
            return int(v.val)
        if v not in cond.invars:
            return None
        position = cond.invars.index(v)
        if position < n_cond:
            start = eqn.invars[position]
        else:
            slot = position - n_cond
            if body.outvars[slot] is not body.invars[n_body + slot]:
                return None  # the bound changes inside the loop
            start = carry_start[slot]
        return int(start.val) if isinstance(start, Literal) else None

    counter, bound = cond.eqns[0].invars
    if not jnp.issubdtype(counter.aval.dtype, jnp.integer):
        return None
    slot = carry_slot(counter)
    if slot is None or not isinstance(carry_start[slot], Literal):
        return None
    stop = static_bound(bound)
    step = _literal_increment(body, body.invars[n_body + slot], body.outvars[slot])
    if stop is None or step is None or step <= 0:
        return None
    return max(0, -(-(stop - int(carry_start[slot].val)) // step))


def _literal_increment(body: Jaxpr, before: Var, after) -> int | None:
    """``c`` if the body computes ``after = add(before, c)`` with a literal c, else None."""
    for eqn in body.eqns:
        if eqn.primitive.name == "add" and eqn.outvars[0] is after:
            a, b = eqn.invars
            if a is before and isinstance(b, Literal):
                return int(b.val)
            if b is before and isinstance(a, Literal):
                return int(a.val)
    return None


# --- Parameter layouts of loop primitives, across JAX versions ------------------------------


class UnknownLayout(NotImplementedError):
    """A loop primitive whose parameters this analyser cannot read (a JAX it does not know)."""


def scan_layout(eqn: JaxprEqn) -> tuple[int, int]:
    """``(number of constants, number of carry slots)`` of a ``scan`` equation.

    Its inputs are ``consts + carry + xs`` and its outputs ``carry + ys`` on every JAX version;
    how the split is recorded differs:

    * jax ≤ 0.10: integer parameters ``num_consts`` and ``num_carry``;
    * jax ≥ 0.11: ``ft_in``, a flat tree of three parts (consts, carry, xs) whose lengths are
      their numbers of leaves (``ft_out`` likewise describes carry and ys).
    """
    params = eqn.params
    if "num_consts" in params and "num_carry" in params:
        return int(params["num_consts"]), int(params["num_carry"])
    ft_in = params.get("ft_in")
    unpack = getattr(ft_in, "unpack", None)
    if unpack is not None:
        parts = unpack()
        if len(parts) == 3:
            consts, carry, xs = parts
            if len(consts) + len(carry) + len(xs) == len(eqn.invars):
                return len(consts), len(carry)
    raise UnknownLayout(
        "structure: cannot read this JAX's scan parameters "
        f"({', '.join(sorted(params))}): expected num_consts/num_carry or ft_in"
    )


def while_layout(eqn: JaxprEqn) -> tuple[int, int]:
    """``(condition constants, body constants)`` of a ``while`` equation (its inputs are
    ``cond_consts + body_consts + carry``); the same parameters on jax 0.10 to 0.12."""
    try:
        return int(eqn.params["cond_nconsts"]), int(eqn.params["body_nconsts"])
    except KeyError:
        raise UnknownLayout(
            "structure: cannot read this JAX's while parameters "
            f"({', '.join(sorted(eqn.params))}): expected cond_nconsts/body_nconsts"
        ) from None


# --- Small helpers --------------------------------------------------------------------------


def _open(jaxpr: Jaxpr | ClosedJaxpr) -> Jaxpr:
    """The open jaxpr; the constants of a closed one become constvars (sources at depth 0)."""
    return jaxpr.jaxpr if isinstance(jaxpr, ClosedJaxpr) else jaxpr


def _shift(source: int, offset: int) -> int:
    return source if source == CONST else source + offset


def _size(v) -> int:
    return math.prod(getattr(v.aval, "shape", ()))


def _reject_unknown_nested(eqn: JaxprEqn) -> None:
    """A higher-order primitive without a rule here would be silently mis-counted.

    Combining scatters carry their combiner (``update_jaxpr``, one scalar op) as a nested
    jaxpr; they have their own rule above, so they are not refused.
    """
    if eqn.primitive.name in SCATTER_COMBINE:
        return
    nested = (
        v
        for value in eqn.params.values()
        for v in (value if isinstance(value, tuple | list) else (value,))
        if isinstance(v, Jaxpr | ClosedJaxpr)
    )
    if any(True for _ in nested):
        raise NotImplementedError(
            f"structure: no rule for higher-order primitive {eqn.primitive.name!r}"
        )


def _count_eqns(jaxpr: Jaxpr) -> int:
    return len(jaxpr.eqns) + sum(_count_eqns(_open(sub)) for sub in subjaxprs(jaxpr))
