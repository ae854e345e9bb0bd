"""Index arithmetic for layout: digits of a flat index, ranges, and summing their deltas away.

Reshapes, slices and concatenation move entries between positions, so in
element-wise forms an array may be indexed by more than a bare index:

* ``Digit(m, s, n)``: digit ``⌊m / s⌋ mod n`` of a flat index ``m`` (a
  reshape that merges axes reads ``x[b, Digit(m, D, T), Digit(m, 1, D)]``);
* ``D t + d``: a flat index from digits (a reshape that splits an axis);
* ``j + c``: a shifted index (a slice starting at ``c``);
* ``InRange(e, lo, hi)``: 1 where ``lo ≤ e < hi``, else 0 (which part of a
  concatenation an entry comes from; where a slice's adjoint is non-zero).

:func:`solve_delta` sums a Kronecker delta between such indices away, the
way :func:`~derive.elementwise.contract` does for bare ones, and says where
the result holds (an ``InRange`` factor, dropped when it always does).
"""

from __future__ import annotations

import sympy as sp

from . import slide
from .indices import dim_of, indices_in, is_index
from .slide import Slide


def _provable(e: sp.Expr) -> bool:
    """Whether ``e ≥ 0`` follows from dims being positive integers."""
    e = sp.expand(e)
    return bool(e.is_nonnegative) or bool(sp.simplify(e).is_nonnegative)


def value_range(e: sp.Expr) -> tuple[sp.Expr, sp.Expr] | None:
    """``(lo, hi)`` with ``lo ≤ e < hi`` for every value of its indices (None: unknown)."""
    if e.is_Integer:
        return e, e + 1
    if is_index(e):
        return sp.Integer(0), dim_of(e)
    if isinstance(e, Digit):
        return sp.Integer(0), e.args[2]
    e = unwrap(e)
    idx = indices_in(e)
    if len(idx) == 1:
        (j,) = idx
        c = sp.expand(e - j)
        if not indices_in(c):
            return c, dim_of(j) + c
    return None


class Window(sp.Function):
    """``Window(j, c) = j + c`` while ``j`` is a bare index: an entry of a longer or
    shorter axis (a slice, a part of a concatenation), never mistaken for the whole axis.

    With anything but a bare index as ``j`` it is the plain sum.
    """

    is_integer = True

    @classmethod
    def eval(cls, j, c):
        if not is_index(j):
            return j + c
        return None


def unwrap(e: sp.Expr) -> sp.Expr:
    """``e`` with every ``Window(j, c)`` written as ``j + c``."""
    return e.replace(lambda x: isinstance(x, Window), lambda x: x.args[0] + x.args[1])


def window(value: sp.Expr, extent: sp.Expr) -> sp.Expr:
    """An index expression for an axis of ``extent``: a bare index of another extent, or
    one shifted, is kept as a :class:`Window` (printers and recovery see it is not the axis)."""
    idx = indices_in(value)
    if len(idx) != 1 or value.has(Digit):
        return value
    (j,) = idx
    shift = sp.expand(value - j)
    if indices_in(shift) or (shift == 0 and sp.simplify(dim_of(j) - extent) == 0):
        return value
    return Window(j, shift)


class Digit(sp.Function):
    """``Digit(m, s, n) = ⌊m / s⌋ mod n``: one digit of a flat index (C order)."""

    is_integer = True

    @classmethod
    def eval(cls, m, s, n):
        if n == 1:
            return sp.Integer(0)
        if m.is_Integer and s.is_Integer and n.is_Integer:
            return sp.Integer((int(m) // int(s)) % int(n))
        # a digit of a flat index built from digits: that digit's index
        idx = indices_in(m)
        if idx and not m.has(Digit):
            e = sp.expand(m)
            coeffs = {k: e.coeff(k) for k in idx}
            if sp.expand(e - sum(c * k for k, c in coeffs.items())) == 0:
                order = _radix(coeffs, list(idx))
                for k, stride in order or ():
                    if sp.simplify(stride - s) == 0 and sp.simplify(dim_of(k) - n) == 0:
                        return k
        return None


class InRange(sp.Function):
    """``InRange(e, lo, hi)``: 1 where ``lo ≤ e < hi``, else 0."""

    is_integer = True

    @classmethod
    def eval(cls, e, lo, hi):
        r = value_range(e)
        if r is None:
            return None
        a, b = r
        if _provable(a - lo) and _provable(hi - b):
            return sp.Integer(1)
        if _provable(lo - b) or _provable(a - hi):  # e < b ≤ lo, or hi ≤ a ≤ e
            return sp.Integer(0)
        return None


def _radix(terms: dict, summed: list) -> list | None:
    """Summed indices with strides forming a mixed radix (stride 1, then × extent), or None."""
    if not terms or any(k not in summed for k in terms):
        return None
    stride, out = sp.Integer(1), []
    remaining = dict(terms)
    while remaining:
        k = next((k for k, s in remaining.items() if sp.simplify(s - stride) == 0), None)
        if k is None:
            return None
        out.append((k, stride))
        stride = stride * dim_of(k)
        del remaining[k]
    return out


def solve_delta(delta: sp.KroneckerDelta, factor: sp.Expr, summed: list):
    """Sum ``delta`` away over one of ``summed``: ``(substitution, deltas used, condition)``.

    None when the delta is not of a form handled here (the caller decides).
    """
    x, y = delta.args
    if x.has(Slide) or y.has(Slide):  # a window position: its own rules
        fixed = slide.solve(delta, summed)
        if fixed is None:
            return None
        k, value = fixed
        return {k: value}, [delta], InRange(value, 0, dim_of(k)), []
    # digits of one summed flat index, against free indices: m = Σ y_i s_i
    for side in (x, y):
        if isinstance(side, Digit) and side.args[0] in summed:
            return _undigit(side.args[0], factor, summed)
    e = sp.expand(unwrap(x - y))
    mine = [k for k in indices_in(e) if k in summed]
    if not mine:
        return None
    if len(mine) > 1:  # a flat index from digits: each digit of the free side
        coeffs = {k: e.coeff(k) for k in mine}
        sign = 1 if all(c.could_extract_minus_sign() is False for c in coeffs.values()) else -1
        coeffs = {k: sign * c for k, c in coeffs.items()}
        rest = sp.expand(-(sign * e - sum(c * k for k, c in coeffs.items())))
        order = _radix(coeffs, summed)
        if order is None or indices_in(rest) & set(summed):
            return None
        total = sp.Mul(*[dim_of(k) for k, _ in order])
        subs = {k: Digit(rest, s, dim_of(k)) for k, s in order}
        return subs, [delta], InRange(rest, 0, total), []
    (k,) = mine
    c = e.coeff(k)
    if c not in (1, -1) or indices_in(sp.expand(e - c * k)) & set(summed):
        return None
    value = window(sp.expand(-(e - c * k) / c), dim_of(k))
    return {k: value}, [delta], InRange(value, 0, dim_of(k)), []


def _undigit(m, factor: sp.Expr, summed: list):
    """``Σ_m Π_i δ(Digit(m, s_i, n_i), y_i) g(m) = Σ_rest g(Σ_i y_i s_i + …)``.

    The digits of ``m`` fixed by a delta take its other side; a digit no delta
    fixes (``m``'s other digits read elsewhere in ``factor``) becomes a fresh
    summed index over its size.
    """
    from .indices import new_index

    sizes = {d.args[1]: d.args[2] for d in factor.atoms(Digit) if d.args[0] == m}
    fixed = {}
    for f in sp.Mul.make_args(factor):
        base = f.base if isinstance(f, sp.Pow) else f
        if not isinstance(base, sp.KroneckerDelta):
            continue
        for side, other in (base.args, base.args[::-1]):
            if isinstance(side, Digit) and side.args[0] == m and not other.has(m):
                fixed[side.args[1]] = (other, f)
    stride, value, used, cond, fresh = sp.Integer(1), sp.Integer(0), [], sp.Integer(1), []
    while True:
        key = next((s for s in sizes if sp.simplify(s - stride) == 0), None)
        if key is None:
            break
        n = sizes.pop(key)
        if key in fixed:
            other, f = fixed.pop(key)
            used.append(f)
            cond *= InRange(other, 0, n)
        else:
            other = new_index(n, "k")
            fresh.append(other)
        value += other * stride
        stride *= n
    if fixed or sizes or sp.simplify(stride - dim_of(m)) != 0 or not used:
        return None
    return {m: value}, used, cond, [k for k in fresh if is_index(k)]
