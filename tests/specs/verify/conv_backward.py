"""Hand-written backward passes of a convolution and an average pool, in cs231n's style
(``conv_backward_naive(dout, cache)``), naive (nested loops) and vectorised, right and with
the classic mistakes.  Fixtures of tests/test_verify_windows.py: the line marked
``# mistake`` is the first wrong line, and EXPECTED holds its diagnosis (a part of it).
The verifier never runs this file; the test runs it for real to label its gradients by
finite differences."""

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

EXPECTED = {
    "conv_backward_naive_stride": "the stride is ignored in the input gradient",
    "conv_backward_naive_dw_stride": "the stride is ignored in the kernel gradient",
    "conv_backward_naive_uncropped": "the padding is not cropped",
    "conv_backward_vectorized_noflip": "the kernel is not flipped",
    "avg_pool_backward_no_mean": "the average's 1/4 is missing",
    "avg_pool_backward_stride": "the stride is ignored in the input gradient",
    "max_pool_backward_everywhere": "routed to every entry of its window",
    "max_pool_backward_swapped": "row and column swapped",
}


def conv_backward_naive(dout, cache):
    x, w, b, conv_param = cache
    stride, pad = conv_param["stride"], conv_param["pad"]
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    _, _, H_out, W_out = dout.shape
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), mode="constant")
    dx_pad = np.zeros_like(x_pad)
    dw = np.zeros_like(w)
    db = np.zeros_like(b)
    for n in range(N):
        for f in range(F):
            db[f] += np.sum(dout[n, f])
            for i in range(H_out):
                for j in range(W_out):
                    hs, ws = i * stride, j * stride
                    dw[f] += x_pad[n, :, hs : hs + HH, ws : ws + WW] * dout[n, f, i, j]
                    dx_pad[n, :, hs : hs + HH, ws : ws + WW] += w[f] * dout[n, f, i, j]
    dx = dx_pad[:, :, pad : pad + H, pad : pad + W]
    return dx, dw, db


def conv_backward_naive_stride(dout, cache):
    x, w, b, conv_param = cache
    stride, pad = conv_param["stride"], conv_param["pad"]
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    _, _, H_out, W_out = dout.shape
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), mode="constant")
    dx_pad = np.zeros_like(x_pad)
    dw = np.zeros_like(w)
    db = np.zeros_like(b)
    for n in range(N):
        for f in range(F):
            db[f] += np.sum(dout[n, f])
            for i in range(H_out):
                for j in range(W_out):
                    hs, ws = i * stride, j * stride
                    dw[f] += x_pad[n, :, hs : hs + HH, ws : ws + WW] * dout[n, f, i, j]
                    d = w[f] * dout[n, f, i, j]
                    dx_pad[n, :, i : i + HH, j : j + WW] += d  # mistake
    dx = dx_pad[:, :, pad : pad + H, pad : pad + W]
    return dx, dw, db


def conv_backward_naive_dw_stride(dout, cache):
    x, w, b, conv_param = cache
    stride, pad = conv_param["stride"], conv_param["pad"]
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    _, _, H_out, W_out = dout.shape
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), mode="constant")
    dx_pad = np.zeros_like(x_pad)
    dw = np.zeros_like(w)
    db = np.zeros_like(b)
    for n in range(N):
        for f in range(F):
            db[f] += np.sum(dout[n, f])
            for i in range(H_out):
                for j in range(W_out):
                    hs, ws = i * stride, j * stride
                    window = x_pad[n, :, i : i + HH, j : j + WW]
                    dw[f] += window * dout[n, f, i, j]  # mistake
                    dx_pad[n, :, hs : hs + HH, ws : ws + WW] += w[f] * dout[n, f, i, j]
    dx = dx_pad[:, :, pad : pad + H, pad : pad + W]
    return dx, dw, db


def conv_backward_naive_uncropped(dout, cache):
    x, w, b, conv_param = cache
    stride, pad = conv_param["stride"], conv_param["pad"]
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    _, _, H_out, W_out = dout.shape
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), mode="constant")
    dx = np.zeros_like(x_pad)
    dw = np.zeros_like(w)
    db = np.zeros_like(b)
    for n in range(N):
        for f in range(F):
            db[f] += np.sum(dout[n, f])
            for i in range(H_out):
                for j in range(W_out):
                    hs, ws = i * stride, j * stride
                    dw[f] += x_pad[n, :, hs : hs + HH, ws : ws + WW] * dout[n, f, i, j]
                    dx[n, :, hs : hs + HH, ws : ws + WW] += w[f] * dout[n, f, i, j]  # mistake
    return dx, dw, db


def conv_backward_vectorized(dout, cache):
    x, w, b, conv_param = cache
    pad = conv_param["pad"]
    F, C, HH, WW = w.shape
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    windows = sliding_window_view(x_pad, (HH, WW), axis=(2, 3))
    db = dout.sum(axis=(0, 2, 3))
    dw = np.einsum("nchwpq,nfhw->fcpq", windows, dout)
    # the input gradient: the full convolution of dout with the flipped kernel
    ph, pw = HH - 1 - pad, WW - 1 - pad
    dout_pad = np.pad(dout, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    dwin = sliding_window_view(dout_pad, (HH, WW), axis=(2, 3))
    w_rot = w[:, :, ::-1, ::-1]
    dx = np.einsum("nfhwpq,fcpq->nchw", dwin, w_rot)
    return dx, dw, db


def conv_backward_vectorized_noflip(dout, cache):
    x, w, b, conv_param = cache
    pad = conv_param["pad"]
    F, C, HH, WW = w.shape
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    windows = sliding_window_view(x_pad, (HH, WW), axis=(2, 3))
    db = dout.sum(axis=(0, 2, 3))
    dw = np.einsum("nchwpq,nfhw->fcpq", windows, dout)
    ph, pw = HH - 1 - pad, WW - 1 - pad
    dout_pad = np.pad(dout, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    dwin = sliding_window_view(dout_pad, (HH, WW), axis=(2, 3))
    dx = np.einsum("nfhwpq,fcpq->nchw", dwin, w)  # mistake
    return dx, dw, db


def avg_pool_backward_naive(dout, cache):
    x, pool_param = cache
    ph, pw, stride = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    N, C, H, W = x.shape
    _, _, H_out, W_out = dout.shape
    dx = np.zeros_like(x)
    for n in range(N):
        for c in range(C):
            for i in range(H_out):
                for j in range(W_out):
                    hs, ws = i * stride, j * stride
                    dx[n, c, hs : hs + ph, ws : ws + pw] += dout[n, c, i, j] / (ph * pw)
    return dx


def avg_pool_backward_no_mean(dout, cache):
    x, pool_param = cache
    ph, pw, stride = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    N, C, H, W = x.shape
    _, _, H_out, W_out = dout.shape
    dx = np.zeros_like(x)
    for n in range(N):
        for c in range(C):
            for i in range(H_out):
                for j in range(W_out):
                    hs, ws = i * stride, j * stride
                    dx[n, c, hs : hs + ph, ws : ws + pw] += dout[n, c, i, j]  # mistake
    return dx


def avg_pool_backward_stride(dout, cache):
    x, pool_param = cache
    ph, pw = pool_param["pool_height"], pool_param["pool_width"]
    N, C, H, W = x.shape
    _, _, H_out, W_out = dout.shape
    dx = np.zeros_like(x)
    for i in range(H_out):
        for j in range(W_out):
            d = dout[:, :, i, j, None, None] / (ph * pw)
            dx[:, :, i : i + ph, j : j + pw] += d  # mistake
    return dx


def avg_pool_backward_vectorized(dout, cache):
    x, pool_param = cache
    ph, pw = pool_param["pool_height"], pool_param["pool_width"]
    # non-overlapping windows (stride = size): each entry gets its window's dout / (ph * pw)
    dx = np.repeat(np.repeat(dout, ph, axis=2), pw, axis=3) / (ph * pw)
    return dx


def max_pool_backward_naive(dout, cache):
    x, pool_param = cache
    ph, pw, stride = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    N, C, H, W = x.shape
    H_out = 1 + (H - ph) // stride
    W_out = 1 + (W - pw) // stride
    dx = np.zeros_like(x)
    for n in range(N):
        for c in range(C):
            for i in range(H_out):
                for j in range(W_out):
                    window = x[n, c, i * stride : i * stride + ph, j * stride : j * stride + pw]
                    r, s = np.unravel_index(np.argmax(window), window.shape)
                    dx[n, c, i * stride + r, j * stride + s] += dout[n, c, i, j]
    return dx


def max_pool_backward_mask(dout, cache):
    x, pool_param = cache
    ph, pw, stride = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    _, _, H_out, W_out = dout.shape
    dx = np.zeros_like(x)
    for i in range(H_out):
        for j in range(W_out):
            window = x[:, :, i * stride : i * stride + ph, j * stride : j * stride + pw]
            mask = window == np.max(window, axis=(2, 3), keepdims=True)
            d = mask * dout[:, :, i, j, None, None]
            dx[:, :, i * stride : i * stride + ph, j * stride : j * stride + pw] += d
    return dx


def max_pool_backward_everywhere(dout, cache):
    x, pool_param = cache
    ph, pw, stride = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    _, _, H_out, W_out = dout.shape
    dx = np.zeros_like(x)
    for i in range(H_out):
        for j in range(W_out):
            d = dout[:, :, i, j, None, None]
            dx[:, :, i * stride : i * stride + ph, j * stride : j * stride + pw] += d  # mistake
    return dx


def max_pool_backward_unravel(dout, cache):
    x, pool_param = cache
    ph, pw, stride = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    N, C, H, W = x.shape
    _, _, H_out, W_out = dout.shape
    dx = np.zeros_like(x)
    for n in range(N):
        for c in range(C):
            for i in range(H_out):
                for j in range(W_out):
                    window = x[n, c, i * stride : i * stride + ph, j * stride : j * stride + pw]
                    k = np.argmax(window)
                    dx[n, c, i * stride + k // ph, j * stride + k % ph] += dout[n, c, i, j]
    return dx


def max_pool_backward_swapped(dout, cache):
    x, pool_param = cache
    ph, pw, stride = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    N, C, H, W = x.shape
    _, _, H_out, W_out = dout.shape
    dx = np.zeros_like(x)
    for n in range(N):
        for c in range(C):
            for i in range(H_out):
                for j in range(W_out):
                    window = x[n, c, i * stride : i * stride + ph, j * stride : j * stride + pw]
                    k = np.argmax(window)
                    d = dout[n, c, i, j]
                    dx[n, c, i * stride + k % pw, j * stride + k // pw] += d  # mistake
    return dx
