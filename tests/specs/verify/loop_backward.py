"""Backpropagation through time, time-major (``x[T, N, D]``, as derive's loops): a vanilla
RNN and an LSTM in cs231n's style (``lstm_backward(dh, cache)``), right and with the
classic mistakes.  Fixtures of tests/test_verify_steps.py, judged against the specs
rnn_loop.nn and lstm_loop.nn (recurrences the verifier unrolls at T = 3): the line marked
``# mistake`` is the first wrong line, and EXPECTED holds its diagnosis (a part of it).
The verifier never runs this file; the test runs it for real to label its gradients by
finite differences."""

import numpy as np

EXPECTED = {
    "rnn_backward_no_carry": "not accumulated from the next step",
    "lstm_backward_no_cell_carry": "not accumulated from the next step",
}


def rnn_backward(dh, cache):
    x, h0, Wx, Wh, b, h = cache
    T = dh.shape[0]
    dx = np.zeros_like(x)
    dWx, dWh, db = np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)
    dprev_h = np.zeros_like(h0)
    for t in reversed(range(T)):
        dnext_h = dh[t] + dprev_h
        prev_h = h[t - 1] if t > 0 else h0
        dtanh = (1 - h[t] ** 2) * dnext_h
        dx[t] = dtanh @ Wx.T
        dprev_h = dtanh @ Wh.T
        dWx += x[t].T @ dtanh
        dWh += prev_h.T @ dtanh
        db += dtanh.sum(axis=0)
    dh0 = dprev_h
    return dx, dh0, dWx, dWh, db


def rnn_backward_no_carry(dh, cache):
    x, h0, Wx, Wh, b, h = cache
    T = dh.shape[0]
    dx = np.zeros_like(x)
    dWx, dWh, db = np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)
    dprev_h = np.zeros_like(h0)
    for t in reversed(range(T)):
        dnext_h = dh[t]  # mistake
        prev_h = h[t - 1] if t > 0 else h0
        dtanh = (1 - h[t] ** 2) * dnext_h
        dx[t] = dtanh @ Wx.T
        dprev_h = dtanh @ Wh.T
        dWx += x[t].T @ dtanh
        dWh += prev_h.T @ dtanh
        db += dtanh.sum(axis=0)
    dh0 = dprev_h
    return dx, dh0, dWx, dWh, db


def lstm_backward(dh, cache):
    x, h0, c0, Wx, Wh, b, h, c, i, f, o, g = cache
    T = dh.shape[0]
    dx = np.zeros_like(x)
    dWx, dWh, db = np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)
    dprev_h, dprev_c = np.zeros_like(h0), np.zeros_like(c0)
    for t in reversed(range(T)):
        dnext_h = dh[t] + dprev_h
        prev_h = h[t - 1] if t > 0 else h0
        prev_c = c[t - 1] if t > 0 else c0
        tanh_c = np.tanh(c[t])
        dnext_c = dprev_c + dnext_h * o[t] * (1 - tanh_c**2)
        di = dnext_c * g[t]
        df = dnext_c * prev_c
        do = dnext_h * tanh_c
        dg = dnext_c * i[t]
        da = np.concatenate(
            [
                di * i[t] * (1 - i[t]),
                df * f[t] * (1 - f[t]),
                do * o[t] * (1 - o[t]),
                dg * (1 - g[t] ** 2),
            ],
            axis=1,
        )
        dx[t] = da @ Wx.T
        dprev_h = da @ Wh.T
        dprev_c = dnext_c * f[t]
        dWx += x[t].T @ da
        dWh += prev_h.T @ da
        db += da.sum(axis=0)
    dh0, dc0 = dprev_h, dprev_c
    return dx, dh0, dc0, dWx, dWh, db


def lstm_backward_no_cell_carry(dh, cache):
    x, h0, c0, Wx, Wh, b, h, c, i, f, o, g = cache
    T = dh.shape[0]
    dx = np.zeros_like(x)
    dWx, dWh, db = np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)
    dprev_h, dprev_c = np.zeros_like(h0), np.zeros_like(c0)
    for t in reversed(range(T)):
        dnext_h = dh[t] + dprev_h
        prev_h = h[t - 1] if t > 0 else h0
        prev_c = c[t - 1] if t > 0 else c0
        tanh_c = np.tanh(c[t])
        dnext_c = dnext_h * o[t] * (1 - tanh_c**2)  # mistake
        di = dnext_c * g[t]
        df = dnext_c * prev_c
        do = dnext_h * tanh_c
        dg = dnext_c * i[t]
        da = np.concatenate(
            [
                di * i[t] * (1 - i[t]),
                df * f[t] * (1 - f[t]),
                do * o[t] * (1 - o[t]),
                dg * (1 - g[t] ** 2),
            ],
            axis=1,
        )
        dx[t] = da @ Wx.T
        dprev_h = da @ Wh.T
        dprev_c = dnext_c * f[t]
        dWx += x[t].T @ da
        dWh += prev_h.T @ da
        db += da.sum(axis=0)
    dh0, dc0 = dprev_h, dprev_c
    return dx, dh0, dc0, dWx, dWh, db
