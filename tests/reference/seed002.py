"""Reference for derive/specs/seed002.nn, the MNIST network of "Neural Network from Scratch":

    z1 = X @ W1 + b1;  a1 = sigmoid(z1)
    z2 = a1 @ W2 + b2; a2 = sigmoid(z2)
    z3 = a2 @ W3 + b3; y_hat = softmax(z3)
    L = -sum(T * log(y_hat)) / B          (T one-hot rows)

params: W1[n_in, n_h1], b1[n_h1], W2[n_h1, n_h2], b2[n_h2], W3[n_h2, n_out], b3[n_out];
data: X[B, n_in], T[B, n_out].  Rows are examples; delta^(l) = dL/dz^(l) has B rows.
"""

import numpy as np


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))  # subtract the row max for stability
    return e / e.sum(axis=-1, keepdims=True)


def forward(params, data):
    X, T = data["X"], data["T"]
    B = X.shape[0]
    z1 = X @ params["W1"] + params["b1"]
    a1 = sigmoid(z1)
    # Fix: the write-up's forward pass (5.2) prints z_2 = np.dot(X, W_1) + b_2; the next
    # layer's input is a_1 and its weights are W_2.
    z2 = a1 @ params["W2"] + params["b2"]
    a2 = sigmoid(z2)
    z3 = a2 @ params["W3"] + params["b3"]
    y_hat = softmax(z3)
    L = -np.sum(T * np.log(y_hat)) / B
    return {"z1": z1, "a1": a1, "z2": z2, "a2": a2, "z3": z3, "y_hat": y_hat, "L": float(L)}


def loss(params, data):
    return forward(params, data)["L"]


def gradients(params, data):
    X, T = data["X"], data["T"]
    B = X.shape[0]
    fw = forward(params, data)
    a1, a2, y_hat = fw["a1"], fw["a2"], fw["y_hat"]
    # Output error term.  Fix: the write-up's delta^o = grad_a L (.) phi'^o(z^o) holds only
    # for an element-wise phi; softmax couples the outputs (full Jacobian).  Softmax with
    # cross-entropy and one-hot T gives dL/dz3 = (y_hat - T) / B, the 1/B being the batch
    # average of notes *1 and *2.
    delta3 = (y_hat - T) / B
    # dL/dW^l = (A^{l-1})^T delta^l (6.4); dL/db^l = delta^l summed over the B rows (the
    # write-up's matrix form dL/dB^l = delta^l still has B rows, note *1; the 1/B is in delta).
    dW3 = a2.T @ delta3
    db3 = delta3.sum(axis=0)
    # Hidden error terms.  Fix: 6.2 prints delta^l = ((w^{l+1})^T delta^{l+1}) (.) phi'(z^l),
    # which does not match its own scalar form delta_j^l = sum_k w_{j,k}^{l+1} delta_k^{l+1}
    # phi'(z_j^l) with W[n_l, n_{l+1}]; with rows as examples it is delta^{l+1} (W^{l+1})^T.
    # sigmoid'(z) = a (1 - a).
    delta2 = (delta3 @ params["W3"].T) * a2 * (1.0 - a2)
    dW2 = a1.T @ delta2
    db2 = delta2.sum(axis=0)
    delta1 = (delta2 @ params["W2"].T) * a1 * (1.0 - a1)
    dW1 = X.T @ delta1
    db1 = delta1.sum(axis=0)
    return {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2, "W3": dW3, "b3": db3}


def sgd_step(params, grads, lr):
    """Gradient descent, in place: p -= lr * g (the write-up's W -> W + dW, dW = -eta dL/dW)."""
    for name, g in grads.items():
        params[name] -= lr * g
