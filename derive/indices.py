"""Index symbols for element-wise forms, each knowing the dimension it ranges over.

Element-wise statements such as ``u[i, j] = Σ_k x[i, k] W[k, j]`` need
indices whose range is known: Kronecker deltas may only be contracted
between indices over the same dimension, and matrix recovery needs each
index's extent to build sums over an axis.  An index is an integer SymPy
symbol; its dimension lives in a side table so that the symbols stay plain
SymPy objects that ``diff``, ``xreplace`` and the printers handle as usual.
"""

from __future__ import annotations

import itertools

import sympy as sp

_DIM: dict[sp.Symbol, sp.Expr] = {}


def as_expr(x) -> sp.Expr:
    """An internal number (a Python int or float) as a SymPy number; SymPy objects unchanged.

    Only the engine's own values pass through here: user text is parsed with
    ``ast`` and never converted by SymPy's string-accepting ``sympify``.
    """
    if isinstance(x, sp.Basic):
        return x
    if isinstance(x, (bool, str, bytes)):  # text is never converted here
        raise TypeError(f"not a number: {type(x).__name__}")
    return sp.Integer(int(x)) if float(x).is_integer() and isinstance(x, int) else sp.Float(x)


_counter = itertools.count()


def new_index(dim: sp.Expr, stem: str = "k") -> sp.Expr:
    """A fresh index over ``range(dim)``; a dimension of size 1 gets the literal 0."""
    if dim == 1:
        return sp.Integer(0)
    sym = sp.Symbol(f"{stem}{next(_counter)}", integer=True)
    _DIM[sym] = as_expr(dim)
    return sym


def named_index(name: str, dim: sp.Expr) -> sp.Symbol:
    """An index with a fixed, readable name (used when displaying forms)."""
    sym = sp.Symbol(name, integer=True)
    _DIM[sym] = as_expr(dim)
    return sym


def dim_of(index: sp.Expr) -> sp.Expr:
    """The dimension an index ranges over (1 for the literal index 0)."""
    if isinstance(index, sp.Integer):
        return sp.Integer(1)
    return _DIM[index]


def is_index(sym: sp.Basic) -> bool:
    """True for an index symbol made by :func:`new_index` or :func:`named_index`."""
    return isinstance(sym, sp.Symbol) and sym in _DIM


def indices_in(expr: sp.Basic) -> set[sp.Symbol]:
    """The free index symbols of an expression (bound summation indices excluded)."""
    return {s for s in expr.free_symbols if s in _DIM}
