"""Every bundled spec: the three proofs pass, the forms are the textbook ones,
and the gradients agree with hand-written references from the seed documents."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

import derive
from derive import check
from tests.helpers import derived_json, rel_error, run_json

BUNDLED = list(derive.bundled())


@pytest.fixture(scope="module", params=BUNDLED)
def derivation(request):
    return derive.load(request.param)


def test_every_bundled_spec_passes_all_three_proofs(derivation):
    proofs = check.run_all(derivation)
    assert [p.passed for p in proofs] == [True, True, True], [(p.name, p.details) for p in proofs]


EXPECTED = {
    "seed000": {
        "delta_y": "δy = 2 (y − t)",
        "delta_h": "δh = δy Sᵀ",
        "delta_u": "δu = δh ⊙ relu'(u)",
        "W": "∂L/∂W = xᵀ δu",
        "S": "∂L/∂S = hᵀ δy",
    },
    "seed000_generic": {"delta_u": "δu = δh ⊙ f'(u)", "W": "∂L/∂W = xᵀ δu"},
    "seed002": {
        "delta_z3": "δz3 = (y_hat − T)/B",
        "delta_z2": "δz2 = δa2 ⊙ a2 ⊙ (1 − a2)",
        "b1": "∂L/∂b1 = 1ᵀ δz1",
        "W1": "∂L/∂W1 = Xᵀ δz1",
    },
    "seed003": {
        "delta_X3_in": "δX3_in = (X3 − T) ⊙ f3'(X3_in)",
        "delta_X2": "δX2 = δX3_in W3ᵀ",
        "W1": "∂E/∂W1 = X0ᵀ δX1_in",
    },
    "seed003_sigmoid": {"delta_X2_in": "δX2_in = δX2 ⊙ X2 ⊙ (1 − X2)"},
    "seed004": {"delta_Z2": "δZ2 = (Y_hat − Y)/(B*n_out)", "W1": "∂J/∂W1 = X1ᵀ δZ1"},
    "cs231n_softmax": {
        "delta_scores": "δscores = (probs − onehot(y))/N",
        "W2": "∂L/∂W2 = 2*reg W2 + hiddenᵀ δscores",
    },
    "cs231n_svm": {
        "delta_gap": "δgap = relu'(gap)/N",
        "delta_scores": "δscores = relu'(gap)/N + δcorrectᵀ ⊙ onehot(y)",
    },
    "mlp_dropout_l1": {
        "delta_hidden": "δhidden = (δdropped ⊙ D1)/keep",
        "W1": "∂L/∂W1 = lam sign(W1) + Xᵀ δhidden_in",
    },
    "seed004_deep": {"delta_Z3": "δZ3 = (Y_hat − Y)/(B*n_out)", "W2": "∂J/∂W2 = X2ᵀ δZ2"},
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_matrix_forms_are_the_textbook_ones(name):
    d = derive.load(name)
    got = {s.symbol: s.text() for s in d.steps} | {p: s.text() for p, s in d.gradients.items()}
    for key, text in EXPECTED[name].items():
        assert got[key] == text


def _data(name: str, rng: np.random.Generator, dims: dict) -> tuple[dict, dict]:
    net = derive.load_network(name)
    params, data = {}, {}
    for q in net.quantities.values():
        if q.kind not in ("input", "target", "param"):
            continue
        shape = tuple(int(d.subs({s: dims[str(s)] for s in d.free_symbols})) for d in q.shape)
        if q.classes is not None:  # integer class labels
            classes = q.classes.subs({s: dims[str(s)] for s in q.classes.free_symbols})
            value = rng.integers(0, int(classes), shape)  # labels(C) or labels(10)
        elif q.onehot_axis is not None:
            value = np.eye(shape[1])[rng.integers(0, shape[1], shape[0])]
        elif q.kind == "target":
            value = (
                rng.integers(0, 2, shape).astype(float)
                if name.startswith("seed004")
                else rng.normal(size=shape)
            )
        else:
            value = rng.normal(size=shape) * 0.5
        (params if q.kind == "param" else data)[q.name] = value
    return params, data


@pytest.mark.parametrize("name", BUNDLED)
def test_gradients_match_the_hand_written_reference(name):
    """The JSON's NumPy expressions against tests/reference (written from the seeds)."""
    reference = importlib.import_module(f"tests.reference.{name}")
    net = derive.load_network(name)
    rng = np.random.default_rng(7)
    dims = {d: size for d, size in zip(net.dims, (5, 4, 3, 6, 2), strict=False)}
    params, data = _data(name, rng, dims)
    functions = {}
    if net.funcs:  # the references default to tanh for generic functions
        for f in net.funcs:
            functions[f] = np.tanh
            functions[f + "_prime"] = lambda z: 1 - np.tanh(z) ** 2
    consts = {c: v for c, v in net.consts.items() if v is not None}  # the spec's defaults
    got = run_json(derived_json(name), {**params, **data, **dims, **consts}, functions)["grads"]
    want = reference.gradients(params, data)
    for p in params:
        assert got[p].shape == params[p].shape
        # (makemore's b1 has a zero gradient: batch norm removes the mean it shifts)
        close = np.abs(got[p] - want[p]).max() < 1e-14 * max(1.0, np.abs(want[p]).max())
        assert rel_error(got[p], want[p]) < 1e-10 or close, p


def test_without_onehot_the_general_softmax_form_appears():
    spec = derive.load_network("seed002").source.replace(" onehot", "")
    d = derive.load(spec)
    text = d.step("z3").text()
    # p ⊙ (row sums of T) − T, over B: the row sums stay, as they must without one-hot
    assert "(T 1)" in text and "y_hat" in text
    assert all(p.passed for p in check.run_all(d))
