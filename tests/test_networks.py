"""Issue 10, part 1: integer class labels, abs/sqrt/square, maximum/minimum, and the
cs231n networks written as their forward passes.

Every check is against independent truth: NumPy's own fancy indexing and finite
differences of a loss written here in plain NumPy, or the hand-written references
in tests/reference."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

import codegen
import derive
from codegen.bundled import OUT
from derive import SpecError, check
from derive.cli import main
from tests.helpers import derived_json, finite_differences, rel_error, run_json
from tests.test_codegen import load_module, module_from_source

rng = np.random.default_rng(11)


def _proofs_pass(spec: str) -> derive.Derivation:
    d = derive.load(spec)
    proofs = check.run_all(d)
    assert [p.passed for p in proofs] == [True, True, True], [(p.name, p.details) for p in proofs]
    return d


# --- integer class labels ----------------------------------------------------------------------

LABELS = """\
input  X[B, D]
target y[B] labels(C)
param  W[D, C]
z = X @ W
L = -mean(log(softmax(z))[range(B), y])
"""


def test_softmax_cross_entropy_with_labels_derives_to_p_minus_onehot():
    d = _proofs_pass(LABELS)
    # softmax(z) is named L_in (the argument of log); the cancellation is the engine's
    assert d.step("z").text() == "δz = (L_in − onehot(y))/B"


def test_onehot_and_fancy_indexing_match_numpy():
    spec = """\
input  X[B, C]
target y[B] labels(C)
param  W[C, C]
z = X @ W
picked = z[range(B), y]
L = sum(picked * picked) + sum(onehot(y, C) * z)
"""
    d = _proofs_pass(spec)
    X, W = rng.normal(size=(5, 3)), rng.normal(size=(3, 3))
    y = rng.integers(0, 3, 5)

    def loss():
        z = X @ W
        picked = z[np.arange(5), y]
        return np.sum(picked**2) + np.sum(np.eye(3)[y] * z)

    got = run_json(derived_json(spec), {"X": X, "W": W, "y": y, "B": 5, "C": 3})["grads"]["W"]
    assert rel_error(got, finite_differences(loss, {"W": W})["W"]) < 1e-7
    assert d.gradients["W"].text()


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("target y[B] labels(C)\nparam W[C]\nL = sum(W * y)", "holds class labels"),
        ("target y[B, C] labels(C)\nparam W[C]\nL = sum(W)", "must be 1-D"),
        ("target y[B] labels\nparam W[C]\nL = sum(W)", "labels(n)"),
        (
            "input x[B, C]\ntarget y[B] labels(C)\nparam W[C]\nL = sum(onehot(y, B) * x * W)",
            "has C classes",
        ),
        (
            "input x[B, C]\ntarget y[B] labels(C)\nparam W[C]\nL = sum((x * W)[range(C), y])",
            "expected range(B)",
        ),
        (
            "input x[B, D]\ntarget y[B] labels(C)\nparam W[D]\nL = sum((x * W)[range(B), y])",
            "expected x[B, C]",
        ),
        ("input x[B, C]\nparam W[C]\nL = sum((x * W)[range(B), x])", "labels target"),
        ("input x[B, C]\nparam W[C]\nL = sum((x * W)[0, 1])", "expected x[range(B), y]"),
        ("input x[B, C]\nparam W[C]\nL = sum((x * W)[:, :, :, None])", "too many"),
    ],
)
def test_label_misuse_is_a_spec_error_with_a_position(spec, words):
    with pytest.raises(SpecError) as err:
        derive.load(spec)
    assert words in str(err.value)
    assert err.value.line >= 1 and err.value.col >= 1


def test_generated_step_scatters_instead_of_building_a_onehot_matrix():
    source = (OUT / "cs231n_softmax.py").read_text()
    assert "add_labels(probs, y, -1" in source
    assert "def onehot" not in source and "np.eye" not in source
    svm = (OUT / "cs231n_svm.py").read_text()
    assert "add_labels(delta_gap, y, delta_correct, out=" in svm and "def onehot" not in svm


def test_generated_module_refuses_bad_labels():
    mod = load_module(OUT / "cs231n_softmax.py", "gen_cs231n_softmax_labels")
    params = mod.init_params({"D": 3, "H": 4, "C": 3})
    X = rng.normal(size=(4, 3))
    for bad in ([0, 1, -1, 2], [0.5, 1, 2, 0]):
        with pytest.raises(ValueError, match="class labels"):
            mod.loss(params, {"X": X, "y": np.array(bad)})
    with pytest.raises(IndexError):
        mod.loss(params, {"X": X, "y": np.array([0, 1, 3, 2])})


@pytest.mark.parametrize("name", ["cs231n_softmax", "cs231n_svm"])
def test_generated_cs231n_modules_match_finite_differences_and_the_reference(name):
    mod = load_module(OUT / f"{name}.py", f"gen_{name}_fd")
    ref = importlib.import_module(f"tests.reference.{name}")
    dims = {"N": 7, "D": 4, "H": 5, "C": 3}
    params = mod.init_params(dims, seed=2)
    for p in params.values():
        p += rng.normal(scale=0.3, size=p.shape)
    data = {"X": rng.normal(size=(7, 4)), "y": rng.integers(0, 3, 7)}
    got = mod.gradients(params, data)
    fd = finite_differences(lambda: ref.loss(params, data), params)
    want = ref.gradients(params, data)
    for p in params:
        assert rel_error(got[p], fd[p]) < 1e-6, p
        assert rel_error(got[p], want[p]) < 1e-10, p
    # the fused step does the same update
    fused = {k: v.copy() for k, v in params.items()}
    mod.train_step(fused, data, 0.1, {})
    for p in params:
        np.testing.assert_allclose(fused[p], params[p] - 0.1 * got[p], rtol=1e-10, atol=1e-12)


def test_labels_classifier_is_stable_at_extreme_logits():
    mod = load_module(OUT / "cs231n_softmax.py", "gen_cs231n_softmax_extreme")
    params = mod.init_params({"D": 3, "H": 4, "C": 3})
    params["W2"] *= 0
    params["b2"][:] = [1000.0, -1000.0, 0.0]
    data = {"X": rng.normal(size=(5, 3)), "y": np.array([1, 1, 2, 0, 1])}
    loss = mod.loss(params, data)
    grads = mod.gradients(params, data)
    assert np.isfinite(loss) and loss > 1000
    assert all(np.all(np.isfinite(g)) for g in grads.values())
    assert np.isfinite(mod.train_step(params, data, 0.01, {}))


def test_derive_train_takes_labels_as_they_are_and_learns_digits(tmp_path, capsys):
    w = str(tmp_path / "digits.npz")
    argv = ["--data", "digits", "--epochs", "15", "--lr", "0.01", "--optimizer", "adam"]
    assert main(["train", "cs231n_softmax", *argv, "--dim", "H=32", "--out", w]) == 0
    capsys.readouterr()
    assert (
        main(["test", "cs231n_softmax", "--data", "digits", "--weights", w, "--format", "json"])
        == 0
    )
    import json

    report = json.loads(capsys.readouterr().out)
    assert report["accuracy"] >= 0.93, report["accuracy"]


# --- element-wise and two-argument functions ---------------------------------------------------

FUNCS = """\
input  X[B, D]
target T[B, K]
param  W[D, K], b[K]
const  lam = 0.01
z = X @ W + b
r = sqrt(square(z) + 1)
m = minimum(maximum(r - T, -0.5), 2)
L = sum(square(m)) / B + lam * sum(abs(W)) + sum(maximum(z, T))
"""


def test_abs_sqrt_square_maximum_minimum_match_finite_differences():
    _proofs_pass(FUNCS)
    X, T = rng.normal(size=(6, 3)), rng.normal(size=(6, 2))
    W, b = rng.normal(size=(3, 2)), rng.normal(size=2)

    def loss():
        z = X @ W + b
        r = np.sqrt(z**2 + 1)
        m = np.minimum(np.maximum(r - T, -0.5), 2)
        return np.sum(m**2) / 6 + 0.01 * np.sum(np.abs(W)) + np.sum(np.maximum(z, T))

    env = {"X": X, "T": T, "W": W, "b": b, "lam": 0.01, "B": 6, "D": 3, "K": 2}
    got = run_json(derived_json(FUNCS), env)["grads"]
    fd = finite_differences(loss, {"W": W, "b": b})
    for p in ("W", "b"):
        assert rel_error(got[p], fd[p]) < 1e-6, p


def test_functions_generate_stable_ruff_clean_code(tmp_path):
    mod = module_from_source(codegen.generate(FUNCS), tmp_path, "gen_funcs")
    params = {"W": rng.normal(size=(3, 2)) * 400, "b": rng.normal(size=2)}
    data = {"X": rng.normal(size=(6, 3)), "T": rng.normal(size=(6, 2))}
    assert np.isfinite(mod.loss(params, data))
    assert all(np.all(np.isfinite(g)) for g in mod.gradients(params, data).values())


# --- reductions and selections with NumPy's arguments -----------------------------------------

REDUCING = """\
input  X[B, D]
target T[B, H]
param  W[D, H]
h = X @ W
v = var(h, axis=0, keepdims=True)
hn = (h - mean(h, axis=0)) / sqrt(v + 0.01)
s = std(hn, axis=1, ddof=1)
z = where(h > 0, h, 0.1 * h) + where(1 <= h, -3, h)
L = -sum(T * log_softmax(z, axis=1)) + sum(s * s) + sum(T * hn) + var(h)
"""


def _reducing_loss(X, T, W):
    h = X @ W
    v = np.var(h, axis=0, keepdims=True)
    hn = (h - np.mean(h, axis=0)) / np.sqrt(v + 0.01)
    s = np.std(hn, axis=1, ddof=1)
    z = np.where(h > 0, h, 0.1 * h) + np.where(h >= 1, -3, h)
    lsm = z - z.max(axis=1, keepdims=True)
    lsm = lsm - np.log(np.exp(lsm).sum(axis=1, keepdims=True))
    return -np.sum(T * lsm) + np.sum(s * s) + np.sum(T * hn) + np.var(h)


PROVEN = [
    "L = sum(var(h, axis=0)) + sum(std(h, axis=1, keepdims=True, ddof=1)) + var(h)",
    "L = sum(where(h > 0, h, -3)) + sum(where(1 <= h, h * h, 0.5 * h))",
    "L = -sum(T * log_softmax(h, axis=0))",
]


@pytest.mark.parametrize("body", PROVEN)
def test_var_std_where_log_softmax_pass_the_three_proofs(body):
    _proofs_pass("input X[B, D]\ntarget T[B, H]\nparam W[D, H]\nh = X @ W\n" + body + "\n")


def test_var_std_where_log_softmax_match_finite_differences(tmp_path):
    _proofs_pass(REDUCING)  # the whole network at once, as well as the parts above
    X, T, W = rng.normal(size=(6, 3)), rng.normal(size=(6, 4)), rng.normal(size=(3, 4))
    env = {"X": X, "T": T, "W": W, "B": 6, "D": 3, "H": 4}
    got = run_json(derived_json(REDUCING), env)["grads"]["W"]
    fd = finite_differences(lambda: _reducing_loss(X, T, W), {"W": W})["W"]
    assert rel_error(got, fd) < 1e-6
    mod = module_from_source(codegen.generate(REDUCING), tmp_path, "gen_reducing")
    data = {"X": X, "T": T}
    assert mod.loss({"W": W}, data) == pytest.approx(_reducing_loss(X, T, W), rel=1e-10)
    assert rel_error(mod.gradients({"W": W}, data)["W"], fd) < 1e-6
    # the fused step: lr rides on the loss's own terms even inside (δa + x)/10 (it was
    # missing there, and the step moved W by the wrong amount)
    fused = {"W": W.copy()}
    assert mod.train_step(fused, data, 0.1, {}) == pytest.approx(_reducing_loss(X, T, W))
    np.testing.assert_allclose(fused["W"], W - 0.1 * mod.gradients({"W": W}, data)["W"], atol=1e-12)


@pytest.mark.parametrize(
    ("call", "words"),
    [
        ("var(h, ddof=2)", "ddof must be 0 or 1"),
        ("where(h, h, 0)", "expected a comparison"),
        ("where(1 > 0, h, 0)", "compares two numbers"),
        ("maximum(1, 2)", "two numbers"),
        ("log_softmax(h, axis=2)", "out of range"),
        ("std(h, keepdims=3)", "keepdims must be True or False"),
    ],
)
def test_function_misuse_is_a_spec_error(call, words):
    spec = f"input X[B, D]\nparam W[D, H]\nh = X @ W\nL = sum({call})\n"
    with pytest.raises(SpecError) as err:
        derive.load(spec)
    assert words in str(err.value) and err.value.line == 4


def test_a_batchnorm_classifier_with_labels_passes_the_three_proofs():
    spec = """\
input  X[B, D]
target y[B] labels(C)
param  W1[D, H], g[H], beta[H], W2[H, C]
hpre = X @ W1
hn = (hpre - mean(hpre, axis=0, keepdims=True)) / sqrt(var(hpre, axis=0, keepdims=True) + 1e-5)
h = tanh(g * hn + beta)
s = where(h > 0, h, 0.1 * h) @ W2
logits = s - std(s, axis=1, keepdims=True, ddof=1)
L = -mean(log_softmax(logits, axis=1)[range(B), y])
"""
    d = _proofs_pass(spec)
    # the shift by a row's std passes no gradient: each row of δlogits sums to 0
    assert d.step("s").text() == "δs = (L_in − onehot(y))/B"


WHERE_BIG = """\
input  X[B, D], M[B, H]
target T[B, H]
param  W[D, H]
h = X @ W
a = where(M > 0, h, -1e9)
L = sum(exp(a) * T)
"""


def test_where_with_a_huge_number_keeps_the_other_branch_exact(tmp_path):
    # m h + (1 − m)(−1e9), expanded by SymPy, was h + 1e9 − 1e9: h to ~1e-7 only, and
    # exp(h m + 1e9 m − 1e9) in the fused step overflowed
    mod = module_from_source(codegen.generate(WHERE_BIG), tmp_path, "gen_where_big")
    X, W = rng.normal(size=(4, 3)), rng.normal(size=(3, 5))
    M, T = rng.integers(0, 2, size=(4, 5)), rng.normal(size=(4, 5))
    data, params = {"X": X, "M": M, "T": T}, {"W": W}
    expected = np.where(M > 0, X @ W, -1e9)
    np.testing.assert_array_equal(mod.forward(params, data)["a"], expected)
    loss = np.sum(np.exp(expected) * T)
    assert mod.loss(params, data) == pytest.approx(loss, rel=1e-14)
    grad = X.T @ (np.exp(expected) * T * (M > 0))
    np.testing.assert_allclose(mod.gradients(params, data)["W"], grad, rtol=1e-13)
    fused = {"W": W.copy()}
    with np.errstate(over="raise"):
        assert mod.train_step(fused, data, 0.1, {}) == pytest.approx(loss, rel=1e-14)
    np.testing.assert_allclose(fused["W"], W - 0.1 * grad, rtol=1e-13)


UNIT_SUM = "input X[B, D]\nparam W[D, C], V[D, 1]\nh = {}\nu = X @ V\nL = sum(h * u)\n"


def test_a_softmax_row_sums_to_one_and_the_proofs_check_that_identity(monkeypatch):
    # L = Σ_b u_b Σ_c softmax(XW)_bc = Σ_b u_b: W has no effect, and the engine says so
    d = _proofs_pass(UNIT_SUM.format("softmax(X @ W, axis=1)"))
    assert d.gradients["W"].text() == "∂L/∂W = 0"
    # the same identity claimed where it is false (tanh rows do not sum to 1): the
    # simplified forms are wrong, and the exact and numeric proofs say so
    monkeypatch.setattr(derive.simplify, "unit_sum_axes", lambda net: {"h": 1})
    wrong = derive.load(UNIT_SUM.format("tanh(X @ W)"))
    assert [p.passed for p in check.run_all(wrong)] == [True, False, False]


@pytest.mark.parametrize("target", ["torch", "jax", "numba"])
def test_other_targets_take_class_labels(target):
    """Their numerics: tests/test_targets_{torch,jax,numba}.py (gradchecks, the NumPy step)."""
    from codegen.targets import generate_target

    source = generate_target("cs231n_softmax", target)
    assert "def class_labels(values):" in source and "class_labels(data" in source
