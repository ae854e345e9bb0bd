"""Numerically stable NumPy kernels that generated modules embed (by source).

Each kernel takes ``out=`` so the training step can write into preallocated
buffers, and each stays finite for |z| ≈ 1000.  The code generator copies the
source of the kernels a module needs into that module, so generated code
imports nothing but NumPy.  ``KERNELS`` maps a registry function name to the
kernel implementing it.
"""

from __future__ import annotations

import numpy as np


def relu(z, out=None):
    """max(z, 0)."""
    return np.maximum(z, 0, out=out)


def relu_prime(z, out=None):
    """1 where z > 0, else 0 (the subgradient 0 at z = 0)."""
    return np.greater(z, 0, out=out) if out is not None else (z > 0).astype(z.dtype)


def leaky_relu(z, alpha, out=None):
    """z where z > 0, alpha z elsewhere (0 <= alpha <= 1)."""
    out = np.multiply(z, alpha, out=out)
    return np.maximum(z, out, out=out)


def leaky_relu_prime(z, alpha, out=None):
    """1 where z > 0, alpha elsewhere."""
    out = np.greater(z, 0, out=out) if out is not None else (z > 0).astype(z.dtype)
    out *= 1 - alpha
    out += alpha
    return out


def sigmoid(z, out=None):
    """1 / (1 + exp(-z)) as (1 + tanh(z / 2)) / 2: no overflow for any z."""
    out = np.multiply(z, 0.5, out=out)
    np.tanh(out, out=out)
    out += 1
    out *= 0.5
    return out


def tanh(z, out=None):
    return np.tanh(z, out=out)


def softplus(z, out=None):
    """log(1 + exp(z)) as logaddexp(0, z): no overflow for any z."""
    return np.logaddexp(0, z, out=out)


def exp(z, out=None):
    return np.exp(z, out=out)


def log(z, out=None):
    return np.log(z, out=out)


def softmax(z, axis=-1, out=None):
    """exp(z) / sum(exp(z)) along ``axis``, shifted by the maximum: no overflow."""
    out = np.subtract(z, z.max(axis=axis, keepdims=True), out=out)
    np.exp(out, out=out)
    out /= out.sum(axis=axis, keepdims=True)
    return out


def log_softmax(z, axis=-1, out=None):
    """z - logsumexp(z) along ``axis``: finite even where softmax underflows to 0."""
    shifted = np.subtract(z, z.max(axis=axis, keepdims=True), out=out)
    lse = np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
    shifted -= lse
    return shifted


def abs(z, out=None):  # noqa: A001 - the spec's name for it
    return np.abs(z, out=out)


def sign(z, out=None):
    """-1, 0 or 1: the subgradient 0 of abs at 0."""
    return np.sign(z, out=out)


def sqrt(z, out=None):
    return np.sqrt(z, out=out)


def square(z, out=None):
    return np.square(z, out=out)


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


KERNELS = {
    "add_labels": add_labels,
    "onehot": onehot,
    "abs": abs,
    "sign": sign,
    "sqrt": sqrt,
    "square": square,
    "relu": relu,
    "relu_prime": relu_prime,
    "leaky_relu": leaky_relu,
    "leaky_relu_prime": leaky_relu_prime,
    "sigmoid": sigmoid,
    "tanh": tanh,
    "softplus": softplus,
    "exp": exp,
    "log": log,
    "softmax": softmax,
    "log_softmax": log_softmax,
}
