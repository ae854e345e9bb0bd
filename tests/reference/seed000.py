"""Reference for derive/specs/seed000.nn, following the NumPy program of the seed write-up
"Numpy Implementation Of NN From Theoretical Perspective" (seeds 000/001) line by line:

    u = x @ W;  h = relu(u);  y = h @ S;  L = sum((y - t)**2)

params: W[n_x, n_h], S[n_h, n_y];  data: x[B, n_x], t[B, n_y].
"""

# Fix: the printed program says `import numpy` but then uses `np.`; it needs `import numpy as np`.
import numpy as np


def forward(params, data):
    W, S = params["W"], params["S"]
    x, t = data["x"], data["t"]
    # Forward pass: compute predicted y
    u = x.dot(W)
    h = np.maximum(u, 0)
    y = h.dot(S)
    # Compute loss
    L = np.square(y - t).sum()
    return {"u": u, "h": h, "y": y, "L": float(L)}


def loss(params, data):
    return forward(params, data)["L"]


def gradients(params, data):
    W, S = params["W"], params["S"]
    x, t = data["x"], data["t"]
    fw = forward(params, data)
    u, h, y = fw["u"], fw["h"], fw["y"]
    # Backprop to compute gradients of W and S with respect to loss (as printed)
    grad_y = 2.0 * (y - t)
    grad_S = h.T.dot(grad_y)

    grad_h = grad_y.dot(S.T)
    grad_u = grad_h.copy()
    grad_u[u < 0] = 0
    grad_W = x.T.dot(grad_u)
    assert grad_W.shape == W.shape and grad_S.shape == S.shape
    return {"W": grad_W, "S": grad_S}


def sgd_step(params, grads, lr):
    """Gradient descent, in place: p -= lr * g."""
    for name, g in grads.items():
        params[name] -= lr * g
