"""Reference for derive/specs/seed003.nn, "How to implement NN from scratch": three layers
with generic activations f1, f2, f3, rows are examples:

    X1 = f1(X0 @ W1);  X2 = f2(X1 @ W2);  X3 = f3(X2 @ W3);  E = 0.5 * sum((X3 - T)**2)

params: W1[d_in, h1], W2[h1, h2], W3[h2, d_out];  data: X0[n, d_in], T[n, d_out].
The activations and their derivatives are keyword arguments f1, f1_prime, ..., f3_prime
(default tanh and 1 - tanh(z)**2).
"""

import numpy as np


def tanh_prime(z):
    return 1.0 - np.tanh(z) ** 2


def forward(
    params,
    data,
    f1=np.tanh,
    f1_prime=tanh_prime,
    f2=np.tanh,
    f2_prime=tanh_prime,
    f3=np.tanh,
    f3_prime=tanh_prime,
):
    W1, W2, W3 = params["W1"], params["W2"], params["W3"]
    X0, T = data["X0"], data["T"]
    X1 = f1(X0 @ W1)
    X2 = f2(X1 @ W2)
    X3 = f3(X2 @ W3)
    E = 0.5 * np.sum((X3 - T) ** 2)
    return {"X1": X1, "X2": X2, "X3": X3, "E": float(E)}


def loss(
    params,
    data,
    f1=np.tanh,
    f1_prime=tanh_prime,
    f2=np.tanh,
    f2_prime=tanh_prime,
    f3=np.tanh,
    f3_prime=tanh_prime,
):
    return forward(params, data, f1, f1_prime, f2, f2_prime, f3, f3_prime)["E"]


def gradients(
    params,
    data,
    f1=np.tanh,
    f1_prime=tanh_prime,
    f2=np.tanh,
    f2_prime=tanh_prime,
    f3=np.tanh,
    f3_prime=tanh_prime,
):
    W1, W2, W3 = params["W1"], params["W2"], params["W3"]
    X0, T = data["X0"], data["T"]
    fw = forward(params, data, f1, f1_prime, f2, f2_prime, f3, f3_prime)
    X1, X2, X3 = fw["X1"], fw["X2"], fw["X3"]
    # w.r.t. W3:  dE/dW3 = X2^T delta3,  delta3 = (X3 - T) o f3'(X2 W3)
    delta3 = (X3 - T) * f3_prime(X2 @ W3)
    dW3 = X2.T @ delta3
    # w.r.t. W2:  dE/dW2 = X1^T delta2,  delta2 = delta3 W3^T o f2'(X1 W2)
    delta2 = (delta3 @ W3.T) * f2_prime(X1 @ W2)
    dW2 = X1.T @ delta2
    # w.r.t. W1.  Fix: the write-up prints dE/dW1 = [W2^T delta2 o f1'(X0 W1)] X0^T = X0^T delta1;
    # following the W2 step the error term is delta1 = delta2 W2^T o f1'(X0 W1) (n x h1; W2^T
    # delta2 does not even conform) and X0^T multiplies from the left: dE/dW1 = X0^T delta1.
    delta1 = (delta2 @ W2.T) * f1_prime(X0 @ W1)
    dW1 = X0.T @ delta1
    return {"W1": dW1, "W2": dW2, "W3": dW3}


def sgd_step(params, grads, lr):
    """Gradient descent, in place: p -= lr * g."""
    for name, g in grads.items():
        params[name] -= lr * g
