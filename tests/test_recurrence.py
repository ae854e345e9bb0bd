"""Loops over time: parse, derive the backward recurrence, prove it, print it (issue 15)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import derive
from derive.check import random_values
from derive.errors import SpecError
from derive.numeric import Functions
from derive.recurrence import forward

RNN = derive.load_network("char_rnn")


def _rnn_bptt(v: dict) -> dict:
    """cs231n-style BPTT for the bundled RNN, written by hand (shares no code with derive)."""
    x, y, Wx, Wh, b, h0, Wy, by = (v[k] for k in ("x", "y", "Wx", "Wh", "b", "h0", "Wy", "by"))
    T, B = x.shape[:2]
    hs, prev = [], h0
    for t in range(T):
        prev = np.tanh(x[t] @ Wx + prev @ Wh + b)
        hs.append(prev)
    h = np.stack(hs)
    s = h @ Wy + by
    p = np.exp(s - s.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    ds = (p - y) / (T * B)
    g = {"Wy": np.einsum("tbh,tbv->hv", h, ds), "by": ds.sum((0, 1))}
    dh = ds @ Wy.T
    g |= {k: np.zeros_like(v[k]) for k in ("Wx", "Wh", "b")}
    dnext = np.zeros_like(h0)
    for t in reversed(range(T)):
        hp = h[t - 1] if t else h0
        du = (dh[t] + dnext) * (1 - h[t] ** 2)
        g["Wx"] += x[t].T @ du
        g["Wh"] += hp.T @ du
        g["b"] += du.sum(0)
        dnext = du @ Wh.T
    g["h0"] = dnext
    return g


def _values(net, seed=0, **dims):
    return random_values(net, np.random.default_rng(seed), dims)


def _run_json(doc: dict, ns: dict) -> None:
    """Run ``derive grad --format json``'s NumPy: statements for loop entries, else expressions."""
    entries = [*doc["forward"], *doc["steps"], *doc["gradients"].values()]
    for entry in entries:
        if entry.get("loop"):
            if entry["name"] not in ns:
                exec(entry["numpy"], ns)  # noqa: S102 - code derive printed, on test data
        else:
            ns[entry["name"]] = eval(entry["numpy"], ns)  # noqa: S307


def test_rnn_json_numpy_matches_hand_bptt():
    doc = json.loads(derive.load("char_rnn").json())
    v = _values(RNN, T=4, B=2, V=3, H=5)
    ns = {"np": np, **v, "T": 4, "B": 2, "V": 3, "H": 5}
    _run_json(doc, ns)
    for p, want in _rnn_bptt(v).items():
        np.testing.assert_allclose(ns["delta_" + p], want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", ["char_rnn", "char_lstm"])
def test_proofs_pass(name):
    rec = derive.load(name)
    proofs = rec.check()
    assert [p.name.split()[0] for p in proofs] == ["symbolic", "exact", "numeric"]
    assert all(p.passed for p in proofs), [p.details for p in proofs]


def test_proofs_can_fail():
    """A wrong backward form (the tanh derivative at the output of the previous step) fails."""
    import sympy as sp

    rec = derive.load("char_rnn")
    step = rec.body.steps[0]
    wrong = step.matrix.subs(
        sp.MatrixSymbol("h_t", *step.matrix.shape),
        rec.body.network and sp.MatrixSymbol("h_prev", *step.matrix.shape),
    )
    assert wrong != step.matrix
    step.matrix = wrong
    proofs = rec.check()
    assert [p.passed for p in proofs] == [False, False, False]


def test_loop_equals_unrolled_lstm():
    """The LSTM's backward loop against central differences of the loop run from the spec."""
    from derive.recurrence import run

    rec = derive.load("char_lstm")
    v = _values(rec.network, 1, T=2, B=2, V=3, H=2)
    grads = run(rec, v, Functions())
    loss = lambda: float(forward(rec, v, Functions())["L"])  # noqa: E731
    w = v["Wh"]
    w[1, 3] += 1e-6
    up = loss()
    w[1, 3] -= 2e-6
    down = loss()
    w[1, 3] += 1e-6
    assert abs((up - down) / 2e-6 - grads["Wh"][1, 3]) < 1e-7


def test_text_latex_json():
    rec = derive.load("char_lstm")
    text = rec.text()
    assert "δc_prev = δc_t ⊙ f_t" in text and "dc_t = δc_prev" in text
    assert "∂L/∂Wx += x_tᵀ δa_t" in text
    assert r"\mathrel{+}=" in rec.latex()
    doc = json.loads(rec.json())
    assert doc["forward"][0]["loop"] and "for t in range(T):" in doc["forward"][0]["numpy"]
    wx = doc["gradients"]["Wx"]
    assert wx["loop"] and "for t in reversed(range(T)):" in wx["numpy"]
    assert doc["gradients"]["Wy"]["numpy"].count("\n") == 0


BAD = [
    ("state h[T, B, H] = nothing\n", "expected a declared param or input"),
    ("state h[T, B, 3] = h0\n", "has shape (B, H), but one step of state"),
    (
        "state h[T, B, H] = h0\nfor t in range(T):\n    h[t] = tanh(x[t] @ Wx + h @ Wh)\n",
        "read 'h' at one step",
    ),
    (
        "state h[T, B, H] = h0\nfor t in range(T):\n    h[t] = tanh(x[t + 1] @ Wx)\n",
        "expected NAME[t] or, for a state",
    ),
    (
        "state h[T, B, H] = h0\nfor t in range(T):\n    h[t] = tanh(x[t - 1] @ Wx)\n",
        "only a state has a previous step",
    ),
    (
        "state h[T, B, H] = h0\nfor t in range(T):\n    h[t] = tanh(h[t] @ Wh)\n",
        "h[t] is read before it is assigned",
    ),
    (
        "state h[T, B, H] = h0\nfor t in range(T):\n    q[t] = x[t] @ Wx\n",
        "state 'h' is not assigned in the loop",
    ),
    ("state h[T, B, H] = h0\nfor t in range(T):\n", "the loop has no body"),
    (
        "state h[T, B, H] = h0\nfor t in range(T, 2):\n    h[t] = x[t] @ Wx\n",
        "expected for t in range(T)",
    ),
    ("state h[T, B, H] = h0\nfor t in range(T):\n    h = x[t] @ Wx\n", "expected NAME[t] ="),
    (
        "state h[T, B, H] = h0\nfor t in range(T):\n    h[t] = x[t] @ Wx\n    h[t] = x[t] @ Wx\n",
        "assigned twice",
    ),
    ("for t in range(T):\n    h[t] = x[t] @ Wx\n", "declare the loop's states first"),
    (
        "state h[T, B, H] = h0\nfor t in range(T):\n    h[t] = tanh(x[t] @ Wx)\n"
        "for s in range(T):\n    h[s] = x[s] @ Wx\n",
        "one loop a spec",
    ),
]
HEAD = "input x[T, B, D]\nparam Wx[D, H], Wh[H, H], h0[B, H]\n"


@pytest.mark.parametrize("body,message", BAD)
def test_one_line_errors(body, message):
    with pytest.raises(SpecError) as err:
        derive.load_network(HEAD + body + "L = sum(h ** 2)\n")
    line = str(err.value)
    assert "\n" not in line and line.startswith("<text>:") and message in line, line


def test_cli_exit_2(tmp_path, capsys):
    from derive.cli import main

    bad = tmp_path / "bad.nn"
    bad.write_text(
        HEAD + "state h[T, B, H] = h0\nfor t in range(T):\n    h[t] = x[t]\nL = sum(h)\n"
    )
    assert main(["grad", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and ":5:" in err and "error:" in err
