"""Numerically stable NumPy kernels, one per registered function.

Each kernel is the ``kernel`` of one entry of :data:`derive.rules.RULES`:
derive's numeric checks call it, and the code generator copies its source
(by :func:`inspect.getsource`) into every generated module that needs it, so
generated code imports nothing but NumPy.  Hence the house rules for a kernel:

* a top-level ``def`` named exactly as its rule, reading nothing but ``np``
  and its arguments (its source must run on its own);
* signature ``(z, *params, out=None)``: the training step passes ``out=`` to
  write into preallocated buffers;
* finite for |z| ≈ 1000 in float32 and float64 (no overflowing ``exp``);
* if its rule says ``in_place=True``, correct when ``out is z``;
* correct on a NumPy scalar too (numeric checks call it entry by entry), so
  ``out=`` is only ever given the caller's array, never a temporary.

``tests/test_rules.py`` checks every kernel against its rule's SymPy value and
derivative at random and extreme points.
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
    scaled = np.multiply(z, alpha, out=out)
    return np.maximum(z, scaled, out=out)


def leaky_relu_prime(z, alpha, out=None):
    """1 where z > 0, alpha elsewhere."""
    out = np.greater(z, 0, out=out) if out is not None else (z > 0).astype(z.dtype)
    out *= 1 - alpha
    out += alpha
    return out


def sigmoid(z, out=None):
    """1 / (1 + exp(-z)): full relative precision where σ is tiny ((1 + tanh(z/2)) / 2
    loses it to cancellation), and four cheap passes (logaddexp costs 7x, 30x in float32).
    Where exp(-z) overflows (z < -709 in float64) the reciprocal of inf is σ's 0 to
    within underflow, so that overflow is expected and silenced."""
    with np.errstate(over="ignore"):
        e = np.exp(np.negative(z, out=out), out=out)
    return np.reciprocal(np.add(e, 1, out=out), out=out)


def tanh(z, out=None):
    """tanh(z), NumPy's own (stable for any z)."""
    return np.tanh(z, out=out)


def softplus(z, out=None):
    """log(1 + exp(z)) as logaddexp(0, z): no overflow for any z."""
    return np.logaddexp(0, z, out=out)


def exp(z, out=None):
    """exp(z) (overflows past z ≈ 709 in float64, as the function itself does)."""
    return np.exp(z, out=out)


def log(z, out=None):
    """log(z) for z > 0."""
    return np.log(z, out=out)


def silu(z, out=None):
    """z σ(z), with σ(z) as exp(-logaddexp(0, -z)): no overflow; safe when out is z."""
    return np.multiply(z, np.exp(np.negative(np.logaddexp(0, np.negative(z)))), out=out)


def elu(z, alpha=1.0, out=None):
    """z where z > 0, alpha (exp(z) − 1) elsewhere; exp only sees z <= 0 (no overflow)."""
    neg = np.expm1(np.minimum(z, 0))
    neg *= alpha
    result = np.where(z > 0, z, neg)
    if out is None:
        return result
    out[...] = result
    return out


def elu_prime(z, alpha=1.0, out=None):
    """1 where z > 0, alpha exp(z) elsewhere; exp only sees z <= 0 (no overflow)."""
    neg = np.exp(np.minimum(z, 0))
    neg *= alpha
    result = np.where(z > 0, 1, neg).astype(neg.dtype, copy=False)
    if out is None:
        return result
    out[...] = result
    return out


def gelu(z, out=None):
    """GELU, tanh form: z (1 + tanh(u)) / 2 with u = √(2/π) (z + 0.044715 z³), computed as
    z σ(2u) = z exp(−logaddexp(0, −2u)): no overflow, no cancellation where 1 + tanh(u) ≈ 0."""
    minus_two_u = -2 * (2 / np.pi) ** 0.5 * z * (1 + 0.044715 * z * z)  # Python floats: keep dtype
    return np.multiply(z, np.exp(np.negative(np.logaddexp(0, minus_two_u))), out=out)


def gelu_prime(z, out=None):
    """d/dz of the tanh-form GELU: (1 + t)/2 + z (1 − t²) u′ / 2 with t = tanh(u), written as
    σ(2u) + 2 z σ(2u) σ(−2u) u′ (the same, without cancellation; no overflow)."""
    c = (2 / np.pi) ** 0.5  # a Python float: keeps float32 inputs float32
    z2 = np.multiply(z, z)
    two_u = 2 * c * z * (1 + 0.044715 * z2)
    up = np.exp(-np.logaddexp(0, -two_u))  # σ(2u) = (1 + t)/2
    down = np.exp(-np.logaddexp(0, two_u))  # σ(−2u) = (1 − t)/2
    slope = c * (1 + 3 * 0.044715 * z2)  # u′
    result = up + 2 * z * up * down * slope
    if out is None:
        return result
    out[...] = result
    return out


def softsign(z, out=None):
    """z / (1 + |z|)."""
    d = np.abs(z)
    d += 1
    return np.divide(z, d, out=out)


def softsign_prime(z, out=None):
    """1 / (1 + |z|)²."""
    d = np.abs(z)
    d += 1
    d *= d
    return np.divide(1, d, out=out)


def abs(z, out=None):  # noqa: A001 - the kernel is named as its rule (and NumPy)
    """|z|."""
    return np.abs(z, out=out)


def sign(z, out=None):
    """-1, 0 or 1: the derivative of abs, with the subgradient 0 at z = 0."""
    return np.sign(z, out=out)


def sqrt(z, out=None):
    """√z for z >= 0."""
    return np.sqrt(z, out=out)


def square(z, out=None):
    """z² (as z z: exact, no pow)."""
    return np.square(z, out=out)


def softmax(z, axis=-1, out=None):
    """exp(z) / sum(exp(z)) along ``axis``, shifted by the maximum: no overflow."""
    out = np.subtract(z, z.max(axis=axis, keepdims=True), out=out)
    np.exp(out, out=out)
    out /= out.sum(axis=axis, keepdims=True)
    return out
