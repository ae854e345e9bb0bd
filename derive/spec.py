"""Parse the ``*.nn`` spec language into a shape-checked :class:`~derive.ir.Network`.

A spec is one statement a line (``#`` starts a comment)::

    func f                       # generic element-wise functions
    input  x[B, n_x]
    target t[B, n_y] onehot      # or onehot(axis=0): columns sum to 1
    param  W[n_x, n_h], b[n_h]
    const  lam = 0.01            # scalar hyper-parameter, default optional
    u = x @ W + b
    L = sum((f(u) @ S - t)**2) + lam * sum(W**2)

Equations are Python expressions parsed with :mod:`ast` and walked
against a whitelist; user text never reaches ``eval``, ``exec`` or
``sympify``.  Every problem raises :class:`~derive.errors.SpecError`
with file, line, column and what was expected.
"""

from __future__ import annotations

import ast
import keyword
import re
from pathlib import Path

import sympy as sp

from . import ir
from .errors import SpecError
from .rules import RULES, activations

DECL_KEYWORDS = ("input", "target", "param", "const", "func")
REDUCTIONS = ("sum", "mean")
# Names generated code and the printers use; a spec may not take them.
RESERVED = {
    "np",
    "numpy",
    "softmax",
    "params",
    "data",
    "grads",
    "dims",
    "lr",
    "fwd",
    "onehot",
    "axis",
    "keepdims",
    *REDUCTIONS,
    *DECL_KEYWORDS,
    *RULES,
}
RESERVED_PREFIXES = ("delta_", "grad_", "_")

SPECS_DIR = Path(__file__).parent / "specs"


def bundled() -> dict[str, Path]:
    """The bundled example specs, by name."""
    return {p.stem: p for p in sorted(SPECS_DIR.glob("*.nn"))}


def parse_file(path: str | Path) -> ir.Network:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(f"cannot read spec: {exc.strerror or exc}", str(path), 1, 1) from None
    except UnicodeDecodeError:
        raise SpecError("spec is not UTF-8 text", str(path), 1, 1) from None
    return parse(text, file=str(path), name=path.stem)


def parse(text: str, file: str = "<spec>", name: str | None = None) -> ir.Network:
    return _Parser(text, file, name or Path(file).stem).run()


def _char_col(line: str, byte_offset: int) -> int:
    """ast reports UTF-8 byte offsets; users count characters."""
    return len(line.encode("utf-8")[:byte_offset].decode("utf-8", errors="ignore"))


class _Parser:
    def __init__(self, text: str, file: str, name: str):
        self.text = text
        self.file = file
        self.name = name
        self.quantities: dict[str, ir.Quantity] = {}
        self.equations: list[ir.Equation] = []
        self.dims: dict[str, sp.Symbol] = {}
        self.consts: dict[str, float | None] = {}
        self.const_symbols: dict[str, sp.Symbol] = {}
        self.funcs: list[str] = []
        self.func_pos: dict[str, tuple[int, int]] = {}
        self.line_no = 0
        self.base_col = 0
        self.line = ""

    # -- errors ------------------------------------------------------------
    def error(self, message: str, col: int | None = None, line: int | None = None):
        raise SpecError(message, self.file, line or self.line_no, (col or 0) + 1)

    def node_error(self, node: ast.AST, message: str):
        offset = getattr(node, "col_offset", 0)
        self.error(message, self.base_col + _char_col(self.code, offset))

    # -- top level ---------------------------------------------------------
    def run(self) -> ir.Network:
        for line_no, raw in enumerate(self.text.splitlines(), start=1):
            self.line_no, self.line = line_no, raw
            code = raw.split("#", 1)[0].rstrip()
            if not code.strip():
                continue
            self.base_col = len(code) - len(code.lstrip())
            stripped = code.strip()
            m = re.match(r"(input|target|param|const|func)\b(?!\s*=)\s*", stripped)
            if m:
                if self.equations:
                    self.error("declarations must come before the equations", self.base_col)
                self.declaration(m.group(1), stripped[m.end() :], self.base_col + m.end())
            else:
                self.equation(stripped)
        return self.finish()

    def finish(self) -> ir.Network:
        if not self.equations:
            self.error(
                "no equations: the last equation must define the scalar loss",
                0,
                max(self.line_no, 1),
            )
        loss = self.equations[-1]
        if loss.shape != ():
            self.line_no = loss.pos[0]
            self.error(
                f"the last equation defines the loss and must be a scalar, but {loss.name!r} "
                f"has shape {fmt_shape(loss.shape)}; sum or mean it",
                loss.pos[1] - 1,
            )
        params = [q for q in self.quantities.values() if q.kind == "param"]
        if not params:
            self.error("no param declared: nothing to differentiate", 0, 1)
        net = ir.Network(
            self.name,
            self.file,
            self.text,
            self.quantities,
            self.equations,
            self.dims,
            self.consts,
            self.funcs,
            self.const_symbols,
            self.func_pos,
        )
        deps = net.depends_on()[loss.name]
        for p in params:
            if p.name not in deps:
                self.line_no = p.pos[0]
                self.error(
                    f"the loss {loss.name!r} does not depend on param {p.name!r}", p.pos[1] - 1
                )
        return net

    # -- declarations --------------------------------------------------------
    def check_new_name(self, name: str, col: int):
        if not name.isidentifier() or keyword.iskeyword(name):
            self.error(f"expected a name, got {name!r}", col)
        if name in RESERVED or name.startswith(RESERVED_PREFIXES):
            self.error(f"{name!r} is reserved; choose another name", col)
        if (
            name in self.quantities
            or name in self.consts
            or name in self.dims
            or name in self.funcs
        ):
            self.error(f"{name!r} is already defined", col)

    def declaration(self, kind: str, rest: str, col: int):
        if not rest:
            self.error(f"expected a name after {kind!r}", col)
        if kind == "func":
            for m in re.finditer(r"[^,\s]+", rest):
                self.check_new_name(m.group(), col + m.start())
                self.funcs.append(m.group())
                self.func_pos[m.group()] = (self.line_no, col + m.start() + 1)
            return
        if kind == "const":
            return self.const_declaration(rest, col)
        onehot_axis = None
        if kind == "target":
            m = re.search(r"\bonehot\b(\s*\(.*\))?\s*$", rest)
            if m:
                onehot_axis = self.onehot(m.group(1), col + m.start())
                rest = rest[: m.start()].rstrip()
        self.code = rest
        self.base_col = col
        tree = self.parse_ast(rest)
        items = tree.elts if isinstance(tree, ast.Tuple) else [tree]
        for item in items:
            if not (isinstance(item, ast.Subscript) and isinstance(item.value, ast.Name)):
                self.node_error(item, f"expected NAME[dim, ...] after {kind!r}")
            name = item.value.id
            self.check_new_name(name, col + _char_col(rest, item.col_offset))
            dims = item.slice.elts if isinstance(item.slice, ast.Tuple) else [item.slice]
            if not 1 <= len(dims) <= 2:
                self.node_error(item, f"{name!r} must have 1 or 2 dimensions, got {len(dims)}")
            shape = tuple(self.dim(d) for d in dims)
            pos = (self.line_no, col + _char_col(rest, item.col_offset) + 1)
            axis = None
            if onehot_axis is not None:
                axis = onehot_axis % len(shape) if -len(shape) <= onehot_axis < len(shape) else None
                if axis is None:
                    self.error(
                        f"onehot axis {onehot_axis} is out of range for {name!r} "
                        f"of shape {fmt_shape(shape)}",
                        pos[1] - 1,
                    )
            self.quantities[name] = ir.Quantity(name, kind, shape, pos, axis)

    def const_declaration(self, rest: str, col: int):
        for m in re.finditer(r"[^,]+", rest):
            part = m.group()
            start = col + m.start() + len(part) - len(part.lstrip())
            name, _, default = (s.strip() for s in part.partition("="))
            self.check_new_name(name, start)
            value = None
            if default:
                try:
                    value = float(default)
                except ValueError:
                    self.error(
                        f"expected a number as the default of const {name!r}, got {default!r}",
                        start,
                    )
            self.consts[name] = value
            self.const_symbols[name] = sp.Symbol(name, real=True)

    def onehot(self, args: str | None, col: int) -> int:
        if not args:
            return -1
        self.code, self.base_col = "onehot" + args, col
        call = self.parse_ast("onehot" + args)
        if (
            not isinstance(call, ast.Call)
            or call.args
            or len(call.keywords) != 1
            or call.keywords[0].arg != "axis"
        ):
            self.error("expected 'onehot' or 'onehot(axis=N)'", col)
        return self.int_literal(call.keywords[0].value, "the onehot axis")

    def dim(self, node: ast.expr) -> sp.Expr:
        if isinstance(node, ast.Constant) and type(node.value) is int and node.value >= 1:
            return sp.Integer(node.value)
        if isinstance(node, ast.Name):
            name = node.id
            if name not in self.dims:
                if name in self.quantities or name in self.consts or name in self.funcs:
                    self.node_error(node, f"{name!r} is not a dimension")
                if name in RESERVED or name.startswith(RESERVED_PREFIXES):
                    self.node_error(node, f"{name!r} is reserved; choose another dimension name")
                self.dims[name] = sp.Symbol(name, integer=True, positive=True)
            return self.dims[name]
        self.node_error(node, "expected a dimension: a name or a positive integer")

    def int_literal(self, node: ast.expr, what: str) -> int:
        sign = 1
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            sign, node = -1, node.operand
        if isinstance(node, ast.Constant) and type(node.value) is int:
            return sign * node.value
        self.node_error(node, f"expected an integer for {what}")

    def parse_ast(self, code: str) -> ast.expr:
        try:
            return ast.parse(code, mode="eval").body
        except SyntaxError as exc:
            offset = (exc.offset or 1) - 1
            self.error(f"syntax error: {exc.msg}", self.base_col + offset)

    # -- equations -----------------------------------------------------------
    def equation(self, code: str):
        self.code = code
        try:
            tree = ast.parse(code, mode="exec")
        except SyntaxError as exc:
            msg = exc.msg
            if "statement" in msg or "invalid syntax" in msg:
                msg += (
                    "; expected NAME = expression or a declaration (input, target, param, "
                    "const, func)"
                )
            self.error(f"syntax error: {msg}", self.base_col + max((exc.offset or 1) - 1, 0))
        stmt = tree.body[0] if len(tree.body) == 1 else None
        if (
            not isinstance(stmt, ast.Assign)
            or len(stmt.targets) != 1
            or not isinstance(stmt.targets[0], ast.Name)
        ):
            self.node_error(stmt or tree.body[0], "expected one assignment NAME = expression")
        target = stmt.targets[0]
        name = target.id
        if name in self.quantities:
            what = (
                "assigned twice"
                if self.quantities[name].kind == "intermediate"
                else (f"declared as {self.quantities[name].kind}")
            )
            self.node_error(target, f"{name!r} is {what}; each name is assigned once")
        self.check_new_name(name, self.base_col + _char_col(code, target.col_offset))
        expr = self.expr(stmt.value)
        pos = (self.line_no, self.base_col + 1)
        self.quantities[name] = ir.Quantity(name, "intermediate", expr.shape, pos)
        self.equations.append(ir.Equation(name, expr, pos))

    def pos(self, node: ast.AST) -> ir.Pos:
        return (self.line_no, self.base_col + _char_col(self.code, node.col_offset) + 1)

    def expr(self, node: ast.expr) -> ir.Node:
        method = getattr(self, "expr_" + type(node).__name__, None)
        if method is None:
            self.node_error(
                node,
                f"unsupported syntax ({type(node).__name__.lower()}): "
                "expected names, numbers, @ * / + - **, .T or a function call",
            )
        return method(node)

    def expr_Constant(self, node: ast.Constant) -> ir.Node:
        if type(node.value) not in (int, float):
            self.node_error(node, f"expected a number, got {node.value!r}")
        value = sp.Integer(node.value) if type(node.value) is int else sp.Float(node.value)
        if type(node.value) is float and node.value == int(node.value) and abs(node.value) < 1e15:
            value = sp.Integer(int(node.value))
        elif type(node.value) is float:
            value = sp.nsimplify(node.value, rational=True)
        return ir.Scalar((), self.pos(node), value)

    def expr_Name(self, node: ast.Name) -> ir.Node:
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
        operand = self.expr(node.operand)
        if isinstance(node.op, ast.UAdd):
            return operand
        if isinstance(node.op, ast.USub):
            if isinstance(operand, ir.Scalar):
                return ir.Scalar((), self.pos(node), -operand.value)
            return ir.Neg(operand.shape, self.pos(node), operand)
        self.node_error(node, "unsupported unary operator: expected - or +")

    def expr_BinOp(self, node: ast.BinOp) -> ir.Node:
        a = self.expr(node.left)
        if isinstance(node.op, ast.Pow):
            exponent = self.expr(node.right)
            if not isinstance(exponent, ir.Scalar) or not exponent.value.is_number:
                self.node_error(node.right, "expected a constant number as the exponent")
            if isinstance(a, ir.Scalar):
                return ir.Scalar((), self.pos(node), a.value**exponent.value)
            return ir.Power(a.shape, self.pos(node), a, exponent.value)
        b = self.expr(node.right)
        if isinstance(node.op, ast.MatMult):
            return ir.MatMul(self.matmul_shape(node, a, b), self.pos(node), a, b)
        ops = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}
        op = ops.get(type(node.op))
        if op is None:
            self.node_error(
                node, f"unsupported operator {type(node.op).__name__}: expected @ * / + - or **"
            )
        if isinstance(a, ir.Scalar) and isinstance(b, ir.Scalar):
            value = ir.BINARY_OPS[op](a.value, b.value)
            return ir.Scalar((), self.pos(node), value)
        return ir.Binary(self.broadcast(node, a.shape, b.shape), self.pos(node), op, a, b)

    def expr_Attribute(self, node: ast.Attribute) -> ir.Node:
        if node.attr != "T":
            self.node_error(node, f"unsupported attribute .{node.attr}: only .T (transpose)")
        a = self.expr(node.value)
        if not a.shape:  # a scalar's transpose is itself
            return a
        return ir.Transpose(tuple(reversed(a.shape)), self.pos(node), a)

    def expr_Call(self, node: ast.Call) -> ir.Node:
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
            rule = RULES[name]
            defaults = dict(rule.params)
            args, kw = self.call_args(node, name, 1, defaults, positional_params=True)
            params = []
            for pname, _ in rule.params:
                value = kw[pname]
                if isinstance(value, ast.AST):
                    scalar = self.expr(value)
                    if not isinstance(scalar, ir.Scalar):
                        self.node_error(value, f"{name}'s {pname} must be a number or a const")
                    value = scalar.value
                params.append(sp.nsimplify(value) if isinstance(value, float) else value)
            return ir.Call(args[0].shape, self.pos(node), name, args[0], tuple(params))
        known = ", ".join([*activations(), "softmax", *REDUCTIONS, *self.funcs])
        self.node_error(node.func, f"unknown function {name!r}; known: {known}")

    def call_args(self, node, name, n_args, defaults, positional_params=False):
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

    def axis(self, node, value, shape) -> int:
        axis = value if isinstance(value, int) else self.int_literal(value, "axis")
        if not -len(shape) <= axis < len(shape):
            self.node_error(node, f"axis {axis} is out of range for shape {fmt_shape(shape)}")
        return axis % len(shape)

    def reduction(self, node: ast.Call, name: str) -> ir.Node:
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
        if axis is None:
            shape = tuple(sp.Integer(1) for _ in arg.shape) if keepdims else ()
        elif keepdims:
            shape = tuple(sp.Integer(1) if i == axis else d for i, d in enumerate(arg.shape))
        else:
            shape = tuple(d for i, d in enumerate(arg.shape) if i != axis)
        return ir.Reduce(shape, self.pos(node), name, arg, axis, keepdims)

    # -- shapes --------------------------------------------------------------
    def matmul_shape(self, node, a: ir.Node, b: ir.Node) -> ir.Shape:
        if not a.shape or not b.shape:
            self.node_error(
                node,
                "@ needs arrays on both sides, got a scalar "
                f"(shapes {fmt_shape(a.shape)} and {fmt_shape(b.shape)})",
            )
        inner_a = a.shape[-1]
        inner_b = b.shape[0]
        if inner_a != inner_b:
            self.node_error(
                node,
                f"shapes {fmt_shape(a.shape)} and {fmt_shape(b.shape)} do not "
                f"fit for @: {inner_a} != {inner_b}",
            )
        return tuple(a.shape[:-1]) + tuple(b.shape[1:])

    def broadcast(self, node, sa: ir.Shape, sb: ir.Shape) -> ir.Shape:
        out = []
        for i in range(1, max(len(sa), len(sb)) + 1):
            da = sa[-i] if i <= len(sa) else sp.Integer(1)
            db = sb[-i] if i <= len(sb) else sp.Integer(1)
            if da == db or db == 1:
                out.append(da)
            elif da == 1:
                out.append(db)
            else:
                self.node_error(
                    node,
                    f"shapes {fmt_shape(sa)} and {fmt_shape(sb)} do not broadcast: {da} != {db}",
                )
        return tuple(reversed(out))


def fmt_shape(shape: ir.Shape) -> str:
    if not shape:
        return "() (a scalar)"
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"
