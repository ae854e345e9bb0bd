"""Backpropagation through time as cs231n's ``rnn_backward(dh, cache)`` writes it, right and
with the classic mistakes.  Fixtures of tests/test_verify_steps.py: the line marked
``# mistake`` is the first wrong line, and EXPECTED holds its diagnosis (a part of it).
The verifier never runs this file; the test runs it for real to label its gradients by
finite differences."""

import numpy as np

EXPECTED = {
    "rnn_backward_no_carry": "not accumulated from the next step",
    "rnn_backward_tanh_output": "the derivative of tanh taken at its output",
    "rnn_backward_no_sum": "the accumulation over t is missing",
}


def rnn_backward(dh, cache):
    x, h0, Wx, Wh, b, h = cache
    N, T, H = dh.shape
    dx = np.zeros_like(x)
    dWx, dWh, db = np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)
    dprev_h = np.zeros_like(h0)
    for t in reversed(range(T)):
        dnext_h = dh[:, t, :] + dprev_h
        next_h = h[:, t, :]
        prev_h = h[:, t - 1, :] if t > 0 else h0
        dtanh = (1 - next_h**2) * dnext_h
        dx[:, t, :] = dtanh @ Wx.T
        dprev_h = dtanh @ Wh.T
        dWx += x[:, t, :].T @ dtanh
        dWh += prev_h.T @ dtanh
        db += dtanh.sum(axis=0)
    dh0 = dprev_h
    return dx, dh0, dWx, dWh, db


def rnn_backward_no_carry(dh, cache):
    x, h0, Wx, Wh, b, h = cache
    N, T, H = dh.shape
    dx = np.zeros_like(x)
    dWx, dWh, db = np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)
    dprev_h = np.zeros_like(h0)
    for t in reversed(range(T)):
        dnext_h = dh[:, t, :]  # mistake
        next_h = h[:, t, :]
        prev_h = h[:, t - 1, :] if t > 0 else h0
        dtanh = (1 - next_h**2) * dnext_h
        dx[:, t, :] = dtanh @ Wx.T
        dprev_h = dtanh @ Wh.T
        dWx += x[:, t, :].T @ dtanh
        dWh += prev_h.T @ dtanh
        db += dtanh.sum(axis=0)
    dh0 = dprev_h
    return dx, dh0, dWx, dWh, db


def rnn_backward_tanh_output(dh, cache):
    x, h0, Wx, Wh, b, h = cache
    N, T, H = dh.shape
    dx = np.zeros_like(x)
    dWx, dWh, db = np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)
    dprev_h = np.zeros_like(h0)
    for t in reversed(range(T)):
        dnext_h = dh[:, t, :] + dprev_h
        next_h = h[:, t, :]
        prev_h = h[:, t - 1, :] if t > 0 else h0
        dtanh = (1 - np.tanh(next_h) ** 2) * dnext_h  # mistake
        dx[:, t, :] = dtanh @ Wx.T
        dprev_h = dtanh @ Wh.T
        dWx += x[:, t, :].T @ dtanh
        dWh += prev_h.T @ dtanh
        db += dtanh.sum(axis=0)
    dh0 = dprev_h
    return dx, dh0, dWx, dWh, db


def rnn_backward_no_sum(dh, cache):
    x, h0, Wx, Wh, b, h = cache
    N, T, H = dh.shape
    dx = np.zeros_like(x)
    dWx, dWh, db = np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)
    dprev_h = np.zeros_like(h0)
    for t in reversed(range(T)):
        dnext_h = dh[:, t, :] + dprev_h
        next_h = h[:, t, :]
        prev_h = h[:, t - 1, :] if t > 0 else h0
        dtanh = (1 - next_h**2) * dnext_h
        dx[:, t, :] = dtanh @ Wx.T
        dprev_h = dtanh @ Wh.T
        dWx = x[:, t, :].T @ dtanh  # mistake
        dWh += prev_h.T @ dtanh
        db += dtanh.sum(axis=0)
    dh0 = dprev_h
    return dx, dh0, dWx, dWh, db
