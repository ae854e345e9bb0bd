"""A 20-equation attention + batch-norm backward pass in Karpathy's style (our own code), for
the whole-function speed benchmark (benchmarks/verify_speed.py); tests/test_verify_speed.py
checks it against finite differences."""

import numpy as np


def attention_bn_backward(
    x, y, Wq, Wk, Wv, gamma, Wo, q, k, v, e, esum, a, oc, bvar, inv, on, h, diff
):
    T = x.shape[0]
    ddiff = 2 * diff / T
    dout = ddiff
    dWo = h.T @ dout
    dh = dout @ Wo.T
    dhpre = (1 - h**2) * dh
    dgamma = (on * dhpre).sum(0)
    dbeta = dhpre.sum(0)
    don = gamma * dhpre
    doc = inv * don
    dinv = (oc * don).sum(0)
    dbvar = -0.5 * (bvar + 1e-5) ** -1.5 * dinv
    doc2 = np.ones_like(oc) * dbvar / T
    doc += 2 * oc * doc2
    do = doc - doc.sum(0) / T
    da = do @ v.T
    dv = a.T @ do
    de = da / esum
    desum = -(da * e).sum(1, keepdims=True) / esum**2
    de += desum
    ds = e * de
    dq = ds @ k / 2
    dk = ds.T @ q / 2
    dWq = x.T @ dq
    dWk = x.T @ dk
    dWv = x.T @ dv
    return dWq, dWk, dWv, dgamma, dbeta, dWo
