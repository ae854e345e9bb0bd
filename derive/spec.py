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
against a whitelist (:class:`~derive.expressions.ExpressionReader`); user
text never reaches ``eval``, ``exec`` or ``sympify``.  Lines end at ``\\n``,
``\\r\\n`` or ``\\r`` only, and line numbers count exactly those; a comment's
content is never code.  Names are compared after NFKC normalisation, as
Python's own parser does; a name not written in that form (``µ`` for
``μ``) is refused.  Every problem,
including a spec beyond the limits of :mod:`derive.limits`, raises
:class:`~derive.errors.SpecError` with file, line, column and what was
expected.
"""

from __future__ import annotations

import ast
import keyword
import re
import unicodedata
from pathlib import Path
from typing import cast

import sympy as sp

from . import ir
from .errors import SpecError
from .expressions import REDUCTIONS, ExpressionReader, char_col, fmt_shape
from .limits import (
    MAX_CALL_NESTING,
    MAX_EQUATIONS,
    MAX_LINE_CHARS,
    MAX_LITERAL_DIM,
    MAX_NAMES,
    MAX_SPEC_CHARS,
    MAX_TOTAL_NODES,
)
from .loopspec import LoopReader
from .rules import RULES

MAX_RANK = 6  # axes of a declared array
DECL_KEYWORDS = ("input", "target", "param", "const", "func")
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
    "labels",
    "range",
    "maximum",
    "minimum",
    "log_softmax",
    "logsumexp",
    "max",
    "min",
    "var",
    "std",
    "where",
    "axis",
    "einsum",
    "concatenate",
    "reshape",
    "swapaxes",
    "transpose",
    "keepdims",
    *REDUCTIONS,
    *DECL_KEYWORDS,
    *RULES,
}
RESERVED_PREFIXES = ("delta_", "grad_", "_")

SPECS_DIR = Path(__file__).parent / "specs"
_LINE_END = re.compile(r"\r\n|\r|\n")
_DECLARATION = re.compile(r"(input|target|param|const|func)\b(?!\s*=)\s*")
_WORD = re.compile(r"\w+")

__all__ = [
    "parse",
    "parse_file",
    "bundled",
    "split_lines",
    "SpecParser",
    "DeclarationReader",
    "ExpressionReader",
    "fmt_shape",
    "RESERVED",
    "RESERVED_PREFIXES",
]


def bundled() -> dict[str, Path]:
    """The bundled example specs, by name."""
    return {p.stem: p for p in sorted(SPECS_DIR.glob("*.nn"))}


def _byte_position(data: bytes, offset: int) -> tuple[int, int]:
    """The 1-based line and column (in characters of the valid text before it) of a byte."""
    before = data[:offset]
    line_start = before.rfind(b"\n") + 1
    col = len(before[line_start:].decode("utf-8", errors="replace")) + 1
    return before.count(b"\n") + 1, col


def parse_file(path: str | Path) -> ir.Network:
    """Read and parse a spec file (UTF-8)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(f"cannot read spec: {exc.strerror or exc}", str(path), 1, 1) from None
    except UnicodeDecodeError as exc:
        line, col = _byte_position(exc.object, exc.start)
        raise SpecError(
            f"spec is not UTF-8 text (byte {exc.start}: {exc.object[exc.start]:#04x})",
            str(path),
            line,
            col,
        ) from None
    except ValueError as exc:  # an embedded NUL in the path
        raise SpecError(f"cannot read spec: {exc}", repr(str(path)), 1, 1) from None
    return parse(text, file=str(path), name=path.stem)


def parse(text: str, file: str = "<spec>", name: str | None = None) -> ir.Network:
    """Parse spec text; ``file`` is what error messages call it."""
    return SpecParser(text, file, name or Path(file).stem).run()


def split_lines(text: str) -> list[str]:
    """The lines of a spec, split at ``\\n``, ``\\r\\n`` and ``\\r`` only.

    ``str.splitlines`` also splits at U+2028, form feeds and others, which
    would let a comment hide a line of code; error messages count lines
    this same way.
    """
    return _LINE_END.split(text)


class DeclarationReader(ExpressionReader):
    """Declarations: ``input``/``target``/``param`` arrays, ``const`` scalars, ``func`` names.

    Every declared name is checked (written in NFKC form, an identifier, not
    reserved, not taken, within :data:`~derive.limits.MAX_NAMES`) and
    recorded with its position.
    """

    def __init__(self, text: str = "", file: str = "<spec>", name: str = "spec"):
        super().__init__(text, file, name)
        self.func_pos: dict[str, tuple[int, int]] = {}
        self.later_consts: list[tuple[str, int, int]] = []  # bernoulli(p) before const p

    def check_new_name(self, name: str, col: int) -> None:
        """A name that may be declared here: an identifier, not reserved, not taken."""
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
        arrays = sum(q.kind != "intermediate" for q in self.quantities.values())
        if arrays + len(self.consts) + len(self.dims) + len(self.funcs) >= MAX_NAMES:
            self.error(f"too many declarations: at most {MAX_NAMES} names", col)

    def declaration(self, kind: str, rest: str, col: int) -> None:
        """A declaration line: ``func``, ``const`` or a kind of quantity."""
        if not rest:
            self.error(f"expected a name after {kind!r}", col)
        if kind == "func":
            self.func_declaration(rest, col)
        elif kind == "const":
            self.const_declaration(rest, col)
        else:
            self.array_declaration(kind, rest, col)

    def func_declaration(self, rest: str, col: int) -> None:
        """Names declared as generic functions by ``func f, g``."""
        for m in re.finditer(r"[^,\s]+", rest):
            name = m.group()
            self.check_new_name(name, col + m.start())
            self.funcs.append(name)
            self.func_pos[name] = (self.line_no, col + m.start() + 1)

    def const_declaration(self, rest: str, col: int) -> None:
        """Names declared by ``const a, b = 0.5``, with optional defaults."""
        for m in re.finditer(r"[^,]+", rest):
            part = m.group()
            start = col + m.start() + len(part) - len(part.lstrip())
            name, _, default = (s.strip() for s in part.partition("="))
            self.check_new_name(name, start)
            self.consts[name] = self.const_default(name, default, start) if default else None
            self.const_symbols[name] = sp.Symbol(name, real=True)

    def const_default(self, name: str, default: str, col: int) -> float:
        """The default value of const ``name``: a finite number."""
        try:
            value = float(default)
        except ValueError:
            self.error(f"expected a number as the default of const {name!r}, got {default!r}", col)
        if not abs(value) <= 1e12:
            self.error(
                f"the default of const {name!r} must be a finite number of magnitude at most "
                f"1e12, got {default!r}",
                col,
            )
        return value

    def array_declaration(self, kind: str, rest: str, col: int) -> None:
        """``input x[B, n], y[n]``, ``target t[B, k] onehot(axis=1)``, ``param W[n, k]``."""
        onehot_axis = classes_node = None
        if kind == "target":
            m = re.search(r"\bonehot\b(\s*\(.*\))?\s*$", rest)
            if m:
                onehot_axis = self.onehot(m.group(1), col + m.start())
                rest = rest[: m.start()].rstrip()
            m = re.search(r"\blabels\b(\s*\(.*\))?\s*$", rest)
            if m:
                classes_node = self.labels_count(m.group(1), col + m.start())
                rest = rest[: m.start()].rstrip()
        rows_node = keep_node = None
        if kind == "input":
            rest, rows_node, keep_node = self.input_marker(rest, col)
        self.code, self.base_col = rest, col
        tree = self.parse_ast(rest)
        items = tree.elts if isinstance(tree, ast.Tuple) else [tree]
        for item in items:
            if not (isinstance(item, ast.Subscript) and isinstance(item.value, ast.Name)):
                self.node_error(item, f"expected NAME[dim, ...] after {kind!r}")
            name = item.value.id
            item_col = col + char_col(rest, item.col_offset)
            self.check_new_name(name, item_col)
            dims = item.slice.elts if isinstance(item.slice, ast.Tuple) else [item.slice]
            if not 1 <= len(dims) <= MAX_RANK:
                self.node_error(
                    item, f"{name!r} must have 1 to {MAX_RANK} dimensions, got {len(dims)}"
                )
            shape = tuple(self.dim(d) for d in dims)
            axis = None
            if onehot_axis is not None:
                if not -len(shape) <= onehot_axis < len(shape):
                    self.error(
                        f"onehot axis {onehot_axis} is out of range for {name!r} "
                        f"of shape {fmt_shape(shape)}",
                        item_col,
                    )
                axis = onehot_axis % len(shape)
            pos = (self.line_no, item_col + 1)
            classes = None
            if classes_node is not None:
                if len(shape) != 1:
                    self.error(
                        f"class labels {name!r} must be 1-D (one label per example), "
                        f"got shape {fmt_shape(shape)}",
                        item_col,
                    )
                classes = classes_node
            if rows_node is not None:
                classes = rows_node  # an index input: the rows of the table it indexes
            self.quantities[name] = ir.Quantity(
                name, cast(ir.QuantityKind, kind), shape, pos, axis, classes, keep_node
            )

    def input_marker(self, rest: str, col: int) -> tuple[str, sp.Expr | None, sp.Expr | None]:
        """``index(V)`` (integer indices into a table of ``V`` rows) or ``bernoulli(p)``
        (a random 0/1 mask, 1 with probability ``p``) after an input's shape.

        Returns the declaration without the marker, the table's rows and the probability.
        """
        m = re.search(r"\b(index|bernoulli)\b(\s*\(.*\))?\s*$", rest)
        if not m:
            return rest, None, None
        marker, args, at = m.group(1), m.group(2), col + m.start()
        self.code, self.base_col = marker + (args or ""), at
        call = self.parse_ast(self.code) if args else None
        if not isinstance(call, ast.Call) or len(call.args) != 1 or call.keywords:
            what = "the rows V of the table" if marker == "index" else "the keep probability p"
            self.error(f"expected '{marker}(...)' with one argument: {what}", at)
        if marker == "index":
            return rest[: m.start()].rstrip(), self.dim(call.args[0]), None
        arg = call.args[0]
        if isinstance(arg, ast.Name) and arg.id not in self.consts:  # a const declared below
            self.later_consts.append((arg.id, self.line_no, self.base_col + arg.col_offset))
            return rest[: m.start()].rstrip(), None, sp.Symbol(arg.id, real=True)
        p = self.expr(arg)
        if not isinstance(p, ir.Scalar) or p.value.free_symbols - set(self.const_symbols.values()):
            self.node_error(call.args[0], "the keep probability must be a number or a const")
        if p.value.is_number and not 0 < p.value <= 1:
            self.node_error(call.args[0], "the keep probability must be in (0, 1]")
        return rest[: m.start()].rstrip(), None, p.value

    def onehot(self, args: str | None, col: int) -> int:
        """The axis of a ``onehot(axis=…)`` marker (-1 when none is given)."""
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

    def labels_count(self, args: str | None, col: int) -> sp.Expr:
        """``labels(n)``: the number of classes, a dimension name or a positive integer."""
        self.code, self.base_col = "labels" + (args or ""), col
        call = self.parse_ast(self.code) if args else None
        if not isinstance(call, ast.Call) or len(call.args) != 1 or call.keywords:
            self.error("expected 'labels(n)': the number of classes n, a dimension", col)
        return self.dim(call.args[0])

    def dim(self, node: ast.expr) -> sp.Expr:
        """A dimension: a positive integer within the limit, or a name (declared on first use)."""
        if isinstance(node, ast.Constant) and type(node.value) is int and node.value >= 1:
            if node.value > MAX_LITERAL_DIM:
                self.node_error(
                    node,
                    f"literal dimension {node.value} exceeds the limit {MAX_LITERAL_DIM}; "
                    "use a dimension name (sizes are given when data is bound)",
                )
            return sp.Integer(node.value)
        if isinstance(node, ast.BinOp):
            return self.dim_arithmetic(node)
        if isinstance(node, ast.Name):
            name = node.id
            if name not in self.dims:
                if name in self.quantities or name in self.consts or name in self.funcs:
                    self.node_error(node, f"{name!r} is not a dimension")
                if name in RESERVED or name.startswith(RESERVED_PREFIXES):
                    self.node_error(node, f"{name!r} is reserved; choose another dimension name")
                self.dims[name] = sp.Symbol(name, integer=True, positive=True)
            return self.dims[name]
        self.node_error(
            node, "expected a dimension: a name, a positive integer, or + * / of dimensions"
        )

    def dim_arithmetic(self, node: ast.BinOp) -> sp.Expr:
        """``T * E``, ``4 * H``, ``Ha + Hb``, ``F * H * W / 4`` (a division that is exact)."""
        ops = {ast.Add: "+", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "/"}
        op = ops.get(type(node.op))
        if op is None:
            self.node_error(node, "expected a dimension: dims and integers with + * or /")
        a, b = self.dim(node.left), self.dim(node.right)
        if op == "/":
            if not (isinstance(b, sp.Integer) and b > 0):
                self.node_error(node.right, "a dimension can be divided by a positive integer only")
            value = a / b
            coeff, rest = a.as_coeff_Mul()
            # with dims in it, the size is checked when data is bound
            exact = coeff % b == 0 or bool(rest.free_symbols)
            if not exact or (value.is_number and not value.is_integer):
                self.node_error(node, f"{a} is not divisible by {b}")
            return value
        value = a + b if op == "+" else a * b
        if value.is_number and value > MAX_LITERAL_DIM:
            self.node_error(node, f"dimension {value} exceeds the limit {MAX_LITERAL_DIM}")
        return value


class SpecParser(DeclarationReader, LoopReader):
    """A whole spec: declarations, then equations, the last one the scalar loss."""

    def __init__(self, text: str, file: str = "<spec>", name: str = "spec"):
        super().__init__(text, file, name)
        self.equations: list[ir.Equation] = []
        self.total_nodes = 0  # names, numbers and operators over all equations so far

    # -- top level ---------------------------------------------------------
    def run(self) -> ir.Network:
        """Read the whole spec, line by line, into a network."""
        if len(self.text) > MAX_SPEC_CHARS:
            self.error(f"spec too long: at most {MAX_SPEC_CHARS} characters", 0, 1)
        for line_no, raw in enumerate(split_lines(self.text), start=1):
            self.line_no, self.line = line_no, raw
            self.statement(raw)
        return self.finish()

    def statement(self, raw: str) -> None:
        """One line: a declaration, an equation, or nothing (blank or comment)."""
        for n, ch in enumerate(raw):
            if "\ud800" <= ch <= "\udfff":
                self.error(f"not valid Unicode text: a lone surrogate U+{ord(ch):04X}", n)
        if len(raw) > MAX_LINE_CHARS:
            self.error(f"line too long: at most {MAX_LINE_CHARS} characters", MAX_LINE_CHARS)
        code = raw.split("#", 1)[0].rstrip()
        if not code.strip():
            return
        self.base_col = len(code) - len(code.lstrip())
        stripped = code.strip()
        self.code = stripped
        self.check_code(stripped)
        self.check_spelling(code)
        if self.loop_line(stripped):  # state, for and the loop's body (derive.loopspec)
            return
        m = _DECLARATION.match(stripped)
        if m:
            if self.equations:
                self.error("declarations must come before the equations", self.base_col)
            self.declaration(m.group(1), stripped[m.end() :], self.base_col + m.end())
        else:
            self.equation(stripped)

    def check_spelling(self, code: str) -> None:
        """Every name written in NFKC form, the form Python reads.

        ``ast`` reads ``µ`` (micro sign) as ``μ`` (mu) and ``ﬁ`` as ``fi``;
        a spelling that changes when read would make one name look like two
        (or two like one) between the spec, the printed forms and the keys of
        generated modules, so it is refused, naming the form to write.
        """
        for m in _WORD.finditer(code):
            word = m.group()
            normal = unicodedata.normalize("NFKC", word)
            if word.isidentifier() and normal != word:
                self.error(
                    f"{word!r} is written in a form Python reads as {normal!r}: "
                    f"write {normal!r} (names are compared in NFKC form)",
                    m.start(),
                )

    def finish(self) -> ir.Network:
        """The network, after the checks that need every line (a scalar loss last)."""
        if self.in_body:
            self.end_body()
        if not self.equations:
            self.error(
                "no equations: the last equation must define the scalar loss",
                0,
                max(self.line_no, 1),
            )
        loss = self.equations[-1]
        if loss.shape != ():
            self.error(
                f"the last equation defines the loss and must be a scalar, but {loss.name!r} "
                f"has shape {fmt_shape(loss.shape)}; sum or mean it",
                loss.pos[1] - 1,
                loss.pos[0],
            )
        for const, line, col in self.later_consts:
            if const not in self.consts:
                self.error(f"the keep probability {const!r} must be a number or a const", col, line)
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
            loop=self.loop,
        )
        deps = net.depends_on()[loss.name]
        for p in params:
            if p.name not in deps:
                self.error(
                    f"the loss {loss.name!r} does not depend on param {p.name!r}",
                    p.pos[1] - 1,
                    p.pos[0],
                )
        return net

    # -- equations -----------------------------------------------------------
    def equation(self, code: str) -> None:
        """``NAME = expression``: a new intermediate, the last one the loss."""
        if len(self.equations) >= MAX_EQUATIONS:
            self.error(f"too many equations: at most {MAX_EQUATIONS}", self.base_col)
        self.code = code
        hint = "; expected NAME = expression or a declaration (input, target, param, const, func)"
        tree = cast(ast.Module, self.parse_ast(code, mode="exec", hint=hint))
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
            kind = self.quantities[name].kind
            what = "assigned twice" if kind == "intermediate" else f"declared as {kind}"
            self.node_error(target, f"{name!r} is {what}; each name is assigned once")
        self.check_new_name(name, self.base_col + char_col(code, target.col_offset))
        self.check_work(stmt.value)
        expr = self.expr(stmt.value)
        pos = (self.line_no, self.base_col + 1)
        self.equations += self.hidden  # argmax positions max(x, axis) reads, computed first
        self.hidden = []
        self.quantities[name] = ir.Quantity(name, "intermediate", expr.shape, pos)
        self.equations.append(ir.Equation(name, expr, pos))

    def check_work(self, value: ast.expr) -> None:
        """:data:`MAX_CALL_NESTING` and :data:`MAX_TOTAL_NODES` (checked without recursion).

        SymPy's work grows with both: asking whether ``tanh(...)`` is real
        takes the real and imaginary parts of its argument, so each function
        around a ``log`` or a fractional power doubles it; and every equation
        adds its own terms to the sweep.
        """
        stack: list[tuple[ast.AST, int]] = [(value, 0)]
        while stack:
            node, calls = stack.pop()
            if isinstance(node, ast.Call):
                calls += 1
                if calls > MAX_CALL_NESTING:
                    self.node_error(
                        node,
                        f"functions nested too deeply: at most {MAX_CALL_NESTING} calls "
                        "inside one another in one equation; name the inner part in an "
                        "equation of its own",
                    )
            if isinstance(node, ast.expr):
                self.total_nodes += 1
            stack.extend((child, calls) for child in ast.iter_child_nodes(node))
        if self.total_nodes > MAX_TOTAL_NODES:
            self.node_error(
                value,
                f"spec too large: at most {MAX_TOTAL_NODES} names, numbers and operators "
                "in all equations together",
            )


# The name ``derive.verify`` subclasses; new readers should use
# :class:`~derive.expressions.ExpressionReader` (expressions only) or
# :class:`SpecParser` (whole specs).
_Parser = SpecParser
_char_col = char_col
