"""Checks of the hand-written references in tests/reference against central finite
differences of their own loss (float64), plus an SGD-descent check and cross-checks
between the generic and the concrete-activation references."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.reference import (  # noqa: E402
    seed000,
    seed000_generic,
    seed002,
    seed003,
    seed003_sigmoid,
    seed004,
    seed004_deep,
)

B = 5


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _sigmoid_prime(z):
    s = _sigmoid(z)
    return s * (1.0 - s)


def _relu(z):
    return np.maximum(z, 0.0)


def _relu_prime(z):
    return (z > 0).astype(float)


# Distinct non-default activations per layer, so a swapped f1/f2/f3 wiring shows up.
SEED003_MIXED = {
    "f1": np.sin,
    "f1_prime": np.cos,
    "f2": _sigmoid,
    "f2_prime": _sigmoid_prime,
    "f3": np.tanh,
    "f3_prime": lambda z: 1.0 - np.tanh(z) ** 2,
}


def _two_layer(rng):
    n_x, n_h, n_y = 4, 6, 3
    params = {"W": rng.standard_normal((n_x, n_h)), "S": rng.standard_normal((n_h, n_y))}
    data = {"x": rng.standard_normal((B, n_x)), "t": rng.standard_normal((B, n_y))}
    return params, data


def _seed002(rng):
    n_in, n_h1, n_h2, n_out = 4, 6, 7, 3
    params = {
        "W1": rng.standard_normal((n_in, n_h1)),
        "b1": rng.standard_normal(n_h1),
        "W2": rng.standard_normal((n_h1, n_h2)),
        "b2": rng.standard_normal(n_h2),
        "W3": rng.standard_normal((n_h2, n_out)),
        "b3": rng.standard_normal(n_out),
    }
    T = np.eye(n_out)[rng.integers(0, n_out, size=B)]
    return params, {"X": rng.standard_normal((B, n_in)), "T": T}


def _seed003(rng):
    d_in, h1, h2, d_out = 4, 6, 7, 3
    params = {
        "W1": rng.standard_normal((d_in, h1)),
        "W2": rng.standard_normal((h1, h2)),
        "W3": rng.standard_normal((h2, d_out)),
    }
    data = {"X0": rng.standard_normal((B, d_in)), "T": rng.uniform(0.0, 1.0, (B, d_out))}
    return params, data


def _seed004(rng):
    n_in, n_h, n_out = 3, 6, 2
    params = {"W1": rng.standard_normal((n_in, n_h)), "W2": rng.standard_normal((n_h, n_out))}
    data = {
        "X1": rng.standard_normal((B, n_in)),
        "Y": rng.integers(0, 2, size=(B, n_out)).astype(float),
    }
    return params, data


def _seed004_deep(rng):
    n_in, n_h1, n_h2, n_out = 4, 6, 5, 2
    params = {
        "W1": rng.standard_normal((n_in, n_h1)),
        "W2": rng.standard_normal((n_h1, n_h2)),
        "W3": rng.standard_normal((n_h2, n_out)),
    }
    data = {
        "X1": rng.standard_normal((B, n_in)),
        "Y": rng.integers(0, 2, size=(B, n_out)).astype(float),
    }
    return params, data


# (id, module, problem builder, keyword arguments, names of the spec's equations)
CASES = [
    ("seed000", seed000, _two_layer, {}, ["u", "h", "y", "L"]),
    ("seed000_generic", seed000_generic, _two_layer, {}, ["u", "h", "y", "L"]),
    (
        "seed000_generic_sin",
        seed000_generic,
        _two_layer,
        {"f": np.sin, "f_prime": np.cos},
        ["u", "h", "y", "L"],
    ),
    ("seed002", seed002, _seed002, {}, ["z1", "a1", "z2", "a2", "z3", "y_hat", "L"]),
    ("seed003", seed003, _seed003, {}, ["X1", "X2", "X3", "E"]),
    ("seed003_mixed", seed003, _seed003, SEED003_MIXED, ["X1", "X2", "X3", "E"]),
    ("seed003_sigmoid", seed003_sigmoid, _seed003, {}, ["X1", "X2", "X3", "E"]),
    ("seed004", seed004, _seed004, {}, ["Z1", "X2", "Z2", "Y_hat", "J"]),
    ("seed004_deep", seed004_deep, _seed004_deep, {}, ["Z1", "X2", "Z2", "X3", "Z3", "Y_hat", "J"]),
]
IDS = [c[0] for c in CASES]


def _numeric_gradients(mod, params, data, kw, eps=1e-6):
    grads = {}
    for name, p in params.items():
        g = np.zeros_like(p)
        for idx in np.ndindex(p.shape):
            orig = p[idx]
            p[idx] = orig + eps
            up = mod.loss(params, data, **kw)
            p[idx] = orig - eps
            down = mod.loss(params, data, **kw)
            p[idx] = orig
            g[idx] = (up - down) / (2.0 * eps)
        grads[name] = g
    return grads


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_forward_names_and_loss(case):
    _, mod, build, kw, names = case
    params, data = build(np.random.default_rng(0))
    out = mod.forward(params, data, **kw)
    assert list(out) == names
    loss_name = names[-1]
    assert type(out[loss_name]) is float
    assert out[loss_name] == mod.loss(params, data, **kw)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_gradients_match_finite_differences(case):
    _, mod, build, kw, _ = case
    params, data = build(np.random.default_rng(1))
    grads = mod.gradients(params, data, **kw)
    numeric = _numeric_gradients(mod, params, data, kw)
    assert set(grads) == set(params)
    for name, p in params.items():
        g, n = grads[name], numeric[name]
        assert g.shape == p.shape, name
        rel = np.linalg.norm(g - n) / max(np.linalg.norm(g), np.linalg.norm(n), 1e-12)
        assert rel < 1e-6, (name, rel)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_sgd_step_lowers_loss(case):
    _, mod, build, kw, _ = case
    params, data = build(np.random.default_rng(2))
    before = {k: v.copy() for k, v in params.items()}
    arrays = {k: v for k, v in params.items()}
    L0 = mod.loss(params, data, **kw)
    grads = mod.gradients(params, data, **kw)
    lr = 1e-4
    mod.sgd_step(params, grads, lr)
    for k in params:
        assert params[k] is arrays[k]  # updated in place
        np.testing.assert_allclose(params[k], before[k] - lr * grads[k], rtol=0, atol=1e-15)
    assert mod.loss(params, data, **kw) < L0


def test_generic_seed000_with_relu_matches_seed000():
    params, data = _two_layer(np.random.default_rng(3))
    ref = seed000.gradients(params, data)
    gen = seed000_generic.gradients(params, data, f=_relu, f_prime=_relu_prime)
    assert seed000.loss(params, data) == pytest.approx(
        seed000_generic.loss(params, data, f=_relu, f_prime=_relu_prime), rel=1e-14
    )
    for k in ref:
        np.testing.assert_allclose(gen[k], ref[k], rtol=1e-12, atol=1e-14)


def test_generic_seed003_with_sigmoid_matches_seed003_sigmoid():
    params, data = _seed003(np.random.default_rng(4))
    kw = {}
    for i in (1, 2, 3):
        kw[f"f{i}"], kw[f"f{i}_prime"] = _sigmoid, _sigmoid_prime
    ref = seed003_sigmoid.gradients(params, data)
    gen = seed003.gradients(params, data, **kw)
    assert seed003_sigmoid.loss(params, data) == pytest.approx(
        seed003.loss(params, data, **kw), rel=1e-14
    )
    for k in ref:
        np.testing.assert_allclose(gen[k], ref[k], rtol=1e-12, atol=1e-14)
