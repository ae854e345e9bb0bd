"""The spec language's recurrences: ``state`` declarations and a ``for t in range(T):`` body.

::

    input  x[T, B, D]
    param  Wx[D, H], Wh[H, H], b[H], h0[B, H]
    state  h[T, B, H] = h0          # h[t - 1] at t = 0 reads h0
    for t in range(T):
        h[t] = tanh(x[t] @ Wx + h[t - 1] @ Wh + b)
    L = sum(h ** 2)

A mixin of the spec parser: it reads the lines the loop owns (the ``state``
declarations, the ``for`` line and the indented body) into an
:class:`~derive.ir.Loop`, and resolves ``x[t]``, ``h[t - 1]``, ``a[t]`` in
the body to the body's own names (``x_t``, ``h_prev``, ``a_t``).  Lines are
parsed with :mod:`ast` and checked node by node, as every other line is.
"""

from __future__ import annotations

import ast
import re
from typing import cast

import sympy as sp

from . import ir
from .expressions import ExpressionReader, char_col, fmt_shape

_STATE = re.compile(r"state\b(?!\s*=)\s*")
_FOR = re.compile(r"for\b")
_STEP_FORMS = "NAME[t] or, for a state, NAME[t - 1]"


class LoopReader(ExpressionReader):
    """``state`` lines, the ``for`` line and the loop body (one loop a spec)."""

    def __init__(self, text: str = "", file: str = "<spec>", name: str = "spec"):
        super().__init__(text, file, name)
        self.loop: ir.Loop | None = None
        self.in_body = False
        self.loop_indent = 0
        self.states: dict[str, tuple[str, ir.Pos]] = {}  # state -> (initial value, where)

    equations: list[ir.Equation]  # the spec parser's, after the loop

    # The spec parser's (it lists this class after its declaration reader, so theirs win).
    def check_work(self, value: ast.expr) -> None:
        """The limits on one equation (:meth:`derive.spec.SpecParser.check_work`)."""
        raise NotImplementedError

    def check_new_name(self, name: str, col: int) -> None:
        """A name that may be declared (:meth:`derive.spec.DeclarationReader.check_new_name`)."""
        raise NotImplementedError

    def dim(self, node: ast.expr) -> sp.Expr:
        """A dimension (:meth:`derive.spec.DeclarationReader.dim`)."""
        raise NotImplementedError

    # -- lines -------------------------------------------------------------
    def loop_line(self, code: str) -> bool:
        """Read ``code`` if it is a line of the loop's (True), else leave it (False)."""
        if self.in_body:
            if self.base_col > self.loop_indent:
                self.body_line(code)
                return True
            self.end_body()
        m = _STATE.match(code)
        if m:
            self.state_declaration(code[m.end() :], self.base_col + m.end())
            return True
        if _FOR.match(code):
            self.loop_header(code)
            return True
        return False

    def state_declaration(self, rest: str, col: int) -> None:
        """``state h[T, B, H] = h0``: a stacked state and its value before the first step."""
        if self.loop is not None or self.equations:
            self.error("state declarations must come before the loop and the equations", col)
        self.code, self.base_col = rest, col
        tree = cast(
            ast.Module,
            self.parse_ast(rest, mode="exec", hint="; expected state NAME[T, ...] = INITIAL"),
        )
        stmt = tree.body[0] if len(tree.body) == 1 else None
        if not (
            isinstance(stmt, ast.Assign)
            and len(stmt.targets) == 1
            and isinstance(stmt.targets[0], ast.Subscript)
            and isinstance(stmt.targets[0].value, ast.Name)
            and isinstance(stmt.value, ast.Name)
        ):
            self.error("expected state NAME[T, dim, ...] = INITIAL (a declared array)", col)
        target, init = stmt.targets[0], stmt.value
        assert isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name)
        name = target.value.id
        self.check_new_name(name, col + char_col(rest, target.col_offset))
        dims = target.slice.elts if isinstance(target.slice, ast.Tuple) else [target.slice]
        if len(dims) < 2:
            self.node_error(target, f"state {name!r} needs the time axis first, then a step's axes")
        shape = tuple(self.dim(d) for d in dims)
        q = self.quantities.get(init.id)
        if q is None or q.kind not in ("param", "input"):
            self.node_error(init, f"expected a declared param or input as {name!r}'s initial value")
        if q.shape != shape[1:]:
            self.node_error(
                init,
                f"{init.id!r} has shape {fmt_shape(q.shape)}, but one step of state {name!r} "
                f"has shape {fmt_shape(shape[1:])}",
            )
        pos = (self.line_no, col + char_col(rest, target.col_offset) + 1)
        self.quantities[name] = ir.Quantity(name, "intermediate", shape, pos)
        self.states[name] = (init.id, pos)

    def loop_header(self, code: str) -> None:
        """``for t in range(T):``, after the states it updates."""
        self.code = code
        if not code.endswith(":"):
            self.error(
                "expected for t in range(T): alone on its line, the body indented below",
                self.base_col,
            )
        hint = "; expected for t in range(T):"
        tree = cast(ast.Module, self.parse_ast(code + "\n pass", mode="exec", hint=hint))
        stmt = tree.body[0]
        if self.loop is not None:
            self.node_error(stmt, "one loop a spec: this spec already has one")
        if self.equations:
            self.node_error(stmt, "the loop must come before the equations (after the states)")
        if not (
            isinstance(stmt, ast.For)
            and isinstance(stmt.target, ast.Name)
            and isinstance(stmt.iter, ast.Call)
            and isinstance(stmt.iter.func, ast.Name)
            and stmt.iter.func.id == "range"
            and len(stmt.iter.args) == 1
            and not stmt.iter.keywords
            and isinstance(stmt.iter.args[0], ast.Name)
            and not stmt.orelse
        ):
            self.node_error(stmt, "expected for t in range(T): with T a dimension")
        var, length = stmt.target.id, stmt.iter.args[0]
        if length.id not in self.dims:
            self.node_error(length, f"expected a dimension declared above, got {length.id!r}")
        self.check_new_name(var, self.base_col + char_col(code, stmt.target.col_offset))
        if not self.states:
            self.node_error(stmt, "declare the loop's states first: state h[T, ...] = h0")
        pos = (self.line_no, self.base_col + 1)
        loop = ir.Loop(var, self.dims[length.id], pos, {}, {}, {})
        for state, (init, where) in self.states.items():
            shape = self.quantities[state].shape
            if shape[0] != loop.length:
                self.error(
                    f"state {state!r} has shape {fmt_shape(shape)}: its first axis must be "
                    f"the loop's length {length.id}",
                    where[1] - 1,
                    where[0],
                )
            loop.initial[state] = init
            prev = self.body_name(state + "_prev", f"{state}[{var} - 1]", stmt, var)
            loop.previous[state] = prev
            loop.quantities[prev] = ir.Quantity(prev, "param", shape[1:], pos)
        self.loop, self.in_body, self.loop_indent = loop, True, self.base_col

    def body_name(self, name: str, what: str, node: ast.AST, var: str | None = None) -> str:
        """``name`` for ``what`` in the body, if the spec (or the loop variable) does not
        use it already."""
        var = var or (self.loop.var if self.loop else None)
        taken = name in self.quantities or name in self.consts or name in self.dims
        if taken or name in self.funcs or name == var:
            self.node_error(
                node, f"the loop calls {what} {name!r}, which the spec already defines; rename it"
            )
        return name

    def body_line(self, code: str) -> None:
        """``a[t] = expression``: a state's or a new stacked quantity's value at step t."""
        loop = self.loop
        assert loop is not None
        self.code = code
        tree = cast(
            ast.Module, self.parse_ast(code, mode="exec", hint="; expected NAME[t] = expression")
        )
        stmt = tree.body[0] if len(tree.body) == 1 else None
        target = stmt.targets[0] if isinstance(stmt, ast.Assign) else None
        if not (
            isinstance(stmt, ast.Assign)
            and len(stmt.targets) == 1
            and isinstance(target, ast.Subscript)
            and isinstance(target.value, ast.Name)
            and isinstance(target.slice, ast.Name)
            and target.slice.id == loop.var
        ):
            self.node_error(stmt or tree.body[0], f"expected NAME[{loop.var}] = expression")
        name = target.value.id
        step = name + "_t"
        q = self.quantities.get(name)
        if q is not None and q.kind != "intermediate":
            self.node_error(
                target, f"{name!r} is declared as {q.kind}; the loop assigns states and new names"
            )
        if step in loop.quantities:
            self.node_error(target, f"{name}[{loop.var}] is assigned twice in the loop")
        is_state = name in self.states
        if not is_state:
            self.check_new_name(name, self.base_col + char_col(code, target.col_offset))
            if name == loop.var:
                self.node_error(target, f"{name!r} is the loop variable; choose another name")
        self.body_name(step, f"{name}[{loop.var}]", target)
        self.body_name("d" + step, f"the adjoint flowing into {name}[{loop.var}]", target)
        self.check_work(stmt.value)
        expr = self.expr(stmt.value)
        if is_state and expr.shape != self.quantities[name].shape[1:]:
            self.node_error(
                stmt.value,
                f"state {name!r} has shape {fmt_shape(self.quantities[name].shape[1:])} at one "
                f"step, but this is {fmt_shape(expr.shape)}",
            )
        pos = (self.line_no, self.base_col + 1)
        loop.equations += self.hidden
        self.hidden = []
        loop.quantities[step] = ir.Quantity(step, "intermediate", expr.shape, pos)
        loop.stepped[step] = name
        loop.equations.append(ir.Equation(step, expr, pos))
        if not is_state:
            self.quantities[name] = ir.Quantity(
                name, "intermediate", (loop.length, *expr.shape), pos
            )

    def end_body(self) -> None:
        """Close the body: not empty, every state assigned."""
        loop = self.loop
        assert loop is not None
        self.in_body = False
        line, col = loop.pos
        if not loop.equations:
            self.error(
                "the loop has no body: expected indented NAME[t] = expression lines", col - 1, line
            )
        for state in self.states:
            if state + "_t" not in loop.quantities:
                self.error(
                    f"state {state!r} is not assigned in the loop: expected "
                    f"{state}[{loop.var}] = ...",
                    col - 1,
                    line,
                )

    # -- reading at one step -----------------------------------------------
    def stacked(self, name: str) -> bool:
        """Whether ``name`` is read one step at a time in the body."""
        loop = self.loop
        if loop is None or name not in self.quantities:
            return False
        q = self.quantities[name]
        if name in self.states or name + "_t" in loop.quantities:
            return True
        return q.kind == "input" and q.classes is None and q.shape[:1] == (loop.length,)

    def expr_Name(self, node: ast.Name) -> ir.Node:
        if self.in_body and self.stacked(node.id):
            var = self.loop.var if self.loop else "t"
            self.node_error(node, f"in the loop, read {node.id!r} at one step: {node.id}[{var}]")
        return super().expr_Name(node)

    def expr_Subscript(self, node: ast.Subscript) -> ir.Node:
        if not (self.in_body and isinstance(node.value, ast.Name) and self.stacked(node.value.id)):
            return super().expr_Subscript(node)
        loop = self.loop
        assert loop is not None
        name, index = node.value.id, node.slice
        if isinstance(index, ast.Name) and index.id == loop.var:
            step = name + "_t"
            if self.quantities[name].kind == "input":
                step = (
                    self.body_name(step, f"{name}[{loop.var}]", node)
                    if (step not in loop.quantities)
                    else step
                )
                shape = self.quantities[name].shape[1:]
                loop.quantities.setdefault(step, ir.Quantity(step, "input", shape, self.pos(node)))
                loop.stepped[step] = name
            elif step not in loop.quantities:
                hint = (
                    f"; use {name}[{loop.var} - 1] for the previous step"
                    if (name in self.states)
                    else ""
                )
                self.node_error(node, f"{name}[{loop.var}] is read before it is assigned{hint}")
            return ir.Ref(loop.quantities[step].shape, self.pos(node), step)
        if (
            isinstance(index, ast.BinOp)
            and isinstance(index.op, ast.Sub)
            and isinstance(index.left, ast.Name)
            and index.left.id == loop.var
            and isinstance(index.right, ast.Constant)
            and type(index.right.value) is int
            and index.right.value == 1
        ):
            if name not in self.states:
                self.node_error(node, f"only a state has a previous step; {name!r} is not one")
            prev = loop.previous[name]
            return ir.Ref(loop.quantities[prev].shape, self.pos(node), prev)
        self.node_error(node, f"in the loop, expected {_STEP_FORMS}")
