"""Reading user text line by line with :mod:`ast`, safely: positions, guards, errors.

:class:`SourceReader` is what every reader of user text shares: it turns
``ast``'s UTF-8 byte offsets into the character columns users count,
refuses what would make ``ast`` choke or hide a line (NULs, lone
surrogates, U+2028 and the other line breaks Python's ``splitlines``
knows, deep nesting, over-long lines), catches every exception ``ast.parse``
can raise, and bounds the size and depth of the tree it returns.  Each
problem is a :class:`~derive.errors.SpecError` at ``file:line:col``.
"""

from __future__ import annotations

import ast
import warnings
from typing import NoReturn

from . import ir
from .errors import SpecError
from .limits import MAX_DEPTH, MAX_LINE_CHARS, MAX_NESTING, MAX_NODES

# characters that end a line for Python's ``str.splitlines`` but not for us:
# in code they are refused (they would hide a line), in comments they are text
ODD_LINE_BREAKS = "\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"


def char_col(line: str, byte_offset: int) -> int:
    """ast reports UTF-8 byte offsets; users count characters."""
    return len(line.encode("utf-8", "surrogatepass")[:byte_offset].decode("utf-8", "ignore"))


class SourceReader:
    """Where the text being read sits (file, line, column) and how to read it safely."""

    def __init__(self, text: str = "", file: str = "<spec>", name: str = "spec"):
        self.text = text
        self.file = file
        self.name = name
        self.line_no = 0
        self.base_col = 0  # column of ``code`` within its line
        self.line = ""
        self.code = ""  # the text ``ast`` offsets refer to

    # -- errors ------------------------------------------------------------
    def error(self, message: str, col: int | None = None, line: int | None = None) -> NoReturn:
        """Raise a :class:`SpecError` at ``col`` (0-based) of the current line."""
        raise SpecError(message, self.file, line or self.line_no, (col or 0) + 1)

    def node_error(self, node: ast.AST, message: str) -> NoReturn:
        """Raise a :class:`SpecError` at an ast node of :attr:`code`."""
        offset = getattr(node, "col_offset", 0)
        self.error(message, self.base_col + char_col(self.code, offset))

    def pos(self, node: ast.AST) -> ir.Pos:
        """The (line, column) of an AST node of the current line, 1-based, in characters."""
        offset = getattr(node, "col_offset", 0)
        return (self.line_no, self.base_col + char_col(self.code, offset) + 1)

    # -- reading text ------------------------------------------------------
    def check_code(self, code: str) -> None:
        """Refuse what ``ast`` would choke on or hide: odd line breaks, NULs, deep nesting."""
        if len(code) > MAX_LINE_CHARS:
            self.error(f"line too long: at most {MAX_LINE_CHARS} characters", self.base_col)
        depth = 0
        for n, ch in enumerate(code):
            if ch in ODD_LINE_BREAKS or ch == "\x00" or "\ud800" <= ch <= "\udfff":
                self.error(f"unexpected character U+{ord(ch):04X} in code", self.base_col + n)
            depth += (ch in "([{") - (ch in ")]}")
            if depth > MAX_NESTING:
                self.error(
                    f"parentheses nested too deeply: at most {MAX_NESTING} levels; "
                    "name parts of the expression in separate equations",
                    self.base_col + n,
                )

    def parse_ast(self, code: str, mode: str = "eval", hint: str = "") -> ast.AST:
        """``ast.parse`` guarded: every failure is a :class:`SpecError` at its column."""
        self.check_code(code)
        try:
            with warnings.catch_warnings():  # "invalid decimal literal" and the like
                warnings.simplefilter("ignore")
                tree = ast.parse(code, mode=mode)
        except SyntaxError as exc:
            msg = exc.msg + (hint if "statement" in exc.msg or "invalid syntax" in exc.msg else "")
            self.error(f"syntax error: {msg}", self.base_col + max((exc.offset or 1) - 1, 0))
        except (ValueError, UnicodeError, OverflowError, RecursionError, MemoryError) as exc:
            self.error(f"cannot read this line: {type(exc).__name__}", self.base_col)
        self.check_tree(tree)
        return tree.body if isinstance(tree, ast.Expression) else tree

    def check_tree(self, tree: ast.AST) -> None:
        """At most :data:`MAX_NODES` nodes, :data:`MAX_DEPTH` deep (checked without recursion)."""
        stack, count = [(tree, 0)], 0
        while stack:
            node, depth = stack.pop()
            if isinstance(node, ast.expr):
                depth += 1
                count += 1
                if depth > MAX_DEPTH:
                    self.node_error(
                        node,
                        f"expression nested too deeply: at most {MAX_DEPTH} levels; "
                        "name parts of it in separate equations",
                    )
                if count > MAX_NODES:
                    self.node_error(
                        node,
                        f"expression too long: at most {MAX_NODES} names, numbers and "
                        "operators in one equation; split it into several equations",
                    )
            stack.extend((child, depth) for child in ast.iter_child_nodes(node))
