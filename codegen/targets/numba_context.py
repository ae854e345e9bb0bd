"""What a ``--target numba`` module holds: the fused step and the loss as loops.

The step is one compiled function: forward pass into named buffers, the
loss, the derived deltas and gradients (the learning rate folded into the
terms without a delta, as the NumPy target does), then the update
``p -= grad``; :mod:`codegen.targets.loops` lowers every form.  The init
and metadata are the NumPy target's.
"""

from __future__ import annotations

import sympy as sp

from derive import Derivation
from derive.errors import SpecError
from derive.forms import RULES, Vector, forward_form

from ..emit import np_shape
from ..model import init_rules
from ..printer import stabilise
from .context import times_seed, words
from .loops import I, J, LoopEmitter

LR = sp.Symbol("_lr")


def _symbol(name: str, form):
    """The buffer ``name`` holding ``form``, 1-D where NumPy's value would be."""
    return (
        Vector(name, *form.shape)
        if len(np_shape(form)) == 1
        else sp.MatrixSymbol(name, *form.shape)
    )


def shape_code(shape) -> str:
    """A NumPy shape as code reading the sizes from ``dims``: ``(dims["B"], 3)``."""
    items = [str(d) if d.is_Integer else f'dims["{d}"]' for d in shape]
    return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"


def _function(net, emitter: LoopEmitter, buffers: dict, consts: list[str], extra: list[str]):
    """(arguments, dim lines) of a compiled function whose body is ``emitter.lines``:
    the arrays and consts it reads, the arrays its dims are read from, then buffers."""
    read = words(emitter.lines)
    arrays = [p.name for p in net.params] + [
        q.name for q in net.quantities.values() if q.kind in ("input", "target")
    ]
    passed = [a for a in arrays if a in read]
    lines = []
    for d in (d for d in net.dims if d in read):
        source = next(a for a in passed + arrays if d in map(str, net.quantities[a].shape))
        if source not in passed:
            passed.append(source)
        shape = [str(x) for x in net.quantities[source].shape]
        lines.append(f"{d} = {source}.shape[{shape.index(d)}]")
    args = passed + [c for c in consts if c in read] + extra
    return args + list(buffers), lines


def numba_context(d: Derivation, dtype: str, source: str, spec_name: str) -> dict:
    """The template context of a ``--target numba`` module for derivation ``d``."""
    net = d.network
    for p in net.params:
        if not p.shape:  # the compiled step updates params in place: arrays only
            raise SpecError(
                f"--target numba needs array params; {p.name!r} is a scalar "
                "(declare it with a shape, e.g. [1])",
                net.file,
                *p.pos,
            )
    defs = {eq.name: forward_form(eq.expr) for eq in net.equations}
    stable = {name: stabilise(form, defs) for name, form in defs.items()}
    named = {}  # buffers of named values: forward quantities, deltas, gradients

    def forward(emitter):
        for eq in net.equations[:-1]:
            form = stable[eq.name]
            emitter.emit(f"# {eq.name}")
            if not eq.shape:  # a scalar: a local, not a buffer
                emitter.scalar(eq.name, form)
                continue
            named[eq.name] = tuple(eq.shape)
            emitter.assign(_symbol(eq.name, form), form)
        emitter.emit(f"# {net.loss}")
        emitter.scalar("_loss", stable[net.loss])

    loss_emitter = LoopEmitter()
    forward(loss_emitter)
    loss_buffers = {n: s for n, s in named.items()} | loss_emitter.buffers

    step = LoopEmitter()
    forward(step)
    for s in d.steps:
        form = times_seed(s.matrix, LR)
        step.emit(f"# {s.symbol}, times the learning rate")
        if not s.shape:
            step.scalar(s.symbol, form)
            continue
        named[s.symbol] = tuple(s.shape)
        step.assign(_symbol(s.symbol, form), form)
    for wrt, s in d.gradients.items():
        form = times_seed(s.matrix, LR)
        named["grad_" + wrt] = tuple(s.shape)
        step.emit(f"# grad_{wrt}, times the learning rate")
        step.assign(_symbol("grad_" + wrt, form), form)
    for p in net.params:
        kind = Vector if len(p.shape) == 1 else sp.MatrixSymbol
        target = kind(p.name, *_matrix_shape(p.shape))
        grad = kind("grad_" + p.name, *_matrix_shape(p.shape))
        rows, cols = target.shape
        step.emit(f"for _i in range({step.code(rows)}):")
        step.emit(f"for _j in range({step.code(cols)}):", 1)
        step.emit(f"{step.code(target[I, J])} -= {step.code(grad[I, J])}", 2)
    step_buffers = named | step.buffers
    consts = list(net.consts)
    loss_args, loss_dims = _function(net, loss_emitter, loss_buffers, consts, [])
    step_args, step_dims = _function(net, step, step_buffers, consts, [])
    kernels = sorted(words(step.lines) & KERNELS)
    return {
        "spec_name": spec_name,
        "source": source.rstrip(),
        "derived": [s.text() for s in [*d.steps, *d.gradients.values()]],
        "dtype": dtype,
        "params": [(p.name, [str(x) for x in p.shape]) for p in net.params],
        "inputs": [(q.name, [str(x) for x in q.shape]) for q in net.of_kind("input")],
        "targets": [(q.name, [str(x) for x in q.shape]) for q in net.of_kind("target")],
        "consts": list(net.consts.items()),
        "dims": list(net.dims),
        "dim_sources": _dim_sources(net),
        "loss": net.loss,
        "kernels": kernels,
        "inits": init_rules(net),
        "loss_args": loss_args,
        "loss_dims": loss_dims,
        "loss_lines": loss_emitter.lines,
        "loss_buffers": {k: shape_code(v) for k, v in loss_buffers.items()},
        "step_args": step_args,
        "step_dims": step_dims,
        "step_lines": step.lines,
        "step_buffers": {k: shape_code(v) for k, v in step_buffers.items()},
        "param_names": [p.name for p in net.params],
        "label_names": [q.name for q in net.of_kind("target") if q.classes is not None],
        "data_names": [q.name for q in net.quantities.values() if q.kind in ("input", "target")],
        "const_names": consts,
    }


def _matrix_shape(shape):
    return (1, shape[0]) if len(shape) == 1 else shape


def _dim_sources(net) -> dict:
    out = {}
    for q in [*net.of_kind("input"), *net.of_kind("param"), *net.of_kind("target")]:
        for axis, dim in enumerate(q.shape):
            if isinstance(dim, sp.Symbol) and str(dim) not in out:
                out[str(dim)] = (q.kind, q.name, axis)
    return out


# every rule's scalar kernel (numba_kernels.py has one per rule: tests/test_rules.py), and
# the row kernels of softmax and log-softmax
KERNELS = {*RULES, "softmax_rows", "log_softmax_rows"}
