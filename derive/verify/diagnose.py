"""Named diagnoses for the mistakes people make, each with its evidence.

Each test is an exact check of a repaired formula (the repair is the diagnosis), except
the constant-factor ones, which find the factor numerically and then confirm it exactly.
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from typing import Any

import numpy as np
import sympy as sp

from .. import ir
from ..numeric import evaluate
from ..printing import text as text_of
from ..rules import RULES
from .evidence import derivative_of, label_entries, name_factor, name_factors, use_of, why
from .reader import derivative_ir
from .show import show


def diagnose(v, node, head) -> str | None:
    """The first diagnosis that explains the difference, or None."""
    tests = (factor, transposed, term, extra_term, reduction, flipped_sign, wrong_derivative)
    for test in (*tests, missing_factor, by_value, labels):
        found = test(v, node, head)
        if found:
            return found
    return None


def shape_diagnosis(v, node, head) -> str | None:
    """For a result of the wrong shape: a missing batch sum or a dropped keepdims."""
    found = reduction(v, node, head)
    if found:
        return found
    want = tuple(v.net.quantities[head.name].shape)
    got = tuple(node.shape)
    if len(got) == len(want) + 1:
        for axis in range(len(got)):
            summed = ir.Reduce(want, node.pos, "sum", node, axis, False)
            if tuple(got[:axis] + got[axis + 1 :]) == want and v.holds(
                summed, head, v.exact, v.parser
            ):
                return f"a missing sum over axis {axis} (the batch): sum(formula, axis={axis})"
    return None


def numeric_values(v, node, head):
    """The formula's value and the gradient's, in float64 at the numeric sizes."""
    ev = v.numeric
    got = np.asarray(ev.claim(node, v.defs_env(ev, v.parser, node=node)), dtype=float)
    want = np.asarray(ev.truth(head.name), dtype=float)
    got = got.T if head.transposed and got.ndim == 2 else got
    return got, want


def factor(v, node, head) -> str | None:
    """Off by a constant factor (and which: a sign, 1/B, 2, 1/keep_prob)."""
    got, want = numeric_values(v, node, head)
    got = got.reshape(want.shape) if got.size == want.size else got
    mask = np.abs(got) > 1e-9
    if not mask.any() or got.shape != want.shape:
        return None
    ratios = want[mask] / got[mask]
    if not np.allclose(ratios, ratios[0], rtol=1e-7):
        return None
    c = next((c for c in name_factors(v, ratios[0]) if scaled_holds(v, node, head, c)), None)
    if c is None:
        return None
    if c == -1:
        return "sign: the formula is the negative of the gradient"
    return f"off by a constant factor: the gradient is {text_of(c)} times the formula{why(c)}"


def scaled_holds(v, node, head, c) -> bool:
    """Whether ``c`` times the formula is the gradient (exact)."""
    scaled = ir.Binary(node.shape, node.pos, "*", ir.Scalar((), node.pos, c), node)
    return v.holds(scaled, head, v.exact, v.parser)


def transposed(v, node, head) -> str | None:
    """The transpose of the gradient, decided by value (square matrices included)."""
    got = node.shape
    want = v.net.quantities[head.name].shape
    if len(got) != 2 or (tuple(got) != tuple(reversed(want)) and got[0] != got[1]):
        return None
    if v.holds(node, replace(head, transposed=not head.transposed), v.exact, v.parser):
        return f"transposed: the formula is (∂{v.net.loss}/∂{head.name})ᵀ"
    return None


def term(v, node, head) -> str | None:
    """A term of the gradient missing, or present with the wrong factor (the 2 of an L2)."""
    form = v.d.step(head.name).matrix
    if not isinstance(form, sp.MatAdd):
        return None
    ev = v.numeric
    got, want = numeric_values(v, node, head)
    for t in form.args:
        part = np.asarray(evaluate(t, ev.env, ev.funcs), dtype=float)
        if part.size != want.size or got.shape != want.shape:
            continue
        part = part.reshape(want.shape)
        if np.allclose(got, want - part, rtol=1e-7, atol=1e-9):
            return f"a term is missing: {text_of(t)}{use_of(v, t, head.name)}"
        mask = np.abs(part) > 1e-9
        if not mask.any():
            continue
        k = (want - got)[mask] / part[mask]
        if np.allclose(k, k[0], rtol=1e-7) and np.allclose(got, want - k[0] * part, atol=1e-9):
            c = name_factor(v, 1 - k[0])
            if c is not None:
                return f"a term off by a constant factor: {text_of(c)} × ({text_of(t)})"
    return None


def extra_term(v, node, head) -> str | None:
    """An addend whose removal makes the formula hold: an extra term."""
    for extra in addends(node):
        rest = without_addend(node, extra)
        if rest is not None and v.holds(rest, head, v.exact, v.parser):
            return f"an extra term: {show(extra)}"
    return None


def reduction(v, node, head) -> str | None:
    """A sum over the wrong axis, or a dropped keepdims, in the formula or its definitions."""
    for owner, tree in places(v, node):
        for r in [n for n in ir.walk(tree) if isinstance(n, ir.Reduce)]:
            fixes = []
            if r.axis is not None and len(r.arg.shape) == 2:
                fixes.append(("axis", replace(r, axis=1 - r.axis, shape=_reduced(r, 1 - r.axis))))
            if r.axis is not None and not r.keepdims:
                fixes.append(("keepdims", replace(r, keepdims=True, shape=_kept(r))))
            for kind, fix in fixes:
                if repaired_holds(v, node, head, owner, tree, r, fix):
                    if kind == "axis" and r.axis is not None:
                        return (
                            f"a reduction over the wrong axis: {r.op}(…, axis={r.axis}) where "
                            f"axis={1 - r.axis} belongs"
                        )
                    return f"a dropped keepdims: {r.op}(…, axis={r.axis}) must keep its axis"
    return None


def _reduced(r, axis):
    shape = r.arg.shape
    if r.keepdims:
        return tuple(sp.Integer(1) if i == axis else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i != axis)


def _kept(r):
    return tuple(sp.Integer(1) if i == r.axis else d for i, d in enumerate(r.arg.shape))


def places(v, node):
    """The formula itself, then each definition it uses: where a repair may go."""
    yield None, node
    for name in v.uses(node, v.parser.claim_nodes):
        tree = v.parser.claim_nodes[name]
        if tree is not None:
            yield name, tree


def repaired_holds(v, node, head, owner, tree, old, new) -> bool:
    """Whether the formula holds with ``old`` replaced by ``new`` in ``tree``
    (the formula itself when ``owner`` is None, else the definition ``owner``).
    """
    fixed = swap(tree, old, new)
    if owner is None:
        return _safe_holds(v, fixed, head, None)
    return _safe_holds(v, node, head, {owner: fixed})


def _safe_holds(v, node, head, override) -> bool:
    try:
        got_shape = node.shape if override is None else None
        want = tuple(v.net.quantities[head.name].shape)
        if got_shape is not None and tuple(got_shape) != want and not head.transposed:
            return False
        return v.holds(node, head, v.exact, v.parser, override=override)
    except (ValueError, IndexError):  # a repair that does not broadcast
        return False


def wrong_derivative(v, node, head) -> str | None:
    """A derivative at the wrong point, or of the wrong layer's function."""
    spots = [(None, w) for w in v.derivs] + [
        (name, w) for name, ws in v.def_derivs.items() for w in ws
    ]
    for owner, where in spots:
        for fn, arg in alternatives(v, where):
            # another function takes its own params (relu none, elu alpha): its defaults
            params = where.params if fn == where.fn else _default_params(fn)
            new = derivative_ir(fn, arg, params, fn in v.net.funcs)
            if owner is None:
                fixed, override = swap(node, where.node, new), None
            else:
                fixed, override = node, {owner: swap(v.parser.claim_nodes[owner], where.node, new)}
            if v.holds(fixed, head, v.exact, v.parser, override=override):
                if fn != where.fn:
                    return f"the derivative of the wrong function: {where.fn}' where {fn}' belongs"
                return (
                    f"a derivative taken at the wrong point: {where.fn}'({show(where.arg)})"
                    f" should be {fn}'({show(arg)})"
                )
    return None


def _default_params(fn: str) -> tuple:
    """The default params of a registered function (none for a generic ``func``)."""
    rule = RULES.get(fn)
    return tuple(sp.Float(value) for _, value in rule.params) if rule else ()


def alternatives(v, where):
    """(function, argument) pairs a derivative might have been meant at: the
    network's functions and the arguments of its calls, inputs and intermediates of that shape.
    """
    user = v.user_net
    args = [eq.expr.arg for eq in user.equations if isinstance(eq.expr, (ir.Call, ir.Softmax))]
    args += [
        ir.Ref(q.shape, (1, 1), q.name)
        for q in user.quantities.values()
        if q.kind in ("intermediate", "input")
    ]
    args = [a for a in args if a.shape == where.arg.shape]
    calls = [eq.expr.fn for eq in user.equations if isinstance(eq.expr, ir.Call)]
    fns = list(dict.fromkeys([where.fn, *user.funcs, *calls]))
    for fn, arg in itertools.product(fns, args):
        if fn.endswith("'") or (fn == where.fn and show(arg) == show(where.arg)):
            continue
        yield fn, arg


def counterexample(v, node, head) -> dict:
    """One entry where the formula and the gradient differ most (numerically), with
    the sizes and seed to reproduce it, or both shapes when they differ.
    """
    got, want = numeric_values(v, node, head)
    out = {"sizes": dict(v.numeric.dims), "seed": 1}
    if got.size == want.size:
        got = got.reshape(want.shape)
        idx = np.unravel_index(int(np.argmax(np.abs(got - want))), want.shape)
        out.update(
            {
                "entry": [int(i) for i in idx],
                "formula": float(got[idx]),
                "gradient": float(want[idx]),
            }
        )
    else:
        out.update({"formula_shape": list(got.shape), "gradient_shape": list(want.shape)})
    return out


def addends(node: ir.Node) -> list:
    """The two sides of a top-level sum or difference (none otherwise)."""
    if isinstance(node, ir.Binary) and node.op in "+-":
        return [node.a, node.b]
    return []


def without_addend(node: ir.Node, gone: ir.Node):
    """The formula with the addend ``gone`` left out (None if it is not one)."""
    if not isinstance(node, ir.Binary) or node.op not in "+-":
        return None
    if node.b is gone:
        return node.a
    if node.a is gone:
        return node.b if node.op == "+" else ir.Neg(node.b.shape, node.b.pos, node.b)
    return None


def swap(tree: ir.Node, old: ir.Node, new: ir.Node) -> ir.Node:
    """``tree`` with the node ``old`` (by identity) replaced by ``new``."""
    if tree is old:
        return new
    kids: dict[str, Any] = {
        f: swap(getattr(tree, f), old, new)
        for f in ("a", "b", "base", "arg")
        if isinstance(getattr(tree, f, None), ir.Node)
    }
    return replace(tree, **kids) if kids else tree


def by_value(v, node, head) -> str | None:
    """Derivative factors written out (``1 - Z1**2``): found on the values, as for code."""
    got, want = numeric_values(v, node, head)
    if got.size != want.size:
        return None

    class View:  # what derivative_of reads, with numeric sizes for the batch
        net, numeric = v.net, v.numeric
        batch = str(v.batch) if v.batch is not None else None
        per_example = v.per_example

    return derivative_of(View, head.name, got.reshape(want.shape), want, None)


def labels(v, node, head) -> str | None:
    """Wrong only at the entries ``[range(N), y]`` of a labels target (the one-hot term)."""
    got, want = numeric_values(v, node, head)
    if got.shape != want.shape:
        return None
    ev = v.exact
    exact = (head.name, ev.claim(node, v.defs_env(ev, v.parser, node=node)), ev.truth(head.name))
    return label_entries(v, head.name, got, want, exact)


def flipped_sign(v, node, head) -> str | None:
    """``y + t`` where ``y - t`` belongs, in the formula or a definition it uses."""
    for owner, tree in places(v, node):
        for b in [n for n in ir.walk(tree) if isinstance(n, ir.Binary) and n.op in "+-"]:
            fix = replace(b, op="-" if b.op == "+" else "+")
            if repaired_holds(v, node, head, owner, tree, b, fix):
                where = f" (in {owner.split('__')[0]})" if owner else ""
                return f"a flipped sign: {show(b)} where {show(fix)} belongs{where}"
    return None


def missing_factor(v, node, head) -> str | None:
    """A derivative factor left out: some part of the formula times f'(z) makes it right."""
    calls = [e.expr for e in v.user_net.equations if isinstance(e.expr, ir.Call)]
    for owner, tree in places(v, node):
        for part in [n for n in ir.walk(tree) if n.shape and not isinstance(n, ir.Scalar)]:
            for call in calls:
                if tuple(call.arg.shape) != tuple(part.shape):
                    continue
                d = derivative_ir(call.fn, call.arg, call.params, call.generic)
                fix = ir.Binary(part.shape, part.pos, "*", part, d)
                if repaired_holds(v, node, head, owner, tree, part, fix):
                    return f"a derivative factor is missing: {call.fn}'({show(call.arg)})"
    return None


def _prime(rule: str, z):
    forms = {
        "sigmoid": lambda z: np.exp(-z) / (1 + np.exp(-z)) ** 2,
        "tanh": lambda z: 1 - np.tanh(z) ** 2,
        "relu": lambda z: (z > 0).astype(float),
    }
    return forms[rule](z) if rule in forms else None


def dropped_keepdims(v, code: str, head) -> str | None:
    """A shape clash that ``keepdims=True`` on a reduction repairs (and then holds)."""
    import ast

    tree = ast.parse(code, mode="eval")
    changed = False
    for call in ast.walk(tree):
        if not isinstance(call, ast.Call):
            continue
        name = call.func.id if isinstance(call.func, ast.Name) else ""
        if name.removeprefix("_m_") in ("sum", "mean"):
            keys = {k.arg for k in call.keywords}
            has_axis = "axis" in keys or "dim" in keys or len(call.args) > 1
            if has_axis and not keys & {"keepdims", "keepdim"} and len(call.args) < 3:
                call.keywords.append(ast.keyword("keepdims", ast.Constant(True)))
                changed = True
    if not changed:
        return None
    try:
        fixed = v.parser.claim(ast.unparse(tree), v.line)
    except Exception:  # noqa: BLE001 - any failure means the repair does not apply
        return None
    if _safe_holds(v, fixed, head, None):
        return "a dropped keepdims: the reduction must keep its axis to broadcast"
    return None
