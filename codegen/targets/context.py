"""What a framework module (PyTorch, JAX) holds, worked out from a derivation.

The forward lines print the forward forms (stabilised as in the NumPy
target: ``log_softmax``, ``softplus``); the backward lines print the derived
deltas and gradients, with the upstream gradient of the loss (``grad_L``
for a loss ``L``) folded into the terms that hold no delta: every adjoint
is linear in the loss's seed, so that scales everything downstream.  What
the backward reads is exactly what the forward saves.
"""

from __future__ import annotations

import re

import sympy as sp

from derive import Derivation, ir
from derive.forms import forward_form, text

from ..emit import scale_terms
from ..model import Line, init_rules
from ..printer import kernel_names, stabilise
from .printer import ArrayPrinter, array_code


def words(lines) -> set[str]:
    """The identifiers printed code lines mention (our printers' output, never user text)."""
    return {w for line in lines for w in re.findall(r"[^\W\d]\w*", line)}  # Unicode names too


def times_seed(form, seed: sp.Symbol):
    """``seed`` times an adjoint: only its terms without a delta (the loss's own) scale.

    The same walk as the NumPy step's (:func:`codegen.emit.scale_terms`): through
    sums and products, so ``(δa + x)/10`` scales its ``x``.
    """
    return scale_terms(form, seed)


def dim_lines(net: ir.Network, dims: list[str], arrays: list[str]) -> list[str]:
    """``B = X.shape[0]`` for each dim, read from the first of ``arrays`` that has it."""
    lines = []
    for d in dims:
        for name in arrays:
            shape = [str(s) for s in net.quantities[name].shape]
            if d in shape:
                lines.append(f"{d} = {name}.shape[{shape.index(d)}]")
                break
        else:  # callers pass arrays that cover every dim they ask for
            raise ValueError(f"no array among {arrays} has the dimension {d}")
    return lines


def dim_sources(net: ir.Network) -> dict:
    """Where each dimension is read from: ``{dim: (kind, array, axis)}``, inputs first."""
    out = {}
    for q in [*net.of_kind("input"), *net.of_kind("param"), *net.of_kind("target")]:
        for axis, dim in enumerate(q.shape):
            if isinstance(dim, sp.Symbol) and str(dim) not in out:
                out[str(dim)] = (q.kind, q.name, axis)
    return out


def stable_forms(net: ir.Network) -> tuple[dict, dict]:
    """(forward forms, their stable rewrites) of every equation, by name."""
    defs = {eq.name: forward_form(eq.expr) for eq in net.equations}
    return defs, {name: stabilise(form, defs) for name, form in defs.items()}


def common_context(d: Derivation, dtype: str, source: str, spec_name: str) -> dict:
    """The template context every target shares: docstring, metadata, init rules."""
    net = d.network
    shaped = {
        kind: [(q.name, [str(x) for x in q.shape]) for q in net.of_kind(kind)]
        for kind in ("param", "input", "target")
    }
    return {
        "spec_name": spec_name,
        "source": source.rstrip(),
        "derived": [s.text() for s in [*d.steps, *d.gradients.values()]],
        "dtype": dtype,
        "params": shaped["param"],
        "inputs": shaped["input"],
        "targets": shaped["target"],
        "consts": list(net.consts.items()),
        "dims": list(net.dims),
        "dim_sources": dim_sources(net),
        "loss": net.loss,
        "inits": init_rules(net),
        "param_names": [p.name for p in net.params],
        "const_names": list(net.consts),
        "label_names": [q.name for q in net.of_kind("target") if q.classes is not None],
    }


def _saved(net: ir.Network, d: Derivation, read: set[str]) -> tuple[list[str], list[str]]:
    """(the arrays the backward reads and the forward must save, the dims it reads):
    a dim no saved array has brings in an array that has it."""
    computed = {s.symbol for s in d.steps}
    saved = [n for n in net.quantities if n in read and n not in computed]
    dims = [n for n in net.dims if n in read]
    for dim in dims:
        if not any(dim in map(str, net.quantities[n].shape) for n in saved):
            saved.append(
                next(q for q in net.quantities if dim in map(str, net.quantities[q].shape))
            )
    return saved, dims


def framework_context(
    d: Derivation, dtype: str, source: str, spec_name: str, printer: ArrayPrinter
) -> dict:
    """The template context of a framework target (see the module docstring)."""
    net = d.network
    defs, stable = stable_forms(net)
    inputs = [q.name for q in net.of_kind("input")]
    targets = [q.name for q in net.of_kind("target")]
    arrays = [*(p.name for p in net.params), *inputs, *targets]
    forward = [
        Line(
            eq.name,
            array_code(stable[eq.name], eq.shape, printer),
            f"{eq.name} = {text(defs[eq.name])}",
        )
        for eq in net.equations
    ]
    seed = sp.Symbol("grad_" + net.loss)

    def line(name: str, s) -> Line:
        return Line(name, array_code(times_seed(s.matrix, seed), s.shape, printer), s.text())

    backward = [line(s.symbol, s) for s in d.steps]
    grads = [line("grad_" + p, s) for p, s in d.gradients.items()]
    bwd_read = words(x.code for x in [*backward, *grads])
    saved, bwd_dims = _saved(net, d, bwd_read)
    fwd_read = words(x.code for x in forward)
    steps = [*d.steps, *d.gradients.values()]
    return common_context(d, dtype, source, spec_name) | {
        "seed": str(seed),
        "arg_names": [*arrays, *net.consts],
        "data_names": [*inputs, *targets],
        "forward_dims": dim_lines(net, [n for n in net.dims if n in fwd_read], arrays),
        "forward": forward,
        "saved": saved,
        "saved_consts": [c for c in net.consts if c in bwd_read],
        "backward_dims": dim_lines(net, bwd_dims, saved),
        "backward": backward,
        "grads": grads,
        "kernels": sorted(
            kernel_names([*stable.values(), *(s.matrix for s in steps)])
            | getattr(printer, "extra_kernels", set())
        ),
    }
