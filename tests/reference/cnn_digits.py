"""Reference for derive/specs/cnn_digits.nn, written as cs231n's naive layers (assignment 2):

    h = relu(conv(X, K1, pad 1) + b1); p = max_pool(h, 2×2, stride 2)
    scores = p.reshape(N, -1) @ W2 + b2; L = softmax cross-entropy with labels y

conv_forward_naive / conv_backward_naive and max_pool_forward_naive /
max_pool_backward_naive with loops over positions; the pool's backward sends each
window's gradient to its first maximum (np.argmax), as PyTorch does.
"""

import numpy as np


def conv_forward(x, w, b, pad):
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    n, _, hp, wp = xp.shape
    f, _, hh, ww = w.shape
    out = np.zeros((n, f, hp - hh + 1, wp - ww + 1))
    for i in range(out.shape[2]):
        for j in range(out.shape[3]):
            window = xp[:, :, i : i + hh, j : j + ww]
            out[:, :, i, j] = np.tensordot(window, w, axes=([1, 2, 3], [1, 2, 3])) + b
    return out


def conv_backward(dout, x, w, pad):
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    _, _, hh, ww = w.shape
    dxp, dw = np.zeros_like(xp), np.zeros_like(w)
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            window = xp[:, :, i : i + hh, j : j + ww]
            dw += np.tensordot(dout[:, :, i, j], window, axes=([0], [0]))
            dxp[:, :, i : i + hh, j : j + ww] += np.tensordot(dout[:, :, i, j], w, axes=([1], [0]))
    return dxp[:, :, pad:-pad, pad:-pad], dw, dout.sum(axis=(0, 2, 3))


def max_pool_forward(x, size):
    n, c, h, w = x.shape
    out = np.zeros((n, c, h // size, w // size))
    for i in range(out.shape[2]):
        for j in range(out.shape[3]):
            window = x[:, :, i * size : (i + 1) * size, j * size : (j + 1) * size]
            out[:, :, i, j] = window.max(axis=(2, 3))
    return out


def max_pool_backward(dout, x, size):
    dx = np.zeros_like(x)
    for b in range(x.shape[0]):
        for c in range(x.shape[1]):
            for i in range(dout.shape[2]):
                for j in range(dout.shape[3]):
                    window = x[b, c, i * size : (i + 1) * size, j * size : (j + 1) * size]
                    p, q = np.unravel_index(np.argmax(window), window.shape)
                    dx[b, c, i * size + p, j * size + q] += dout[b, c, i, j]
    return dx


def forward(params, data):
    X, y = data["X"], data["y"]
    n = X.shape[0]
    h = np.maximum(0, conv_forward(X, params["K1"], params["b1"], 1))
    p = max_pool_forward(h, 2)
    f = p.reshape(n, -1)
    scores = f @ params["W2"] + params["b2"]
    loss = -_log_probs(scores)[np.arange(n), y].mean()
    return {"h": h, "p": p, "f": f, "scores": scores, "L": loss}


def _log_probs(scores):
    shifted = scores - scores.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def loss(params, data):
    return forward(params, data)["L"]


def gradients(params, data):
    X, y = data["X"], data["y"]
    n = X.shape[0]
    fw = forward(params, data)
    dscores = np.exp(_log_probs(fw["scores"]))
    dscores[np.arange(n), y] -= 1
    dscores /= n
    dW2 = fw["f"].T @ dscores
    db2 = dscores.sum(axis=0)
    dp = (dscores @ params["W2"].T).reshape(fw["p"].shape)
    dh = max_pool_backward(dp, fw["h"], 2)
    dh[fw["h"] <= 0] = 0
    _, dK1, db1 = conv_backward(dh, X, params["K1"], 1)
    return {"K1": dK1, "b1": db1, "W2": dW2, "b2": db2}


def sgd_step(params, grads, lr):
    for name, g in grads.items():
        params[name] -= lr * g
