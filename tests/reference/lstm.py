"""Reference for derive/specs/lstm.nn: one LSTM step, cs231n's lstm_step_forward/backward.

    a = x @ Wx + prev_h @ Wh + b                      # (B, 4H)
    i, f, o = sigmoid(a[:, :H]), sigmoid(a[:, H:2H]), sigmoid(a[:, 2H:3H])
    g = tanh(a[:, 3H:]);  next_c = f * prev_c + i * g;  next_h = o * tanh(next_c)
    L = sum((next_h - t)**2) / B

The backward pass as the assignment writes it: the four gate deltas stacked back
into (B, 4H) with np.hstack, then one product per weight matrix.
"""

import numpy as np


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def forward(params, data):
    x, prev_h, prev_c = data["x"], data["prev_h"], data["prev_c"]
    H = prev_h.shape[1]
    a = x @ params["Wx"] + prev_h @ params["Wh"] + params["b"]
    i, f, o = _sigmoid(a[:, :H]), _sigmoid(a[:, H : 2 * H]), _sigmoid(a[:, 2 * H : 3 * H])
    g = np.tanh(a[:, 3 * H :])
    next_c = f * prev_c + i * g
    tanh_c = np.tanh(next_c)
    next_h = o * tanh_c
    L = np.sum((next_h - data["t"]) ** 2) / x.shape[0]
    return {"a": a, "i": i, "f": f, "o": o, "g": g, "next_c": next_c, "next_h": next_h, "L": L}


def loss(params, data):
    return float(forward(params, data)["L"])


def gradients(params, data):
    x, prev_h, prev_c = data["x"], data["prev_h"], data["prev_c"]
    fw = forward(params, data)
    i, f, o, g, next_c, next_h = (fw[n] for n in ("i", "f", "o", "g", "next_c", "next_h"))
    dnext_h = 2 * (next_h - data["t"]) / x.shape[0]
    tc = np.tanh(next_c)
    dnext_c = dnext_h * o * (1 - tc**2)
    di = dnext_c * g * i * (1 - i)
    df = dnext_c * prev_c * f * (1 - f)
    do = dnext_h * tc * o * (1 - o)
    dg = dnext_c * i * (1 - g**2)
    da = np.hstack([di, df, do, dg])
    return {"Wx": x.T @ da, "Wh": prev_h.T @ da, "b": da.sum(axis=0)}


def sgd_step(params, grads, lr):
    for name, g in grads.items():
        params[name] -= lr * g
