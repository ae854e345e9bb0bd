"""The Jinja environment that renders generated modules from ``codegen/templates``.

Autoescape is off on purpose: it renders Python source, not HTML; every piece
of spec text reaches a template only through the escaping filters below
(:mod:`codegen.text`).
"""

from __future__ import annotations

import jinja2

from .text import comment, comment_lines, doc, number

ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("codegen", "templates"),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
    autoescape=False,  # noqa: S701 - renders Python source, not HTML
)


def pytuple(items) -> str:
    """A tuple of strings as ruff formats it: ("a", "b") and ("a",)."""
    inner = ", ".join(f'"{x}"' for x in items)
    return f"({inner},)" if len(items) == 1 else f"({inner})"


ENV.filters["pytuple"] = pytuple
ENV.filters["comment"] = comment
ENV.filters["comment_lines"] = comment_lines
ENV.filters["doc"] = doc
ENV.filters["number"] = number
ENV.filters["pykey"] = lambda names: (
    f"({names[0]},)" if len(names) == 1 else f"({', '.join(names)})"
)
