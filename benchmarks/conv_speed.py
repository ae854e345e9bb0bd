"""Training-step speed of a two-convolution spec: generated NumPy against careful im2col NumPy.

The spec (below) is two 3×3 convolutions with padding 1 and a ReLU between,
a squared-error loss: its generated module (``codegen.generate``: einsum over
``sliding_window_view`` windows, derived adjoints) against a step written by
hand in careful NumPy (im2col as one copy of the windows, one matrix product
per convolution, col2im as a scatter-add over the nine kernel offsets).
Contenders:

* generated: ``mod.sgd_step(params, mod.gradients(params, data), lr)``;
* generated (fused): ``mod.bind_step(params, data)`` once, then ``step(lr)``;
* careful: the hand-written im2col step.

Before timing, one step of each contender is checked against the careful
step.  A time is the median over rounds of the per-round mean step time.

Run from the repository root::

    python -m benchmarks.conv_speed           # the sizes below
    python -m benchmarks.conv_speed --quick   # tiny sizes, a smoke run
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, a smoke run")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args(argv)
    rounds, steps = (1, 1) if args.quick else (args.rounds, args.steps)
    sizes = QUICK if args.quick else SIZES
    result, problems = bench("conv", sizes, rounds, steps, spec=SPEC, careful=careful)
    shown = ", ".join(f"{k}={v}" for k, v in sizes.items())
    ms = {k: f"{v * 1e3:.2f} ms" for k, v in result.items()}
    print("| spec | sizes | generated | generated (fused) | careful (im2col) | fused / careful |")
    print("|---|---|---|---|---|---|")
    ratio = result["generated (fused)"] / result["careful"]
    print(
        f"| two 3×3 convs | {shown} | {ms['generated']} | {ms['generated (fused)']} | "
        f"{ms['careful']} | {ratio:.2f} |"
    )
    for p in problems:
        print("CHECK FAILED:", p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
