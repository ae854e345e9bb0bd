"""derive: derive, prove and generate backpropagation.

A network's forward equations go in (a ``*.nn`` spec); every gradient comes
out, derived element-wise with SymPy, recovered as a matrix form
(``xᵀ δ``, ``δ Wᵀ ⊙ f'(u)``) and proven equal three ways.

>>> import derive
>>> d = derive.load("seed000")
>>> d.gradients["W"].text()
'∂L/∂W = xᵀ δu'
"""

from __future__ import annotations

from pathlib import Path

from .derivation import Derivation, Step, derive
from .errors import DerivationError, SpecError
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
]
__version__ = "0.1.0"


def load_network(source: str | Path) -> Network:
    """Parse a spec given as a path, a bundled name (``seed000``) or the spec text itself."""
    if isinstance(source, Path) or (
        isinstance(source, str) and "\n" not in source and "=" not in source
    ):
        path = Path(source)
        if path.is_file():
            return parse_file(path)
        specs = bundled()
        if str(source) in specs:
            return parse_file(specs[str(source)])
        raise SpecError(
            f"no spec file or bundled spec named {str(source)!r}; bundled: {', '.join(specs)}",
            str(source),
            1,
            1,
        )
    return parse(source, file="<text>", name="spec")


def load(source: str | Path) -> Derivation:
    """Parse and derive: ``derive.load("seed000").gradients["W"].matrix``."""
    return derive(load_network(source))
