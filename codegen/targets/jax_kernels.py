"""The JAX kernels that ``--target jax`` modules embed (by source, read with ``ast``).

One function per registry name, each stable for |z| ≈ 1000.  The code
generator copies the source of the kernels a module calls into it (read
from this file, not imported, so generating needs no JAX).
"""

import jax
import jax.numpy as jnp


def relu(z):
    """max(z, 0)."""
    return jax.nn.relu(z)


def relu_prime(z):
    """1 where z > 0, else 0 (the subgradient 0 at z = 0)."""
    return (z > 0).astype(z.dtype)


def leaky_relu(z, alpha):
    """z where z > 0, else alpha z."""
    return jnp.where(z > 0, z, alpha * z)


def leaky_relu_prime(z, alpha):
    """1 where z > 0, else alpha."""
    return jnp.where(z > 0, 1.0, alpha).astype(z.dtype)


def t_matmul(a, b):
    """aᵀ b.  XLA folds ``a.T @ b`` into a dot over both operands' first axes, which its
    CPU backend runs on Eigen's GEMM rather than its own (YNNPACK) one: measured with
    jaxlib 0.10 on one core, 2.2× the time in float64 (64×1000ᵀ by 64×100) and
    1.1-1.2× in float32.  Where the copy costs less than that, ``a`` is first stored
    transposed (the barrier keeps XLA from folding the copy away): on the CPU backend,
    for products of at least 2¹⁷ multiply-adds, in float64, or in float32 with a
    wide ``b`` (the copy is ``a``'s size, the product ``b.shape[1]`` times it).
    Elsewhere ``tensordot`` over both first axes, as JAX's own autodiff writes it (so XLA
    makes the same program of it as of ``jit(grad)``: ``a.T @ b`` led it to another
    layout choice for MNIST's last layer)."""
    big = a.size * b.shape[-1] >= 2**17
    if jax.default_backend() == "cpu" and big and (a.dtype == jnp.float64 or b.shape[-1] >= 256):
        return jax.lax.optimization_barrier(a.T) @ b
    return jnp.tensordot(a, b, axes=(0, 0))


def sigmoid(z):
    """1 / (1 + exp(-z)), the library's stable form."""
    return jax.nn.sigmoid(z)


def tanh(z):
    """The hyperbolic tangent."""
    return jnp.tanh(z)


def softplus(z):
    """log(1 + exp(z)) as logaddexp(0, z): no overflow for any z."""
    return jnp.logaddexp(0, z)


def exp(z):
    """e to the z."""
    return jnp.exp(z)


def log(z):
    """The natural logarithm."""
    return jnp.log(z)


def softmax(z, axis):
    """exp(z) / Σ exp(z) along ``axis``, the library's stable form."""
    return jax.nn.softmax(z, axis=axis)


def log_softmax(z, axis):
    """log softmax(z) along ``axis``, without forming softmax (stable)."""
    return jax.nn.log_softmax(z, axis=axis)


def add_labels(x, labels, c):
    """x + c onehot(labels): c added to entry labels[b] of each row b (no one-hot matrix)."""
    return x.at[jnp.arange(labels.shape[0]), labels].add(c)


def onehot(labels, n, dtype):
    """The (B, n) one-hot matrix of the class labels, where a form needs it whole."""
    return jax.nn.one_hot(labels, n, dtype=dtype)


def silu(z):
    """z σ(z), JAX's own (stable for any z)."""
    return jax.nn.silu(z)


def elu(z, alpha):
    """z where z > 0, alpha (exp(z) − 1) elsewhere; expm1 only sees z <= 0 (no overflow)."""
    return jnp.where(z > 0, z, alpha * jnp.expm1(jnp.minimum(z, 0)))


def elu_prime(z, alpha):
    """1 where z > 0, alpha exp(z) elsewhere; exp only sees z <= 0 (no overflow)."""
    return jnp.where(z > 0, 1.0, alpha * jnp.exp(jnp.minimum(z, 0))).astype(z.dtype)


def gelu(z):
    """GELU, tanh form, as z σ(2u), u = √(2/π) (z + 0.044715 z³): no cancellation."""
    return z * jax.nn.sigmoid(1.5957691216057308 * (z + 0.044715 * z**3))


def gelu_prime(z):
    """σ(2u) + 2 z σ(2u) σ(−2u) u′: the tanh-form GELU's derivative, without cancellation."""
    two_u = 1.5957691216057308 * (z + 0.044715 * z**3)
    up, down = jax.nn.sigmoid(two_u), jax.nn.sigmoid(-two_u)
    return up + 2 * z * up * down * 0.7978845608028654 * (1 + 0.134145 * z * z)


def softsign(z):
    """z / (1 + |z|)."""
    return z / (1 + jnp.abs(z))


def softsign_prime(z):
    """1 / (1 + |z|)²."""
    return 1 / (1 + jnp.abs(z)) ** 2


def abs(z):  # noqa: A001 - named as its rule
    """|z|."""
    return jnp.abs(z)


def sign(z):
    """-1, 0 or 1: the derivative of abs, with the subgradient 0 at z = 0."""
    return jnp.sign(z)


def sqrt(z):
    """√z for z >= 0."""
    return jnp.sqrt(z)


def square(z):
    """z²."""
    return jnp.square(z)
