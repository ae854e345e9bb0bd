"""Simplifying adjoints: forward values, one-hot targets, fused deltas.

Three rewrites, each an identity SymPy can check, none tied to a layer:

* **forward values** (:func:`resubstitute`): where a derivative reproduces
  the right-hand side of an equation, the equation's name stands in for it:
  ``σ(u) (1 − σ(u))`` becomes ``h (1 − h)`` when ``h = σ(u)``.
* **unit sums**: ``Σ_k t[b, k] = 1`` along a target's one-hot axis (the
  assumption a spec declares with ``onehot``), along the class axis of the
  one-hot of labels, and along any axis an equation's own right-hand side
  sums to 1 over (:func:`unit_sum_axes`: a softmax, or ``e / sum(e, axis)``
  written out), read off the lowered equation.  A sum of such a quantity
  against factors free of ``k`` is those factors: with it the max-shift's
  gradient ``δz − (δz 1) ⊙ onehot(argmax)`` of a softmax cross-entropy
  vanishes, since each row of ``δz = (p − onehot(y))/B`` sums to 0.
* **fusing a delta** (:meth:`Simplifier.fuse`): a delta that is an
  element-wise expression of forward values (``δp = −t ⊘ (B p)``) is
  substituted into the adjoint that uses it when the simplified result is
  cheaper.  This is how softmax with cross-entropy and sigmoid with binary
  cross-entropy come out as ``(p − t)/B``: by cancellation, not by a rule
  that knows them.
"""

from __future__ import annotations

import sympy as sp

from . import ir, polys
from .elementwise import Term, element, fresh_indices, lower, onehot_name
from .indices import dim_of, is_index, new_index
from .rules import SoftmaxAt
from .tensorindex import InRange

MAX_FUSED_OPS = 40  # operations a fused delta may hold (keeps the sweep linear in depth)

# ---------------------------------------------------------------------------
# forward values


def forward_patterns(net: ir.Network) -> list[tuple[sp.Expr, tuple, str]]:
    """(element-wise right-hand side, its index wildcards, name) of each function equation."""
    out = []
    for eq in net.equations:
        if isinstance(eq.expr, (ir.Call, ir.Softmax)):
            idx = fresh_indices(eq.shape, "w")
            out.append((lower(eq.expr, idx), idx, eq.name))
    return out


def _unify(p: sp.Basic, e: sp.Basic, wilds: set, bound: dict) -> bool:
    if p in wilds:
        if p in bound:
            return bound[p] == e
        bound[p] = e
        return True
    if isinstance(p, SoftmaxAt):
        return (
            isinstance(e, SoftmaxAt)
            and p.n == e.n
            and _unify(p.k, e.k, wilds, bound)
            and _unify(p.body, e.body.xreplace({e.kappa: p.kappa}), wilds, bound)
        )
    if isinstance(p, sp.Sum):
        if (
            not isinstance(e, sp.Sum)
            or len(p.limits) != len(e.limits)
            or any(a[1:] != b[1:] for a, b in zip(p.limits, e.limits, strict=True))
        ):
            return False
        ren = {b[0]: a[0] for a, b in zip(p.limits, e.limits, strict=True)}
        return _unify(p.function, e.function.xreplace(ren), wilds, bound)
    if not p.args:
        return p == e
    if p.func != e.func or len(p.args) != len(e.args):
        return False
    return all(_unify(a, b, wilds, bound) for a, b in zip(p.args, e.args, strict=True))


def resubstitute(expr: sp.Expr, patterns) -> sp.Expr:
    """Replace every occurrence of a function equation's right-hand side by its name."""
    for pattern, idx, name in patterns:
        wilds = {i for i in idx if isinstance(i, sp.Symbol)}
        found: dict = {}

        def query(e, pattern=pattern, wilds=wilds, found=found):
            if getattr(e, "func", None) != pattern.func:
                return False
            bound: dict = {}
            if _unify(pattern, e, wilds, bound):
                found[e] = bound
                return True
            return False

        def value(e, idx=idx, name=name, found=found):
            bound = found[e]
            return element(name, tuple(bound.get(i, i) for i in idx))

        expr = expr.replace(query, value)
    return expr


# ---------------------------------------------------------------------------
# unit sums


def sums_to_one(expr: sp.Expr, k: sp.Symbol) -> bool:
    """Whether ``Σ_k expr = 1`` over ``k``'s whole range, read off ``expr``.

    True for a quotient whose denominator is free of ``k`` and is the numerator
    summed over ``k``'s range (up to the name of the bound index), as a softmax
    entry is in its explicit form ``exp(z_k) / Σ_κ exp(z_κ)``.  (A normalisation
    written out in a spec, ``e / sum(e, axis=1, keepdims=True)``, has its sum
    named by :func:`ir.name_arguments` and is not seen.)
    """
    if not is_index(k):
        return False
    if isinstance(expr, SoftmaxAt):
        expr = sp.exp(expr.at(expr.k)) / sp.Sum(
            sp.exp(expr.at(expr.kappa)), (expr.kappa, 0, expr.n - 1)
        )
    num, den = sp.fraction(expr)
    if k in den.free_symbols or not isinstance(den, sp.Sum) or len(den.limits) != 1:
        return False
    kappa, low, high = den.limits[0]
    return (low, high) == (0, dim_of(k) - 1) and den.function.xreplace({kappa: k}) == num


def unit_sum_axes(net: ir.Network) -> dict[str, int]:
    """Name -> an axis along which that equation's entries sum to 1 (:func:`sums_to_one`)."""
    out = {}
    for eq in net.equations:
        if not isinstance(eq.expr, (ir.Softmax, ir.Binary)):  # a quotient or a softmax
            continue
        idx = fresh_indices(eq.shape, "u")
        rhs = lower(eq.expr, idx)
        axis = next((a for a, k in enumerate(idx) if sums_to_one(rhs, k)), None)
        if axis is not None:
            out[eq.name] = axis
    return out


# ---------------------------------------------------------------------------


def ops(expr: sp.Expr) -> int:
    """Arithmetic operations to evaluate ``expr`` (a negation is free)."""
    counts = sp.count_ops(expr, visual=True)
    if counts == 0:
        return 0
    return int(sum(n for op, n in counts.as_coefficients_dict().items() if str(op) != "NEG"))


def cost(terms: list[Term]) -> int:
    """Operations needed to evaluate a list of terms (a sum over an axis counts 2)."""
    return sum(ops(t.factor) + 2 * len(t.summed) for t in terms) + len(terms) - 1


MAX_FACTOR_DEGREE = 64  # the largest polynomial degree cancel/factor are asked to handle


def _degree(expr: sp.Expr) -> int:
    """The degree SymPy's polynomial algorithms would work at.

    They read ``x**(p/q)`` as a power of the generator ``x**(1/Q)``, Q the lcm
    of every denominator over ``x``: ``x**2 + x**(999/1000)`` is a polynomial
    of degree 2000 in ``x**(1/1000)``, which ``factor`` takes minutes over.
    """
    dens: dict = {}
    tops: dict = {}
    for p in expr.atoms(sp.Pow):
        if p.exp.is_Rational:
            dens[p.base] = sp.ilcm(dens.get(p.base, 1), p.exp.q)
            tops[p.base] = max(tops.get(p.base, 1), abs(p.exp))  # 1: x itself may appear
    return int(max((tops[b] * dens[b] for b in tops), default=0))


def _factorable(expr: sp.Expr) -> bool:
    """Whether ``sp.factor`` may try ``expr``: no ``exp`` of a large multiple.

    SymPy factors ``exp(10⁹ x)`` as the polynomial ``exp(x)^(10⁹)``, which never
    ends (``exp(where(m > 0, s, -1e9))`` of attention masks holds one).
    """
    exps = expr.atoms(sp.exp)
    return not any(abs(n) > MAX_FACTOR_DEGREE for e in exps for n in e.args[0].atoms(sp.Rational))


def _tidy_factor(expr: sp.Expr) -> sp.Expr:
    """The cheapest of the expression, its cancelled and its factored form.

    Above :data:`MAX_FACTOR_DEGREE` the expression is kept as it is: the
    forms are as right, only not tidied, and the work stays bounded.
    """
    best = expr
    if _degree(expr) > MAX_FACTOR_DEGREE:
        return best
    factored = (polys.factor(expr),) if _factorable(expr) else ()
    for candidate in (sp.cancel(expr), *factored):
        if ops(candidate) < ops(best):
            best = candidate
    return best


class Simplifier:
    """Simplifies each adjoint once all its contributions are in."""

    def __init__(self, net: ir.Network, index: dict[str, tuple]):
        self.net = net
        self.index = index
        self.done: dict = {}
        self.onehot = {
            q.name: q.onehot_axis for q in net.of_kind("target") if q.onehot_axis is not None
        }
        # onehot(y, n) of class labels: each row sums to 1
        self.onehot.update(
            {onehot_name(q.name): 1 for q in net.of_kind("target") if q.classes is not None}
        )
        # and so does the one-hot of an argmax or of 1-D table indices (one 1 a row)
        self.onehot.update(
            {
                onehot_name(q.name): 1
                for q in net.quantities.values()
                if q.classes is not None and q.rank == 1
            }
        )
        # and so does a softmax along its axis (derived from the equation, not declared)
        self.onehot.update(unit_sum_axes(net))

    def fuse(self, contributions) -> tuple[list[Term], list[str]]:
        """The simplified terms of an adjoint, and the local deltas fused into them.

        The caller records the finished adjoint in :attr:`done` (by name) so
        that later adjoints may fuse it in turn.
        """
        best = self.tidy([t for c in contributions for t in c.terms])
        inlined: list[str] = []
        best, inlined = self.fuse_sole(best)
        for r in self.local_deltas(best):
            if self.readers(r) > 1:  # inlined into each reader, it would be computed twice
                continue
            candidate = self.tidy(self.inline(best, r))
            # fusing pays when the fused form costs less than this adjoint and δr
            # together; at equal cost an element-wise chain is fused (one delta
            # per layer, as textbooks write δ3 = (X3 − T) ⊙ f3'(z3)) but a delta
            # feeding a matrix product keeps its name.
            before = cost(best) + cost(self.done[r].terms)
            elementwise = all(not t.summed for t in best if r in _deltas_in(t.factor))
            # and never past MAX_FUSED_OPS: a chain of element-wise layers would
            # otherwise fuse into one ever-growing delta (quadratic work)
            small = cost(candidate) <= MAX_FUSED_OPS
            # a slice's adjoint is zero-padded: fused into it, a delta would be
            # computed on the padded width; it keeps its own name instead
            small = small and not any(t.factor.has(InRange) for t in best)
            if small and (cost(candidate) < before or (cost(candidate) == before and elementwise)):
                best, inlined = candidate, [*inlined, r]
        return best, inlined

    def fuse_sole(self, best: list[Term]) -> tuple[list[Term], list[str]]:
        """Deltas with sums that only this adjoint reads, fused into it where cheaper.

        ``δr`` is read by the adjoints of the operands of ``r``'s equation; with
        one such operand, this adjoint is its only reader, and fusing it removes
        a named delta (batch norm's ``δsd``, ``δv`` and ``δmu``: one line for
        ``δhp`` as careful code writes it).  Sums and all, as an einsum term.
        """
        inlined: list[str] = []
        while True:
            for r in self.sole_deltas(best):
                fused = self.inline_summed(best, r)
                if fused is None:
                    continue
                candidate = self.tidy(fused)
                before = cost(best) + cost(self.done[r].terms)
                if cost(candidate) <= min(MAX_FUSED_OPS, before):  # one name fewer
                    best, inlined = candidate, [*inlined, r]
                    break
            else:
                return best, inlined

    def sole_deltas(self, terms: list[Term]) -> list[str]:
        """Finished deltas with sums of statistics (a mean or variance kept as a row or
        column), read in ``terms`` outside sums, by no other adjoint."""
        if not hasattr(self, "_needs"):
            self._needs = self.net.needs_adjoint()
        out = []
        for t in terms:
            for name in sorted(_deltas_in(t.factor)):
                step = self.done.get(name)
                eq = next((e for e in self.net.equations if e.name == name), None)
                if (
                    step is None
                    or eq is None
                    or name in out
                    or not any(u.summed for u in step.terms)
                    or 1 not in eq.shape  # a statistic kept as a row or column (keepdims)
                    or len([v for v in eq.refs() if v in self._needs]) != 1
                    or any(t.factor.has(InRange) for t in step.terms)
                    or any(name in _deltas_in(u.factor) for u in terms if u.summed)
                ):
                    continue
                out.append(name)
        return out

    def inline_summed(self, terms: list[Term], name: str) -> list[Term] | None:
        """``terms`` with the delta ``name`` (read linearly, outside sums) replaced by its
        terms, each with fresh summed indices; None where it is not read linearly."""
        step = self.done[name]
        symbols = [i for i in step.indices if isinstance(i, sp.Symbol)]
        delta = "delta_" + name

        def entries(e):
            if step.indices:
                return [a for a in e.atoms(sp.Indexed) if str(a.base) == delta]
            return [a for a in e.atoms(sp.Symbol) if a.name == delta]

        out = []
        for t in terms:
            if not entries(t.factor):
                out.append(t)
                continue
            kept = []
            for mono in sp.Add.make_args(sp.expand(t.factor)):
                found = entries(mono)
                if not found:
                    kept.append(mono)
                    continue
                at = found[0] if len(found) == 1 else None
                if at is None or mono.as_independent(at, as_Add=False)[1] != at:
                    return None  # not linear in one entry of δr
                idx = at.indices if isinstance(at, sp.Indexed) else ()
                where = {s: i for s, i in zip(step.indices, idx, strict=False) if s in symbols}
                for u in step.terms:
                    fresh = {k: new_index(dim_of(k), "f") for k in u.summed}
                    value = u.factor.xreplace(fresh).xreplace(where)
                    out.append(Term(mono.xreplace({at: value}), (*t.summed, *fresh.values())))
            if kept:
                out.append(Term(sp.Add(*kept), t.summed))
        return out

    def readers(self, name: str) -> int:
        """How many adjoints would take ``δname`` in element-wise: the operands of its
        equation of its own shape, when that equation is element-wise throughout
        (``h = o ⊙ tanh(c)``: δh reaches δo and δc entry by entry)."""
        if not hasattr(self, "_needs"):
            self._needs = self.net.needs_adjoint()
        eq = next((e for e in self.net.equations if e.name == name), None)
        plain = (ir.Ref, ir.Scalar, ir.Binary, ir.Neg, ir.Power, ir.Call)
        if eq is None or not all(isinstance(n, plain) for n in ir.walk(eq.expr)):
            return 0
        shapes = self.net.quantities
        return len([v for v in eq.refs() if v in self._needs and shapes[v].shape == eq.shape])

    # -- fusing -----------------------------------------------------------------
    def local_deltas(self, terms: list[Term]) -> list[str]:
        """Deltas used in ``terms`` that are element-wise in forward values only."""
        used = []
        for t in terms:
            for name in _deltas_in(t.factor):
                step = self.done.get(name)
                if (
                    step
                    and name not in used
                    and all(not u.summed and not _deltas_in(u.factor) for u in step.terms)
                ):
                    used.append(name)
        return used

    def inline(self, terms: list[Term], name: str) -> list[Term]:
        """``terms`` with the local delta ``name`` replaced by its value."""
        step = self.done[name]
        value = sp.Add(*[t.factor for t in step.terms])
        symbols = [i for i in step.indices if isinstance(i, sp.Symbol)]
        delta = "delta_" + name

        def at(e):
            idx = e.indices if isinstance(e, sp.Indexed) else ()
            return value.xreplace(
                {s: i for s, i in zip(step.indices, idx, strict=True) if s in symbols}
            )

        def is_delta(e):
            if isinstance(e, sp.Indexed):
                return str(e.base) == delta
            return not step.indices and isinstance(e, sp.Symbol) and e.name == delta

        return [Term(t.factor.replace(is_delta, at), t.summed) for t in terms]

    # -- tidying ----------------------------------------------------------------
    def tidy(self, terms: list[Term]) -> list[Term]:
        """``terms`` merged and simplified factor by factor (cheapest form kept)."""
        terms = [u for t in terms for u in self.onehot_sums(t)]
        plain = [t for t in terms if not t.summed]
        summed = [t for t in terms if t.summed]
        out = []
        if plain:
            merged = _tidy_factor(sp.Add(*[t.factor for t in plain]))
            if merged != 0:
                out.append(Term(merged))
        return out + [t for t in summed if t.factor != 0]

    def onehot_sums(self, term: Term) -> list[Term]:
        """``Σ_k t[b, k] = 1`` along a unit-sum axis: the sum against factors free
        of ``k`` is those factors.  A factor that is a sum over such quantities
        (``Σ_k (p[b, k] − onehot(y)[b, k])``) is split first, and kept split only
        when every part loses the sum."""
        out = [self._unit_sums(term)]
        for k in out[0].summed:
            parts = [self._unit_sums(Term(f, out[0].summed)) for f in _split_on(out[0].factor, k)]
            if len(parts) > 1 and all(k not in p.summed for p in parts):
                return [q for p in parts for q in self.onehot_sums(p)]
        return out

    def _unit_sums(self, term: Term) -> Term:
        factors = list(sp.Mul.make_args(term.factor))
        summed = list(term.summed)
        for k in list(summed):
            holders = [f for f in factors if k in f.free_symbols]
            if len(holders) != 1:
                continue
            (f,) = holders
            if (
                isinstance(f, sp.Indexed)
                and str(f.base) in self.onehot
                and f.indices[self.onehot[str(f.base)]] == k
                and list(f.indices).count(k) == 1
            ):
                factors.remove(f)
                summed.remove(k)
        return Term(sp.Mul(*factors), tuple(summed))

    def prune(self, steps: list, gradients: list) -> list:
        """Keep the deltas some gradient still needs (fused ones drop out)."""
        needed: set[str] = set()
        frontier = [*gradients]
        while frontier:
            s = frontier.pop()
            for t in s.terms:
                for name in _deltas_in(t.factor):
                    if name not in needed:
                        needed.add(name)
                        frontier.append(self.done[name])
        return [s for s in steps if s.name in needed]


def _split_on(factor: sp.Expr, k: sp.Symbol) -> list[sp.Expr]:
    """``factor`` as the terms of its one factor that holds ``k``, when that factor
    is a sum (the others multiply each term); ``[factor]`` otherwise."""
    factors = sp.Mul.make_args(factor)
    holders = [f for f in factors if k in f.free_symbols]
    if len(holders) != 1 or not isinstance(holders[0], sp.Add):
        return [factor]
    rest = sp.Mul(*[f for f in factors if f is not holders[0]])
    return [rest * part for part in sp.Add.make_args(sp.expand(holders[0]))]


def _deltas_in(expr: sp.Expr) -> set[str]:
    names = {str(i.base) for i in expr.atoms(sp.Indexed)} | {
        s.name for s in expr.free_symbols if isinstance(s, sp.Symbol)
    }
    return {n[len("delta_") :] for n in names if n.startswith("delta_")}
