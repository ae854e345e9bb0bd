"""Code targets beyond NumPy: PyTorch, JAX and Numba modules from the same derivation.

``generate_target(spec, target)`` renders one of the templates
``torch.py.j2``, ``jax.py.j2`` or ``numba.py.j2`` with the context
:mod:`codegen.targets.context` works out from a derivation; every
expression is printed by a printer subclass (:mod:`codegen.targets.printer`),
every spec name checked against the names the module uses (:mod:`codegen.names`),
and the result is parsed
with ``ast`` before it is returned.  ``--target numpy`` is
:func:`codegen.generate`.
"""

from __future__ import annotations

import ast
from pathlib import Path

from derive import ir
from derive.errors import SpecError

from .. import generate, prepare, render
from .context import framework_context
from .numba_context import numba_context
from .printer import JaxPrinter, TorchPrinter

__all__ = ["TARGETS", "generate_target"]

TARGETS = ("numpy", "torch", "jax", "numba")
HERE = Path(__file__).parent


def kernel_sources(path: Path, names) -> list[str]:
    """The source of the named top-level functions of ``path``, read with ``ast``, after
    the functions of the same file they call (``_exp``, ``sigmoid`` in ``silu``)."""
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    functions = {
        node.name: node for node in ast.parse(text).body if isinstance(node, ast.FunctionDef)
    }
    missing = [name for name in names if name not in functions]
    if missing:  # a rule added without this target's kernel (tests/test_rules.py says so too)
        raise SpecError(
            f"the {path.stem.removesuffix('_kernels')} target has no kernel for "
            f"{', '.join(missing)} yet (add it to codegen/targets/{path.name}); "
            "generate the numpy target",
            "<options>",
            1,
            1,
        )
    wanted = list(names)
    for name in wanted:  # grows while it is walked: the helpers of the helpers too
        for node in ast.walk(functions[name]):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                callee = node.func.id
                if callee in functions and callee != name and callee not in wanted:
                    wanted.append(callee)
    ordered = sorted(wanted, key=lambda n: functions[n].lineno)  # the file's order
    return [
        "\n".join(lines[min([f.lineno] + [d.lineno for d in f.decorator_list]) - 1 : f.end_lineno])
        for f in (functions[n] for n in ordered)
    ]


def _own_names(template: str, kernels_file: Path) -> set[str]:
    """The names a module from ``template`` defines or imports at top level (and the
    kernels it may embed): spec names may not take them."""
    names: set[str] = set()
    for node in ast.parse(kernels_file.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.FunctionDef):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names | OWN[template]


# names of each template's module (top level, and locals next to spec names)
_SHARED = (
    "DTYPE PARAMS INPUTS TARGETS CONSTS DIMS DIM_SOURCES LOSS init_params loss dims_of class_labels"
)
_LOCALS = "params data dims seed std limit shape"
OWN = {
    "torch": set(f"{_SHARED} {_LOCALS} DerivedLoss Model autograd_loss uniform generator".split()),
    "jax": set(f"{_SHARED} {_LOCALS} derived_loss autograd_loss key sub".split()),
    "numba": set(
        f"{_SHARED} {_LOCALS} BLAS_MIN NUMPY_MIN LABELS bind_step train_step step rng ws buf lr "
        "args arrays range max abs min float".split()
    ),
}


def generate_target(
    source,
    target: str = "numpy",
    dtype: str = "float64",
    bind: dict[str, str] | None = None,
    consts: dict[str, float] | None = None,
) -> str:
    """The source of a ``target`` module for a spec (path, bundled name or text)."""
    if target == "numpy":
        return generate(source, dtype=dtype, bind=bind, consts=consts)
    if target not in TARGETS:
        raise SpecError(
            f"unknown target {target!r}; expected one of {', '.join(TARGETS)}", "<options>", 1, 1
        )
    kernels_file = HERE / f"{target}_kernels.py"
    claimed = frozenset(_own_names(target, kernels_file))
    d, header, name, values = prepare(source, dtype, bind, consts, claimed, f"{target} module")
    _refuse_unsupported(target, d.network)
    if target == "numba":
        ctx = numba_context(d, dtype, header, name)
    else:
        printer = TorchPrinter() if target == "torch" else JaxPrinter()
        ctx = framework_context(d, dtype, header, name, printer)
    ctx["consts"] = list(values.items())
    ctx["kernel_sources"] = kernel_sources(kernels_file, ctx["kernels"])
    ctx["uses_math"] = any("math." in src for src in ctx["kernel_sources"])
    return render(f"{target}.py.j2", ctx)


def _refuse_unsupported(target: str, network: ir.Network) -> None:
    """One line for what the torch, jax and numba printers cannot write yet (issue 10)."""
    integer = [q for q in network.of_kind("input") if q.classes is not None or q.keep]
    if integer:  # issue 10: gathers and masks have no kernels in these targets yet
        q = integer[0]
        what, marker = (
            ("index inputs", "index(V)") if q.classes else ("bernoulli masks", "bernoulli(p)")
        )
        raise SpecError(
            f"the {target} target does not support {what} ({q.name} is declared "
            f"{marker}) yet; generate the numpy target",
            "<options>",
            1,
            1,
        )
    tensor = next((eq for eq in network.equations if ir.is_tensor(eq.expr)), None)
    if tensor is not None:  # issue 10: einsum forms have no printer in these targets yet
        raise SpecError(
            f"the {target} target does not support arrays of rank 3 or more, reshapes, "
            f"slices, concatenate or einsum ({tensor.name!r}) yet; generate the numpy target",
            "<options>",
            1,
            1,
        )
