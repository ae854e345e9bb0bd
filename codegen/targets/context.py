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


def framework_context(
    d: Derivation, dtype: str, source: str, spec_name: str, printer: ArrayPrinter
) -> dict:
    """The template context of a framework target (see the module docstring)."""
    net = d.network
    defs = {eq.name: forward_form(eq.expr) for eq in net.equations}
    stable = {name: stabilise(form, defs) for name, form in defs.items()}
    dims = list(net.dims)
    consts = list(net.consts)
    params = [p.name for p in net.params]
    inputs = [q.name for q in net.of_kind("input")]
    targets = [q.name for q in net.of_kind("target")]
    forward = [
        Line(
            eq.name,
            array_code(stable[eq.name], eq.shape, printer),
            f"{eq.name} = {text(defs[eq.name])}",
        )
        for eq in net.equations
    ]
    seed = sp.Symbol("grad_" + net.loss)
    steps = [*d.steps, *d.gradients.values()]
    backward = [
        Line(s.symbol, array_code(times_seed(s.matrix, seed), s.shape, printer), s.text())
        for s in d.steps
    ]
    grads = [
        Line("grad_" + p, array_code(times_seed(s.matrix, seed), s.shape, printer), s.text())
        for p, s in d.gradients.items()
    ]
    fwd_read = words(line.code for line in forward)
    bwd_read = words(line.code for line in [*backward, *grads])
    computed = {s.symbol for s in d.steps}
    # what the backward reads: arrays (saved), consts and dims (read from saved shapes)
    saved = [n for n in net.quantities if n in bwd_read and n not in computed]
    bwd_dims = [n for n in dims if n in bwd_read]
    for dim in bwd_dims:  # a dim no saved array has: save an array that has it
        if not any(dim in map(str, net.quantities[n].shape) for n in saved):
            saved.append(
                next(q for q in net.quantities if dim in map(str, net.quantities[q].shape))
            )
    arrays = [*params, *inputs, *targets]
    dim_sources = {}
    for name in [*inputs, *params, *targets]:
        for axis, dim in enumerate(net.quantities[name].shape):
            if isinstance(dim, sp.Symbol) and str(dim) not in dim_sources:
                dim_sources[str(dim)] = (net.quantities[name].kind, name, axis)
    fwd_dims = [n for n in dims if n in fwd_read]
    return {
        "spec_name": spec_name,
        "source": source.rstrip(),
        "derived": [s.text() for s in steps],
        "dtype": dtype,
        "params": [(p.name, [str(x) for x in p.shape]) for p in net.params],
        "inputs": [(q.name, [str(x) for x in q.shape]) for q in net.of_kind("input")],
        "targets": [(q.name, [str(x) for x in q.shape]) for q in net.of_kind("target")],
        "consts": list(net.consts.items()),
        "dims": dims,
        "dim_sources": dim_sources,
        "loss": net.loss,
        "seed": str(seed),
        "arg_names": [*arrays, *consts],
        "param_names": params,
        "data_names": [*inputs, *targets],
        "const_names": consts,
        "forward_dims": dim_lines(net, fwd_dims, arrays),
        "forward": forward,
        "saved": saved,
        "saved_consts": [c for c in consts if c in bwd_read],
        "backward_dims": dim_lines(net, bwd_dims, saved),
        "backward": backward,
        "grads": grads,
        "kernels": sorted(kernel_names([*stable.values(), *(s.matrix for s in steps)])),
        "inits": init_rules(net),
    }
