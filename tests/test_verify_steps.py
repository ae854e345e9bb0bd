"""`derive verify` on backpropagation through time (issue 15, item 3): cs231n's
``rnn_backward(dh, cache)`` loop over ``reversed(range(T))``, right and with the classic
mistakes (tests/specs/verify/rnn_backward.py, its EXPECTED diagnoses), judged per step
against the derivation of the recurrence unrolled at T = 3 (tests/specs/verify/rnn_unrolled.nn).

The truth is independent of the verifier: the fixture functions are run here for real, on
random values, and every gradient they return is compared with central differences of the
RNN's forward pass written here as a loop.
"""

from __future__ import annotations

import functools
import importlib.util
import inspect
from pathlib import Path

import numpy as np
import pytest

import derive
from derive.verify.function import verify_function
from tests.test_verify_code import finite_difference_labels

SPECS = Path(__file__).parent / "specs" / "verify"
_spec = importlib.util.spec_from_file_location("rnn_backward", SPECS / "rnn_backward.py")
assert _spec is not None and _spec.loader is not None
fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fixtures)  # our own test fixture, run for its finite-difference labels
SOURCE = (SPECS / "rnn_backward.py").read_text()
RNG = np.random.default_rng(2)


def rnn_forward(x, h0, Wx, Wh, b):
    """h[:, t] = tanh(x[:, t] Wx + h[:, t − 1] Wh + b), with h[:, −1] = h0."""
    hs, prev = [], h0
    for t in range(x.shape[1]):
        prev = np.tanh(x[:, t] @ Wx + prev @ Wh + b)
        hs.append(prev)
    return np.stack(hs, axis=1)


def rnn_case():
    n, T, d, H = 2, 3, 3, 4
    P = {"x": RNG.normal(size=(n, T, d)), "h0": RNG.normal(size=(n, H))}
    P |= {"Wx": RNG.normal(size=(d, H)) * 0.5, "Wh": RNG.normal(size=(H, H)) * 0.5}
    P["b"] = RNG.normal(size=H)
    g = RNG.normal(size=(n, T, H))

    def forward(P):
        return np.sum(rnn_forward(P["x"], P["h0"], P["Wx"], P["Wh"], P["b"]) * g), {}

    def call(fn, P):
        h = rnn_forward(P["x"], P["h0"], P["Wx"], P["Wh"], P["b"])
        grads = fn(g, (P["x"], P["h0"], P["Wx"], P["Wh"], P["b"], h))
        return dict(zip(("x", "h0", "Wx", "Wh", "b"), grads, strict=True))

    return P, forward, call


@functools.cache
def network(spec: str):
    """One network object per spec (the verifier remembers its derivation and values)."""
    return derive.load_network(SPECS / spec)


def marked_line(name: str) -> int | None:
    lines, start = inspect.getsourcelines(getattr(fixtures, name))
    return next((n for n, text in enumerate(lines, start=start) if "# mistake" in text), None)


NAMES = ["rnn_backward", *fixtures.EXPECTED]


@pytest.mark.parametrize("name", NAMES)
def test_rnn_backward(name):
    P, forward, call = rnn_case()
    truth = finite_difference_labels(P, forward, call(getattr(fixtures, name), P))
    net = network("rnn_unrolled.nn")
    results = verify_function(net, SOURCE, "rnn_backward.py", name)
    for param, right in truth.items():
        mine = [r for r in results if r.normalized.split(" = ")[1].startswith(f"∂L/∂{param}")]
        mine = [r for r in mine if r.text.startswith(f"d{param}")]
        assert mine and (mine[-1].verdict == "correct") == right, (param, right, results)
    # the first line wrong in its own step; the others say which line they are built on
    roots = [r for r in results if r.verdict != "correct" and r.built_on is None]
    assert (roots[0].line if roots else None) == marked_line(name), results
    assert all(r.built_on in (None, marked_line(name)) for r in results)
    assert (name in fixtures.EXPECTED) == bool(roots)
    if roots:
        assert fixtures.EXPECTED[name] in (roots[0].diagnosis or ""), roots[0]


def test_every_step_is_judged():
    # the right loop: dnext_h, dtanh and dprev_h are judged at each of the 3 steps, against
    # h3 … h1, h3_in … h1_in and what steps 3 … 1 send back to h2 … h0
    results = verify_function(network("rnn_unrolled.nn"), SOURCE, "rnn_backward.py", "rnn_backward")
    by_text = {r.text.split(" = ")[0]: r.normalized for r in results}
    assert by_text["dnext_h"] == "dnext_h = ∂L/∂h3, ∂L/∂h2, ∂L/∂h1"
    assert by_text["dtanh"] == "dtanh = ∂L/∂h3_in, ∂L/∂h2_in, ∂L/∂h1_in"
    assert by_text["dprev_h"].count("from the steps after it") == 3
    assert all(r.verdict == "correct" for r in results)


# -- recurrences in the spec (state h[T, B, H] = h0; for t in range(T):), unrolled at T = 3 --
_loops = importlib.util.spec_from_file_location("loop_backward", SPECS / "loop_backward.py")
assert _loops is not None and _loops.loader is not None
loops = importlib.util.module_from_spec(_loops)
_loops.loader.exec_module(loops)  # our own test fixture, run for its finite-difference labels
LOOP_SOURCE = (SPECS / "loop_backward.py").read_text()


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def lstm_forward(x, h0, c0, Wx, Wh, b):
    """The LSTM of lstm_loop.nn, time-major; every step's gates kept for the cache."""
    H = h0.shape[1]
    out = {k: [] for k in "hcifog"}
    h, c = h0, c0
    for t in range(x.shape[0]):
        a = x[t] @ Wx + h @ Wh + b
        i, f, o = (_sigmoid(a[:, k * H : (k + 1) * H]) for k in range(3))
        g = np.tanh(a[:, 3 * H :])
        c = f * c + i * g
        h = o * np.tanh(c)
        for k, v in zip("hcifog", (h, c, i, f, o, g), strict=True):
            out[k].append(v)
    return {k: np.stack(v) for k, v in out.items()}


def loop_case(kind):
    T, n, d, H = 3, 2, 3, 2
    P = {"x": RNG.normal(size=(T, n, d)), "h0": RNG.normal(size=(n, H))}
    width = 4 * H if kind == "lstm" else H
    P |= {"Wx": RNG.normal(size=(d, width)) * 0.5, "Wh": RNG.normal(size=(H, width)) * 0.5}
    P["b"] = RNG.normal(size=width)
    if kind == "lstm":
        P["c0"] = RNG.normal(size=(n, H))
    u = RNG.normal(size=(T, n, H))

    def states(P):
        if kind == "lstm":
            return lstm_forward(P["x"], P["h0"], P["c0"], P["Wx"], P["Wh"], P["b"])
        hs = rnn_forward(P["x"].transpose(1, 0, 2), P["h0"], P["Wx"], P["Wh"], P["b"])
        return {"h": hs.transpose(1, 0, 2)}

    def forward(P):
        return np.sum(states(P)["h"] * u), {}

    def call(fn, P):
        s = states(P)
        if kind == "lstm":
            cache = (P["x"], P["h0"], P["c0"], P["Wx"], P["Wh"], P["b"])
            grads = fn(u, (*cache, *(s[k] for k in "hcifog")))
            return dict(zip(("x", "h0", "c0", "Wx", "Wh", "b"), grads, strict=True))
        grads = fn(u, (P["x"], P["h0"], P["Wx"], P["Wh"], P["b"], s["h"]))
        return dict(zip(("x", "h0", "Wx", "Wh", "b"), grads, strict=True))

    return P, forward, call


LOOP_CASES = [
    ("rnn_loop.nn", "rnn", "rnn_backward"),
    ("rnn_loop.nn", "rnn", "rnn_backward_no_carry"),
    ("lstm_loop.nn", "lstm", "lstm_backward_no_cell_carry"),
]


@pytest.mark.parametrize(("spec", "kind", "name"), LOOP_CASES, ids=[c[2] for c in LOOP_CASES])
def test_backward_loops_against_a_recurrence(spec, kind, name):
    P, forward, call = loop_case(kind)
    truth = finite_difference_labels(P, forward, call(getattr(loops, name), P))
    results = verify_function(network(spec), LOOP_SOURCE, "loop_backward.py", name)
    for param, right in truth.items():
        mine = [r for r in results if r.text.startswith(f"d{param}")]
        mine = mine or [r for r in results if f"∂L/∂{param}" in r.normalized.split(", ")[-1]]
        assert mine and (mine[-1].verdict == "correct") == right, (param, right, results)
    lines, start = inspect.getsourcelines(getattr(loops, name))
    marked = next((n for n, text in enumerate(lines, start=start) if "# mistake" in text), None)
    roots = [r for r in results if r.verdict != "correct" and r.built_on is None]
    assert (roots[0].line if roots else None) == marked, results
    if roots:
        assert loops.EXPECTED[name] in (roots[0].diagnosis or ""), roots[0]
