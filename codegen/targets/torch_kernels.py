"""The PyTorch kernels that ``--target torch`` modules embed (by source, read with ``ast``).

One function per registry name, each stable for |z| ≈ 1000.  The code
generator copies the source of the kernels a module calls into it (read
from this file, not imported, so generating needs no PyTorch).
"""

import torch


def relu(z):
    return torch.relu(z)


def relu_prime(z):
    """1 where z > 0, else 0 (the subgradient 0 at z = 0, as torch.relu's)."""
    return (z > 0).to(z.dtype)


def leaky_relu(z, alpha):
    return torch.where(z > 0, z, alpha * z)


def leaky_relu_prime(z, alpha):
    return torch.where(z > 0, torch.ones_like(z), torch.full_like(z, alpha))


def sigmoid(z):
    return torch.sigmoid(z)


def tanh(z):
    return torch.tanh(z)


def softplus(z):
    """log(1 + exp(z)) as logaddexp(z, 0): no overflow for any z."""
    return torch.logaddexp(z, torch.zeros_like(z))


def exp(z):
    return torch.exp(z)


def log(z):
    return torch.log(z)


def softmax(z, axis):
    return torch.softmax(z, dim=axis)


def log_softmax(z, axis):
    return torch.log_softmax(z, dim=axis)
