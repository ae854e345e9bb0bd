"""The kernels a generated module embeds: each rule's own, plus the codegen-only ones.

The kernel of a registered function is its rule's ``kernel``
(:mod:`derive.kernels`, read through :data:`derive.rules.RULES`); there is no
second table here.  The code generator copies a kernel's source into the
module, so generated code imports nothing but NumPy.  The kernels of our own
are printing rewrites, not functions a spec may call: ``log_softmax``, the
stable form :func:`codegen.printer.stabilise` rewrites ``log(softmax(z))``
into, and ``softmax_and_log``, both from one exp where a loss reads both;
``add_labels``, which ``p − onehot(y)`` is printed as (a scatter into
a copy, never a one-hot matrix); ``scatter_add``, the adjoint of a gather
``C[ix]`` (``np.add.at``); and ``onehot``, for the rare form that needs
the one-hot matrix whole.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import numpy as np

from derive.forms import RULES, SOFTMAX


def log_softmax(z, axis=-1, out=None, probs=None, shifted=False):
    """z - logsumexp(z) along ``axis``: finite even where softmax underflows to 0.
    With ``probs`` (a buffer), the softmax is written there too, from the same exp;
    ``shifted``: z's maximum along ``axis`` is 0 already (z = x - max(x))."""
    if not shifted:
        z = np.subtract(z, z.max(axis=axis, keepdims=True), out=out)
    e = np.exp(z, out=probs)
    total = e.sum(axis=axis, keepdims=True)
    out = np.subtract(z, np.log(total), out=out)
    if probs is not None:
        probs /= total
    return out


def softmax_and_log(z, axis=-1):
    """softmax(z) and log_softmax(z) along ``axis`` from one exp (a loss reading both).

    p = e / Σe and log p = z − max − log Σe with e = exp(z − max): Σe ≥ 1, so the
    log is finite even where p underflows to 0.
    """
    shifted = z - z.max(axis=axis, keepdims=True)
    p = np.exp(shifted)
    total = p.sum(axis=axis, keepdims=True)
    p /= total
    shifted -= np.log(total)
    return p, shifted


def add_labels(x, labels, c, out=None):
    """x + c onehot(labels): c added to entry labels[b] of each row b (no one-hot matrix)."""
    if out is None:
        out = np.array(x, copy=True)
    elif out is not x:
        np.copyto(out, x)
    out[np.arange(len(labels)), labels] += c
    return out


def onehot(labels, n, out=None):
    """The one-hot matrix of integer labels (only where a form needs it whole)."""
    if out is None:
        out = np.zeros((len(labels), n))
    else:
        out.fill(0)
    out[np.arange(len(labels)), labels] = 1
    return out


def scatter_add(x, index, n, out=None):
    """Row ``b`` of ``x`` added into row ``index[b]`` of an ``n``-row zero table (np.add.at).

    The adjoint of the gather ``table[index]``: repeated indices accumulate, and
    no one-hot matrix is built.
    """
    if out is None:
        out = np.zeros((n, *x.shape[np.ndim(index) :]), dtype=x.dtype)
    else:
        out.fill(0)
    np.add.at(out, index, x)
    return out


KERNELS: dict[str, Callable[..., np.ndarray]] = {
    **{name: rule.kernel for name, rule in RULES.items()},
    SOFTMAX.name: SOFTMAX.kernel,
    "log_softmax": log_softmax,
    "softmax_and_log": softmax_and_log,
    "add_labels": add_labels,
    "onehot": onehot,
    "scatter_add": scatter_add,
}
"""Every kernel a generated module may embed, by the name it calls: read off the rules."""


def kernel(name: str) -> Callable[..., np.ndarray]:
    """The kernel generated code calls ``name``: a rule's, softmax's or a codegen-only one."""
    return KERNELS[name]


def kernel_source(name: str) -> str:
    """The source of :func:`kernel` ``(name)``, as a generated module embeds it."""
    return inspect.getsource(kernel(name))
