"""The kernels a generated module embeds: each rule's own, plus ``log_softmax``.

The kernel of a registered function is its rule's ``kernel``
(:mod:`derive.kernels`, read through :data:`derive.rules.RULES`); there is no
second table here.  The code generator copies a kernel's source into the
module, so generated code imports nothing but NumPy.  The one kernel of our
own is ``log_softmax``, the stable form :func:`codegen.printer.stabilise`
rewrites ``log(softmax(z))`` into: it is a printing rewrite, not a function a
spec may call.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import numpy as np

from derive.forms import RULES, SOFTMAX


def log_softmax(z, axis=-1, out=None):
    """z - logsumexp(z) along ``axis``: finite even where softmax underflows to 0."""
    shifted = np.subtract(z, z.max(axis=axis, keepdims=True), out=out)
    lse = np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
    shifted -= lse
    return shifted


KERNELS: dict[str, Callable[..., np.ndarray]] = {
    **{name: rule.kernel for name, rule in RULES.items()},
    SOFTMAX.name: SOFTMAX.kernel,
    "log_softmax": log_softmax,
}
"""Every kernel a generated module may embed, by the name it calls: read off the rules."""


def kernel(name: str) -> Callable[..., np.ndarray]:
    """The kernel generated code calls ``name``: a rule's kernel, softmax's or ``log_softmax``."""
    return KERNELS[name]


def kernel_source(name: str) -> str:
    """The source of :func:`kernel` ``(name)``, as a generated module embeds it."""
    return inspect.getsource(kernel(name))
