"""A recurrence as text, LaTeX, JSON and NumPy statements (the forward and backward loops).

Every formula is printed by the printers of :mod:`derive.printing` from the
derived forms; the statements around them (``for t in …``, ``x_t = x[t]``)
use only names the parser checked (the spec's and the body's own).
"""

from __future__ import annotations

import json
import re

import sympy as sp

from .printing import LatexFormPrinter, fmt_dims, latex, numpy_code, text
from .recurrence import Recurrence
from .report import Line, lines

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
    return deltas + shares, [g for g in grads if g not in shares]


def _initial_gradients(rec: Recurrence) -> list[tuple[str, str]]:
    """``∂L/∂h0 = δh_prev`` (after the step t = 0), for initial states that are params."""
    loop = rec.loop
    return [
        (init, "delta_" + loop.previous[state])
        for state, init in loop.initial.items()
        if rec.network.quantities[init].kind == "param"
    ]


def as_text(rec: Recurrence, proofs: list | None = None) -> str:
    """The terminal report: the loop body, the equations after it, the backward loop."""
    loop = rec.loop
    body_fwd, body_deltas, body_grads = _body_lines(rec)
    outer_fwd, _, _ = lines(rec.outer)
    outer_deltas, outer_grads = _outer_gradients(rec)
    rows: list[tuple[str, tuple]] = []

    def add(lhs: str, form_text: str, shape: tuple) -> None:
        rows.append((f"{lhs} {form_text}", shape))

    out: list[tuple[str, tuple] | str] = [f"{rec.network.name}  ({rec.network.file})", ""]
    reads = ", ".join(f"{s}[{loop.var}] = {s}_t" for s in loop.initial)
    prev = ", ".join(f"{s}[{loop.var} − 1] = {p}" for s, p in loop.previous.items())
    first = ", ".join(f"{s}[−1] = {i}" for s, i in loop.initial.items())
    out += [f"loop  for {loop.var} in range({loop.length}):  {reads}; {prev}; {first}"]
    out += [(f"{x.lhs_text} = {text(x.form)}", x.shape) for x in body_fwd]
    out += ["", "forward"] + [(f"{x.lhs_text} = {text(x.form)}", x.shape) for x in outer_fwd]
    out += ["", "deltas"] + [(f"{x.lhs_text} = {text(x.form)}", x.shape) for x in outer_deltas]
    zero = ", ".join(f"δ{p} = 0" for p in loop.previous.values())
    out += ["", f"backward loop  for {loop.var} = {loop.length} − 1, …, 0  ({zero} before it)"]
    out += [
        (row[0], loop.quantities[out_].shape)
        for row, out_ in zip(_seed_rows(rec), rec.seeds, strict=True)
    ]
    out += [(f"{x.lhs_text} = {text(x.form)}", x.shape) for x in body_deltas]
    for x in body_grads:
        out.append((f"{_lhs(rec, x)[0]} {text(x.form)}", x.shape))
    out += ["", "gradients"] + [(f"{x.lhs_text} = {text(x.form)}", x.shape) for x in outer_grads]
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


def as_latex(rec: Recurrence, proofs: list | None = None) -> str:
    """An ``aligned`` block: the loop body, the equations after it, the backward loop."""
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
    return "\\begin{aligned}\n" + " \\\\\n".join(rows) + "\n\\end{aligned}"


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


def forward_code(rec: Recurrence) -> str:
    """The forward loop: assigns every stacked value (``h``, and ``a`` of ``a[t] = …``)."""
    loop, t = rec.loop, rec.loop.var
    body_fwd, _, _ = _body_lines(rec)
    stacked = [s for step, s in loop.stepped.items() if loop.quantities[step].kind != "input"]
    out = [f"{s} = [None] * {loop.length}" for s in stacked]
    out.append(f"for {t} in range({loop.length}):")
    out += _bind_step(rec, "    ")
    out += [f"    {x.name} = {numpy_code(x.form, x.shape)}" for x in body_fwd]
    out += [f"    {s}[{t}] = {s}_t" for s in stacked]
    out += [f"{s} = np.stack({s})" for s in stacked]
    return "\n".join(out)


def backward_code(rec: Recurrence) -> str:
    """The backward loop: assigns ``delta_P`` of every param the loop reads (and of each
    initial state that is a param), with the forward values and the outer steps in scope."""
    loop, t = rec.loop, rec.loop.var
    body_fwd, body_deltas, body_grads = _body_lines(rec)
    outer = {p for p in rec.outer.gradients}
    out = [f"delta_{p} = np.zeros_like({state_init(rec, p)})" for p in loop.previous.values()]
    for p in rec.body_params():
        start = f"delta_{p}.copy()" if p in outer else f"np.zeros_like({p})"
        out.append(f"delta_{p} = {start}" if p not in outer else f"delta_{p} = {start}")
    out.append(f"for {t} in reversed(range({loop.length})):")
    out += _bind_step(rec, "    ")
    stepped = {s for s, q in loop.quantities.items() if q.kind == "intermediate"}
    steps = ["    " + row[2] for row in _seed_rows(rec)]
    steps += [f"    {x.name} = {numpy_code(x.form, x.shape)}" for x in body_deltas]
    for x in body_grads:
        op = "+=" if _is_accumulated(rec, x) else "="
        steps.append(f"    {x.name} {op} {numpy_code(x.form, x.shape)}")
    needed = _names_in(steps)
    for x in reversed(body_fwd):  # the forward values the steps read, and what those read
        if x.name in needed:
            value = f"{loop.stepped[x.name]}[{t}]" if x.name in stepped else None
            code = value or numpy_code(x.form, x.shape)
            needed |= _names_in([code])
    for x in body_fwd:
        if x.name in needed:
            value = f"{loop.stepped[x.name]}[{t}]" if x.name in stepped else None
            out.append(f"    {x.name} = {value or numpy_code(x.form, x.shape)}")
    out += steps
    out += [f"{'delta_' + init} = {carried}" for init, carried in _initial_gradients(rec)]
    return "\n".join(out)


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
