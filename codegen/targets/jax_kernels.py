"""The JAX kernels that ``--target jax`` modules embed (by source, read with ``ast``).

One function per registry name, each stable for |z| ≈ 1000.  The code
generator copies the source of the kernels a module calls into it (read
from this file, not imported, so generating needs no JAX).
"""

import jax
import jax.numpy as jnp


def relu(z):
    return jax.nn.relu(z)


def relu_prime(z):
    """1 where z > 0, else 0 (the subgradient 0 at z = 0)."""
    return (z > 0).astype(z.dtype)


def leaky_relu(z, alpha):
    return jnp.where(z > 0, z, alpha * z)


def leaky_relu_prime(z, alpha):
    return jnp.where(z > 0, 1.0, alpha).astype(z.dtype)


def sigmoid(z):
    return jax.nn.sigmoid(z)


def tanh(z):
    return jnp.tanh(z)


def softplus(z):
    """log(1 + exp(z)) as logaddexp(0, z): no overflow for any z."""
    return jnp.logaddexp(0, z)


def exp(z):
    return jnp.exp(z)


def log(z):
    return jnp.log(z)


def softmax(z, axis):
    return jax.nn.softmax(z, axis=axis)


def log_softmax(z, axis):
    return jax.nn.log_softmax(z, axis=axis)
