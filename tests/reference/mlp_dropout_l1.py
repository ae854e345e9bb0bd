"""Reference for derive/specs/mlp_dropout_l1.nn, written as cs231n writes dropout:

    hidden = relu(X @ W1 + b1); dropped = hidden * D1 / keep   (D1 the 0/1 mask)
    scores = dropped @ W2 + b2
    L = -mean(log_softmax(scores)[range(N), y]) + lam * (|W1|_1 + |W2|_1)

and its backward pass by hand: dscores = softmax; dscores[range(N), y] -= 1; /= N;
the mask scales the hidden gradient; the L1 term adds lam * sign(W).
"""

import numpy as np

KEEP, LAM = 0.8, 0.0001


def forward(params, data):
    X, y = data["X"], data["y"]
    D1 = data.get("D1", KEEP)  # no mask given: its mean (evaluation, no dropout)
    hidden = np.maximum(0, X @ params["W1"] + params["b1"])
    dropped = hidden * D1 / KEEP
    scores = dropped @ params["W2"] + params["b2"]
    shifted = scores - scores.max(axis=1, keepdims=True)
    probs = np.exp(shifted)
    probs /= probs.sum(axis=1, keepdims=True)
    data_loss = -np.log(probs[np.arange(len(y)), y]).mean()
    l1 = LAM * (np.abs(params["W1"]).sum() + np.abs(params["W2"]).sum())
    return {"hidden": hidden, "dropped": dropped, "scores": scores, "L": float(data_loss + l1)}


def loss(params, data):
    return forward(params, data)["L"]


def _probs(scores):
    shifted = scores - scores.max(axis=1, keepdims=True)
    probs = np.exp(shifted)
    return probs / probs.sum(axis=1, keepdims=True)


def gradients(params, data):
    X, y = data["X"], data["y"]
    D1 = data.get("D1", KEEP)
    fw = forward(params, data)
    dscores = _probs(fw["scores"])
    dscores[np.arange(len(y)), y] -= 1
    dscores /= len(y)
    dW2 = fw["dropped"].T @ dscores + LAM * np.sign(params["W2"])
    db2 = dscores.sum(axis=0)
    dhidden = (dscores @ params["W2"].T) * D1 / KEEP
    dhidden[fw["hidden"] <= 0] = 0
    dW1 = X.T @ dhidden + LAM * np.sign(params["W1"])
    db1 = dhidden.sum(axis=0)
    return {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}


def sgd_step(params, grads, lr):
    for name, g in grads.items():
        params[name] -= lr * g
