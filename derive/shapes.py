"""Shapes: NumPy's rules for ``@``, broadcasting and reductions, on symbolic shapes.

Pure functions over tuples of SymPy dimensions; each returns the result's
shape or raises :class:`ShapeError` with the sentence a user reads (the
readers add file, line and column).
"""

from __future__ import annotations

import sympy as sp

from . import ir


class ShapeError(ValueError):
    """Two shapes that do not fit; the message says how."""


def fmt_shape(shape: ir.Shape) -> str:
    """``(B, n)``, ``(n,)`` or ``() (a scalar)``: a shape as error messages show it."""
    if not shape:
        return "() (a scalar)"
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def matmul_shape(sa: ir.Shape, sb: ir.Shape) -> ir.Shape:
    """The shape of ``a @ b`` (1-D and 2-D operands, as NumPy)."""
    if not sa or not sb:
        raise ShapeError(
            "@ needs arrays on both sides, got a scalar "
            f"(shapes {fmt_shape(sa)} and {fmt_shape(sb)})"
        )
    if sa[-1] != sb[0]:
        raise ShapeError(
            f"shapes {fmt_shape(sa)} and {fmt_shape(sb)} do not fit for @: {sa[-1]} != {sb[0]}"
        )
    return tuple(sa[:-1]) + tuple(sb[1:])


def broadcast_shape(sa: ir.Shape, sb: ir.Shape) -> ir.Shape:
    """The shape of an element-wise operation under NumPy broadcasting."""
    out = []
    for i in range(1, max(len(sa), len(sb)) + 1):
        da = sa[-i] if i <= len(sa) else sp.Integer(1)
        db = sb[-i] if i <= len(sb) else sp.Integer(1)
        if da == db or db == 1:
            out.append(da)
        elif da == 1:
            out.append(db)
        else:
            raise ShapeError(
                f"shapes {fmt_shape(sa)} and {fmt_shape(sb)} do not broadcast: {da} != {db}"
            )
    return tuple(reversed(out))


def reduced_shape(shape: ir.Shape, axis: int | None, keepdims: bool) -> ir.Shape:
    """The shape of ``sum``/``mean`` over ``axis`` (``None``: every axis)."""
    if axis is None:
        return tuple(sp.Integer(1) for _ in shape) if keepdims else ()
    if keepdims:
        return tuple(sp.Integer(1) if i == axis else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i != axis)
