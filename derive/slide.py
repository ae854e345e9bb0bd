"""Sliding-window indices: the entry ``x[s i + p + c]`` a convolution or a pooling reads.

``Slide(i, p, s, c) = s i + p + c`` while ``i`` (an output position) and ``p``
(an offset in the window) are bare indices; it marks the sum as a window
position, so that :func:`solve` sums the Kronecker delta ``δ(m, s i + p + c)``
that differentiation produces the way the adjoint of a convolution needs:

* the offset ``p`` goes, ``p = m − s i − c`` under ``InRange(…, 0, window)``
  (the input gradient of a strided convolution, pooling routing), or
* for stride 1, when the output extent is the larger one, the output
  position goes, ``i = m − p − c`` under ``InRange(…, 0, outputs)``: the full
  convolution of the delta with the flipped kernel, a window per offset.
"""

from __future__ import annotations

import sympy as sp

from .indices import as_expr, dim_of, indices_in, is_index


class Slide(sp.Function):
    """``Slide(i, p, s, c) = s i + p + c``: a window position (kept while both are indices)."""

    is_integer = True

    @classmethod
    def eval(cls, i, p, s, c):
        if not (is_index(i) and is_index(p)):
            return s * i + p + c
        return None


def plain(e: sp.Expr) -> sp.Expr:
    """``e`` with every ``Slide`` written as its sum."""
    return e.replace(
        lambda x: isinstance(x, Slide), lambda x: x.args[2] * x.args[0] + x.args[1] + x.args[3]
    )


def typical_size(d: sp.Expr) -> float:
    """A size at typical dims (64), to compare which of two extents is larger."""
    d = as_expr(d)  # an engine-built extent, never text
    return float(d.xreplace({s: 64 for s in d.free_symbols}))


def solve(delta: sp.KroneckerDelta, summed: list) -> tuple[sp.Symbol, sp.Expr] | None:
    """Which summed index ``δ(m, Slide(i, p, s, c))`` fixes, and to what: ``(k, value)``
    (``value`` holds where ``0 ≤ value < dim(k)``), or None."""
    x, y = delta.args
    slide, other = (x, y) if isinstance(x, Slide) else (y, x)
    if not isinstance(slide, Slide) or indices_in(other) & set(summed):
        return None
    i, p, s, c = slide.args
    rid_i = (
        i in summed
        and s == 1
        and (p not in summed or typical_size(dim_of(i)) > typical_size(dim_of(p)))
    )
    if rid_i:
        return i, sp.expand(other - p - c)
    if p in summed:
        return p, sp.expand(other - s * i - c)
    return None
