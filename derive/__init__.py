"""derive: derive, prove and generate backpropagation.

A network's forward equations go in (a ``*.nn`` spec); every gradient comes
out, derived element-wise with SymPy, recovered as a matrix form
(``xᵀ δ``, ``δ Wᵀ ⊙ f'(u)``) and proven equal three ways.

>>> import derive
>>> d = derive.load("seed000")
>>> d.gradients["W"].text()
'∂L/∂W = xᵀ δu'

The package imports SymPy only when a name that needs it is first used, so
that the command starts (and answers Ctrl-C) at once.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import DerivationError, SpecError

if TYPE_CHECKING:  # pragma: no cover - the names the lazy imports below provide
    from .derivation import Derivation, Step, derive
    from .ir import Network
    from .spec import bundled, parse, parse_file

__all__ = [
    "load",
    "load_network",
    "derive",
    "Derivation",
    "Step",
    "Network",
    "SpecError",
    "DerivationError",
    "bundled",
    "parse",
    "parse_file",
]
__version__ = "0.1.0"

_LAZY = {
    "derive": "derivation",
    "Derivation": "derivation",
    "Step": "derivation",
    "Network": "ir",
    "bundled": "spec",
    "parse": "spec",
    "parse_file": "spec",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def load_network(source: str | Path) -> Network:
    """Parse a spec given as a path, a bundled name (``seed000``) or the spec text itself.

    Text is anything with more than one line (a spec needs a declaration
    and an equation); a one-line string is always a path or a bundled name,
    even if it holds ``=``.
    """
    from .spec import bundled, parse, parse_file

    if isinstance(source, str) and ("\n" in source or "\r" in source):
        return parse(source, file="<text>", name="spec")
    try:
        is_file = Path(source).is_file()
    except (OSError, ValueError):  # a NUL or an over-long name: not a file
        is_file = False
    if is_file:
        return parse_file(source)
    specs = bundled()
    if str(source) in specs:
        return parse_file(specs[str(source)])
    raise SpecError(
        f"no spec file or bundled spec named {str(source)!r}; bundled: {', '.join(specs)}",
        str(source),
        1,
        1,
    )


def load(source: str | Path) -> Derivation:
    """Parse and derive: ``derive.load("seed000").gradients["W"].matrix``."""
    from .derivation import derive

    return derive(load_network(source))
