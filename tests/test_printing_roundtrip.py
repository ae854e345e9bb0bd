"""Printers are right by construction: printed NumPy means what the tree means.

Random expression trees over the registry's functions (every entry of
``RULES``, generic functions, powers with negative and rational exponents,
quotients, negated sums, softmax and reductions) are printed as NumPy,
evaluated, and compared with SymPy's own value of the tree at random points
(scalars) or with an independent evaluation that walks the tree node by node
(matrix forms).  The text printer's output is read back with :mod:`ast` and
must evaluate to the same number, so its parentheses are right too.
"""

from __future__ import annotations

import ast
import math
import operator
import re

import numpy as np
import pytest
import sympy as sp
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from derive.matexpr import Broadcast, Map, Softmax, SumAll, SumAxis
from derive.printing import NumpyFormPrinter, latex, text
from derive.rules import RULES, GenericFunction, generic_function, np_softmax, rule_of

X, Y = sp.symbols("x y", real=True)
F = generic_function("f")
EXPONENTS = [-2, -1, sp.Rational(-1, 2), sp.Rational(1, 2), sp.Rational(3, 2), 2, 3]
EXPONENTS += [sp.Rational(-3, 2), sp.Rational(1, 3), sp.Rational(-2, 3)]
PARAMS = [sp.Rational(1, 5), sp.Rational(-1, 3), sp.Integer(2), Y]
SETTINGS = settings(
    max_examples=150,
    deadline=None,
    database=None,
    derandomize=True,  # the same examples every run: a failure reproduces, never flakes
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


# ---------------------------------------------------------------------------
# scalar trees


def _apply(name: str, arg, params):
    rule = RULES[name]
    return rule.cls(arg, *params[: len(rule.params)])


@st.composite
def scalar_trees(draw, depth: int = 4):
    if depth == 0 or draw(st.integers(0, 3)) == 0:
        return draw(st.sampled_from([X, Y, sp.Integer(3), sp.Rational(2, 7), -X]))
    kind = draw(st.sampled_from(["add", "sub", "mul", "div", "neg", "pow", "call", "generic"]))
    a = draw(scalar_trees(depth - 1))
    if kind in ("add", "sub", "mul", "div"):
        b = draw(scalar_trees(depth - 1))
        return {"add": a + b, "sub": a - b, "mul": a * b, "div": a / b}[kind]
    if kind == "neg":
        return -a
    if kind == "pow":
        return a ** draw(st.sampled_from(EXPONENTS))
    if kind == "generic":
        return F(a)
    name = draw(st.sampled_from(sorted(RULES)))
    return _apply(name, a, [draw(st.sampled_from(PARAMS))])


def _truth(expr: sp.Expr, point: dict) -> complex:
    """SymPy's value of a tree: each registered function replaced by its explicit value."""
    explicit = expr.replace(lambda e: isinstance(e, GenericFunction), lambda e: sp.sin(*e.args))
    explicit = explicit.replace(
        lambda e: isinstance(e, sp.Function) and rule_of(e.func) is not None,
        lambda e: rule_of(e.func).value(*e.args),
    )
    return complex(sp.N(explicit.xreplace(point), 30))


def _walk(expr: sp.Expr, env: dict) -> float:
    """An independent float evaluation, node by node (to tell bad conditioning from bad code)."""
    if expr.is_Symbol:
        return env[expr.name]
    if expr.is_number and expr.is_real:  # 3, 2/7, E
        return float(expr)
    args = [_walk(a, env) for a in expr.args]
    if not all(math.isfinite(a) for a in args):
        return math.nan  # a pole on the way: no value to compare printed code with
    if isinstance(expr, sp.Add):
        return float(np.sum(args))
    if isinstance(expr, sp.Mul):
        return math.prod(args)
    if isinstance(expr, sp.Pow):
        return np.float64(args[0]) ** args[1]
    if isinstance(expr, GenericFunction):
        return np.sin(args[0])
    if isinstance(expr, sp.Abs):  # SymPy's own rewrite of sqrt(x**2)
        return abs(args[0])
    rule = rule_of(expr.func)
    return float(rule.np_impl(np.float64(args[0]), *args[1:]))


def _f(z):
    # a generic function bound to sin; relu' prints as a comparison (a bool
    # array), which a bound function receives as a 0/1 number
    return np.sin(np.asarray(z, dtype=float))


def _run(code: str, env: dict):
    with np.errstate(all="ignore"):
        return eval(code, {"np": np, "f": _f, **env})  # our own printed code


def _close(a, b) -> bool:
    return abs(a - b) <= 1e-7 * (1 + abs(b))


@SETTINGS
@given(scalar_trees(), st.lists(st.floats(-3, 3), min_size=2, max_size=2))
def test_printed_numpy_evaluates_to_the_sympy_value(expr, xs):
    assume(not expr.has(sp.zoo, sp.nan, sp.oo, -sp.oo, sp.I))  # refused by the parser
    code = NumpyFormPrinter().doprint(expr)
    point = {X: sp.Float(xs[0], 30), Y: sp.Float(xs[1], 30)}
    env = {"x": np.float64(xs[0]), "y": np.float64(xs[1])}
    try:
        truth = _truth(expr, point)
    except (TypeError, ValueError, KeyError, ZeroDivisionError, OverflowError):
        truth = complex("nan")  # SymPy has no number here: nothing to compare with
    with np.errstate(all="ignore"):
        reference = _walk(expr, env)
    # only where the value is a finite real and plain float arithmetic can
    # reach it (bad conditioning is not the printer's fault)
    assume(math.isfinite(truth.real) and abs(truth.imag) < 1e-12 and abs(truth.real) < 1e8)
    assume(math.isfinite(reference) and _close(reference, truth.real))
    value = _run(code, env)
    assert _close(float(value), truth.real), f"{expr} printed as {code}: {value} != {truth}"


@pytest.mark.parametrize(
    "expr, code",
    [
        (X ** sp.Rational(-1, 2), "1 / np.sqrt(x)"),
        ((X + Y) ** sp.Rational(-3, 2), "(x + y) ** (-3/2)"),
        (RULES["sigmoid"].cls(X / 2 - 1), "np.exp(-np.logaddexp(0, -(x / 2 - 1)))"),
        (
            RULES["leaky_relu"].cls(X - 1, sp.Rational(1, 5)),
            "np.where((x - 1) > 0, x - 1, (1/5) * (x - 1))",
        ),
        (RULES["relu_prime"].cls(X - Y), "np.where((x - y) > 0, 1.0, 0.0)"),
    ],
)
def test_the_cases_the_issue_names(expr, code):
    assert NumpyFormPrinter().doprint(expr) == code


# ---------------------------------------------------------------------------
# text keeps precedence: read back with ast, it evaluates to the same value

_TEXT_NAMES = {"σ": "sigmoid"}
_BIN = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul}
_BIN |= {ast.Div: operator.truediv, ast.Pow: operator.pow}


def _read_text(s: str, env: dict) -> float:
    for k, v in _TEXT_NAMES.items():
        s = s.replace(k, v)
    s = s.replace("'", "_prime")
    return _eval_ast(ast.parse(s, mode="eval").body, env)


def _eval_ast(node, env):
    if isinstance(node, ast.Constant):
        return float(node.value)
    if isinstance(node, ast.Name):
        return env[node.id]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_eval_ast(node.operand, env)
    if isinstance(node, ast.BinOp):
        return _BIN[type(node.op)](_eval_ast(node.left, env), _eval_ast(node.right, env))
    assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name), ast.dump(node)
    args = [_eval_ast(a, env) for a in node.args]
    name = node.func.id
    if name in ("f", "sin"):
        return math.sin(args[0])
    if name == "sqrt":
        return math.sqrt(args[0])
    if name == "Abs":
        return abs(args[0])
    return float(RULES[name].np_impl(np.float64(args[0]), *args[1:]))


@SETTINGS
@given(scalar_trees(depth=3), st.lists(st.floats(0.1, 3), min_size=2, max_size=2))
def test_text_reads_back_to_the_same_value(expr, xs):
    assume(not expr.has(sp.zoo, sp.nan, sp.oo, -sp.oo, sp.I))
    env = {"x": xs[0], "y": xs[1], "E": math.e}
    with np.errstate(all="ignore"):
        reference = _walk(expr, env)
    assume(math.isfinite(reference) and abs(reference) < 1e8)
    try:
        value = _read_text(text(expr), env)
    except (ZeroDivisionError, OverflowError, ValueError):
        assume(False)
    assume(isinstance(value, float) and math.isfinite(value))
    assert _close(value, reference), f"{expr} printed as {text(expr)}"


def test_latex_keeps_grouping():
    assert latex((X + Y) ** sp.Rational(-1, 2)) == r"\frac{1}{\sqrt{x + y}}"
    assert latex(RULES["sigmoid"].cls(X / 2 - 1)) == r"\sigma(\frac{x}{2} - 1)"
    assert latex(-(X + Y) * 2) == r"- 2 x - 2 y"
    quotient = X ** sp.Rational(-3, 2) / (X + Y)
    assert latex(quotient) == r"\frac{1}{x^{\frac{3}{2}} \left(x + y\right)}"
    a = sp.MatrixSymbol("a", 3, 3)
    b = sp.MatrixSymbol("b", 3, 3)
    assert latex(sp.HadamardPower(sp.MatAdd(a, b), -1)) == r"(a + b)^{-1}"
    assert latex(sp.Transpose(sp.MatMul(a, b))) == r"(a \, b)^{\top}"


# ---------------------------------------------------------------------------
# matrix forms: printed NumPy against a node-by-node evaluation

N = 3
A = sp.MatrixSymbol("A", N, N)
B = sp.MatrixSymbol("B", N, N)
S = sp.Symbol("s", real=True)


@st.composite
def matrix_trees(draw, depth: int = 3):
    if depth == 0 or draw(st.integers(0, 3)) == 0:
        return draw(st.sampled_from([A, B]))
    kind = draw(
        st.sampled_from(
            ["add", "sub", "had", "div", "matmul", "T", "scale", "pow", "map", "softmax", "sum"]
        )
    )
    a = draw(matrix_trees(depth - 1))
    if kind in ("add", "sub", "had", "div", "matmul"):
        b = draw(matrix_trees(depth - 1))
        return {
            "add": lambda: sp.MatAdd(a, b),
            "sub": lambda: sp.MatAdd(a, sp.MatMul(-1, b)),
            "had": lambda: sp.HadamardProduct(a, b),
            "div": lambda: sp.HadamardProduct(a, sp.HadamardPower(b, -1)),
            "matmul": lambda: sp.MatMul(a, b),
        }[kind]()
    if kind == "T":
        return sp.Transpose(a)
    if kind == "scale":
        c = draw(st.sampled_from([sp.Integer(-1), sp.Rational(1, 3), sp.Rational(-3, 2), S, -S]))
        return sp.MatMul(c, a)
    if kind == "pow":
        return sp.HadamardPower(a, draw(st.sampled_from(EXPONENTS)))
    if kind == "softmax":
        return Softmax(a, draw(st.integers(0, 1)))
    if kind == "sum":
        axis = draw(st.integers(0, 1))
        return Broadcast(SumAxis(a, axis), N, N)
    name = draw(st.sampled_from(sorted(RULES)))
    z = sp.Dummy("z")
    return Map(sp.Lambda(z, _apply(name, z, [draw(st.sampled_from(PARAMS[:3]))])), a)


def _mwalk(e, env):
    """Node-by-node NumPy evaluation of a matrix form, independent of the printer."""
    if isinstance(e, sp.MatrixSymbol):
        return env[e.name]
    if isinstance(e, sp.Symbol):
        return env[e.name]
    if isinstance(e, sp.Number):
        return float(e)
    if isinstance(e, sp.MatAdd):
        return sum(_mwalk(a, env) for a in e.args)
    if isinstance(e, sp.HadamardProduct):
        return math.prod(_mwalk(a, env) for a in e.args)
    if isinstance(e, sp.HadamardPower):
        return _mwalk(e.base, env) ** float(e.exp)
    if isinstance(e, sp.MatMul):
        coeff, mats = e.as_coeff_matrices()
        out = _mwalk(mats[0], env)
        for m in mats[1:]:
            out = out @ _mwalk(m, env)
        return _mwalk(coeff, env) * out
    if isinstance(e, sp.Mul):
        return math.prod(_mwalk(a, env) for a in e.args)
    if isinstance(e, sp.Transpose):
        return _mwalk(e.arg, env).T
    if isinstance(e, Map):
        rule = rule_of(e.func_class)
        return rule.np_impl(_mwalk(e.arg, env), *[float(p) for p in e.params])
    if isinstance(e, Softmax):
        return np_softmax(_mwalk(e.arg, env), axis=e.axis)
    if isinstance(e, Broadcast):
        return np.broadcast_to(_mwalk(e.arg, env), (N, N))
    if isinstance(e, SumAxis):
        return _mwalk(e.arg, env).sum(axis=e.axis, keepdims=True)
    if isinstance(e, SumAll):
        return _mwalk(e.arg, env).sum()
    raise AssertionError(type(e))


@SETTINGS
@given(matrix_trees(), st.integers(0, 2**32 - 1))
def test_printed_matrix_forms_evaluate_to_the_tree(expr, seed):
    rng = np.random.default_rng(seed)
    env = {"A": rng.uniform(0.2, 2, (N, N)), "B": rng.uniform(-2, 2, (N, N)), "s": 0.7}
    with np.errstate(all="ignore"):
        reference = _mwalk(expr, env)
    assume(np.all(np.isfinite(reference)) and np.abs(reference).max() < 1e8)
    code = NumpyFormPrinter().doprint(expr)
    value = np.broadcast_to(_run(code, env), (N, N))
    assert np.allclose(value, reference, rtol=1e-7, atol=1e-9), f"{expr} printed as {code}"


@SETTINGS
@given(matrix_trees(depth=2))
def test_printed_sum_of_everything(expr):
    env = {"A": np.linspace(0.3, 1.5, N * N).reshape(N, N), "B": np.eye(N) - 0.4, "s": 0.7}
    with np.errstate(all="ignore"):
        reference = _mwalk(SumAll(expr), env)
    assume(np.isfinite(reference) and abs(reference) < 1e8)
    value = _run(NumpyFormPrinter().doprint(SumAll(expr)), env)
    assert np.isclose(value, reference, rtol=1e-7, atol=1e-9)


# ---------------------------------------------------------------------------
# text of matrix forms: read back by a small precedence parser, evaluated
#
# expr: terms joined by + − (lowest); hadamard: ⊙ ⊘ left to right; product:
# juxtaposition (a matrix product or a scalar factor), then "/ scalar";
# postfix ᵀ and powers; atoms: names, numbers, calls, parentheses.

_TOKEN = re.compile(
    r"\s*(?:(?P<num>\d+)|(?P<name>[A-Za-zσ_][A-Za-z0-9_']*)|(?P<sup>[⁰¹²³⁴⁵⁶⁷⁸⁹⁻]+)|(?P<op>\^|ᵀ|⊙|⊘|−|[-+/(),=]))"
)
_SUP = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻", "0123456789-")
_ONES = "ones"


def _tokens(s: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    while pos < len(s.rstrip()):
        m = _TOKEN.match(s, pos)
        assert m and m.end() > pos, f"cannot read {s[pos:]!r} in {s!r}"
        kind = m.lastgroup
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


class _TextReader:
    def __init__(self, s: str, env: dict):
        self.toks, self.i, self.env = _tokens(s), 0, env

    def peek(self):
        return self.toks[self.i] if self.i < len(self.toks) else (None, None)

    def take(self, value=None):
        tok = self.peek()
        assert value is None or tok[1] == value, (tok, value, self.toks)
        self.i += 1
        return tok

    def read(self):
        value = self.expr()
        assert self.i == len(self.toks), self.toks[self.i :]
        return value

    def expr(self):
        value = self.hadamard()
        while self.peek()[1] in ("+", "−", "-"):
            op = self.take()[1]
            rhs = self.hadamard()
            value = value + rhs if op == "+" else value - rhs
        return value

    def hadamard(self):
        value = self.product()
        while self.peek()[1] in ("⊙", "⊘"):
            op = self.take()[1]
            rhs = self.product()
            value = value * rhs if op == "⊙" else value / rhs
        return value

    def product(self):
        value = self.postfix()
        while self.peek()[0] in ("num", "name") or self.peek()[1] == "(":
            rhs = self.postfix()
            if isinstance(value, str):  # 1ᵀ x: column sums
                value = rhs.sum(axis=0, keepdims=True)
            elif isinstance(rhs, float) and rhs == 1.0 and np.ndim(value) == 2:
                value = value.sum(axis=1, keepdims=True)  # x 1: row sums
            elif np.ndim(value) == 2 and np.ndim(rhs) == 2:
                value = value @ rhs
            else:
                value = value * rhs
        while self.peek()[1] == "/":
            self.take()
            value = value / self.postfix()
        return value

    def postfix(self):
        if self.peek()[1] == "-":
            self.take()
            return -self.postfix()
        value = self.atom()
        while True:
            kind, tok = self.peek()
            if tok == "ᵀ":
                self.take()
                value = _ONES if isinstance(value, float) and value == 1.0 else value.T
            elif kind == "sup":
                self.take()
                value = value ** float(tok.translate(_SUP))
            elif tok == "^":
                self.take()
                value = value ** self.atom()
            else:
                return value

    def atom(self):
        kind, tok = self.take()
        if kind == "num":
            return float(tok)
        if tok == "(":
            value = self.expr()
            self.take(")")
            return value
        assert kind == "name", (kind, tok)
        if tok in self.env:  # "s (A + B)" is a product, not a call
            return self.env[tok]
        self.take("(")
        args, kw = [self.expr()], {}
        while self.peek()[1] == ",":
            self.take()
            if self.toks[self.i + 1][1] == "=":
                key = self.take()[1]
                self.take("=")
                kw[key] = int(self.expr())
            else:
                args.append(self.expr())
        self.take(")")
        if tok == "softmax":
            return np_softmax(args[0], axis=kw.get("axis", 1))
        if tok == "sum":
            return args[0].sum()
        name = {"σ": "sigmoid"}.get(tok, tok).replace("'", "_prime")
        return RULES[name].np_impl(args[0], *args[1:])


@SETTINGS
@given(matrix_trees(), st.integers(0, 2**32 - 1))
def test_text_of_matrix_forms_reads_back_to_the_same_values(expr, seed):
    # the text shows a stretched row as the row (broadcasting is implicit in
    # the notation, as in textbooks); under a matrix product, a softmax or a
    # sum that cannot be read back, so those trees are left to the NumPy test
    assume(
        not any(
            isinstance(m, (sp.MatMul, Softmax, SumAxis, SumAll))
            and any(isinstance(a, sp.MatrixExpr) and a.has(Broadcast) for a in m.args)
            for m in sp.preorder_traversal(expr)
        )
    )
    rng = np.random.default_rng(seed)
    env = {"A": rng.uniform(0.2, 2, (N, N)), "B": rng.uniform(-2, 2, (N, N)), "s": 0.7}
    with np.errstate(all="ignore"):
        reference = _mwalk(expr, env)
        assume(np.all(np.isfinite(reference)) and np.abs(reference).max() < 1e8)
        value = np.broadcast_to(_TextReader(text(expr), env).read(), (N, N))
    assert np.allclose(value, reference, rtol=1e-7, atol=1e-9), f"{expr} printed as {text(expr)}"


def test_powers_of_powers_are_grouped():
    form = sp.HadamardPower(sp.HadamardPower(A, -2), 2)
    assert text(form) == "(A⁻²)²"
    assert latex(form) == "(A^{-2})^{2}"
    assert latex(sp.HadamardPower(sp.Transpose(A), 2)) == r"(A^{\top})^{2}"


def test_a_quotient_by_a_product_is_grouped():
    c = sp.MatrixSymbol("C", N, N)
    form = sp.HadamardProduct(A, sp.HadamardPower(B, -1), sp.HadamardPower(c, -1))
    assert text(form) == "A ⊘ (B ⊙ C)"
    assert latex(form) == r"A \oslash (B \odot C)"
