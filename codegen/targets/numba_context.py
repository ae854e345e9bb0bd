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
from derive.forms import RULES, Vector

from ..emit import np_shape
from .context import common_context, stable_forms, times_seed, words
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


def _check_params(net) -> None:
    """The compiled step updates params in place: arrays only."""
    for p in net.params:
        if not p.shape:
            raise SpecError(
                f"--target numba needs array params; {p.name!r} is a scalar "
                "(declare it with a shape, e.g. [1])",
                net.file,
                *p.pos,
            )


def _forward(emitter: LoopEmitter, net, stable: dict, named: dict) -> None:
    """The forward pass into named buffers (scalars into locals), then the loss ``_loss``."""
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


def _backward(step: LoopEmitter, d: Derivation, named: dict) -> None:
    """The derived deltas and gradients, times the learning rate (the NumPy target's lr)."""
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


def _updates(step: LoopEmitter, net) -> None:
    """``p -= grad_p`` for every param, entry by entry."""
    for p in net.params:
        kind = Vector if len(p.shape) == 1 else sp.MatrixSymbol
        target = kind(p.name, *_matrix_shape(p.shape))
        grad = kind("grad_" + p.name, *_matrix_shape(p.shape))
        rows, cols = target.shape
        step.emit(f"for _i in range({step.code(rows)}):")
        step.emit(f"for _j in range({step.code(cols)}):", 1)
        step.emit(f"{step.code(target[I, J])} -= {step.code(grad[I, J])}", 2)


def numba_context(d: Derivation, dtype: str, source: str, spec_name: str) -> dict:
    """The template context of a ``--target numba`` module for derivation ``d``."""
    net = d.network
    _check_params(net)
    _, stable = stable_forms(net)
    named: dict = {}  # buffers of named values: forward quantities, deltas, gradients
    loss = LoopEmitter()
    _forward(loss, net, stable, named)
    loss_buffers = dict(named) | loss.buffers
    step = LoopEmitter()
    _forward(step, net, stable, named)
    _backward(step, d, named)
    _updates(step, net)
    step_buffers = named | step.buffers
    consts = list(net.consts)
    loss_args, loss_dims = _function(net, loss, loss_buffers, consts, [])
    step_args, step_dims = _function(net, step, step_buffers, consts, [])
    return common_context(d, dtype, source, spec_name) | {
        "kernels": sorted(words(step.lines) & KERNELS),
        "loss_args": loss_args,
        "loss_dims": loss_dims,
        "loss_lines": loss.lines,
        "loss_buffers": {k: shape_code(v) for k, v in loss_buffers.items()},
        "step_args": step_args,
        "step_dims": step_dims,
        "step_lines": step.lines,
        "step_buffers": {k: shape_code(v) for k, v in step_buffers.items()},
        "data_names": [q.name for q in net.quantities.values() if q.kind in ("input", "target")],
    }


def _matrix_shape(shape):
    return (1, shape[0]) if len(shape) == 1 else shape


# every rule's scalar kernel (numba_kernels.py has one per rule: tests/test_rules.py), and
# the row kernels of softmax and log-softmax
KERNELS = {*RULES, "softmax_rows", "log_softmax_rows"}
