"""Claim expressions → the spec's IR: the spec's expression walker, widened to code as people
write it (``np.dot``, ``x.sum(axis=0, keepdims=True)``, masks ``(A > 0)``, ``diag(v)``).

:mod:`derive.notation` turns code, Unicode or LaTeX into Python syntax with a few marker
calls (``_d_f`` a derivative, ``_jx`` a juxtaposition, ``_cmp_gt`` a comparison, ``_f_dot``
a library function, ``_m_sum`` a method); this module walks that syntax with :mod:`ast`
against the spec's shapes.  Nothing is evaluated.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from typing import NoReturn, cast

import sympy as sp

from .. import ir
from ..errors import SpecError
from ..notation import MAX_EXPONENT
from ..rules import RULES
from ..spec import SpecParser, fmt_shape
from .result import Shapes

_LIMIT = 10**12  # the largest scalar a claim may compute (10^{10^{10}} is refused, not computed)


def derivative_ir(fn: str, arg: ir.Node, params: tuple, generic: bool) -> ir.Node:
    """The IR of ``fn'(arg)``, from the registry's derivative (``σ(a)(1 − σ(a))``)."""
    if generic:
        return ir.Call(arg.shape, arg.pos, fn + "'", arg, (), True)
    z = sp.Dummy("z")
    return _from_sympy(RULES[fn].derivative(z, *params), z, arg)


def _from_sympy(e, z, arg: ir.Node) -> ir.Node:
    shape, pos = arg.shape, arg.pos
    if e == z:
        return arg
    if e.is_number:
        return ir.Scalar((), pos, e)
    if isinstance(e, (sp.Add, sp.Mul)):
        op = "+" if isinstance(e, sp.Add) else "*"
        out = _from_sympy(e.args[0], z, arg)
        for a in e.args[1:]:
            out = ir.Binary(shape, pos, op, out, _from_sympy(a, z, arg))
        return out
    if isinstance(e, sp.Pow):
        return ir.Power(shape, pos, _from_sympy(e.base, z, arg), e.exp)
    for rule in RULES.values():
        if e.func is rule.cls:
            return ir.Call(shape, pos, rule.name, _from_sympy(e.args[0], z, arg), tuple(e.args[1:]))
    raise SpecError(f"cannot express the derivative {e}")


def indicator(arg: ir.Node, net: ir.Network | None) -> ir.Node:
    """``1 where arg > 0``: relu'(arg); ``(relu(z) > 0)`` is relu'(z), as people mean it."""
    pos, neg = arg, False
    if isinstance(arg, ir.Neg):
        pos, neg = arg.a, True
    inner = pos
    if isinstance(pos, ir.Ref) and net is not None and pos.name in net.quantities:
        eq = next((e for e in net.equations if e.name == pos.name), None)
        inner = eq.expr if eq is not None else pos
    if isinstance(inner, ir.Call) and inner.fn == "relu":
        step = ir.Call(inner.arg.shape, arg.pos, "relu_prime", inner.arg, ())
        if neg:  # (relu(z) <= 0) is 1 − relu'(z)
            return ir.Binary(step.shape, arg.pos, "-", ir.Scalar((), arg.pos, sp.Integer(1)), step)
        return step
    return ir.Call(arg.shape, arg.pos, "relu_prime", arg, ())


@dataclass(frozen=True, eq=False)
class Diag(ir.Node):
    """``diag(v)``: only meaningful as a factor of a matrix product (a row or column scaling)."""

    v: ir.Node


@dataclass(frozen=True, eq=False)
class Ones(ir.Node):
    """``1ᵀ``: a row of ones, only as the left factor of a product (a sum over rows)."""


@dataclass
class Derivative:
    """Where a claim takes a derivative: for trying other points and other functions."""

    node: ir.Node
    fn: str
    arg: ir.Node
    params: tuple
    generic: bool


_REDUCTIONS = {"sum", "mean"}
_IDENTITY = {"int64", "int32", "float64", "float32", "float", "int", "array", "asarray", "copy"}
_IDENTITY |= {"clone", "astype", "type", "double", "detach", "contiguous"}


class ClaimParser(SpecParser):
    """The spec's expression walker, with derivatives, juxtaposition and library spellings."""

    def __init__(self, net: ir.Network, quantities: dict, file: str):
        super().__init__("", file, net.name)
        self.net = net
        self.quantities = dict(quantities)
        self.dims, self.consts, self.funcs = net.dims, net.consts, net.funcs
        self.const_symbols = net.const_symbols
        self.derivatives: list[Derivative] = []
        self.last_derivatives: list[Derivative] = []
        self.gradients: set[str] = set()
        self.jx_ops: dict[int, str] = {}  # how each juxtaposition was read
        self.version: dict[str, str] = {}  # a redefined name -> its current internal name
        self.claim_nodes: dict[str, ir.Node | None] = {}
        self.names = True  # the naming convention (dW, δu) is on

    def node_error(self, node, message) -> NoReturn:
        if (
            "do not fit" in message
            or "do not broadcast" in message
            or message.startswith("unknown name")
            or "diag(v)" in message
        ):
            raise Shapes(message, self.file, self.line_no, 1)
        raise SpecError(message, self.file, self.line_no, 1)

    def define(self, name: str, node: ir.Node | None, line: int) -> str:
        """Bind ``name`` to a new value; a redefinition gets a fresh internal name."""
        internal = name
        k = 1
        while internal in self.claim_nodes:
            k += 1
            internal = f"{name}__{k}"
        shape = node.shape if node is not None else ()
        self.quantities[internal] = ir.Quantity(internal, "claim", shape, (line, 1))
        self.claim_nodes[internal] = node
        if internal != name:
            self.version[name] = internal
        return internal

    # -- names ----------------------------------------------------------------------------------
    def expr_Name(self, node: ast.Name) -> ir.Node:
        name = self.version.get(node.id, node.id)
        if name in self.claim_nodes and self.claim_nodes[name] is None:
            raise Shapes(f"it uses {node.id}, which is ill-formed", self.file, self.line_no, 1)
        if name.startswith("_g_") and name[3:] in self.gradients:
            q = cast(ir.Quantity, self.quantities.get(name[3:]))
            return ir.Ref(q.shape, self.pos(node), name)
        if name.startswith("_gradf_"):
            return self._grad_of_function(node, name[len("_gradf_") :])
        if name != node.id:
            return super().expr_Name(ast.copy_location(ast.Name(name, ast.Load()), node))
        known = name in self.quantities or name in self.consts or name in self.dims
        adj = None if known or not self.names else adjoint_of(name, self.net, self.gradients)
        if adj is not None:  # δu, delta_u, dW used undefined: the true gradient, as given
            return ir.Ref(self.quantities[adj].shape, self.pos(node), "_g_" + adj)
        return super().expr_Name(node)

    def _grad_of_function(self, node, fn: str) -> ir.Node:
        """``∇f``: the vector of f' at the argument f is applied to in the spec."""
        uses = [e.expr for e in self.net.equations if isinstance(e.expr, ir.Call)]
        uses = [c for c in uses if c.fn == fn]
        if len(uses) != 1:
            self.node_error(node, f"∇{fn}: {fn} must be applied exactly once in the spec")
        call, arg = uses[0], uses[0].arg
        if isinstance(arg, ir.Ref) and arg.name in self.quantities:  # this layout's shape
            arg = ir.Ref(self.quantities[arg.name].shape, self.pos(node), arg.name)
        out = derivative_ir(fn, arg, call.params, call.generic)
        self.derivatives.append(Derivative(out, fn, arg, call.params, call.generic))
        return out

    def expr_Constant(self, node: ast.Constant) -> ir.Node:
        if type(node.value) is float and abs(node.value) > _LIMIT:
            self.node_error(node, f"the number {node.value!r} is too large (limit {_LIMIT:g})")
        if type(node.value) is int and abs(node.value) > _LIMIT:
            self.node_error(node, f"the number {node.value} is too large (limit {_LIMIT:g})")
        return super().expr_Constant(node)

    # -- operators ------------------------------------------------------------------------------
    def expr_BinOp(self, node: ast.BinOp) -> ir.Node:
        ones = isinstance(node.left, ast.Name) and node.left.id == "_onesT"
        if ones and isinstance(node.op, (ast.MatMult, ast.Mult)):
            return self._matmul(node, Ones((), self.pos(node)), self.expr(node.right))
        if isinstance(node.op, ast.Pow):
            return self._power(node)
        if isinstance(node.op, ast.MatMult):
            return self._matmul(node, self.expr(node.left), self.expr(node.right))
        return super().expr_BinOp(node)

    def _power(self, node: ast.BinOp) -> ir.Node:
        exponent = self.expr(node.right)
        value = exponent.value if isinstance(exponent, ir.Scalar) else None
        if value is None or not value.is_number:
            self.node_error(node.right, "expected a constant number as the exponent")
        assert value is not None  # node_error raised otherwise
        if abs(value) > MAX_EXPONENT:
            self.node_error(node.right, f"the exponent {value} is larger than {MAX_EXPONENT}")
        base = self.expr(node.left)
        if isinstance(base, ir.Scalar):
            big = base.value.is_number and abs(base.value) > 1 and abs(value) > 1
            if big and abs(value) * sp.log(abs(base.value), 10) > 12:
                self.node_error(node, f"the number is too large (limit {_LIMIT:g})")
            return ir.Scalar((), self.pos(node), base.value**value)
        return ir.Power(base.shape, self.pos(node), base, value)

    def _matmul(self, node, a: ir.Node, b: ir.Node) -> ir.Node:
        pos = self.pos(node)
        if isinstance(a, Ones):
            return ir.Reduce(tuple(b.shape[1:]), pos, "sum", b, 0, False)
        if isinstance(a, Diag) or isinstance(b, Diag):
            return self._scale(node, a, b)
        if not a.shape or not b.shape:  # "½ X" or "\frac{1}{B} δ": a scalar product
            return ir.Binary(a.shape or b.shape, pos, "*", a, b)
        return ir.MatMul(self.matmul_shape(node, a, b), pos, a, b)

    def _scale(self, node, a: ir.Node, b: ir.Node) -> ir.Node:
        """``diag(v) M`` scales the rows of M, ``M diag(v)`` its columns (v per example for a
        batch: v's shape is M's, or M's transposed)."""
        pos = self.pos(node)
        rows = isinstance(a, Diag)
        v, m = (cast(Diag, a).v, b) if rows else (cast(Diag, b).v, a)
        if isinstance(m, Diag) or not m.shape:
            self.node_error(node, "diag(v) needs a matrix on the other side of the product")
        along = m.shape[0] if rows else m.shape[-1]
        if len(v.shape) == 1 and v.shape[0] == along:
            if rows:  # diag(v) M = (Mᵀ ⊙ v)ᵀ
                mt = ir.Transpose(tuple(reversed(m.shape)), pos, m)
                return ir.Transpose(m.shape, pos, ir.Binary(mt.shape, pos, "*", mt, v))
            return ir.Binary(m.shape, pos, "*", m, v)
        batch = self._batch_dim()
        if len(v.shape) == 2 and len(m.shape) == 2 and batch in v.shape:
            vec_axis = 1 - list(v.shape).index(batch)  # one vector per example
            want = (v.shape[vec_axis], batch) if rows else (batch, v.shape[vec_axis])
            cand = v if (vec_axis == 0) == rows else ir.Transpose(want, pos, v)
            if tuple(m.shape) == want:
                return ir.Binary(m.shape, pos, "*", cand, m)
        side = "rows" if rows else "columns"
        self.node_error(
            node,
            f"diag(v) with v of shape {_fmt(v.shape)} cannot scale the {side} of a matrix of "
            f"shape {_fmt(m.shape)}",
        )

    def _batch_dim(self):
        """The dimension every input and target has: the batch (None if there is not one)."""
        shapes = [q.shape for q in self.net.quantities.values() if q.kind in ("input", "target")]
        common = set.intersection(*(set(s) for s in shapes)) if shapes else set()
        common = [d for d in common if not d.is_number]
        return common[0] if len(common) == 1 else None

    def expr_Compare(self, node: ast.Compare) -> ir.Node:
        """A bare comparison is refused: comparisons are read only as masks."""
        self.node_error(node, "a comparison is read only as a mask, e.g. (A > 0)")

    # -- calls ----------------------------------------------------------------------------------
    def expr_Call(self, node: ast.Call) -> ir.Node:
        name = node.func.id if isinstance(node.func, ast.Name) else ""
        if name == "_jx":
            return self._juxtaposition(node)
        if name.startswith("_cmp_"):
            return self._mask(node, name[5:])
        if name.startswith("_f_"):
            return self._library(node, name[3:], list(node.args))
        if name.startswith("_m_"):
            return self._library(node, name[3:], list(node.args), method=True)
        if name == "_shape":
            return self._shape_of(node)
        if name in FANCY.values():
            return self.fancy(node, name[len("_fancy_") :])
        if name.startswith("_d_"):
            return self._derivative(node, name[3:])
        if name in _REDUCTIONS:
            return self.reduction(self._reduction_call(node), name)
        return super().expr_Call(node)

    def _juxtaposition(self, node: ast.Call) -> ir.Node:
        """A matrix product unless only element-wise fits."""
        if isinstance(node.args[0], ast.Name) and node.args[0].id == "_onesT":
            x = self.expr(node.args[1])  # 1ᵀ X: the sum over X's rows
            return ir.Reduce(tuple(x.shape[1:]), self.pos(node), "sum", x, 0, False)
        if len(node.args) != 2:  # e.g. ``\delta_{ = 3}``: a juxtaposition lost a side
            self.node_error(node, "a product with a missing factor")
        a, b = (self.expr(x) for x in node.args)
        pos = self.pos(node)
        if isinstance(a, Diag) or isinstance(b, Diag):
            return self._scale(node, a, b)
        elementwise = (
            not a.shape or not b.shape or (a.shape[-1] != b.shape[0] and a.shape == b.shape)
        )
        self.jx_ops[node.col_offset] = "*" if elementwise else "@"
        if elementwise:
            return ir.Binary(a.shape or b.shape, pos, "*", a, b)
        return ir.MatMul(self.matmul_shape(node, a, b), pos, a, b)

    def _mask(self, node: ast.Call, op: str) -> ir.Node:
        a, b = (self.expr(x) for x in node.args)
        pos = self.pos(node)
        if isinstance(b, ir.Scalar) and b.value == 0:
            diff = a
        elif isinstance(a, ir.Scalar) and a.value == 0:
            diff = ir.Neg(b.shape, pos, b)
        else:
            diff = ir.Binary(self.broadcast(node, a.shape, b.shape), pos, "-", a, b)
        above = indicator(diff, self.net)  # (a < b) is 1 − (a > b): one atom, up to ties
        if op in ("gt", "ge"):
            return above
        one = ir.Scalar((), pos, sp.Integer(1))
        return ir.Binary(above.shape, pos, "-", one, above)

    def reshape(self, node: ast.Call, x: ir.Node, args: list) -> ir.Node:
        """``x.reshape(n, 1)``, ``x.reshape(-1)``, ``np.reshape(x, (1, -1))``: axes of length
        1 added or dropped (a column, a row, a flat vector); other reshapes are refused."""
        if len(args) == 1 and isinstance(args[0], (ast.Tuple, ast.List)):
            args = list(args[0].elts)
        want = [self.expr(a) for a in args]
        if not all(isinstance(w, ir.Scalar) for w in want):
            self.node_error(node, "expected sizes (numbers, dims or -1) in reshape")
        sizes = [cast(ir.Scalar, w).value for w in want]
        if tuple(sizes) == tuple(x.shape):
            return x
        core = [d for d in x.shape if d != 1]
        if len(core) == 1 and sizes.count(-1) == 1 and set(sizes) <= {-1, 1}:
            sizes = [core[0] if d == -1 else d for d in sizes]
        if len(core) != 1 or len(sizes) > 2 or [d for d in sizes if d != 1] != core:
            self.node_error(
                node,
                f"reshape of shape {_fmt(x.shape)} to ({', '.join(map(str, sizes))}): claims "
                "read only axes of length 1 added or dropped (a column, a row, a vector)",
            )
        v, pos = self.vector(node, x), self.pos(node)
        if len(sizes) == 1:
            return v
        column = ir.Column((core[0], sp.Integer(1)), pos, v)
        return column if sizes[1] == 1 else ir.Transpose((sp.Integer(1), core[0]), pos, column)

    def vector(self, node, x: ir.Node) -> ir.Node:
        """``x`` as a 1-D vector: a column or a row lose their axis of length 1."""
        if len(x.shape) == 1:
            return x
        if len(x.shape) == 2 and 1 in x.shape:
            axis = 1 if x.shape[1] == 1 else 0
            return ir.Reduce((x.shape[1 - axis],), self.pos(node), "sum", x, axis, False)
        self.node_error(node, f"expected a vector, got shape {_fmt(x.shape)}")

    def fancy(self, node: ast.Call, op: str) -> ir.Node:
        """``x[range(N), y] op= e``: ``x`` changed at one entry per row, the labels' (as the
        one-hot matrix of ``y`` times ``e``, a number or one value per row)."""
        x, pick, e = (self.expr(a) for a in node.args)
        pos = self.pos(node)
        if not isinstance(pick, ir.Pick):
            self.node_error(node, "expected x[range(N), y] = … with y a labels target")
        classes = self.quantities[pick.labels.name].classes
        hot = ir.OneHot(tuple(x.shape), pos, pick.labels, classes)
        if tuple(e.shape) == tuple(x.shape[:1]):  # one value per row: -row_sum
            e = ir.Column((x.shape[0], sp.Integer(1)), pos, e)
        elif e.shape:
            self.node_error(
                node, f"expected a number or one value per row, got shape {_fmt(e.shape)}"
            )
        one = ir.Scalar((), pos, sp.Integer(1))
        he = ir.Binary(x.shape, pos, "*", hot, e)
        if op in ("add", "sub"):
            return ir.Binary(x.shape, pos, "+" if op == "add" else "-", x, he)
        if op == "set":  # x − onehot ⊙ x + onehot ⊙ e
            kept = ir.Binary(x.shape, pos, "-", x, ir.Binary(x.shape, pos, "*", hot, x))
            return ir.Binary(x.shape, pos, "+", kept, he)
        # x ⊙ (1 + onehot ⊙ (e − 1)) for *=, x ⊘ (…) for /=
        shifted = ir.Binary(e.shape, pos, "-", e, one)
        scale = ir.Binary(x.shape, pos, "+", one, ir.Binary(x.shape, pos, "*", hot, shifted))
        return ir.Binary(x.shape, pos, "*" if op == "mul" else "/", x, scale)

    def _shape_of(self, node: ast.Call) -> ir.Node:
        arr = self.expr(node.args[0])
        axis = self.int_literal(node.args[1], "the axis of .shape[k]")
        if not -len(arr.shape) <= axis < len(arr.shape):
            self.node_error(node, f".shape[{axis}] is out of range for shape {_fmt(arr.shape)}")
        return ir.Scalar((), self.pos(node), arr.shape[axis])

    def _derivative(self, node: ast.Call, fn: str) -> ir.Node:
        generic = fn in self.funcs
        if not generic and (fn not in RULES or RULES[fn].internal):
            self.node_error(node, f"unknown function {fn!r} in {fn}'(...)")
        args = [self.expr(a) for a in node.args]
        if not 1 <= len(args) <= 1 + len(RULES[fn].params if not generic else ()):
            self.node_error(node, f"{fn}' takes one argument")
        params = tuple(a.value for a in args[1:] if isinstance(a, ir.Scalar))
        if not generic:
            params = params or tuple(sp.nsimplify(d) for _, d in RULES[fn].params)
        out = derivative_ir(fn, args[0], params, generic)
        self.derivatives.append(Derivative(out, fn, args[0], params, generic))
        return out

    def _reduction_call(self, node: ast.Call) -> ast.Call:
        """``sum(x, 0)``, ``x.sum(dim=0, keepdim=True)`` as ``sum(x, axis=…, keepdims=…)``."""
        keywords = []
        for k in node.keywords:
            arg = {"dim": "axis", "keepdim": "keepdims"}.get(k.arg or "", k.arg)
            keywords.append(ast.keyword(arg, k.value))
        for key, value in zip(("axis", "keepdims"), node.args[1:], strict=False):
            keywords.append(ast.keyword(key, value))
        out = ast.Call(node.func, node.args[:1], keywords)
        return ast.copy_location(out, node)

    def _library(self, node: ast.Call, name: str, args: list, method: bool = False) -> ir.Node:
        """NumPy/PyTorch functions and methods, as the operations they are."""
        pos = self.pos(node)
        if name in _REDUCTIONS:
            call = ast.copy_location(ast.Call(ast.Name(name), args, node.keywords), node)
            return self.reduction(self._reduction_call(call), name)
        if name in _IDENTITY:
            return self.expr(args[0])
        if name in ("T", "t", "transpose") and len(args) == 1:
            a = self.expr(args[0])
            return a if not a.shape else ir.Transpose(tuple(reversed(a.shape)), pos, a)
        if name == "reshape" and len(args) >= 2:
            return self.reshape(node, self.expr(args[0]), args[1:])
        if name == "outer" and len(args) == 2:
            a, b = (self.vector(node, self.expr(x)) for x in args)
            column = ir.Column((a.shape[0], sp.Integer(1)), pos, a)
            return ir.Binary((a.shape[0], b.shape[0]), pos, "*", column, b)
        if name == "diag" and len(args) == 1:
            v = self.expr(args[0])
            return Diag(v.shape, pos, v)
        if name in ("maximum", "clamp", "clip") and len(args) == 2:
            a, b = (self.expr(x) for x in args)
            x = b if isinstance(a, ir.Scalar) and a.value == 0 else a
            if x is a and not (isinstance(b, ir.Scalar) and b.value == 0):
                self.node_error(node, f"{name} is read only as max(0, x) (a relu)")
            return ir.Call(x.shape, pos, "relu", x, ())
        if name in ("ones_like", "zeros_like") and len(args) == 1:
            a = self.expr(args[0])
            zero = ir.Binary(a.shape, pos, "*", a, ir.Scalar((), pos, sp.Integer(0)))
            one = ir.Scalar((), pos, sp.Integer(1 if name == "ones_like" else 0))
            return ir.Binary(a.shape, pos, "+", zero, one)
        if name in ("square", "sqrt") and len(args) == 1:
            binop = ast.BinOp(args[0], ast.Pow(), ast.Constant(2 if name == "square" else 0.5))
            return self.expr(ast.copy_location(binop, node))
        if name in ("exp", "log", "tanh", "sigmoid") and len(args) == 1:
            call = ast.Call(ast.Name(name), args, [])
            return self.expr(ast.copy_location(call, node))
        ops: dict[str, type[ast.operator]] = {"dot": ast.MatMult, "matmul": ast.MatMult}
        ops["mm"] = ast.MatMult
        ops |= {"multiply": ast.Mult, "mul": ast.Mult, "divide": ast.Div, "div": ast.Div}
        ops |= {"power": ast.Pow, "pow": ast.Pow, "add": ast.Add, "subtract": ast.Sub}
        if name in ops and len(args) == 2:
            binop = ast.BinOp(args[0], ops[name](), args[1])
            return self.expr(ast.copy_location(binop, node))
        if name == "where" and len(args) == 3:
            c, a, b = (self.expr(x) for x in args)
            one = ir.Scalar((), pos, sp.Integer(1))
            shape = self.broadcast(node, c.shape, self.broadcast(node, a.shape, b.shape))
            left = ir.Binary(self.broadcast(node, c.shape, a.shape), pos, "*", c, a)
            rest = ir.Binary(c.shape, pos, "-", one, c)
            right = ir.Binary(self.broadcast(node, c.shape, b.shape), pos, "*", rest, b)
            return ir.Binary(shape, pos, "+", left, right)
        what = f".{name}()" if method else f"{name}()"
        self.node_error(node, f"unsupported {what} with {len(args)} argument(s)")

    def claim(self, code: str, line: int) -> ir.Node:
        """The IR of one formula (already in Python syntax) at claim line ``line``."""
        self.code, self.base_col, self.line_no = code, 0, line
        try:
            tree = ast.parse(code, mode="eval").body
        except SyntaxError as exc:
            raise SpecError(f"cannot read the formula: {exc.msg}", self.file, line, 1) from None
        except (RecursionError, MemoryError, UnicodeError, ValueError):
            raise SpecError("the formula is nested too deeply", self.file, line, 1) from None
        try:
            return self.expr(tree)
        except RecursionError:
            raise SpecError("the formula is nested too deeply", self.file, line, 1) from None


def _fmt(shape) -> str:
    return fmt_shape(shape)


# ---------------------------------------------------------------------------
# statements written as code: augmented and masked assignment

_AUGMENTED = re.compile(r"^\s*([^\W\d]\w*)\s*([-+*/])=(?!=)\s*(.+)$", re.S)
_MASKED = re.compile(r"^\s*([^\W\d]\w*)\s*\[(.+)\]\s*=(?!=)\s*(.+)$", re.S)


_FANCY = re.compile(r"^\s*([^\W\d]\w*)\s*\[(.+)\]\s*([-+*/]?)=(?!=)\s*(.+)$", re.S)
FANCY = {
    "-": "_fancy_sub",
    "+": "_fancy_add",
    "*": "_fancy_mul",
    "/": "_fancy_div",
    "": "_fancy_set",
}


def rewrite_statement(raw: str) -> str:
    """``x += e`` → ``x = x + (e)``; ``x[m] = e`` → ``x = (1 - (m)) * x + (m) * (e)``;
    ``x[range(N), y] -= e`` → ``x = _fancy_sub(x, x[range(N), y], (e))`` (one entry per
    row, at the labels: read by :meth:`ClaimParser.fancy`)."""
    m = _FANCY.match(raw)
    if m and _top_level_comma(m.group(2)):
        name, index, op, rhs = m.groups()
        return f"{name} = {FANCY[op]}({name}, {name}[{index}], ({rhs.strip()}))"
    m = _AUGMENTED.match(raw)
    if m:
        name, op, rhs = m.groups()
        return f"{name} = {name} {op} ({rhs.strip()})"
    m = _MASKED.match(raw)
    if m and "=" not in m.group(2).replace("<=", "").replace(">=", ""):
        name, mask, rhs = m.groups()
        rhs = rhs.strip()
        if rhs in ("0", "0.0", "0."):
            return f"{name} = (1 - ({mask})) * {name}"
        return f"{name} = (1 - ({mask})) * {name} + ({mask}) * ({rhs})"
    return raw


def _top_level_comma(index: str) -> bool:
    depth = 0
    for ch in index:
        depth += ch in "([{"
        depth -= ch in ")]}"
        if ch == "," and depth == 0:
            return True
    return False


# ---------------------------------------------------------------------------
# the naming convention: dW2, grad_W2, W2_grad, dL_dW2, δu, delta_z3 mean ∂L/∂q

_PATTERNS = [
    re.compile(r"^d(?P<q>.+)$"),
    re.compile(r"^grad_?(?P<q>.+)$"),
    re.compile(r"^(?P<q>.+?)_?grad$"),
    re.compile(r"^d(?P<loss>[A-Za-z]\w*?)_?d(?P<q>.+)$"),
    re.compile(r"^(?:delta_|δ|Delta_|nabla_|∇)(?P<q>.+)$"),
]


def gradient_name(name: str) -> bool:
    """Whether a name is spelled as a gradient (``dW``, ``grad_W``, ``W_grad``, ``δu``): a
    ``--map var=bvar`` binds a value, a ``--map dvar=bvar`` names a gradient."""
    return any(p.match(name) for p in _PATTERNS)


def adjoint_of(name: str, net: ir.Network, with_delta: set[str]) -> str | None:
    """The quantity ``q`` whose gradient a name like ``dW2`` or ``δu`` stands for, if any."""
    if name in net.quantities or name in net.consts or name in net.dims:
        return None
    for pattern in _PATTERNS:
        m = pattern.match(name)
        if not m:
            continue
        loss = m.groupdict().get("loss")
        if loss is not None and loss != net.loss:
            continue
        q = m.group("q")
        for cand in (q, q.lstrip("_"), _unhat(q)):
            if cand in with_delta:
                return cand
    return _function_input(name, net, with_delta)


def _function_input(name: str, net: ir.Network, with_delta: set[str]) -> str | None:
    """``dtanh``, ``drelu``, ``dsigmoid``: the gradient with respect to the input of the one
    application of that function in the network (cs231n's ``dtanh = (1 - h**2) * dh``,
    nnfs's ``drelu``), when the input is a named quantity."""
    fn = name[1:] if name.startswith("d") else None
    calls = [e.expr for e in net.equations if isinstance(e.expr, ir.Call) and e.expr.fn == fn]
    if len(calls) == 1 and isinstance(calls[0].arg, ir.Ref) and calls[0].arg.name in with_delta:
        return calls[0].arg.name
    return None


def _unhat(q: str) -> str:
    return q[:-4] + "_hat" if q.endswith("hat") and not q.endswith("_hat") else q
