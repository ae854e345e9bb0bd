"""The Jinja environment that renders generated modules from ``codegen/templates``.

Built on first use (:func:`env`): ``derive --help`` registers codegen's commands
without loading Jinja2, SymPy or NumPy.  Autoescape is off on purpose: it
renders Python source, not HTML; spec text reaches a template only through the
escaping filters of :mod:`codegen.text`.
"""

from __future__ import annotations

from functools import cache


@cache
def env():
    """The environment, built once."""
    # built on first use: `derive --help` registers this package's commands
    # without loading Jinja2, SymPy or NumPy
    import jinja2

    from .text import comment, comment_lines, doc, number

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("codegen", "templates"),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,  # noqa: S701 - renders Python source, not HTML
    )
    env.filters["pytuple"] = pytuple
    env.filters["comment"] = comment
    env.filters["comment_lines"] = comment_lines
    env.filters["doc"] = doc
    env.filters["number"] = number
    env.filters["pykey"] = lambda names: (
        f"({names[0]},)" if len(names) == 1 else f"({', '.join(names)})"
    )
    return env


def pytuple(items) -> str:
    """A tuple of strings as ruff formats it: ("a", "b") and ("a",)."""
    inner = ", ".join(f'"{x}"' for x in items)
    return f"({inner},)" if len(items) == 1 else f"({inner})"
