"""Reading one expression of the spec language: ``ast`` nodes → typed, shape-checked IR.

:class:`ExpressionReader` walks an expression parsed by :mod:`ast` against a
whitelist (names, numbers, ``@ * / + - **``, ``.T`` and calls of known
functions) and builds :mod:`derive.ir` nodes, checking every shape
(:mod:`derive.shapes`) and the limits of :mod:`derive.limits` on the way.
The spec parser (:mod:`derive.spec`) adds declarations and equations on top
of it; the claim reader of ``derive verify`` reuses it with its own extra
syntax.  Every problem raises :class:`~derive.errors.SpecError` at
``file:line:col``.

Subclasses fill :attr:`quantities`, :attr:`dims`, :attr:`consts`,
:attr:`const_symbols` and :attr:`funcs` (what names mean), set
:attr:`code`, :attr:`base_col` and :attr:`line_no` (where the text being
read sits, see :class:`~derive.source.SourceReader`), then call
:meth:`parse_ast` and :meth:`expr`.
"""

from __future__ import annotations

import ast

import sympy as sp

from . import ir
from .limits import (
    MAX_DENOMINATOR,
    MAX_DEPTH,
    MAX_EXPONENT,
    MAX_EXPONENT_DENOMINATOR,
    MAX_NUMBER,
)
from .rules import RULES, activations
from .shapes import ShapeError, broadcast_shape, fmt_shape, matmul_shape, reduced_shape
from .source import ODD_LINE_BREAKS, SourceReader, char_col

REDUCTIONS = ("sum", "mean")
_OPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}
_FOLD = {
    "+": lambda x, y: x + y,
    "-": lambda x, y: x - y,
    "*": lambda x, y: x * y,
    "/": lambda x, y: x / y,
}
__all__ = ["ExpressionReader", "REDUCTIONS", "fmt_shape", "char_col", "ODD_LINE_BREAKS"]


class ExpressionReader(SourceReader):
    """The expression half of the spec language, reusable by other readers."""

    def __init__(self, text: str = "", file: str = "<spec>", name: str = "spec"):
        super().__init__(text, file, name)
        self.quantities: dict[str, ir.Quantity] = {}
        self.dims: dict[str, sp.Symbol] = {}
        self.consts: dict[str, float | None] = {}
        self.const_symbols: dict[str, sp.Symbol] = {}
        self.funcs: list[str] = []
        self._depth = 0

    # -- numbers -----------------------------------------------------------
    def number(self, node: ast.AST, value: sp.Expr, what: str = "number") -> sp.Expr:
        """``value`` if it is a finite real number within the limits (or not a number)."""
        if not value.is_number:
            return value
        if value.has(sp.zoo, sp.nan, sp.oo, -sp.oo):
            self.node_error(node, f"this {what} is not finite (division by zero?)")
        if value.is_extended_real is False:
            self.node_error(node, f"this {what} is not a real number: {value}")
        if value.is_Rational:
            too_big = abs(value.p) > MAX_NUMBER * value.q
            too_fine = value.q > MAX_DENOMINATOR
        else:
            magnitude = abs(sp.N(value, 20))
            too_big = not magnitude.is_finite or magnitude > MAX_NUMBER
            too_fine = magnitude != 0 and magnitude < sp.Rational(1, MAX_DENOMINATOR)
            if not magnitude.is_real:
                self.node_error(node, f"this {what} is not a real number: {value}")
        if too_big:
            self.node_error(node, f"this {what} exceeds the limit: magnitude at most 1e12")
        if too_fine:
            self.node_error(node, f"this {what} is too small or too fine: at least 1e-18 or 0")
        return value

    def exponent(self, node: ast.AST, value: sp.Expr) -> sp.Expr:
        """A constant exponent within :data:`MAX_EXPONENT` (denominator within its limit)."""
        if not value.is_number:
            self.node_error(node, "expected a constant number as the exponent")
        value = self.number(node, value, "exponent")
        if abs(value) > MAX_EXPONENT or (value.is_Rational and value.q > MAX_EXPONENT_DENOMINATOR):
            self.node_error(
                node,
                f"exponent {value} exceeds the limit: at most {MAX_EXPONENT} in magnitude, "
                f"a fraction with denominator at most {MAX_EXPONENT_DENOMINATOR}",
            )
        return value

    # -- expressions ---------------------------------------------------------
    def expr(self, node: ast.expr) -> ir.Node:
        """The IR of an ast expression (dispatch on the node type)."""
        method = getattr(self, "expr_" + type(node).__name__, None)
        if method is None:
            self.node_error(
                node,
                f"unsupported syntax ({type(node).__name__.lower()}): "
                "expected names, numbers, @ * / + - **, .T or a function call",
            )
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:  # also guards readers that skip check_tree
                self.node_error(node, f"expression nested too deeply: at most {MAX_DEPTH} levels")
            return method(node)
        finally:
            self._depth -= 1

    def expr_Constant(self, node: ast.Constant) -> ir.Node:
        """A number literal (finite; booleans and strings refused)."""
        v = node.value
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            self.node_error(node, f"expected a number, got {v!r}")
        if type(v) is float and not abs(v) < float("inf"):
            self.node_error(node, "this number is not finite; numbers are at most 1e12")
        if abs(v) > MAX_NUMBER:
            self.node_error(node, "this number exceeds the limit: magnitude at most 1e12")
        if type(v) is int or v == int(v):
            value = sp.Integer(int(v))
        else:
            value = sp.nsimplify(v, rational=True)
        return ir.Scalar((), self.pos(node), self.number(node, value))

    def expr_Name(self, node: ast.Name) -> ir.Node:
        """A declared quantity, const or dim, by name."""
        name = node.id
        if name in self.quantities:
            return ir.Ref(self.quantities[name].shape, self.pos(node), name)
        if name in self.consts:
            return ir.Scalar((), self.pos(node), self.const_symbols[name])
        if name in self.dims:
            return ir.Scalar((), self.pos(node), self.dims[name])
        if name in self.funcs or name in RULES or name in REDUCTIONS or name == "softmax":
            self.node_error(node, f"{name!r} is a function; call it as {name}(...)")
        known = ", ".join(sorted([*self.quantities, *self.consts, *self.dims])) or "none"
        self.node_error(node, f"unknown name {name!r}; defined so far: {known}")

    def expr_UnaryOp(self, node: ast.UnaryOp) -> ir.Node:
        """``-x`` or ``+x``."""
        if not isinstance(node.op, (ast.UAdd, ast.USub)):
            self.node_error(node, "unsupported unary operator: expected - or +")
        operand = self.expr(node.operand)
        if isinstance(node.op, ast.UAdd):
            return operand
        if isinstance(operand, ir.Scalar):
            return ir.Scalar((), self.pos(node), -operand.value)
        return ir.Neg(operand.shape, self.pos(node), operand)

    def expr_BinOp(self, node: ast.BinOp) -> ir.Node:
        """An arithmetic operator or ``@``, with NumPy broadcasting of the shapes."""
        if isinstance(node.op, ast.Pow):
            return self.power(node)
        a = self.expr(node.left)
        b = self.expr(node.right)
        if isinstance(node.op, ast.MatMult):
            return ir.MatMul(self.matmul_shape(node, a, b), self.pos(node), a, b)
        op = _OPS.get(type(node.op))
        if op is None:
            self.node_error(
                node, f"unsupported operator {type(node.op).__name__}: expected @ * / + - or **"
            )
        if op == "/" and isinstance(b, ir.Scalar) and b.value == 0:
            self.node_error(node.right, "division by zero")
        if isinstance(a, ir.Scalar) and isinstance(b, ir.Scalar):
            value = self.number(node, _FOLD[op](a.value, b.value))
            return ir.Scalar((), self.pos(node), value)
        return ir.Binary(self.broadcast(node, a.shape, b.shape), self.pos(node), op, a, b)

    def power(self, node: ast.BinOp) -> ir.Node:
        """``a ** e``: ``e`` a constant number within the limits, powers of powers too."""
        a = self.expr(node.left)
        exponent = self.expr(node.right)
        if not isinstance(exponent, ir.Scalar):
            self.node_error(node.right, "expected a constant number as the exponent")
        e = self.exponent(node.right, exponent.value)
        if isinstance(a, ir.Scalar):
            if a.value == 0 and e.is_negative:
                self.node_error(node, "division by zero (0 to a negative power)")
            return ir.Scalar((), self.pos(node), self.number(node, a.value**e))
        # (x ** a) ** b is x ** (a b) once lowered: the limit holds for the product
        inner, total = a, e
        while isinstance(inner, (ir.Power, ir.Neg, ir.Transpose)):
            if isinstance(inner, ir.Power):
                total *= inner.exponent
            inner = inner.children()[0]
        self.exponent(node, total)
        return ir.Power(a.shape, self.pos(node), a, e)

    def expr_Attribute(self, node: ast.Attribute) -> ir.Node:
        """``x.T``, the only attribute: a transpose."""
        if node.attr != "T":
            self.node_error(node, f"unsupported attribute .{node.attr}: only .T (transpose)")
        a = self.expr(node.value)
        if not a.shape:  # a scalar's transpose is itself
            return a
        return ir.Transpose(tuple(reversed(a.shape)), self.pos(node), a)

    def expr_Call(self, node: ast.Call) -> ir.Node:
        """A reduction, softmax, a rule's function or a declared generic function."""
        if not isinstance(node.func, ast.Name):
            self.node_error(node, "expected a function name before '('")
        name = node.func.id
        if name in REDUCTIONS:
            return self.reduction(node, name)
        if name == "softmax":
            arg, kw = self.call_args(node, name, 1, {"axis": -1})
            if not arg[0].shape:
                self.node_error(node, "softmax needs an array, got a scalar")
            axis = self.axis(node, kw["axis"], arg[0].shape)
            return ir.Softmax(arg[0].shape, self.pos(node), arg[0], axis)
        if name in self.funcs:
            arg, _ = self.call_args(node, name, 1, {})
            return ir.Call(arg[0].shape, self.pos(node), name, arg[0], (), True)
        if name in RULES and not RULES[name].internal:
            return self.rule_call(node, name)
        known = ", ".join([*activations(), "softmax", *REDUCTIONS, *self.funcs])
        self.node_error(node.func, f"unknown function {name!r}; known: {known}")

    def rule_call(self, node: ast.Call, name: str) -> ir.Node:
        """A registered function: its array argument and its scalar params."""
        rule = RULES[name]
        args, kw = self.call_args(node, name, 1, dict(rule.params), positional_params=True)
        params = []
        for pname, _ in rule.params:
            value = kw[pname]
            if isinstance(value, ast.expr):
                scalar = self.expr(value)
                if not isinstance(scalar, ir.Scalar):
                    self.node_error(value, f"{name}'s {pname} must be a number or a const")
                value = scalar.value
            params.append(sp.nsimplify(value) if isinstance(value, float) else value)
        arg = args[0]
        if isinstance(arg, ir.Scalar) and arg.value.is_number and all(p.is_number for p in params):
            # a function of a constant: refuse what has no finite real value (log(-1))
            value = sp.N(rule.value(arg.value, *params), 20)
            if not (value.is_real and value.is_finite and abs(value) <= MAX_NUMBER):
                self.node_error(node, f"{name}({arg.value}) has no finite real value")
        return ir.Call(arg.shape, self.pos(node), name, arg, tuple(params))

    def call_args(self, node, name, n_args, defaults, positional_params=False):
        """The array arguments (as IR) and the keyword values (ast, or the defaults)."""
        extra = list(defaults) if positional_params else []
        if not n_args <= len(node.args) <= n_args + len(extra):
            self.node_error(
                node,
                f"{name} takes {n_args} array argument"
                + (f" and optional {', '.join(extra)}" if extra else ""),
            )
        args = [self.expr(a) for a in node.args[:n_args]]
        kw: dict = dict(defaults)
        for pname, value in zip(extra, node.args[n_args:], strict=False):
            kw[pname] = value
        for k in node.keywords:
            if k.arg not in defaults:
                self.node_error(
                    k.value,
                    f"{name} has no argument {k.arg!r}"
                    + (f"; it takes {', '.join(defaults)}" if defaults else ""),
                )
            kw[k.arg] = k.value
        return args, kw

    def int_literal(self, node: ast.expr, what: str) -> int:
        """The value of an integer literal (optionally negated) given for ``what``."""
        sign = 1
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            sign, node = -1, node.operand
        if isinstance(node, ast.Constant) and type(node.value) is int:
            return sign * node.value
        self.node_error(node, f"expected an integer for {what}")

    def axis(self, node, value, shape) -> int:
        """An axis argument, checked against ``shape`` and made non-negative."""
        axis = value if isinstance(value, int) else self.int_literal(value, "axis")
        if not -len(shape) <= axis < len(shape):
            self.node_error(node, f"axis {axis} is out of range for shape {fmt_shape(shape)}")
        return axis % len(shape)

    def reduction(self, node: ast.Call, name: str) -> ir.Node:
        """``sum``/``mean`` with optional ``axis`` and ``keepdims``."""
        args, kw = self.call_args(node, name, 1, {"axis": None, "keepdims": False})
        arg = args[0]
        axis = kw["axis"]
        if isinstance(axis, ast.Constant) and axis.value is None:
            axis = None
        if axis is not None:
            axis = self.axis(node, axis, arg.shape)
        keepdims = kw["keepdims"]
        if isinstance(keepdims, ast.AST):
            if not (isinstance(keepdims, ast.Constant) and isinstance(keepdims.value, bool)):
                self.node_error(keepdims, "keepdims must be True or False")
            keepdims = keepdims.value
        shape = reduced_shape(arg.shape, axis, keepdims)
        return ir.Reduce(shape, self.pos(node), name, arg, axis, keepdims)

    # -- shapes --------------------------------------------------------------
    def matmul_shape(self, node, a: ir.Node, b: ir.Node) -> ir.Shape:
        """The shape of ``a @ b``, or a spec error at ``node``."""
        try:
            return matmul_shape(a.shape, b.shape)
        except ShapeError as exc:
            self.node_error(node, str(exc))

    def broadcast(self, node, sa: ir.Shape, sb: ir.Shape) -> ir.Shape:
        """The broadcast of shapes ``sa`` and ``sb``, or a spec error at ``node``."""
        try:
            return broadcast_shape(sa, sb)
        except ShapeError as exc:
            self.node_error(node, str(exc))
