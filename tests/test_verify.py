"""`derive verify`: verdicts, diagnoses and notations on formulas the tool has not seen."""

from __future__ import annotations

import json

import pytest

import derive
from derive import SpecError
from derive.cli import main
from derive.verify import verify, verify_identity


def verdicts(spec: str, claim: str):
    return [(r.verdict, r.diagnosis) for r in verify(derive.load_network(spec), claim)]


def one(spec: str, claim: str):
    (result,) = verify(derive.load_network(spec), claim)
    return result


# --- the same correct statement in three notations -------------------------------------------

SEED000_W = [
    "dL/dW = x.T @ (2 * (y - t) @ S.T * relu'(u))",  # code
    "∂L/∂W = xᵀ (2 (y − t) Sᵀ ⊙ relu'(u))",  # Unicode
    r"\frac{\partial L}{\partial W} = x^{T} \left[ 2 \left(y - t\right) S^T \odot "
    r"\text{ReLU}'(u) \right]",  # LaTeX
]


@pytest.mark.parametrize("claim", SEED000_W)
def test_correct_in_code_unicode_and_latex(claim):
    assert one("seed000", claim).verdict == "correct"


def test_definitions_then_gradients_with_semicolons():
    claim = "delta3 = (X3 - T) * f3'(X2 @ W3); dE/dW3 = X2.T @ delta3"
    assert verdicts("seed003", claim) == [("correct", None)]


EQUIVALENT = [
    ("seed000", "dL/dS = (2 * (y - t).T @ h).T"),  # (δᵀ x)ᵀ for xᵀ δ
    ("seed000", "dL/dS = h.T @ (2*y - 2*t)"),
    ("seed003_sigmoid", "d3 = (X3 - T) * X3 * (1 - X3); dE/dW3 = X2.T @ d3"),  # h (1 − h)
    (
        "seed003_sigmoid",
        "d3 = (X3 - T) * sigmoid(X2 @ W3) * (1 - sigmoid(X2 @ W3)); dE/dW3 = X2.T @ d3",
    ),  # σ(z)(1 − σ(z))
    ("seed003_sigmoid", "d3 = (X3 - T) * sigmoid'(X2 @ W3); dE/dW3 = X2.T @ d3"),
    ("seed003", "d3 = f3'(X2 @ W3) ⊙ (X3 − T); dE/dW3 = X2ᵀ d3"),  # ⊙ operand order
    ("seed002", "dL/dW3 = a2.T @ ((y_hat - T) / B)"),  # (p − t)/B under onehot
    ("seed002", "dL/db3 = sum(y_hat - T, axis=0) / B"),
    (
        "seed004",
        r"\delta = \frac{1}{B} (\hat{Y} - Y); \frac{\partial J}{\partial W_2} = "
        r"X_2^T \delta",
    ),  # a mean over B×1 outputs: n_out = 1 in the seed; here n_out
]


@pytest.mark.parametrize(("spec", "claim"), EQUIVALENT[:-1])
def test_equivalent_rewrites_are_accepted(spec, claim):
    result = verify(derive.load_network(spec), claim)[-1]
    assert result.verdict == "correct", (result.reason, result.diagnosis)


def test_a_mean_over_all_outputs_is_not_a_mean_over_the_batch():
    result = verify(derive.load_network("seed004"), EQUIVALENT[-1][1])[-1]
    assert result.verdict == "incorrect"
    assert result.diagnosis == (
        "off by a constant factor: the gradient is 1/n_out times the formula (a missing 1/n_out)"
    )


# --- diagnoses -------------------------------------------------------------------------------

D3 = "d3 = (X3 - T) * f3'(X2 @ W3); d2 = d3 @ W3.T * f2'(X1 @ W2); "


@pytest.mark.parametrize(
    ("claim", "verdict", "words"),
    [
        (D3 + "dE/dW2 = (X1.T @ d2).T", "incorrect", "transposed"),
        (D3 + "dE/dW3 = 2 * X2.T @ d3", "incorrect", "1/2 times"),
        (D3 + "dE/dW3 = -(X2.T @ d3)", "incorrect", "sign"),
        (D3 + "dE/dW2 = X1.T @ (d3 @ W3.T * f2'(X2))", "incorrect", "wrong point"),
        (D3 + "dE/dW2 = X1.T @ (d3 @ W3.T * f3'(X1 @ W2))", "incorrect", "wrong function"),
        (D3 + "dE/dW3 = X2.T @ d3 + X2.T @ (X3 - T)", "incorrect", "extra term"),
        (D3 + "dE/dW2 = X1.T @ (W3 @ d3.T)", "ill-formed", "(h1, n) and (h2, n) do not fit"),
    ],
)
def test_diagnoses(claim, verdict, words):
    result = verify(derive.load_network("seed003"), claim)[-1]
    assert result.verdict == verdict
    assert words in f"{result.reason} {result.diagnosis}"
    if verdict == "incorrect" and "formula" in result.counterexample:
        assert result.counterexample["formula"] != pytest.approx(result.counterexample["gradient"])
    assert result.expected.startswith("∂E/∂W")


def test_missing_term_of_a_penalty():
    spec = "tests/specs/penalty.nn"
    result = one(spec, "dL/dW2 = h.T @ ((p - T) / B)")
    assert result.verdict == "incorrect"
    assert result.diagnosis == "a term is missing: 2*lam W2"


def test_column_layout_formula_is_ill_formed_in_row_layout_but_holds_transposed():
    # seed002's §6.2 written for one example as a column vector, checked on the batch spec
    claim = "d3 = (y_hat - T) / B; d2 = (W3 @ d3.T).T * a2 * (1 - a2); dL/dW2 = a1.T @ d2"
    assert one("seed002", claim).verdict == "correct"
    result = one("seed002", "dL/dW3 = ((y_hat - T) / B) @ a2.T")
    assert result.verdict == "ill-formed"
    assert "holds in the transposed layout" in result.reason


# --- identities, output, errors --------------------------------------------------------------


@pytest.mark.parametrize(
    ("identity", "verdict"),
    [
        ("sigmoid'(z) = sigmoid(z)*(1 - sigmoid(z))", "correct"),
        (r"\sigma'(z) = \sigma(z) (1 - \sigma(z))", "correct"),
        ("tanh'(z) = 1 - tanh(z)**2", "correct"),
        ("softplus'(z) = sigmoid(z)", "correct"),
        ("sigmoid'(z) = sigmoid(z)*(1 + sigmoid(z))", "incorrect"),
        ("tanh'(z) = 1 - tanh(z)", "incorrect"),
    ],
)
def test_identities(identity, verdict):
    assert verify_identity(identity).verdict == verdict


def test_json_and_exit_codes(capsys):
    code = main(["verify", "seed003", "--claim", D3 + "dE/dW3 = X2.T @ d3", "--format", "json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0 and doc[0]["verdict"] == "correct"
    assert set(doc[0]) == {
        "text",
        "normalized",
        "verdict",
        "reason",
        "diagnosis",
        "counterexample",
        "expected",
        "line",
        "built_on",
    }
    assert main(["verify", "seed003", "--claim", D3 + "dE/dW3 = 2 * X2.T @ d3"]) == 1
    capsys.readouterr()
    # an undefined name makes that statement ill-formed; the others are still checked
    assert main(["verify", "seed003", "--claim", "dE/dW3 = X2.T @ nope"]) == 1
    assert "unknown name 'nope'" in capsys.readouterr().out
    # an unreadable formula is bad input: exit 2, after checking the readable ones
    assert (
        main(
            [
                "verify",
                "seed003",
                "--claim",
                D3 + "dE/dW3 = X2.T @ d3",
                "--claim",
                "dE/dW3 = X2.T @ (d3",
            ]
        )
        == 2
    )
    out, err = capsys.readouterr()
    assert "✓ line 1: correct" in out and "<claim>:1:" in err and "cannot read formula" in err


def test_bad_statements_are_input_errors():
    with pytest.raises(SpecError, match="must be the loss"):
        verify(derive.load_network("seed003"), "dX3/dW3 = X2")
    with pytest.raises(SpecError, match="cannot read formula"):
        verify(derive.load_network("seed003"), "dE/dW3 = X2.T @ (d3")
