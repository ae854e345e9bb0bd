"""Limits, refusals and names: what the spec reader refuses at parse time, and where.

Each case is a spec a user could write that cannot be derived or would take
unbounded work (`2**10**10`, `/ 0`, `log(-1)`, `const lam = nan`, a billion-
wide literal dimension, 250 nested parentheses); each must be refused with
file:line:col and a message naming the limit.  Losses that are scalar
functions of reductions must derive, with a real matrix form, and prove.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import sympy as sp

import derive
from derive import SpecError, parse
from derive import limits as L
from derive.check import run_all
from derive.derivation import derive as derive_network
from derive.expressions import ExpressionReader
from derive.spec import SpecParser, _Parser, split_lines

HEAD = "input y[B, n]\ntarget t[B, n]\nparam W[n, n]\nz = y @ W\n"


def refused(text: str) -> SpecError:
    with pytest.raises(SpecError) as info:
        parse(text, file="net.nn")
    return info.value


@pytest.mark.parametrize(
    ("loss", "col", "words"),
    [
        ("L = sum(z) * 1e999", 14, ["not finite"]),
        ("L = sum(z) * 2**10**10", 17, ["exponent 10000000000", "at most 64"]),
        ("L = sum((z - t)**10000)", 18, ["exponent 10000", "limit"]),
        ("L = sum(((z - t)**60)**60)", 9, ["exponent 3600"]),
        ("L = sum(z ** (1/1001))", 15, ["denominator at most 1000"]),
        ("L = sum(z) * 10**13", 14, ["exceeds the limit", "1e12"]),
        ("L = sum(z) * 1e-300", 14, ["too small"]),
        ("L = sum(z / 0)", 13, ["division by zero"]),
        ("L = sum(z / (B - B))", 14, ["division by zero"]),
        ("L = sum(z) * 0 ** -1", 14, ["division by zero"]),
        ("L = sum(z) + log(-1)", 14, ["log(-1)", "no finite real value"]),
        ("L = sum(z) + log(0)", 14, ["log(0)"]),
        ("L = sum(z) * (-8) ** 0.5", 14, ["not a real number"]),
        ("L = sum(z) + exp(1000)", 14, ["exp(1000)"]),
        ("L = sum(z) * 1j", 14, ["expected a number"]),
    ],
)
def test_numbers_that_cannot_be_derived_are_refused_where_they_stand(loss, col, words):
    err = refused(HEAD + loss)
    assert (err.file, err.line, err.col) == ("net.nn", 5, col), str(err)
    for w in words:
        assert w in err.message, err.message


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e999", "1e13"])
def test_a_const_default_must_be_a_finite_number(value):
    err = refused(f"const lam = {value}\n" + HEAD + "L = lam * sum(z)")
    assert (err.line, err.col) == (1, 7) and "finite number" in err.message


def test_literal_dimensions_are_bounded():
    err = refused("input y[B, 1000000000]\nparam W[n, n]\nz = y @ W\nL = sum(z)")
    assert (err.line, err.col) == (1, 12) and str(L.MAX_LITERAL_DIM) in err.message
    assert "expected a dimension" in refused(HEAD.replace("[B, n]", "[B, 10**9]", 1)).message
    text = HEAD.replace("y[B, n]", f"y[B, {L.MAX_LITERAL_DIM}]")
    text = text.replace("W[n,", f"W[{L.MAX_LITERAL_DIM},")
    net = parse(text + "L = sum(z)")
    assert net.quantities["y"].shape[1] == L.MAX_LITERAL_DIM


def test_equation_and_line_counts_are_bounded():
    many = HEAD + "".join(f"z{k} = z + {k}\n" for k in range(L.MAX_EQUATIONS)) + "L = sum(z)"
    err = refused(many)
    assert "too many equations" in err.message and err.line == 4 + L.MAX_EQUATIONS
    err = refused(HEAD + "L = sum(z)  # " + "x" * L.MAX_LINE_CHARS)
    assert "line too long" in err.message and err.line == 5
    err = refused(HEAD + "#\n" * (L.MAX_SPEC_CHARS // 2) + "L = sum(z)")
    assert "spec too long" in err.message


@pytest.mark.parametrize(
    "body",
    [
        "(" * 250 + "z" + ")" * 250,
        "+".join(["z"] * 500),
        "-" * 500 + "z",
        "exp(" * 40 + "z" + ")" * 40,
    ],
)
def test_deep_or_long_expressions_are_refused_with_a_clear_message(body):
    err = refused(HEAD + f"L = sum({body})")
    assert err.line == 5
    assert "split it" in err.message or "separate equations" in err.message


def test_lines_end_at_newlines_only_and_comments_never_become_code():
    # Python's splitlines breaks at U+2028: the comment's tail would be an equation
    for sep in ("\u2028", "\u2029", "\x0c", "\x85", "\x1e"):
        net = parse(HEAD + f"L = sum(z)  # a note{sep}L2 = 1/0\n")
        assert [eq.name for eq in net.equations] == ["z", "L"]
    assert split_lines("a\r\nb\rc\nd\u2028e") == ["a", "b", "c", "d\u2028e"]
    # line numbers count the same lines: \r\n is one break, U+2028 none
    err = refused(HEAD.replace("\n", "\r\n") + "# x\u2028y\nL = sum(q)")
    assert (err.line, err.col) == (6, 9)
    err = refused(HEAD + "L = sum(z)\u2028 + 1")
    assert (err.line, err.col) == (5, 11) and "U+2028" in err.message


@pytest.mark.parametrize(
    ("text", "line", "col", "words"),
    [
        (HEAD + "L = sum(z) # \ud800", 5, 14, ["lone surrogate"]),
        (HEAD + "L = sum(z) + \x00", 5, 14, ["U+0000"]),
        (HEAD + "L = sum(z) * 1x", 5, 14, ["syntax error"]),
        (HEAD + "L = sum(z) +\u00a0t", 5, 13, ["syntax error"]),
    ],
)
def test_odd_characters_are_refused_with_their_position(text, line, col, words):
    err = refused(text)
    assert (err.line, err.col) == (line, col), str(err)
    for w in words:
        assert w in err.message


@pytest.mark.parametrize(
    ("text", "line", "col", "normal"),
    [
        ("const \u00b5 = 2\n" + HEAD + "L = \u03bc * sum(z)", 1, 7, "\u03bc"),  # micro sign
        (HEAD + "L = \u00b5 * sum(z)", 5, 5, "\u03bc"),  # in an equation too
        ("func \ufb01\n" + HEAD + "L = sum(z)", 1, 6, "fi"),
        ("input \U0001d465[B, n]\nparam W[n, n]\nz = x @ W\nL = sum(z)", 1, 7, "x"),
        ("input \uff4e\uff50[B, n]\n" + HEAD + "L = sum(z)", 1, 7, "np"),
        (HEAD.replace("[B, n]", "[B, \uff4e]", 1) + "L = sum(z)", 1, 12, "n"),
    ],
)
def test_a_name_not_written_in_nfkc_form_is_refused(text, line, col, normal):
    # Python reads such a spelling as another name: one spelling is one name
    err = refused(text)
    assert (err.line, err.col) == (line, col), str(err)
    assert f"write {normal!r}" in err.message


def test_names_in_nfkc_form_work_whatever_the_script():
    net = parse("const \u03bc = 2\n" + HEAD.replace("W", "\u03b4") + "L = \u03bc * sum(z)")
    assert list(net.consts) == ["\u03bc"] and "\u03b4" in net.quantities
    net = parse(HEAD + "L = sum(z)  # \u00b5 and \ufb01 in a comment are text")
    assert net.loss == "L"


@pytest.mark.parametrize(
    "loss",
    [
        "L = sum((z - t)**2) ** 0.5",
        "L = log(sum(exp(z)))",
        "L = sum(z) * sum(t * z)",
        "L = sum(z) / sum(exp(z))",
        "L = mean(z) ** 2",
        "L = sum(sum(exp(z), axis=1) ** 0.5)",
        # fusing leaves a sum over an index no factor holds (it counts n)
        "L = -sum(log(softmax(z))) / B",
    ],
)
def test_scalar_functions_of_reductions_derive_with_matrix_forms_and_prove(loss):
    d = derive_network(parse(HEAD + loss))
    for step in [*d.steps, *d.gradients.values()]:
        assert not step.matrix.has(sp.Sum), step.text()  # a real matrix form, no index sum
        assert "Σ" not in step.text()
    proofs = run_all(d, seed=1)
    assert all(p.passed for p in proofs), [str(p) for p in proofs]


def test_the_norm_loss_gradient_matches_finite_differences():
    d = derive_network(parse(HEAD + "L = sum((z - t)**2) ** 0.5"))
    rng = np.random.default_rng(0)
    y, t, W = rng.normal(size=(4, 3)), rng.normal(size=(4, 3)), rng.normal(size=(3, 3))

    def loss(W):
        return np.sqrt(np.sum((y @ W - t) ** 2))

    env = {"y": y, "t": t, "W": W, "np": np, "B": 4, "n": 3}
    env["z"] = y @ W
    env["L_sum"] = np.sum((env["z"] - t) ** 2)
    env["L"] = np.sqrt(env["L_sum"])
    for step in d.steps:
        env[step.symbol] = eval(step.numpy(), env)  # our own printed code
    grad = eval(d.gradients["W"].numpy(), env)
    eps, numeric = 1e-6, np.zeros_like(W)
    for idx in np.ndindex(W.shape):
        dW = np.zeros_like(W)
        dW[idx] = eps
        numeric[idx] = (loss(W + dW) - loss(W - dW)) / (2 * eps)
    assert np.allclose(grad, numeric, rtol=1e-6, atol=1e-8)


def test_load_network_reads_a_one_line_source_as_a_path(tmp_path):
    path = tmp_path / "a=b.nn"
    path.write_text(HEAD + "L = sum(z)")
    assert derive.load_network(str(path)).loss == "L"
    with pytest.raises(SpecError) as info:
        derive.load_network("L = sum(z)")
    assert "no spec file or bundled spec" in info.value.message
    with pytest.raises(SpecError):
        derive.load_network("bad\x00name")
    assert derive.load_network(HEAD + "L = sum(z)").file == "<text>"


def test_the_expression_reader_is_public_and_the_old_name_still_works():
    assert issubclass(SpecParser, ExpressionReader) and _Parser is SpecParser
    reader = ExpressionReader(file="claim")
    reader.dims = {"n": sp.Symbol("n", integer=True, positive=True)}
    reader.code, reader.line_no = "n ** 2 / 4", 3
    node = reader.expr(reader.parse_ast(reader.code))
    assert node.value == reader.dims["n"] ** 2 / 4
    reader.code = "n / 0"
    with pytest.raises(SpecError) as info:
        reader.expr(reader.parse_ast(reader.code))
    assert str(info.value) == "claim:3:5: error: division by zero"


def test_the_readme_states_the_limits():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Limits", 1)[1].split("\n## ", 1)[0]
    for name in L.__all__:
        value = getattr(L, name)
        spelled = (f"{value:,}", str(value), f"1e{len(str(value)) - 1}")
        assert any(s in section for s in spelled), name
    for code in ("0", "1", "2", "3", "130", "--debug", "DERIVE_DEBUG"):
        assert code in section


def test_declared_names_are_bounded():
    lines = [
        "const " + ", ".join(f"c{k}" for k in range(n, n + 50)) + "\n"
        for n in range(0, L.MAX_NAMES, 50)
    ]
    err = refused("".join(lines) + HEAD + "L = sum(z)")
    assert "too many declarations" in err.message and err.line == len(lines) + 1
    parse("".join(lines[:-1]) + HEAD + "L = sum(z)")


def test_a_long_elementwise_chain_does_not_fuse_into_one_growing_delta():
    # each layer's delta is element-wise in forward values, so each could be
    # fused into the next; unbounded, the last delta would hold all 16 layers
    # and the work would grow with the square of the depth
    from derive.simplify import MAX_FUSED_OPS, cost

    lines = ["input x[B, n]", "param W[n, n]", "z0 = x @ W"]
    lines += [f"z{k} = tanh(z{k - 1}) * 0.5 + z{k - 1}" for k in range(1, 16)]
    d = derive_network(parse("\n".join([*lines, "L = sum(z15 ** 2)"])))
    assert len(d.steps) > 1
    assert max(cost(s.terms) for s in d.steps) <= MAX_FUSED_OPS


def test_the_spec_at_every_limit_is_at_every_limit_and_one_more_is_refused():
    """``benchmarks.limits`` times this spec (README "Limits"); here: it is what it says,
    it parses, and one step past each new limit is refused with its position."""
    import ast

    from benchmarks.limits import at_every_limit

    text = at_every_limit()
    parser = SpecParser(text, "limits.nn", "limits")
    net = parser.run()
    lines = text.splitlines()
    assert len(text) == L.MAX_SPEC_CHARS and max(map(len, lines)) == L.MAX_LINE_CHARS
    assert len(net.equations) == L.MAX_EQUATIONS
    assert len(net.consts) + len(net.dims) + len(net.quantities) == L.MAX_NAMES
    assert L.MAX_TOTAL_NODES - 10 <= parser.total_nodes <= L.MAX_TOTAL_NODES
    big = next(line.split("  #")[0] for line in lines if line.startswith("z1 = "))
    depth = [0]
    for char in big:
        depth.append(depth[-1] + {"(": 1, ")": -1}.get(char, 0))
    assert max(depth) == L.MAX_NESTING
    for needle in ("** 64", str(L.MAX_NUMBER), "(999/1000)", "1e-18", f"[{L.MAX_LITERAL_DIM},"):
        assert needle in text, needle
    value = ast.parse(big).body[0].value  # type: ignore[attr-defined]
    assert L.MAX_NODES - 10 < sum(isinstance(n, ast.expr) for n in ast.walk(value)) <= L.MAX_NODES

    def calls(node, depth=0):
        depth += isinstance(node, ast.Call)
        return max([depth, *(calls(c, depth) for c in ast.iter_child_nodes(node))])

    assert calls(value) == L.MAX_CALL_NESTING
    # one function more in the big equation, and more nodes in the loss
    row = next(n for n, line in enumerate(lines) if line.startswith("z1 = "))
    deeper = big.replace("exp(-z0 ** 2)", "exp(-exp(z0))", 1)  # as many nodes
    deeper = "z1 = " + deeper[len("z1 = (") : -1]  # one redundant parenthesis pair less
    err = refused("\n".join([*lines[:row], deeper, *lines[row + 1 :]]))
    assert "functions nested too deeply" in err.message, err.message
    assert (err.line, err.col) == (row + 1, deeper.index("exp(z0)") + 1)
    last = len(lines) - 1
    more = ["#", *lines[1:last], "L = sum((z98 - t) ** 2) + sum(z0 * c1 * c2 * c3 * c4 * c5 * c6)"]
    err = refused("\n".join(more))
    assert "spec too large" in err.message and err.line == last + 1, str(err)
