"""Loops over time: parse, derive the backward recurrence, prove it, print it (issue 15)."""

from __future__ import annotations

import functools
import json

import numpy as np
import pytest

import derive
from derive.check import random_values
from derive.errors import SpecError
from derive.numeric import Functions

RNN = derive.load_network("char_rnn")


@functools.cache
def derived(name: str):
    """The derivation of a bundled loop spec, shared by the tests that only read it."""
    return derive.load(name)


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
    doc = json.loads(derived("char_rnn").json())
    v = _values(RNN, T=4, B=2, V=3, H=5)
    ns = {"np": np, **v, "T": 4, "B": 2, "V": 3, "H": 5}
    _run_json(doc, ns)
    for p, want in _rnn_bptt(v).items():
        np.testing.assert_allclose(ns["delta_" + p], want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", ["char_rnn", "char_lstm"])
def test_proofs_pass(name):
    rec = derived(name)
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


def test_text_latex_json():
    rec = derived("char_lstm")
    text = rec.text()
    assert "δc_prev = δc_t ⊙ f_t" in text and "dc_t = δc_prev" in text
    assert "∂L/∂Wx += x_tᵀ δa_t" in text
    assert r"\mathrel{+}=" in rec.latex()
    doc = rec.latex(standalone=True)
    assert doc.startswith(r"\documentclass") and rec.latex() in doc and r"char\_lstm" in doc
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
BAD += [
    ("state h[T, B, H] = h0\nfor t in range(T): h[t] = x[t] @ Wx\n", "alone on its line"),
    (
        "state h[T, B, H] = h0\nfor t in range(T):\n    h[t] = x[t] @ Wx\n    x[t] = h[t]\n",
        "'x' is declared as input",
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


CLASHES = [
    (
        "param Wx[D, H], h0[B, H]\nstate h[T, B, H] = h0\nfor h_t in range(T):\n"
        "    h[h_t] = tanh(x[h_t] @ Wx)\n",
        "already defines",
    ),
    (
        "param Wx[D, H], h0[B, H], h_prev[B, H]\nstate h[T, B, H] = h0\nfor t in range(T):\n"
        "    h[t] = tanh(x[t] @ Wx)\n",
        "the loop calls h[t - 1] 'h_prev'",
    ),
    (
        "param Wx[D, H], h0[B, H], dh_t[B, H]\nstate h[T, B, H] = h0\nfor t in range(T):\n"
        "    h[t] = tanh(x[t] @ Wx)\n",
        "'dh_t', which the spec already defines",
    ),
    (
        "param Wx[D, H], h0[B, H]\nstate h[T, B, H] = h0\nfor t in range(T):\n"
        "    h[t] = tanh(x[t] @ Wx)\n    t[t] = h[t]\n",
        "the loop variable",
    ),
    (
        "input h_t_in[B, H]\nparam Wx[D, H], h0[B, H]\nstate h[T, B, H] = h0\n"
        "for t in range(T):\n    h[t] = tanh(x[t] @ Wx + h[t - 1])\n",
        "has the name of another value",
    ),
]


@pytest.mark.parametrize("body,message", CLASHES)
def test_body_names_kept_apart(body, message):
    """The body's own names never shadow the spec's (generated code holds both)."""
    with pytest.raises(SpecError) as err:
        derive.load("input x[T, B, D]\n" + body + "L = sum(h ** 2)\n")
    assert message in str(err.value), str(err.value)


def test_a_state_that_ignores_its_past_and_a_stacked_value_read_after_the_loop():
    """No δh_prev to carry (a zero share), and the direct share of a non-state ``a``."""
    rec = derive.load(
        HEAD + "state h[T, B, H] = h0\nfor t in range(T):\n    a[t] = x[t] @ Wx\n"
        "    h[t] = tanh(a[t])\nL = sum(h ** 2) + sum(a * a) + sum(Wh ** 2)\n"
    )
    assert "da_t = δa[t]" in rec.text()
    assert all(p.passed for p in rec.check())


UNROLLED = """
input  x0[B, V], x1[B, V]
target y0[B, V], y1[B, V] onehot
param  Wx[V, H], Wh[H, H], b[H], h0[B, H], Wy[H, V], by[V]
h1 = tanh(x0 @ Wx + h0 @ Wh + b)
h2 = tanh(x1 @ Wx + h1 @ Wh + b)
s1 = h1 @ Wy + by
s2 = h2 @ Wy + by
L = -(sum(y0 * log_softmax(s1, axis=-1)) + sum(y1 * log_softmax(s2, axis=-1))) / (2 * B)
"""


def test_loop_equals_the_unrolled_derivation():
    """char_rnn at T = 2 written out as two steps, derived by the ordinary sweep: its
    gradient forms, evaluated, equal the backward loop's (derive.recurrence.run)."""
    from derive.check import derived_values
    from derive.recurrence import run

    rec = derived("char_rnn")
    v = _values(rec.network, 5, T=2, B=3, V=4, H=3)
    grads = run(rec, v, Functions())
    flat = {k: v[k] for k in ("Wx", "Wh", "b", "h0", "Wy", "by")} | {"B": 3, "V": 4, "H": 3}
    flat |= {f"x{t}": v["x"][t] for t in (0, 1)} | {f"y{t}": v["y"][t] for t in (0, 1)}
    unrolled = derive.load(UNROLLED)
    _, env = derived_values(unrolled, flat, Functions())
    for p, step in unrolled.gradients.items():
        got = np.asarray(env[step.symbol]).reshape(v[p].shape)
        np.testing.assert_allclose(grads[p], got, rtol=1e-10, atol=1e-13)


def test_verify_refuses_loops_in_one_line():
    with pytest.raises(SpecError, match="does not judge specs with a loop"):
        derive.verify("char_rnn", "dL/dWy = h.T @ delta_scores")


def test_steps_and_elementwise(capsys):
    from derive.cli import main

    assert main(["grad", "char_rnn", "--steps", "--elementwise"]) == 0
    out = capsys.readouterr().out
    assert "δh_prev[i, j] = Σ_k (Wh[j, k]*δh_t_in[i, k])" in out and "through h_t_in" in out


def test_lstm_json_numpy_runs_the_derived_loop():
    """The LSTM's printed loops (stacked gates, two states) compute what the derived forms
    give (derive.recurrence.run, which the proofs check against the spec)."""
    from derive.recurrence import run

    rec = derived("char_lstm")
    sizes = {"T": 3, "B": 2, "V": 4, "H": 3}
    v = _values(rec.network, 1, **sizes)
    ns = {"np": np, **v, **sizes}
    _run_json(json.loads(rec.json()), ns)
    for p, want in run(rec, v, Functions()).items():
        np.testing.assert_allclose(ns["delta_" + p], want, rtol=1e-10, atol=1e-13)
