"""Evaluating networks and matrix forms on arrays: float arrays or arrays of SymPy symbols.

Two evaluators, each a walk over node types, sharing one idea: the values
are NumPy arrays, of floats for numeric checks or of SymPy expressions
(``dtype=object``) for exact checks at small concrete sizes.  What differs
between the two is only how a function is applied (:class:`Functions`).

* :func:`forward` runs a network's equations with NumPy semantics, straight
  from the parsed spec: independent of the element-wise lowering and of
  every derived form, so it is the reference the checks compare against.
* :func:`evaluate` computes a matrix form (2-D arrays; a vector is a
  ``1 × n`` row, as in the forms).

No generated code is ``exec``-ed: the forms are walked.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import sympy as sp

from . import ir
from .indices import as_expr
from .matexpr import Broadcast, Map, Softmax, SumAll, SumAxis, Vector
from .rules import GENERIC_BINDINGS, RULES, GenericFunction, generic_base, np_softmax, rule_for


class Functions:
    """How functions apply to array values: numerically or symbolically."""

    def __init__(self, exact: bool = False, generic: dict[str, Callable] | None = None, point=None):
        self.exact = exact or point is not None
        self.generic = generic or {}
        self.point = point  # a decide.Point: exact values instead of SymPy expressions

    def apply(self, func, params: tuple, x):
        """``func(x, *params)`` entry by entry: a rule's kernel, a generic binding, or exact."""
        if self.point is not None:
            from .decide import apply

            return _vectorize(lambda z: apply(func, self.point.const(z), params), x)
        if self.exact:
            return _vectorize(lambda z: func(z, *params), x)
        if isinstance(func, type) and issubclass(func, GenericFunction):
            base, order = generic_base(func)
            key = base + "'" * order
            if key not in self.generic:
                raise KeyError(f"no binding for the generic function {key}")
            return self.generic[key](x)
        return rule_for(func).kernel(x, *[float(p) for p in params])

    def softmax(self, x, axis: int):
        """Softmax of ``x`` along ``axis`` (stable numerically, exact SymPy otherwise)."""
        if not self.exact:
            return np_softmax(x, axis=axis)
        e = self.apply(sp.exp, (), x)
        return e / e.sum(axis=axis, keepdims=True)


def generic_bindings(funcs: list[str]) -> dict[str, Callable]:
    """Numeric stand-ins for the generic functions ``f`` and their derivatives ``f'``."""
    out = {}
    for n, name in enumerate(funcs):
        f, df = GENERIC_BINDINGS[n % len(GENERIC_BINDINGS)]
        out[name], out[name + "'"] = f, df
    return out


def _vectorize(fn, x):
    if isinstance(x, np.ndarray):
        out = np.empty(x.shape, dtype=object)
        for idx in np.ndindex(x.shape):
            out[idx] = fn(x[idx])
        return out
    return fn(x)


def _scalar(value: sp.Expr, scalars: dict, exact: bool, point=None):
    """A scalar of the spec (number, const, dimension) with the given values put in."""
    value = as_expr(value)
    if point is not None:
        from .decide import evaluate_scalar

        bindings = {s: scalars[s.name] for s in value.free_symbols if s.name in scalars}
        return evaluate_scalar(value, point, bindings)
    value = value.xreplace(
        {s: as_expr(scalars[s.name]) for s in value.free_symbols if s.name in scalars}
    )
    return value if exact else float(value)


# ---------------------------------------------------------------------------
# the forward pass, from the parsed spec


def forward(net: ir.Network, values: dict, funcs: Functions) -> dict:
    """Every quantity of the network, computed from inputs, targets, params and consts."""
    env = dict(values)
    scalars = {
        **{k: v for k, v in values.items() if k in net.consts},
        **{k: v for k, v in values.items() if k in net.dims},
    }
    for eq in net.equations:
        env[eq.name] = _run(eq.expr, env, scalars, funcs)
    return env


def _run(node: ir.Node, env: dict, scalars: dict, funcs: Functions):
    run = lambda n: _run(n, env, scalars, funcs)  # noqa: E731
    if isinstance(node, ir.Ref):
        return env[node.name]
    if isinstance(node, ir.Scalar):
        return _scalar(node.value, scalars, funcs.exact, funcs.point)
    if isinstance(node, ir.MatMul):
        return run(node.a) @ run(node.b)
    if isinstance(node, ir.Binary):
        a, b = run(node.a), run(node.b)
        return ir.BINARY_OPS[node.op](a, b)
    if isinstance(node, ir.Power):
        exponent = node.exponent if funcs.exact else float(node.exponent)
        return run(node.base) ** exponent
    if isinstance(node, ir.Neg):
        return -run(node.a)
    if isinstance(node, ir.Transpose):
        return run(node.a).T
    if isinstance(node, ir.Call):
        from .rules import generic_function

        func = generic_function(node.fn) if node.generic else RULES[node.fn].cls
        params = tuple(_scalar(p, scalars, funcs.exact, funcs.point) for p in node.params)
        return funcs.apply(func, params, run(node.arg))
    if isinstance(node, ir.Softmax):
        return funcs.softmax(run(node.arg), node.axis)
    if isinstance(node, ir.Reduce):
        x = run(node.arg)
        total = np.sum(x, axis=node.axis, keepdims=node.keepdims)
        if node.op == "mean":
            count = x.size if node.axis is None else x.shape[node.axis]
            total = total / (count if not funcs.exact else sp.Integer(count))
        return total
    raise TypeError(type(node).__name__)


# ---------------------------------------------------------------------------
# matrix forms


def as_2d(value, shape: tuple):
    """The 2-D form of a NumPy value: a vector becomes a ``1 × n`` row."""
    value = np.asarray(value, dtype=object if np.asarray(value).dtype == object else float)
    return value.reshape(1, -1) if len(shape) == 1 else value


def _extent(shape, env: dict) -> tuple[int, int]:
    """A matrix shape with the dims' sizes put in."""
    rows, cols = (
        int(as_expr(d).xreplace({s: env[s.name] for s in as_expr(d).free_symbols})) for d in shape
    )
    return rows, cols


def evaluate(e, env: dict, funcs: Functions):
    """The value of a matrix form; ``env`` holds 2-D arrays, scalars and dims by name."""
    ev = lambda x: evaluate(x, env, funcs)  # noqa: E731
    if isinstance(e, (sp.MatrixSymbol, Vector)):
        return env[str(e.name)]
    if isinstance(e, sp.Symbol):
        value = env[e.name]
        return funcs.point.const(value) if funcs.point and isinstance(value, int) else value
    if isinstance(e, sp.Number):
        if funcs.point is not None:  # exact values: √10 in a coefficient is a field element
            return funcs.point.const(e)
        return e if funcs.exact else float(e)
    if isinstance(e, sp.MatMul):
        coeff, mats = e.as_coeff_matrices()
        out = ev(mats[0])
        for m in mats[1:]:
            out = out @ ev(m)
        return ev(coeff) * out if coeff != 1 else out
    if isinstance(e, (sp.MatAdd, sp.Add)):
        out = ev(e.args[0])
        for a in e.args[1:]:
            out = out + ev(a)
        return out
    if isinstance(e, (sp.HadamardProduct, sp.Mul)):
        out = ev(e.args[0])
        for a in e.args[1:]:
            out = out * ev(a)
        return out
    if isinstance(e, (sp.HadamardPower, sp.Pow)):
        base, exp = (e.base, e.exp)
        exponent = exp if funcs.exact else float(exp)
        return ev(base) ** exponent
    if isinstance(e, sp.Transpose):
        return ev(e.arg).T
    if isinstance(e, sp.OneMatrix):
        return np.ones(_extent(e.shape, env), dtype=int)
    if isinstance(e, sp.ZeroMatrix):  # an adjoint whose terms all cancelled
        return np.zeros(_extent(e.shape, env), dtype=int)
    if isinstance(e, Map):
        params = tuple(ev(p) for p in e.params)
        return funcs.apply(e.func_class, params, ev(e.arg))
    if isinstance(e, Softmax):
        return funcs.softmax(ev(e.arg), e.axis)
    if isinstance(e, SumAxis):
        return np.sum(ev(e.arg), axis=e.axis, keepdims=True)
    if isinstance(e, SumAll):
        return np.sum(ev(e.arg))
    if isinstance(e, Broadcast):
        return np.broadcast_to(ev(e.arg), _extent(e.shape, env))
    if isinstance(e, sp.Function) and e.args:
        params = tuple(ev(p) for p in e.args[1:])
        return funcs.apply(e.func, params, ev(e.args[0]))
    if isinstance(e, sp.Indexed):  # an entry along a size-1 dimension, e.g. b3[0]
        arr = np.asarray(env[str(e.base.label)])
        idx = tuple(int(i) for i in e.indices)
        if arr.ndim == 2 and len(idx) == 1:  # a vector, kept as a 1 × n row
            arr = arr[0]
        return arr[idx]
    raise TypeError(f"cannot evaluate {type(e).__name__}")
