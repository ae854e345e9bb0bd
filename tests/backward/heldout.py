"""Backward passes written after the verifier's other tests, to measure its hit rate on code
it was not tuned on (benchmarks/verify_hit_rate.py).  Our own code in the styles of cs231n's
layers (relu, rnn step), nnfs's softmax-loss class and Karpathy's exercise 3."""

import numpy as np


# --- cs231n layers --------------------------------------------------------------------------
def relu_backward(dout, cache):
    dx, x = None, cache
    dx = dout * (x > 0)
    return dx


def relu_backward_mask(dout, cache):
    x = cache
    dx = dout.copy()
    dx[x < 0] = 0
    return dx


def relu_backward_wrong(dout, cache):
    x = cache
    dx = x > 0  # mistake
    return dx


def rnn_step_backward(dnext_h, cache):
    x, prev_h, Wx, Wh, next_h = cache
    dtanh = (1 - next_h**2) * dnext_h
    dx = dtanh.dot(Wx.T)
    dprev_h = dtanh.dot(Wh.T)
    dWx = x.T.dot(dtanh)
    dWh = prev_h.T.dot(dtanh)
    db = dtanh.sum(axis=0)
    return dx, dprev_h, dWx, dWh, db


def rnn_step_backward_wrong(dnext_h, cache):
    x, prev_h, Wx, Wh, next_h = cache
    dtanh = (1 - next_h) ** 2 * dnext_h  # mistake
    dx = dtanh.dot(Wx.T)
    dprev_h = dtanh.dot(Wh.T)
    dWx = x.T.dot(dtanh)
    dWh = prev_h.T.dot(dtanh)
    db = dtanh.sum(axis=0)
    return dx, dprev_h, dWx, dWh, db


# --- nnfs: the combined softmax + cross-entropy backward, a method over labels ---------------
class Activation_Softmax_Loss_CategoricalCrossentropy:
    def backward(self, dvalues, y_true):
        samples = len(dvalues)
        if len(y_true.shape) == 2:
            y_true = np.argmax(y_true, axis=1)
        self.dinputs = dvalues.copy()
        self.dinputs[range(samples), y_true] -= 1
        self.dinputs = self.dinputs / samples
        return self.dinputs

    def backward_no_mean(self, dvalues, y_true):
        samples = len(dvalues)
        self.dinputs = dvalues.copy()
        self.dinputs[range(samples), y_true] -= 1  # mistake
        return self.dinputs


# --- Karpathy, exercise 3: batch norm's backward pass in one line -----------------------------
def karpathy_bn_one_line(X, bngain, bnvar_inv, bnraw, dhpreact):
    n = X.shape[0]
    dhprebn = (
        bngain
        * bnvar_inv
        / n
        * (n * dhpreact - dhpreact.sum(0) - n / (n - 1) * bnraw * (dhpreact * bnraw).sum(0))
    )
    return dhprebn


def karpathy_bn_one_line_bessel(X, bngain, bnvar_inv, bnraw, dhpreact):
    n = X.shape[0]
    dhprebn = (  # mistake: the n/(n - 1) of Bessel's correction is missing
        bngain
        * bnvar_inv
        / n
        * (n * dhpreact - dhpreact.sum(0) - bnraw * (dhpreact * bnraw).sum(0))
    )
    return dhprebn
