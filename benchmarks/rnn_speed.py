"""One training step of the generated char_rnn and char_lstm against careful hand-written
NumPy BPTT and PyTorch CPU eager (issue 15, item 5).

Each contender computes the loss and every gradient of the bundled spec (one-hot
characters ``x[T, B, V]``, next characters ``y``) and takes one SGD step in place.
*careful* is the cs231n-style BPTT (``rnn_backward``, ``lstm_backward``) a person
who knows NumPy writes: the input projections of all steps in one product before
the loop, the deltas of all steps stacked and the weight gradients as products
after it, the loss from one exp.  One step of each is checked against careful
before timing.

    python -m benchmarks.rnn_speed [--quick] [--rounds 7] [--spec char_rnn|char_lstm]
"""

from __future__ import annotations

import argparse
import contextlib
import sys

import numpy as np

from benchmarks.harness import Contender, check_against, ratio, run_round

SIZES = {"T": 32, "B": 64, "V": 27, "H": 128}
QUICK = {"T": 4, "B": 4, "V": 27, "H": 8}
LR = 0.1
SPECS = ("char_rnn", "char_lstm")


def careful(p: dict, data: dict, lr: float) -> float:
    """Hand-written BPTT: loss, gradients, SGD step (params updated in place)."""
    x, y = data["x"], data["y"]
    Wx, Wh, b, h0, Wy, by = (p[k] for k in ("Wx", "Wh", "b", "h0", "Wy", "by"))
    T, B, V = x.shape
    H = Wh.shape[0]
    xw = (x.reshape(T * B, V) @ Wx).reshape(T, B, H)
    xw += b
    h = np.empty((T + 1, B, H))  # h[0] is h0, h[t + 1] the state after step t
    h[0] = h0
    for t in range(T):
        np.tanh(xw[t] + h[t] @ Wh, out=h[t + 1])
    hs, loss, ds, dh = _softmax_head(h, Wy, by, y)
    da = np.empty((T, B, H))
    dnext = np.zeros((B, H))
    for t in reversed(range(T)):
        np.multiply(dh[t] + dnext, 1 - h[t + 1] ** 2, out=da[t])
        dnext = da[t] @ Wh.T
    da2 = da.reshape(T * B, H)
    grads = {
        "Wy": hs.T @ ds,
        "by": ds.sum(axis=0),
        "Wx": x.reshape(T * B, V).T @ da2,
        "Wh": h[:-1].reshape(T * B, H).T @ da2,
        "b": da2.sum(axis=0),
        "h0": dnext,
    }
    for k, g in grads.items():
        p[k] -= lr * g
    return loss


def _softmax_head(h, Wy, by, y):
    """The scores of the stacked states ``h[1:]``, their mean cross-entropy with the
    one-hot ``y`` (shifted log-sum-exp), its delta and the states' share of it."""
    T, B, H = h.shape[0] - 1, h.shape[1], h.shape[2]
    hs = h[1:].reshape(T * B, H)
    s = hs @ Wy + by
    s -= s.max(axis=1, keepdims=True)
    e = np.exp(s)
    z = e.sum(axis=1, keepdims=True)
    y2 = y.reshape(T * B, -1)
    loss = float((np.log(z).sum() - (s * y2).sum()) / (T * B))
    ds = (e / z - y2) / (T * B)
    return hs, loss, ds, (ds @ Wy.T).reshape(T, B, H)


def _sigmoid(z, out=None):
    """1 / (1 + exp(-z)) in place, overflow where σ rounds to 0 silenced (as generated)."""
    with np.errstate(over="ignore"):
        e = np.exp(np.negative(z, out=out), out=out)
    return np.reciprocal(np.add(e, 1, out=out), out=out)


def careful_lstm(p: dict, data: dict, lr: float) -> float:
    """Hand-written LSTM BPTT as cs231n's lstm_forward/lstm_backward, vectorised over
    steps where it can be: gates (i, f, o, g) slices of one (B, 4H) product."""
    x, y = data["x"], data["y"]
    Wx, Wh, b, h0, c0, Wy, by = (p[k] for k in ("Wx", "Wh", "b", "h0", "c0", "Wy", "by"))
    T, B, V = x.shape
    H = Wh.shape[0]
    xw = (x.reshape(T * B, V) @ Wx).reshape(T, B, 4 * H)
    xw += b
    gates = np.empty((T, B, 4 * H))  # i, f, o after the sigmoid, g after tanh
    h = np.empty((T + 1, B, H))
    c = np.empty((T + 1, B, H))
    tc = np.empty((T, B, H))  # tanh(c_t), cached for the backward pass
    h[0], c[0] = h0, c0
    for t in range(T):
        a = gates[t]
        np.add(xw[t], h[t] @ Wh, out=a)
        _sigmoid(a[:, : 3 * H], out=a[:, : 3 * H])
        np.tanh(a[:, 3 * H :], out=a[:, 3 * H :])
        i, f, o, g = a[:, :H], a[:, H : 2 * H], a[:, 2 * H : 3 * H], a[:, 3 * H :]
        np.multiply(f, c[t], out=c[t + 1])
        c[t + 1] += i * g
        np.tanh(c[t + 1], out=tc[t])
        np.multiply(o, tc[t], out=h[t + 1])
    hs, loss, ds, dh = _softmax_head(h, Wy, by, y)
    da = np.empty((T, B, 4 * H))
    dnext_h = np.zeros((B, H))
    dnext_c = np.zeros((B, H))
    for t in reversed(range(T)):
        a = gates[t]
        i, f, o, g = a[:, :H], a[:, H : 2 * H], a[:, 2 * H : 3 * H], a[:, 3 * H :]
        dht = dh[t] + dnext_h
        dc = dht * o * (1 - tc[t] ** 2) + dnext_c
        d = da[t]
        np.multiply(dc * g, i * (1 - i), out=d[:, :H])
        np.multiply(dc * c[t], f * (1 - f), out=d[:, H : 2 * H])
        np.multiply(dht * tc[t], o * (1 - o), out=d[:, 2 * H : 3 * H])
        np.multiply(dc * i, 1 - g**2, out=d[:, 3 * H :])
        dnext_h = d @ Wh.T
        dnext_c = dc * f
    da2 = da.reshape(T * B, 4 * H)
    grads = {
        "Wy": hs.T @ ds,
        "by": ds.sum(axis=0),
        "Wx": x.reshape(T * B, V).T @ da2,
        "Wh": h[:-1].reshape(T * B, H).T @ da2,
        "b": da2.sum(axis=0),
        "h0": dnext_h,
        "c0": dnext_c,
    }
    for k, g in grads.items():
        p[k] -= lr * g
    return loss


def generated(mod):
    def step(p: dict, data: dict, lr: float) -> float:
        loss, grads = mod.loss_and_gradients(p, data)
        for k, g in grads.items():
            p[k] -= lr * g
        return loss

    return step


def torch_step(spec: str = "char_rnn"):
    """PyTorch CPU eager: the same loop, autograd for the backward pass."""
    import torch

    def step(p: dict, data: dict, lr: float) -> float:
        tp = {k: torch.from_numpy(v).requires_grad_() for k, v in p.items()}
        x, y = torch.from_numpy(data["x"]), torch.from_numpy(data["y"])
        h, hs = tp["h0"], []
        c, H = tp.get("c0"), tp["Wh"].shape[0]
        for t in range(x.shape[0]):
            a = x[t] @ tp["Wx"] + h @ tp["Wh"] + tp["b"]
            if spec == "char_rnn":
                h = torch.tanh(a)
            else:
                ifo, g = torch.sigmoid(a[:, : 3 * H]), torch.tanh(a[:, 3 * H :])
                c = ifo[:, H : 2 * H] * c + ifo[:, :H] * g
                h = ifo[:, 2 * H :] * torch.tanh(c)
            hs.append(h)
        s = torch.stack(hs) @ tp["Wy"] + tp["by"]
        loss = -(y * torch.log_softmax(s, dim=-1)).sum() / (x.shape[0] * x.shape[1])
        loss.backward()
        with torch.no_grad():
            for v in tp.values():
                v -= lr * v.grad  # the NumPy array shares this memory: updated in place
        return float(loss.detach())

    return step


def contenders(
    sizes: dict, seed: int = 0, torch: bool = True, spec: str = "char_rnn"
) -> list[Contender]:
    import codegen
    from codegen.train import load_source

    mod = load_source(codegen.generate(spec), f"bench_{spec}")
    rng = np.random.default_rng(seed)
    eye = np.eye(sizes["V"])
    idx = rng.integers(0, sizes["V"], size=(sizes["T"] + 1, sizes["B"]))
    data = {"x": eye[idx[:-1]], "y": eye[idx[1:]]}
    base = mod.init_params(sizes, seed)
    for init in ("h0", "c0"):
        if init in base:
            base[init] = rng.normal(size=base[init].shape) * 0.1
    hand = careful if spec == "char_rnn" else careful_lstm
    steps = {"careful NumPy": hand, "generated": generated(mod)}
    if torch:
        with contextlib.suppress(ImportError):  # PyTorch is optional
            steps["PyTorch eager"] = torch_step(spec)
    out = []
    for name, fn in steps.items():
        params = {k: v.copy() for k, v in base.items()}
        out.append(Contender(name, lambda fn=fn, params=params: fn(params, data, LR), params))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, NumPy only: a smoke run")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--spec", choices=SPECS, action="append", help="default: both")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else SIZES
    rounds, steps = (1, 2) if args.quick else (args.rounds, args.steps)
    problems: list[str] = []
    for spec in args.spec or SPECS:
        # --quick: no seconds spent importing torch
        cs = contenders(sizes, torch=not args.quick, spec=spec)
        ran = check_against(cs, cs[0], 1e-9, problems)
        for _ in range(rounds):
            run_round(ran, steps, warmup=1)
        shown = ", ".join(f"{k}={v}" for k, v in sizes.items())
        print(f"| {spec} step ({shown}) | " + " | ".join(c.name for c in ran) + " |")
        print("|---|" + "---|" * len(ran))
        print("| ms | " + " | ".join(f"{c.seconds * 1e3:.2f}" for c in ran) + " |")
        ratios = " | ".join(ratio(c, ran[0]) for c in ran)
        print(f"| / careful (median of rounds) | {ratios} |")
    for p in problems:
        print("CHECK FAILED:", p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
