"""Careful hand-written NumPy training steps for the step-speed workloads.

Written the way a careful engineer would write them *without* derive or
codegen: every buffer is allocated once in ``__init__``, every product goes
through ``np.matmul(..., out=)`` with transposes as views, element-wise work
happens in place, the softmax is shifted by its row maximum, the softmax /
cross-entropy delta is the fused ``(p - t) / B``, and the learning rate is
folded into the output delta so that every gradient comes out already scaled
(``W -= g`` is the whole update).  Each class takes ``(params, data)`` (the
dicts a generated module uses, with the spec's names), keeps references to
those arrays and updates the params in place; ``step(lr)`` does one full
step (forward, loss, backward, SGD update) and leaves the loss *before* the
update in ``self.loss``.

The module also describes the workloads (:data:`WORKLOADS`: sizes, names,
dtypes, learning rates, data) for ``step_speed.py``, and checks itself
against a plain textbook float64 step:  ``python -m benchmarks.careful``.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SPECS = Path(__file__).resolve().parent / "specs"


# --- in-place building blocks --------------------------------------------------------------


def _affine(x, W, b, out):
    """out = x W + b, in place."""
    np.matmul(x, W, out=out)
    out += b


def _sigmoid_(a):
    """a = sigmoid(a) in place, as (1 + tanh(a / 2)) / 2: no overflow for any a."""
    a *= 0.5
    np.tanh(a, out=a)
    a *= 0.5
    a += 0.5


def _sigmoid_back_(delta, a, tmp):
    """delta *= a (1 - a) in place, with ``tmp`` (shaped like ``a``) as scratch."""
    np.subtract(1, a, out=tmp)
    tmp *= a
    delta *= tmp


def _relu_back_(delta, h, mask):
    """delta *= (h > 0) in place; h = relu(z) is positive exactly where z is."""
    np.greater(h, 0, out=mask)
    np.multiply(delta, mask, out=delta)


def _softmax_ce_(z, t, p, m, s):
    """p = softmax(z) by rows, in place; returns sum over rows of -t log p.

    ``m`` and ``s`` are (B, 1) scratch for the row maxima and sums.  The loss
    comes from the same pass: -sum(t log p) = sum(m + log s) - sum(t z) for
    targets whose rows sum to 1.
    """
    np.max(z, axis=1, keepdims=True, out=m)
    np.subtract(z, m, out=p)
    np.exp(p, out=p)
    np.sum(p, axis=1, keepdims=True, out=s)
    loss = float(np.sum(np.log(s)) + np.sum(m) - np.vdot(t, z))
    p /= s
    return loss


def _update_(W, b, a, delta, gW, gb):
    """W -= aᵀ delta and b -= 1ᵀ delta (delta already carries the learning rate)."""
    np.matmul(a.T, delta, out=gW)
    W -= gW
    if b is not None:
        np.sum(delta, axis=0, out=gb)
        b -= gb


def _empty(shape, like):
    return np.empty(shape, dtype=like.dtype)


# --- one class per workload ----------------------------------------------------------------


class CarefulSeed000:
    """seed000: u = x W, h = relu(u), y = h S, L = sum((y - t)²); no biases."""

    def __init__(self, params, data):
        self.x, self.t = data["x"], data["t"]
        self.W, self.S = params["W"], params["S"]
        B, n_h, n_y = self.x.shape[0], self.W.shape[1], self.S.shape[1]
        self.h = _empty((B, n_h), self.W)  # u, then h = relu(u) in the same buffer
        self.r = _empty((B, n_y), self.W)  # y, then y - t, then lr δy
        self.dh = _empty((B, n_h), self.W)
        self.mask = np.empty((B, n_h), dtype=bool)
        self.gW, self.gS = np.empty_like(self.W), np.empty_like(self.S)
        self.loss = math.nan

    def step(self, lr):
        x, W, S, h, r, dh = self.x, self.W, self.S, self.h, self.r, self.dh
        np.matmul(x, W, out=h)
        np.maximum(h, 0, out=h)
        np.matmul(h, S, out=r)
        r -= self.t
        self.loss = float(np.vdot(r, r))
        r *= 2 * lr  # lr δy = lr 2 (y - t)
        np.matmul(r, S.T, out=dh)  # before S changes
        _update_(S, None, h, r, self.gS, None)
        _relu_back_(dh, h, self.mask)
        _update_(W, None, x, dh, self.gW, None)


class CarefulMnist:
    """mnist_mlp: sigmoid hidden layers with biases, softmax, cross-entropy mean over B."""

    def __init__(self, params, data):
        self.X, self.T = data["X"], data["T"]
        self.W1, self.b1 = params["W1"], params["b1"]
        self.W2, self.b2 = params["W2"], params["b2"]
        self.W3, self.b3 = params["W3"], params["b3"]
        B = self.X.shape[0]
        h1, h2, n_out = self.W1.shape[1], self.W2.shape[1], self.W3.shape[1]
        like = self.W1
        self.a1, self.d1, self.tmp1 = (_empty((B, h1), like) for _ in range(3))
        self.a2, self.d2, self.tmp2 = (_empty((B, h2), like) for _ in range(3))
        self.z3, self.p = _empty((B, n_out), like), _empty((B, n_out), like)
        self.m, self.s = _empty((B, 1), like), _empty((B, 1), like)
        self.g = {k: np.empty_like(v) for k, v in params.items()}
        self.loss = math.nan

    def step(self, lr):
        X, a1, a2, p, d1, d2, g = self.X, self.a1, self.a2, self.p, self.d1, self.d2, self.g
        B = X.shape[0]
        _affine(X, self.W1, self.b1, a1)
        _sigmoid_(a1)
        _affine(a1, self.W2, self.b2, a2)
        _sigmoid_(a2)
        _affine(a2, self.W3, self.b3, self.z3)
        self.loss = _softmax_ce_(self.z3, self.T, p, self.m, self.s) / B
        p -= self.T
        p *= lr / B  # lr δz3 = lr (p - T) / B
        np.matmul(p, self.W3.T, out=d2)
        _update_(self.W3, self.b3, a2, p, g["W3"], g["b3"])
        _sigmoid_back_(d2, a2, self.tmp2)
        np.matmul(d2, self.W2.T, out=d1)
        _update_(self.W2, self.b2, a1, d2, g["W2"], g["b2"])
        _sigmoid_back_(d1, a1, self.tmp1)
        _update_(self.W1, self.b1, X, d1, g["W1"], g["b1"])


class CarefulIris:
    """iris: sigmoid on every layer including the output, no biases, E = ½ sum((X3 - T)²)."""

    def __init__(self, params, data):
        self.X0, self.T = data["X0"], data["T"]
        self.W1, self.W2, self.W3 = params["W1"], params["W2"], params["W3"]
        n = self.X0.shape[0]
        like = self.W1
        self.a1, self.d1, self.tmp1 = (_empty((n, self.W1.shape[1]), like) for _ in range(3))
        self.a2, self.d2, self.tmp2 = (_empty((n, self.W2.shape[1]), like) for _ in range(3))
        self.a3, self.d3, self.tmp3 = (_empty((n, self.W3.shape[1]), like) for _ in range(3))
        self.g = {k: np.empty_like(v) for k, v in params.items()}
        self.loss = math.nan

    def step(self, lr):
        X0, W1, W2, W3, g = self.X0, self.W1, self.W2, self.W3, self.g
        a1, a2, a3, d1, d2, d3 = self.a1, self.a2, self.a3, self.d1, self.d2, self.d3
        np.matmul(X0, W1, out=a1)
        _sigmoid_(a1)
        np.matmul(a1, W2, out=a2)
        _sigmoid_(a2)
        np.matmul(a2, W3, out=a3)
        _sigmoid_(a3)
        np.subtract(a3, self.T, out=d3)
        self.loss = 0.5 * float(np.vdot(d3, d3))
        d3 *= lr
        _sigmoid_back_(d3, a3, self.tmp3)  # lr δX3_in
        np.matmul(d3, W3.T, out=d2)
        _update_(W3, None, a2, d3, g["W3"], None)
        _sigmoid_back_(d2, a2, self.tmp2)
        np.matmul(d2, W2.T, out=d1)
        _update_(W2, None, a1, d2, g["W2"], None)
        _sigmoid_back_(d1, a1, self.tmp1)
        _update_(W1, None, X0, d1, g["W1"], None)


class CarefulWide:
    """wide: ReLU hidden layers with biases, softmax, cross-entropy mean over B."""

    def __init__(self, params, data):
        self.x, self.t = data["x"], data["t"]
        self.W1, self.b1 = params["W1"], params["b1"]
        self.W2, self.b2 = params["W2"], params["b2"]
        self.W3, self.b3 = params["W3"], params["b3"]
        B = self.x.shape[0]
        n_h1, n_h2, n_out = self.W1.shape[1], self.W2.shape[1], self.W3.shape[1]
        like = self.W1
        self.h1, self.d1 = _empty((B, n_h1), like), _empty((B, n_h1), like)
        self.h2, self.d2 = _empty((B, n_h2), like), _empty((B, n_h2), like)
        self.mask1 = np.empty((B, n_h1), dtype=bool)
        self.mask2 = np.empty((B, n_h2), dtype=bool)
        self.z3, self.p = _empty((B, n_out), like), _empty((B, n_out), like)
        self.m, self.s = _empty((B, 1), like), _empty((B, 1), like)
        self.g = {k: np.empty_like(v) for k, v in params.items()}
        self.loss = math.nan

    def step(self, lr):
        x, h1, h2, p, d1, d2, g = self.x, self.h1, self.h2, self.p, self.d1, self.d2, self.g
        B = x.shape[0]
        _affine(x, self.W1, self.b1, h1)
        np.maximum(h1, 0, out=h1)
        _affine(h1, self.W2, self.b2, h2)
        np.maximum(h2, 0, out=h2)
        _affine(h2, self.W3, self.b3, self.z3)
        self.loss = _softmax_ce_(self.z3, self.t, p, self.m, self.s) / B
        p -= self.t
        p *= lr / B  # lr δz3 = lr (p - t) / B
        np.matmul(p, self.W3.T, out=d2)
        _update_(self.W3, self.b3, h2, p, g["W3"], g["b3"])
        _relu_back_(d2, h2, self.mask2)
        np.matmul(d2, self.W2.T, out=d1)
        _update_(self.W2, self.b2, h1, d2, g["W2"], g["b2"])
        _relu_back_(d1, h1, self.mask1)
        _update_(self.W1, self.b1, x, d1, g["W1"], g["b1"])


class CarefulXor:
    """xor (``specs/xor.nn``, for ``targets_speed.py``): ReLU hidden layer with biases,
    sigmoid output, binary cross-entropy averaged over B·n_out.  The loss comes from
    the logits, -(y log σ(z) + (1 - y) log(1 - σ(z))) = softplus(z) - y z."""

    def __init__(self, params, data):
        self.X, self.Y = data["X"], data["Y"]
        self.W1, self.b1 = params["W1"], params["b1"]
        self.W2, self.b2 = params["W2"], params["b2"]
        B = self.X.shape[0]
        like = self.W1
        self.h, self.d1 = _empty((B, self.W1.shape[1]), like), _empty((B, self.W1.shape[1]), like)
        self.mask = np.empty((B, self.W1.shape[1]), dtype=bool)
        self.z2, self.p = _empty((B, self.W2.shape[1]), like), _empty((B, self.W2.shape[1]), like)
        self.g = {k: np.empty_like(v) for k, v in params.items()}
        self.loss = math.nan

    def step(self, lr):
        X, h, z2, p, d1, g = self.X, self.h, self.z2, self.p, self.d1, self.g
        n = z2.size
        _affine(X, self.W1, self.b1, h)
        np.maximum(h, 0, out=h)
        _affine(h, self.W2, self.b2, z2)
        self.loss = (float(np.logaddexp(0, z2, out=p).sum()) - float(np.vdot(self.Y, z2))) / n
        np.negative(z2, out=p)  # p = σ(z2) = 1 / (1 + exp(-z2))
        np.exp(p, out=p)
        p += 1
        np.reciprocal(p, out=p)
        p -= self.Y
        p *= lr / n  # lr δz2 = lr (p - y) / (B n_out)
        np.matmul(p, self.W2.T, out=d1)
        _update_(self.W2, self.b2, h, p, g["W2"], g["b2"])
        _relu_back_(d1, h, self.mask)
        _update_(self.W1, self.b1, X, d1, g["W1"], g["b1"])


# --- the workloads -------------------------------------------------------------------------


@dataclass(frozen=True)
class Workload:
    """One benchmark network: its spec, sizes, names and how to train it."""

    name: str
    spec: Path
    dtype: str
    widths: tuple[int, ...]  # batch, then n_in, hidden..., n_out
    input: str
    target: str
    weights: tuple[str, ...]
    biases: tuple[str, ...] | None
    hidden: str  # hidden activation: relu | sigmoid
    output: str  # output activation: linear | sigmoid | softmax
    loss: str  # sse: sum((y - t)²) | half_sse: ½ sum((y - t)²) | ce_mean: -sum(t log p) / B
    onehot: bool
    lr: float
    careful: type

    @property
    def batch(self) -> int:
        return self.widths[0]

    @property
    def layers(self) -> list[tuple[int, int]]:
        """(n_in, n_out) of every layer."""
        return list(zip(self.widths[1:-1], self.widths[2:], strict=True))

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """The shape of every param, input and target."""
        B = self.batch
        shapes = {self.input: (B, self.widths[1]), self.target: (B, self.widths[-1])}
        for i, (n_in, n_out) in enumerate(self.layers):
            shapes[self.weights[i]] = (n_in, n_out)
            if self.biases:
                shapes[self.biases[i]] = (n_out,)
        return shapes

    def make_data(self, seed=0) -> dict[str, np.ndarray]:
        """Random inputs (standard normal) and targets (one-hot rows, or normal)."""
        rng = np.random.default_rng(seed)
        B, n_in, n_out = self.batch, self.widths[1], self.widths[-1]
        x = rng.standard_normal((B, n_in))
        if self.onehot:
            t = np.eye(n_out)[rng.integers(0, n_out, B)]
        else:
            t = rng.standard_normal((B, n_out))
        return {self.input: x.astype(self.dtype), self.target: t.astype(self.dtype)}

    def make_params(self, seed=0) -> dict[str, np.ndarray]:
        """Scaled normal weights and small random biases (for the self-check only;
        the benchmark uses the generated module's ``init_params``)."""
        rng = np.random.default_rng(seed)
        params = {}
        for i, (n_in, n_out) in enumerate(self.layers):
            W = rng.standard_normal((n_in, n_out)) * np.sqrt(2.0 / n_in)
            params[self.weights[i]] = W.astype(self.dtype)
            if self.biases:
                params[self.biases[i]] = (0.1 * rng.standard_normal(n_out)).astype(self.dtype)
        return params


def _workload(name, spec, dtype, widths, names, hidden, output, loss, lr, careful):
    inp, tgt, weights, biases = names
    return Workload(
        name,
        SPECS / spec,
        dtype,
        widths,
        inp,
        tgt,
        weights,
        biases,
        hidden,
        output,
        loss,
        loss == "ce_mean",
        lr,
        careful,
    )


WORKLOADS = {
    w.name: w
    for w in [
        _workload(
            "seed000",
            "seed000_bench.nn",
            "float64",
            (64, 1000, 100, 10),
            ("x", "t", ("W", "S"), None),
            "relu",
            "linear",
            "sse",
            1e-4,
            CarefulSeed000,
        ),
        _workload(
            "mnist_mlp",
            "mnist_mlp.nn",
            "float32",
            (128, 784, 128, 64, 10),
            ("X", "T", ("W1", "W2", "W3"), ("b1", "b2", "b3")),
            "sigmoid",
            "softmax",
            "ce_mean",
            0.1,
            CarefulMnist,
        ),
        _workload(
            "iris",
            "iris.nn",
            "float64",
            (150, 4, 8, 8, 3),
            ("X0", "T", ("W1", "W2", "W3"), None),
            "sigmoid",
            "sigmoid",
            "half_sse",
            0.01,
            CarefulIris,
        ),
        _workload(
            "wide",
            "wide.nn",
            "float32",
            (512, 1024, 1024, 1024, 10),
            ("x", "t", ("W1", "W2", "W3"), ("b1", "b2", "b3")),
            "relu",
            "softmax",
            "ce_mean",
            0.01,
            CarefulWide,
        ),
    ]
}


# --- the textbook reference and the self-check ---------------------------------------------


def _activation(name, z):
    if name == "relu":
        return np.maximum(z, 0)
    if name == "sigmoid":
        return 1 / (1 + np.exp(-z))
    if name == "softmax":
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    return z


def _activation_prime(name, z, a):
    if name == "relu":
        return (z > 0).astype(z.dtype)
    if name == "sigmoid":
        return a * (1 - a)
    return np.ones_like(z)


def reference_step(w: Workload, params, data, lr):
    """One textbook SGD step in float64: new arrays everywhere, no tricks.

    Returns the updated params (new float64 arrays) and the loss before the update.
    """
    P = {k: np.asarray(v, np.float64) for k, v in params.items()}
    x = np.asarray(data[w.input], np.float64)
    t = np.asarray(data[w.target], np.float64)
    B = x.shape[0]
    n_layers = len(w.weights)
    acts, zs = [x], []
    for i in range(n_layers):
        z = acts[-1] @ P[w.weights[i]]
        if w.biases:
            z = z + P[w.biases[i]]
        zs.append(z)
        acts.append(_activation(w.output if i == n_layers - 1 else w.hidden, z))
    y = acts[-1]
    if w.loss == "ce_mean":  # softmax output: the delta of softmax + cross-entropy
        loss, delta = -np.sum(t * np.log(y)) / B, (y - t) / B
    else:
        r = y - t
        loss, dy = (np.sum(r**2), 2 * r) if w.loss == "sse" else (0.5 * np.sum(r**2), r)
        delta = dy * _activation_prime(w.output, zs[-1], y)
    grads = {}
    for i in reversed(range(n_layers)):
        grads[w.weights[i]] = acts[i].T @ delta
        if w.biases:
            grads[w.biases[i]] = delta.sum(axis=0)
        if i > 0:
            delta = (delta @ P[w.weights[i]].T) * _activation_prime(w.hidden, zs[i - 1], acts[i])
    return {k: P[k] - lr * grads[k] for k in P}, float(loss)


def rel_diff(a, b) -> float:
    """Norm-wise relative difference ‖a - b‖ / ‖b‖ (in float64)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), np.finfo(np.float64).tiny))


def self_check(tol=1e-6, steps=3, names=None) -> bool:
    """Every careful step against the textbook float64 reference, for ``steps`` steps.

    The careful classes are dtype-generic: they run once in float64 and once in
    the workload's own dtype; the updated params must agree with the
    reference's within ``tol`` (norm-wise relative, per param; float32 rounding
    gives about 3e-7).  In float64 the updates themselves (new - old params,
    i.e. lr times the gradients) must agree within ``tol`` too: a check of the
    gradients that the size of the params cannot hide.
    """
    ok = True
    for w in [WORKLOADS[n] for n in names or WORKLOADS]:
        for dtype in dict.fromkeys(["float64", w.dtype]):
            data = {k: v.astype(dtype) for k, v in w.make_data(seed=1).items()}
            params = {k: v.astype(dtype) for k, v in w.make_params(seed=2).items()}
            ref = {k: v.astype(np.float64) for k, v in params.items()}
            careful = w.careful(params, data)
            worst = {"params": 0.0, "updates": 0.0, "loss": 0.0}
            for _ in range(steps):
                old = {k: v.copy() for k, v in params.items()}
                new, ref_loss = reference_step(w, ref, data, w.lr)
                careful.step(w.lr)
                for k in ref:
                    worst["params"] = max(worst["params"], rel_diff(params[k], new[k]))
                    if dtype == "float64":
                        update = rel_diff(params[k] - old[k], new[k] - ref[k])
                        worst["updates"] = max(worst["updates"], update)
                worst["loss"] = max(worst["loss"], abs(careful.loss - ref_loss) / abs(ref_loss))
                ref = new
            passed = max(worst.values()) <= tol
            ok &= passed
            found = ", ".join(f"{k} {v:.1e}" for k, v in worst.items() if v)
            print(
                f"{w.name:10} {dtype}: rel diff {found} ({steps} steps)  "
                f"{'ok' if passed else 'FAILED'}"
            )
    return ok


def main(argv=None) -> int:
    """``python -m benchmarks.careful [--quick]``: the self-check (quick: one step)."""
    import argparse

    ap = argparse.ArgumentParser(description="check the careful steps against the textbook")
    ap.add_argument("--quick", action="store_true", help="one step of the two smallest workloads")
    args = ap.parse_args(argv)
    if args.quick:
        smallest = sorted(WORKLOADS, key=lambda n: WORKLOADS[n].batch * sum(WORKLOADS[n].widths))
        return 0 if self_check(steps=1, names=smallest[:2]) else 1
    return 0 if self_check() else 1


if __name__ == "__main__":
    sys.exit(main())
