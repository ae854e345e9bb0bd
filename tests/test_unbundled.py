"""Networks no layer table knows: a weight used twice, gated units, column layout,
softmax cross-entropy with an L2 penalty, generic activations, a 1-D weight vector.

Each spec's loss is written again here in plain NumPy; the gradients that
`derive grad --format json` prints must match its finite differences."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import derive
from derive import check
from tests.helpers import derived_json, finite_differences, rel_error, run_json

SPECS = Path(__file__).parent / "specs"


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def softmax(z, axis):
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


rng = np.random.default_rng(3)
B, N_IN, N_H, N_OUT = 5, 4, 3, 2


def onehot_rows(n_rows, n_classes):
    return np.eye(n_classes)[rng.integers(0, n_classes, n_rows)]


CASES = {
    "shared": (
        {"x": rng.normal(size=(B, 3)), "t": rng.normal(size=(B, 3)), "n": 3, "B": B},
        {"W": rng.normal(size=(3, 3)) * 0.5},
        lambda p, d: np.sum((np.tanh(d["x"] @ p["W"]) @ p["W"] - d["t"]) ** 2) / B,
    ),
    "gated": (
        {
            "x": rng.normal(size=(B, N_IN)),
            "t": rng.normal(size=(B, N_OUT)),
            "B": B,
            "n_in": N_IN,
            "n_h": N_H,
            "n_out": N_OUT,
        },
        {
            "W": rng.normal(size=(N_IN, N_H)),
            "V": rng.normal(size=(N_IN, N_H)),
            "S": rng.normal(size=(N_H, N_OUT)),
            "c": rng.normal(size=N_OUT),
        },
        lambda p, d: (
            0.5
            * np.sum(((d["x"] @ p["W"]) * sigmoid(d["x"] @ p["V"]) @ p["S"] + p["c"] - d["t"]) ** 2)
        ),
    ),
    "column": (
        {
            "x": rng.normal(size=(N_IN, B)),
            "t": onehot_rows(B, N_OUT).T,
            "B": B,
            "n_x": N_IN,
            "n_h": N_H,
            "n_y": N_OUT,
        },
        {
            "W1": rng.normal(size=(N_H, N_IN)),
            "b1": rng.normal(size=(N_H, 1)),
            "W2": rng.normal(size=(N_OUT, N_H)),
            "b2": rng.normal(size=(N_OUT, 1)),
        },
        lambda p, d: (
            -np.sum(
                d["t"]
                * np.log(softmax(p["W2"] @ np.tanh(p["W1"] @ d["x"] + p["b1"]) + p["b2"], axis=0))
            )
            / B
        ),
    ),
    "penalty": (
        {
            "X": rng.normal(size=(B, N_IN)),
            "T": onehot_rows(B, N_OUT),
            "lam": 0.01,
            "B": B,
            "n_in": N_IN,
            "n_h": N_H,
            "n_out": N_OUT,
        },
        {
            "W1": rng.normal(size=(N_IN, N_H)),
            "b1": rng.normal(size=N_H),
            "W2": rng.normal(size=(N_H, N_OUT)),
            "b2": rng.normal(size=N_OUT),
        },
        lambda p, d: (
            -np.sum(
                d["T"]
                * np.log(
                    softmax(np.maximum(d["X"] @ p["W1"] + p["b1"], 0) @ p["W2"] + p["b2"], axis=1)
                )
            )
            / B
            + d["lam"] * (np.sum(p["W1"] ** 2) + np.sum(p["W2"] ** 2))
        ),
    ),
    "generic": (
        {
            "x": rng.normal(size=(B, N_IN)),
            "t": rng.normal(size=(B, N_OUT)),
            "B": B,
            "n": N_IN,
            "k": N_H,
            "m": N_OUT,
            "f": np.sin,
            "f_prime": np.cos,
            "g": np.tanh,
            "g_prime": lambda z: 1 - np.tanh(z) ** 2,
        },
        {
            "W": rng.normal(size=(N_IN, N_H)),
            "b": rng.normal(size=N_H),
            "V": rng.normal(size=(N_H, N_OUT)),
        },
        lambda p, d: np.mean((np.tanh(np.sin(d["x"] @ p["W"] + p["b"]) @ p["V"]) - d["t"]) ** 2),
    ),
    "vec": (
        {"x": rng.normal(size=(B, N_IN)), "t": rng.normal(size=B), "B": B, "n": N_IN, "k": N_H},
        {"W": rng.normal(size=(N_IN, N_H)), "v": rng.normal(size=N_H)},
        lambda p, d: np.sum((sigmoid(d["x"] @ p["W"]) @ p["v"] - d["t"]) ** 2),
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_json_gradients_match_finite_differences_of_an_independent_loss(name):
    data, params, loss = CASES[name]
    params = {k: v.copy() for k, v in params.items()}
    doc = derived_json(SPECS / f"{name}.nn")
    got = run_json(doc, {**data, **params})["grads"]
    want = finite_differences(lambda: loss(params, data), params)
    for p in params:
        assert got[p].shape == params[p].shape, p
        assert rel_error(got[p], want[p]) < 1e-6, (p, rel_error(got[p], want[p]))


@pytest.mark.parametrize("name", sorted(CASES))
def test_three_proofs_pass(name):
    d = derive.load(SPECS / f"{name}.nn")
    assert all(p.passed for p in check.run_all(d))


def test_weight_used_twice_accumulates_both_uses():
    d = derive.load(SPECS / "shared.nn")
    assert d.gradients["W"].text() == "∂L/∂W = hᵀ δy + xᵀ δh_in"


def test_column_layout_puts_the_batch_on_the_right():
    d = derive.load(SPECS / "column.nn")
    text = {p: s.text() for p, s in d.gradients.items()}
    assert text["W1"] == "∂L/∂W1 = δz1 xᵀ"
    assert text["b1"] == "∂L/∂b1 = δz1 1"
    assert d.step("z2").text() == "δz2 = (p − t)/B"
