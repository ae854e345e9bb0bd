"""Reference for derive/specs/seed004_deep.nn, the general three-layer network (9-6-6-1) of
"Neural Network in NumPy":

    Z1 = X1 @ W1;  X2 = relu(Z1);  Z2 = X2 @ W2;  X3 = relu(Z2);  Z3 = X3 @ W3
    Y_hat = sigmoid(Z3)
    J = -mean(Y * log(Y_hat) + (1 - Y) * log(1 - Y_hat))    (mean over all B*n_out entries)

params: W1[n_in, n_h1], W2[n_h1, n_h2], W3[n_h2, n_out];  data: X1[B, n_in], Y[B, n_out].
"""

import numpy as np


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def forward(params, data):
    W1, W2, W3 = params["W1"], params["W2"], params["W3"]
    X1, Y = data["X1"], data["Y"]
    Z1 = X1 @ W1
    X2 = np.maximum(Z1, 0.0)
    Z2 = X2 @ W2
    X3 = np.maximum(Z2, 0.0)
    Z3 = X3 @ W3
    Y_hat = sigmoid(Z3)
    J = -np.mean(Y * np.log(Y_hat) + (1.0 - Y) * np.log(1.0 - Y_hat))
    return {"Z1": Z1, "X2": X2, "Z2": Z2, "X3": X3, "Z3": Z3, "Y_hat": Y_hat, "J": float(J)}


def loss(params, data):
    return forward(params, data)["J"]


def gradients(params, data):
    W2, W3 = params["W2"], params["W3"]
    X1, Y = data["X1"], data["Y"]
    fw = forward(params, data)
    Z1, X2, Z2, X3, Y_hat = fw["Z1"], fw["X2"], fw["Z2"], fw["X3"], fw["Y_hat"]
    # delta3 = dJ/dY_hat * sigma'(Z3) = (Y_hat - Y) / (Y_hat (1 - Y_hat)) * Y_hat (1 - Y_hat)
    # = Y_hat - Y per entry, times 1/(B*n_out) for the mean over all entries (the write-up's
    # "mean over instances", 1/B, is the n_out = 1 case).
    delta3 = (Y_hat - Y) / Y.size
    # dJ/dW3 = X3^T . delta3: X3 is layer 3's input (Z3 = X3 . W3), as the write-up prints.
    dW3 = X3.T @ delta3
    # delta2 = delta3 . W3^T * ReLU'(Z2);  dJ/dW2 = X2^T . delta2
    delta2 = (delta3 @ W3.T) * (Z2 > 0)
    dW2 = X2.T @ delta2
    # delta1 = delta2 . W2^T * ReLU'(Z1);  dJ/dW1 = X1^T . delta1
    delta1 = (delta2 @ W2.T) * (Z1 > 0)
    dW1 = X1.T @ delta1
    return {"W1": dW1, "W2": dW2, "W3": dW3}


def sgd_step(params, grads, lr):
    """Gradient descent, in place: p -= lr * g."""
    for name, g in grads.items():
        params[name] -= lr * g
