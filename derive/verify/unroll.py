"""A spec's recurrence unrolled at the checker's length: the network a BPTT loop is judged by.

``state h[T, B, H] = h0`` and ``for t in range(T): h[t] = tanh(x[t] @ Wx + h[t - 1] @ Wh +
b)`` at ``T = 3`` become the plain network::

    param x1[B, V], x2[B, V], x3[B, V]          # the steps of x[T, B, V]
    h1 = tanh(x1 @ Wx + h0 @ Wh + b)
    h2 = tanh(x2 @ Wx + h1 @ Wh + b)
    h3 = tanh(x3 @ Wx + h2 @ Wh + b)
    h = concatenate([h1, h2, h3], axis=0).reshape(3, B, H)
    (the equations after the loop, T = 3)

derived by the same sweep as any network: the truth for every line of a backward loop
(:mod:`.steps` reads the families ``x1 … x3``, ``h0 … h3``).  Nothing is tabled: the
body's equations are copied, renamed, never rewritten.  Each step of a stacked input is a
``param`` here, so ``dx`` of cs231n's ``rnn_backward`` has a gradient to be judged against.
"""

from __future__ import annotations

import dataclasses

import sympy as sp

from .. import ir
from ..errors import SpecError

LENGTH = 3  # T at which a loop is unrolled: the exact and the numeric runs alike


def unroll(net: ir.Network, length: int = LENGTH) -> ir.Network:
    """``net`` with its loop unrolled at ``length`` steps (``net`` itself without a loop)."""
    loop = net.loop
    if loop is None:
        return net
    dims = _fix_length(loop.length, length)
    quantities: dict[str, ir.Quantity] = {}
    produced = set(loop.stepped.values()) - set(loop.initial)  # stacked by the loop
    for name, q in net.quantities.items():
        if name in produced and q.kind == "intermediate" or name in loop.stepped.values():
            continue
        quantities[name] = _shaped(q, dims)
    equations: list[ir.Equation] = []
    for k in range(1, length + 1):
        names = _names(loop, k, net)
        for body_name, q in loop.quantities.items():
            if q.kind == "input":  # a step of a stacked input: a param of its own
                quantities[names[body_name]] = dataclasses.replace(
                    _shaped(q, dims), name=names[body_name], kind="param"
                )
        for eq in loop.equations:
            name = names[eq.name]
            expr = _node(eq.expr, names, dims)
            equations.append(ir.Equation(name, expr, eq.pos))
            quantities[name] = ir.Quantity(name, "intermediate", expr.shape, eq.pos)
    read = {r for eq in net.equations for r in eq.refs()}
    for step, stacked in loop.stepped.items():
        if stacked in read or (stacked in loop.initial and stacked in net.quantities):
            eq = _stack(loop, step, stacked, length, dims, net)
            equations.append(eq)
            quantities[stacked] = ir.Quantity(stacked, "intermediate", eq.expr.shape, eq.pos)
    for eq in net.equations:
        equations.append(ir.Equation(eq.name, _node(eq.expr, {}, dims), eq.pos))
        quantities[eq.name] = _shaped(net.quantities[eq.name], dims)
    kept = {k: v for k, v in net.dims.items() if k not in {str(s) for s in dims}}
    return dataclasses.replace(
        net, quantities=quantities, equations=equations, dims=kept, loop=None
    )


def _fix_length(length: sp.Expr, n: int) -> dict:
    if not isinstance(length, sp.Symbol):
        raise SpecError(
            f"a loop over range({length}) is unrolled only when its length is a dim", "<spec>", 1, 1
        )
    return {length: sp.Integer(n)}


def _names(loop: ir.Loop, k: int, net: ir.Network) -> dict[str, str]:
    """The body's names at step ``k`` (1-based): ``x_t`` → ``x2``, ``h_prev`` → ``h1``
    (``h0``, the initial state, at step 1)."""
    out = {}
    for step, stacked in loop.stepped.items():
        out[step] = f"{stacked}{k}"
    for state, prev in loop.previous.items():
        out[prev] = loop.initial[state] if k == 1 else f"{state}{k - 1}"
    clash = [n for n in out.values() if n in net.quantities and n not in loop.initial.values()]
    if clash:
        raise SpecError(
            f"cannot unroll the loop: the step name {clash[0]!r} is a name of the spec",
            net.file,
            loop.pos[0],
            1,
        )
    return out


def _shaped(q: ir.Quantity, dims: dict) -> ir.Quantity:
    return dataclasses.replace(q, shape=tuple(sp.sympify(e).xreplace(dims) for e in q.shape))


def _node(node: ir.Node, names: dict[str, str], dims: dict) -> ir.Node:
    """A copy of ``node`` with its refs renamed and the loop length put into its shapes."""
    changes: dict = {"shape": tuple(sp.sympify(e).xreplace(dims) for e in node.shape)}
    if isinstance(node, ir.Ref) and node.name in names:
        changes["name"] = names[node.name]
    for f in dataclasses.fields(node):
        v = getattr(node, f.name)
        if isinstance(v, ir.Node):
            changes[f.name] = _node(v, names, dims)
        elif isinstance(v, sp.Basic) and f.name != "shape":  # a number: / (T * B)
            changes[f.name] = v.xreplace(dims)
        elif isinstance(v, tuple) and v and all(isinstance(x, ir.Node) for x in v):
            changes[f.name] = tuple(_node(x, names, dims) for x in v)
    return dataclasses.replace(node, **changes)


def _stack(loop, step: str, stacked: str, length: int, dims: dict, net) -> ir.Equation:
    """``stacked = concatenate([s1, …, sT], axis=0).reshape(T, …)``: the steps stacked."""
    q = loop.quantities[step]
    pos = loop.pos
    shape = tuple(sp.sympify(e).xreplace(dims) for e in q.shape)
    parts = tuple(ir.Ref(shape, pos, f"{stacked}{k}") for k in range(1, length + 1))
    cat = ir.Concat((shape[0] * length, *shape[1:]), pos, parts, 0)
    return ir.Equation(stacked, ir.Reshape((sp.Integer(length), *shape), pos, cat), pos)
