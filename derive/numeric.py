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

import functools
from collections.abc import Callable

import numpy as np
import sympy as sp

from . import ir
from .indices import as_expr
from .matexpr import (
    Broadcast,
    Einsum,
    Gather,
    Map,
    OneHot,
    Pick,
    ScatterAdd,
    Softmax,
    SumAll,
    SumAxis,
)
from .rules import (
    GENERIC_BINDINGS,
    RULES,
    GenericFunction,
    generic_base,
    generic_function,
    np_softmax,
    rule_for,
)


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
        env[eq.name] = run_node(eq.expr, env, scalars, funcs)
    return env


@functools.singledispatch
def run_node(node: ir.Node, env: dict, scalars: dict, funcs: Functions):
    """The value of one forward expression, its operands read from ``env`` by name.

    ``scalars`` holds the consts' and dims' values; ``funcs`` says how to compute
    (floats, exact values, a point of a finite field).  One function per node type,
    registered on this one (``run_node.register``).
    """
    raise TypeError(type(node).__name__)


_run = run_node  # the old private name, while its importers move to the public one


@run_node.register(ir.Ref)
def _run_ref(node: ir.Ref, env: dict, scalars: dict, funcs: Functions):
    return env[node.name]


@run_node.register(ir.Scalar)
def _run_scalar(node: ir.Scalar, env: dict, scalars: dict, funcs: Functions):
    return _scalar(node.value, scalars, funcs.exact, funcs.point)


@run_node.register(ir.MatMul)
def _run_matmul(node: ir.MatMul, env: dict, scalars: dict, funcs: Functions):
    return run_node(node.a, env, scalars, funcs) @ run_node(node.b, env, scalars, funcs)


@run_node.register(ir.Binary)
def _run_binary(node: ir.Binary, env: dict, scalars: dict, funcs: Functions):
    a, b = run_node(node.a, env, scalars, funcs), run_node(node.b, env, scalars, funcs)
    return ir.BINARY_OPS[node.op](a, b)


@run_node.register(ir.Power)
def _run_power(node: ir.Power, env: dict, scalars: dict, funcs: Functions):
    exponent = node.exponent if funcs.exact else float(node.exponent)
    return run_node(node.base, env, scalars, funcs) ** exponent


@run_node.register(ir.Neg)
def _run_neg(node: ir.Neg, env: dict, scalars: dict, funcs: Functions):
    return -run_node(node.a, env, scalars, funcs)


@run_node.register(ir.Transpose)
def _run_transpose(node: ir.Transpose, env: dict, scalars: dict, funcs: Functions):
    return run_node(node.a, env, scalars, funcs).T


@run_node.register(ir.Call)
def _run_call(node: ir.Call, env: dict, scalars: dict, funcs: Functions):
    func = generic_function(node.fn) if node.generic else RULES[node.fn].cls
    params = tuple(_scalar(p, scalars, funcs.exact, funcs.point) for p in node.params)
    return funcs.apply(func, params, run_node(node.arg, env, scalars, funcs))


@run_node.register(ir.Softmax)
def _run_softmax(node: ir.Softmax, env: dict, scalars: dict, funcs: Functions):
    return funcs.softmax(run_node(node.arg, env, scalars, funcs), node.axis)


@run_node.register(ir.OneHot)
def _run_onehot(node: ir.OneHot, env: dict, scalars: dict, funcs: Functions):
    return one_hot(env[node.labels.name], _size(node.n, scalars))


@run_node.register(ir.Pick)
def _run_pick(node: ir.Pick, env: dict, scalars: dict, funcs: Functions):
    # NumPy's own fancy indexing: the reference semantics
    labels = labels_of(env[node.labels.name])
    return run_node(node.arg, env, scalars, funcs)[np.arange(len(labels)), labels]


@run_node.register(ir.Gather)
def _run_gather(node: ir.Gather, env: dict, scalars: dict, funcs: Functions):
    # NumPy's own fancy indexing: the reference semantics
    return run_node(node.arg, env, scalars, funcs)[np.asarray(env[node.index.name], np.int64)]


@run_node.register(ir.Argmax)
def _run_argmax(node: ir.Argmax, env: dict, scalars: dict, funcs: Functions):
    return argmax(run_node(node.arg, env, scalars, funcs), node.axis, node.op)


def argmax(x, axis: int, op: str) -> np.ndarray:
    """``np.argmax`` (``np.argmin``) of floats, or of exact values by their real value."""
    x = np.asarray(x)
    if x.dtype == object:  # exact values at a point carry the real value they stand for
        reals = np.vectorize(lambda v: getattr(v, "r", None), otypes=[object])(x)
        if any(r is None for r in reals.flat):
            raise TypeError("max/min along an axis needs numeric values")
        x = reals.astype(float)
    return np.argmax(x, axis=axis) if op == "max" else np.argmin(x, axis=axis)


@run_node.register(ir.Column)
def _run_column(node: ir.Column, env: dict, scalars: dict, funcs: Functions):
    return run_node(node.a, env, scalars, funcs)[:, None]


@run_node.register(ir.Reduce)
def _run_reduce(node: ir.Reduce, env: dict, scalars: dict, funcs: Functions):
    x = run_node(node.arg, env, scalars, funcs)
    total = np.sum(x, axis=node.axis, keepdims=node.keepdims)
    if node.op == "mean":
        count = x.size if node.axis is None else x.shape[node.axis]
        total = total / (count if not funcs.exact else sp.Integer(count))
    return total


@run_node.register(ir.Permute)
def _run_permute(node: ir.Permute, env: dict, scalars: dict, funcs: Functions):
    return np.transpose(run_node(node.a, env, scalars, funcs), node.axes)


@run_node.register(ir.Reshape)
def _run_reshape(node: ir.Reshape, env: dict, scalars: dict, funcs: Functions):
    shape = tuple(_size(d, scalars) for d in node.shape)
    return np.reshape(run_node(node.a, env, scalars, funcs), shape)


@run_node.register(ir.Slice)
def _run_slice(node: ir.Slice, env: dict, scalars: dict, funcs: Functions):
    x = run_node(node.a, env, scalars, funcs)
    at = tuple(
        slice(_size(s, scalars), _size(s + n, scalars))
        for s, n in zip(node.starts, node.shape, strict=True)
    )
    return x[at]


@run_node.register(ir.Concat)
def _run_concat(node: ir.Concat, env: dict, scalars: dict, funcs: Functions):
    parts = [run_node(p, env, scalars, funcs) for p in node.parts]
    return np.concatenate(parts, axis=node.axis)


@run_node.register(ir.Einsum)
def _run_einsum(node: ir.Einsum, env: dict, scalars: dict, funcs: Functions):
    ops = [run_node(p, env, scalars, funcs) for p in node.operands]
    return np.einsum(",".join(node.inputs) + "->" + node.output, *ops)


def _size(dim: sp.Expr, sizes: dict) -> int:
    """A dimension's size as a Python int (labels index with it, in every evaluator)."""
    return int(as_expr(dim).xreplace({s: sp.Integer(int(sizes[s.name])) for s in dim.free_symbols}))


def labels_of(value) -> np.ndarray:
    """Class labels as a 1-D integer array (a ``1 × B`` row in matrix-form environments)."""
    return np.asarray(value).reshape(-1).astype(np.int64)


def one_hot(labels, n: int) -> np.ndarray:
    """The ``B × n`` one-hot matrix of integer labels (integer 0/1: exact in both evaluators)."""
    labels = labels_of(labels)
    out = np.zeros((len(labels), n), dtype=np.int64)
    out[np.arange(len(labels)), labels] = 1
    return out


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


@functools.singledispatch
def evaluate(e, env: dict, funcs: Functions):
    """The value of a matrix form; ``env`` holds 2-D arrays, scalars and dims by name.

    One function per matrix-form class, registered on this one (``evaluate.register``).
    """
    raise TypeError(f"cannot evaluate {type(e).__name__}")


@evaluate.register(sp.MatrixSymbol)
def _eval_array(e: sp.MatrixSymbol, env: dict, funcs: Functions):
    return env[str(e.name)]


@evaluate.register(OneHot)
def _eval_onehot(e: OneHot, env: dict, funcs: Functions):
    return one_hot(env[e.labels], _size(e.shape[1], env))


@evaluate.register(Pick)
def _eval_pick(e: Pick, env: dict, funcs: Functions):
    labels = labels_of(env[e.onehot.labels])
    return evaluate(e.arg, env, funcs)[np.arange(len(labels)), labels].reshape(1, -1)


@evaluate.register(Gather)
def _eval_gather(e: Gather, env: dict, funcs: Functions):
    return evaluate(e.arg, env, funcs)[labels_of(env[e.onehot.labels])]


@evaluate.register(ScatterAdd)
def _eval_scatter_add(e: ScatterAdd, env: dict, funcs: Functions):
    x = evaluate(e.arg, env, funcs)
    out = np.zeros(_extent(e.shape, env), dtype=x.dtype)
    np.add.at(out, labels_of(env[e.onehot.labels]), x)
    return out


@evaluate.register(sp.Symbol)
def _eval_symbol(e: sp.Symbol, env: dict, funcs: Functions):
    value = env[e.name]
    return funcs.point.const(value) if funcs.point and isinstance(value, int) else value


@evaluate.register(sp.Number)
def _eval_number(e: sp.Number, env: dict, funcs: Functions):
    if funcs.point is not None:  # exact values: √10 in a coefficient is a field element
        return funcs.point.const(e)
    return e if funcs.exact else float(e)


@evaluate.register(sp.MatMul)
def _eval_matmul(e: sp.MatMul, env: dict, funcs: Functions):
    coeff, mats = e.as_coeff_matrices()
    out = evaluate(mats[0], env, funcs)
    for m in mats[1:]:
        out = out @ evaluate(m, env, funcs)
    return evaluate(coeff, env, funcs) * out if coeff != 1 else out


@evaluate.register(sp.MatAdd)
@evaluate.register(sp.Add)
def _eval_sum(e: sp.Expr, env: dict, funcs: Functions):
    out = evaluate(e.args[0], env, funcs)
    for a in e.args[1:]:
        out = out + evaluate(a, env, funcs)
    return out


@evaluate.register(sp.HadamardProduct)
@evaluate.register(sp.Mul)
def _eval_product(e: sp.Expr, env: dict, funcs: Functions):
    out = evaluate(e.args[0], env, funcs)
    for a in e.args[1:]:
        out = out * evaluate(a, env, funcs)
    return out


@evaluate.register(sp.HadamardPower)
@evaluate.register(sp.Pow)
def _eval_power(e: sp.Expr, env: dict, funcs: Functions):
    exponent = e.exp if funcs.exact else float(e.exp)
    return evaluate(e.base, env, funcs) ** exponent


@evaluate.register(sp.Transpose)
def _eval_transpose(e: sp.Transpose, env: dict, funcs: Functions):
    return evaluate(e.arg, env, funcs).T


@evaluate.register(sp.OneMatrix)
def _eval_ones(e: sp.OneMatrix, env: dict, funcs: Functions):
    return np.ones(_extent(e.shape, env), dtype=int)


@evaluate.register(sp.ZeroMatrix)
def _eval_zeros(e: sp.ZeroMatrix, env: dict, funcs: Functions):
    # an adjoint whose terms all cancelled (a bias removed by centering)
    return np.zeros(_extent(e.shape, env), dtype=int)


@evaluate.register(Map)
def _eval_map(e: Map, env: dict, funcs: Functions):
    params = tuple(evaluate(p, env, funcs) for p in e.params)
    return funcs.apply(e.func_class, params, evaluate(e.arg, env, funcs))


@evaluate.register(Softmax)
def _eval_softmax(e: Softmax, env: dict, funcs: Functions):
    return funcs.softmax(evaluate(e.arg, env, funcs), e.axis)


@evaluate.register(SumAxis)
def _eval_sum_axis(e: SumAxis, env: dict, funcs: Functions):
    return np.sum(evaluate(e.arg, env, funcs), axis=e.axis, keepdims=True)


@evaluate.register(SumAll)
def _eval_sum_all(e: SumAll, env: dict, funcs: Functions):
    return np.sum(evaluate(e.arg, env, funcs))


@evaluate.register(Broadcast)
def _eval_broadcast(e: Broadcast, env: dict, funcs: Functions):
    return np.broadcast_to(evaluate(e.arg, env, funcs), _extent(e.shape, env))


@evaluate.register(sp.Function)
def _eval_function(e: sp.Function, env: dict, funcs: Functions):
    if not e.args:
        raise TypeError(f"cannot evaluate {type(e).__name__}")
    params = tuple(evaluate(p, env, funcs) for p in e.args[1:])
    return funcs.apply(e.func, params, evaluate(e.args[0], env, funcs))


@evaluate.register(sp.Indexed)
def _eval_entry(e: sp.Indexed, env: dict, funcs: Functions):
    """An entry along a size-1 dimension, e.g. ``b3[0]``."""
    arr = np.asarray(env[str(e.base.label)])
    idx = tuple(int(i) for i in e.indices)
    if arr.ndim == 2 and len(idx) == 1:  # a vector, kept as a 1 × n row
        arr = arr[0]
    return arr[idx]


@evaluate.register(Einsum)
def _eval_einsum(e: Einsum, env: dict, funcs: Functions):
    """An einsum form, by the plan its NumPy code is printed from (a vector as a row)."""
    from .contraction import plan, run

    value = run(plan(e), env, funcs, lambda x: evaluate(x, env, funcs))
    return np.reshape(value, (1, -1)) if len(e.out) == 1 else value


def _windows(x, size: tuple[int, int], stride: int, padding: int):
    """``w[b, c, i, j, p, q] = x[b, c, s i + p − pad, s j + q − pad]`` (zero padded)."""
    if padding:
        x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    w = np.lib.stride_tricks.sliding_window_view(x, size, axis=(2, 3))
    return w[:, :, ::stride, ::stride]


@run_node.register(ir.Conv2d)
def _run_conv2d(node: ir.Conv2d, env: dict, scalars: dict, funcs: Functions):
    x = run_node(node.a, env, scalars, funcs)
    k = run_node(node.b, env, scalars, funcs)
    w = _windows(x, k.shape[2:], node.stride, node.padding)
    return np.tensordot(w, k, axes=([1, 4, 5], [1, 2, 3])).transpose(0, 3, 1, 2)


@run_node.register(ir.Pool2d)
def _run_pool2d(node: ir.Pool2d, env: dict, scalars: dict, funcs: Functions):
    x = run_node(node.a, env, scalars, funcs)
    if node.op == "max":  # the entry at the first maximum of each window
        w = _windows(x, (node.size, node.size), node.stride, 0)
        flat = w.reshape(*w.shape[:4], -1)
        at = _window_argmax(flat)
        return np.take_along_axis(flat, at[..., None], axis=-1)[..., 0]
    total = _windows(x, (node.size, node.size), node.stride, 0).sum(axis=(4, 5))
    n = node.size**2
    return total / (sp.Integer(n) if funcs.exact else n)


def _window_argmax(flat: np.ndarray) -> np.ndarray:
    """The first maximum along the last axis (exact values by the real value they stand for)."""
    return argmax(flat.reshape(-1, flat.shape[-1]), 1, "max").reshape(flat.shape[:-1])


@run_node.register(ir.PoolArgmax)
def _run_pool_argmax(node: ir.PoolArgmax, env: dict, scalars: dict, funcs: Functions):
    w = _windows(run_node(node.a, env, scalars, funcs), (node.size, node.size), node.stride, 0)
    return _window_argmax(w.reshape(*w.shape[:4], -1))
