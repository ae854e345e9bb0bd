"""Reference for derive/specs/seed004.nn, the 2-3-1 network of "Neural Network in NumPy":

    Z1 = X1 @ W1;  X2 = relu(Z1);  Z2 = X2 @ W2;  Y_hat = sigmoid(Z2)
    J = -mean(Y * log(Y_hat) + (1 - Y) * log(1 - Y_hat))    (mean over all B*n_out entries)

params: W1[n_in, n_h], W2[n_h, n_out];  data: X1[B, n_in], Y[B, n_out].
The write-up derives the general three-layer net (see seed004_deep); for this two-layer net
its pattern reads: delta2 for the output layer, dJ/dW2 = X2^T delta2 (X2 is layer 2's input),
delta1 = delta2 W2^T * ReLU'(Z1), dJ/dW1 = X1^T delta1.
"""

import numpy as np


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def forward(params, data):
    W1, W2 = params["W1"], params["W2"]
    X1, Y = data["X1"], data["Y"]
    Z1 = X1 @ W1
    X2 = np.maximum(Z1, 0.0)
    Z2 = X2 @ W2
    Y_hat = sigmoid(Z2)
    J = -np.mean(Y * np.log(Y_hat) + (1.0 - Y) * np.log(1.0 - Y_hat))
    return {"Z1": Z1, "X2": X2, "Z2": Z2, "Y_hat": Y_hat, "J": float(J)}


def loss(params, data):
    return forward(params, data)["J"]


def gradients(params, data):
    W2 = params["W2"]
    X1, Y = data["X1"], data["Y"]
    fw = forward(params, data)
    Z1, X2, Y_hat = fw["Z1"], fw["X2"], fw["Y_hat"]
    # Output error term: dJ/dY_hat * sigma'(Z2) = (Y_hat - Y) / (Y_hat (1 - Y_hat))
    # * Y_hat (1 - Y_hat) = Y_hat - Y per entry.  The mean runs over all B*n_out entries, so
    # the factor is 1/(B*n_out) (the write-up's "mean over instances", 1/B, is the n_out = 1
    # case).
    delta2 = (Y_hat - Y) / Y.size
    dW2 = X2.T @ delta2
    # delta1 = delta2 . W2^T * ReLU'(Z1)
    delta1 = (delta2 @ W2.T) * (Z1 > 0)
    dW1 = X1.T @ delta1
    return {"W1": dW1, "W2": dW2}


def sgd_step(params, grads, lr):
    """Gradient descent, in place: p -= lr * g."""
    for name, g in grads.items():
        params[name] -= lr * g
