"""Reference for derive/specs/makemore.nn, written as Karpathy writes makemore's MLP
(makemore part 3) and its manual backward pass (part 4):

    emb = C[ix]; hpreact = emb.view(n, -1) @ W1 + b1
    bnmean, bnvar = hpreact.mean(0), hpreact.var(0); hpreact = g * (hpreact - bnmean)
    / sqrt(bnvar + eps) + beta; h = tanh(hpreact); logits = h @ W2 + b2
    loss = cross_entropy(logits, y)

the backward pass by hand: dlogits = softmax; dlogits[range(n), y] -= 1; /= n; batch norm
in one line; dC by np.add.at of demb into the rows ix.
"""

import numpy as np

EPS = 1e-5


def forward(params, data):
    ix, y = data["ix"], data["y"]
    emb = params["C"][ix]
    x = emb.reshape(ix.shape[0], -1)
    hp = x @ params["W1"] + params["b1"]
    mu = hp.mean(0, keepdims=True)
    var = hp.var(0, keepdims=True)
    xn = (hp - mu) / np.sqrt(var + EPS)
    h = np.tanh(params["g"] * xn + params["beta"])
    logits = h @ params["W2"] + params["b2"]
    z = logits - logits.max(1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(1, keepdims=True))
    loss = -logp[np.arange(len(y)), y].mean()
    return {"emb": emb, "x": x, "hp": hp, "xn": xn, "h": h, "logits": logits, "L": float(loss)}


def loss(params, data):
    return forward(params, data)["L"]


def gradients(params, data):
    ix, y = data["ix"], data["y"]
    fw = forward(params, data)
    n = len(y)
    z = fw["logits"] - fw["logits"].max(1, keepdims=True)
    dlogits = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    dlogits[np.arange(n), y] -= 1
    dlogits /= n
    g = {"W2": fw["h"].T @ dlogits, "b2": dlogits.sum(0)}
    dhn = (dlogits @ params["W2"].T) * (1 - fw["h"] ** 2)
    xn = fw["xn"]
    g["g"], g["beta"] = (xn * dhn).sum(0), dhn.sum(0)
    dxn = params["g"] * dhn
    istd = 1 / np.sqrt(fw["hp"].var(0) + EPS)
    dhp = istd / n * (n * dxn - dxn.sum(0) - xn * (dxn * xn).sum(0))
    g["W1"], g["b1"] = fw["x"].T @ dhp, dhp.sum(0)
    demb = (dhp @ params["W1"].T).reshape(fw["emb"].shape)
    g["C"] = np.zeros_like(params["C"])
    np.add.at(g["C"], ix, demb)
    return g


def sgd_step(params, grads, lr):
    for name, grad in grads.items():
        params[name] -= lr * grad
