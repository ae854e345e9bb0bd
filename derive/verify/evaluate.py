"""Values for judging: the network, its proven deltas and a claim's expressions, exactly
(arrays of SymPy symbols at small sizes) or numerically (random float64), and the one
exact equality test every verdict goes through (:func:`is_zero`)."""

from __future__ import annotations

import copy
import zlib

import numpy as np
import sympy as sp

from .. import decide, ir
from ..check import array_shape, concrete_sizes, derived_values, random_values, symbol_values
from ..derivation import Derivation, derive
from ..indices import as_expr
from ..numeric import Functions, generic_bindings, run_node
from ..rules import RULES

EXACT_SIZES = (2, 3, 4, 5)
_DERIVED: dict[int, tuple[ir.Network, Derivation]] = {}


def derivation(net: ir.Network) -> Derivation:
    """``derive(net, keep_all=True)``, remembered for the same network object: a claim set
    verified statement by statement, or mutant by mutant, derives once (the derivation is
    most of a one-line verdict's time)."""
    hit = _DERIVED.get(id(net))
    if hit is not None and hit[0] is net:  # the object itself is kept: its id stays its own
        return hit[1]
    d = derive(net, keep_all=True)
    if len(_DERIVED) >= 16:
        _DERIVED.pop(next(iter(_DERIVED)))
    _DERIVED[id(net)] = (net, d)
    return d


_EVALUATORS: dict[tuple[int, bool], tuple[Derivation, Evaluator]] = {}


def evaluator(d: Derivation, exact: bool) -> Evaluator:
    """The exact or the numeric (seed 1) :class:`Evaluator` of ``d``, remembered for the same
    derivation object: several functions checked against one spec (its conv layer's exact
    values are seconds of SymPy) evaluate it once.  Judging only reads an evaluator."""
    hit = _EVALUATORS.get((id(d), exact))
    if hit is not None and hit[0] is d:
        return hit[1]
    ev = Evaluator(d, exact=exact, seed=1)
    if len(_EVALUATORS) >= 16:
        _EVALUATORS.pop(next(iter(_EVALUATORS)))
    _EVALUATORS[(id(d), exact)] = (d, ev)
    return ev


def is_zero(expr, explicit: bool = True) -> bool:
    """Whether ``expr`` (SymPy) is identically zero: the one exact decision procedure of
    :mod:`derive.decide`, shared with ``derive grad --check``.

    σ, softplus, silu, square and sqrt are written out first (once per shared
    sub-expression), as code computes them (``1 / (1 + np.exp(-z))``, ``x**2``); the
    procedure takes every function value as an atom, so ``sigmoid(z)`` and its explicit form
    would otherwise be different atoms.
    Writing them out costs a rebuild of the expression: ``explicit=False`` skips it where
    no σ or softplus can occur (:func:`needs_explicit`).
    """
    expr = as_expr(expr)
    if expr == 0:
        return True
    expr = _explicit(expr, {}) if explicit else expr
    if clearly_nonzero(expr):  # a wrong line: no need to expand a deep recurrence to see it
        return False
    try:
        return decide.is_zero(expr)
    except TypeError:  # x / (x - x): a division by zero is no gradient (and not a bug)
        if expr.has(sp.zoo, sp.nan, sp.oo, -sp.oo):
            return False
        raise


def clearly_nonzero(expr: sp.Expr) -> bool:
    """Whether ``expr`` is far from zero at one point, computed with 40 digits: every symbol a
    fixed value in [0.5, 1.5] drawn from its name (or the value a :class:`Valued` symbol
    stands for).  An identity is never far from zero there; a difference that is may be
    decided without the decision procedure's expansion.  Functions that do not evaluate at
    numbers leave it undecided (False)."""
    try:
        value = complex(_at(expr, {}).evalf(40))
    except (TypeError, ValueError, ZeroDivisionError, OverflowError, RecursionError):
        return False
    return bool(np.isfinite(value)) and abs(value) > 1e-20


def _at(expr, memo: dict):
    """``expr`` at the point, each shared sub-expression once (a recurrence's values share
    deep sub-trees that a plain substitution, or ``free_symbols``, visits at every use)."""
    hit = memo.get(expr)
    if hit is not None:
        return hit
    if isinstance(expr, sp.Symbol):
        r = getattr(expr, "r", None)
        if r is None:
            r = 0.5 + (zlib.crc32(str(expr).encode()) % 10007) / 10007
        out = sp.Float(r, 40)
    elif not expr.args:
        out = expr
    else:
        out = expr.func(*[_at(a, memo) for a in expr.args])
    if not out.is_Number:  # a function that does not evaluate at numbers (relu'): undecided
        raise TypeError("not a number at the point")
    memo[expr] = out
    return out


def needs_explicit(net: ir.Network) -> bool:
    """Whether σ or softplus can appear in the network's values or gradients: a function of
    the network is one of them or has one in its derivative (softplus' = σ, silu' …)."""
    z = sp.Symbol("z")
    for eq in net.equations:
        for node in ir.walk(eq.expr):
            if not isinstance(node, ir.Call) or node.fn not in RULES:
                continue
            rule = RULES[node.fn]
            if rule.cls in _EXPLICIT or rule.derivative(z, *node.params).has(*_EXPLICIT):
                return True
    return False


# written out as code computes them: np.square(x) is x**2 and np.sqrt(x) is x**(1/2) to the
# decision procedure, which takes every function value (the rules' square(x)) as an atom
_EXPLICIT = {
    RULES[n].cls: RULES[n].value for n in ("sigmoid", "softplus", "silu", "square", "sqrt")
}


def _explicit(expr, memo: dict):
    hit = memo.get(expr)
    if hit is not None:
        return hit
    if expr.func in _EXPLICIT:
        out = _explicit(_EXPLICIT[expr.func](*expr.args), memo)
    elif not expr.args:
        out = expr
    else:
        out = expr.func(*[_explicit(a, memo) for a in expr.args])
    memo[expr] = out
    return out


def equal(a, b, explicit: bool = True) -> bool:
    """Entry-by-entry exact equality of two arrays of SymPy expressions."""
    a, b = np.asarray(a, dtype=object), np.asarray(b, dtype=object)
    return a.shape == b.shape and all(
        is_zero(x - y, explicit) for x, y in zip(a.flat, b.flat, strict=True)
    )


class Evaluator:
    """Values of the network, its proven deltas and a claim's expressions at one size."""

    def __init__(self, d: Derivation, exact: bool, seed: int = 0):
        net = self.net = d.network
        self.exact = exact
        self.transposed = False
        self.explicit = needs_explicit(net)  # σ/softplus written out for the zero test
        if exact:
            self.dims = concrete_sizes(net, EXACT_SIZES)
            values = symbol_values(net, self.dims)
            if has_argmax(net):  # a max-pool: each symbol stands for a value (its ordering)
                values = valued(net, values, np.random.default_rng(seed))
            self.funcs = Functions(exact=True)
        else:
            rng = np.random.default_rng(seed)
            sizes = rng.permutation(np.arange(3, 3 + len(net.dims)))
            self.dims = {name: int(s) for name, s in zip(net.dims, sizes, strict=True)}
            values = random_values(net, rng, self.dims)
            self.funcs = Functions(generic=generic_bindings(net.funcs))
        self.values = values
        fwd, self.env = derived_values(d, values, self.funcs)
        self.np_env = dict(fwd)  # NumPy shapes, for claims
        self.scalars = {**{c: values[c] for c in net.consts}, **self.dims}

    def transposed_layout(self) -> Evaluator:
        """The same values seen in the transposed layout (every array transposed)."""
        other = copy.copy(self)
        other.transposed = True
        other.np_env = {k: transpose(v) for k, v in self.np_env.items()}
        return other

    def truth(self, wrt: str) -> np.ndarray:
        """∂loss/∂wrt in the spec's shape (transposed in the transposed layout)."""
        q = self.net.quantities[wrt]
        value = np.asarray(self.env["delta_" + wrt]).reshape(array_shape(q, self.dims))
        return transpose(value) if self.transposed else value

    def claim(self, node: ir.Node, env_extra: dict):
        """A claim's value: ``node`` run on the network's values, the true gradients
        (``_g_q``) and the claim's own definitions ``env_extra``.
        """
        grads = {
            "_g_" + r.name[3:]: self.truth(r.name[3:])
            for r in ir.walk(node)
            if isinstance(r, ir.Ref) and r.name.startswith("_g_")
        }
        return run_node(node, {**self.np_env, **grads, **env_extra}, self.scalars, self.funcs)


class Valued(sp.Symbol):
    """A symbol that stands for a point: ``r`` is its real value.  Where a network takes a
    maximum (a max-pool's argmax), which entry is largest is decided by these values, so an
    exact verdict holds on the region of inputs where every maximum is where it is at this
    point (:func:`derive.numeric.argmax` reads ``r``)."""

    __slots__ = ("r",)


def has_argmax(net: ir.Network) -> bool:
    """Whether the network takes an argmax (a max-pool's routing, ``argmax`` over an axis)."""
    return any(
        isinstance(n, (ir.Argmax, ir.PoolArgmax)) for eq in net.equations for n in ir.walk(eq.expr)
    )


def valued(net: ir.Network, values: dict, rng: np.random.Generator) -> dict:
    """The symbols of inputs, targets and params as :class:`Valued` symbols (random reals)."""
    out = dict(values)
    for q in net.quantities.values():
        v = values.get(q.name)
        if q.classes is not None or not isinstance(v, np.ndarray) or v.dtype != object:
            continue
        arr = np.empty(v.shape, dtype=object)
        for idx in np.ndindex(v.shape):
            s = Valued(str(v[idx]), real=True) if isinstance(v[idx], sp.Symbol) else v[idx]
            if isinstance(s, Valued):
                s.r = float(rng.normal())
            arr[idx] = s
        out[q.name] = arr
    return out


def real(v) -> float | None:
    """The real value an exact entry stands for (its :class:`Valued` symbols put in)."""
    r = getattr(v, "r", None)
    if r is not None:
        return float(r)
    if isinstance(v, (int, float)):
        return float(v)
    if not isinstance(v, sp.Basic):
        return None
    symbols = v.free_symbols
    if not all(isinstance(s, Valued) for s in symbols):
        return None
    return float(v.xreplace({s: sp.Float(s.r) for s in symbols}))


def transpose(v):
    """A value in the transposed layout: a vector becomes a column."""
    v = np.asarray(v)
    if v.ndim == 1:
        return v.reshape(-1, 1)
    return v.T if v.ndim == 2 else v
