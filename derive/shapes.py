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
    k = sb[0] if len(sb) == 1 else sb[-2]
    if sa[-1] != k:
        raise ShapeError(
            f"shapes {fmt_shape(sa)} and {fmt_shape(sb)} do not fit for @: {sa[-1]} != {k}"
        )
    if len(sa) <= 2 and len(sb) <= 2:
        return tuple(sa[:-1]) + tuple(sb[1:])
    # batched: the leading axes broadcast, the last two multiply (NumPy's matmul)
    if len(sb) == 1:
        return tuple(sa[:-1])
    if len(sa) == 1:
        return tuple(sb[:-2]) + tuple(sb[-1:])
    return broadcast_shape(sa[:-2], sb[:-2]) + (sa[-2], sb[-1])


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


def product(shape: ir.Shape) -> sp.Expr:
    """The number of entries of an array of ``shape``."""
    return sp.Mul(*shape) if shape else sp.Integer(1)


def reshape_chunks(src: ir.Shape, dst: ir.Shape) -> list[tuple[int, int, int, int]] | None:
    """How ``reshape`` maps axes: runs ``(src_from, src_to, dst_from, dst_to)`` of equal size.

    Each run is split (one source axis, several result axes) or merged (the
    other way); None when a run would need both (a general reshuffle), or
    the sizes do not match.
    """
    out, i, j = [], 0, 0
    while i < len(src) or j < len(dst):
        if i < len(src) and j < len(dst) and src[i] == dst[j]:
            out.append((i, i + 1, j, j + 1))
            i, j = i + 1, j + 1
            continue
        si, sj = i, j
        a = src[i] if i < len(src) else sp.Integer(1)
        b = dst[j] if j < len(dst) else sp.Integer(1)
        i, j = i + (i < len(src)), j + (j < len(dst))
        while sp.simplify(a - b) != 0:
            grow_a = j >= len(dst) or (i < len(src) and _smaller(a, b))
            if grow_a and i < len(src):
                a, i = a * src[i], i + 1
            elif j < len(dst):
                b, j = b * dst[j], j + 1
            else:
                return None
        if i - si > 1 and j - sj > 1:
            return None
        out.append((si, i, sj, j))
    return out


def _smaller(a: sp.Expr, b: sp.Expr) -> bool:
    """Whether ``a`` divides ``b`` as products of dims (so ``a`` grows to meet ``b``)."""
    q = sp.cancel(b / a)
    return q != 1 and sp.fraction(q)[1] == 1
