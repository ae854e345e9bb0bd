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


# --- code as people write it (issue 9) -------------------------------------------------------
# The truth for these: each claim is the body of a function of tests/backward/styles.py, whose
# returned gradients tests/test_verify_code.py checks against finite differences.


def _body(fn) -> str:
    import inspect

    lines = inspect.getsource(fn).splitlines()
    keep = [ln.strip() for ln in lines[1:] if '["' not in ln and "return" not in ln]
    return "\n".join(ln for ln in keep if not ln.startswith("m = ") and not ln.startswith("N = "))


@pytest.mark.parametrize(
    ("spec", "name"),
    [
        ("ng", "ng_backward"),
        ("ng", "ng_backward_wrong_point"),
        ("cs231n", "cs231n_backward"),
        ("cs231n", "cs231n_backward_reg"),
    ],
)
def test_code_claims_give_the_verdicts_of_finite_differences(spec, name):
    from tests.backward import styles
    from tests.test_verify_code import CASES, finite_difference_labels

    case = {n: c for c, n in CASES}[name]
    _, P, forward, call, _ = case()
    labels = finite_difference_labels(P, forward, call(getattr(styles, name), P))
    net = derive.load_network(f"tests/specs/{spec}.nn")
    text = _body(getattr(styles, name))
    results = verify(net, text)
    for param, right in labels.items():
        mine = [r for r in results if r.normalized.endswith(f"(∂{net.loss}/∂{param})")]
        assert (mine[-1].verdict == "correct") == right, (param, mine[-1].text)
    wrong = [r for r in results if r.verdict != "correct"]
    if wrong:  # the first wrong line is the marked one; the later ones are built on it
        assert "# mistake" in text.splitlines()[wrong[0].line - 1]
        assert all(r.built_on == wrong[0].line for r in wrong[1:])
        assert wrong[0].diagnosis


@pytest.mark.parametrize(
    ("spec", "claim"),
    [
        # PyTorch spelling, methods, keepdim, .t()
        ("seed000", "dL/dW = torch.matmul(x.t(), 2 * (y - t) @ S.T * (u > 0).float())"),
        ("seed000", "dL/dS = h.T.dot(np.multiply(2, y - t))"),
        ("seed000", "grad_u = (2 * (y - t)).dot(S.T) * np.int64(h > 0); dL/dW = x.T @ grad_u"),
        ("seed000", "dh = 2 * (y - t) @ S.T; dh[u <= 0] = 0; dW = np.dot(x.T, dh)"),
        ("seed000", "dy = 2.0 * (y - t); dy *= 1; dS = h.T @ dy"),  # augmented assignment
        ("seed002", "dz3 = (y_hat - T) / B; db3 = dz3.sum(0, keepdim=True)"),
        ("seed002", "dz3 = (y_hat - T) * B**-1; db3 = np.sum(dz3, axis=0)"),  # negative power
        ("seed002", "dz3 = (y_hat - T) / B; dz2 = dz3 @ W3.T * a2 * (1 - a2); db2 = sum(dz2, 0)"),
        # Ng's LaTeX: W^{[2]}, A^{[1]T}, \frac{1}{m}
        ("tests/specs/ng.nn", r"dZ^{[2]} = A^{[2]} - Y; dW^{[2]} = \frac{1}{m} dZ^{[2]} A^{[1]T}"),
        # derive grad's own names read back: δu, delta_u
        ("seed000", "∂L/∂W = xᵀ δu"),
        ("seed000", "dL/dW = x.T @ delta_u"),
        # np.square and np.sqrt are the powers they compute (a2 − a2² is a2(1 − a2), and
        # xc / sqrt(v) is xc · v^(−1/2)), not opaque functions
        ("seed002", "dz3 = (y_hat - T) / B; dz2 = np.multiply(dz3 @ W3.T, a2 - np.square(a2))"),
        (
            "tests/specs/verify/batchnorm.nn",
            "dgamma = np.sum((out - t) * xc / np.sqrt(bvar + eps), 0)",
        ),
    ],
)
def test_code_spellings_are_read(spec, claim):
    results = verify(derive.load_network(spec), claim)
    assert results and all(r.verdict == "correct" for r in results), [
        (r.text, r.reason) for r in results
    ]


def test_derive_grad_forms_verify_as_correct():
    from derive.derivation import derive as derive_forms

    for spec in ("seed000", "seed003", "seed002"):
        d = derive_forms(derive.load_network(spec))
        claim = "\n".join(step.text() for step in [*d.steps, *d.gradients.values()])
        results = verify(derive.load_network(spec), claim)
        assert len(results) == len(d.steps) + len(d.gradients)
        assert all(r.verdict == "correct" for r in results), [r.text for r in results]


def test_names_convention_can_be_turned_off_and_nothing_checked_is_exit_2(capsys):
    from derive.verify import verify_all

    claim = "dW = x.T @ (2 * (y - t) @ S.T)"  # wrong: no relu'
    assert verify(derive.load_network("seed000"), claim)[0].verdict == "incorrect"
    results, errors = verify_all(derive.load_network("seed000"), claim, names=False)
    assert results == [] and errors == []
    assert main(["verify", "seed000", "--no-names", "--claim", claim]) == 2
    assert "nothing was checked" in capsys.readouterr().err


def test_repeated_claims_form_one_set(capsys):
    argv = ["verify", "seed003", "--claim", "d3 = (X3 - T) * f3'(X2 @ W3)"]
    assert main([*argv, "--claim", "dE/dW3 = X2.T @ d3"]) == 0
    assert "✓" in capsys.readouterr().out


def test_a_backward_file_on_the_command_line(capsys):
    argv = ["verify", "tests/specs/nielsen.nn", "tests/backward/styles.py"]
    argv += ["--function", "backprop_transposed", "--map", "weights=W1,W2", "biases=b1,b2"]
    assert main(argv) == 1
    out = capsys.readouterr().out
    assert "← the first wrong line" in out and "transposed" in out
    assert main([*argv[:3], "--function", "nope"]) == 2
    assert "no function 'nope'" in capsys.readouterr().err


def test_the_dropout_lines_of_ng():
    spec = "tests/specs/dropout.nn"
    ok = "dA1 = dZ2_back * D1; dA1 = dA1 / keep_prob; dZ1 = dA1 * (1 - A1**2)"
    wrong = "dA1 = dZ2_back * D1; dZ1 = dA1 * (1 - A1**2)"
    pre = "dZ2_back = W2.T @ ((A2 - Y) / m); "
    assert [r.verdict for r in verify(derive.load_network(spec), pre + ok)][-1] == "correct"
    last = verify(derive.load_network(spec), pre + wrong)
    assert last[0].verdict == "incorrect" and "a missing 1/keep_prob" in last[0].diagnosis


@pytest.mark.parametrize(
    ("claim", "verdict", "words"),
    [
        ("dz3 = (y_hat - T) / B; db3 = np.sum(dz3, axis=1)", "ill-formed", "wrong axis"),
        ("dz3 = (y_hat - T) / B; db3 = dz3", "ill-formed", "a missing sum over axis 0"),
        (
            "dp = -T / (B * y_hat); dz3 = y_hat * (dp - (dp * y_hat).sum(1))",
            "ill-formed",
            "a dropped keepdims",
        ),
    ],
)
def test_reduction_diagnoses(claim, verdict, words):
    from tests.test_mutations import finite_difference_label, normalised

    net = derive.load_network("seed002")
    result = verify(net, claim)[-1]
    assert result.verdict == verdict and words in result.diagnosis
    # the repaired claim is right by finite differences, independently of the verifier
    fixed = claim.replace("axis=1", "axis=0").replace("db3 = dz3", "db3 = sum(dz3, axis=0)")
    fixed = fixed.replace(".sum(1)", ".sum(1, keepdims=True)")
    if "dp =" in fixed:
        fixed += "; dL/db3 = sum(dz3, axis=0)"
    else:
        fixed = fixed.replace("db3 =", "dL/db3 =")
    statements = normalised(
        net,
        fixed.replace("np.sum", "sum").replace(
            "(dp * y_hat).sum(1, keepdims=True)", "sum(dp * y_hat, axis=1, keepdims=True)"
        ),
    )
    assert finite_difference_label(net, statements)
    assert verify(net, fixed)[-1].verdict == "correct"


def test_equal_only_at_the_exact_sizes_is_wrong():
    # the truth: ∂L/∂beta is sum(out - t, axis=0) for every N; divided by N - 1 it is right
    # only where N - 1 = 1, and the exact sizes give the batch N = 2
    net = derive.load_network("tests/specs/verify/batchnorm.nn")
    result = verify(net, "dbeta = np.sum(out - t, axis=0) / (N - 1)")[-1]
    assert result.verdict == "incorrect" and "equal at" in result.reason
    assert verify(net, "dbeta = np.sum(out - t, axis=0)")[-1].verdict == "correct"


def test_a_division_by_zero_is_a_verdict_not_a_crash():
    # the truth: W / (W - W) is infinite everywhere, no gradient is
    net = derive.load_network("tests/specs/verify/softmax_linear.nn")
    assert verify(net, "dW = W / (W - W)")[-1].verdict == "incorrect"
    result = verify(net, "dscores = probs; dscores[np.arange(N), y] /= 0")[-1]
    assert result.verdict == "incorrect"
