"""Reference for derive/specs/attention.nn: one attention head over a batch of sequences.

    q, k, v = x @ Wq, x @ Wk, x @ Wv                  # (B, T, d), (B, T, d), (B, T, E)
    att = softmax(q @ k.transpose(0, 2, 1) / sqrt(d))  # (B, T, T), over the keys
    out = att @ v;  L = sum((out - y)**2) / B

The backward pass written by hand, as a course derives it: the softmax Jacobian
applied row by row (dS = A * (dA - sum(dA * A, axis=-1))), batched products for
the rest, and the weight gradients summed over batch and time.
"""

import numpy as np


def forward(params, data):
    x = data["x"]
    q, k, v = x @ params["Wq"], x @ params["Wk"], x @ params["Wv"]
    scores = np.matmul(q, np.swapaxes(k, 1, 2)) / np.sqrt(q.shape[-1])
    scores = scores - scores.max(axis=-1, keepdims=True)
    att = np.exp(scores)
    att /= att.sum(axis=-1, keepdims=True)
    out = np.matmul(att, v)
    L = np.sum((out - data["y"]) ** 2) / x.shape[0]
    return {"q": q, "k": k, "v": v, "att": att, "out": out, "L": float(L)}


def loss(params, data):
    return forward(params, data)["L"]


def gradients(params, data):
    x = data["x"]
    fw = forward(params, data)
    q, k, v, att, out = fw["q"], fw["k"], fw["v"], fw["att"], fw["out"]
    dout = 2 * (out - data["y"]) / x.shape[0]
    datt = np.matmul(dout, np.swapaxes(v, 1, 2))
    dv = np.matmul(np.swapaxes(att, 1, 2), dout)
    dscores = att * (datt - np.sum(datt * att, axis=-1, keepdims=True))
    dscores /= np.sqrt(q.shape[-1])
    dq = np.matmul(dscores, k)
    dk = np.matmul(np.swapaxes(dscores, 1, 2), q)
    flat = x.reshape(-1, x.shape[-1])

    def weight(d):
        return flat.T @ d.reshape(-1, d.shape[-1])

    return {"Wq": weight(dq), "Wk": weight(dk), "Wv": weight(dv)}


def sgd_step(params, grads, lr):
    for name, g in grads.items():
        params[name] -= lr * g
