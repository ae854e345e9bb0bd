"""derive: derive, prove and generate backpropagation.

A network's forward equations go in (a ``*.nn`` spec); every gradient comes
out, derived element-wise with SymPy, recovered as a matrix form
(``xᵀ δ``, ``δ Wᵀ ⊙ f'(u)``) and proven equal three ways.

>>> import derive
>>> d = derive.load("seed000")
>>> d.gradients["W"].text()
'∂L/∂W = xᵀ δu'

Every command has a Python function: :func:`load` (``derive grad``),
:func:`verify` (``derive verify``), ``codegen.generate`` (``derive gen``),
``codegen.train`` and ``codegen.evaluate`` (``derive train``, ``derive test``).

The names are imported on first use (PEP 562), so ``import derive`` (and
``derive --help``) does not load SymPy.
"""

from __future__ import annotations

import sys
import types
from typing import TYPE_CHECKING

from .errors import DerivationError, SpecError

if TYPE_CHECKING:  # pragma: no cover - for type checkers only
    from .api import Derivation, Verification, derive, load, load_network, verify
    from .derivation import Step
    from .ir import Network
    from .spec import bundled, parse, parse_file

__all__ = [
    "load",
    "load_network",
    "verify",
    "Verification",
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
    "load": "api",
    "load_network": "api",
    "Verification": "api",
    "derive": "api",
    "Derivation": "api",
    "Step": "derivation",
    "Network": "ir",
    "bundled": "spec",
    "parse": "spec",
    "parse_file": "spec",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _Package(types.ModuleType):
    """``derive.verify`` is the function, though a submodule of that name exists.

    Importing the submodule ``derive.verify`` makes the import system bind
    the attribute ``verify`` of this package to the module; the property
    keeps the function in its place (``from derive.verify import …`` reads
    ``sys.modules`` and is not affected).
    """

    @property
    def verify(self):
        from .api import verify

        return verify

    @verify.setter
    def verify(self, value) -> None:
        pass  # the submodule binding; ``derive.verify`` stays the function


sys.modules[__name__].__class__ = _Package
