"""The Numba kernels that ``--target numba`` modules embed (by source, read with ``ast``).

Scalar functions, one per registry name, called entry by entry from the
compiled step's loops, and the row kernels of softmax and log-softmax.
Each is stable for |z| ≈ 1000.  The code generator copies the source of the
kernels a module calls into it, with the ``_``-prefixed helpers they call
(read from this file, not imported, so generating needs no Numba).

Every function compiles with ``error_model="numpy"`` (a division by zero
gives inf or nan, as in NumPy, instead of raising): without it each division
carries a check that keeps LLVM from vectorising the loops around it.  The
exponentials go through :func:`_exp`, plain arithmetic that vectorises, since
this Numba has no vector math library (no SVML) and a scalar ``math.exp``
per entry costs more than the whole NumPy step on large layers.
"""

import math

import numba
import numpy as np


@numba.njit(cache=False, error_model="numpy")
def _exp(x):
    """exp(x) to 1 ulp, in float64, with no library call (so loops over it vectorise):
    x = n ln 2 + r with |r| <= ln 2 / 2 (Cody-Waite: ln 2 in two parts), exp(r) by its
    Taylor polynomial of degree 13 (remainder < 1e-17), 2^n from exponent bits in two
    factors (so subnormal results come out right); inf past 709.8, 0 below -745.2, nan
    for nan."""
    y = min(max(x, -746.0), 710.0)
    t = y * 1.4426950408889634 + 6755399441055744.0  # 1.5 * 2^52: round(y / ln 2) in the bits
    n = t - 6755399441055744.0
    r = (y - n * 0.6931471803691238) - n * 1.9082149292705877e-10
    p = 1.0 / 6227020800.0
    p = p * r + 1.0 / 479001600.0
    p = p * r + 1.0 / 39916800.0
    p = p * r + 1.0 / 3628800.0
    p = p * r + 1.0 / 362880.0
    p = p * r + 1.0 / 40320.0
    p = p * r + 1.0 / 5040.0
    p = p * r + 1.0 / 720.0
    p = p * r + 1.0 / 120.0
    p = p * r + 1.0 / 24.0
    p = p * r + 1.0 / 6.0
    p = p * r + 0.5
    p = p * r + 1.0
    p = p * r + 1.0
    k = np.float64(t).view(np.int64) - 0x4338000000000000  # n as an integer
    half = k >> 1
    p = p * np.int64((half + 1023) << 52).view(np.float64)
    p = p * np.int64((k - half + 1023) << 52).view(np.float64)
    return p if x == x else x


@numba.njit(cache=False, error_model="numpy")
def relu(z):
    return z if z > 0.0 else 0.0


@numba.njit(cache=False, error_model="numpy")
def relu_prime(z):
    """1 where z > 0, else 0 (the subgradient 0 at z = 0)."""
    return 1.0 if z > 0.0 else 0.0


@numba.njit(cache=False, error_model="numpy")
def leaky_relu(z, alpha):
    return z if z > 0.0 else alpha * z


@numba.njit(cache=False, error_model="numpy")
def leaky_relu_prime(z, alpha):
    return 1.0 if z > 0.0 else alpha


@numba.njit(cache=False, error_model="numpy")
def sigmoid(z):
    """1 / (1 + exp(-z)), from e = exp(-|z|) <= 1 (no overflow for any z): 1 / (1 + e)
    for z >= 0, e / (1 + e) below; a select, not a branch, so the loop vectorises."""
    e = _exp(-abs(z))
    s = 1.0 / (1.0 + e)
    return s * (1.0 if z >= 0.0 else e)


@numba.njit(cache=False, error_model="numpy")
def tanh(z):
    return math.tanh(z)


@numba.njit(cache=False, error_model="numpy")
def softplus(z):
    """log(1 + exp(z)) as max(z, 0) + log1p(exp(-|z|)): no overflow for any z."""
    return max(z, 0.0) + math.log1p(_exp(-abs(z)))


@numba.njit(cache=False, error_model="numpy")
def exp(z):
    return _exp(z)


@numba.njit(cache=False, error_model="numpy")
def log(z):
    return math.log(z)


@numba.njit(cache=False, error_model="numpy")
def softmax_rows(z, out):
    """out = softmax of every row of z, shifted by the row maximum: no overflow."""
    for i in range(z.shape[0]):
        top = z[i, 0]
        for j in range(1, z.shape[1]):
            top = max(top, z[i, j])
        for j in range(z.shape[1]):
            out[i, j] = _exp(z[i, j] - top)
        total = 0.0
        for j in range(z.shape[1]):
            total += out[i, j]
        for j in range(z.shape[1]):
            out[i, j] /= total


@numba.njit(cache=False, error_model="numpy")
def log_softmax_rows(z, out):
    """out = z - logsumexp(z) for every row: finite even where softmax underflows."""
    for i in range(z.shape[0]):
        top = z[i, 0]
        for j in range(1, z.shape[1]):
            top = max(top, z[i, j])
        total = 0.0
        for j in range(z.shape[1]):
            total += _exp(z[i, j] - top)
        shift = top + math.log(total)
        for j in range(z.shape[1]):
            out[i, j] = z[i, j] - shift


@numba.njit(cache=False, error_model="numpy")
def silu(z):
    """z σ(z), with σ from exp(-|z|) <= 1: no overflow for any z."""
    return z * sigmoid(z)


@numba.njit(cache=False, error_model="numpy")
def elu(z, alpha):
    """z where z > 0, alpha (exp(z) − 1) elsewhere (expm1 of z <= 0 only)."""
    return z if z > 0.0 else alpha * math.expm1(z)


@numba.njit(cache=False, error_model="numpy")
def elu_prime(z, alpha):
    """1 where z > 0, alpha exp(z) elsewhere (exp of z <= 0 only)."""
    return 1.0 if z > 0.0 else alpha * _exp(z)


@numba.njit(cache=False, error_model="numpy")
def gelu(z):
    """GELU, tanh form, as z σ(2u), u = √(2/π) (z + 0.044715 z³): no overflow, no cancellation."""
    return z * sigmoid(1.5957691216057308 * (z + 0.044715 * z * z * z))


@numba.njit(cache=False, error_model="numpy")
def gelu_prime(z):
    """σ(2u) + 2 z σ(2u) σ(−2u) u′: the tanh-form GELU's derivative, without cancellation."""
    two_u = 1.5957691216057308 * (z + 0.044715 * z * z * z)
    e = _exp(-abs(two_u))  # <= 1: no overflow
    big, small = 1.0 / (1.0 + e), e / (1.0 + e)
    up, down = (big, small) if two_u >= 0.0 else (small, big)
    return up + 2.0 * z * up * down * 0.7978845608028654 * (1.0 + 0.134145 * z * z)


@numba.njit(cache=False, error_model="numpy")
def softsign(z):
    """z / (1 + |z|)."""
    return z / (1.0 + abs(z))


@numba.njit(cache=False, error_model="numpy")
def softsign_prime(z):
    """1 / (1 + |z|)²."""
    d = 1.0 + abs(z)
    return 1.0 / (d * d)


@numba.njit(cache=False, error_model="numpy")
def abs(z):  # noqa: A001 - named as its rule (the kernels above then call this one: same value)
    return math.fabs(z)


@numba.njit(cache=False, error_model="numpy")
def sign(z):
    """-1, 0 or 1: the derivative of abs, with the subgradient 0 at z = 0."""
    if z > 0.0:
        return 1.0
    if z < 0.0:
        return -1.0
    return 0.0


@numba.njit(cache=False, error_model="numpy")
def sqrt(z):
    return math.sqrt(z)


@numba.njit(cache=False, error_model="numpy")
def square(z):
    return z * z
