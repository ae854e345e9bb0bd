"""Matrix-form recovery: element-wise terms → SymPy matrix expressions.

A term ``Σ_{summed} Π factors`` is an einsum over arrays of rank ≤ 2.
Recovery knows no layer types; it works on the index structure alone:

1. factors over the same set of indices form one *block*, an element-wise
   (Hadamard) expression placed as a matrix (:func:`place`);
2. blocks are reduced pairwise until only the free indices are left:
   equal index sets → Hadamard product; a summed index held by one block →
   a sum over that axis; a summed index shared by two blocks → a matrix
   product (transposing as needed); a block whose indices are a subset of
   another's → broadcast Hadamard; disjoint blocks → outer product;
3. the result is oriented to the output's index order.

So ``Σ_b x[b,i] δ[b,j]`` becomes ``xᵀ δ``, ``Σ_b δ[b,j]`` becomes ``1ᵀ δ``
(:class:`~derive.matexpr.SumAxis`) and ``δh[b,j] f'(u[b,j])`` becomes
``δh ⊙ f'(u)``, whatever network they came from.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from .elementwise import Term, distribute, open_sum
from .errors import DerivationError
from .indices import dim_of, indices_in, is_index
from .matexpr import Broadcast, Einsum, Map, Softmax, SumAll, SumAxis, index_forms, matrix_symbol
from .rules import GenericFunction, SoftmaxAt
from .tensorindex import Digit, InRange, Window


@dataclass
class Tensor:
    """A matrix expression whose rows run over ``rows`` and columns over ``cols``."""

    expr: sp.Expr
    rows: sp.Symbol | None
    cols: sp.Symbol | None

    @property
    def idx(self) -> set:
        return {i for i in (self.rows, self.cols) if i is not None}

    def arranged(self, rows, cols) -> sp.Expr:
        """The expression with rows over ``rows``, columns over ``cols`` (broadcast if needed)."""
        if not self.idx:
            expr = self.expr
            if isinstance(expr, sp.MatrixExpr):
                raise DerivationError("1×1 matrix where a scalar belongs")
            if rows is None and cols is None:
                return expr
            return scale(expr, sp.OneMatrix(_dim(rows), _dim(cols)))
        if (self.rows, self.cols) == (rows, cols):
            return self.expr
        if (self.cols, self.rows) == (rows, cols):
            return _t(self.expr)
        if not self.idx <= {rows, cols} - {None}:
            raise DerivationError(f"cannot arrange indices {self.idx} as ({rows}, {cols})")
        # a vector: make it a column over ``rows`` or a row over ``cols``, then stretch
        (i,) = self.idx
        if i == rows:
            vec = self.expr if self.rows == i else _t(self.expr)
        else:
            vec = self.expr if self.cols == i else _t(self.expr)
        shape = (_dim(rows), _dim(cols))
        return vec if vec.shape == shape else Broadcast(vec, *shape)


def _dim(i) -> sp.Expr:
    return dim_of(i) if i is not None else sp.Integer(1)


def _t(expr):
    """Transpose without SymPy's ``doit`` (which would distribute scalars over sums)."""
    if not isinstance(expr, sp.MatrixExpr):
        return expr
    if isinstance(expr, sp.Transpose):
        return expr.arg
    if isinstance(expr, sp.MatMul):
        coeff, mats = expr.as_coeff_matrices()
        return scale(coeff, matmul(*[_t(m) for m in reversed(mats)]))
    return sp.Transpose(expr)


def scale(coeff, m):
    """``coeff · m`` kept as written: ``2 (y − t)``, not ``2y − 2t``."""
    coeff = sp.Integer(coeff) if isinstance(coeff, int) else coeff
    if coeff == 1:
        return m
    if coeff.could_extract_minus_sign() and isinstance(m, sp.MatAdd):
        return scale(-coeff, matadd(*[scale(-1, a) for a in m.args]))  # 2 (y − t)
    if isinstance(m, sp.MatMul):
        c, mats = m.as_coeff_matrices()
        return sp.MatMul(coeff * c, *mats) if coeff * c != 1 else matmul(*mats)
    return sp.MatMul(coeff, m)


def _flat(cls, args):
    out = []
    for a in args:
        out.extend(a.args if isinstance(a, cls) else [a])
    return out[0] if len(out) == 1 else cls(*out)


def matmul(*args):
    """The matrix product of ``args``, flattened and without trivial factors."""
    return _flat(sp.MatMul, args)


def hadamard(*args):
    """The Hadamard product of ``args``, flattened."""
    return _flat(sp.HadamardProduct, args)


def matadd(*args):
    """The sum of ``args``, flattened; terms that cancel exactly are dropped.

    Element-wise terms can cancel only once a summed index's extent is counted
    (``Σ_b δ[b,j] − Σ_k Σ_b δ[b,j]/B``), so the recovered forms are compared here.
    """
    out = _flat(sp.MatAdd, args)
    if not isinstance(out, sp.MatAdd):
        return out
    coeffs: dict[sp.Expr, sp.Expr] = {}
    for a in out.args:
        c, m = _split_coeff(a)
        coeffs[m] = coeffs.get(m, 0) + c
    if all(c != 0 for c in coeffs.values()) and len(coeffs) == len(out.args):
        return out  # nothing cancels: keep the form as it was built
    kept = [scale(c, m) for m, c in coeffs.items() if c != 0]
    if not kept:
        return sp.ZeroMatrix(*out.shape)
    return _flat(sp.MatAdd, kept)


def _split_coeff(a: sp.Expr) -> tuple[sp.Expr, sp.Expr]:
    """``a`` as a scalar coefficient times a matrix expression."""
    if isinstance(a, sp.MatMul):
        c, mats = a.as_coeff_matrices()
        if mats:
            return c, mats[0] if len(mats) == 1 else sp.MatMul(*mats)
    return sp.Integer(1), a


def recover(terms: list[Term], out: tuple) -> sp.Expr:
    """The matrix form of ``Σ terms`` whose free indices are ``out`` (literal 0 for size 1).

    Where no matrix pattern fits (rank 3 and 4, layout), the einsum form of
    the terms themselves (:class:`~derive.matexpr.Einsum`).
    """
    if len(out) <= 2:
        try:
            return _recover_matrix(terms, out)
        except DerivationError:
            pass
    return Einsum(out, [(t.factor, t.summed) for t in terms])


def _recover_matrix(terms: list[Term], out: tuple) -> sp.Expr:
    """:func:`recover` by matrix patterns (rank ≤ 2), or a :class:`DerivationError`."""
    rows, cols = _out_axes(out)
    if not terms:  # every term cancelled: the adjoint is exactly zero (``z − mean(z)`` summed)
        if rows is None and cols is None:
            return sp.Integer(0)
        return sp.ZeroMatrix(_dim(rows), _dim(cols))
    parts = [_recover_term(t, rows, cols) for t in terms]
    form = matadd(*parts) if isinstance(parts[0], sp.MatrixExpr) else sp.Add(*parts)
    # a forward sum over every index left inside a coefficient (Σ_{b,j} (μ − h[b, j]) of
    # a variance) is a scalar of its own: its matrix form, sum(...)
    form = form.replace(
        lambda e: isinstance(e, sp.Sum) and not indices_in(e),
        lambda e: _recover_matrix(_flat_terms(e), ()),
    )
    return index_forms(form)  # onehot(ix)ᵀ δ is a scatter-add, onehot(ix) X a gather


def _out_axes(out: tuple):
    """Which output index runs over rows and which over columns of the matrix form."""
    if len(out) == 0:
        return None, None
    if len(out) == 1:  # a NumPy vector is a row
        return None, (out[0] if is_index(out[0]) else None)
    return tuple(i if is_index(i) else None for i in out)


def _recover_term(term: Term, rows, cols) -> sp.Expr:
    scalar = sp.Integer(1)
    groups: dict[frozenset, list] = {}
    for f in sp.Mul.make_args(term.factor):
        idx = frozenset(indices_in(f))
        if idx:
            groups.setdefault(idx, []).append(f)
        else:
            scalar *= f
    tensors = []
    for idx, factors in groups.items():
        if len(idx) > 2:
            raise DerivationError(f"a factor over {len(idx)} indices has no matrix form")
        r, c = _natural(factors, idx)
        tensors.append(Tensor(place(sp.Mul(*factors), r, c), r, c))
    present = indices_in(term.factor)
    summed = {k for k in term.summed if k in present}
    for k in term.summed:  # a sum over an index no factor holds: its extent
        if k not in present:
            scalar *= dim_of(k)
    tensors = _reduce(tensors, summed)
    result = None
    for t in tensors:
        if not t.idx:
            scalar *= t.expr
        elif result is None:
            result = t
        else:  # pragma: no cover - _reduce leaves one indexed tensor
            raise DerivationError("blocks left unjoined")
    if result is None:
        if rows is None and cols is None:
            return scalar
        return scale(scalar, sp.OneMatrix(_dim(rows), _dim(cols)))
    if not result.idx <= {rows, cols} - {None}:
        raise DerivationError("a summed index was left over in recovery")
    form = result.arranged(rows, cols)
    return scale(scalar, form)


def _natural(factors, idx):
    """Orientation of a block: that of its first array with both indices, else sorted."""
    for f in factors:
        for ind in sorted(f.atoms(sp.Indexed), key=sp.default_sort_key):
            own = [i for i in ind.indices if i in idx]
            if len(own) == len(idx) == 2:
                return own[0], own[1]
            if len(idx) == 1 and own:
                if len(ind.indices) == 2 and ind.indices[0] == own[0]:
                    return own[0], None  # a column of a matrix: keep it a column
                return None, own[0]
    ordered = sorted(idx, key=str)
    return (ordered[0], ordered[1]) if len(ordered) == 2 else (None, ordered[0])


def _reduce(tensors: list[Tensor], summed: set) -> list[Tensor]:
    while True:
        indexed = [t for t in tensors if t.idx]
        # 1. blocks over the same indices: Hadamard product
        for a in indexed:
            b = next((b for b in indexed if b is not a and b.idx == a.idx), None)
            if b is not None:
                tensors = _without(tensors, a, b) + [_hadamard(a, b)]
                break
        else:
            holders = {k: [t for t in indexed if k in t.idx] for k in summed}
            # 2. an index summed in one block only: sum that axis
            k = next((k for k, h in holders.items() if len(h) == 1), None)
            if k is not None:
                (t,) = holders[k]
                summed.discard(k)
                other = next((i for i in t.idx if i != k), None)
                if other is None or (other in summed and len(holders[other]) == 1):
                    summed.discard(other)
                    reduced = Tensor(SumAll(t.expr), None, None)
                elif t.rows == k:
                    reduced = Tensor(SumAxis(t.expr, 0), None, t.cols)
                else:
                    reduced = Tensor(SumAxis(t.expr, 1), t.rows, None)
                tensors = _without(tensors, t) + [reduced]
                continue
            # 3. an index summed between two blocks: matrix product
            k = next((k for k, h in holders.items() if len(h) == 2), None)
            if k is not None:
                a, b = holders[k]
                summed.discard(k)
                tensors = _without(tensors, a, b) + [_matmul(a, b, k)]
                continue
            # 4. a block whose indices are a subset of another's: broadcast Hadamard
            pair = next(
                ((s, t) for s in indexed for t in indexed if s is not t and s.idx < t.idx), None
            )
            if pair is not None:
                s, t = pair
                tensors = _without(tensors, s, t) + [_hadamard(t, s)]
                continue
            if summed:
                raise DerivationError("an index summed over three or more blocks")
            # 5. disjoint blocks: outer product
            if len(indexed) > 1:
                a, b = indexed[:2]
                tensors = _without(tensors, a, b) + [_outer(a, b)]
                continue
            return tensors


def _without(tensors, *gone):
    return [t for t in tensors if all(t is not g for g in gone)]


def _hadamard(a: Tensor, b: Tensor) -> Tensor:
    """``a ⊙ b`` where b's indices are a subset of a's (broadcast if smaller)."""
    eb = b.arranged(a.rows, a.cols)
    return Tensor(hadamard(a.expr, eb), a.rows, a.cols)


def _matmul(a: Tensor, b: Tensor, k) -> Tensor:
    ra = next((i for i in a.idx if i != k), None)
    cb = next((i for i in b.idx if i != k), None)
    if ra is not None and ra == cb:
        raise DerivationError("a product whose result is a diagonal")
    if ra is None and cb is None:  # a dot product of two vectors
        both = hadamard(a.arranged(None, k), b.arranged(None, k))
        return Tensor(SumAll(both), None, None)
    product = matmul(a.arranged(ra, k), b.arranged(k, cb))
    return Tensor(product, ra, cb)


def _outer(a: Tensor, b: Tensor) -> Tensor:
    (i,) = a.idx
    (j,) = b.idx
    return Tensor(matmul(a.arranged(i, None), b.arranged(None, j)), i, j)


# ---------------------------------------------------------------------------
# one block: an element-wise expression over ≤ 2 indices placed as a matrix


def place(expr: sp.Expr, rows, cols) -> sp.Expr:
    """The element-wise expression ``expr`` (indices ⊆ {rows, cols}) as a matrix."""
    shape = (_dim(rows), _dim(cols))
    if expr.has(InRange, Digit, Window):
        raise DerivationError(f"no matrix form for the layout in {expr}")
    if not indices_in(expr):
        return scale(expr, sp.OneMatrix(*shape))
    if isinstance(expr, sp.Indexed):
        if len(expr.indices) > 2 or not all(i.is_Integer or is_index(i) for i in expr.indices):
            raise DerivationError(f"{expr} is not an entry of a matrix")
        own = tuple(i if is_index(i) else None for i in expr.indices)
        sym = matrix_symbol(str(expr.base), expr.indices)
        if len(own) == 1:
            own = (None, own[0])
        return Tensor(sym, *own).arranged(rows, cols)
    if isinstance(expr, sp.Add):
        # pull common factors out first: 2 (y − t), (p − t)/B
        content, prim = expr.as_content_primitive()
        if content != 1:
            return scale(content, place(prim, rows, cols))
        common = sp.factor_terms(expr)
        if not isinstance(common, sp.Add):
            return place(common, rows, cols)
        return matadd(*[place(a, rows, cols) for a in expr.args])
    if isinstance(expr, sp.Mul):
        coeff = sp.Mul(*[a for a in expr.args if not indices_in(a)])
        indexed = [a for a in expr.args if indices_in(a)]
        parts = [place(a, rows, cols) for a in indexed]
        return scale(coeff, hadamard(*parts))
    if isinstance(expr, sp.Pow):
        return sp.HadamardPower(place(expr.base, rows, cols), expr.exp)
    if isinstance(expr, SoftmaxAt):
        axis = 0 if expr.k == rows else 1
        inner = place(expr.at(expr.k), rows, cols)
        return Softmax(inner, axis)
    if isinstance(expr, sp.Sum) or open_sum(expr):
        return _recover_matrix(_flat_terms(expr), _out_of(rows, cols))
    if isinstance(expr, (sp.Function, GenericFunction)) and expr.args:
        z = sp.Dummy("z")
        lam = sp.Lambda(z, expr.func(z, *expr.args[1:]))
        return Map(lam, place(expr.args[0], rows, cols))
    raise DerivationError(f"no matrix form for {expr}")


def _flat_terms(expr) -> list[Term]:
    from .elementwise import contract

    return [c for t in distribute(expr, open_sum) if (c := contract(t)) is not None]


def _out_of(rows, cols) -> tuple:
    zero = sp.Integer(0)
    return (rows if rows is not None else zero, cols if cols is not None else zero)
