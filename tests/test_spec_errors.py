"""Bad specs: one clear message with file:line:col, exit status 2, never a traceback."""

from __future__ import annotations

import contextlib
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from derive import SpecError, parse
from derive.cli import main

GOOD = """\
input  x[B, n_x]
target t[B, n_y]
param  W[n_x, n_h], S[n_h, n_y]
u = x @ W
h = relu(u)
y = h @ S
L = sum((y - t)**2)
"""


def error_of(text: str) -> SpecError:
    with pytest.raises(SpecError) as info:
        parse(text, file="net.nn")
    return info.value


CASES = [
    # (replace this line, with this, expected line, col, words in the message)
    ("u = x @ W", "u = x @ S", 4, 5, ["(B, n_x)", "(n_h, n_y)", "@"]),
    ("u = x @ W", "u = x @ W +", 4, 12, ["syntax error"]),
    ("u = x @ W", "u = x @ V", 4, 9, ["unknown name 'V'"]),
    ("h = relu(u)", "h = rleu(u)", 5, 5, ["unknown function 'rleu'", "relu"]),
    ("h = relu(u)", "u = relu(u)", 5, 1, ["'u' is assigned twice"]),
    ("L = sum((y - t)**2)", "L = (y - t)**2", 7, 1, ["must be a scalar", "(B, n_y)"]),
    ("y = h @ S", "y = h @ S + x", 6, 5, ["(B, n_y)", "(B, n_x)", "broadcast"]),
    ("h = relu(u)", "h = relu(u, 3)", 5, 5, ["relu takes 1 array argument"]),
    ("h = relu(u)", "h = u ** x", 5, 10, ["constant number as the exponent"]),
    ("h = relu(u)", "h = u.shape", 5, 5, ["only .T"]),
    ("h = relu(u)", "h = u[0]", 5, 5, ["unsupported syntax"]),
    ("h = relu(u)", "h = __import__('os')", 5, 5, ["unknown function"]),
    ("L = sum((y - t)**2)", "L = sum((y - t)**2, axis=2)", 7, 5, ["axis 2 is out of range"]),
    (
        "param  W[n_x, n_h], S[n_h, n_y]",
        "param  W[n_x, n_h], S[n_h, n_y], Q[n_h, n_y]",
        3,
        34,
        ["does not depend on param 'Q'"],
    ),
    ("input  x[B, n_x]", "input  x[B, n_x, 3, 3, 3, 3, 3]", 1, 8, ["1 to 6 dimensions"]),
    ("input  x[B, n_x]", "input  np[B, n_x]", 1, 8, ["reserved"]),
    ("input  x[B, n_x]", "input  delta_x[B, n_x]", 1, 8, ["reserved"]),
    ("target t[B, n_y]", "target t[B, n_y] onehot(axis=5)", 2, 8, ["onehot axis 5"]),
    ("h = relu(u)", "h = softmax(u, axis=x)", 5, 21, ["expected an integer"]),
    ("h = relu(u)", "param V[n_h, n_h]", 5, 1, ["declarations must come before"]),
    ("h = relu(u)", "h == relu(u)", 5, 1, ["expected one assignment"]),
    ("h = relu(u)", "h = 'relu'", 5, 5, ["expected a number"]),
]


@pytest.mark.parametrize(("old", "new", "line", "col", "words"), CASES)
def test_each_error_names_file_line_column_and_what_was_expected(old, new, line, col, words):
    err = error_of(GOOD.replace(old, new))
    assert (err.file, err.line, err.col) == ("net.nn", line, col), str(err)
    for w in words:
        assert w in err.message, err.message
    assert str(err).startswith(f"net.nn:{line}:{col}: error: ")


def test_cli_reports_a_bad_spec_with_exit_code_2(tmp_path, capsys):
    bad = tmp_path / "bad.nn"
    bad.write_text(GOOD.replace("u = x @ W", "u = x @ S"))
    assert main(["grad", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{bad}:4:5: error:") and "Traceback" not in err


def test_cli_reports_a_missing_spec_with_exit_code_2(capsys):
    assert main(["grad", "no_such_spec"]) == 2
    assert "no spec file or bundled spec named 'no_such_spec'" in capsys.readouterr().err


def test_cli_usage_error_exits_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["grad", "seed000", "--format", "pdf"])
    assert info.value.code == 2


# --- fuzzing: arbitrary text only ever raises SpecError -------------------------------------

TOKENS = [
    "input",
    "target",
    "param",
    "const",
    "func",
    "onehot",
    "x",
    "W",
    "b",
    "t",
    "L",
    "u",
    "B",
    "n",
    "[",
    "]",
    "(",
    ")",
    ",",
    "=",
    "@",
    "*",
    "+",
    "-",
    "/",
    "**",
    ".T",
    "sum",
    "mean",
    "relu",
    "softmax",
    "axis=",
    "0",
    "1",
    "2.5",
    "#",
    "\n",
    " ",
    "lambda",
    "'s'",
    "[B, n]",
    "x[B, n]",
    "W[n, n]",
    "f",
    "f(x)",
    "keepdims=True",
    "import",
    ";",
    ":",
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=40).map("".join))
def test_fuzz_token_soup_only_raises_spec_error(text):
    try:
        parse(text, file="fuzz.nn")
    except SpecError as err:
        assert err.line >= 1 and err.col >= 1 and err.message
    except RecursionError:  # pragma: no cover - would be a bug
        raise


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=string.printable + "δ⊙ᵀ∂", max_size=120))
def test_fuzz_arbitrary_text_only_raises_spec_error(text):
    with contextlib.suppress(SpecError):
        parse(text, file="fuzz.nn")


@settings(max_examples=200, deadline=None)
@given(st.integers(0, len(GOOD) - 1), st.text(max_size=6))
def test_fuzz_small_edits_of_a_good_spec(pos, insert):
    with contextlib.suppress(SpecError):
        parse(GOOD[:pos] + insert + GOOD[pos:], file="fuzz.nn")
