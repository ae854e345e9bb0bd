"""One namespace per generated module: the names a spec may not take, and the check.

A generated module binds spec names as locals of its model functions
(``forward``, ``gradients``, ``bind_step`` …).  A spec name breaks the module
when it is also a name the module itself needs there: a module-level
definition (a function, a kernel, metadata such as ``DTYPE``), a builtin the
code calls (``float``), or a local the template introduces beside the spec's
(``buf``, ``ws``, ``step``).  Temporaries of the fused step use prefixes a
spec cannot have (``delta_``, ``grad_``, ``_``; ``derive.spec`` refuses them).

The list is not written by hand: :func:`module_names` renders the module
template with a sentinel name in every spec role and every kernel embedded,
and reads the names off Python's own symbol tables.  Names are compared after
NFKC normalisation, as Python compares identifiers (``ｆｌｏａｔ`` *is*
``float`` in source, ``ﬁ`` is ``fi``).
"""

from __future__ import annotations

import functools
import inspect
import re
import symtable
import unicodedata
from collections.abc import Callable, Iterable

from derive import ir
from derive.errors import SpecError

__all__ = ["RESERVED_PREFIXES", "check_names", "module_names", "names_of_template", "nfkc"]

RESERVED_PREFIXES = ("delta_", "grad_", "_")  # temporaries of generated code (spec refuses)
SENTINEL = "spec_name_sentinel"  # stands for every spec name in the skeleton module


def nfkc(name: str) -> str:
    """The identifier Python reads for ``name`` (PEP 3131: NFKC)."""
    return unicodedata.normalize("NFKC", name)


def names_of_template(
    render: Callable[[str], Iterable[str]], sentinel: str = SENTINEL
) -> frozenset:
    """The names a module template claims, from sources ``render(sentinel)`` gives.

    ``render`` returns one or more module sources in which ``sentinel`` takes
    every spec role.  A name is claimed when it is defined or read at module
    level, read as a global or builtin anywhere, or bound in a function whose
    scope also holds the sentinel (a function where spec names are locals).
    """
    claimed: set[str] = set()

    def visit(table: symtable.SymbolTable, top: bool) -> None:
        symbols = table.get_symbols()
        holds_spec = any(s.get_name() == sentinel for s in symbols)
        for s in symbols:
            if top or s.is_global() or (holds_spec and not s.is_imported()):
                claimed.add(s.get_name())
        for child in table.get_children():
            visit(child, False)

    for source in render(sentinel):
        visit(symtable.symtable(source, "<skeleton>", "exec"), True)
    claimed.discard(sentinel)
    return frozenset(claimed)


def _skeletons(sentinel: str) -> list[str]:
    """The module template rendered with ``sentinel`` in every role, each branch taken."""
    from .environment import env
    from .kernels import KERNELS
    from .model import Init, Line

    s = sentinel
    line = Line(s, s, "")
    base = {
        "step_preamble": [f"{s} = 0"],
        "step_lines": [f"{s} = {s}"],
        "step_buffers": {s: "(1,)"},
        "step_locals": {s: s},
        "step_key": [s],
        "forward_preamble": [f"{s} = 0"],
        "predict_preamble": [f"{s} = 0"],
        "backward_preamble": [f"{s} = 0"],
        "spec_name": "skeleton",
        "source": "",
        "dtype": "float64",
        "params": [(s, [s])],
        "inputs": [(s, [s])],
        "targets": [(s, [s])],
        "consts": [(s, 1.0), (s, None)],
        "dims": [s],
        "dim_sources": {s: ("input", s, 0)},
        "forward": [line],
        "predict": [line],
        "prediction": s,
        "loss": s,
        "backward": [line],
        "grads": [line],
        "derived": [],
        "inits": [Init(s, [s], "zeros"), Init(s, [s, s], "he", s), Init(s, [s, s], "glorot", s, s)],
        "kernels": [inspect.getsource(k) for k in KERNELS.values()],
        "batch_dim": s,
        "batch_axes": {s: 0},
        "indices": [],
        "masks": [],
        "flat_grads": [],
    }
    template = env().get_template("module.py.j2")
    # onehot, binary, regression, labels
    variants = [([(s, 1)], False, []), ([], True, []), ([], False, []), ([], False, [s])]
    out = [template.render(**base, onehot=o, binary=b, labels=y) for o, b, y in variants]
    # index inputs and dropout masks (issue 10): class_labels, mask, draw_masks, draw_mask
    masks = {"indices": [s], "masks": [(s, "1.0, (1,)")], "mask_preamble": []}
    return [*out, template.render(**{**base, **masks}, onehot=[], binary=False, labels=[])]


@functools.cache
def module_names() -> frozenset:
    """Every name a module from ``templates/module.py.j2`` claims (see the module doc)."""
    return names_of_template(_skeletons)


def position(net: ir.Network, name: str) -> tuple[int, int]:
    """Where ``name`` is declared or first written in the spec (line, column, 1-based)."""
    if name in net.quantities:
        return net.quantities[name].pos
    if name in net.func_pos:
        return net.func_pos[name]
    key = nfkc(name)
    for number, source_line in enumerate(net.source.splitlines(), 1):
        for word in re.finditer(r"\w+", source_line.split("#", 1)[0]):
            if nfkc(word.group()) == key:
                return number, word.start() + 1
    return 1, 1


def spec_names(net: ir.Network) -> list[str]:
    """Every name a spec defines: arrays, equations, consts, dims, generic functions."""
    # an "_" name is the engine's own (the argmax of max(x, axis)): the parser refuses it
    arrays = [q for q in net.quantities if not q.startswith("_")]
    return [*arrays, *net.consts, *(str(d) for d in net.dims), *net.funcs]


def check_names(net: ir.Network, claimed: frozenset | None = None, what: str = "module") -> None:
    """SpecError at the first spec name a generated module cannot hold.

    Refused: a word of the spec not written in NFKC form (Python would read
    ``µ`` as ``μ``, so the module's keys would differ from the spec's names), a
    name equal (after NFKC) to one the module claims (:func:`module_names`, or
    ``claimed``), one with a reserved prefix after NFKC, and two different
    names Python would read as one.
    """
    claimed = module_names() if claimed is None else claimed
    for number, source_line in enumerate(net.source.splitlines(), 1):
        for word in re.finditer(r"\w+", source_line.split("#", 1)[0]):
            key = nfkc(word.group())
            if key != word.group():  # µ, ﬁ, 𝑥: Python would read another name (a dict key differs)
                raise SpecError(
                    f"{word.group()!r} is written in a form Python reads as {key!r}: "
                    f"write {key!r} (names are compared in NFKC form)",
                    net.file,
                    number,
                    word.start() + 1,
                )
    seen: dict[str, str] = {}
    for name in dict.fromkeys(spec_names(net)):
        key = nfkc(name)
        line, col = position(net, name)
        if key in claimed or key.startswith(RESERVED_PREFIXES):
            same = "" if key == name else f" (Python reads it as {key!r})"
            raise SpecError(
                f"{name!r}{same} is a name the generated {what} uses for itself; "
                "choose another name",
                net.file,
                line,
                col,
            )
        if key in seen:
            raise SpecError(
                f"{name!r} and {seen[key]!r} are the same name to Python (NFKC {key!r}); "
                "rename one",
                net.file,
                line,
                col,
            )
        seen[key] = name
