"""Text that reaches generated source: escaped so that it stays comment or docstring text.

User text (a spec's lines and comments, its file name) reaches a generated
module only through these functions: as ``#`` comment lines that end where
the source line ends, or as docstring lines with every backslash, quote and
unprintable character escaped.  Numbers are printed with ``repr``.
"""

from __future__ import annotations

import math
import re

__all__ = ["comment", "comment_lines", "doc", "escape", "number"]


def escape(text: str) -> str:
    """``text`` with every character that is not printable written as its escape.

    Line and paragraph separators, form feeds, bidirectional controls, lone
    surrogates, NUL: none reaches generated source as itself.
    """
    return "".join(c if c.isprintable() else _escape_char(c) for c in text)


def _escape_char(c: str) -> str:
    o = ord(c)
    return f"\\x{o:02x}" if o < 0x100 else f"\\u{o:04x}" if o < 0x10000 else f"\\U{o:08x}"


def comment(text: str) -> str:
    """One ``#`` comment line holding ``text``: it ends where the source line ends."""
    return ("# " + escape(text)).rstrip()


def comment_lines(source: str) -> list[str]:
    """The spec text as ``#`` lines, split where Python's tokenizer ends a line."""
    lines = ["# Spec:", "#"]
    for line in re.split(r"\r\n|\r|\n", source.rstrip()):
        lines.append(("#     " + escape(line)).rstrip())
    return lines


def doc(text: str) -> str:
    """``text`` for a line of a (non-raw) triple-quoted docstring: reads back as itself."""
    return escape(text.replace("\\", "\\\\").replace('"', '\\"'))


def number(value) -> str:
    """A const's default as a Python literal (None: the caller must give it)."""
    if value is None:
        return "None"
    value = float(value)
    if not math.isfinite(value):  # const_values refuses these first, with a position
        raise ValueError(f"not a finite number: {value}")
    return repr(value)
