"""Backward passes over integer class labels, written the way cs231n and Karpathy write
them (our own code in their styles): fancy indexing ``x[np.arange(N), y]``,
``dscores[range(N), y] -= 1``.  A line marked ``# mistake`` is the first wrong one.  The
tests run these functions for real against finite differences; ``derive verify`` only
reads their source."""

import numpy as np


def _softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


# --- cs231n, softmax_loss_vectorized ----------------------------------------------------------
def softmax_loss_vectorized(W, X, y, reg):
    num_train = X.shape[0]
    scores = X.dot(W)
    scores -= np.max(scores, axis=1, keepdims=True)
    exp_scores = np.exp(scores)
    probs = exp_scores / np.sum(exp_scores, axis=1, keepdims=True)
    loss = -np.sum(np.log(probs[np.arange(num_train), y])) / num_train
    loss += reg * np.sum(W * W)
    dscores = probs.copy()
    dscores[np.arange(num_train), y] -= 1
    dscores /= num_train
    dW = X.T.dot(dscores)
    dW += 2 * reg * W
    return loss, dW


def softmax_loss_vectorized_no_onehot(W, X, y, reg):
    num_train = X.shape[0]
    scores = X.dot(W)
    scores -= np.max(scores, axis=1, keepdims=True)
    exp_scores = np.exp(scores)
    probs = exp_scores / np.sum(exp_scores, axis=1, keepdims=True)
    loss = -np.sum(np.log(probs[np.arange(num_train), y])) / num_train
    loss += reg * np.sum(W * W)
    dscores = probs / num_train  # mistake
    dW = X.T.dot(dscores)
    dW += 2 * reg * W
    return loss, dW


def softmax_grad(X, y, W, probs, reg):
    N = X.shape[0]
    dscores = probs.copy()
    dscores[np.arange(N), y] -= 1
    dscores /= N
    dW = X.T.dot(dscores) + 2 * reg * W
    return dW


def softmax_grad_plus(X, y, W, probs, reg):
    N = X.shape[0]
    dscores = probs / N
    dscores[np.arange(N), y] += 1 / N  # mistake
    dW = X.T.dot(dscores) + 2 * reg * W
    return dW


# --- cs231n, svm_loss_vectorized --------------------------------------------------------------
def svm_loss_vectorized(W, X, y, reg):
    num_train = X.shape[0]
    scores = X.dot(W)
    correct_class_scores = scores[np.arange(num_train), y]
    margins = np.maximum(0, scores - correct_class_scores[:, np.newaxis] + 1)
    margins[np.arange(num_train), y] = 0
    loss = np.sum(margins) / num_train + reg * np.sum(W * W)
    binary = margins
    binary[margins > 0] = 1
    row_sum = np.sum(binary, axis=1)
    binary[np.arange(num_train), y] = -row_sum
    dscores = binary / num_train
    dW = X.T.dot(dscores) + 2 * reg * W
    return loss, dW


def svm_loss_vectorized_correct_class(W, X, y, reg):
    num_train = X.shape[0]
    scores = X.dot(W)
    correct_class_scores = scores[np.arange(num_train), y]
    margins = np.maximum(0, scores - correct_class_scores[:, np.newaxis] + 1)
    margins[np.arange(num_train), y] = 0
    loss = np.sum(margins) / num_train + reg * np.sum(W * W)
    binary = margins
    binary[margins > 0] = 1
    dscores = binary / num_train  # mistake
    dW = X.T.dot(dscores) + 2 * reg * W
    return loss, dW


# --- Karpathy, "becoming a backprop ninja": the cross-entropy, atom by atom and fused ------
def karpathy_ce_backward(h, Yb, W2, logits, counts, counts_sum, counts_sum_inv, probs, logprobs):
    n = h.shape[0]
    dlogprobs = np.zeros_like(logprobs)
    dlogprobs[range(n), Yb] = -1.0 / n
    dprobs = (1.0 / probs) * dlogprobs
    dcounts_sum_inv = (counts * dprobs).sum(1, keepdims=True)
    dcounts = counts_sum_inv * dprobs
    dcounts_sum = (-(counts_sum**-2)) * dcounts_sum_inv
    dcounts += np.ones_like(counts) * dcounts_sum
    dlogits = counts * dcounts
    dW2 = h.T @ dlogits
    db2 = dlogits.sum(0)
    return dW2, db2


def karpathy_ce_backward_sign(
    h, Yb, W2, logits, counts, counts_sum, counts_sum_inv, probs, logprobs
):
    n = h.shape[0]
    dlogprobs = np.zeros_like(logprobs)
    dlogprobs[range(n), Yb] = 1.0 / n  # mistake
    dprobs = (1.0 / probs) * dlogprobs
    dcounts_sum_inv = (counts * dprobs).sum(1, keepdims=True)
    dcounts = counts_sum_inv * dprobs
    dcounts_sum = (-(counts_sum**-2)) * dcounts_sum_inv
    dcounts += np.ones_like(counts) * dcounts_sum
    dlogits = counts * dcounts
    dW2 = h.T @ dlogits
    db2 = dlogits.sum(0)
    return dW2, db2


def karpathy_ce_fused(h, Yb, W2, logits, counts, counts_sum, counts_sum_inv, probs, logprobs):
    n = h.shape[0]
    dlogits = _softmax(logits, 1)
    dlogits[range(n), Yb] -= 1
    dlogits /= n
    dW2 = h.T @ dlogits
    db2 = dlogits.sum(0)
    return dW2, db2


def karpathy_ce_fused_no_mean(
    h, Yb, W2, logits, counts, counts_sum, counts_sum_inv, probs, logprobs
):
    n = h.shape[0]
    dlogits = _softmax(logits, 1)
    dlogits[range(n), Yb] -= 1  # n·∂loss/∂logits, a per-example adjoint: not yet wrong
    dW2 = h.T @ dlogits  # mistake
    db2 = dlogits.sum(0)
    return dW2, db2
