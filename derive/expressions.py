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
from .convolution import CONV_FUNCTIONS, ConvReader
from .layout import LAYOUT_FUNCTIONS, LayoutReader
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


class ExpressionReader(ConvReader, LayoutReader, SourceReader):
    """The expression half of the spec language, reusable by other readers."""

    def __init__(self, text: str = "", file: str = "<spec>", name: str = "spec"):
        super().__init__(text, file, name)
        self.quantities: dict[str, ir.Quantity] = {}
        self.dims: dict[str, sp.Symbol] = {}
        self.consts: dict[str, float | None] = {}
        self.const_symbols: dict[str, sp.Symbol] = {}
        self.funcs: list[str] = []
        self._depth = 0
        self.hidden: list[ir.Equation] = []  # argmax equations max(x, axis) reads

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
            q = self.quantities[name]
            if q.classes is not None and q.kind == "input":
                self.node_error(
                    node,
                    f"{name!r} holds indices (integers) into a table of {q.classes} rows, "
                    f"not values; gather with it: C[{name}]",
                )
            if q.classes is not None:
                self.node_error(
                    node,
                    f"{name!r} holds class labels (integers), not values; use "
                    f"onehot({name}, n) or x[range(B), {name}]",
                )
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
        """A call of a registered, generic or NumPy-style function (by its name)."""
        if isinstance(node.func, ast.Attribute):
            return self.method_call(node)
        if not isinstance(node.func, ast.Name):
            self.node_error(node, "expected a function name before '('")
        name = node.func.id
        if name in LAYOUT_FUNCTIONS:
            return self.layout_call(node, name)
        if name in CONV_FUNCTIONS:
            return self.conv_call(node, name)
        if name in REDUCTIONS:
            return self.reduction(node, name)
        if name == "onehot":
            return self.onehot_call(node)
        if name in ("maximum", "minimum"):
            return self.extremum(node, name)
        if name in ("max", "min"):
            return self.max_along(node, name)
        if name == "logsumexp":
            return self.logsumexp(node)
        if name == "log_softmax":
            arg, kw = self.call_args(node, name, 1, {"axis": -1})
            if not arg[0].shape:
                self.node_error(node, "log_softmax needs an array, got a scalar")
            axis = self.axis(node, kw["axis"], arg[0].shape)
            p = ir.Softmax(arg[0].shape, self.pos(node), arg[0], axis)
            return ir.Call(p.shape, self.pos(node), "log", p)
        if name in ("var", "std"):
            return self.variance(node, name)
        if name == "where":
            return self.where(node)
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
        numpy = ["onehot", "maximum", "minimum", "where", "var", "std", "log_softmax"]
        numpy += ["max", "min", "logsumexp"]
        known = ", ".join([*activations(), "softmax", *REDUCTIONS, *numpy, *self.funcs])
        self.node_error(node.func, f"unknown function {name!r}; known: {known}")

    def extremum(self, node: ast.Call, name: str) -> ir.Node:
        """``maximum``/``minimum`` as ``base + relu(other − base)``/``base − relu(base − other)``.

        An identity, so the derivative is relu's: where ``a`` and ``b`` tie, the
        gradient goes to ``base`` (the number if there is one, else ``b``).
        """
        if len(node.args) != 2 or node.keywords:
            self.node_error(node, f"{name} takes two arguments: {name}(a, b)")
        a, b = (self.expr(x) for x in node.args)
        if isinstance(a, ir.Scalar) and isinstance(b, ir.Scalar):
            self.node_error(node, f"{name} of two numbers: write the number")
        base, other = (a, b) if isinstance(a, ir.Scalar) else (b, a)
        pos = self.pos(node)
        shape = self.broadcast(node, a.shape, b.shape)

        def diff(x: ir.Node, y: ir.Node) -> ir.Node:
            if isinstance(y, ir.Scalar) and y.value == 0:
                return x
            return ir.Binary(self.broadcast(node, x.shape, y.shape), pos, "-", x, y)

        gap = diff(other, base) if name == "maximum" else diff(base, other)
        if name == "minimum" and isinstance(base, ir.Scalar):
            gap = ir.Binary(shape, pos, "-", base, other)
        relu = ir.Call(gap.shape, pos, "relu", gap)
        if isinstance(base, ir.Scalar) and base.value == 0:
            return relu if name == "maximum" else ir.Neg(shape, pos, relu)
        return ir.Binary(shape, pos, "+" if name == "maximum" else "-", base, relu)

    def max_along(self, node: ast.Call, name: str) -> ir.Node:
        """``max(x, axis=a, keepdims=k)`` of a 2-D ``x``: ``x[range(B), argmax(x, axis=1)]``.

        The positions are a hidden equation, an integer quantity (not
        differentiated), so the gradient reaches one maximal entry of each row
        (the first, as ``np.argmax`` picks it), as ``torch.max(x, dim)`` sends it.
        """
        args, kw = self.call_args(node, name, 1, {"axis": None, "keepdims": False})
        x, pos = args[0], self.pos(node)
        if len(x.shape) != 2 or kw["axis"] is None:
            self.node_error(
                node, f"{name} needs a 2-D array and an axis: {name}(x, axis=1) or axis=0"
            )
        axis = self.axis(node, kw["axis"], x.shape)
        keepdims = self.reduction(node, "sum", x, kw).keepdims  # checks keepdims
        n = 1
        while f"_arg{name}{n}" in self.quantities:
            n += 1
        hidden = f"_arg{name}{n}"  # "_" starts no spec name: no collision
        kept = x.shape[1 - axis]
        self.quantities[hidden] = ir.Quantity(
            hidden, "intermediate", (kept,), pos, classes=x.shape[axis]
        )
        self.hidden.append(ir.Equation(hidden, ir.Argmax((kept,), pos, x, axis, name), pos))
        ref = ir.Ref((kept,), pos, hidden)
        rows = x if axis == 1 else ir.Transpose(tuple(reversed(x.shape)), pos, x)
        picked: ir.Node = ir.Pick((kept,), pos, rows, ref)
        if keepdims:
            picked = ir.Column((kept, sp.Integer(1)), pos, picked)
            if axis == 0:
                picked = ir.Transpose((sp.Integer(1), kept), pos, picked)
        return picked

    def logsumexp(self, node: ast.Call) -> ir.Node:
        """``logsumexp(x, axis, keepdims)`` as ``mean(x − log_softmax(x), axis)``: an identity.

        Every entry of ``x − log_softmax(x)`` along the axis is the same
        ``log Σ exp(x)``; the generated code computes it with the stable
        ``log_softmax`` kernel, so it is finite at any scale.
        """
        args, kw = self.call_args(node, "logsumexp", 1, {"axis": None, "keepdims": False})
        x, pos = args[0], self.pos(node)
        axis = kw["axis"]
        if isinstance(axis, ast.Constant) and axis.value is None:
            axis = None
        if not x.shape:
            self.node_error(node, "logsumexp needs an array, got a scalar")
        if axis is None and len(x.shape) != 1:
            self.node_error(node, "logsumexp of a 2-D array needs an axis: logsumexp(x, axis=1)")
        ax = self.axis(node, 0 if axis is None else axis, x.shape)
        log_p = ir.Call(x.shape, pos, "log", ir.Softmax(x.shape, pos, x, ax))
        gap = ir.Binary(x.shape, pos, "-", x, log_p)
        return self.reduction(node, "mean", gap, {"axis": ax, "keepdims": kw["keepdims"]})

    def variance(self, node: ast.Call, name: str) -> ir.Node:
        """``var``/``std`` as NumPy computes them: ``sum((x − mean(x))²) / (n − ddof)``."""
        args, kw = self.call_args(node, name, 1, {"axis": None, "keepdims": False, "ddof": 0})
        x, pos = args[0], self.pos(node)
        ddof = kw["ddof"]
        ddof = ddof if isinstance(ddof, int) else self.int_literal(ddof, "ddof")
        if ddof not in (0, 1):
            self.node_error(node, "ddof must be 0 or 1")
        axis = kw["axis"]
        whole = axis is None or (isinstance(axis, ast.Constant) and axis.value is None)
        # over every axis the mean is a scalar (a kept (1, 1) block has no matrix form)
        mean = self.reduction(node, "mean", x, {"axis": axis, "keepdims": not whole})
        centred = ir.Binary(x.shape, pos, "-", x, mean)
        square = ir.Power(x.shape, pos, centred, sp.Integer(2))
        total = self.reduction(
            node, "sum", square, {"axis": kw["axis"], "keepdims": kw["keepdims"]}
        )
        axis = total.axis
        n = sp.Mul(*(x.shape if axis is None else (x.shape[axis],)))
        if (n - ddof).is_number and n - ddof <= 0:
            self.node_error(node, f"{name} with ddof={ddof} of {n} entries divides by zero")
        var = ir.Binary(total.shape, pos, "/", total, ir.Scalar((), pos, n - ddof))
        return var if name == "var" else ir.Call(var.shape, pos, "sqrt", var)

    _COMPARE = {ast.Gt: ">", ast.Lt: "<", ast.GtE: ">=", ast.LtE: "<="}

    def where(self, node: ast.Call) -> ir.Node:
        """``where(l > r, a, b)`` as ``m a + (1 − m) b`` with the 0/1 mask ``m = [l > r]``.

        Exact where ``m`` is 0 or 1 (``b`` may be ``-1e9``); the mask is not
        differentiated (its derivative is 0 away from the boundary).
        """
        if len(node.args) != 3 or node.keywords:
            self.node_error(node, "where takes three arguments: where(condition, a, b)")
        cond, *branches = node.args
        if not (
            isinstance(cond, ast.Compare)
            and len(cond.ops) == 1
            and type(cond.ops[0]) in self._COMPARE
        ):
            self.node_error(cond, "expected a comparison l > r, l < r, l >= r or l <= r")
        op = self._COMPARE[type(cond.ops[0])]
        left, right = self.expr(cond.left), self.expr(cond.comparators[0])
        a, b = (self.expr(x) for x in branches)
        pos = self.pos(node)
        if isinstance(left, ir.Scalar) and isinstance(right, ir.Scalar):
            self.node_error(cond, "the condition compares two numbers: write the branch")
        # [l > r] = step(l − r); [l >= r] = 1 − step(r − l)
        hi, lo = (left, right) if op in (">", ">=") else (right, left)
        if op in (">=", "<="):
            hi, lo = lo, hi
        gap = (
            hi
            if isinstance(lo, ir.Scalar) and lo.value == 0
            else ir.Binary(self.broadcast(cond, hi.shape, lo.shape), pos, "-", hi, lo)
        )
        step = ir.Call(gap.shape, pos, "relu_prime", gap)
        one = ir.Scalar((), pos, sp.Integer(1))
        mask = step if op in (">", "<") else ir.Binary(step.shape, pos, "-", one, step)
        rest = ir.Binary(mask.shape, pos, "-", one, mask)
        shape = self.broadcast(node, self.broadcast(node, mask.shape, a.shape), b.shape)
        parts = []
        for m, branch in ((mask, a), (rest, b)):
            if isinstance(branch, ir.Scalar) and branch.value == 0:
                continue
            parts.append(
                ir.Binary(self.broadcast(node, m.shape, branch.shape), pos, "*", m, branch)
            )
        if not parts:
            return ir.Scalar((), pos, sp.Integer(0))
        if len(parts) == 1:
            return parts[0]
        return ir.Binary(shape, pos, "+", *parts)

    # -- integer data --------------------------------------------------------
    def labels_ref(self, node: ast.expr, what: str) -> ir.Ref:
        """A ``labels`` target named by ``node``."""
        q = self.quantities.get(node.id) if isinstance(node, ast.Name) else None
        if q is None or q.classes is None:
            self.node_error(node, f"expected the name of a labels target as {what}")
        return ir.Ref(q.shape, self.pos(node), q.name)

    def onehot_call(self, node: ast.Call) -> ir.Node:
        """``onehot(y, n)``: the ``[B, n]`` one-hot matrix of the labels ``y``."""
        if len(node.args) != 2 or node.keywords:
            self.node_error(node, "onehot takes the labels and the number of classes: onehot(y, n)")
        labels = self.labels_ref(node.args[0], "onehot's first argument")
        n = self.expr(node.args[1])
        classes = self.quantities[labels.name].classes
        if not isinstance(n, ir.Scalar) or n.value != classes:
            self.node_error(
                node.args[1],
                f"{labels.name} has {classes} classes: expected onehot({labels.name}, {classes})",
            )
        return ir.OneHot((labels.shape[0], classes), self.pos(node), labels, classes)

    def expr_Subscript(self, node: ast.Subscript) -> ir.Node:
        """``x[range(B), y]`` (one entry per row, NumPy fancy indexing) or ``v[:, None]``."""
        if self.is_index_name(node.slice):
            return self.gather(node)
        if self.is_slicing(node):
            return self.slicing(node)
        if self.is_new_axis(node):
            a = self.expr(node.value)
            items = node.slice.elts if isinstance(node.slice, ast.Tuple) else []
            column = len(items) == 2 and isinstance(items[0], ast.Slice)
            if len(a.shape) != 1 or not column:  # v[:, None] of a 1-D v: a column, below
                return self.new_axis(node, a)
        items = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        expected = (
            "unsupported syntax (subscript): expected x[range(B), y] with y a labels "
            "target, or v[:, None]"
        )
        if len(items) != 2:
            self.node_error(node, expected)
        first, second = items
        if (
            isinstance(first, ast.Slice)
            and first.lower is first.upper is first.step is None
            and isinstance(second, ast.Constant)
            and second.value is None
        ):
            a = self.expr(node.value)
            if len(a.shape) != 1:
                self.node_error(
                    node, f"v[:, None] needs a 1-D array, got shape {fmt_shape(a.shape)}"
                )
            return ir.Column((a.shape[0], sp.Integer(1)), self.pos(node), a)
        if not (
            isinstance(first, ast.Call)
            and isinstance(first.func, ast.Name)
            and first.func.id == "range"
            and len(first.args) == 1
            and not first.keywords
        ):
            self.node_error(node, expected)
        arg = self.expr(node.value)
        rows = self.expr(first.args[0])
        labels = self.labels_ref(second, "the column index")
        classes = self.quantities[labels.name].classes
        if len(arg.shape) != 2:
            self.node_error(node, f"x[range(B), y] needs a 2-D x, got shape {fmt_shape(arg.shape)}")
        if not isinstance(rows, ir.Scalar) or rows.value != arg.shape[0]:
            self.node_error(first, f"expected range({arg.shape[0]}): one entry per row of x")
        if labels.shape[0] != arg.shape[0] or classes != arg.shape[1]:
            self.node_error(
                node,
                f"{labels.name} has shape {fmt_shape(labels.shape)} and {classes} classes, "
                f"x has shape {fmt_shape(arg.shape)}: expected x[{arg.shape[0]}, {classes}]",
            )
        return ir.Pick((arg.shape[0],), self.pos(node), arg, labels)

    def is_index_name(self, node: ast.expr) -> bool:
        """Whether ``node`` names an ``index(V)`` input."""
        q = self.quantities.get(node.id) if isinstance(node, ast.Name) else None
        return q is not None and q.kind == "input" and q.classes is not None

    def gather(self, node: ast.Subscript) -> ir.Node:
        """``C[ix]``: the rows ``ix`` of a table ``C[V, ...]``, shape ``ix.shape + C.shape[1:]``."""
        assert isinstance(node.slice, ast.Name)
        q = self.quantities[node.slice.id]
        table = self.expr(node.value)
        if len(table.shape) != 2 or table.shape[0] != q.classes:
            self.node_error(
                node,
                f"{q.name} indexes a table of {q.classes} rows: expected a table "
                f"[{q.classes}, n], got shape {fmt_shape(table.shape)}",
            )
        shape = q.shape + table.shape[1:]
        index = ir.Ref(q.shape, self.pos(node.slice), q.name)
        return ir.Gather(shape, self.pos(node), table, index)

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

    def reduction(
        self, node: ast.Call, name: str, arg: ir.Node | None = None, kw=None
    ) -> ir.Reduce:
        """``sum``/``mean`` of a call, or of ``arg`` with ``kw`` (ast values or Python ones)."""
        if arg is None:
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
