"""Common subexpressions: a value a spec writes twice is computed once.

``var(hp, axis=0)`` is ``sum((hp − mean(hp))²) / n``; next to
``mu = mean(hp, axis=0, keepdims=True)`` and ``xn = (hp − mu) / sd`` the mean
and the centred ``hp − mu`` would be written (and differentiated) twice, once
inside the variance and once in the spec's own equations.
:func:`share_subexpressions` makes them one: a subexpression equal to an
earlier equation's right-hand side becomes that name, and a computation
written in two equations becomes an equation of its own, placed before its
first use.  Equal means the same node types, fields and shapes throughout
(positions ignored), so the network's values are unchanged.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Any

from . import ir

# the computations worth a name when written twice (a transpose, negation or
# layout view is free, and naming it would only add a delta)
_COMPUTED = (ir.Binary, ir.Power, ir.Call, ir.Reduce, ir.MatMul, ir.Softmax, ir.Einsum)


def key(node: ir.Node) -> tuple:
    """A structural key: equal keys, equal values (positions are ignored)."""
    parts: list = [type(node).__name__, node.shape]
    for f in dataclasses.fields(node):
        if f.name in ("pos", "shape"):
            continue
        v = getattr(node, f.name)
        if isinstance(v, ir.Node):
            v = key(v)
        elif isinstance(v, tuple):
            v = tuple(key(x) if isinstance(x, ir.Node) else x for x in v)
        parts.append(v)
    return tuple(parts)


def _rebuild(node: ir.Node, swap) -> ir.Node:
    """``node`` with ``swap(n)`` (when not None) standing for each subexpression ``n``:
    the outermost first, and again once its parts have been swapped (``hp − mean(hp)``
    is ``hp − mu`` after its mean is, which may be an earlier equation in turn)."""
    new = swap(node)
    if new is not None:
        return new
    rebuilt = _below(node, swap)
    again = swap(rebuilt) if rebuilt is not node else None
    return rebuilt if again is None else again


def _below(node: ir.Node, swap) -> ir.Node:
    """``node`` with its operands rebuilt by :func:`_rebuild` (the node itself kept)."""
    changes: dict[str, Any] = {}
    for f in dataclasses.fields(node):
        v = getattr(node, f.name)
        if isinstance(v, ir.Node):
            changes[f.name] = _rebuild(v, swap)
        elif isinstance(v, tuple) and any(isinstance(x, ir.Node) for x in v):
            changes[f.name] = tuple(_rebuild(x, swap) if isinstance(x, ir.Node) else x for x in v)
    if all(changes[k] is getattr(node, k) for k in changes):
        return node
    return dataclasses.replace(node, **changes)


def _computed(node: ir.Node, net: ir.Network) -> bool:
    """A computation on arrays (arithmetic on dims and consts alone is not counted)."""
    arrays = any(isinstance(n, ir.Ref) and n.name in net.quantities for n in ir.walk(node))
    return isinstance(node, _COMPUTED) and arrays


def share_subexpressions(net: ir.Network) -> ir.Network:
    """``net`` with every value it writes twice computed once (see the module doc)."""
    equations = _reuse_earlier(net, list(net.equations))
    quantities = dict(net.quantities)
    taken = set(quantities) | set(net.consts) | set(net.dims) | set(net.funcs)
    while True:
        repeated = _repeated(net, equations)
        if repeated is None:
            break
        first, node = repeated
        name, n = f"{equations[first].name}_in", 1
        while name in taken:
            n += 1
            name = f"{equations[first].name}_in{n}"
        taken.add(name)
        quantities[name] = ir.Quantity(name, "intermediate", node.shape, node.pos)
        k = key(node)
        equations.insert(first, ir.Equation(name, node, node.pos))
        ref = ir.Ref(node.shape, node.pos, name)

        def swap(m, k=k, ref=ref):
            return ref if key(m) == k else None

        equations[first + 1 :] = [
            dataclasses.replace(eq, expr=_below(eq.expr, swap)) for eq in equations[first + 1 :]
        ]
    if equations == net.equations:
        return net
    ordered = {k: v for k, v in quantities.items() if v.kind != "intermediate"}
    ordered.update({eq.name: quantities[eq.name] for eq in equations})
    return dataclasses.replace(net, quantities=ordered, equations=equations)


def _reuse_earlier(net: ir.Network, equations: list[ir.Equation]) -> list[ir.Equation]:
    """Each subexpression equal to an earlier equation's right-hand side, by that name."""
    defined: dict[tuple, str] = {}
    out = []
    for eq in equations:

        def swap(m):
            name = defined.get(key(m)) if _computed(m, net) else None
            return None if name is None else ir.Ref(m.shape, m.pos, name)

        expr = _below(eq.expr, swap)  # the right-hand side itself stays (a = b: no alias)
        out.append(eq if expr is eq.expr else dataclasses.replace(eq, expr=expr))
        if _computed(expr, net):
            defined.setdefault(key(expr), eq.name)
    return out


def _repeated(net: ir.Network, equations: list[ir.Equation]):
    """(index of the first equation using it, node) of the largest computation written
    below the top of two equations' right-hand sides, or None.  (Written twice in one
    equation it is left alone: the derivation sees that equation whole, and cancels
    across it, as in ``h = z + b − mean(z + b)``, where b's gradient comes out 0.)"""
    counts: Counter = Counter()
    first: dict[tuple, tuple[int, ir.Node]] = {}
    for i, eq in enumerate(equations):
        keys = {key(m): m for m in ir.walk(eq.expr) if m is not eq.expr and _computed(m, net)}
        for k, m in keys.items():
            counts[k] += 1
            first.setdefault(k, (i, m))
    twice = [k for k, c in counts.items() if c > 1]
    if not twice:
        return None
    best = max(twice, key=lambda k: sum(1 for _ in ir.walk(first[k][1])))
    return first[best]
