"""Named mistakes decided on values, shared by claims (:mod:`.diagnose`) and whole functions
(:mod:`.function`): a constant factor and which (1/m, the 2 of a square), a transpose, a
missing term and which use it comes from, a derivative at the wrong point or of the wrong
function, a wrong entry at the labels.  Each finds its evidence numerically and, where a
constant is named, confirms it exactly (:func:`.evaluate.is_zero`).

``check`` is anything with ``net``, ``numeric`` and ``exact`` (:class:`.evaluate.Evaluator`),
``d`` (the derivation), ``batch`` (the batch dimension's name or None) and ``per_example(q)``.
"""

from __future__ import annotations

import itertools

import numpy as np
import sympy as sp

from .. import ir
from ..indices import as_expr
from ..numeric import evaluate
from ..printing import text as text_of
from . import steps, windows
from .evaluate import is_zero


def why(c) -> str:
    """Which factor people drop: a batch mean's 1/m, the 2 of a square, 1/keep_prob."""
    names = sorted(str(s) for s in c.free_symbols)
    if not names:
        return " (the 2 of a square?)" if abs(c) in (2, sp.Rational(1, 2)) else ""
    num, den = sp.fraction(sp.together(c))
    if len(names) == 1 and sp.simplify(num - den) in (1, -1):  # n/(n − 1), (n − 1)/n
        return f" (Bessel's correction? 1/({text_of(num)}) where 1/({text_of(den)}) belongs)"
    if num == 1:
        return f" (a missing 1/{text_of(den)})"
    if den == 1:
        return f" (an extra 1/{text_of(num)})"
    return ""


def name_factor(v, ratio: float):
    """A short expression in dims, consts and small numbers that equals ``ratio``."""
    return next(iter(name_factors(v, ratio)), None)


def name_factors(v, ratio: float) -> list:
    """Every short expression in dims, consts and small numbers that equals ``ratio`` at
    the numeric sizes (``1/3`` and ``1/n`` when n is 3 there): the exact check picks."""
    ev = v.numeric
    syms = [sp.Symbol(d, integer=True, positive=True) for d in v.net.dims]
    syms += [sp.Symbol(c, real=True) for c in v.net.consts]
    values = {s: ev.dims.get(str(s), ev.scalars.get(str(s))) for s in syms}
    candidates = [sp.Integer(k) for k in (-1, 2, -2, 3, -3, 4)]
    candidates += [sp.Rational(1, k) for k in (2, -2, 3, -3)]
    for s in syms:
        candidates += [1 / s, s, -1 / s, s / (s - 1), (s - 1) / s, 2 / s, 2 * s]
    for s1, s2 in itertools.combinations(syms, 2):
        candidates += [1 / (s1 * s2), s1 * s2, s1 / s2, s2 / s1]
    found = []
    for c in candidates:
        try:
            value = float(c.subs(values))
        except (TypeError, ZeroDivisionError):
            continue
        if np.isclose(value, ratio, rtol=1e-9):
            found.append(c)
    return found


def use_of(v, t, wrt: str) -> str:
    """Which use of ``wrt`` a term of its gradient comes from (for shared weights)."""
    deltas = [str(s.name)[6:] for s in t.atoms(sp.MatrixSymbol) if str(s.name).startswith("delta_")]
    uses = [e.name for e in v.net.equations if wrt in e.refs()]
    for name in deltas:
        if name in uses and len(uses) > 1:
            return f" (from the use of {wrt} in {name}, use {uses.index(name) + 1} of {len(uses)})"
    return ""


def value_diagnosis(check, num_wrong, exact_wrong) -> str | None:
    """Named mistakes decided on the values of the line (given true inputs)."""
    q, got, want = num_wrong
    got, want = np.asarray(got, float), np.asarray(want, float)
    if got.shape != want.shape:
        if got.T.shape == want.shape and np.allclose(got.T, want, rtol=1e-7, atol=1e-9):
            return f"transposed: the line holds (∂{check.net.loss}/∂{q})ᵀ"
        return windows.shape_diagnosis(check, q, got, want) or batch_sum(got, want)
    tests = (
        windows.diagnosis,  # before factor_of: an average's 1/4 is no dim that is 4
        steps.diagnosis,
        factor_of,
        transposed_of,
        term_of,
        derivative_of,
        label_entries,
        missing_array,
    )
    for test in tests:
        found = test(check, q, got, want, exact_wrong)
        if found:
            return found
    return None


def missing_array(check, q, got, want, exact_wrong) -> str | None:
    """A whole factor left out (``dx = (x > 0)`` for ``dout * (x > 0)``): the line times a
    value of the network, or times another gradient (the incoming one), is the gradient."""
    ev = check.numeric
    arrays = {n: v for n, v in ev.np_env.items() if n in check.net.quantities}
    arrays |= {
        f"∂{check.net.loss}/∂{k}": ev.truth(k)
        for k in check.net.quantities
        if k != q and f"delta_{k}" in ev.env
    }
    for name, value in arrays.items():
        value = np.asarray(value, dtype=float)
        if value.shape == want.shape and np.any(value) and np.allclose(got * value, want):
            return f"a factor is missing: the line times {name} is the gradient"
    return None


def label_entries(check, q, got, want, exact_wrong) -> str | None:
    """Wrong only at the entries ``[range(N), y]`` of a labels target: the one-hot term of a
    softmax or SVM gradient (``dscores[range(N), y] -= 1``) missing or wrong."""
    ev = check.numeric
    for t in check.net.quantities.values():
        if t.classes is None or want.ndim != 2:
            continue
        y = np.asarray(ev.values[t.name]).ravel()
        if want.shape[0] != y.size or not np.all(y < want.shape[1]):
            continue
        picked = np.zeros(want.shape, dtype=bool)
        picked[np.arange(y.size), y] = True
        diff = got - want
        if not np.allclose(diff[~picked], 0, atol=1e-9) or np.allclose(diff[picked], 0):
            continue
        where = f"[range({t.shape[0]}), {t.name}]"
        named = _label_offset(check, t.name, diff[picked], exact_wrong)
        by = f" (line − gradient = {named} there)" if named is not None else ""
        return (
            f"wrong only at the labels' entries {where}{by}: the one-hot term "
            f"(d{q}{where} -= …) is missing or wrong"
        )
    return None


def _label_offset(check, labels: str, offsets, exact_wrong):
    """The named constant by which a line is off at every label entry, confirmed exactly."""
    if not isinstance(exact_wrong, tuple) or exact_wrong[1] is None:
        return None
    if not np.allclose(offsets, offsets[0]):
        return None
    _, got, want = exact_wrong
    got, want = np.asarray(got, dtype=object), np.asarray(want, dtype=object)
    if got.shape != want.shape:
        return None
    y = np.asarray(check.exact.values[labels]).ravel()
    at = (np.arange(y.size), y)
    subs = {sp.Symbol(k, integer=True, positive=True): v for k, v in check.exact.dims.items()}
    for c in name_values(check, float(offsets[0])):
        cv = as_expr(c).subs(subs)
        if all(
            is_zero(a - b - cv, check.exact.explicit)
            for a, b in zip(got[at], want[at], strict=True)
        ):
            return c
    return None


_FORMS = {  # f'(z) from its input z, and from its output a = f(z)
    "sigmoid": (lambda z: np.exp(-z) / (1 + np.exp(-z)) ** 2, lambda a: a * (1 - a)),
    "tanh": (lambda z: 1 - np.tanh(z) ** 2, lambda a: 1 - a**2),
}


def derivative_of(check, q, got, want, exact_wrong) -> str | None:
    """A derivative factor at the wrong point (``1 - Z1**2`` for ``1 - A1**2``) or of the wrong
    activation (σ' where tanh' belongs): the line equals the gradient with that factor swapped."""
    ev = check.numeric
    scales = [1.0] + ([float(ev.dims[check.batch])] if check.per_example(q) else [])
    for eq in check.net.equations:
        if not (isinstance(eq.expr, ir.Call) and eq.expr.fn in _FORMS):
            continue
        z = np.asarray(ev.np_env.get(_arg_name(eq.expr)), dtype=float)
        right = _FORMS[eq.expr.fn][0](z) if z.shape == want.shape else None
        if right is None:
            continue
        for fn, (of_input, of_output) in _FORMS.items():
            for name, x in ev.np_env.items():
                x = np.asarray(x, dtype=float)
                if x.shape != want.shape:
                    continue
                for form, how in (
                    (of_input, f"{fn}'({name})"),
                    (of_output, f"{fn}' computed from {name} as if it were {fn}'s output"),
                ):
                    for k in scales:
                        if np.allclose(got, k * want / right * form(x), rtol=1e-6, atol=1e-9):
                            if form is _FORMS[eq.expr.fn][1] and name == eq.name:
                                continue  # that is the right factor
                            if fn == eq.expr.fn and form is of_input and name == eq.name:
                                return (  # cs231n's 1 - np.tanh(next_h)**2, next_h = tanh(…)
                                    f"the derivative of {fn} taken at its output: {how} where "
                                    f"{name} is already {fn}({_arg_name(eq.expr)}); "
                                    f"{fn}'({_arg_name(eq.expr)}) belongs"
                                    + (", that is 1 − " + name + "²" if fn == "tanh" else "")
                                )
                            if fn != eq.expr.fn:
                                return (
                                    f"the derivative of the wrong function: {how} where "
                                    f"{eq.expr.fn}' belongs"
                                )
                            return (
                                f"a derivative taken at the wrong point: {how} where "
                                f"{eq.expr.fn}'({_arg_name(eq.expr)}) belongs"
                            )
    return None


def _arg_name(call: ir.Call) -> str | None:
    return call.arg.name if isinstance(call.arg, ir.Ref) else None


def batch_sum(got, want) -> str | None:
    """A missing sum over one axis (the batch): the line summed over it is the gradient."""
    for axis in range(got.ndim):
        summed = got.sum(axis=axis)
        if summed.size == want.size and np.allclose(summed.reshape(want.shape), want):
            return f"a missing sum over axis {axis} (the batch)"
    for axes in itertools.combinations(range(got.ndim), 2):  # a conv bias: the positions too
        summed = got.sum(axis=axes)
        if summed.size == want.size and np.allclose(summed.reshape(want.shape), want):
            return f"a missing sum over axes {axes[0]} and {axes[1]}"
    return None


def factor_of(check, q, got, want, exact_wrong) -> str | None:
    """Off by a named constant factor (a sign, 1/m, 1/keep_prob), confirmed exactly."""
    mask = np.abs(got) > 1e-9
    if not mask.any():
        return None
    ratios = want[mask] / got[mask]
    if not np.allclose(ratios, ratios[0], rtol=1e-7):
        return None
    c = next((c for c in name_values(check, ratios[0]) if confirm(check, exact_wrong, c)), None)
    if c is None:
        return None
    if c == -1:
        return "sign: the line is the negative of the gradient"
    return f"off by a constant factor: the gradient is {c} times the line{why(c)}"


def transposed_of(check, q, got, want, exact_wrong) -> str | None:
    """A square gradient's transpose, decided by value."""
    if got.ndim == 2 and got.shape[0] == got.shape[1] and np.allclose(got.T, want, atol=1e-9):
        return f"transposed: the line holds (∂{check.net.loss}/∂{q})ᵀ"
    return None


def term_of(check, q, got, want, exact_wrong) -> str | None:
    """A term of the gradient missing, or with the wrong factor (the 2 of an L2 penalty)."""
    if q not in check.net.quantities:  # a stack over time or a carry: no one form
        return None
    form = check.d.step(q).matrix
    if not isinstance(form, sp.MatAdd):
        return None
    ev = check.numeric
    for t in form.args:
        part = np.asarray(evaluate(t, ev.env, ev.funcs), dtype=float)
        if part.size != want.size:
            continue
        part = np.broadcast_to(part.reshape(-1), want.size).reshape(want.shape)
        if np.allclose(got, want - part, rtol=1e-7, atol=1e-9):
            return f"a term is missing: {text_of(t)}{use_of(check, t, q)}"
        if len(form.args) > 2 and np.allclose(got, part, rtol=1e-7, atol=1e-9):
            length = getattr(getattr(check, "steps", None), "length", 0)
            over = " over t" if length == len(form.args) else " over its uses"
            return (
                f"the accumulation{over} is missing: the line holds only {text_of(t)}, one of "
                f"the {len(form.args)} terms of ∂{check.net.loss}/∂{q}; it needs their sum "
                "(+= where = is written?)"
            )
        mask = np.abs(part) > 1e-9
        k = (want - got)[mask] / part[mask] if mask.any() else np.array([0.0])
        if mask.any() and np.allclose(got, want - k[0] * part, rtol=1e-7, atol=1e-9):
            c = name_value(check, 1 - k[0])
            if c is not None:
                return f"a term off by a constant factor: {c} × ({text_of(t)})"
    return None


def name_value(check, ratio):
    """A short expression in dims and consts equal to ``ratio`` (see :func:`name_values`)."""
    return next(iter(name_values(check, ratio)), None)


def name_values(check, ratio) -> list:
    """The named constants equal to ``ratio`` at the numeric sizes."""

    class View:  # name_factors reads net and numeric only
        net, numeric = check.net, check.numeric

    return name_factors(View, ratio)


def confirm(check, exact_wrong, c) -> bool:
    """Whether the line times ``c`` is the gradient exactly.  A line equal to it at the exact
    sizes by a coincidence of small sizes (``exact_wrong`` is ``"sizes"``) has only the
    numeric evidence, at sizes 3 and up, all different."""
    if isinstance(exact_wrong, str):
        return exact_wrong == "sizes"
    if exact_wrong is None or exact_wrong[1] is None:
        return False
    _, got, want = exact_wrong
    subs = {sp.Symbol(k, integer=True, positive=True): v for k, v in check.exact.dims.items()}
    subs.update({sp.Symbol(k, real=True): check.exact.values[k] for k in check.net.consts})
    cv = as_expr(c).subs(subs)
    return all(
        is_zero(cv * a - b, check.exact.explicit)
        for a, b in zip(np.ravel(got), np.ravel(want), strict=True)
    )
