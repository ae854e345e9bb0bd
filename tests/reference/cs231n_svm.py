"""Reference for derive/specs/cs231n_svm.nn, cs231n's vectorised multiclass SVM loss:

    scores = X @ W + b; correct = scores[range(N), y]
    margins = maximum(0, scores - correct[:, None] + 1); margins[range(N), y] = 0
    L = sum(margins) / N + reg * sum(W * W)

y holds integer class labels.  The backward pass as the course writes it: each
positive margin adds x to its class's column and subtracts x from the correct one.
"""

import numpy as np

REG = 0.001


def forward(params, data):
    X, y = data["X"], data["y"]
    N = X.shape[0]
    scores = X @ params["W"] + params["b"]
    correct = scores[np.arange(N), y]
    margins = np.maximum(0, scores - correct[:, None] + 1)
    margins[np.arange(N), y] = 0
    L = margins.sum() / N + REG * np.sum(params["W"] * params["W"])
    return {"scores": scores, "correct": correct, "L": float(L)}


def loss(params, data):
    return forward(params, data)["L"]


def gradients(params, data):
    X, y = data["X"], data["y"]
    N = X.shape[0]
    scores = X @ params["W"] + params["b"]
    correct = scores[np.arange(N), y]
    margins = scores - correct[:, None] + 1
    positive = (margins > 0).astype(float)
    positive[np.arange(N), y] = 0
    positive[np.arange(N), y] = -positive.sum(axis=1)
    dscores = positive / N
    return {"W": X.T @ dscores + 2 * REG * params["W"], "b": dscores.sum(axis=0)}


def sgd_step(params, grads, lr):
    for name, g in grads.items():
        params[name] -= lr * g
