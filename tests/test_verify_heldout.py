"""Backward passes written after the rest of the verifier's tests (tests/backward/heldout.py:
cs231n's relu and rnn-step layers, nnfs's softmax-loss class over labels, Karpathy's one-line
batch-norm backward), right and wrong, each labelled by central differences of a NumPy
forward pass written here.  benchmarks/verify_hit_rate.py counts them apart from the rest:
before the fixes they prompted (binding ``x = cache``, ``dtanh``, stores into ``self.x``, a
per-example adjoint no line divides) 3 of these 9 were judged right."""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pytest

import derive
from derive.verify.function import verify_function
from tests.backward import heldout
from tests.test_verify_code import finite_difference_labels

SOURCE = inspect.getsource(heldout)
SPECS = Path(__file__).parent / "specs"
RNG = np.random.default_rng(23)


def relu_case():
    t = RNG.normal(size=(4, 3))
    P = {"x": RNG.normal(size=(4, 3))}

    def forward(P):
        out = np.maximum(0, P["x"])
        return 0.5 * np.sum((out - t) ** 2), {"out": out}

    def call(fn, P):
        return {"x": fn(forward(P)[1]["out"] - t, P["x"])}

    return "verify/relu_layer.nn", P, forward, call, {}


def rnn_case():
    t = RNG.normal(size=(4, 3))
    P = {"x": RNG.normal(size=(4, 2)), "prev_h": RNG.normal(size=(4, 3))}
    P |= {"Wx": RNG.normal(size=(2, 3)), "Wh": RNG.normal(size=(3, 3)), "b": RNG.normal(size=3)}

    def forward(P):
        next_h = np.tanh(P["x"] @ P["Wx"] + P["prev_h"] @ P["Wh"] + P["b"])
        return 0.5 * np.sum((next_h - t) ** 2), {"next_h": next_h}

    def call(fn, P):
        next_h = forward(P)[1]["next_h"]
        cache = (P["x"], P["prev_h"], P["Wx"], P["Wh"], next_h)
        grads = fn(next_h - t, cache)
        return dict(zip(("x", "prev_h", "Wx", "Wh", "b"), grads, strict=True))

    return "verify/rnn_step.nn", P, forward, call, {}


def nnfs_case():
    y = RNG.integers(0, 3, size=5)
    P = {"inputs": RNG.normal(size=(5, 3))}  # the logits: what the method returns the gradient of

    def forward(P):
        e = np.exp(P["inputs"] - P["inputs"].max(axis=1, keepdims=True))
        probs = e / e.sum(axis=1, keepdims=True)
        return -np.mean(np.log(probs[range(5), y])), {"probs": probs}

    def call(fn, P):
        return {
            "inputs": fn(
                heldout.Activation_Softmax_Loss_CategoricalCrossentropy(), forward(P)[1]["probs"], y
            )
        }

    return "verify/nnfs_ce.nn", P, forward, call, {"dvalues": ["probs"], "y_true": ["y"]}


def karpathy_case():
    X, Y, n = RNG.normal(size=(4, 3)), np.eye(3)[RNG.integers(0, 3, size=4)], 4
    Q = {"bngain": RNG.normal(size=(1, 5)), "bnbias": RNG.normal(size=(1, 5))}
    Q |= {"W2": RNG.normal(size=(5, 3)), "b2": RNG.normal(size=3)}
    P = {"hprebn": X @ RNG.normal(size=(3, 5))}  # the gradient returned: batch norm's input

    def after(hpreact):
        logits = np.tanh(hpreact) @ Q["W2"] + Q["b2"]
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        return -np.sum(Y * np.log(e / e.sum(axis=1, keepdims=True))) / n

    def forward(P):
        bndiff = P["hprebn"] - P["hprebn"].mean(0, keepdims=True)
        bnvar_inv = ((bndiff**2).sum(0, keepdims=True) / (n - 1) + 1e-5) ** -0.5
        bnraw = bndiff * bnvar_inv
        hpreact = Q["bngain"] * bnraw + Q["bnbias"]
        return after(hpreact), dict(bnvar_inv=bnvar_inv, bnraw=bnraw, hpreact=hpreact)

    def call(fn, P):
        v = forward(P)[1]
        dhpreact = np.zeros_like(v["hpreact"])  # the function's input, by central differences
        for idx in np.ndindex(dhpreact.shape):
            bump = np.zeros_like(dhpreact)
            bump[idx] = 1e-6
            dhpreact[idx] = (after(v["hpreact"] + bump) - after(v["hpreact"] - bump)) / 2e-6
        return {"hprebn": fn(X, Q["bngain"], v["bnvar_inv"], v["bnraw"], dhpreact)}

    return "karpathy.nn", P, forward, call, {}


CASES = [
    (relu_case, "relu_backward"),
    (relu_case, "relu_backward_mask"),
    (relu_case, "relu_backward_wrong"),
    (rnn_case, "rnn_step_backward"),
    (rnn_case, "rnn_step_backward_wrong"),
    (nnfs_case, "backward"),
    (nnfs_case, "backward_no_mean"),
    (karpathy_case, "karpathy_bn_one_line"),
    (karpathy_case, "karpathy_bn_one_line_bessel"),
]


def function(name):
    cls = heldout.Activation_Softmax_Loss_CategoricalCrossentropy
    return getattr(cls, name) if name.startswith("backward") else getattr(heldout, name)


def first_marked(fn) -> int | None:
    lines, start = inspect.getsourcelines(fn)
    return next((n for n, text in enumerate(lines, start=start) if "# mistake" in text), None)


@pytest.mark.parametrize(("case", "name"), CASES, ids=[n for _, n in CASES])
def test_heldout_functions(case, name):
    spec, P, forward, call, maps = case()
    truth = finite_difference_labels(P, forward, call(function(name), P))
    net = derive.load_network(SPECS / spec)
    results = verify_function(net, SOURCE, "heldout.py", name, maps)
    for param, right in truth.items():
        mine = [r for r in results if r.normalized.endswith(f"∂{net.loss}/∂{param}")]
        assert mine and (mine[-1].verdict == "correct") == right, (param, [r.text for r in results])
    first = next((r for r in results if r.verdict != "correct"), None)
    assert (first.line if first else None) == first_marked(function(name))


def test_a_missing_factor_is_named():
    # the truth: relu_backward_wrong returns (x > 0) where dout * (x > 0) belongs, which
    # test_heldout_functions labels wrong by finite differences
    net = derive.load_network(SPECS / "verify/relu_layer.nn")
    first = verify_function(net, SOURCE, "heldout.py", "relu_backward_wrong", {})[0]
    assert first.diagnosis == "a factor is missing: the line times ∂L/∂out is the gradient"
