"""Convolutions in math notation, read off the plan of an einsum form.

A form whose plan is one ``einsum`` of a sliding-window view of one array
with a plain array is a convolution; which one is read from the subscripts:

* ``x ⋆ K`` — a cross-correlation (the forward convolution): the window axes
  meet the kernel's spatial axes, the channel axis is summed;
* ``x ⋆ δz`` — the kernel gradient: the input's windows correlated with the
  output delta, summed over the batch and the output positions;
* ``pad(δz) ⋆ rot180(K)`` — the input gradient at stride 1: the full
  convolution of the delta with the flipped kernel (the windows run backwards);
* ``convᵀ₂(δz, K)`` — the input gradient of a strided convolution (the kernel's
  windows, flipped, against the delta: a transposed convolution).

A stride ``s ≠ 1`` shows as ``⋆ₛ``, zero padding as ``pad₁(x)``.  Anything
else returns None and is printed in index notation.
"""

from __future__ import annotations

_SUB = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")


def _chain(p) -> tuple[str, int, int, bool, int] | None:
    """A sliding-window view: ``(array, stride, window stride, flipped, padding)``, or None."""
    stride, wstride, flipped, padding = 1, 1, False, 0
    seen = 0
    while p[0] in ("slide", "window"):
        if p[0] == "slide":
            _, inner, _, a, b, _ = p
            seen += 1
            stride, wstride = abs(a), abs(b)
            flipped = flipped or a < 0 or b < 0
        else:
            start = p[3]
            if start.is_Integer and start < 0:
                padding = max(padding, int(-start))
            elif not start.is_Integer:
                padding = -1  # symbolic
        p = p[1]
    if p[0] != "arr" or seen != 2:
        return None
    return p[1], stride, wstride, flipped, padding


def notation(
    e, name, star: str = "⋆", sub=None, flip=None, pad: str = "pad", convt: str = "convᵀ"
) -> str | None:
    """The convolution an einsum form is, in math notation (``name`` prints an array)."""
    from .contraction import plan

    sub = sub or (lambda s: str(s).translate(_SUB))
    flip = flip or (lambda x: f"rot180({x})")
    p = plan(e)
    if p[0] != "einsum" or len(p[3]) != 2:
        return None
    subs, out, ops = p[1], p[2], p[3]
    n = next((i for i, op in enumerate(ops) if op[0] in ("slide", "window")), None)
    if n is None or ops[1 - n][0] != "arr" or len(subs[n]) != 6 or len(subs[1 - n]) != 4:
        return None
    chain = _chain(ops[n])
    if chain is None:
        return None
    base, stride, wstride, flipped, padding = chain
    s, o = subs[n], subs[1 - n]
    a, k = name(base), name(ops[1 - n][1])
    op = star + (sub(stride) if stride != 1 else "")
    padded = a if padding == 0 else f"{pad}{sub(padding) if padding > 0 else ''}({a})"
    shared = set(s[:2]) & set(o[:2])  # the channel summed: x's with K's, δz's with K's
    if s[4:] == o[2:] and len(shared) == 1 and not (shared | set(s[4:])) & set(out):
        if wstride != 1:  # the kernel's windows, the delta strided: a transposed conv
            return f"{convt}{sub(wstride)}({k}, {a})" if flipped else None
        if flipped:
            return f"{padded} {op} {flip(k)}" if stride == 1 else None
        return f"{padded} {op} {k}"
    if s[2:4] == o[2:] and s[0] == o[0] and s[4:] == out[2:] and not flipped:
        return f"{padded} {op} {k}"
    return None
