"""Element-wise forms: lowering equations to indexed SymPy and the term normal form.

Lowering turns ``u = x @ W`` into ``u[i, j] = Σ_k x[i, k] W[k, j]`` with
SymPy ``IndexedBase`` arrays, ``Sum`` and the function classes of
:mod:`derive.rules`; broadcasting follows NumPy (a size-1 axis is indexed
by the literal 0).

An adjoint is kept as a list of :class:`Term`: a product of factors summed
over some indices.  :func:`distribute` spreads the products and sums that
differentiation introduced (those holding Kronecker deltas) into that form;
:func:`contract` then sums each Kronecker delta away by substitution.
Sums that hold no delta are forward values (``f'(Σ_k x W)``) and stay as
opaque factors.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass

import sympy as sp

from . import ir
from .errors import DerivationError
from .indices import dim_of, indices_in, is_index, new_index
from .maxpool import ArgmaxAt
from .rules import RULES, SoftmaxAt, generic_function
from .shapes import reshape_chunks
from .slide import Slide
from .tensorindex import InRange, solve_delta, window

ONEHOT_PREFIX = "_onehot_"  # spec names cannot start with "_": no collision


def onehot_name(labels: str) -> str:
    """The array name of ``onehot(labels, n)`` in element-wise and matrix forms."""
    return ONEHOT_PREFIX + labels


def element(name: str, idx: tuple) -> sp.Expr:
    """The entry ``name[idx]`` (a scalar symbol for ``idx == ()``)."""
    return sp.IndexedBase(name)[idx] if idx else sp.Symbol(name, real=True)


def summation(body: sp.Expr, indices) -> sp.Expr:
    """``Σ body`` over ``indices`` (``body`` itself when there are none)."""
    for k in indices:
        if is_index(k):
            body = sp.Sum(body, (k, 0, dim_of(k) - 1))
    return body


def fresh_indices(shape: ir.Shape, stem: str = "k") -> tuple:
    """New index symbols, one per dimension of ``shape``."""
    return tuple(new_index(d, stem) for d in shape)


@functools.singledispatch
def lower(node: ir.Node, idx: tuple) -> sp.Expr:
    """The element ``idx`` of an expression, as an indexed SymPy expression.

    One function per node type, registered on this one (``lower.register``).
    """
    raise DerivationError(f"cannot lower {type(node).__name__}")


@lower.register(ir.Ref)
def _lower_ref(node: ir.Ref, idx: tuple) -> sp.Expr:
    return element(node.name, idx)


@lower.register(ir.Scalar)
def _lower_scalar(node: ir.Scalar, idx: tuple) -> sp.Expr:
    return node.value


@lower.register(ir.Binary)
def _lower_binary(node: ir.Binary, idx: tuple) -> sp.Expr:
    a = lower(node.a, _align(node.a.shape, idx))
    b = lower(node.b, _align(node.b.shape, idx))
    return ir.BINARY_OPS[node.op](a, b)


@lower.register(ir.Neg)
def _lower_neg(node: ir.Neg, idx: tuple) -> sp.Expr:
    return -lower(node.a, idx)


@lower.register(ir.Power)
def _lower_power(node: ir.Power, idx: tuple) -> sp.Expr:
    return lower(node.base, idx) ** node.exponent


@lower.register(ir.Transpose)
def _lower_transpose(node: ir.Transpose, idx: tuple) -> sp.Expr:
    return lower(node.a, tuple(reversed(idx)))


@lower.register(ir.MatMul)
def _lower_matmul(node: ir.MatMul, idx: tuple) -> sp.Expr:
    k = new_index(node.a.shape[-1])
    ra, rb = len(node.a.shape), len(node.b.shape)
    if ra > 2 or rb > 2:  # batched: leading axes broadcast, as NumPy's matmul
        if rb == 1:
            ia, ib = tuple(idx) + (k,), (k,)
        elif ra == 1:
            ia, ib = (k,), tuple(idx[:-1]) + (k, idx[-1])
        else:
            batch = tuple(idx[:-2])
            ia = _align(node.a.shape[:-2], batch) + (idx[-2], k)
            ib = _align(node.b.shape[:-2], batch) + (k, idx[-1])
        return summation(lower(node.a, ia) * lower(node.b, ib), [k])
    ia = idx[:1] + (k,) if len(node.a.shape) == 2 else (k,)
    ib = (k,) + idx[-1:] if len(node.b.shape) == 2 else (k,)
    return summation(lower(node.a, ia) * lower(node.b, ib), [k])


@lower.register(ir.Permute)
def _lower_permute(node: ir.Permute, idx: tuple) -> sp.Expr:
    inner: list = [None] * len(idx)
    for i, axis in enumerate(node.axes):
        inner[axis] = idx[i]
    return lower(node.a, tuple(inner))


@lower.register(ir.Reshape)
def _lower_reshape(node: ir.Reshape, idx: tuple) -> sp.Expr:
    """Entries in C order: a split axis reads a flat index, merged axes its digits."""
    from .tensorindex import Digit

    src = node.a.shape
    inner: list = [sp.Integer(0)] * len(src)
    for s0, s1, d0, d1 in reshape_chunks(src, node.shape) or ():
        if s1 - s0 == 1:  # one source axis: the flat index of the result's axes
            flat, stride = sp.Integer(0), sp.Integer(1)
            for d in reversed(range(d0, d1)):
                flat, stride = flat + idx[d] * stride, stride * node.shape[d]
            inner[s0] = flat
        elif d1 - d0 == 1:  # one result axis: the source's axes are its digits
            stride = sp.Integer(1)
            for s in reversed(range(s0, s1)):
                inner[s] = Digit(idx[d0], stride, src[s])
                stride = stride * src[s]
    return lower(node.a, tuple(inner))


@lower.register(ir.Slice)
def _lower_slice(node: ir.Slice, idx: tuple) -> sp.Expr:
    return lower(
        node.a,
        tuple(window(i + s, n) for i, s, n in zip(idx, node.starts, node.a.shape, strict=True)),
    )


@lower.register(ir.Concat)
def _lower_concat(node: ir.Concat, idx: tuple) -> sp.Expr:
    """Each part where the index falls in its range (an ``InRange`` factor)."""
    out, offset, i = sp.Integer(0), sp.Integer(0), idx[node.axis]
    for part in node.parts:
        n = part.shape[node.axis]
        at = window(i - offset, n)
        inner = tuple(idx[: node.axis]) + (at,) + tuple(idx[node.axis + 1 :])
        out += InRange(at, 0, n) * lower(part, inner)
        offset += n
    return out


@lower.register(ir.Einsum)
def _lower_einsum(node: ir.Einsum, idx: tuple) -> sp.Expr:
    letters = dict(zip(node.output, idx, strict=True))
    summed = []
    for sub, op in zip(node.inputs, node.operands, strict=True):
        for c, d in zip(sub, op.shape, strict=True):
            if c not in letters:
                letters[c] = new_index(d)
                summed.append(letters[c])
    body = sp.Mul(
        *[
            lower(op, tuple(letters[c] for c in sub))
            for sub, op in zip(node.inputs, node.operands, strict=True)
        ]
    )
    return summation(body, summed)


@lower.register(ir.Conv2d)
def _lower_conv2d(node: ir.Conv2d, idx: tuple) -> sp.Expr:
    """``y[b, f, i, j] = Σ_{c,p,q} x[b, c, s i + p − pad, s j + q − pad] K[f, c, p, q]``."""
    b, f, i, j = idx
    _, channels, hh, ww = node.b.shape
    c, p, q = new_index(channels, "c"), new_index(hh, "p"), new_index(ww, "q")
    at = (Slide(i, p, node.stride, -node.padding), Slide(j, q, node.stride, -node.padding))
    body = lower(node.a, (b, c, *at)) * lower(node.b, (f, c, p, q))
    if node.padding:  # zero padding: the entries outside x are 0
        body *= InRange(at[0], 0, node.a.shape[2]) * InRange(at[1], 0, node.a.shape[3])
    return summation(body, [c, p, q])


@lower.register(ir.Pool2d)
def _lower_pool2d(node: ir.Pool2d, idx: tuple) -> sp.Expr:
    """``y[b, c, i, j] = Σ_{p,q} x[b, c, s i + p, s j + q] / size²`` (average), or
    ``Σ_{p,q} onehot(A)[b, c, i, j, size p + q] x[b, c, s i + p, s j + q]`` (max: the
    entry at the window's argmax ``A``, a hidden integer equation)."""
    b, c, i, j = idx
    p, q = new_index(node.size, "p"), new_index(node.size, "q")
    at = (Slide(i, p, node.stride, 0), Slide(j, q, node.stride, 0))
    entry = lower(node.a, (b, c, *at))
    if node.op == "max":
        if not isinstance(node.argmax, ir.Ref):
            raise DerivationError("maxpool2d reads its argmax by name (ir.name_arguments)")
        hot = element(onehot_name(node.argmax.name), (b, c, i, j, node.size * p + q))
        return summation(hot * entry, [p, q])
    return summation(entry, [p, q]) / node.size**2


@lower.register(ir.PoolArgmax)
def _lower_pool_argmax(node: ir.PoolArgmax, idx: tuple) -> sp.Expr:
    b, c, i, j = idx
    p, q = new_index(node.size, "p"), new_index(node.size, "q")
    at = (Slide(i, p, node.stride, 0), Slide(j, q, node.stride, 0))
    return ArgmaxAt(lower(node.a, (b, c, *at)), p, q)


@lower.register(ir.Call)
def _lower_call(node: ir.Call, idx: tuple) -> sp.Expr:
    arg = lower(node.arg, idx)
    if node.generic:
        return generic_function(node.fn)(arg)
    return RULES[node.fn].cls(arg, *node.params)


@lower.register(ir.Softmax)
def _lower_softmax(node: ir.Softmax, idx: tuple) -> sp.Expr:
    kappa = new_index(node.shape[node.axis], "c")
    inner = idx[: node.axis] + (kappa,) + idx[node.axis + 1 :]
    body = lower(node.arg, inner)
    if not is_index(kappa):  # softmax over an axis of size 1 is identically 1
        return sp.Integer(1)
    return SoftmaxAt(body, kappa, idx[node.axis], node.shape[node.axis])


@lower.register(ir.OneHot)
def _lower_onehot(node: ir.OneHot, idx: tuple) -> sp.Expr:
    return element(onehot_name(node.labels.name), idx)


@lower.register(ir.Pick)
def _lower_pick(node: ir.Pick, idx: tuple) -> sp.Expr:
    c = new_index(node.arg.shape[1], "c")
    picked = element(onehot_name(node.labels.name), (idx[0], c)) * lower(node.arg, (idx[0], c))
    return summation(picked, [c])


@lower.register(ir.Gather)
def _lower_gather(node: ir.Gather, idx: tuple) -> sp.Expr:
    # C[ix][b, e] = Σ_v [ix[b] = v] C[v, e]: the one-hot of the indices, never built in code
    r = len(node.index.shape)
    v = new_index(node.arg.shape[0], "v")
    hot = element(onehot_name(node.index.name), (*idx[:r], v))
    return summation(hot * lower(node.arg, (v, *idx[r:])), [v])


@lower.register(ir.Column)
def _lower_column(node: ir.Column, idx: tuple) -> sp.Expr:
    return lower(node.a, idx[:1])


@lower.register(ir.Reduce)
def _lower_reduce(node: ir.Reduce, idx: tuple) -> sp.Expr:
    arg_shape = node.arg.shape
    if node.axis is None:
        inner = fresh_indices(arg_shape)
    else:
        k = new_index(arg_shape[node.axis])
        outer = list(idx)
        if node.keepdims:
            outer.pop(node.axis)
        inner = tuple(outer[: node.axis]) + (k,) + tuple(outer[node.axis :])
    summed = [
        k
        for k, i in zip(inner, range(len(arg_shape)), strict=True)
        if node.axis is None or i == node.axis
    ]
    value = summation(lower(node.arg, inner), summed)
    if node.op == "mean":
        count = sp.Mul(*[dim_of(k) for k in summed])
        value = value / count
    return value


def _align(shape: ir.Shape, idx: tuple) -> tuple:
    """NumPy broadcasting: trailing axes line up, a size-1 axis takes index 0."""
    tail = idx[len(idx) - len(shape) :] if shape else ()
    return tuple(sp.Integer(0) if d == 1 else i for d, i in zip(shape, tail, strict=True))


# ---------------------------------------------------------------------------
# the term normal form


@dataclass(frozen=True)
class Term:
    """``Σ_{summed} factor``: one einsum-like term of an element-wise form."""

    factor: sp.Expr
    summed: tuple = ()

    def as_expr(self) -> sp.Expr:
        """The term as one SymPy expression (its sums written out)."""
        return summation(self.factor, self.summed)


def has_delta(expr: sp.Basic) -> bool:
    """True when ``expr`` still holds a Kronecker delta."""
    return expr.has(sp.KroneckerDelta)


def open_sum(expr: sp.Basic) -> bool:
    """A Sum reachable through + * ** only (not inside a function's argument)."""
    if isinstance(expr, sp.Sum):
        return True
    if isinstance(expr, (sp.Add, sp.Mul, sp.Pow)):
        return any(open_sum(a) for a in expr.args)
    return False


def distribute(expr: sp.Expr, needs=has_delta) -> list[Term]:
    """Distribute the products and sums for which ``needs`` holds into a list of terms.

    With ``needs=has_delta`` only what differentiation introduced is
    distributed; forward values such as ``(Σ_k x W − t)`` stay whole.
    """
    if expr == 0:
        return []
    if not needs(expr):
        return [Term(expr)]
    if isinstance(expr, sp.Add):
        return [t for a in expr.args for t in distribute(a, needs)]
    if isinstance(expr, sp.Mul):
        out = [Term(sp.Integer(1))]
        for factor in expr.args:
            parts = distribute(factor, needs)
            out = [Term(a.factor * b.factor, a.summed + b.summed) for a in out for b in parts]
        return out
    if isinstance(expr, sp.Sum):
        body, renamed = expr.function, tuple[sp.Symbol, ...]()
        for k, _, _ in expr.limits:
            fresh = new_index(dim_of(k), "k")
            body, renamed = body.xreplace({k: fresh}), renamed + (fresh,)
        return [Term(t.factor, t.summed + renamed) for t in distribute(body, needs)]
    if isinstance(expr, sp.Pow) and expr.exp.is_Integer and expr.exp > 0:
        return distribute(sp.Mul(*[expr.base] * int(expr.exp), evaluate=False), needs)
    if isinstance(expr, sp.KroneckerDelta):
        return [Term(expr)]
    raise DerivationError(f"cannot distribute {expr}")


def contract(term: Term) -> Term | None:
    """Sum Kronecker deltas away: ``Σ_k δ_kj g(k) = g(j)``.  None if the term is zero."""
    factor, summed = term.factor, list(term.summed)
    while True:
        delta = next(
            (
                f
                for f in sp.Mul.make_args(factor)
                if isinstance(f, sp.KroneckerDelta)
                or (isinstance(f, sp.Pow) and isinstance(f.base, sp.KroneckerDelta))
            ),
            None,
        )
        if delta is None:
            break
        base = delta.base if isinstance(delta, sp.Pow) else delta
        a, b = base.args
        if not _plain_delta(a, b, summed):
            solved = solve_delta(base, factor, summed)
            if solved is None:
                raise DerivationError(f"cannot sum {base} over {summed}")
            subs, used, cond, fresh = solved
            factor = factor.xreplace({u: sp.Integer(1) for u in [delta, *used]})
            factor = factor.xreplace(subs) * cond
            for k in subs:
                summed.remove(k)
            summed.extend(fresh)  # digits of a flat index no delta fixed stay summed
            continue
        if a in summed:
            gone, keep = a, b
        elif b in summed:
            gone, keep = b, a
        elif a.is_Integer and b.is_Integer:
            if a != b:
                return None
            factor = factor.xreplace({delta: sp.Integer(1)})
            continue
        else:
            raise DerivationError(f"a diagonal {base} between free indices has no matrix form")
        summed.remove(gone)
        factor = factor.xreplace({delta: sp.Integer(1)}).xreplace({gone: keep})
    if factor == 0:
        return None
    # an index summed over a factor that does not hold it contributes its extent
    present = indices_in(factor)
    for k in [k for k in summed if k not in present]:
        summed.remove(k)
        factor = factor * dim_of(k)
    return Term(factor, tuple(summed))


def _plain_delta(a, b, summed) -> bool:
    """A delta between bare indices (or numbers) over the same extent: the common case."""
    for x in (a, b):
        if not (x.is_Integer or is_index(x)):
            return False
    if (a in summed or b in summed) and is_index(a) and is_index(b):
        return dim_of(a) == dim_of(b)
    return True


def normalise(expr: sp.Expr, summed: tuple = ()) -> list[Term]:
    """Terms of ``Σ_{summed} expr`` with every Kronecker delta contracted."""
    out = []
    for t in distribute(expr):
        c = contract(Term(t.factor, t.summed + tuple(summed)))
        if c is not None:
            out.append(c)
    return out


def flatten(terms: list[Term]) -> list[Term]:
    """Distribute every sum not inside a function: the form used to compare."""
    out = []
    for t in terms:
        for u in distribute(t.factor, open_sum):
            c = contract(Term(u.factor, t.summed + u.summed))
            if c is not None:
                out.append(c)
    return out


# ---------------------------------------------------------------------------
# canonical forms: for proving two element-wise forms equal


def canonical_bound(expr: sp.Basic, depth: int = 0) -> sp.Basic:
    """Rename the bound variables of inner Sums and softmaxes by depth and extent."""
    if isinstance(expr, sp.Sum):
        body, limits = expr.function, list[tuple]()
        for n, (k, lo, hi) in enumerate(expr.limits):
            c = sp.Symbol(f"_b{depth}_{n}_{dim_of(k)}", integer=True)
            body, limits = body.xreplace({k: c}), [*limits, (c, lo, hi)]
        return sp.Sum(canonical_bound(body, depth + 1), *limits)
    if isinstance(expr, SoftmaxAt):
        c = sp.Symbol(f"_b{depth}_{expr.n}", integer=True)
        body = canonical_bound(expr.body.xreplace({expr.kappa: c}), depth + 1)
        return SoftmaxAt(body, c, canonical_bound(expr.k, depth), expr.n)
    if not expr.args:
        return expr
    return expr.func(*[canonical_bound(a, depth) for a in expr.args])


def canonical_terms(terms: list[Term]) -> dict[tuple, sp.Expr]:
    """Group terms by the extents of their summed indices, each renamed canonically.

    Two lists of terms denote the same element-wise form if, for every
    group, the difference of the summed factors expands to zero.
    """
    groups: dict[tuple, sp.Expr] = {}
    for t in terms:
        dims = sorted(t.summed, key=lambda k: str(dim_of(k)))
        key = tuple(str(dim_of(k)) for k in dims)
        best = None
        for perm in itertools.permutations(dims):
            ren = {k: sp.Symbol(f"_s{n}_{dim_of(k)}", integer=True) for n, k in enumerate(perm)}
            cand = canonical_bound(t.factor.xreplace(ren))
            if best is None or sp.default_sort_key(cand) < sp.default_sort_key(best):
                best = cand
        groups[key] = groups.get(key, sp.Integer(0)) + best
    return groups


def same_terms(a: list[Term], b: list[Term]) -> bool:
    """Whether two lists of terms are the same element-wise form (symbolically)."""
    ga, gb = canonical_terms(flatten(a)), canonical_terms(flatten(b))
    for key in set(ga) | set(gb):
        diff = ga.get(key, sp.Integer(0)) - gb.get(key, sp.Integer(0))
        if sp.expand(diff) != 0 and sp.simplify(diff) != 0:
            return False
    return True
