"""The Numba kernels that ``--target numba`` modules embed (by source, read with ``ast``).

Scalar functions, one per registry name, called entry by entry from the
compiled step's loops, and the row kernels of softmax and log-softmax.
Each is stable for |z| ≈ 1000.  The code generator copies the source of the
kernels a module calls into it (read from this file, not imported, so
generating needs no Numba).
"""

import math

import numba


@numba.njit(cache=False)
def relu(z):
    return z if z > 0.0 else 0.0


@numba.njit(cache=False)
def relu_prime(z):
    """1 where z > 0, else 0 (the subgradient 0 at z = 0)."""
    return 1.0 if z > 0.0 else 0.0


@numba.njit(cache=False)
def leaky_relu(z, alpha):
    return z if z > 0.0 else alpha * z


@numba.njit(cache=False)
def leaky_relu_prime(z, alpha):
    return 1.0 if z > 0.0 else alpha


@numba.njit(cache=False)
def sigmoid(z):
    """1 / (1 + exp(-z)), from exp(-|z|) <= 1: no overflow for any z.  (Scalar exp
    costs half of scalar tanh here, and there is no vectorised tanh without SVML.)"""
    if z >= 0.0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


@numba.njit(cache=False)
def tanh(z):
    return math.tanh(z)


@numba.njit(cache=False)
def softplus(z):
    """log(1 + exp(z)) as max(z, 0) + log1p(exp(-|z|)): no overflow for any z."""
    return max(z, 0.0) + math.log1p(math.exp(-abs(z)))


@numba.njit(cache=False)
def exp(z):
    return math.exp(z)


@numba.njit(cache=False)
def log(z):
    return math.log(z)


@numba.njit(cache=False)
def softmax_rows(z, out):
    """out = softmax of every row of z, shifted by the row maximum: no overflow."""
    for i in range(z.shape[0]):
        top = z[i, 0]
        for j in range(1, z.shape[1]):
            top = max(top, z[i, j])
        total = 0.0
        for j in range(z.shape[1]):
            out[i, j] = math.exp(z[i, j] - top)
            total += out[i, j]
        for j in range(z.shape[1]):
            out[i, j] /= total


@numba.njit(cache=False)
def log_softmax_rows(z, out):
    """out = z - logsumexp(z) for every row: finite even where softmax underflows."""
    for i in range(z.shape[0]):
        top = z[i, 0]
        for j in range(1, z.shape[1]):
            top = max(top, z[i, j])
        total = 0.0
        for j in range(z.shape[1]):
            total += math.exp(z[i, j] - top)
        shift = top + math.log(total)
        for j in range(z.shape[1]):
            out[i, j] = z[i, j] - shift


@numba.njit(cache=False)
def silu(z):
    """z σ(z), with σ from exp(-|z|) <= 1: no overflow for any z."""
    if z >= 0.0:
        return z / (1.0 + math.exp(-z))
    e = math.exp(z)
    return z * e / (1.0 + e)


@numba.njit(cache=False)
def elu(z, alpha):
    """z where z > 0, alpha (exp(z) − 1) elsewhere (expm1 of z <= 0 only)."""
    return z if z > 0.0 else alpha * math.expm1(z)


@numba.njit(cache=False)
def elu_prime(z, alpha):
    """1 where z > 0, alpha exp(z) elsewhere (exp of z <= 0 only)."""
    return 1.0 if z > 0.0 else alpha * math.exp(z)


@numba.njit(cache=False)
def gelu(z):
    """GELU, tanh form, as z σ(2u), u = √(2/π) (z + 0.044715 z³): no overflow, no cancellation."""
    two_u = 1.5957691216057308 * (z + 0.044715 * z * z * z)
    if two_u >= 0.0:
        return z / (1.0 + math.exp(-two_u))
    e = math.exp(two_u)
    return z * e / (1.0 + e)


@numba.njit(cache=False)
def gelu_prime(z):
    """σ(2u) + 2 z σ(2u) σ(−2u) u′: the tanh-form GELU's derivative, without cancellation."""
    two_u = 1.5957691216057308 * (z + 0.044715 * z * z * z)
    e = math.exp(-abs(two_u))  # <= 1: no overflow
    big, small = 1.0 / (1.0 + e), e / (1.0 + e)
    up, down = (big, small) if two_u >= 0.0 else (small, big)
    return up + 2.0 * z * up * down * 0.7978845608028654 * (1.0 + 0.134145 * z * z)


@numba.njit(cache=False)
def softsign(z):
    """z / (1 + |z|)."""
    return z / (1.0 + abs(z))


@numba.njit(cache=False)
def softsign_prime(z):
    """1 / (1 + |z|)²."""
    d = 1.0 + abs(z)
    return 1.0 / (d * d)


@numba.njit(cache=False)
def abs(z):  # noqa: A001 - named as its rule (the kernels above then call this one: same value)
    return math.fabs(z)


@numba.njit(cache=False)
def sign(z):
    """-1, 0 or 1: the derivative of abs, with the subgradient 0 at z = 0."""
    if z > 0.0:
        return 1.0
    if z < 0.0:
        return -1.0
    return 0.0


@numba.njit(cache=False)
def sqrt(z):
    return math.sqrt(z)


@numba.njit(cache=False)
def square(z):
    return z * z
