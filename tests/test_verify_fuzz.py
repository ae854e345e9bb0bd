"""Fuzzing the claim and identity readers (issue 8): mutated claims and identities end in a
verdict or in our own error (SpecError, which the command prints as one line), never in
anything else, and never run unbounded."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

import derive
from derive.cli import main
from derive.derivation import derive as derive_forms
from derive.errors import SpecError
from derive.verify import verify_identity
from derive.verify.judge import Verifier

CLAIMS = Path(derive.__file__).parent / "claims"
NASTY = [
    "(", ")", "^", "_", "{", "}", "\\", "1e999", "**", "10^{10^{10}}", "λ", "\ud800", "=",
    "[", "]", ".", ",", "#", "\u2028", "'", "np.", ">", "<=", "+=", "-", "@", "ᵀ", "δ", "9" * 40,
    "\\frac", "\\text{\udcff}", "(" * 300, ".sum(", "torch.", "[-1]", ":",
]  # fmt: skip


def mutate(text: str, rng: random.Random) -> str:
    for _ in range(rng.randint(1, 3)):
        i = rng.randrange(len(text) + 1)
        kind = rng.random()
        if kind < 0.3 and text:
            text = text[:i] + text[i + 1 :]
        elif kind < 0.5 and text:
            j = rng.randrange(len(text))
            text = text[:i] + text[j : j + rng.randint(1, 8)] + text[i:]
        else:
            text = text[:i] + rng.choice(NASTY) + text[i:]
    return text


def statements(name: str) -> tuple[str, list[str]]:
    text = (CLAIMS / name).read_text()
    spec = text.splitlines()[0].split(":", 1)[1].strip()
    spec = str(CLAIMS / spec) if (CLAIMS / spec).exists() else spec
    rows = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    return spec, rows


@pytest.mark.parametrize("name", ["seed000_rows.claims", "seed003.claims", "seed004.claims"])
def test_mutated_claims_end_in_a_verdict_or_our_error(name):
    spec, rows = statements(name)
    net = derive.load_network(spec)
    v = Verifier(derive_forms(net, keep_all=True), net)
    rng = random.Random(name)
    for _ in range(60):
        text = mutate(rng.choice(rows), rng)
        v.run(text, "<fuzz>")  # unreadable statements become SpecErrors in v.errors
    assert all(isinstance(e, SpecError) for e in v.errors)
    assert v.results or v.errors


IDENTITIES = [
    "sigmoid'(z) = sigmoid(z)*(1 - sigmoid(z))",
    r"\sigma'(z) = \sigma(z) (1 - \sigma(z))",
    "tanh'(z) = 1 - tanh(z)**2",
    "softplus'(z) = sigmoid(z)",
]


def test_mutated_identities_end_in_a_verdict_or_our_error():
    rng = random.Random(8)
    seen = 0
    for _ in range(150):
        text = mutate(rng.choice(IDENTITIES), rng)
        try:
            verify_identity(text)
        except SpecError:
            seen += 1
    assert seen > 10  # the mutations do reach the error paths


@pytest.mark.parametrize(
    "claim",
    [
        "dA2 = dA2 * D2",  # a name defined from itself, never defined before
        "dL/dW = 10^{10^{10}} * x.T @ u",
        "dL/dW = " + "(" * 300 + "x" + ")" * 300,
        "dL/dW = x.T @ \\text{\udcff}",
        "dL/dW = x.T @ " + " + ".join(["u"] * 600),
    ],
)
def test_issue_8_claims_are_our_errors(claim):
    net = derive.load_network("seed000")
    v = Verifier(derive_forms(net, keep_all=True), net)
    v.run(claim)
    assert all(isinstance(e, SpecError) for e in v.errors)
    assert main(["verify", "seed000", "--claim", claim]) == 2  # our one-line error, or
    # "nothing was checked" (dA2 is not a gradient of seed000): exit 2 either way


def test_issue_8_identity_and_file():
    with pytest.raises(SpecError):
        verify_identity("λ = z")
    with pytest.raises(SpecError):
        verify_identity("z = " + "(" * 400 + "z" + ")" * 400)


@pytest.mark.parametrize(
    "body",
    [
        "dx = dout / (x - x)",  # a division by zero: a verdict
        "dx = dout.foo",  # an attribute of no known value: our error
        "dx = dout[10]",  # an index out of range: the code's error, at its line
        "dx = {}[1]",
        "dx = dout * (x > 0); dx /= 0",
    ],
)
def test_odd_function_lines_are_verdicts_or_line_errors(body):
    from derive.errors import SpecError
    from derive.verify.function import verify_function

    source = f"def relu_backward(dout, cache):\n    x = cache\n    {body}\n    return dx\n"
    net = derive.load_network("tests/specs/verify/relu_layer.nn")
    try:
        results = verify_function(net, source, "f.py")
    except SpecError as exc:
        assert exc.line == 3, str(exc)
    else:
        assert [r.verdict for r in results] == ["incorrect"]
