"""Reference for derive/specs/seed003_sigmoid.nn: seed003 ("How to implement NN from
scratch") with sigmoid activations, the network it trains on iris (4-8-8-3):

    X1 = sigmoid(X0 @ W1);  X2 = sigmoid(X1 @ W2);  X3 = sigmoid(X2 @ W3)
    E = 0.5 * sum((X3 - T)**2)

params: W1[d_in, h1], W2[h1, h2], W3[h2, d_out];  data: X0[n, d_in], T[n, d_out].
"""

import numpy as np


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def forward(params, data):
    W1, W2, W3 = params["W1"], params["W2"], params["W3"]
    X0, T = data["X0"], data["T"]
    X1 = sigmoid(X0 @ W1)
    X2 = sigmoid(X1 @ W2)
    X3 = sigmoid(X2 @ W3)
    E = 0.5 * np.sum((X3 - T) ** 2)
    return {"X1": X1, "X2": X2, "X3": X3, "E": float(E)}


def loss(params, data):
    return forward(params, data)["E"]


def gradients(params, data):
    W2, W3 = params["W2"], params["W3"]
    X0, T = data["X0"], data["T"]
    fw = forward(params, data)
    X1, X2, X3 = fw["X1"], fw["X2"], fw["X3"]
    # f' of a sigmoid layer in terms of its output: sigmoid'(X_{l-1} W_l) = X_l (1 - X_l).
    # delta3 = (X3 - T) o f3'(X2 W3);  dE/dW3 = X2^T delta3
    delta3 = (X3 - T) * X3 * (1.0 - X3)
    dW3 = X2.T @ delta3
    # delta2 = delta3 W3^T o f2'(X1 W2);  dE/dW2 = X1^T delta2
    delta2 = (delta3 @ W3.T) * X2 * (1.0 - X2)
    dW2 = X1.T @ delta2
    # Fix: the write-up prints dE/dW1 = [W2^T delta2 o f1'(X0 W1)] X0^T; correct is
    # delta1 = delta2 W2^T o f1'(X0 W1) and dE/dW1 = X0^T delta1.
    delta1 = (delta2 @ W2.T) * X1 * (1.0 - X1)
    dW1 = X0.T @ delta1
    return {"W1": dW1, "W2": dW2, "W3": dW3}


def sgd_step(params, grads, lr):
    """Gradient descent, in place: p -= lr * g."""
    for name, g in grads.items():
        params[name] -= lr * g
