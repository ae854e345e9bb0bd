"""``derive verify --identity``: a scalar derivative identity in one variable, decided
symbolically on both signs of ``z`` (and a counterexample when it fails)."""

from __future__ import annotations

import ast
import re
from typing import cast

import sympy as sp

from ..errors import SpecError
from ..notation import MAX_EXPONENT, FormulaParser, split_equals
from ..rules import RULES
from .result import Result

WHERE = "<identity>"


def verify_identity(text: str) -> Result:
    """``sigmoid'(z) = sigmoid(z)*(1 - sigmoid(z))``: a scalar derivative identity."""
    parts = split_equals(text)
    if len(parts) != 2:
        raise SpecError("an identity is LEFT = RIGHT", WHERE, 1, 1)
    codes = [FormulaParser(p, {"z", "x"}, set(), (WHERE, 1)).parse() for p in parts]
    sides = [_scalar(_parse(code), code) for code in codes]
    diff = _values(sides[0] - sides[1])
    normalized = re.sub(r"_d_(\w+)\(", r"\1'(", " = ".join(codes))
    z = sp.Symbol("z", real=True)
    if _differs_at_a_point(diff, z):  # a false identity is answered without simplify,
        return _differs(text, normalized, diff, z)  # which can run unbounded on it
    for sign in (sp.Symbol("z", positive=True), sp.Symbol("z", negative=True)):
        if sp.simplify(diff.xreplace({z: sign})) != 0:
            return _differs(text, normalized, diff, z)
    return Result(text, normalized, "correct", "equal for every z (symbolic)")


def _parse(code: str) -> ast.expr:
    try:
        return ast.parse(code, mode="eval").body
    except SyntaxError as exc:
        raise SpecError(f"cannot read the identity: {exc.msg}", WHERE, 1, 1) from None
    except (RecursionError, MemoryError, UnicodeError, ValueError):
        raise SpecError("the identity is nested too deeply", WHERE, 1, 1) from None


def _differs_at_a_point(diff, z) -> bool:
    """Whether the two sides clearly differ at one of the sample points (evalf, adaptive)."""
    for value in (0.5, -0.5, 1.5, -2.0, 0.1, 3.0):
        try:
            v = complex(sp.N(diff.subs(z, value)))
        except (TypeError, ValueError, ZeroDivisionError, OverflowError):
            continue
        if v == v and abs(v) > 1e-9:  # (NaN compares unequal: not a witness)
            return True
    return False


def _differs(text, normalized, diff, z) -> Result:
    for value in (0.5, -0.5, 1.5, -2.0, 0.1, 3.0):
        v = complex(sp.N(diff.subs(z, value)))
        if abs(v) > 1e-12:
            example = {"z": value, "difference": v.real}
            return Result(text, normalized, "incorrect", "the two sides differ", None, example)
    return Result(text, normalized, "incorrect", "the two sides differ symbolically")


def _scalar(node: ast.AST, code: str) -> sp.Expr:
    z = sp.Symbol("z", real=True)
    if isinstance(node, ast.Name) and node.id in ("z", "x"):
        return z
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        if abs(cast(float, node.value)) > 1e12:
            raise SpecError(f"the number {node.value!r} is too large", WHERE, 1, 1)
        return sp.nsimplify(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        inner = _scalar(node.operand, code)
        return -inner if isinstance(node.op, ast.USub) else inner
    if isinstance(node, ast.BinOp):
        return _binary(node, code)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        if node.func.id == "_jx" and len(node.args) == 2:  # juxtaposition
            return _scalar(node.args[0], code) * _scalar(node.args[1], code)
        if len(node.args) == 1 and not node.keywords:
            return _call(node.func.id, _scalar(node.args[0], code), code)
    raise SpecError(f"cannot read {code!r} as a scalar function of z", WHERE, 1, 1)


def _binary(node: ast.BinOp, code: str) -> sp.Expr:
    a, b = _scalar(node.left, code), _scalar(node.right, code)
    if isinstance(node.op, ast.Pow):
        if not b.is_number or abs(b) > MAX_EXPONENT:
            raise SpecError(f"expected a number up to {MAX_EXPONENT} as an exponent", WHERE, 1, 1)
        if a.is_number and abs(a) > 1 and abs(b) * sp.log(abs(a), 10) > 12:
            raise SpecError("the number is too large", WHERE, 1, 1)
        return a**b
    ops = {
        ast.Add: lambda: a + b,
        ast.Sub: lambda: a - b,
        ast.Mult: lambda: a * b,
        ast.MatMult: lambda: a * b,
        ast.Div: lambda: a / b if b != 0 else sp.zoo,
    }
    if type(node.op) in ops:
        return ops[type(node.op)]()
    raise SpecError(f"cannot read {code!r} as a scalar function of z", WHERE, 1, 1)


def _call(name: str, arg: sp.Expr, code: str) -> sp.Expr:
    prime = name.startswith("_d_")
    base = name[3:] if prime else name
    if base in RULES and not RULES[base].internal:
        rule = RULES[base]
        params = [sp.nsimplify(d) for _, d in rule.params]
        if not prime:
            return rule.cls(arg, *params)
        w = sp.Dummy("w")  # the derivative of the explicit value, at the argument
        return sp.diff(rule.value(w, *params), w).subs(w, arg)
    raise SpecError(f"cannot read {code!r} as a scalar function of z", WHERE, 1, 1)


def _values(expr: sp.Expr) -> sp.Expr:
    """Registered functions replaced by their explicit values."""
    for rule in RULES.values():
        if rule.name in ("exp", "log", "tanh"):
            continue
        expr = expr.replace(
            lambda e, c=rule.cls: isinstance(e, sp.Function) and e.func is c,
            lambda e, r=rule: r.value(*e.args),
        )
    return expr
