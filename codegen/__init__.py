"""codegen: standalone NumPy training modules from derive's proven matrix forms.

``generate(spec)`` renders :file:`templates/module.py.j2` (Jinja2,
``StrictUndefined``) with the context :mod:`codegen.model` works out from a
derivation; expressions are printed by :class:`codegen.printer.CodePrinter`.
The module imports only NumPy.  ``codegen`` imports ``derive``, never the
reverse.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import jinja2

import derive
from derive import derive as derive_network
from derive import ir
from derive.errors import SpecError
from derive.forms import RULES, activations

from .model import context

__all__ = ["generate", "parse_bindings", "write_atomic"]

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("codegen", "templates"),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
    autoescape=False,  # noqa: S701 - renders Python source, not HTML
)
DTYPES = ("float32", "float64")


def _pytuple(items) -> str:
    """A tuple of strings as ruff formats it: ("a", "b") and ("a",)."""
    inner = ", ".join(f'"{x}"' for x in items)
    return f"({inner},)" if len(items) == 1 else f"({inner})"


_ENV.filters["pytuple"] = _pytuple
_ENV.filters["pykey"] = lambda names: (
    f"({names[0]},)" if len(names) == 1 else f"({', '.join(names)})"
)


def generate(source, dtype: str = "float64", bind: dict[str, str] | None = None) -> str:
    """The source of a training module for a spec (path, bundled name or text)."""
    if dtype not in DTYPES:
        raise SpecError(
            f"unknown dtype {dtype!r}; expected one of {', '.join(DTYPES)}", "<options>", 1, 1
        )
    net = derive.load_network(source)
    bind = dict(bind or {})
    for name, fn in bind.items():
        if name not in net.funcs:
            raise SpecError(
                f"--bind {name}={fn}: the spec declares no generic function "
                f"{name!r} (it declares: {', '.join(net.funcs) or 'none'})",
                "<options>",
                1,
                1,
            )
        if fn not in RULES or RULES[fn].internal:
            line, col = net.func_pos[name]
            raise SpecError(
                f"--bind {name}={fn}: unknown function {fn!r}; known: {', '.join(activations())}",
                net.file,
                line,
                col,
            )
    unbound = [f for f in net.funcs if f not in bind]
    if unbound:
        line, col = net.func_pos[unbound[0]]
        raise SpecError(
            f"generic function{'s' if len(unbound) > 1 else ''} "
            f"{', '.join(unbound)} must be bound to generate code, e.g. "
            f"--bind {unbound[0]}=tanh",
            net.file,
            line,
            col,
        )
    spec_text = net.source
    net = ir.bind(net, bind)
    d = derive_network(net)
    header = spec_text
    if bind:
        header += "\n# bound: " + ", ".join(f"{k}={v}" for k, v in bind.items())
    return _ENV.get_template("module.py.j2").render(**context(d, dtype, header, net.name))


def parse_bindings(items: list[str]) -> dict[str, str]:
    """``["f=tanh", …]`` (the ``--bind`` options) as ``{"f": "tanh", …}``."""
    out = {}
    for item in items:
        name, sep, fn = item.partition("=")
        if not sep or not name.isidentifier() or not fn.isidentifier():
            raise SpecError(
                f"--bind expects NAME=FUNCTION (e.g. f=tanh), got {item!r}", "<options>", 1, 1
            )
        out[name] = fn
    return out


def write_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
