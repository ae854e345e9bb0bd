"""Audit of issue 8 (hardening): gaps found after the first pass, each with a test that
fails without its fix."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

import derive
from derive import check
from derive import derivation as derivation_module
from derive.cli import main
from derive.errors import DerivationError

CENTRED = """input x[B, n]
param W[n, n]
param b[n]
z = x @ W + b
L = sum(z - mean(z, axis=0, keepdims=True))
"""

CENTRED_BIAS = """input x[B, n]
param W[n, n]
param b[n]
z = x @ W
h = z + b - mean(z + b, axis=0, keepdims=True)
L = sum(h**2)
"""


def test_an_adjoint_that_cancels_to_nothing_is_a_zero_matrix_and_proven():
    # every term of δz cancels element-wise: this used to be "an adjoint with no terms"
    d = derive.derive(derive.load_network(CENTRED))
    for name in ("W", "b"):
        assert isinstance(d.gradients[name].matrix, sp.ZeroMatrix)
    proofs = check.run_all(d)
    assert [p.passed for p in proofs] == [True, True, True], [(p.name, p.details) for p in proofs]


def test_a_bias_cancelled_by_centering_is_derived_as_zero():
    # δb = 1ᵀδh − 1ᵀδh (the terms cancel only once a summed index's extent is counted)
    d = derive.derive(derive.load_network(CENTRED_BIAS))
    assert isinstance(d.gradients["b"].matrix, sp.ZeroMatrix)
    assert not isinstance(d.gradients["W"].matrix, sp.ZeroMatrix)
    assert all(p.passed for p in check.run_all(d))


def test_the_generated_module_of_a_zero_gradient_is_written(tmp_path):
    path = tmp_path / "centred.nn"
    path.write_text(CENTRED)
    assert main(["gen", str(path), "-o", str(tmp_path / "m.py")]) == 0
    assert "np.copyto(_out_grad_W, 0)" in (tmp_path / "m.py").read_text()


def test_a_derivation_error_points_at_its_equation(tmp_path, capsys, monkeypatch):
    # the engine refuses rarely; make it refuse on the equation of line 4 (h)
    real = derivation_module.lower

    def refusing(node, out):
        if "b" in str(node) and len(out) == 2:
            raise DerivationError("no matrix form for this")
        return real(node, out)

    monkeypatch.setattr(derivation_module, "lower", refusing)
    path = tmp_path / "c.nn"
    path.write_text(CENTRED_BIAS)
    assert main(["grad", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"{path}:5:1: error: cannot derive this network"), err


@pytest.mark.parametrize("where", ["recover"])
def test_a_recovery_error_points_at_its_declaration(tmp_path, capsys, monkeypatch, where):
    real = derivation_module.recover

    def refusing(terms, out):
        if len(out) == 1:  # the bias gradient, declared on line 3
            raise DerivationError("no matrix form for this")
        return real(terms, out)

    monkeypatch.setattr(derivation_module, "recover", refusing)
    path = tmp_path / "c.nn"
    path.write_text(CENTRED_BIAS)
    assert main(["grad", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"{path}:3:"), err


CLASSES = """input x[B, n_in]
target t[B, n_out] onehot(axis=1)
param W[n_in, n_out], b[n_out]
z = x @ W + b
L = -sum(t * log(softmax(z, axis=1))) / B
"""

VALUES = """input x[B, n_in]
target t[B, 1]
param W[n_in, 1], b[1]
y = x @ W + b
L = sum((y - t)**2) / B
"""


def _csv(path, low, high):
    rng = np.random.default_rng(0)
    rows = [
        f"{a:.3f},{b:.3f},{int(c)}"
        for a, b, c in zip(*rng.random((2, 30)), rng.integers(low, high, 30), strict=True)
    ]
    path.write_text("a,b,target\n" + "\n".join(rows) + "\n")
    return str(path)


def test_whole_number_targets_above_the_class_limit_are_named_for_a_class_spec(tmp_path, capsys):
    spec = tmp_path / "cls.nn"
    spec.write_text(CLASSES)
    data = _csv(tmp_path / "big.csv", 10_000, 20_000)
    assert (
        main(
            ["train", str(spec), "--data", data, "--epochs", "1", "--out", str(tmp_path / "w.npz")]
        )
        == 2
    )
    err = capsys.readouterr().err.strip()
    assert "whole numbers up to" in err and "below 10000" in err, err
    assert not (tmp_path / "w.npz").exists()


def test_whole_number_targets_of_a_one_column_value_spec_are_values(tmp_path, capsys):
    # ages 18..89 in a column named target: a regression, not 90 one-hot classes
    spec = tmp_path / "reg.nn"
    spec.write_text(VALUES)
    data = _csv(tmp_path / "ages.csv", 18, 90)
    out = str(tmp_path / "w.npz")
    assert main(["train", str(spec), "--data", data, "--epochs", "2", "--out", out]) == 0, (
        capsys.readouterr().err
    )
    capsys.readouterr()
    assert main(["test", str(spec), "--weights", out, "--data", data]) == 0
    report = capsys.readouterr().out
    assert "mse" in report and "accuracy" not in report, report


@pytest.mark.parametrize(
    "claim",
    [
        "\\frac{\\partial J}{\\partial \\mathbf{\\hat{}}} = 1",  # IndexError in the reader
        "dL/dW = \\hat{} + 1",
        "a_\\frac{\\partial E}{\\partial W_{3}} = X_{2}^{T} \\delta_{ = 3}",  # a lost factor
    ],
)
def test_claims_found_by_the_audit_fuzz_are_one_line_errors(claim, capsys):
    assert main(["verify", "seed003", "--claim", claim]) == 2
    err = capsys.readouterr().err
    assert "internal error" not in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("fn", ["elu", "leaky_relu", "sigmoid"])
def test_the_derivative_of_a_function_with_other_params_is_diagnosed(fn, capsys):
    # relu belongs; elu/leaky_relu take an alpha that relu has not (a TypeError, exit 3)
    claim = f"grad_u = grad_h * {fn}'(u); dL/du = grad_u"
    assert main(["verify", "seed000", "--claim", claim]) == 1
    out = capsys.readouterr().out
    assert f"the derivative of the wrong function: {fn}' where relu' belongs" in out, out


def test_invalid_utf8_in_a_spec_points_at_its_line_and_column(tmp_path, capsys):
    path = tmp_path / "bad.nn"
    path.write_bytes(b"input x[B, n]\nparam W[n, m]\ny = x @ W \xed\xa0\x80\nL = sum(y)\n")
    assert main(["grad", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"{path}:3:11: error: spec is not UTF-8 text"), err


def test_a_false_identity_is_answered_without_unbounded_simplify():
    # found by the audit fuzz: sympy.simplify ran for minutes on this false identity
    import signal

    from derive.verify import verify_identity

    def ring(signum, frame):
        raise TimeoutError("no answer within 20 s: a hang")

    old = signal.signal(signal.SIGALRM, ring)
    signal.alarm(20)  # far above the honest answer (well under a second): only a hang trips it
    try:
        result = verify_identity("tanh'(1e9[-1]99z) = 1 - tanh(z)**2")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    assert result.verdict == "incorrect"
    assert verify_identity("tanh'(z) = 1 - tanh(z)**2").verdict == "correct"
