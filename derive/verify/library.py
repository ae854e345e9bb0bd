"""The NumPy/PyTorch functions and methods the interpreter knows, on float arrays (numeric)
or arrays of SymPy expressions (exact).  A name not listed here is refused."""

from __future__ import annotations

import numpy as np
import sympy as sp

from ..rules import RULES


class Library:
    """``np``/``numpy``/``torch``/``math``: functions resolved by name."""

    def __init__(self, name: str):
        self.name = name


class Bound:
    """A function or method not yet called: ``np.sum``, ``x.sum``, ``range``, ``self.f``."""

    def __init__(self, obj, name: str):
        self.obj, self.name = obj, name


def _map(interp, fn_exact, fn_float, x):
    if interp.exact:
        x = np.asarray(x, dtype=object)
        out = np.empty(x.shape, dtype=object)
        for idx in np.ndindex(x.shape):
            out[idx] = fn_exact(x[idx])
        return out if out.shape else out[()]
    return fn_float(np.asarray(x, dtype=float))


def _axis(kw: dict, args, default=None):
    """The axis of a call: ``axis=``, ``dim=`` or the first positional argument."""
    return kw.get("axis", kw.get("dim", args[0] if args else default))


def _reduce(op, x, kw, args):
    axis = _axis(kw, args)
    keep = bool(kw.get("keepdims", kw.get("keepdim", args[1] if len(args) > 1 else False)))
    axis = (
        None
        if axis is None
        else (tuple(int(a) for a in axis) if isinstance(axis, tuple) else int(axis))
    )
    x = np.asarray(x)
    total = np.sum(x, axis=axis, keepdims=keep)
    if op == "mean":
        count = x.size if axis is None else int(np.prod([x.shape[a] for a in np.atleast_1d(axis)]))
        total = total / (sp.Integer(count) if x.dtype == object else count)
    return total


def _extreme(interp, op, x, kw, args):
    """``max``/``min`` over an axis.  Exactly, each reduced entry is a fresh symbol: code
    takes a row's max only to shift a softmax, which the shift cancels from, so a verdict
    that holds for every value of the symbol holds for the max (and one that needs the
    max's value is refused as wrong, never accepted as right)."""
    axis = _axis(kw, args)
    keep = bool(kw.get("keepdims", kw.get("keepdim", args[1] if len(args) > 1 else False)))
    x = np.asarray(x)
    if isinstance(axis, (tuple, list)):  # max over a window: axis=(2, 3)
        axis = tuple(int(a) for a in axis)
    else:
        axis = None if axis is None else int(axis)
    if not interp.exact:
        return (np.max if op == "max" else np.min)(x.astype(float), axis=axis, keepdims=keep)
    reals = reals_of(x)
    if reals is not None:  # entries that stand for values (a max-pool's spec): the entry itself
        return _pick(x, reals, axis, keep, np.argmax if op == "max" else np.argmin)
    shape = np.sum(np.zeros(x.shape), axis=axis, keepdims=keep).shape
    out = np.empty(shape, dtype=object)
    for idx in np.ndindex(shape):
        out[idx] = interp.fresh(op)
    return out if out.shape else out[()]


def _pick(x, reals, axis, keep: bool, pick):
    """The entry of ``x`` whose real value ``pick`` (argmax) chooses, over ``axis``."""
    axes = tuple(range(x.ndim)) if axis is None else np.atleast_1d(axis).tolist()
    axes = [a % x.ndim for a in axes]
    rest = [a for a in range(x.ndim) if a not in axes]
    flat = np.transpose(x, rest + axes).reshape(*[x.shape[a] for a in rest], -1)
    at = pick(np.transpose(reals, rest + axes).reshape(flat.shape), axis=-1)
    picked = np.take_along_axis(flat, np.expand_dims(at, -1), -1)[..., 0]
    if keep:
        picked = picked.reshape([1 if a in axes else n for a, n in enumerate(x.shape)])
    return picked if picked.shape else picked[()]


def reals_of(x) -> np.ndarray | None:
    """The real values exact entries stand for (None unless every entry has one)."""
    from .evaluate import real  # the evaluator's symbols: imported late (no cycle at import)

    values = [real(v) for v in np.ravel(x)]
    if any(v is None for v in values):
        return None
    return np.asarray(values, dtype=float).reshape(np.shape(x))


def _argmax(interp, node, x, axis=None, op="max", **kw):
    """``np.argmax(x, axis)``: exactly, by the real values the entries stand for."""
    x = np.asarray(x)
    axis = kw.get("axis", axis)
    reals = x.astype(float) if not interp.exact else reals_of(x)
    if reals is None:
        interp.error(node, "argmax needs values it can order (the spec's max-pool inputs)")
    pick = np.argmax if op == "max" else np.argmin
    return pick(reals, axis=None if axis is None else int(axis))


def _softmax(interp, x, axis=-1):
    """``F.softmax(x, dim)``, ``scipy.special.softmax(x, axis)``: exp over its row sum."""
    e = _map(interp, sp.exp, np.exp, x)
    return e / np.sum(e, axis=int(axis), keepdims=True)


def _relu(interp, x):
    return _map(interp, RULES["relu"].cls, lambda v: np.maximum(v, 0), x)


def _maximum(interp, node, a, b):
    if np.ndim(a) == 0 and a == 0:
        return _relu(interp, b)
    if np.ndim(b) == 0 and b == 0:
        return _relu(interp, a)
    interp.error(node, "maximum is read only as maximum(0, x) (a relu)")


def _zeros(interp, shape):
    shape = tuple(int(d) for d in (shape if isinstance(shape, tuple) else (shape,)))
    interp.count(int(np.prod(shape, dtype=float)))  # refused before it is allocated
    return np.zeros(shape, dtype=object if interp.exact else float) * (
        sp.Integer(0) if interp.exact else 1
    )


def _zeros_like(interp, x):
    x = np.asarray(x)
    if interp.exact:
        out = np.empty(x.shape, dtype=object)
        out[...] = sp.Integer(0)
        return out
    return np.zeros(x.shape)


def _pad(interp, node, x, widths, *rest, **kw):
    """``np.pad(x, widths)`` with zeros (``mode="constant"``, the default); exact zeros are
    SymPy's, so every entry stays an expression."""
    mode = rest[0] if rest else kw.get("mode", "constant")
    if mode != "constant" or kw.get("constant_values", 0) != 0:
        interp.error(node, "np.pad is read with zeros only (mode='constant')")
    x = np.asarray(x)
    w = np.broadcast_to(np.asarray([[int(a) for a in p] for p in _pairs(widths)]), (x.ndim, 2))
    out = _zeros(interp, tuple(int(n + a + b) for n, (a, b) in zip(x.shape, w, strict=True)))
    out[tuple(slice(a, a + n) for n, (a, _) in zip(x.shape, w, strict=True))] = x
    return out


def _pairs(widths):
    """``np.pad``'s widths: one number, one pair, or a pair per axis."""
    if not isinstance(widths, (tuple, list)):
        return [(widths, widths)]
    if all(not isinstance(w, (tuple, list)) for w in widths):
        return [tuple(widths) if len(widths) == 2 else (widths[0], widths[0])]
    return [tuple(w) if len(w) == 2 else (w[0], w[0]) for w in widths]


def _windows(interp, node, x, shape=None, axis=None, window_shape=None):
    """``sliding_window_view(x, shape, axis)``: NumPy's own, on a copy (entries are values)."""
    shape = window_shape if shape is None else shape
    shape = tuple(int(s) for s in shape) if isinstance(shape, (tuple, list)) else int(shape)
    if isinstance(axis, (tuple, list)):
        axis = tuple(int(a) for a in axis)
    elif axis is not None:
        axis = int(axis)
    view = np.lib.stride_tricks.sliding_window_view(np.asarray(x), shape, axis=axis)
    return np.array(view, copy=True)


def _einsum(interp, node, subscripts, *operands, **kw):
    if not isinstance(subscripts, str):
        interp.error(node, "np.einsum is read with its subscripts string first")
    return np.einsum(subscripts, *[np.asarray(a) for a in operands], optimize=False)


def _tensordot(interp, node, a, b, axes=2, **kw):
    if isinstance(axes, (tuple, list)):
        axes = tuple(
            tuple(int(i) for i in ax) if isinstance(ax, (tuple, list)) else int(ax) for ax in axes
        )
    else:
        axes = int(axes)
    return np.tensordot(np.asarray(a), np.asarray(b), axes=axes)


def _flip(interp, node, a, axis=None, **kw):
    axis = tuple(int(i) for i in axis) if isinstance(axis, (tuple, list)) else axis
    return np.flip(np.asarray(a), axis=None if axis is None else axis)


def _transpose(interp, node, a, *axes):
    if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
        axes = tuple(axes[0])
    return np.transpose(np.asarray(a), tuple(int(i) for i in axes) or None)


FUNCTIONS = {
    "dot": lambda i, n, a, b: i.matmul(n, a, b),
    "matmul": lambda i, n, a, b: i.matmul(n, a, b),
    "mm": lambda i, n, a, b: i.matmul(n, a, b),
    "multiply": lambda i, n, a, b: a * b,
    "mul": lambda i, n, a, b: a * b,
    "divide": lambda i, n, a, b: a / b,
    "div": lambda i, n, a, b: a / b,
    "add": lambda i, n, a, b: a + b,
    "subtract": lambda i, n, a, b: a - b,
    "power": lambda i, n, a, b: i.power(n, a, b),
    "pow": lambda i, n, a, b: i.power(n, a, b),
    "square": lambda i, n, a: a * a,
    "sqrt": lambda i, n, a: _map(i, sp.sqrt, np.sqrt, a),
    "exp": lambda i, n, a: _map(i, sp.exp, np.exp, a),
    "log": lambda i, n, a: _map(i, sp.log, np.log, a),
    "tanh": lambda i, n, a: _map(i, RULES["tanh"].cls, np.tanh, a),
    "sigmoid": lambda i, n, a: _map(
        i, lambda z: 1 / (1 + sp.exp(-z)), lambda z: 1 / (1 + np.exp(-z)), a
    ),
    "relu": lambda i, n, a: _relu(i, a),
    "maximum": _maximum,
    "arange": lambda i, n, *a: (
        i.count(len(range(*[int(x) for x in a]))),
        np.arange(*[int(x) for x in a]),
    )[1],
    "outer": lambda i, n, a, b: np.multiply.outer(np.ravel(a), np.ravel(b)),
    "transpose": _transpose,
    "pad": _pad,
    "sliding_window_view": _windows,
    "einsum": _einsum,
    "tensordot": _tensordot,
    "flip": _flip,
    "rot90": lambda i, n, a, k=1, axes=(0, 1), **kw: np.rot90(
        np.asarray(a), int(k), (int(axes[0]), int(axes[1]))
    ),
    "repeat": lambda i, n, a, r, axis=None, **kw: (
        i.count(np.size(a) * int(r)),
        np.repeat(np.asarray(a), int(r), axis=None if axis is None else int(axis)),
    )[1],
    "concatenate": lambda i, n, parts, axis=0, **kw: np.concatenate(
        [np.asarray(p) for p in parts], axis=int(axis)
    ),
    "hstack": lambda i, n, parts, **kw: np.hstack([np.asarray(p) for p in parts]),
    "vstack": lambda i, n, parts, **kw: np.vstack([np.asarray(p) for p in parts]),
    "stack": lambda i, n, parts, axis=0, **kw: np.stack([np.asarray(p) for p in parts], int(axis)),
    "argmax": _argmax,
    "argmin": lambda i, n, x, axis=None, **kw: _argmax(i, n, x, axis, "min", **kw),
    "unravel_index": lambda i, n, k, shape, **kw: tuple(
        int(v) for v in np.unravel_index(int(k), tuple(int(d) for d in shape))
    ),
    "swapaxes": lambda i, n, a, x, y: np.swapaxes(np.asarray(a), int(x), int(y)),
    "moveaxis": lambda i, n, a, x, y: np.moveaxis(np.asarray(a), int(x), int(y)),
    "t": lambda i, n, a: np.asarray(a).T,
    "zeros": lambda i, n, shape, *rest: _zeros(i, shape),
    "zeros_like": lambda i, n, a, *rest: _zeros_like(i, a),
    "ones_like": lambda i, n, a, *rest: _zeros_like(i, a) + 1,
    "where": lambda i, n, c, a, b: c * a + (1 - c) * b,
    "reshape": lambda i, n, a, *shape: np.reshape(
        a,
        tuple(
            int(d) for d in (shape[0] if len(shape) == 1 and isinstance(shape[0], tuple) else shape)
        ),
    ),
    "copy": lambda i, n, a: np.array(a, copy=True) if isinstance(a, np.ndarray) else a,
    "clone": lambda i, n, a: np.array(a, copy=True),
    "array": lambda i, n, a, *rest: np.asarray(a),
    "asarray": lambda i, n, a, *rest: np.asarray(a),
    "astype": lambda i, n, a, *rest: a,
    "int64": lambda i, n, a: a,
    "float64": lambda i, n, a: a,
    "float32": lambda i, n, a: a,
    "float": lambda i, n, a: a,
    "double": lambda i, n, a: a,
    "detach": lambda i, n, a: a,
}

_EXTREMES = {"max": "max", "amax": "max", "min": "min", "amin": "min"}

BUILTIN = {
    "range": lambda *a: range(*[int(x) for x in a]),
    "len": lambda a: len(a),
    "zip": lambda *a: list(zip(*a, strict=False)),
    "reversed": lambda a: list(reversed(list(a))),
    "list": lambda a=(): list(a),
    "tuple": lambda a=(): tuple(a),
    "enumerate": lambda a: list(enumerate(a)),
    "int": lambda a: int(a),
    "float": lambda a: a,
    "abs": lambda a: abs(a),
}


_KEYWORDS = {  # the keyword arguments read (others, like dtype=, change no value)
    "pad": ("mode", "constant_values"),
    "sliding_window_view": ("axis", "window_shape"),
    "flip": ("axis",),
    "tensordot": ("axes",),
    "rot90": ("k", "axes"),
    "argmax": ("axis",),
    "argmin": ("axis",),
    "concatenate": ("axis",),
    "stack": ("axis",),
    "repeat": ("axis",),
}


def _keywords(name: str, kw: dict) -> dict:
    return {k: v for k, v in kw.items() if k in _KEYWORDS.get(name, ())}


def call(interp, node, fn, args, kw):
    """Apply a library function, builtin or method to evaluated arguments."""
    name = fn.name
    if fn.obj is None:
        if name in BUILTIN:
            return BUILTIN[name](*args)
    elif isinstance(fn.obj, Library):
        if name in ("sum", "mean"):
            return _reduce(name, args[0], kw, args[1:])
        if name in _EXTREMES:
            return _extreme(interp, _EXTREMES[name], args[0], kw, args[1:])
        if name == "softmax":
            return _softmax(interp, args[0], _axis(kw, args[1:], -1))
        if name in FUNCTIONS:
            return FUNCTIONS[name](interp, node, *args, **_keywords(name, kw))
    elif isinstance(fn.obj, list) and name == "append" and len(args) == 1:
        fn.obj.append(args[0])
        return None
    elif isinstance(fn.obj, (np.ndarray, sp.Basic, int, float)):
        obj = np.asarray(fn.obj) if not isinstance(fn.obj, np.ndarray) else fn.obj
        if name in ("sum", "mean"):
            return _reduce(name, obj, kw, args)
        if name in _EXTREMES:
            return _extreme(interp, _EXTREMES[name], obj, kw, args)
        if name == "softmax":
            return _softmax(interp, obj, _axis(kw, args, -1))
        if name in FUNCTIONS:
            return FUNCTIONS[name](interp, node, obj, *args, **_keywords(name, kw))
    interp.error(node, f"unsupported function or method {name!r}")
