"""Spec names that would collide with a target module's own names are refused up front.

Spec names become Python identifiers in generated code (locals of its
functions).  A name the module defines or uses for itself (``torch``,
``DTYPE``, ``loss``, a kernel such as ``sigmoid``, a builtin it calls) would
be shadowed or would shadow it, so each target passes its set of own names
(the builtins it calls included)
and :func:`check_names` refuses any spec name among them, compared after
NFKC normalisation (Python identifiers are NFKC-normalised, so ``ｌｏｓｓ``
is ``loss``).  Temporaries use prefixes spec names cannot have (``delta_``,
``grad_``, ``_``: refused by the spec parser).
"""

from __future__ import annotations

import keyword
import unicodedata

from derive import ir
from derive.errors import SpecError

# names every target module uses inside its functions, besides its top-level names
COMMON = frozenset(
    {"params", "data", "dims", "seed", "name", "shape", "std", "limit", "self", "loss"}
)


def spec_names(net: ir.Network) -> dict[str, tuple[int, int]]:
    """Every name a spec brings into generated code, with where it is declared."""
    out: dict[str, tuple[int, int]] = {}
    for q in net.quantities.values():
        out.setdefault(q.name, q.pos)
    for eq in net.equations:
        out.setdefault(eq.name, eq.pos)
    for name in [*net.dims, *net.consts]:
        out.setdefault(name, (1, 1))
    return out


def check_names(net: ir.Network, reserved) -> None:
    """Refuse spec names equal (after NFKC) to one of ``reserved`` or to a keyword."""
    taken = {unicodedata.normalize("NFKC", n) for n in reserved}
    for name, (line, col) in spec_names(net).items():
        plain = unicodedata.normalize("NFKC", name)
        if plain in taken or keyword.iskeyword(plain) or not plain.isidentifier():
            raise SpecError(
                f"the name {name!r} is used by the generated module itself; choose another name",
                net.file,
                line,
                col,
            )
