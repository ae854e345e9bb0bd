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

A stride ``s ≠ 1`` shows as ``⋆ₛ``, zero padding as ``pad₁(x)``.

Max-pooling reads the same way off its plans: ``argmax₂×₂(h)`` (the hidden
window argmax ``A``), ``maxpool₂×₂(h)`` (the entry at ``A`` of each window)
and ``maxunpool₂×₂(δa, A)`` (its adjoint: each window's delta routed to its
argmax, zero elsewhere, as PyTorch's ``max_unpool2d``).  Anything else
returns None and is printed in index notation.
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
    pooled = pool_notation(p, name, sub, latex=star != "⋆")
    if pooled is not None:
        return pooled
    routed = _routed_transpose(p, name, sub, convt)
    if routed is not None:
        return routed
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


def _windows_of(p) -> tuple[str, int, int] | None:
    """A view of an array's ``k × k`` windows at stride ``s``: ``(array, k, s)``, or None."""
    chain = _chain(p)
    if chain is None:
        return None
    base, stride, wstride, flipped, padding = chain
    if flipped or padding or wstride != 1:
        return None
    width = p[5]
    return (base, int(width), stride) if getattr(width, "is_Integer", False) else None


def pool_notation(p, name, sub, latex: bool) -> str | None:
    """``argmax₂×₂(h)``, ``maxpool₂×₂(h)`` or ``maxunpool₂×₂(δa, A)`` for a max-pool's
    plans (``₃×₃,₂`` when the stride differs from the size), else None."""

    def op(word: str, k: int, s: int, args: str) -> str:
        size = f"{k}\\times {k}" if latex else f"{k}×{k}"
        low = sub(size if s == k else f"{size},{s}")
        head = rf"\operatorname{{{word}}}" if latex else word
        return rf"{head}{low}\left({args}\right)" if latex else f"{head}{low}({args})"

    if p[0] == "argmax":
        w = _windows_of(p[1])
        return None if w is None else op("argmax", w[1], w[2], name(w[0]))
    if p[0] == "poolpick" and p[1][0] == "arr":  # the entry at each window's argmax
        return op("maxpool", p[3], p[4], name(p[1][1]))
    if p[0] in ("einsum", "reshape"):  # the routing as einsum, or as a reshape (s = k)
        routes = [x for x in p[3] if x[0] == "route"] if p[0] == "einsum" else []
        prod = [x for x in p[3] if x[0] != "route"] if p[0] == "einsum" else [p[1]]
        if len(prod) != 1 or (p[0] == "einsum" and len(routes) != 2):
            return None
        prod0 = prod[0][1] if prod[0][0] == "perm" else prod[0]
        if prod0[0] != "op" or prod0[1] != "*" or len(prod0[2]) != 2:
            return None
        hot = next((y for y in prod0[2] if y[0] == "poolhot"), None)
        delta = next((y for y in prod0[2] if y is not hot), None)
        while delta is not None and delta[0] in ("expand", "perm"):
            delta = delta[1]
        if hot is None or delta is None or delta[0] != "arr":
            return None
        k = hot[2]
        s = routes[0][4] if routes else k
        return op("maxunpool", k, s, f"{name(delta[1])}, {name(hot[1])}")
    return None


def _routed_transpose(p, name, sub, convt: str) -> str | None:
    """``convᵀ₂(δz, K)``: the input gradient of a strided convolution as an einsum of the
    kernel, the delta and the two 0/1 routings ``[m = s i + t]`` (no window of the kernel)."""
    if p[0] != "einsum" or len(p[3]) != 4:
        return None
    subs, ops = p[1], p[3]
    routes = [n for n, op in enumerate(ops) if op[0] == "route"]
    arrays = [n for n, op in enumerate(ops) if op[0] == "arr" and op[2] == 4]
    if len(routes) != 2 or len(arrays) != 2 or ops[routes[0]][4] != ops[routes[1]][4]:
        return None
    offsets = {subs[n][2] for n in routes}
    kernel = next((n for n in arrays if offsets <= set(subs[n][2:])), None)
    if kernel is None:
        return None
    delta = next(n for n in arrays if n != kernel)
    return f"{convt}{sub(ops[routes[0]][4])}({name(ops[delta][1])}, {name(ops[kernel][1])})"
