"""The PyTorch kernels that ``--target torch`` modules embed (by source, read with ``ast``).

One function per registry name, each stable for |z| ≈ 1000.  The code
generator copies the source of the kernels a module calls into it (read
from this file, not imported, so generating needs no PyTorch).
"""

import torch


def relu(z):
    """max(z, 0)."""
    return torch.relu(z)


def relu_prime(z):
    """1 where z > 0, else 0 (the subgradient 0 at z = 0, as torch.relu's)."""
    return (z > 0).to(z.dtype)


def leaky_relu(z, alpha):
    """z where z > 0, else alpha z."""
    return torch.where(z > 0, z, alpha * z)


def leaky_relu_prime(z, alpha):
    """1 where z > 0, else alpha."""
    return torch.where(z > 0, torch.ones_like(z), torch.full_like(z, alpha))


def sigmoid(z):
    """1 / (1 + exp(-z)), the library's stable form."""
    return torch.sigmoid(z)


def tanh(z):
    """The hyperbolic tangent."""
    return torch.tanh(z)


def softplus(z):
    """log(1 + exp(z)) as logaddexp(z, 0): no overflow for any z."""
    return torch.logaddexp(z, torch.zeros_like(z))


def exp(z):
    """e to the z."""
    return torch.exp(z)


def log(z):
    """The natural logarithm."""
    return torch.log(z)


def softmax(z, axis):
    """exp(z) / Σ exp(z) along ``axis``, the library's stable form."""
    return torch.softmax(z, dim=axis)


def log_softmax(z, axis):
    """log softmax(z) along ``axis``, without forming softmax (stable)."""
    return torch.log_softmax(z, dim=axis)


def add_labels(x, labels, c):
    """x + c onehot(labels): c added to entry labels[b] of each row b (no one-hot matrix)."""
    rows = torch.arange(labels.shape[0])
    values = torch.as_tensor(c, dtype=x.dtype).expand(labels.shape[0])
    return x.index_put((rows, labels), values, accumulate=True)


def onehot(labels, n, dtype):
    """The (B, n) one-hot matrix of the class labels, where a form needs it whole."""
    return torch.nn.functional.one_hot(labels, n).to(dtype)


def silu(z):
    """z σ(z), PyTorch's own (stable for any z)."""
    return torch.nn.functional.silu(z)


def elu(z, alpha):
    """z where z > 0, alpha (exp(z) − 1) elsewhere; expm1 only sees z <= 0 (no overflow)."""
    return torch.where(z > 0, z, alpha * torch.expm1(torch.clamp(z, max=0)))


def elu_prime(z, alpha):
    """1 where z > 0, alpha exp(z) elsewhere; exp only sees z <= 0 (no overflow)."""
    return torch.where(z > 0, torch.ones_like(z), alpha * torch.exp(torch.clamp(z, max=0)))


def gelu(z):
    """GELU, tanh form, as z σ(2u), u = √(2/π) (z + 0.044715 z³): no cancellation."""
    return z * torch.sigmoid(1.5957691216057308 * (z + 0.044715 * z**3))


def gelu_prime(z):
    """σ(2u) + 2 z σ(2u) σ(−2u) u′: the tanh-form GELU's derivative, without cancellation."""
    two_u = 1.5957691216057308 * (z + 0.044715 * z**3)
    up, down = torch.sigmoid(two_u), torch.sigmoid(-two_u)
    return up + 2 * z * up * down * 0.7978845608028654 * (1 + 0.134145 * z * z)


def softsign(z):
    """z / (1 + |z|)."""
    return z / (1 + torch.abs(z))


def softsign_prime(z):
    """1 / (1 + |z|)²."""
    return 1 / (1 + torch.abs(z)) ** 2


def abs(z):  # noqa: A001 - named as its rule
    """|z|."""
    return torch.abs(z)


def sign(z):
    """-1, 0 or 1: the derivative of abs, with the subgradient 0 at z = 0."""
    return torch.sign(z)


def sqrt(z):
    """√z for z >= 0."""
    return torch.sqrt(z)


def square(z):
    """z²."""
    return torch.square(z)
