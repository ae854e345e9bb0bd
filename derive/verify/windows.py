"""Sliding windows in backward functions: convolution and pooling layers.

What a backward function of a ``conv2d``/``avgpool2d`` layer needs from the spec (cs231n's
``conv_param`` and ``pool_param`` dicts, a gradient accumulated into a zero-padded array
``dx_pad``), and the named mistakes of such functions.

The truth is always the derivation's gradient.  A diagnosis is a hypothesis about a
mistake: the line's value is compared, numerically, with the same layer's adjoint computed
with one thing changed (the kernel not flipped, the stride ignored, the padding not
cropped, the average's ``1/size²`` left out).  Each model is first checked against the
derived gradient with nothing changed; a model that does not reproduce the derivation
names nothing.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from .. import ir

PAD_SUFFIXES = ("_padded", "_pad", "pad")


@dataclass(frozen=True)
class Window:
    """One ``conv2d`` or pooling layer of the spec whose input is a named quantity."""

    kind: str  # "conv", "avg" or "max"
    x: str  # the input's name
    kernel: str | None  # the kernels' name (conv)
    out: str | None  # the quantity whose adjoint is the layer output's (None: not found)
    stride: int
    pad: int
    size: tuple[int, int] | None  # the pooling window


def windows(net: ir.Network) -> list[Window]:
    """The conv/pool layers of ``net`` whose input (and kernels) are named quantities."""
    out = []
    for eq in net.equations:
        for node, direct in _summands(eq.expr, True):
            w = _window(node, eq.name if direct else None)
            if w is not None:
                out.append(w)
    return out


def _summands(node: ir.Node, direct: bool):
    """Every node under ``node``, with whether its adjoint is the whole expression's (it is
    reached through additions only: ``conv2d(x, w) + b[:, None, None]``)."""
    yield node, direct
    op = node.op if isinstance(node, ir.Binary) else None
    for i, child in enumerate(node.children()):
        yield from _summands(child, direct and (op == "+" or (op == "-" and i == 0)))


def _window(node: ir.Node, out: str | None) -> Window | None:
    if isinstance(node, ir.Conv2d) and isinstance(node.a, ir.Ref) and isinstance(node.b, ir.Ref):
        return Window("conv", node.a.name, node.b.name, out, node.stride, node.padding, None)
    if isinstance(node, ir.Pool2d) and isinstance(node.a, ir.Ref):
        return Window(node.op, node.a.name, None, out, node.stride, 0, (node.size, node.size))
    return None


def params(net: ir.Network, name: str):
    """cs231n's ``conv_param``/``pool_param`` dicts, or the layer's ``stride``/``pad``, when
    the spec has one layer of that kind (None: not a window's parameter)."""
    convs = [w for w in windows(net) if w.kind == "conv"]
    pools = [w for w in windows(net) if w.kind != "conv"]
    if name == "conv_param" and len(convs) == 1:
        return {"stride": convs[0].stride, "pad": convs[0].pad}
    if name == "pool_param" and len(pools) == 1:
        w = pools[0]
        size = w.size or (1, 1)
        return {"pool_height": size[0], "pool_width": size[1], "stride": w.stride}
    layers = convs + pools
    if len(layers) == 1:
        w = layers[0]
        known = {"stride": w.stride, "pad": w.pad, "padding": w.pad}
        if w.size is not None:
            known |= {"pool_height": w.size[0], "pool_width": w.size[1], "pool_size": w.size[0]}
        return known.get(name)
    return None


def padded_name(name: str) -> str | None:
    """``dx_pad`` / ``dx_padded`` / ``dxpad``: the name without its padding suffix."""
    for suffix in PAD_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix) + 1:
            return name[: -len(suffix)]
    return None


def padding_of(net: ir.Network, q: str) -> int:
    """The zero padding of the convolution whose input is ``q`` (0 if none)."""
    return next((w.pad for w in windows(net) if w.kind == "conv" and w.x == q), 0)


def crop(value, pad: int, shape) -> np.ndarray | None:
    """The middle of a zero-padded array: ``value[..., p:-p, p:-p]`` in ``shape``."""
    value = np.asarray(value)
    want = tuple(shape)
    if pad <= 0 or value.ndim != len(want) or value.ndim < 2:
        return None
    if value.shape[:-2] + tuple(n - 2 * pad for n in value.shape[-2:]) != want:
        return None
    return value[..., pad:-pad, pad:-pad]


# -- mistake models (numeric): the adjoints of one layer, with one thing changed -------------
def scatter(d, k, stride: int, pad: int, shape, offset: int | None = None):
    """The input gradient of a convolution: each δ[n, f, i, j] times K[f] added into the
    zero-padded input at its window (stride ``stride``), then cropped at ``offset``."""
    n, c, h, w = shape
    f, _, kh, kw = k.shape
    ho, wo = d.shape[2:]
    rows = max(h + 2 * pad, stride * (ho - 1) + kh)
    out = np.zeros((n, c, rows, max(w + 2 * pad, stride * (wo - 1) + kw)))
    for i, j in itertools.product(range(ho), range(wo)):
        out[:, :, stride * i : stride * i + kh, stride * j : stride * j + kw] += np.einsum(
            "nf,fcpq->ncpq", d[:, :, i, j], k
        )
    o = pad if offset is None else offset
    return out[:, :, o : o + h, o : o + w]


def gather(x, d, stride: int, pad: int, kshape):
    """The kernel gradient of a convolution: δ correlated with the zero-padded input."""
    _, _, kh, kw = kshape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    ho, wo = d.shape[2:]
    out = np.zeros(kshape)
    for p, q in itertools.product(range(kh), range(kw)):
        i_end, j_end = p + stride * (ho - 1) + 1, q + stride * (wo - 1) + 1
        rows = xp[:, :, p:i_end:stride, q:j_end:stride]
        if rows.shape[2:] != (ho, wo):
            return None
        out[:, :, p, q] = np.einsum("nfij,ncij->fc", d, rows)
    return out


def route(d, size, stride: int, shape):
    """The input gradient of an average pool: δ / size² spread over each window."""
    out = np.zeros(shape)
    ho, wo = d.shape[2:]
    for i, j in itertools.product(range(ho), range(wo)):
        out[:, :, stride * i : stride * i + size[0], stride * j : stride * j + size[1]] += d[
            :, :, i, j, None, None
        ] / (size[0] * size[1])
    return out


def max_route(d, x, size, stride: int, place: int | None = None, swap: bool = False):
    """The input gradient of a max pool: δ[n, c, i, j] to the first maximum of window
    (i, j) (row-major, as np.argmax), placed at stride ``place`` (the stride by default),
    with the window's row and column swapped when ``swap``."""
    out = np.zeros(x.shape)
    ho, wo = d.shape[2:]
    at = stride if place is None else place
    for n, c, i, j in itertools.product(range(x.shape[0]), range(x.shape[1]), range(ho), range(wo)):
        window = x[n, c, stride * i : stride * i + size[0], stride * j : stride * j + size[1]]
        r, s = np.unravel_index(int(np.argmax(window)), window.shape)
        r, s = (s, r) if swap else (r, s)
        if at * i + r < out.shape[2] and at * j + s < out.shape[3]:
            out[n, c, at * i + r, at * j + s] += d[n, c, i, j]
    return out


# -- named mistakes -----------------------------------------------------------------------------
def diagnosis(check, q, got, want, exact_wrong=None) -> str | None:
    """A named mistake of a convolution's or a pool's input or kernel gradient: the line's
    value (numeric, given true inputs) equals that layer's adjoint with one thing changed."""
    for text, value in _hypotheses(check, q, want):
        if value is not None and value.shape == got.shape and _close(got, value):
            return text
    return None


def shape_diagnosis(check, q, got, want) -> str | None:
    """A line of the wrong shape: the zero-padded input's gradient, not cropped."""
    pad = padding_of(check.net, q)
    middle = crop(got, pad, want.shape)
    if middle is not None and _close(middle, want):
        return (
            f"the padding is not cropped: the line holds the gradient of the zero-padded "
            f"input, shape {got.shape}; ∂{check.net.loss}/∂{q} is its middle "
            f"[:, :, {pad}:-{pad}, {pad}:-{pad}]"
        )
    return None


def _close(a, b) -> bool:
    return bool(np.allclose(a, b, rtol=1e-7, atol=1e-9))


def _hypotheses(check, q, want):
    """(diagnosis, value) for each mistake model of the layers ``q`` is the input or the
    kernels of, once the unchanged model reproduces the derived gradient ``want``."""
    ev = check.numeric
    for w in windows(check.net):
        if w.out is None or f"delta_{w.out}" not in ev.env or q not in (w.x, w.kernel):
            continue
        d = np.asarray(ev.truth(w.out), float)
        x = np.asarray(ev.np_env[w.x], float)
        if w.kind == "conv":
            k = np.asarray(ev.np_env[w.kernel], float)
            models = _conv_input(d, k, w, x.shape) if q == w.x else _conv_kernel(x, d, w, k.shape)
        elif w.kind == "avg" and w.size is not None:
            models = _avg_input(d, w, x.shape)
        elif w.kind == "max" and w.size is not None:
            models = _max_input(d, x, w)
        else:
            continue
        base, *changed = models
        if base is not None and base.shape == want.shape and _close(base, want):
            yield from changed


def _conv_input(d, k, w: Window, shape):
    s, p = w.stride, w.pad
    yield scatter(d, k, s, p, shape)
    yield (
        "the kernel is not flipped: the input gradient is the full convolution of δ with "
        "rot180(K); the line correlates δ with K itself",
        scatter(d, k[:, :, ::-1, ::-1], s, p, shape),
    )
    if s > 1:
        yield (
            f"the stride is ignored in the input gradient: δ[n, f, i, j] goes to the window "
            f"at ({s}i, {s}j) (stride {s}), the line puts it at (i, j)",
            scatter(d, k, 1, p, shape),
        )
    if p > 0:
        yield (
            f"the padding is cropped at the wrong place: the input's gradient is "
            f"[{p}:{p}+H, {p}:{p}+W] of the padded one, the line takes [0:H, 0:W]",
            scatter(d, k, s, p, shape, offset=0),
        )


def _conv_kernel(x, d, w: Window, kshape):
    s, p = w.stride, w.pad
    base = gather(x, d, s, p, kshape)
    yield base
    if base is not None:
        yield (
            "the kernel gradient is flipped (rot180): ∂L/∂K is the correlation of the "
            "(padded) input with δ, with no flip",
            base[:, :, ::-1, ::-1],
        )
    if s > 1:
        yield (
            f"the stride is ignored in the kernel gradient: window (i, j) of the input starts "
            f"at ({s}i, {s}j) (stride {s}), the line reads it at (i, j)",
            gather(x, d, 1, p, kshape),
        )


def _avg_input(d, w: Window, shape):
    size = w.size or (1, 1)
    yield route(d, size, w.stride, shape)
    n = size[0] * size[1]
    yield (
        f"the average's 1/{n} is missing: each entry of a {size[0]}×{size[1]} window gets "
        f"δ/{n}, the line gives it δ",
        route(d, size, w.stride, shape) * n,
    )
    if w.stride > 1:
        yield (
            f"the stride is ignored in the input gradient: δ[n, c, i, j] goes to the window "
            f"at ({w.stride}i, {w.stride}j) (stride {w.stride}), the line puts it at (i, j)",
            route(d, size, 1, shape),
        )


def _max_input(d, x, w: Window):
    size = w.size or (1, 1)
    yield max_route(d, x, size, w.stride)
    yield (
        "the gradient is routed to every entry of its window: a max pool sends each δ only "
        "to its window's maximum (the argmax), the others get 0",
        route(d, size, w.stride, x.shape) * (size[0] * size[1]),
    )
    if w.stride > 1:
        yield (
            f"the stride is ignored in the input gradient: window (i, j)'s maximum is at "
            f"({w.stride}i + r, {w.stride}j + s), the line puts δ at (i + r, j + s)",
            max_route(d, x, size, w.stride, place=1),
        )
    yield (
        "the argmax is unravelled with row and column swapped: np.unravel_index(k, (ph, "
        "pw)) gives (k // pw, k % pw)",
        max_route(d, x, size, w.stride, swap=True),
    )
