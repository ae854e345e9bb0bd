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
