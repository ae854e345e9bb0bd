"""NumPy modules and training for specs with a loop over time (``state``, ``for t in range(T):``).

The module (:file:`templates/recurrent.py.j2`) is rendered from derive's
printed statements: the forward loop, the equations after it with their
deltas, and the backward loop (:meth:`derive.loops.Recurrence.backward_code`).
Every name in them is the spec's (checked by :func:`codegen.names.check_names`
against the names the template claims) or the loop body's (``x_t``,
``h_prev``, ``dh_t``), which the parser keeps apart from the spec's.
"""

from __future__ import annotations

import functools
import re

import sympy as sp

import derive
from derive import ir
from derive.errors import SpecError
from derive.forms import Einsum

from . import render
from .kernels import kernel_source
from .names import check_names, names_of_template, nfkc, spec_names
from .printer import CodePrinter, LogSoftmax, kernel_names, stabilise

SENTINEL_SPEC = """input x[T, B, V]
param spec_name_sentinel[V, H], h0[B, H]
state h[T, B, H] = h0
for t in range(T):
    h[t] = tanh(x[t] @ spec_name_sentinel + h[t - 1])
L = sum(h)
"""


def generate(source, dtype: str = "float64") -> str:
    """The module's source for a spec with a loop (path, bundled name or text)."""
    net = derive.load_network(source)
    if net.loop is None:
        raise SpecError("this spec has no loop over time", net.file, 1, 1)
    check_names(net, claimed_names(), "module")
    _check_body_names(net)
    return render("recurrent.py.j2", context(net, dtype))


@functools.cache
def claimed_names() -> frozenset:
    """The names the template claims (module level, and locals beside spec names)."""
    net = derive.load_network(SENTINEL_SPEC)
    source = render("recurrent.py.j2", context(net, "float64"))
    assert net.loop is not None
    own = {*spec_names(net), *net.loop.quantities, "d" + "h_t", "h_t_in", net.loop.var}
    return frozenset(n for n in names_of_template(lambda s: [source]) if n not in own)


def _check_body_names(net: ir.Network) -> None:
    """The loop body's own names (``x_t``, ``h_prev``) clear of the template's too."""
    assert net.loop is not None
    claimed = claimed_names()
    for name in net.loop.quantities:
        if nfkc(name) in claimed:
            line, col = net.loop.pos
            raise SpecError(
                f"the loop's name {name!r} is one the generated module uses for itself; "
                "rename the quantity it comes from",
                net.file,
                line,
                col,
            )


def _dim_sources(net: ir.Network) -> list[tuple[str, str, int]]:
    """For each dim, an input or param and the axis that holds it alone."""
    out, seen = [], set()
    for q in [*net.of_kind("input"), *net.of_kind("target"), *net.of_kind("param")]:
        for axis, d in enumerate(q.shape):
            if d.is_Symbol and str(d) not in seen:
                seen.add(str(d))
                out.append((str(d), q.name, axis))
    return out


def _shape_code(shape) -> str:
    from derive.forms import size_code

    items = [size_code(d) for d in shape]
    return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"


def context(net: ir.Network, dtype: str) -> dict:
    """The template's context: names, shapes, the printed statements and the kernels."""
    rec = derive.derive(net)
    assert net.loop is not None
    initial = set(net.loop.initial.values())
    params = list(net.params)
    inputs = [*net.of_kind("input"), *net.of_kind("target")]
    inits = [
        (
            p.name,
            _shape_code(p.shape),
            None if p.name in initial or len(p.shape) < 2 else _fan_in(p),
        )
        for p in params
    ]
    printer = CodePrinter()
    outer, forms = _outer(rec.outer, printer)  # type: ignore[attr-defined]
    backward = rec.backward_code(printer, with_forward=True, out_calls=True)  # type: ignore[attr-defined]
    used = kernel_names([*rec.forms(), *forms])  # type: ignore[attr-defined]
    if any(", " in name for name, _ in outer):
        used.add("softmax_and_log")
    return {
        "spec_name": net.name,
        "source": net.source,
        "dtype": dtype,
        "params": [(p.name, tuple(str(d) for d in p.shape)) for p in params],
        "inputs": [(q.name, tuple(str(d) for d in q.shape)) for q in inputs],
        "loss": net.loss,
        "dim_names": [str(d) for d in net.dims],
        "inits": inits,
        "param_names": [p.name for p in params],
        "input_names": [q.name for q in inputs],
        "dims": _dim_sources(net),
        "forward": rec.forward_code(printer, out_calls=True, read=_read(outer, backward)),  # type: ignore[attr-defined]
        "outer": outer,
        "backward": backward,
        "kernels": [kernel_source(k) for k in sorted(used)],
    }


def _read(outer: list[tuple[str, str]], backward: str) -> set[str]:
    """Every name the code after the forward loop mentions (a superset of what it reads)."""
    return set(re.findall(r"[A-Za-z_]\w*", backward + "\n".join(code for _, code in outer)))


def _outer(d, printer) -> tuple[list[tuple[str, str]], list]:
    """The equations after the loop (their stable forms), their deltas and gradients."""
    from derive.forms import forward_form, numpy_code

    defs = {eq.name: forward_form(eq.expr) for eq in d.network.equations}
    stable = {name: stabilise(form, defs, einsums=True) for name, form in defs.items()}
    paired = _softmax_pairs(defs, stable)
    code = []
    for eq in d.network.equations:
        if eq.name in paired.values():
            continue  # computed with its softmax, above
        if eq.name in paired:  # p and log p from one exp, where p's line was
            log = stable[paired[eq.name]]
            pair = f"softmax_and_log({printer.doprint(log.arg)}, axis={log.axis})"
            code.append((f"{eq.name}, {paired[eq.name]}", pair))
            continue
        code.append((eq.name, numpy_code(stable[eq.name], eq.shape, printer)))
    steps = [*d.steps, *d.gradients.values()]
    code += [(s.symbol, numpy_code(s.matrix, s.shape, printer)) for s in steps]
    return code, [f for name, f in stable.items() if name not in paired.values()]


def _softmax_pairs(defs: dict, stable: dict) -> dict[str, str]:
    """``{p: log_p}`` for each softmax ``p`` whose log a later equation reads whole.

    Both come out of one kernel call (one exp over the scores instead of an exp
    and a log): the log-softmax ``stabilise`` made of ``log(p)`` has ``p``'s
    own logits and axis.
    """
    out: dict[str, str] = {}
    for name, form in stable.items():
        original = defs[name]
        if not isinstance(form, LogSoftmax) or not isinstance(original, Einsum):
            continue
        arg = original.terms[0][0].args[0]
        source = str(arg.base) if isinstance(arg, sp.Indexed) else None
        if source is not None and source in defs and source not in out and name not in out.values():
            out[source] = name
    return out


def _fan_in(p: ir.Quantity) -> str:
    from derive.forms import size_code

    return size_code(p.shape[0])
