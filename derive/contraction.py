"""Einsum forms as array operations: one plan, evaluated on arrays or printed as NumPy.

An :class:`~derive.matexpr.Einsum` form is a sum of terms ``Σ_{summed}
Π factors`` over index expressions.  :func:`plan` turns it into a small
tree of array operations, the way careful NumPy computes it:

* each array entry becomes a view of the array: ``x[b, D t + d]`` a
  reshape that splits an axis, ``x[b, Digit(m, D, T), Digit(m, 1, D)]`` one
  that merges axes, ``x[b, j + c]`` a slice (or, under ``InRange``, a
  zero-padded window: the adjoint of a slice);
* factors over the same indices are one element-wise block; a block whose
  indices are a subset of another's multiplies into it (broadcasting);
* an index summed in one block only is summed there first (``.sum(axis)``);
* what is left is one ``einsum`` (printed as a batched ``@`` where one fits).

:func:`run` evaluates a plan on NumPy arrays (floats, SymPy values or exact
field elements, through :class:`~derive.numeric.Functions`) and
:func:`code` prints it, so the proofs check the same plan the printers show.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy as sp

from .errors import DerivationError
from .indices import as_expr, dim_of, indices_in, is_index
from .maxpool import (
    ArgmaxAt,
    Route,
    fold_routes,
    pool_onehot,
    pool_pick,
    route_array,
    route_dims,
    unfold,
    window_argmax,
)
from .operand import is_operand
from .rules import GenericFunction, SoftmaxAt
from .slide import plain, typical_size
from .tensorindex import Digit, InRange, Window, unwrap

Plan = tuple  # ("op", ...) nodes, see the module docstring


@dataclass
class _Term:
    """Bookkeeping while planning one term: ranges that ``InRange`` factors give."""

    ranges: dict = field(default_factory=dict)  # position expression -> axis size
    shapes: dict = field(default_factory=dict)  # array name -> shape, where known


# ---------------------------------------------------------------------------
# planning


def plan(form) -> Plan:
    """The plan computing an Einsum form: an array with one axis per output index."""
    out = form.out
    want = tuple(i for i in out if is_index(i))
    common = _common_factor(form.terms)
    if common is not None:  # a ⊙ (δ − Σ_p a δ): the shared factor once
        terms: list = [(common, ())]
    else:
        terms = [(a, tuple(s)) for f, s in form.terms for a in sp.Add.make_args(f)]
    parts = [_term(a, s, want, full=True, shapes=form.shapes) for a, s in terms]
    result: Plan = ("num", sp.Integer(0)) if not parts else parts[0]
    if len(parts) > 1:
        result = _concatenation(parts) or ("op", "+", parts)
    if not parts and want:
        result = ("broadcast", result, tuple(dim_of(i) for i in want))
    if len(want) != len(out):  # size-1 axes of the result: literal index 0
        result = ("expand", result, tuple(n for n, i in enumerate(out) if not is_index(i)))
    return result


def _common_factor(terms: list) -> sp.Expr | None:
    """The terms as one product with their common factors pulled out, if they share one."""
    if len(terms) < 2 and all(not isinstance(f, sp.Add) for f, _ in terms):
        return None
    total = sp.Integer(0)
    for f, summed in terms:
        if f.has(InRange, Window, Digit):
            return None
        outer = sp.Mul(*[a for a in sp.Mul.make_args(f) if not set(summed) & indices_in(a)])
        inner = sp.Mul(*[a for a in sp.Mul.make_args(f) if set(summed) & indices_in(a)])
        for k in summed:
            inner = sp.Sum(inner, (k, 0, dim_of(k) - 1))
        total += outer * inner
    factored = sp.factor_terms(total)
    if not isinstance(factored, sp.Mul) or not any(isinstance(a, sp.Add) for a in factored.args):
        return None
    return factored


def _concatenation(parts: list) -> Plan | None:
    """Zero-padded windows that tile one axis: ``np.concatenate`` of the arrays."""
    if not all(p[0] == "window" and p[5] is not None for p in parts):
        return None
    axis, length = parts[0][2], parts[0][4]
    if any(p[2] != axis or sp.simplify(p[4] - length) != 0 for p in parts):
        return None
    pieces = sorted(parts, key=lambda p: sp.default_sort_key(sp.expand(-p[3])))
    at = sp.Integer(0)
    for p in pieces:
        if sp.simplify(-p[3] - at) != 0:
            return None
        at = sp.expand(at + p[5])
    if sp.simplify(at - length) != 0:
        return None
    return ("concat", [p[1] for p in pieces], axis)


def _order(idx, want: tuple, summed: tuple) -> tuple:
    pref = list(want) + [k for k in summed if k not in want]
    return tuple(sorted(idx, key=lambda k: (pref.index(k) if k in pref else len(pref), str(k))))


def _term(
    factor: sp.Expr, summed: tuple, want: tuple, full: bool = False, shapes=None, ctx=None
) -> Plan:
    """One term ``Σ_{summed} factor``, its axes in the order ``want`` (size 1 where absent)."""
    ctx = _Term(shapes=dict(shapes or (ctx.shapes if ctx else {})))
    coeff = sp.Integer(1)
    factor = sp.factor_terms(factor)  # 2 (z − y) / B rather than (−2 y + 2 z) / B
    blocks: dict[frozenset, list] = {}
    # window offsets routed (max-pooling, a strided convolution's input gradient)
    factors, summed = unfold(list(sp.Mul.make_args(factor)), summed)
    for f in _absorb_ranges(factors, ctx):
        idx = frozenset(indices_in(f))
        if idx or _has_arrays(f):  # a full sum of arrays is a block over no index
            blocks.setdefault(idx, []).append(f)
        else:
            coeff *= f
    live = set(summed)
    items: list[tuple[Plan, tuple]] = []
    for idx, fs in blocks.items():
        if len(fs) == 1 and isinstance(fs[0], sp.Indexed):  # a view: its own axis order
            items.append(_view(fs[0], ctx))
            continue
        axes = _order(idx, want, summed)
        items.append((_elem(sp.Mul(*fs), axes, ctx), axes))
    for k in summed:  # a sum over an index no factor holds: its extent
        if all(k not in ax for _, ax in items):
            coeff *= dim_of(k)
            live.discard(k)
    items = _index_blocks(items, live, want)
    picked = pool_pick(items, live, want)  # a max-pool's forward: the entry at the argmax
    items = [picked] if picked is not None else items
    items = _reduce(items, live, want, summed)
    if not items:
        result: Plan = ("num", coeff)
        if full and want:
            result = ("broadcast", result, tuple(dim_of(i) for i in want))
        return result
    if len(items) == 1:
        p, axes = items[0]
    else:
        out = tuple(i for i in want if any(i in ax for _, ax in items))
        p, axes = fold_routes(_einsum(items, out)), out
    p = _align(p, axes, tuple(i for i in want if i in axes))
    axes = tuple(i for i in want if i in axes)
    p = _expand_to(p, axes, want)
    if coeff != 1:
        p = ("op", "*", [("num", coeff), p])
    if full and set(axes) != set(want):
        p = ("broadcast", p, tuple(dim_of(i) for i in want))
    return p


def _absorb_ranges(factors: list, ctx: _Term) -> list:
    """The factors without the ``InRange`` factors that zero-padded windows absorb.

    An ``InRange`` is absorbed only when that entry is itself a factor (zero outside
    the array); inside a function it stays a mask: σ(0) ≠ 0."""
    entries = [p for f in factors if isinstance(f, sp.Indexed) for p in f.indices]
    kept = []
    for f in factors:
        if isinstance(f, InRange):
            e, lo, hi = f.args
            pos = sp.expand(e - lo)
            if any(sp.expand(p - pos) == 0 for p in entries):
                ctx.ranges[pos] = sp.expand(hi - lo)
                continue
        kept.append(f)
    return kept


def _reduce(items, live: set, want: tuple, summed: tuple):
    """Multiply subset blocks into supersets, sum indices held by one block, until stable."""
    changed = True
    while changed and len(items) > 0:
        changed = False
        for a in items:
            b = next((b for b in items if b is not a and set(a[1]) <= set(b[1])), None)
            if b is not None:
                pa = _expand_to(_align(a[0], a[1], tuple(i for i in b[1] if i in a[1])), a[1], b[1])
                merged = (("op", "*", [b[0], pa]), b[1])
                items = [x for x in items if x is not a and x is not b] + [merged]
                changed = True
                break
        if changed:
            continue
        for k in [k for k in summed if k in live]:  # in order: the printed code is stable
            holders = [x for x in items if k in x[1]]
            if len(holders) == 1:
                (p, axes), alone = holders[0], [k]
                alone += [
                    j
                    for j in axes
                    if j in live
                    and j != k
                    and all(j not in x[1] for x in items if x is not holders[0])
                ]
                keep = tuple(i for i in axes if i not in alone)
                summed_axes = tuple(sorted(axes.index(j) for j in alone))
                reduced = (("sum", p, summed_axes, not keep), keep)
                items = [x for x in items if x is not holders[0]] + [reduced]
                live -= set(alone)
                changed = True
                break
    if live and len(items) < 2:
        raise DerivationError("an index summed over no array")
    return items


def _onehot_axes(item) -> tuple | None:
    """The axes ``(i…, v)`` of a one-hot view ``onehot(ix)[i…, v]`` as it is, else None."""
    from .elementwise import ONEHOT_PREFIX

    p, axes = item
    if p[0] != "arr" or not p[1].startswith(ONEHOT_PREFIX) or p[2] != len(axes):
        return None
    return tuple(axes) if len(set(axes)) == len(axes) else None


def _index_blocks(items: list, live: set, want: tuple) -> list:
    """``Σ_v onehot(ix)[i…, v] X[v, …]`` as the gather ``X[ix]`` and ``Σ_i… onehot(ix)[i…, v]
    X[i…, …]`` as the scatter-add of ``X`` into the rows ``ix``: the one-hot never built."""
    from .elementwise import ONEHOT_PREFIX

    changed = True
    while changed:
        changed = False
        for hot in items:
            axes = _onehot_axes(hot)
            if axes is None:
                continue
            rows, v = axes[:-1], axes[-1]
            ix = hot[0][1][len(ONEHOT_PREFIX) :]
            others = [x for x in items if x is not hot]
            if v in live and v not in want:  # the gather: v summed against one array
                holders = [x for x in others if v in x[1]]
                if len(holders) != 1 or set(rows) & set(holders[0][1]):
                    continue
                (p, xa), rest = holders[0], tuple(i for i in holders[0][1] if i != v)
                new: tuple[Plan, tuple] = (
                    ("gather", _align(p, xa, (v, *rest)), ix),
                    (*rows, *rest),
                )
                live.discard(v)
            elif v in want and rows and all(i in live and i not in want for i in rows):
                holders = [x for x in others if set(rows) & set(x[1])]  # the scatter-add
                if len(holders) != 1 or not set(rows) <= set(holders[0][1]) or v in holders[0][1]:
                    continue
                (p, xa), rest = holders[0], tuple(i for i in holders[0][1] if i not in rows)
                new = (("scatter", _align(p, xa, (*rows, *rest)), ix, dim_of(v)), (v, *rest))
                live.difference_update(rows)
            else:
                continue
            items = [x for x in others if x is not holders[0]] + [new]
            changed = True
            break
    return items


def _einsum(items, out: tuple) -> Plan:
    letters: dict = {}
    for _, axes in items:
        for i in axes:
            letters.setdefault(i, string.ascii_letters[len(letters)])
    subs = tuple("".join(letters[i] for i in axes) for _, axes in items)
    sizes = {c: dim_of(i) for i, c in letters.items()}
    return ("einsum", subs, "".join(letters[i] for i in out), [p for p, _ in items], sizes)


def _align(p: Plan, axes: tuple, order: tuple) -> Plan:
    """``p`` (axes ``axes``) with its axes permuted into ``order`` (a permutation of them)."""
    if tuple(axes) == tuple(order) or len(axes) < 2:
        return p
    return ("perm", p, tuple(axes.index(i) for i in order))


def _expand_to(p: Plan, axes: tuple, target: tuple) -> Plan:
    """``p`` over ``axes`` (in ``target``'s order) with size-1 axes for the rest of ``target``."""
    missing = tuple(n for n, i in enumerate(target) if i not in axes)
    if not missing or not axes:  # a scalar broadcasts as it is
        return p
    return ("expand", p, missing)


def _has_arrays(e: sp.Expr) -> bool:
    return bool(e.atoms(sp.Indexed)) or e.has(sp.Sum, SoftmaxAt) or bool(indices_in(e))


def _elem(e: sp.Expr, axes: tuple, ctx: _Term) -> Plan:
    """An element-wise expression as an array over ``axes`` (size 1 where it does not vary)."""
    if not _has_arrays(e):
        return ("num", e)
    if isinstance(e, sp.Indexed):
        p, own = _view(e, ctx)
        order = tuple(i for i in axes if i in own)
        return _expand_to(_align(p, own, order), order, axes)
    if isinstance(e, sp.Add):
        return ("op", "+", [_elem(a, axes, ctx) for a in e.args])
    if isinstance(e, sp.Mul):
        return ("op", "*", [_elem(a, axes, ctx) for a in e.args])
    if isinstance(e, sp.Pow):
        if _has_arrays(e.exp):
            raise DerivationError(f"no array form for the power {e}")
        return ("pow", _elem(e.base, axes, ctx), e.exp)
    if isinstance(e, sp.Sum):
        idx = indices_in(e)
        inner = tuple(k for k, _, _ in e.limits)
        want = tuple(i for i in axes if i in idx)
        p = _term(e.function, inner, want, ctx=ctx)
        return _expand_to(p, want, axes)
    if isinstance(e, SoftmaxAt):
        if e.k not in axes:
            raise DerivationError(f"softmax over an axis not in {axes}")
        pos = axes.index(e.k)
        inner_axes = axes[:pos] + (e.kappa,) + axes[pos + 1 :]
        body = _elem(e.body, inner_axes, ctx)
        if e.kappa not in indices_in(e.body):
            raise DerivationError("softmax of a constant along its axis")
        return ("softmax", body, pos, e)
    if isinstance(e, InRange):
        return _mask(e, axes)
    if isinstance(e, Route):
        own = tuple(e.args[:3])
        order = tuple(i for i in axes if i in own)
        return _expand_to(_align(("route", *route_dims(e)), own, order), order, axes)
    if isinstance(e, ArgmaxAt):
        p, q = e.bound
        body = _elem(e.body, (*axes, p, q), ctx)
        return ("argmax", body, tuple(dim_of(i) for i in axes))
    if isinstance(e, (sp.Function, GenericFunction)) and e.args and not isinstance(e, Digit):
        if any(_has_arrays(a) for a in e.args[1:]):
            raise DerivationError(f"no array form for {e}")
        return ("call", e, _elem(e.args[0], axes, ctx))
    raise DerivationError(f"no array form for {e}")


def _mask(e: InRange, axes: tuple) -> Plan:
    """An ``InRange`` factor no array entry absorbed: a 0/1 vector along its index."""
    x, lo, hi = e.args
    idx = indices_in(x)
    if len(idx) == 2:  # a window position (pooling routing): a 0/1 matrix
        y = sp.expand(plain(unwrap(x)))
        u, v = (i for i in axes if i in idx)
        a, b = y.coeff(u), y.coeff(v)
        c = sp.expand(y - a * u - b * v)
        if not (a.is_Integer and b.is_Integer) or indices_in(c):
            raise DerivationError(f"no array form for {e}")
        p2: Plan = (
            "slidemask",
            (dim_of(u), int(a)),
            (dim_of(v), int(b)),
            sp.expand(lo - c),
            sp.expand(hi - c),
        )
        return _expand_to(p2, (u, v), axes)
    if len(idx) != 1:
        raise DerivationError(f"no array form for {e}")
    (j,) = idx
    shift = sp.expand(unwrap(x) - j)
    p: Plan = ("mask", dim_of(j), sp.expand(lo - shift), sp.expand(hi - shift))
    return _expand_to(p, (j,), axes)


def _view(e: sp.Indexed, ctx: _Term) -> tuple[Plan, tuple]:
    """An array entry as a view of the array: ``(plan, the indices of its axes)``."""
    name = str(e.base.label)
    positions = list(e.indices)
    from .elementwise import ONEHOT_PREFIX

    hot = pool_onehot(e, ONEHOT_PREFIX)
    if hot is not None:  # a max-pool's one-hot, its window offsets as two axes
        return hot
    p: Plan = ("arr", name, len(positions))
    sizes, new_pos, reshaped = _reshape_view(positions)
    if reshaped:
        p = ("reshape", p, tuple(sizes))
    # 2. numbers select, shifted indices window, bare indices stay
    own: list = []
    extra: list = []  # window axes of sliding-window views: last, in order
    axis = 0
    known = ctx.shapes.get(name)
    for n, x in enumerate(new_pos):
        if (
            known is not None
            and not reshaped
            and is_index(x)
            and x not in ctx.ranges
            and sp.simplify(known[n] - dim_of(x)) != 0
        ):  # an axis of another length than the index's: a window of it
            ctx.ranges[x] = known[n]
        if x.is_Integer:
            p = ("take", p, axis, int(x))
            continue
        if is_index(x) and ctx.ranges.get(x, dim_of(x)) == dim_of(x):
            own.append(x)
            axis += 1
            continue
        idx = indices_in(x)
        if len(idx) == 2:  # a window position s i + p + c: a sliding-window view
            size = ctx.ranges.get(sp.expand(x), None if known is None or reshaped else known[n])
            p = _slide_view(p, axis, x, size, (own, extra, len(new_pos) - n))
            axis += 1
            continue
        if len(idx) != 1:
            raise DerivationError(f"no array form for the entry {e}")
        (j,) = idx
        shift = sp.expand(unwrap(x) - j)
        if indices_in(shift):
            raise DerivationError(f"no array form for the entry {e}")
        size = ctx.ranges.get(sp.expand(x))
        p = ("window", p, axis, shift, dim_of(j), size)
        own.append(j)
        axis += 1
    own += extra
    if len(set(own)) != len(own):
        raise DerivationError(f"a diagonal {e} has no array form")
    return p, tuple(own)


def _slide_view(p: Plan, axis: int, x: sp.Expr, size, axes: tuple) -> Plan:
    """``x[…, a u + b v + c, …]``: a zero-padded window of the axis, slid (the window axis
    last), strided and flipped where a coefficient is negative.  ``axes``: the view's
    axes so far and its window axes (``u`` and ``v`` are added), how many positions are
    left."""
    own, extra, left = axes
    rank = len(own) + len(extra) + left
    e = sp.expand(plain(unwrap(x)))
    u, v = sorted(indices_in(e), key=lambda k: (-typical_size(dim_of(k)), str(k)))
    a, b = e.coeff(u), e.coeff(v)
    c = sp.expand(e - a * u - b * v)
    if not (a.is_Integer and b.is_Integer) or indices_in(c):
        raise DerivationError(f"no array form for the window position {x}")
    a, b = int(a), int(b)
    big_u, big_v = dim_of(u), dim_of(v)
    start = sp.expand(c + min(a, 0) * (big_u - 1) + min(b, 0) * (big_v - 1))
    length = sp.expand(abs(a) * (big_u - 1) + abs(b) * (big_v - 1) + 1)
    # without a known size the position is in range (no padding, nothing absorbed)
    if not (start == 0 and (size is None or sp.simplify(size - length) == 0)):
        p = ("window", p, axis, start, length, size, rank)
    own.append(u)
    extra.append(v)
    return ("slide", p, axis, a, b, sp.expand(abs(b) * (big_v - 1) + 1))


def _reshape_view(positions: list) -> tuple[list, list, bool]:
    """Reshape: split axes read as flat indices, merge runs of digits.

    Each new axis: (its size, or None to keep the source axis; how many source
    axes it consumes), the index it carries, and whether any axis changed.
    """
    sizes: list[tuple] = []
    new_pos: list = []
    n = 0
    reshaped = False
    while n < len(positions):
        x = positions[n]
        if isinstance(x, Digit):
            m, run = x.args[0], []
            while n < len(positions) and isinstance(positions[n], Digit):
                if positions[n].args[0] != m:
                    break
                run.append(positions[n])
                n += 1
            total = sp.Mul(*[d.args[2] for d in run])
            strides = [d.args[1] for d in run]
            whole = sp.simplify(total - dim_of(m)) == 0 and sp.simplify(strides[-1] - 1) == 0
            if not whole:  # some digits only: no view of this array has that axis
                raise DerivationError(f"no array view for the digits {run} of {m}")
            sizes.append((total, len(run)))
            new_pos.append(m)
            reshaped = True
            continue
        split = _flat_digits(x)
        if split is not None:
            for c, k in enumerate(split):
                sizes.append((dim_of(k), 1 if c == 0 else 0))
                new_pos.append(k)
            reshaped = True
        else:
            sizes.append((None, 1))
            new_pos.append(x)
        n += 1
    return sizes, new_pos, reshaped


def _flat_digits(x: sp.Expr) -> list | None:
    """``D t + d`` → ``[t, d]`` (most significant first) when it is a flat index of digits."""
    idx = indices_in(x)
    if len(idx) < 2 or x.has(Digit):
        return None
    e = sp.expand(x)
    coeffs = {k: e.coeff(k) for k in idx}
    if sp.expand(e - sum(c * k for k, c in coeffs.items())) != 0:
        return None
    stride, out = sp.Integer(1), []
    remaining = dict(coeffs)
    while remaining:
        k = next((k for k, s in remaining.items() if sp.simplify(s - stride) == 0), None)
        if k is None:
            return None
        out.append(k)
        stride *= dim_of(k)
        del remaining[k]
    return list(reversed(out))


# ---------------------------------------------------------------------------
# evaluating


def run(p: Plan, env: dict, funcs, scalar) -> Any:
    """The value of a plan; ``scalar(e)`` evaluates a SymPy scalar, ``funcs`` applies functions."""
    kind = p[0]
    if kind == "arr":
        value = np.asarray(env[p[1]])
        if value.ndim != p[2]:  # a vector kept as a 1 × n row by the matrix evaluator
            value = value.reshape(value.shape[1:] if value.ndim > p[2] else value.shape)
        return value
    if kind == "num":
        return scalar(p[1])
    if kind in ("poolhot", "route", "argmax", "poolpick"):
        return _run_pool(p, env, funcs, scalar)
    if kind == "op":
        values = [run(x, env, funcs, scalar) for x in p[2]]
        out = values[0]
        for v in values[1:]:
            out = out + v if p[1] == "+" else out * v
        return out
    if kind == "pow":
        return run(p[1], env, funcs, scalar) ** (p[2] if funcs.exact else float(p[2]))
    if kind == "call":
        e = p[1]
        params = tuple(scalar(a) for a in e.args[1:])
        return funcs.apply(e.func, params, run(p[2], env, funcs, scalar))
    if kind == "softmax":
        return funcs.softmax(run(p[1], env, funcs, scalar), p[2])
    if kind == "sum":
        return np.sum(run(p[1], env, funcs, scalar), axis=p[2])
    if kind == "einsum":
        subs = ",".join(p[1]) + "->" + p[2]
        ops = [run(x, env, funcs, scalar) for x in p[3]]
        return np.einsum(subs, *ops, optimize=len(ops) > 2)  # routings: pairwise, not naive
    if kind == "perm":
        return np.transpose(run(p[1], env, funcs, scalar), p[2])
    if kind == "expand":
        out = run(p[1], env, funcs, scalar)
        return np.expand_dims(out, p[2]) if np.ndim(out) else out
    if kind == "broadcast":
        shape = tuple(_int(d, env) for d in p[2])
        out = run(p[1], env, funcs, scalar)
        return np.broadcast_to(out, np.broadcast_shapes(np.shape(out), shape))
    if kind == "take":
        return np.take(run(p[1], env, funcs, scalar), p[3], axis=p[2])
    if kind in ("gather", "scatter"):
        return _run_index(p, env, funcs, scalar)
    if kind == "reshape":
        x = run(p[1], env, funcs, scalar)
        return x.reshape(_reshape_sizes(x.shape, p[2], env))
    if kind == "window":
        x = run(p[1], env, funcs, scalar)
        return _window(x, p[2], _int(p[3], env), _int(p[4], env))
    if kind in ("slide", "slidemask"):
        return _run_slide(p, env, funcs, scalar)
    if kind == "concat":
        return np.concatenate([run(x, env, funcs, scalar) for x in p[1]], axis=p[2])
    if kind == "mask":
        n, lo, hi = (_int(v, env) for v in p[1:])
        r = np.arange(n)
        return ((r >= lo) & (r < hi)).astype(int)
    raise TypeError(f"unknown plan node {kind}")


def _run_pool(p: Plan, env: dict, funcs, scalar) -> np.ndarray:
    """A max-pool's one-hot ``[…, k, k]``, routing ``[u = s v + t]`` or window argmax."""
    if p[0] == "poolhot":
        k = p[2]
        hot = _index_array(env[p[1]])[..., None, None] == np.arange(k * k).reshape(k, k)
        return hot.astype(int).transpose(p[3]) if len(p) > 3 else hot.astype(int)
    if p[0] == "route":
        u, v, t = (_int(d, env) for d in p[1:4])
        return route_array(u, v, t, p[4], p[5])
    if p[0] == "poolpick":
        x, at = run(p[1], env, funcs, scalar), _index_array(env[p[2]])
        k, s = p[3], p[4]
        b, c, i, j = np.ogrid[tuple(slice(0, n) for n in at.shape)]
        return x[b, c, s * i + at // k, s * j + at % k]
    return window_argmax(run(p[1], env, funcs, scalar))


def _run_index(p: Plan, env: dict, funcs, scalar) -> np.ndarray:
    """``X[ix]`` (a gather) or ``np.add.at`` of ``X`` into an ``n``-row zero table."""
    x, ix = np.asarray(run(p[1], env, funcs, scalar)), _index_array(env[p[2]])
    if p[0] == "gather":
        return x[ix]
    out = np.zeros((_int(p[3], env), *x.shape[ix.ndim :]), dtype=x.dtype)
    if x.dtype == object:
        out[...] = 0 * x.flat[0]  # the zero of the values' field (exact or symbolic)
    np.add.at(out, ix, x)
    return out


def _index_array(value) -> np.ndarray:
    """An index input as integers (the exact evaluators hold it as field elements)."""
    return np.asarray(value).astype(np.int64)


def _run_slide(p: Plan, env: dict, funcs, scalar) -> np.ndarray:
    """A sliding-window view, or the 0/1 matrix of a window position's range."""
    if p[0] == "slide":
        return _slide(run(p[1], env, funcs, scalar), p[2], p[3], p[4], _int(p[5], env))
    (n_u, a), (n_v, b), lo, hi = p[1:]
    e = a * np.arange(_int(n_u, env))[:, None] + b * np.arange(_int(n_v, env))
    return ((e >= _int(lo, env)) & (e < _int(hi, env))).astype(int)


def _slide(x: np.ndarray, axis: int, a: int, b: int, width: int) -> np.ndarray:
    """``y[…, u, …, v] = x[…, |a| u + |b| v, …]``, each axis flipped where its coefficient
    is negative (the window axis ``v`` last)."""
    y = np.lib.stride_tricks.sliding_window_view(x, width, axis=axis)
    at = [slice(None)] * y.ndim
    at[axis] = slice(None, None, -abs(a) if a < 0 else a)
    at[-1] = slice(None, None, -abs(b) if b < 0 else b)
    return y[tuple(at)]


def _reshape_sizes(shape: tuple, sizes: tuple, env: dict) -> tuple:
    """The new shape: ``None`` keeps a source axis, others take their sizes."""
    out: list[int] = []
    k = 0
    for size, consumed in sizes:
        out.append(shape[k] if size is None else _int(size, env))
        k += consumed
    return tuple(out)


def _window(x: np.ndarray, axis: int, start: int, length: int) -> np.ndarray:
    """Entries ``start .. start + length`` along ``axis``, zero where outside the array."""
    n = x.shape[axis]
    lo, hi = max(start, 0), min(start + length, n)
    shape = list(x.shape)
    shape[axis] = length
    out = np.zeros(shape, dtype=x.dtype)
    if hi > lo:
        src = [slice(None)] * x.ndim
        dst = [slice(None)] * x.ndim
        src[axis] = slice(lo, hi)
        dst[axis] = slice(lo - start, hi - start)
        out[tuple(dst)] = x[tuple(src)]
    return out


def _int(d, env: dict) -> int:
    d = as_expr(d)  # an engine-built size, never text
    return int(d.xreplace({s: sp.Integer(int(env[s.name])) for s in d.free_symbols}))


# ---------------------------------------------------------------------------
# printing as NumPy


def code(p: Plan, pr) -> str:
    """NumPy code for a plan; ``pr`` is a :class:`~derive.printing.NumpyFormPrinter`."""
    if p[0] in ("perm", "expand", "broadcast", "take", "reshape", "window", "concat", "mask"):
        return _layout_code(p, pr)
    if p[0] in ("slide", "slidemask"):
        return _slide_code(p, pr)
    if p[0] in ("poolhot", "route", "argmax", "poolpick"):
        return _pool_code(p, pr)
    kind = p[0]
    if kind == "arr":
        return p[1]
    if kind == "num":
        return pr._print(p[1])
    if kind == "op":
        if p[1] == "*":
            return _product_code(p[2], pr)
        parts = sorted((code(x, pr) for x in p[2]), key=lambda c: c.startswith("-"))
        out = parts[0]
        for part in parts[1:]:
            out += f" - {part[1:]}" if part.startswith("-") else f" + {part}"
        return out
    if kind == "pow":
        base = _atom(code(p[1], pr))
        if p[2] == -1:
            return f"1 / {base}"
        exp = pr._print(p[2])
        return f"{base} ** {exp if is_operand(exp) and not exp.startswith('-') else f'({exp})'}"
    if kind == "call":
        return pr.call(p[1], code(p[2], pr))
    if kind == "softmax":
        return pr.softmax_code(code(p[1], pr), p[2])
    if kind == "sum":
        if len(p) > 3 and p[3]:  # every axis: Σ z² as one dot product
            inner = p[1]
            if inner[0] == "pow" and inner[2] == 2 and is_operand(code(inner[1], pr)):
                z = code(inner[1], pr)
                return f"np.vdot({z}, {z})"  # (a compound z is not computed twice)
            return f"{_atom(code(inner, pr))}.sum()"
        axes = p[2][0] if len(p[2]) == 1 else tuple(p[2])
        return f"{_atom(code(p[1], pr))}.sum(axis={axes})"
    if kind == "einsum":
        return _einsum_code(p, pr)
    if kind == "gather":
        return f"{_atom(code(p[1], pr))}[{p[2]}]"
    if kind == "scatter":
        return pr.scatter_add_code(code(p[1], pr), p[2], size_text(p[3], pr))
    raise TypeError(f"unknown plan node {kind}")


def _slide_code(p: Plan, pr) -> str:
    """``np.lib.stride_tricks.sliding_window_view(x, 3, axis=2)[:, :, ::2]``, or the 0/1
    matrix of a window position's range (pooling routing)."""
    if p[0] == "slide":
        _, x, axis, a, b, width = p
        w = size_text(width, pr)
        at = [":"] * axis + [_step(a), "...", _step(b)]
        if _step(a) == ":":
            at = ["...", _step(b)]
        while at and at[-1] in (":", "..."):
            at.pop()
        view = f"np.lib.stride_tricks.sliding_window_view({code(x, pr)}, {w}, axis={axis})"
        return f"{view}[{', '.join(at)}]" if at else view
    (n_u, a), (n_v, b), lo, hi = p[1:]
    e = f"{_coef(a)}np.arange({size_text(n_u, pr)})[:, None]"
    e += f" - {_coef(-b)}" if b < 0 else f" + {_coef(b)}"
    e += f"np.arange({size_text(n_v, pr)})"
    return f"(({e} >= {size_text(lo, pr)}) & ({e} < {size_text(hi, pr)}))"


def _pool_code(p: Plan, pr) -> str:
    """A max-pool's one-hot, routing matrix or window argmax as NumPy."""
    if p[0] == "poolhot":
        k = p[2]
        if len(p) == 3:
            return f"({p[1]}[..., None, None] == np.arange({k * k}).reshape({k}, {k}))"
        # laid out in the order p[3]: the array's axes in order, None at the offsets'
        at = [p[3].index(n) for n in (4, 5)]
        if at[0] > at[1]:
            raise DerivationError("a one-hot with its window offsets swapped")
        index = ", ".join("None" if n in at else ":" for n in range(len(p[3])))
        shape = ", ".join(str(k) if n in at else "1" for n in range(at[0], len(p[3])))
        return f"({p[1]}[{index}] == np.arange({k * k}).reshape({shape}))"
    if p[0] == "route":
        u, v, t = (size_text(d, pr) for d in p[1:4])
        s = "" if p[4] == 1 else f"{p[4]} * "
        c = "" if not p[5] else f" - {-p[5]}" if p[5] < 0 else f" + {p[5]}"
        return f"(np.arange({u})[:, None, None] == {s}np.arange({v})[:, None] + np.arange({t}){c})"
    if p[0] == "poolpick":  # x[b, c, s i + A // k, s j + A % k]
        _, x, at, k, s, sizes = p
        n = [size_text(d, pr) for d in sizes]
        s_ = "" if s == 1 else f"{s} * "
        rows = [f"np.arange({n[0]})[:, None, None, None]", f"np.arange({n[1]})[:, None, None]"]
        rows += [
            f"{s_}np.arange({n[2]})[:, None] + {at} // {k}",
            f"{s_}np.arange({n[3]}) + {at} % {k}",
        ]
        return f"{_atom(code(x, pr))}[{', '.join(rows)}]"
    sizes = ", ".join(size_text(d, pr) for d in p[2])
    return f"{_atom(code(p[1], pr))}.reshape({sizes}, -1).argmax(axis=-1)"


def _step(a: int) -> str:
    """A slice taking every ``a``-th entry (backwards when negative)."""
    return ":" if a == 1 else f"::{a}"


def _coef(a: int) -> str:
    return "" if a == 1 else "-" if a == -1 else f"{a} * "


def _product_code(factors: list, pr) -> str:
    """``c * x * y / n``: numbers first, a numeric denominator last, a sign in front."""
    coeff = sp.Integer(1)
    rest = []
    for f in factors:
        if f[0] == "num":
            coeff *= f[1]
        else:
            rest.append(_atom(code(f, pr)))
    num, den = sp.fraction(sp.factor_terms(coeff))
    sign = ""
    if num.could_extract_minus_sign():
        sign, num = "-", -num
    parts = ([] if num == 1 else [_atom(pr._print(num))]) + rest
    body = " * ".join(parts) or "1"
    if den != 1:
        body = f"{body} / {_atom(pr._print(den))}"
    return f"{sign}{_atom(body)}" if sign else body


def size_text(d, pr) -> str:
    """A size as integer code: ``N // 2`` for an exact division (never a float)."""
    num, den = sp.fraction(sp.factor(d))
    if den == 1:
        return pr._print(d)
    return f"{_atom(pr._print(num))} // {pr._print(den)}"


def _layout_code(p: Plan, pr) -> str:
    """Views and placements: transposes, new axes, reshapes, slices, pads, concatenation."""
    kind = p[0]
    if kind == "perm":
        return f"{_atom(code(p[1], pr))}.transpose({', '.join(map(str, p[2]))})"
    if kind == "expand":
        axes = p[2][0] if len(p[2]) == 1 else tuple(p[2])
        if p[1][0] == "sum" and tuple(p[1][2]) == tuple(p[2]):
            return f"{_atom(code(p[1][1], pr))}.sum(axis={axes}, keepdims=True)"
        return f"np.expand_dims({code(p[1], pr)}, {axes})"
    if kind == "broadcast":
        dims = ", ".join(size_text(d, pr) for d in p[2])
        return f"np.broadcast_to({code(p[1], pr)}, ({dims}{',' if len(p[2]) == 1 else ''}))"
    if kind == "take":
        return f"{_atom(code(p[1], pr))}[{':, ' * p[2]}{p[3]}]"
    if kind == "reshape":
        name = p[1][1] if p[1][0] == "arr" else _atom(code(p[1], pr))  # sizes all given
        sizes, k = [], 0
        for size, consumed in p[2]:
            sizes.append(f"{name}.shape[{k}]" if size is None else size_text(size, pr))
            k += consumed
        return f"{name}.reshape({', '.join(sizes)})"
    if kind == "window":
        return _window_code(p, pr)
    if kind == "concat":
        return f"np.concatenate([{', '.join(code(x, pr) for x in p[1])}], axis={p[2]})"
    if kind == "mask":
        n, lo, hi = (size_text(v, pr) for v in p[1:])
        return f"((np.arange({n}) >= {lo}) & (np.arange({n}) < {hi}))"
    raise TypeError(f"unknown plan node {kind}")


def _window_code(p: Plan, pr) -> str:
    _, x, axis, start, length, size = p[:6]
    rank = p[6] if len(p) > 6 else axis + 1  # np.pad wants every axis' widths
    inner = _atom(code(x, pr))
    lead = ":, " * axis
    if _nonneg(start) and (size is None or _nonneg(size - start - length)):
        stop = size_text(sp.expand(start + length), pr)
        begin = "" if start == 0 else size_text(start, pr)
        colon = ":"
        if " " in begin + stop:  # as ruff formats a slice of compound bounds
            colon = " : " if begin else ": "
        return f"{inner}[{lead}{begin}{colon}{stop}]"
    if size is not None and _nonneg(-start) and _nonneg(length + start - size):
        widths = ["(0, 0)"] * max(rank, axis + 1)
        widths[axis] = (
            f"({size_text(-start, pr)}, {size_text(sp.expand(length + start - size), pr)})"
        )
        return f"np.pad({inner}, ({', '.join(widths)}{',' if len(widths) == 1 else ''}))"
    if size is not None and len(p) > 6:  # signs unknown symbolically: pad, then slice
        left = size_text(sp.expand(-start), pr)
        right = size_text(sp.expand(length + start - size), pr)
        widths = ["(0, 0)"] * rank
        widths[axis] = f"(max(0, {left}), max(0, {right}))"
        begin = f"max(0, {size_text(start, pr)})"
        padded = f"np.pad({inner}, ({', '.join(widths)}))"
        return f"{padded}[{lead}{begin} : {begin} + {size_text(length, pr)}]"
    raise DerivationError(f"no NumPy view for a window at {start} of length {length}")


def _nonneg(e) -> bool:
    e = sp.expand(e)
    return bool(e.is_nonnegative)


def _einsum_code(p: Plan, pr) -> str:
    subs, out = p[1], p[2]
    if len(subs) == 2 and _as_flat_matmul(subs, out, ["", ""], ["", ""]) is not None:
        # Σ over the same leading axes of both: one BLAS product of the arrays as they are
        a, b = (code(x, pr) for x in p[3])
        if out != subs[0][-1] + subs[1][-1]:
            a, b = b, a
        axes = list(range(len(subs[0]) - 1))
        return f"np.tensordot({a}, {b}, axes=({axes}, {axes}))"
    parts = matmul_parts(p, pr)
    if parts is not None:
        a, b, after = parts
        return f"{a} @ {b}" if after is None else f"({a} @ {b}).transpose({after})"
    subs, out, operands = p[1:4]
    ops = [code(x, pr) for x in operands]
    return f'np.einsum("{",".join(subs)}->{out}", {", ".join(ops)}, optimize=True)'


def matmul_parts(p: Plan, pr) -> tuple[str, str, str | None] | None:
    """A two-array einsum as ``A @ B`` (then a transpose, or None): the operands' code."""
    if p[0] != "einsum" or len(p[1]) != 2:
        return None
    subs, out, operands, sizes = p[1:5]
    ops = [code(x, pr) for x in operands]
    found = []
    for (sa, ca), (sb, cb) in (
        ((subs[0], ops[0]), (subs[1], ops[1])),
        ((subs[1], ops[1]), (subs[0], ops[0])),
    ):
        mm = _as_matmul(sa, sb, out)
        if mm is not None:
            pa, pb, after = mm
            a, b = _perm(_atom(ca), pa), _perm(_atom(cb), pb)
            cost = (after is not None, (a + b).count("transpose") + (a + b).count(".T"))
            found.append((cost, (a, b, after)))
    if found:
        return min(found)[1]
    return _as_flat_matmul(subs, out, ops, [size_text(sizes[s[-1]], pr) for s in subs])


def _as_flat_matmul(subs: tuple, out: str, ops: list, last: list) -> tuple[str, str, None] | None:
    """``'bti,btj->ij'`` (a sum over the same leading axes of both): one flat product,
    ``x.reshape(-1, n).T @ d.reshape(-1, m)`` (a view of each, no copy)."""
    a, b = subs
    if len(out) != 2 or len(a) != len(b) or a[:-1] != b[:-1] or set(out) != {a[-1], b[-1]}:
        return None
    left = f"{_atom(ops[0])}.reshape(-1, {last[0]})"
    right = f"{_atom(ops[1])}.reshape(-1, {last[1]})"
    if out == a[-1] + b[-1]:
        return f"{left}.T", right, None
    return f"{right}.T", left, None


def _perm(c: str, perm: tuple) -> str:
    if perm == tuple(range(len(perm))):
        return c
    if len(perm) == 2:
        return f"{c}.T"
    return f"{c}.transpose({', '.join(map(str, perm))})"


def _as_matmul(a: str, b: str, out: str):
    """``A @ B`` for ``'bik,bkj->bij'`` in any axis order (or ``'tik,kj->tij'``), or None."""
    batch = [c for c in out if c in a and c in b]
    k = [c for c in a if c in b and c not in out]
    i = [c for c in a if c not in b]
    j = [c for c in b if c not in a]
    if len(k) != 1 or len(j) != 1 or not i or set(batch + i + j) != set(out):
        return None
    if len(i) > 1 and batch:  # leading axes of A broadcast against B's only without a batch
        return None
    order_a, order_b, res = batch + i + k, batch + k + j, batch + i + j
    pa = tuple(a.index(c) for c in order_a)
    pb = tuple(b.index(c) for c in order_b)
    after = tuple(res.index(c) for c in out)
    after_text = None if after == tuple(range(len(after))) else ", ".join(map(str, after))
    return pa, pb, after_text


def _atom(s: str) -> str:
    return s if is_operand(s) else f"({s})"


# ---------------------------------------------------------------------------
# printing in index notation


_FREE = "ijklmnabcefgh"
_BOUND = "pqrstuvwxyz"


def readable(form):
    """The form's terms with indices renamed ``i, j, k`` (free) and ``p, q, r`` (summed)."""
    from .indices import named_index

    taken = {str(i.base) for f, _ in form.terms for i in f.atoms(sp.Indexed)}
    free = [c for c in _FREE if c not in taken]
    bound_names = [c for c in _BOUND if c not in taken]
    ren = {
        o: named_index(free[n % len(free)], dim_of(o))
        for n, o in enumerate(form.out)
        if is_index(o)
    }
    out, bound = [], 0
    for factor, summed in form.terms:
        local = dict(ren)
        for k in summed:
            local[k] = named_index(bound_names[bound % len(bound_names)], dim_of(k))
            bound += 1
        names = [local[k] for k in summed]
        body = _rename_inner(sp.factor_terms(factor).xreplace(local), bound, bound_names)
        out.append((body, names))
    return [ren[o] for o in form.out if is_index(o)], out


def _rename_inner(e: sp.Expr, start: int, names: list) -> sp.Expr:
    """Inner sums and softmaxes: bound indices named ``p, q, …`` too."""
    from .indices import named_index

    n = start

    def fresh(k):
        nonlocal n
        s = named_index(names[n % len(names)], dim_of(k))
        n += 1
        return s

    def visit(x):
        if isinstance(x, sp.Sum):
            body = x.function
            limits = []
            for k, lo, hi in x.limits:
                f = fresh(k)
                body = body.xreplace({k: f})
                limits.append((f, lo, hi))
            return sp.Sum(visit(body), *limits)
        if isinstance(x, SoftmaxAt):
            f = fresh(x.kappa)
            return SoftmaxAt(visit(x.body.xreplace({x.kappa: f})), f, x.k, x.n)
        if not x.args or isinstance(x, sp.Indexed):
            return x
        return x.func(*[visit(a) for a in x.args])

    return visit(e)
