"""Values for judging: the network, its proven deltas and a claim's expressions, exactly
(arrays of SymPy symbols at small sizes) or numerically (random float64), and the one
exact equality test every verdict goes through (:func:`is_zero`)."""

from __future__ import annotations

import copy

import numpy as np
import sympy as sp

from .. import ir
from ..check import _is_zero, _shape, concrete_sizes, derived_values, random_values, symbol_values
from ..derivation import Derivation
from ..numeric import Functions, _run, generic_bindings
from ..rules import RULES

EXACT_SIZES = (2, 3, 4, 5)


def is_zero(expr) -> bool:
    """Whether ``expr`` (SymPy, function values as independent atoms) is identically zero.

    The one exact decision every verdict goes through: ``derive grad --check``'s own
    procedure (exact rational arithmetic at random points, Schwartz–Zippel), after function
    calls become atoms.  The atoms are found here once per shared sub-expression (values
    computed by code share their sub-trees, so a plain tree walk is exponential), and
    σ and softplus are written out first, as code computes them.
    """
    if expr == 0:
        return True
    return _is_zero(_atoms(sp.sympify(expr), {}, {}))


_EXPLICIT = {RULES[n].cls: RULES[n].value for n in ("sigmoid", "softplus")}


def _atoms(expr, table: dict, memo: dict):
    """:func:`derive.check._atomize` with a memo (and σ, softplus written out)."""
    hit = memo.get(expr)
    if hit is not None:
        return hit
    if expr.func in _EXPLICIT:
        out = _atoms(_EXPLICIT[expr.func](*expr.args), table, memo)
    elif isinstance(expr, sp.exp):
        out = sp.Integer(1)
        for term in sp.Add.make_args(sp.expand(expr.args[0])):
            coeff, rest = term.as_coeff_Mul()
            if not (coeff.is_Integer and rest != 1):
                coeff, rest = sp.Integer(1), term
            inner = sp.exp(_atoms(rest, table, memo), evaluate=False)
            out *= _atom(inner, table) ** coeff
    elif isinstance(expr, sp.Function):
        out = _atom(expr.func(*[_atoms(a, table, memo) for a in expr.args]), table)
    elif not expr.args:
        out = expr
    else:
        out = expr.func(*[_atoms(a, table, memo) for a in expr.args])
    memo[expr] = out
    return out


def _atom(call, table: dict):
    if call not in table:
        table[call] = sp.Dummy("g")
    return table[call]


def equal(a, b) -> bool:
    """Entry-by-entry exact equality of two arrays of SymPy expressions."""
    a, b = np.asarray(a, dtype=object), np.asarray(b, dtype=object)
    return a.shape == b.shape and all(is_zero(x - y) for x, y in zip(a.flat, b.flat, strict=True))


class Evaluator:
    """Values of the network, its proven deltas and a claim's expressions at one size."""

    def __init__(self, d: Derivation, exact: bool, seed: int = 0):
        net = self.net = d.network
        self.exact = exact
        self.transposed = False
        if exact:
            self.dims = concrete_sizes(net, EXACT_SIZES)
            values = symbol_values(net, self.dims)
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
        value = np.asarray(self.env["delta_" + wrt]).reshape(_shape(q, self.dims))
        return transpose(value) if self.transposed else value

    def claim(self, node: ir.Node, env_extra: dict):
        grads = {
            "_g_" + r.name[3:]: self.truth(r.name[3:])
            for r in ir.walk(node)
            if isinstance(r, ir.Ref) and r.name.startswith("_g_")
        }
        return _run(node, {**self.np_env, **grads, **env_extra}, self.scalars, self.funcs)


def transpose(v):
    """A value in the transposed layout: a vector becomes a column."""
    v = np.asarray(v)
    if v.ndim == 1:
        return v.reshape(-1, 1)
    return v.T if v.ndim == 2 else v
