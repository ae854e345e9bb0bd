"""Training-step speed of the rank-3 and layout specs: generated NumPy against careful NumPy.

The bundled ``attention`` (one head over a batch of sequences, rank 3) and
``lstm`` (one step, gates sliced from ``(D, 4H)`` weights) specs: their
generated module (``codegen.generate``) against a training step written by
hand in careful NumPy below (batched ``@``, the softmax Jacobian row by row,
one sigmoid over the three gates, in-place updates).  Contenders:

* generated: ``mod.sgd_step(params, mod.gradients(params, data), lr)``;
* generated (fused): ``mod.bind_step(params, data)`` once, then ``step(lr)``;
* careful: the hand-written step.

Before timing, one step of each contender is checked against the careful
step.  Each round times every contender for the same number of steps (order
rotating between rounds); a time is the median over rounds of the per-round
mean step time.

Run from the repository root::

    python -m benchmarks.tensor_speed           # the sizes below
    python -m benchmarks.tensor_speed --quick   # tiny sizes, a smoke run
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import codegen
import derive

SIZES = {
    "attention": {"B": 32, "T": 64, "D": 64, "d": 64, "E": 64},
    "lstm": {"B": 128, "D": 256, "H": 256},
    "makemore": {"B": 32, "T": 3, "E": 10, "H": 200, "V": 27},
}
QUICK = {
    "attention": {"B": 2, "T": 3, "D": 4, "d": 2, "E": 3},
    "lstm": {"B": 3, "D": 4, "H": 2},
    "makemore": {"B": 5, "T": 3, "E": 2, "H": 4, "V": 6},
}


def careful_attention(p: dict, data: dict, lr: float) -> float:
    """One step of scaled dot-product attention, written by hand."""
    x, y = data["x"], data["y"]
    Wq, Wk, Wv = p["Wq"], p["Wk"], p["Wv"]
    B, d = x.shape[0], Wq.shape[1]
    q, k, v = x @ Wq, x @ Wk, x @ Wv
    att = q @ k.transpose(0, 2, 1)
    att *= 1 / np.sqrt(d)
    att -= att.max(axis=-1, keepdims=True)
    np.exp(att, out=att)
    att /= att.sum(axis=-1, keepdims=True)
    out = att @ v
    diff = out - y
    L = float(np.vdot(diff, diff)) / B
    dout = diff
    dout *= 2 / B
    datt = dout @ v.transpose(0, 2, 1)
    dv = att.transpose(0, 2, 1) @ dout
    datt -= np.sum(datt * att, axis=-1, keepdims=True)
    datt *= att
    datt *= 1 / np.sqrt(d)
    dq = datt @ k
    dk = datt.transpose(0, 2, 1) @ q
    X = x.reshape(-1, x.shape[-1])
    Wq -= lr * (X.T @ dq.reshape(-1, d))
    Wk -= lr * (X.T @ dk.reshape(-1, d))
    Wv -= lr * (X.T @ dv.reshape(-1, dv.shape[-1]))
    return L


def careful_lstm(p: dict, data: dict, lr: float) -> float:
    """One LSTM step (cs231n's lstm_step_forward/backward), written by hand."""
    x, h0, c0, t = data["x"], data["prev_h"], data["prev_c"], data["t"]
    Wx, Wh, b = p["Wx"], p["Wh"], p["b"]
    B, H = h0.shape
    a = x @ Wx
    a += h0 @ Wh
    a += b
    ifo = 1 / (1 + np.exp(-a[:, : 3 * H]))
    i, f, o = ifo[:, :H], ifo[:, H : 2 * H], ifo[:, 2 * H :]
    g = np.tanh(a[:, 3 * H :])
    c = f * c0 + i * g
    tc = np.tanh(c)
    h = o * tc
    diff = h - t
    L = float(np.vdot(diff, diff)) / B
    dh = diff
    dh *= 2 / B
    dc = dh * o * (1 - tc * tc)
    da = np.empty_like(a)
    da[:, :H] = dc * g * i * (1 - i)
    da[:, H : 2 * H] = dc * c0 * f * (1 - f)
    da[:, 2 * H : 3 * H] = dh * tc * o * (1 - o)
    da[:, 3 * H :] = dc * i * (1 - g * g)
    Wx -= lr * (x.T @ da)
    Wh -= lr * (h0.T @ da)
    b -= lr * da.sum(axis=0)
    return L


def careful_makemore(p: dict, data: dict, lr: float) -> float:
    """One step of Karpathy's makemore MLP with batch norm, written by hand (his
    "backprop ninja" one-line batch-norm backward, with the biased variance)."""
    ix, y = data["ix"], data["y"]
    C, W1, b1, g, beta, W2, b2 = (p[k] for k in ("C", "W1", "b1", "g", "beta", "W2", "b2"))
    B, rows = ix.shape[0], np.arange(ix.shape[0])
    emb = C[ix]
    x = emb.reshape(B, -1)
    hp = x @ W1
    hp += b1
    d = hp - hp.mean(axis=0, keepdims=True)
    inv = 1 / np.sqrt((d * d).mean(axis=0, keepdims=True) + 1e-5)
    xn = d * inv
    h = np.tanh(g * xn + beta)
    logits = h @ W2
    logits += b2
    logits -= logits.max(axis=1, keepdims=True)
    probs = np.exp(logits)
    total = probs.sum(axis=1, keepdims=True)
    L = float(np.mean(np.log(total[:, 0]) - logits[rows, y]))
    probs /= total
    dlogits = probs
    dlogits[rows, y] -= 1
    dlogits /= B
    dhn = dlogits @ W2.T
    dhn *= 1 - h * h
    dxn = g * dhn
    dhp = inv / B * (B * dxn - dxn.sum(axis=0) - xn * (dxn * xn).sum(axis=0))
    dC = np.zeros_like(C)
    np.add.at(dC, ix, (dhp @ W1.T).reshape(emb.shape))
    W2 -= lr * (h.T @ dlogits)
    b2 -= lr * dlogits.sum(axis=0)
    g -= lr * (xn * dhn).sum(axis=0)
    beta -= lr * dhn.sum(axis=0)
    W1 -= lr * (x.T @ dhp)
    b1 -= lr * dhp.sum(axis=0)
    C -= lr * dC
    return L


CAREFUL = {"attention": careful_attention, "lstm": careful_lstm, "makemore": careful_makemore}


def load_module(path: Path, name: str):
    """Import a generated module from ``path``."""
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def workload(mod, sizes: dict, seed: int = 0, net=None) -> tuple[dict, dict]:
    """Params from the module's ``init_params``; seeded random inputs and targets
    (with ``net``, the parsed spec: integers below their count for labels and table
    indices)."""
    rng = np.random.default_rng(seed)
    params = mod.init_params(sizes, seed=seed)
    data = {}
    for name, shape in {**mod.INPUTS, **mod.TARGETS}.items():
        dims = tuple(int(s) if s.isdigit() else sizes[s] for s in shape)  # X[N, 1, 8, 8]
        classes = None if net is None else net.quantities[name].classes
        if classes is None:
            data[name] = rng.normal(size=dims) * 0.5
        else:  # class labels and table indices: integers below their count
            data[name] = rng.integers(
                0, int(classes.subs({s: sizes[str(s)] for s in classes.free_symbols})), size=dims
            )
    return params, data


def contenders(mod, params: dict, data: dict, lr: float, careful) -> dict:
    """Name -> (their own params, a zero-argument step); ``careful(params, data, lr)``
    is the hand-written step."""
    out = {}
    own = {k: v.copy() for k, v in params.items()}
    out["generated"] = (own, lambda q=own: mod.sgd_step(q, mod.gradients(q, data), lr))
    own = {k: v.copy() for k, v in params.items()}
    step = mod.bind_step(own, data)
    out["generated (fused)"] = (own, lambda s=step: s(lr))
    own = {k: v.copy() for k, v in params.items()}
    out["careful"] = (own, lambda q=own: careful(q, data, lr))
    return out


def check(runners: dict, params: dict) -> list[str]:
    """One step of every contender from the same params: the same update as careful's."""
    problems = []
    for own, step in runners.values():
        for k in own:
            own[k][...] = params[k]
        step()
    ref = runners["careful"][0]
    for who, (own, _) in runners.items():
        for k in own:
            if not np.allclose(own[k], ref[k], rtol=1e-9, atol=1e-12):
                problems.append(f"{who}: {k} differs from the careful step")
    return problems


def bench(
    name: str,
    sizes: dict,
    rounds: int,
    steps: int,
    spec: str | None = None,
    careful=None,
    extra=None,
) -> tuple[dict, list[str]]:
    """Median step times of the contenders on bundled spec ``name`` (or the text
    ``spec``, against ``careful``), and the problems their check found; ``extra``:
    more contenders, name -> ``make(params, data, lr)`` giving ``(own params, step)``."""
    source = name if spec is None else spec
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"bench_{name}.py"
        path.write_text(codegen.generate(source))
        mod = load_module(path, f"bench_{name}")
    params, data = workload(mod, sizes, net=derive.load_network(source))
    runners = contenders(mod, params, data, lr=1e-3, careful=careful or CAREFUL[name])
    runners |= {who: make(params, data, 1e-3) for who, make in (extra or {}).items()}
    problems = check(runners, params)
    times: dict[str, list[float]] = {k: [] for k in runners}
    order = list(runners)
    for r in range(rounds):
        for who in order[r % len(order) :] + order[: r % len(order)]:
            own, step = runners[who]
            for k in own:
                own[k][...] = params[k]
            step()  # warm-up
            start = time.perf_counter()
            for _ in range(steps):
                step()
            times[who].append((time.perf_counter() - start) / steps)
    return {k: statistics.median(v) for k, v in times.items()}, problems


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, a smoke run")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args(argv)
    rounds, steps = (1, 2) if args.quick else (args.rounds, args.steps)
    failed = []
    print("| spec | sizes | generated | generated (fused) | careful | fused / careful |")
    print("|---|---|---|---|---|---|")
    for name in SIZES:
        sizes = (QUICK if args.quick else SIZES)[name]
        result, problems = bench(name, sizes, rounds, steps)
        failed += problems
        shown = ", ".join(f"{k}={v}" for k, v in sizes.items())
        us = {k: f"{v * 1e6:.0f} µs" for k, v in result.items()}
        ratio = result["generated (fused)"] / result["careful"]
        print(
            f"| {name} | {shown} | {us['generated']} | {us['generated (fused)']} | "
            f"{us['careful']} | {ratio:.2f} |"
        )
    for p in failed:
        print("CHECK FAILED:", p, file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
