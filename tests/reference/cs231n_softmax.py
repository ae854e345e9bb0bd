"""Reference for derive/specs/cs231n_softmax.nn, cs231n's two-layer net (assignment 1):

    hidden = relu(X @ W1 + b1); scores = hidden @ W2 + b2
    probs = softmax(scores)
    L = -mean(log(probs[range(N), y])) + reg * (sum(W1 * W1) + sum(W2 * W2))

y holds integer class labels.  Written the way the course writes the backward pass:
dscores = probs; dscores[range(N), y] -= 1; dscores /= N.
"""

import numpy as np

REG = 0.001


def forward(params, data):
    X, y = data["X"], data["y"]
    N = X.shape[0]
    hidden = np.maximum(0, X @ params["W1"] + params["b1"])
    scores = hidden @ params["W2"] + params["b2"]
    shifted = scores - scores.max(axis=1, keepdims=True)
    probs = np.exp(shifted)
    probs /= probs.sum(axis=1, keepdims=True)
    data_loss = -np.log(probs[np.arange(N), y]).mean()
    reg_loss = REG * (np.sum(params["W1"] ** 2) + np.sum(params["W2"] ** 2))
    return {"hidden": hidden, "scores": scores, "probs": probs, "L": float(data_loss + reg_loss)}


def loss(params, data):
    return forward(params, data)["L"]


def gradients(params, data):
    X, y = data["X"], data["y"]
    N = X.shape[0]
    fw = forward(params, data)
    hidden, probs = fw["hidden"], fw["probs"]
    dscores = probs.copy()
    dscores[np.arange(N), y] -= 1
    dscores /= N
    dW2 = hidden.T @ dscores + 2 * REG * params["W2"]
    db2 = dscores.sum(axis=0)
    dhidden = dscores @ params["W2"].T
    dhidden[hidden <= 0] = 0
    dW1 = X.T @ dhidden + 2 * REG * params["W1"]
    db1 = dhidden.sum(axis=0)
    return {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}


def sgd_step(params, grads, lr):
    for name, g in grads.items():
        params[name] -= lr * g
