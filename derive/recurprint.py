"""A recurrence as text, LaTeX, JSON and NumPy statements (the forward and backward loops).

Every formula is printed by the printers of :mod:`derive.printing` from the
derived forms; the statements around them (``for t in …``, ``x_t = x[t]``)
use only names the parser checked (the spec's and the body's own).
"""

from __future__ import annotations

import dataclasses
import json
import re

import sympy as sp

from .derivation import display_elementwise
from .indices import dim_of
from .matexpr import Broadcast, Map
from .printing import (
    LatexFormPrinter,
    NumpyFormPrinter,
    fmt_dims,
    latex,
    numpy_code,
    size_code,
    text,
)
from .recurrence import Recurrence
from .report import Line, chain_text, latex_document, lines

_IDENT = re.compile(r"[^\W\d]\w*")


def _body_lines(rec: Recurrence) -> tuple[list[Line], list[Line], list[Line]]:
    """The body's forward lines (without the seeded loss), its deltas, then the steps the
    backward loop accumulates (params' shares) and carries (previous states), in order."""
    forward, deltas, grads = lines(rec.body)
    carried = [g for g in grads if g.step is not None and g.step.name in rec.loop.previous.values()]
    shares = [g for g in grads if g not in carried]
    return forward[:-1], deltas, shares + carried


def _seed_rows(rec: Recurrence) -> list[tuple[str, str, str]]:
    """``dh_t = δh[t] + δh_prev``: text, LaTeX and NumPy of each seed."""
    loop, lp = rec.loop, LatexFormPrinter()
    rows = []
    for out, seed in rec.seeds.items():
        stacked = loop.stepped[out]
        parts_t, parts_l, parts_n = [], [], []
        if out in rec.direct:
            sym = rec.outer.gradients[stacked].symbol
            parts_t.append(f"{text(sp.Symbol(sym))}[{loop.var}]")
            parts_l.append(f"{lp.name(sym)}[{loop.var}]")
            parts_n.append(f"{sym}[{loop.var}]")
        if stacked in loop.previous:
            sym = "delta_" + loop.previous[stacked]
            parts_t.append(text(sp.Symbol(sym)))
            parts_l.append(lp.name(sym))
            parts_n.append(sym)
        rows.append(
            (
                f"{seed} = {' + '.join(parts_t)}",
                f"{lp.name(seed)} &= {' + '.join(parts_l)}",
                f"{seed} = {' + '.join(parts_n)}",
            )
        )
    return rows


def _is_accumulated(rec: Recurrence, x: Line) -> bool:
    return x.step is not None and x.step.name not in rec.loop.previous.values()


def _lhs(rec: Recurrence, x: Line) -> tuple[str, str]:
    """A body gradient's left side: ``∂L/∂Wx +=`` accumulated, ``δh_prev =`` carried."""
    assert x.step is not None
    if _is_accumulated(rec, x):
        return f"{x.lhs_text} +=", rf"{x.lhs_latex} &\mathrel{{+}}="
    lp = LatexFormPrinter()
    return f"{text(sp.Symbol(x.step.symbol))} =", rf"{lp.name(x.step.symbol)} &="


def _outer_gradients(rec: Recurrence) -> tuple[list[Line], list[Line]]:
    """The outer deltas with the stacked values' direct shares, and the params' gradients."""
    _, deltas, grads = lines(rec.outer)
    stacked = set(rec.loop.stepped.values())
    shares = [g for g in grads if g.step is not None and g.step.name in stacked]
    lp = LatexFormPrinter()
    named = [  # δh: the loss's direct share at every step, as the backward loop reads it
        dataclasses.replace(g, lhs_text=text(sp.Symbol(g.name)), lhs_latex=lp.name(g.name))
        for g in shares
    ]
    return deltas + named, [g for g in grads if g not in shares]


def _initial_gradients(rec: Recurrence) -> list[tuple[str, str]]:
    """``∂L/∂h0 = δh_prev`` (after the step t = 0), for initial states that are params."""
    loop = rec.loop
    return [
        (init, "delta_" + loop.previous[state])
        for state, init in loop.initial.items()
        if rec.network.quantities[init].kind == "param"
    ]


def as_text(
    rec: Recurrence, proofs: list | None = None, steps: bool = False, elementwise: bool = False
) -> str:
    """The terminal report: the loop body, the equations after it, the backward loop;
    ``steps``/``elementwise`` add each adjoint's chain rule / index form, as for any spec."""
    loop = rec.loop
    body_fwd, body_deltas, body_grads = _body_lines(rec)
    outer_fwd, _, _ = lines(rec.outer)
    outer_deltas, outer_grads = _outer_gradients(rec)

    def rows(group: list[Line], lhs=lambda x: f"{x.lhs_text} =") -> list:
        out: list = []
        for x in group:
            out.append((f"{lhs(x)} {text(x.form)}", x.shape))
            if elementwise and x.step is not None:
                left, right = display_elementwise(x.step)
                out.append(f"      {text(left)} = {text(right)}")
            if steps and x.step is not None:
                out += ["      " + row for row in chain_text(x.step)]
        return out

    out: list = [f"{rec.network.name}  ({rec.network.file})", ""]
    reads = ", ".join(f"{s}[{loop.var}] = {s}_t" for s in loop.initial)
    prev = ", ".join(f"{s}[{loop.var} − 1] = {p}" for s, p in loop.previous.items())
    first = ", ".join(f"{s}[−1] = {i}" for s, i in loop.initial.items())
    out += [f"loop  for {loop.var} in range({loop.length}):  {reads}; {prev}; {first}"]
    out += rows(body_fwd) + ["", "forward", *rows(outer_fwd), "", "deltas", *rows(outer_deltas)]
    zero = ", ".join(f"δ{p} = 0" for p in loop.previous.values())
    out += ["", f"backward loop  for {loop.var} = {loop.length} − 1, …, 0  ({zero} before it)"]
    out += [
        (row[0], loop.quantities[out_].shape)
        for row, out_ in zip(_seed_rows(rec), rec.seeds, strict=True)
    ]
    out += rows(body_deltas) + rows(body_grads, lambda x: _lhs(rec, x)[0])
    out += ["", "gradients", *rows(outer_grads)]
    for init, carried in _initial_gradients(rec):
        shape = rec.network.quantities[init].shape
        out.append((f"∂{rec.network.loss}/∂{init} = {text(sp.Symbol(carried))}", shape))
    summed = ", ".join(f"∂{rec.network.loss}/∂{p}" for p in rec.body_params())
    out.append(f"  {summed}: the sums over {loop.var} of the backward loop")
    return _render(out, proofs)


def _render(out: list, proofs: list | None) -> str:
    width = min(72, max(len(r[0]) for r in out if isinstance(r, tuple)))
    result = []
    for r in out:
        if isinstance(r, str):
            result.append(r)
        else:
            result.append(f"  {r[0]:<{width}}  {fmt_dims(r[1])}".rstrip())
    if proofs is not None:
        result += ["", "proofs"]
        for p in proofs:
            result.append(f"  {'✓' if p.passed else '✗'} {p.name}  ({p.seconds:.2f} s)")
            result += [f"      {k}: {v}" for k, v in p.details.items() if not p.passed]
    return "\n".join(result)


def as_latex(rec: Recurrence, proofs: list | None = None, standalone: bool = False) -> str:
    """An ``aligned`` block: the loop body, the equations after it, the backward loop
    (``standalone``: in a complete amsmath document)."""
    loop, lp = rec.loop, LatexFormPrinter()
    body_fwd, body_deltas, body_grads = _body_lines(rec)
    outer_fwd, _, _ = lines(rec.outer)
    outer_deltas, outer_grads = _outer_gradients(rec)
    var, length = loop.var, latex(loop.length)
    rows = [rf"&\text{{for }} {var} = 0, \dots, {length} - 1:"]
    rows += [rf"{x.lhs_latex} &= {latex(x.form)}" for x in body_fwd]
    rows += [rf"{x.lhs_latex} &= {latex(x.form)}" for x in [*outer_fwd, *outer_deltas]]
    rows.append(rf"&\text{{for }} {var} = {length} - 1, \dots, 0:")
    rows += [row[1] for row in _seed_rows(rec)]
    rows += [rf"{x.lhs_latex} &= {latex(x.form)}" for x in body_deltas]
    rows += [rf"{_lhs(rec, x)[1]} {latex(x.form)}" for x in body_grads]
    rows += [rf"{x.lhs_latex} &= {latex(x.form)}" for x in outer_grads]
    loss = lp.name(rec.network.loss)
    for init, carried in _initial_gradients(rec):
        rows.append(rf"\frac{{\partial {loss}}}{{\partial {lp.name(init)}}} &= {lp.name(carried)}")
    block = "\\begin{aligned}\n" + " \\\\\n".join(rows) + "\n\\end{aligned}"
    if not standalone:
        return block
    return latex_document(rec.network, ".", [r"\[", block, r"\]"], proofs)


# ---------------------------------------------------------------------------
# NumPy statements


def _bind_step(rec: Recurrence, indent: str) -> list[str]:
    """``x_t = x[t]``, ``h_prev = h[t - 1] if t > 0 else h0``, ``h_t = h[t]``."""
    loop, t = rec.loop, rec.loop.var
    out = []
    for step, stacked in loop.stepped.items():
        if loop.quantities[step].kind == "input":
            out.append(f"{indent}{step} = {stacked}[{t}]")
    for state, prev in loop.previous.items():
        out.append(f"{indent}{prev} = {state}[{t} - 1] if {t} > 0 else {loop.initial[state]}")
    return out


def forward_code(
    rec: Recurrence,
    printer: NumpyFormPrinter | None = None,
    out_calls: bool = False,
    read: set[str] | None = None,
) -> str:
    """The forward loop: assigns every stacked value (``h``, and ``a`` of ``a[t] = …``).

    A state is written into ``_h`` (``T + 1`` steps, ``_h[0]`` the initial value), of
    which ``h`` is the view of steps 1…T and ``_h[t]`` the previous state at t; other
    stacked values get their array at the first step, when their shape is known.
    ``out_calls``: the printer prints an element-wise function as a call taking
    ``out=`` (generated modules' kernels); a state that is one such call is then
    computed straight into ``_h[t + 1]``, not copied there.  ``read``: the names the
    code after the loop reads (None: all); a stacked value of ``a[t] = …`` that is not
    among them is not stored.
    """
    loop, t, length = rec.loop, rec.loop.var, rec.loop.length
    body_fwd, _, _ = _body_lines(rec)
    outputs = {s: step for step, s in loop.stepped.items() if loop.quantities[step].kind != "input"}
    outputs_of = {step: s for s, step in outputs.items()}
    out = []
    for state, init in loop.initial.items():
        out.append(f"_{state} = np.empty(({length} + 1, *{init}.shape), dtype={init}.dtype)")
        out += [f"_{state}[0] = {init}", f"{state} = _{state}[1:]"]
    hoisted, forms = _hoisted(rec, body_fwd, printer)
    out += hoisted
    out.append(f"for {t} in range({length}):")
    kept = {s for s in outputs if s in loop.initial or read is None or s in read}
    if out_calls:  # the dims are in scope: the stacked arrays are made before the loop
        made = [(s, loop.quantities[step].shape) for s, step in outputs.items()]
        out[-1:-1] = _made(rec, [(s, shape) for s, shape in made if s in kept - set(loop.initial)])
    into: set[str] = set()  # the steps computed in place into their stacked arrays
    code = []
    for x, form in zip(body_fwd, forms, strict=True):
        text = numpy_code(form, x.shape, printer)
        stacked = outputs_of.get(x.name)
        if out_calls and stacked in kept:
            text = _into(form, text, f"{stacked}[{t}]", x, printer)
            if "out=" in text:
                into.add(x.name)
        code.append(f"    {x.name} = {text}")
    used = _names_in(code)
    out += [
        b for b in _bind_step(rec, "    ")[: -len(loop.previous) or None] if b.split()[0] in used
    ]
    out += [f"    {prev} = _{state}[{t}]" for state, prev in loop.previous.items()]
    out += code
    for stacked, step in outputs.items():
        if step in into or stacked not in kept:
            continue
        if stacked not in loop.initial and not out_calls:
            out.append(f"    if {t} == 0:")
            out.append(
                f"        {stacked} = np.empty(({length}, *{step}.shape), dtype={step}.dtype)"
            )
        out.append(f"    {stacked}[{t}] = {step}")
    return "\n".join(out)


def _into(form, text: str, where: str, x: Line, printer) -> str:
    """``text`` computing into ``where``: a kernel call with ``out=``, ``a ⊙ b`` or ``a + b``
    as the ufunc with ``out=``; ``text`` itself when the form is none of these."""
    if isinstance(form, Map) and text[-1] == ")":
        return f"{text[:-1]}, out={where})"
    if isinstance(form, (sp.HadamardProduct, sp.MatAdd)) and len(form.args) == 2:
        a, b = (numpy_code(f, x.shape, printer) for f in form.args)
        ufunc = "multiply" if isinstance(form, sp.HadamardProduct) else "add"
        return f"np.{ufunc}({a}, {b}, out={where})"
    return text


def _hoisted(
    rec: Recurrence, body_fwd: list[Line], printer: NumpyFormPrinter | None
) -> tuple[list[str], list]:
    """Products of a step's input with a param (``x_t Wx``), computed for every step
    before the loop as one product over ``T·B`` rows; the forms read their step ``t``."""
    loop = rec.loop
    inputs = {s for s, q in loop.quantities.items() if q.kind == "input"}
    params = {p.name for p in rec.network.params}
    before: list[str] = []
    forms = []
    for x in body_fwd:
        swap: dict[sp.Basic, sp.MatrixSymbol] = {}
        for node in sp.preorder_traversal(x.form):
            if not isinstance(node, sp.MatMul) or node in swap:
                continue
            arrays = [a for a in node.args if isinstance(a, sp.MatrixSymbol)]
            if len(arrays) != len(node.args) or len(arrays) != 2:
                continue
            first, second = (str(a.name) for a in arrays)
            if first in inputs and second in params:
                name = f"_{x.name}_{len(swap)}"
                stacked = loop.stepped[first]
                before += [
                    f"{first} = {stacked}.reshape(-1, *{stacked}.shape[2:])",
                    f"{name} = {numpy_code(node, node.shape, printer)}",
                    f"{name} = {name}.reshape(*{stacked}.shape[:2], *{name}.shape[1:])",
                ]
                swap[node] = sp.MatrixSymbol(f"{name}[{loop.var}]", *node.shape)
        form = x.form.xreplace(swap) if swap else x.form
        forms.append(_bias_hoisted(form, swap, params, before, printer))
    return before, forms


def _bias_hoisted(form, swap: dict, params: set, before: list[str], printer) -> sp.Basic:
    """A param row added to a hoisted product (``x_t Wx + b``) added before the loop
    too: once over ``T·B`` rows, not at every step."""
    hoisted = {str(v.name) for v in swap.values()}
    if not isinstance(form, sp.MatAdd) or not hoisted:
        return form
    terms = _flat_sum(form)
    product = next((a for a in terms if str(getattr(a, "name", "")) in hoisted), None)
    biases = [a for a in terms if _param_row(a, params)]
    if product is None or not biases:
        return form
    name = str(product.name).split("[")[0]
    before.append(f"{name} += {' + '.join(str(a.arg.name) for a in biases)}")
    return sp.MatAdd(*[a for a in terms if a not in biases])


def _flat_sum(form) -> list:
    """The terms of nested sums."""
    if isinstance(form, sp.MatAdd):
        return [t for a in form.args for t in _flat_sum(a)]
    return [form]


def _param_row(e, params: set) -> bool:
    """Whether ``e`` is a param row stretched over the batch (NumPy broadcasts it)."""
    return (
        isinstance(e, Broadcast)
        and isinstance(e.arg, sp.MatrixSymbol)
        and str(e.arg.name) in params
        and e.arg.shape[0] == 1
        and e.arg.shape[1] == e.shape[1]
    )


def backward_code(
    rec: Recurrence, printer: NumpyFormPrinter | None = None, with_forward=False, out_calls=False
) -> str:
    """The backward loop: assigns ``delta_P`` of every param the loop reads (and of each
    initial state that is a param), with the forward values and the outer steps in scope.

    A param's share at step t that sums over the batch axis of the step's own arrays
    only (``x_tᵀ δa_t``: :func:`_merged`) is summed over t after the loop, as the
    same form of the steps' arrays stacked with time and batch merged into one axis
    (``Σ_t x_tᵀ δa_t = xᵀ δa`` over ``T·B`` rows); any other is added up in the loop.
    ``with_forward``: run right after :func:`forward_code`'s statements, whose ``_h``
    (the states with the initial one first) it reads instead of copying them.
    ``out_calls``: the dims are in scope; a kept step delta that is a product of two
    factors is computed into its stacked array (``out=``).
    """
    loop, t = rec.loop, rec.loop.var
    body_fwd, body_deltas, body_grads = _body_lines(rec)
    outer = set(rec.outer.gradients)
    merged = [x for x in body_grads if _is_accumulated(rec, x) and _merged(rec, x, printer)]
    out = [f"delta_{p} = np.zeros_like({state_init(rec, p)})" for p in loop.previous.values()]
    for p in rec.body_params():
        if all(x.step is None or x.step.name != p for x in merged):
            out.append(
                f"delta_{p} = {f'delta_{p}.copy()' if p in outer else f'np.zeros_like({p})'}"
            )
    steps = ["    " + row[2] for row in _seed_rows(rec)]
    steps += [f"    {x.name} = {numpy_code(x.form, x.shape, printer)}" for x in body_deltas]
    for x in body_grads:
        if x not in merged:
            op = "+=" if _is_accumulated(rec, x) else "="
            steps.append(f"    {x.name} {op} {numpy_code(x.form, x.shape, printer)}")
    after = [numpy_code(x.form, x.shape, printer) for x in merged]
    kept = sorted(_names_in(after) & _step_only(rec, {n for n, _ in _stepped_views(rec)}))
    into = _into_stacked(rec, body_deltas, kept, steps, printer) if out_calls else set()
    out += _made(rec, [(f"_{x.name}", x.shape) for x in body_deltas if x.name in into])
    out.append(f"for {t} in reversed(range({loop.length})):")
    recomputed = _recomputed(rec, body_fwd, steps, printer)
    used = _names_in(recomputed + steps)
    binds = _bind_step(rec, "    ")
    if with_forward:
        binds = binds[: -len(loop.previous) or None]
        binds += [f"    {prev} = _{state}[{t}]" for state, prev in loop.previous.items()]
    out += [b for b in binds if b.split()[0] in used]
    out += recomputed
    out += steps
    for name in [n for n in kept if n not in into]:  # its array at the first step (t = T - 1)
        out.append(f"    if {t} == {loop.length} - 1:")
        out.append(
            f"        _{name} = np.empty(({loop.length}, *{name}.shape), dtype={name}.dtype)"
        )
        out.append(f"    _{name}[{t}] = {name}")
    needed = _names_in(after)
    out += [f"{n} = {view}" for n, view in _stepped_views(rec, with_forward) if n in needed]
    out += [f"{n} = _{n}.reshape(-1, *_{n}.shape[2:])" for n in kept]
    for x, code in zip(merged, after, strict=True):
        assert x.step is not None
        p = x.step.name
        out.append(f"delta_{p} = {f'delta_{p} + ' if p in outer else ''}{code}")
    out += [f"{'delta_' + init} = {carried}" for init, carried in _initial_gradients(rec)]
    return "\n".join(out)


def _made(rec: Recurrence, arrays: list[tuple[str, tuple]]) -> list[str]:
    """``name = np.empty((T, *shape))`` for each array, in the initial states' dtype."""
    dtype = f"{next(iter(rec.loop.initial.values()))}.dtype"
    return [
        f"{name} = np.empty(({', '.join(size_code(d) for d in (rec.loop.length, *shape))}),"
        f" dtype={dtype})"
        for name, shape in arrays
    ]


def _into_stacked(
    rec: Recurrence, body_deltas: list[Line], kept: list[str], steps: list[str], printer
) -> set[str]:
    """The kept deltas printed as ``np.multiply(a, b, out=_d[t])`` in ``steps`` (rewritten)."""
    t = rec.loop.var
    into = set()
    for x in body_deltas:
        if x.name not in kept or not isinstance(x.form, sp.HadamardProduct):
            continue
        if len(x.form.args) != 2:
            continue
        line = f"    {x.name} = {numpy_code(x.form, x.shape, printer)}"
        a, b = (numpy_code(f, x.shape, printer) for f in x.form.args)
        steps[steps.index(line)] = f"    {x.name} = np.multiply({a}, {b}, out=_{x.name}[{t}])"
        into.add(x.name)
    return into


def _recomputed(
    rec: Recurrence, body_fwd: list[Line], steps: list[str], printer: NumpyFormPrinter | None
) -> list[str]:
    """The forward values at step t the backward steps read (stacked ones read back)."""
    loop, t = rec.loop, rec.loop.var
    stepped = {s for s, q in loop.quantities.items() if q.kind == "intermediate"}

    def code(x: Line) -> str:
        return (
            f"{loop.stepped[x.name]}[{t}]"
            if x.name in stepped
            else numpy_code(x.form, x.shape, printer)
        )

    needed = _names_in(steps)
    for x in reversed(body_fwd):  # the forward values the steps read, and what those read
        if x.name in needed:
            needed |= _names_in([code(x)])
    return [f"    {x.name} = {code(x)}" for x in body_fwd if x.name in needed]


def _stepped_views(rec: Recurrence, with_forward: bool = False) -> list[tuple[str, str]]:
    """Every step's array with time and batch merged: ``x_t`` → ``x.reshape(-1, …)``."""
    loop = rec.loop
    out = []
    for step, stacked in loop.stepped.items():
        out.append((step, f"{stacked}.reshape(-1, *{stacked}.shape[2:])"))
    for state, prev in loop.previous.items():
        init = loop.initial[state]
        steps = (
            f"_{state}[:-1]" if with_forward else f"np.concatenate([{init}[None], {state}[:-1]])"
        )
        out.append((prev, f"{steps}.reshape(-1, *{init}.shape[1:])"))
    return out


def _step_only(rec: Recurrence, viewed: set[str]) -> set[str]:
    """The body's names with a value at each step that is not a view of a stacked array."""
    return {n for n in rec.body.network.quantities if n not in rec.network.quantities} - viewed | {
        s.symbol for s in rec.body.steps
    }


def _merged(rec: Recurrence, x: Line, printer: NumpyFormPrinter | None) -> bool:
    """Whether ``x``'s share at step t sums over one batch index that is the first index of
    every array of the step and of no param (then the sum over t merges with it)."""
    step = x.step
    assert step is not None
    params = set(rec.network.quantities) - set(rec.loop.stepped.values())
    code = numpy_code(x.form, x.shape, printer)
    for term in step.terms:
        arrays = [a for a in term.factor.atoms(sp.Indexed)]
        mine = [a for a in arrays if str(a.base) not in params]
        if not mine or len(mine[0].indices) < 2:
            return False
        k = mine[0].indices[0]
        if k not in term.summed or any(a.indices[0] != k for a in mine):
            return False
        if any(k in a.indices for a in arrays if str(a.base) in params):
            return False
        if str(dim_of(k)) in _names_in([code]):  # a size in the code would change
            return False
    return True


def _names_in(code: list[str]) -> set[str]:
    """The identifiers the printed statements ``code`` mention."""
    return {m.group() for line in code for m in _IDENT.finditer(line)}


def state_init(rec: Recurrence, prev: str) -> str:
    """The initial value of the state the body calls ``prev``."""
    return rec.loop.initial[rec.state_of(prev)]


def as_json(rec: Recurrence, proofs: list | None = None) -> str:
    """``derive grad --format json`` of a spec with a loop (the contract in the README)."""
    loop = rec.loop
    body_fwd, body_deltas, body_grads = _body_lines(rec)
    outer_fwd, _, _ = lines(rec.outer)
    outer_deltas, outer_grads = _outer_gradients(rec)
    backward = backward_code(rec)
    text_report = as_text(rec)
    stacked = [s for step, s in loop.stepped.items() if loop.quantities[step].kind != "input"]
    fwd_loop = {
        "name": stacked[0],
        "assigns": stacked,
        "shape": [str(d) for d in rec.network.quantities[stacked[0]].shape],
        "text": text_report.split("\n\nforward")[0].split("\n", 2)[2],
        "numpy": forward_code(rec),
        "loop": True,
    }
    grads = {x.step.name: x.as_dict() for x in outer_grads if x.step is not None}
    for p in [*rec.body_params(), *(init for init, _ in _initial_gradients(rec))]:
        entry = {"name": f"delta_{p}", "shape": [str(d) for d in rec.network.quantities[p].shape]}
        entry |= {"text": f"∂{rec.network.loss}/∂{p}: the backward loop", "numpy": backward}
        grads[p] = entry | {"loop": True}
    out = {
        "spec": rec.network.name,
        "file": rec.network.file,
        "loss": rec.network.loss,
        "dims": list(rec.network.dims),
        "loop": {
            "var": loop.var,
            "length": str(loop.length),
            "states": dict(loop.initial),
            "body": [x.as_dict() for x in body_fwd],
            "backward": [x.as_dict() for x in [*body_deltas, *body_grads]],
            "seeds": [row[2] for row in _seed_rows(rec)],
        },
        "forward": [fwd_loop, *(x.as_dict() for x in outer_fwd)],
        "steps": [x.as_dict() for x in outer_deltas],
        "gradients": {p: grads[p] for p in rec.params if p in grads},
    }
    if proofs is not None:
        out["check"] = {p.name.split(" ")[0]: {"title": p.name, **p.as_dict()} for p in proofs}
    return json.dumps(out, indent=2, ensure_ascii=False)
