"""Reference for derive/specs/seed000_generic.nn: seed000 with a generic activation f, as
the write-up "Numpy Implementation Of NN From Theoretical Perspective" derives it:

    u = x @ W;  h = f(u);  y = h @ S;  L = sum((y - t)**2)

params: W[n_x, n_h], S[n_h, n_y];  data: x[B, n_x], t[B, n_y].
f and its derivative f_prime are keyword arguments (default tanh, 1 - tanh(z)**2).

Slips in the write-up's derivation (single example, row vectors y^T = h^T S), fixed here:
  * "(dL/dv_i h_j)_{i,j} = h . dL/dy^T": v is y, and the entry (i, j) is h_i dL/dy_j
    (an n_h x n_y matrix like S); the right-hand side h . dL/dy^T is correct.
  * "grad_{h^T} L = grad_{y^T} L . S": the matrix whose rows are grad_{h^T} y_i = s_i^T is
    S^T, so grad_{h^T} L = grad_{y^T} L . S^T (the program's grad_y.dot(S.T)).
  * "grad_{u^T} L = diag(grad f) . grad_{h^T} L": grad_{h^T} L is a row vector, so it goes on
    the left: grad_{h^T} L . diag(grad f), i.e. the element-wise product grad_h * f'(u).
"""

import numpy as np


def tanh_prime(z):
    return 1.0 - np.tanh(z) ** 2


def forward(params, data, f=np.tanh, f_prime=tanh_prime):
    W, S = params["W"], params["S"]
    x, t = data["x"], data["t"]
    u = x.dot(W)
    h = f(u)
    y = h.dot(S)
    L = np.square(y - t).sum()
    return {"u": u, "h": h, "y": y, "L": float(L)}


def loss(params, data, f=np.tanh, f_prime=tanh_prime):
    return forward(params, data, f=f, f_prime=f_prime)["L"]


def gradients(params, data, f=np.tanh, f_prime=tanh_prime):
    S = params["S"]
    x, t = data["x"], data["t"]
    fw = forward(params, data, f=f, f_prime=f_prime)
    u, h, y = fw["u"], fw["h"], fw["y"]
    grad_y = 2.0 * (y - t)  # dL/dy for L = ||y - t||^2
    grad_S = h.T.dot(grad_y)  # grad_S L = h . grad_{y^T} L, summed over the batch rows
    grad_h = grad_y.dot(S.T)  # fixed: S^T, not S (see module docstring)
    grad_u = grad_h * f_prime(u)  # fixed: grad_{h^T} L . diag(f'(u))
    grad_W = x.T.dot(grad_u)  # grad_W L = x . grad_{u^T} L
    return {"W": grad_W, "S": grad_S}


def sgd_step(params, grads, lr):
    """Gradient descent, in place: p -= lr * g."""
    for name, g in grads.items():
        params[name] -= lr * g
