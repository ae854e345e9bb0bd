"""Nielsen's LaTeX with a symbolic layer index (``δ^l``, ``w^{l+1}``, ``∇_a C``), judged at
every layer of the spec's numbering; each verdict against finite differences of a NumPy
forward pass written here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import derive
from derive.verify import verify_all

SPEC = Path(__file__).parent / "specs" / "nielsen.nn"
RNG = np.random.default_rng(7)


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def _truth():
    """δ^l = ∂C/∂z^l by central differences (z^l = W^l a^{l-1} + b^l, so ∂C/∂b^l)."""
    x, y = RNG.normal(size=(3, 1)), RNG.uniform(size=(2, 1))
    P = {"W1": RNG.normal(size=(4, 3)), "b1": RNG.normal(size=(4, 1))}
    P |= {"W2": RNG.normal(size=(2, 4)), "b2": RNG.normal(size=(2, 1))}

    def forward(P):
        z1 = P["W1"] @ x + P["b1"]
        a1 = _sigmoid(z1)
        z2 = P["W2"] @ a1 + P["b2"]
        a2 = _sigmoid(z2)
        return 0.5 * np.sum((a2 - y) ** 2), dict(z1=z1, a1=a1, z2=z2, a2=a2)

    def fd(name):
        g = np.zeros_like(P[name])
        for idx in np.ndindex(g.shape):
            old = P[name][idx]
            P[name][idx] = old + 1e-6
            up = forward(P)[0]
            P[name][idx] = old - 1e-6
            g[idx] = (up - forward(P)[0]) / 2e-6
            P[name][idx] = old
        return g

    return P, forward(P)[1], {"delta1": fd("b1"), "delta2": fd("b2"), "y": y}


def _prime(z):
    return _sigmoid(z) * (1 - _sigmoid(z))


# each claim at l = 1, with the NumPy value of its right-hand side
CLAIMS = [
    (
        r"\delta^l = ((w^{l+1})^T \delta^{l+1}) \odot \sigma'(z^l)",
        lambda P, v, t: (P["W2"].T @ t["delta2"]) * _prime(v["z1"]),
    ),
    (
        r"\delta^l = ((w^{l+1})^T \delta^{l+1}) \odot \sigma'(a^l)",
        lambda P, v, t: (P["W2"].T @ t["delta2"]) * _prime(v["a1"]),
    ),
    (
        r"\delta^{l} = 2 ((w^{l+1})^T \delta^{l+1}) \odot \sigma'(z^{l})",
        lambda P, v, t: 2 * (P["W2"].T @ t["delta2"]) * _prime(v["z1"]),
    ),
]


@pytest.mark.parametrize("claim", range(len(CLAIMS)))
def test_the_layer_recursion_is_judged_at_each_layer(claim):
    text, value = CLAIMS[claim]
    P, v, t = _truth()
    right = np.allclose(value(P, v, t), t["delta1"], atol=1e-6)
    results, errors = verify_all(derive.load_network(SPEC), text)
    assert not errors
    assert [r.text.endswith("[at l = 1]") for r in results] == [True]  # no W3: l = 2 is not
    assert (results[0].verdict == "correct") == right, results[0].reason


def test_nabla_a_c_is_the_output_layer_and_every_layer_is_judged():
    P, v, t = _truth()
    # BP1 with ∇_a C = a^L - y (quadratic cost), BP3 ∂C/∂b^l = δ^l at both layers
    right = np.allclose((v["a2"] - t["y"]) * _prime(v["z2"]), t["delta2"], atol=1e-6)
    net = derive.load_network(SPEC)
    results, errors = verify_all(
        net, "\\delta^L = \\nabla_a C \\odot \\sigma'(z^L)\n\\partial C/\\partial b^l = \\delta^l"
    )
    assert not errors
    assert [r.verdict for r in results] == ["correct"] * 3
    assert right
    assert [r.text[-10:] for r in results[1:]] == ["[at l = 1]", "[at l = 2]"]
    # the same with a wrong BP1 (a^L where σ'(z^L) belongs) is rejected
    wrong = np.allclose((v["a2"] - t["y"]) * v["a2"], t["delta2"], atol=1e-6)
    results, _ = verify_all(net, "\\delta^L = \\nabla_a C \\odot a^L")
    assert not wrong
    assert results[0].verdict == "incorrect"
