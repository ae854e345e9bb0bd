"""Training-step speed of convolution specs: generated NumPy, careful im2col NumPy, PyTorch.

Two specs: ``two convs`` (below: two 3×3 convolutions with padding 1 and a
ReLU between, a squared-error loss) and the bundled ``cnn_digits`` (a 3×3
convolution with a bias, ReLU, 2×2 max-pooling, a linear layer, softmax
cross-entropy with integer labels, at the 8×8 digits' sizes).  Contenders:

* generated: ``mod.sgd_step(params, mod.gradients(params, data), lr)``;
* generated (fused): ``mod.bind_step(params, data)`` once, then ``step(lr)``;
* careful: a step written by hand in careful NumPy (im2col as one copy of the
  windows, one matrix product per convolution, col2im as a scatter-add over
  the nine kernel offsets; max-pooling by a reshape into 2×2 blocks, argmax,
  and ``np.put_along_axis`` back);
* PyTorch (eager, CPU): ``torch.nn.functional`` forward, ``torch.autograd.grad``,
  an in-place SGD update, in float64 on tensors sharing the params' memory.

Before timing, one step of each contender is checked against the careful
step.  A time is the median over rounds of the per-round mean step time.

Run from the repository root (``OMP_NUM_THREADS=1`` for one thread each)::

    python -m benchmarks.conv_speed           # the sizes below
    python -m benchmarks.conv_speed --quick   # tiny sizes, NumPy only: a smoke run
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from benchmarks.tensor_speed import bench

SPEC = """\
input  x[B, C, H, W]
target t[B, G, H, W]
param  K1[F, C, 3, 3], K2[G, F, 3, 3]
h = relu(conv2d(x, K1, padding=1))
z = conv2d(h, K2, padding=1)
L = sum((z - t) ** 2) / B
"""
SIZES = {"B": 32, "C": 3, "H": 16, "W": 16, "F": 16, "G": 8}
QUICK = {"B": 2, "C": 2, "H": 4, "W": 5, "F": 3, "G": 2}
CNN_SIZES = {"N": 256, "F": 16}
CNN_QUICK = {"N": 4, "F": 2}


def im2col(x: np.ndarray) -> np.ndarray:
    """``(B H W, C 9)`` rows of 3×3 windows of ``x`` padded by 1 (one copy)."""
    b, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    win = np.lib.stride_tricks.sliding_window_view(xp, (3, 3), axis=(2, 3))
    return win.transpose(0, 2, 3, 1, 4, 5).reshape(b * h * w, c * 9)


def col2im(cols: np.ndarray, shape: tuple) -> np.ndarray:
    """The adjoint of :func:`im2col`: each window's entries added back (9 offsets)."""
    b, c, h, w = shape
    win = cols.reshape(b, h, w, c, 3, 3)
    out = np.zeros((b, c, h + 2, w + 2))
    for p in range(3):
        for q in range(3):
            out[:, :, p : p + h, q : q + w] += win[:, :, :, :, p, q].transpose(0, 3, 1, 2)
    return out[:, :, 1:-1, 1:-1]


def conv(cols: np.ndarray, k: np.ndarray, b: int, h: int, w: int) -> np.ndarray:
    return (cols @ k.reshape(k.shape[0], -1).T).reshape(b, h, w, -1).transpose(0, 3, 1, 2)


def careful(p: dict, data: dict, lr: float) -> float:
    """One step, written by hand with im2col."""
    x, t = data["x"], data["t"]
    k1, k2 = p["K1"], p["K2"]
    b, _, h, w = x.shape
    cols1 = im2col(x)
    a = conv(cols1, k1, b, h, w)
    hid = np.maximum(a, 0)
    cols2 = im2col(hid)
    z = conv(cols2, k2, b, h, w)
    diff = z - t
    loss = float(np.vdot(diff, diff)) / b
    dz = diff.transpose(0, 2, 3, 1).reshape(b * h * w, -1) * (2 / b)
    dk2 = (dz.T @ cols2).reshape(k2.shape)
    dh = col2im(dz @ k2.reshape(k2.shape[0], -1), hid.shape)
    dh *= a > 0
    dk1 = (dh.transpose(0, 2, 3, 1).reshape(b * h * w, -1).T @ cols1).reshape(k1.shape)
    k1 -= lr * dk1
    k2 -= lr * dk2
    return loss


def careful_cnn(p: dict, data: dict, lr: float) -> float:
    """One step of cnn_digits, written by hand: im2col, 2×2 blocks, softmax cross-entropy."""
    x, y = data["X"], data["y"]
    k1, b1, w2, b2 = p["K1"], p["b1"], p["W2"], p["b2"]
    n, _, h, w = x.shape
    f = k1.shape[0]
    cols = im2col(x)
    a = conv(cols, k1, n, h, w) + b1[:, None, None]
    hid = np.maximum(a, 0)
    blocks = hid.reshape(n, f, h // 2, 2, w // 2, 2).transpose(0, 1, 2, 4, 3, 5)
    blocks = blocks.reshape(n, f, h // 2, w // 2, 4)
    at = blocks.argmax(axis=-1)[..., None]
    pooled = np.take_along_axis(blocks, at, axis=-1)[..., 0]
    flat = pooled.reshape(n, -1)
    scores = flat @ w2 + b2
    shifted = scores - scores.max(axis=1, keepdims=True)
    logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -float(logp[np.arange(n), y].mean())
    ds = np.exp(logp)
    ds[np.arange(n), y] -= 1
    ds /= n
    dpooled = (ds @ w2.T).reshape(pooled.shape)
    dblocks = np.zeros_like(blocks)
    np.put_along_axis(dblocks, at, dpooled[..., None], axis=-1)
    dh = dblocks.reshape(n, f, h // 2, w // 2, 2, 2).transpose(0, 1, 2, 4, 3, 5)
    da = (dh.reshape(n, f, h, w) * (a > 0)).transpose(0, 2, 3, 1).reshape(n * h * w, f)
    k1 -= lr * (da.T @ cols).reshape(k1.shape)
    b1 -= lr * da.sum(axis=0)
    w2 -= lr * (flat.T @ ds)
    b2 -= lr * ds.sum(axis=0)
    return loss


def _torch(forward):
    """A contender: ``forward(tensors, data)`` gives the loss; autograd and SGD in place."""

    def make(params: dict, data: dict, lr: float):
        import torch

        own = {k: v.copy() for k, v in params.items()}
        leaves = {k: torch.from_numpy(v).requires_grad_() for k, v in own.items()}
        tdata = {k: torch.from_numpy(np.asarray(v)) for k, v in data.items()}

        def step() -> float:
            loss = forward(leaves, tdata)
            grads = torch.autograd.grad(loss, list(leaves.values()))
            with torch.no_grad():
                for t, g in zip(leaves.values(), grads, strict=True):
                    t.sub_(lr * g)  # the numpy arrays in ``own`` share this memory
            return float(loss.detach())

        return own, step

    return make


def _torch_convs(p: dict, d: dict):
    from torch.nn import functional as tf

    z = tf.conv2d(tf.relu(tf.conv2d(d["x"], p["K1"], padding=1)), p["K2"], padding=1)
    return ((z - d["t"]) ** 2).sum() / d["x"].shape[0]


def _torch_cnn(p: dict, d: dict):
    from torch.nn import functional as tf

    h = tf.relu(tf.conv2d(d["X"], p["K1"], p["b1"], padding=1))
    flat = tf.max_pool2d(h, 2).reshape(d["X"].shape[0], -1)
    return tf.cross_entropy(flat @ p["W2"] + p["b2"], d["y"])


ROWS = {  # name: (label, spec, sizes, quick sizes, careful, PyTorch loss)
    "conv": ("two 3×3 convs", SPEC, SIZES, QUICK, careful, _torch_convs),
    "cnn_digits": ("cnn_digits", None, CNN_SIZES, CNN_QUICK, careful_cnn, _torch_cnn),
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, NumPy only: a smoke run")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args(argv)
    rounds, steps = (1, 1) if args.quick else (args.rounds, args.steps)
    print(
        "| spec | sizes | generated | generated (fused) | careful (im2col) | PyTorch (eager) "
        "| fused / careful | fused / PyTorch |"
    )
    print("|---|---|---|---|---|---|---|---|")
    failed = []
    for name, (label, spec, full, quick, hand, loss) in ROWS.items():
        sizes = quick if args.quick else full
        extra = {} if args.quick else {"torch": _torch(loss)}  # --quick: no torch import
        result, problems = bench(name, sizes, rounds, steps, spec=spec, careful=hand, extra=extra)
        failed += problems
        shown = ", ".join(f"{k}={v}" for k, v in sizes.items())
        ms = {k: f"{v * 1e3:.2f} ms" for k, v in result.items()}
        fused = result["generated (fused)"]
        torch = result.get("torch", float("nan"))
        ms.setdefault("torch", "–")
        print(
            f"| {label} | {shown} | {ms['generated']} | {ms['generated (fused)']} | "
            f"{ms['careful']} | {ms['torch']} | {fused / result['careful']:.2f} | "
            f"{fused / torch:.2f} |"
        )
    for p in failed:
        print("CHECK FAILED:", p, file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
