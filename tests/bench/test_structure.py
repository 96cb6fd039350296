"""Span (critical path), executed loop steps and work counted from jaxprs: small programs
with hand-derived counts.

Conventions (bench/structure.py): each non-layout primitive is one op of span; layout ops
(reshape, broadcast, transpose, slicing, dtype conversion) are free; elementwise ops cost one
per output element, reductions one per input element, a matmul 2·M·N·K; dead code is free.
``steps_executed`` counts loop iterations run one after another, every loop a barrier.

The same expected numbers are asserted on every JAX version CI runs (jax 0.10 on Python 3.11,
the newest jax on Python 3.12): the counts do not depend on how a JAX version lays out its
loop primitives.
"""

import jax
import jax.numpy as jnp
import pytest
from jax.extend.core import ClosedJaxpr

from bench.structure import UnknownLayout, analyse, analyse_jaxpr, critical_loop_trips
from models.lstm import lstm_scan

X3 = jnp.ones(3)


def sines(n):
    """A scan of n steps, one sin per step along the carry."""
    return lambda x: jax.lax.scan(lambda c, _: (jnp.sin(c), None), x, None, length=n)[0]


def two_independent_scans(x):
    return sines(4)(x) + sines(6)(x)


def two_dependent_scans(x):
    return sines(6)(sines(4)(x))


def nested_scans(x):  # 3 outer steps, each a scan of 4
    return jax.lax.scan(lambda c, _: (sines(4)(c), None), x, None, length=3)[0]


def scan_whose_outputs_ignore_the_carry(xs):  # the carry is dead; the 5 steps still run
    return jax.lax.scan(lambda c, x: (c + 1.0, jnp.sin(jnp.sin(x))), 0.0, xs)[1]


def static_fori_loop(x):
    return jax.lax.fori_loop(0, 7, lambda i, c: jnp.sin(c) * 2.0, x)


def loop_free(x):
    return jnp.sin(x) + 1.0


# program, argument, (span_ops, steps_executed, work_flops, loop_steps on the critical path)
TOY_PROGRAMS = {
    "one scan": (sines(5), X3, (5, 5, 5 * 3, 5)),
    # the span crosses the longer scan only; execution runs both, one after the other
    "two independent scans": (two_independent_scans, X3, (6 + 1, 4 + 6, 10 * 3 + 3, 6)),
    "two dependent scans": (two_dependent_scans, X3, (10, 10, 10 * 3, 10)),
    "nested scans": (nested_scans, X3, (12, 12, 12 * 3, 12)),
    "scan whose outputs ignore the carry": (
        scan_whose_outputs_ignore_the_carry,
        jnp.ones((5, 3)),
        (2, 5, 5 * 2 * 3, 1),
    ),
    "static fori_loop": (static_fori_loop, X3, (7 * 2, 7, 7 * 2 * 3, 7)),
    "loop-free": (loop_free, X3, (2, 0, 2 * 3, 0)),
}


@pytest.mark.parametrize("name", TOY_PROGRAMS)
def test_toy_programs_have_their_hand_derived_counts(name):
    fn, arg, expected = TOY_PROGRAMS[name]
    s = analyse(fn, arg)
    assert (s.span_ops, s.steps_executed, s.work_flops, s.loop_steps) == expected


def test_a_scan_layout_it_does_not_know_is_a_named_failure():
    closed = jax.make_jaxpr(sines(3))(X3)
    (eqn,) = closed.jaxpr.eqns
    params = {k: v for k, v in eqn.params.items() if k not in ("num_consts", "num_carry", "ft_in")}
    renamed = closed.jaxpr.replace(eqns=[eqn.replace(params={**params, "carry_layout": 1})])
    with pytest.raises(UnknownLayout, match="scan parameters .*carry_layout"):
        analyse_jaxpr(ClosedJaxpr(renamed, closed.consts))


def test_chain_of_adds_has_span_n_and_work_n_times_size():
    def chain(x):
        for _ in range(5):
            x = x + 1.0
        return x

    s = analyse(chain, jnp.ones((2, 3)))
    assert (s.span_ops, s.work_flops, s.n_eqns) == (5, 5 * 6, 5)
    assert (s.loop_steps, s.critical_loops, s.defaulted) == (0, (), ())


def test_layout_ops_are_free():
    def f(x):  # add, [reshape, transpose, broadcast], add
        y = (x + 1.0).reshape(3, 2).T
        return jnp.broadcast_to(y, (4, 2, 3)) * 2.0

    s = analyse(f, jnp.ones((2, 3)))
    assert (s.span_ops, s.work_flops) == (2, 6 + 24)


def test_independent_branches_do_not_add_to_span():
    def f(x):  # two chains of 3 and 1 ops, then one op joining them
        a = jnp.sin(jnp.sin(jnp.sin(x)))
        b = jnp.cos(x)
        return a * b

    s = analyse(f, X3)
    assert (s.span_ops, s.work_flops) == (4, 5 * 3)


def test_matmul_is_one_op_of_2mnk_flops():
    s = analyse(jnp.matmul, jnp.ones((3, 4)), jnp.ones((4, 5)))
    assert (s.span_ops, s.work_flops) == (1, 2 * 3 * 4 * 5)


def test_batched_einsum_counts_the_batch():
    s = analyse(
        lambda a, b: jnp.einsum("bij,bjk->bik", a, b), jnp.ones((2, 3, 4)), jnp.ones((2, 4, 5))
    )
    assert (s.span_ops, s.work_flops) == (1, 2 * 2 * 3 * 4 * 5)


def test_conv_work_is_2_x_outputs_x_kernel_volume():
    def conv(x, k, groups=1):
        return jax.lax.conv_general_dilated(x, k, (1, 1), "VALID", feature_group_count=groups)

    # NCHW (1,2,5,5) * OIHW (3,2,3,3) -> (1,3,3,3): 27 outputs, each a 3·3·2 dot product.
    s = analyse(conv, jnp.ones((1, 2, 5, 5)), jnp.ones((3, 2, 3, 3)))
    assert (s.span_ops, s.work_flops) == (1, 2 * 27 * 18)
    # Two groups: 4 input channels, 2 per group; 6 outputs channels -> 54 outputs of 3·3·2.
    s = analyse(lambda x, k: conv(x, k, 2), jnp.ones((1, 4, 5, 5)), jnp.ones((6, 2, 3, 3)))
    assert s.work_flops == 2 * 54 * 18


def test_reduction_counts_input_elements():
    s = analyse(jnp.sum, jnp.ones((4, 5)))
    assert (s.span_ops, s.work_flops) == (1, 20)


def test_dead_code_is_not_counted():
    def f(x):
        jnp.exp(jnp.exp(x))  # result unused: XLA removes it
        return x + 1.0

    assert analyse(f, X3).work_flops == 3


def test_scan_follows_the_carry_chain_exactly():
    # c' = c + x (1 op on the carry), y = sin(sin(sin(c'))) (3 ops off the carry).
    def body(c, x):
        c = c + x
        return c, jnp.sin(jnp.sin(jnp.sin(c)))

    s = analyse(lambda c, xs: jax.lax.scan(body, c, xs), X3, jnp.ones((10, 3)))
    # Carry after 10 steps: 10 adds. Deepest y (step 10): 10 adds + 3 sins. Not 10 × 4.
    assert s.span_ops == 10 + 3
    assert s.work_flops == 10 * 4 * 3
    assert (s.loop_steps, s.critical_loops) == (10, (10,))


def test_scan_span_is_n_times_the_carry_cycle():
    def f(c, n):
        return jax.lax.scan(lambda c, _: (jnp.cos(jnp.sin(c)), None), c, None, length=n)[0]

    spans = [analyse(lambda c, n=n: f(c, n), X3).span_ops for n in (1, 2, 7)]
    assert spans == [2, 4, 14]


def test_fori_loop_with_static_bounds():
    def f(x):
        return jax.lax.fori_loop(0, 7, lambda i, c: jnp.sin(c) * 2.0, x)

    s = analyse(f, X3)
    # Lowered to a scan of 7; the counter i is never read, so its add is dead code.
    assert (s.span_ops, s.work_flops, s.critical_loops) == (7 * 2, 7 * 2 * 3, (7,))


def test_while_with_literal_bounds_has_a_static_trip_count():
    def f(x):  # fori_loop with an array bound lowers to `while i < 7`
        return jax.lax.fori_loop(0, jnp.int32(7), lambda i, c: jnp.sin(c) * 2.0, x)

    s = analyse(f, X3)
    # 7 trips of (sin, mul on 3 elements + counter add); the condition runs 8 times.
    assert (s.span_ops, s.work_flops) == (7 * 2, 7 * (6 + 1) + 8 * 1)

    def g(x):  # counter 0, 2, 4, 6, 8: five trips
        return jax.lax.while_loop(lambda c: c[0] < 10, lambda c: (c[0] + 2, c[1] * 2.0), (0, x))[1]

    s = analyse(g, X3)
    assert (s.span_ops, s.work_flops, s.critical_loops) == (5, 5 * (3 + 1) + 6 * 1, (5,))


def test_while_with_a_traced_bound_needs_a_trip_count():
    def f(x, n):
        return jax.lax.fori_loop(0, n, lambda i, c: c * 2.0, x)

    with pytest.raises(ValueError, match="while_trip_count"):
        analyse(f, X3, 3)
    s = analyse(f, X3, 3, while_trip_count=4)
    assert (s.span_ops, s.work_flops) == (4, 4 * (3 + 1) + 5 * 1)


def test_cond_takes_the_most_expensive_branch():
    def f(x, p):
        return jax.lax.cond(p, jnp.sin, lambda x: jnp.cos(jnp.sin(x)), x)

    s = analyse(f, X3, True)
    assert (s.span_ops, s.work_flops) == (2, 2 * 3)


def test_nested_jit_is_inlined_per_output():
    @jax.jit
    def inner(x):  # a: 1 op from x; b: 4 ops from x
        return x + 1.0, jnp.sin(jnp.sin(jnp.sin(jnp.sin(x))))

    def outer(x):
        a, b = inner(x)
        return jnp.exp(jnp.exp(a)), b

    s = analyse(jax.jit(outer), X3)
    # max(1 + 2, 4), not the 4 + 2 of "inner span added after the call".
    assert (s.span_ops, s.work_flops) == (4, 7 * 3)


def test_custom_vjp_counts_the_primal_and_its_rule_under_grad():
    @jax.custom_vjp
    def f(x):
        return jnp.sin(x)

    f.defvjp(lambda x: (jnp.sin(x), jnp.cos(x)), lambda cos_x, g: (cos_x * g,))

    assert (analyse(f, X3).span_ops, analyse(f, X3).work_flops) == (1, 3)
    # grad: cos x (from f_fwd), then cos_x * ones; sin x and the loss sum are dead.
    s = analyse(jax.grad(lambda x: jnp.sum(f(x))), X3)
    assert (s.span_ops, s.work_flops) == (2, 2 * 3)


def test_grad_counts_forward_and_backward():
    # d/dx sum(sin(sin x)) = cos(sin x) · cos x. Forward: a = sin x (1), cos a (2), cos x (1);
    # backward: ones · cos a (3), then · cos x (4). sin a and the sum only give the value: dead.
    s = analyse(jax.grad(lambda x: jnp.sum(jnp.sin(jnp.sin(x)))), X3)
    assert (s.span_ops, s.work_flops) == (4, 5 * 3)


def test_vmap_keeps_the_span_and_multiplies_the_work():
    def matvec(a, v):
        return jnp.tanh(a @ v)

    a, v = jnp.ones((2, 3)), jnp.ones(3)
    one = analyse(matvec, a, v)
    batched = analyse(jax.vmap(matvec), jnp.stack([a] * 5), jnp.stack([v] * 5))
    assert (one.span_ops, one.work_flops) == (2, 2 * 2 * 3 + 2)
    assert (batched.span_ops, batched.work_flops) == (2, 5 * (2 * 2 * 3 + 2))


def test_loop_steps_of_sequential_and_nested_loops():
    def step(d, _):
        return jnp.sin(d), None

    def python_layers(x):  # 3 layers, each a scan of 4 steps
        for _ in range(3):
            x = jax.lax.scan(step, x, None, length=4)[0]
        return x

    def scanned_layers(x):  # the same, with the layers as an outer scan
        def layer(c, _):
            return jax.lax.scan(step, c, None, length=4)[0], None

        return jax.lax.scan(layer, x, None, length=3)[0]

    for fn, loops in ((python_layers, [4, 4, 4]), (scanned_layers, [12])):
        s = analyse(fn, X3)
        assert (s.span_ops, s.work_flops, s.loop_steps) == (12, 12 * 3, 12)
        assert critical_loop_trips(fn, X3) == loops


def test_primitives_without_a_rule_are_reported():
    s = analyse(jnp.sort, X3)
    assert s.defaulted == ("sort",)
    assert (s.span_ops, s.work_flops) == (1, 3)


def test_lstm_span_and_work_are_linear_in_time():
    batch, n_in, hidden = 2, 3, 4
    params = {
        "w_x": jnp.ones((n_in, 4 * hidden)),
        "w_h": jnp.ones((hidden, 4 * hidden)),
        "b": jnp.ones(4 * hidden),
    }

    def counts(t):
        return analyse(lambda p, x: lstm_scan(p, x)[1], params, jnp.ones((batch, t, n_in)))

    # Per step, along the carry: h·W_h, + xw, σ, f⊙c, + i⊙g, tanh, o⊙ = 7 ops. Step 1 starts
    # from x instead: x·W_x, + b, then 6 of those ops (h(0) = 0 is a constant, so h·W_h is
    # not on the path): 8 ops, so span = 8 + 7·(T - 1) = 7·T + 1.
    # Work per step: h·W_h 2·B·H·4H = 256, + xw 32, 3 σ + tanh 32, c 24, h 16 -> 360;
    # x·W_x 2·B·I·4H = 192 and + b 32 per step outside the scan. No constant part.
    per_step = 256 + 32 + 32 + 24 + 16 + 192 + 32
    spans, works = [], []
    for t in (2, 4, 6):
        s = counts(t)
        spans.append(s.span_ops)
        works.append(s.work_flops)
        assert (s.span_ops, s.work_flops, s.critical_loops) == (7 * t + 1, per_step * t, (t,))
    assert spans[1] - spans[0] == spans[2] - spans[1] == 2 * 7
    assert works[1] - works[0] == works[2] - works[1] == 2 * per_step


def test_a_scatter_add_counts_one_op_per_update_and_is_not_refused():
    # x.at[i].add(u): gradients of gathers (e.g. integer-label cross-entropy) produce these.
    # Per update: 1 for the scatter-add, plus 3 elementwise ops (lt, add, select) with which
    # jnp wraps negative indices.
    def work(n):
        s = analyse(lambda x, i, u: x.at[i].add(u), jnp.zeros(10), jnp.arange(n), jnp.ones(n))
        assert "scatter-add" not in s.defaulted
        return s.work_flops

    assert work(3) == 4 * 3 and work(6) == 4 * 6
