"""The three proofs that a derivation is right, run by ``derive grad --check``.

* :func:`symbolic`: each matrix form, lowered back to indices through
  SymPy's own ``MatrixExpr[i, j]``, is the same element-wise expression as
  the adjoint it was recovered from (identical after canonical renaming
  of summation indices and expansion).
* :func:`exact`: at small concrete sizes, with every entry a SymPy symbol
  and generic functions kept symbolic, the forms composed step by step
  equal SymPy's derivative of the whole loss, entry by entry.
* :func:`numeric`: with random float64 values, the forms match central
  finite differences of the loss computed from the parsed spec.

The exact and numeric checks compute the loss straight from the spec
(:func:`derive.numeric.forward`), independently of the derivation.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

import numpy as np
import symengine as se
import sympy as sp

from . import ir
from .derivation import Derivation
from .elementwise import Term, same_terms
from .matexpr import elementwise_of
from .numeric import Functions, as_2d, evaluate, forward, generic_bindings


@dataclass
class Proof:
    name: str
    passed: bool
    seconds: float
    details: dict[str, str] = field(default_factory=dict)  # step name -> outcome

    def as_dict(self) -> dict:
        return {"passed": self.passed, "seconds": round(self.seconds, 3), "steps": self.details}


def run_all(d: Derivation, seed: int = 0) -> list[Proof]:
    return [symbolic(d), exact(d), numeric(d, seed=seed)]


def _all_steps(d: Derivation):
    return [*d.steps, *d.gradients.values()]


def symbolic(d: Derivation) -> Proof:
    start = time.perf_counter()
    details = {}
    for step in _all_steps(d):
        lowered = elementwise_of(step.matrix, step.indices)
        ok = same_terms([Term(lowered)], step.terms)
        details[step.symbol] = "identical" if ok else "DIFFERS"
    return Proof(
        "symbolic",
        all(v == "identical" for v in details.values()),
        time.perf_counter() - start,
        details,
    )


# ---------------------------------------------------------------------------


def concrete_sizes(net: ir.Network, sizes=(2, 3, 4)) -> dict[str, int]:
    """Small distinct sizes for the dimensions (cycled when there are more dims than sizes)."""
    return {name: sizes[n % len(sizes)] for n, name in enumerate(net.dims)}


def _symbol_array(name: str, shape: tuple[int, ...]) -> np.ndarray:
    out = np.empty(shape, dtype=object)
    for idx in np.ndindex(shape):
        out[idx] = sp.Symbol(f"{name}_{'_'.join(map(str, idx))}", real=True)
    return out


def _shape(q: ir.Quantity, dims: dict[str, int]) -> tuple[int, ...]:
    return tuple(
        int(d.xreplace({sp.Symbol(k, integer=True, positive=True): v for k, v in dims.items()}))
        for d in q.shape
    )


def _onehot_exact(value: np.ndarray, axis: int) -> np.ndarray:
    """Make the last entry along ``axis`` one minus the others, so entries sum to 1."""
    value = np.moveaxis(value.copy(), axis, -1)
    value[..., -1] = 1 - value[..., :-1].sum(axis=-1)
    return np.moveaxis(value, -1, axis)


def _atomize(expr: sp.Expr, table: dict) -> sp.Expr:
    """Replace every function application by a symbol (the same one for the same call).

    ``exp`` is first split into powers of exponentials of single terms,
    ``exp(2a − b) = exp(a)² / exp(b)``, so that equal values get equal atoms.
    """
    if isinstance(expr, sp.exp):
        out = sp.Integer(1)
        for term in sp.Add.make_args(sp.expand(expr.args[0])):
            coeff, rest = term.as_coeff_Mul()
            if not (coeff.is_Integer and rest != 1):
                coeff, rest = sp.Integer(1), term
            out *= _atom(sp.exp(_atomize(rest, table), evaluate=False), table) ** coeff
        return out
    if isinstance(expr, sp.Function):
        # arguments in one canonical form: sqrt(v + 1/100) and sqrt((100 v + 1)/100) are
        # one call (simplification may have rewritten an argument)
        args = [sp.cancel(_atomize(a, table)) for a in expr.args]
        return _atom(expr.func(*args), table)
    if not expr.args:
        return expr
    return expr.func(*[_atomize(a, table) for a in expr.args])


def _atom(call: sp.Expr, table: dict) -> sp.Symbol:
    if call not in table:
        table[call] = sp.Dummy("g")
    return table[call]


def _is_zero(expr: sp.Expr, points: int = 3) -> bool:
    """Whether ``expr`` is identically zero as a rational function of its atoms.

    After :func:`_atomize` the expression is a rational function of
    symbols; it is evaluated in exact rational arithmetic (SymEngine) at
    random rational points.  A non-zero rational function of bounded degree
    vanishes at a random point with negligible probability (Schwartz–Zippel),
    while expanding the cross-multiplied numerator can take minutes.
    """
    if expr == 0:
        return True
    rational = se.sympify(_atomize(expr, {}))
    if rational == 0:
        return True
    symbols = sorted(rational.free_symbols, key=str)
    rng = random.Random(20261122)
    tried = attempts = 0
    while tried < points and attempts < 20 * points:
        attempts += 1
        point = {s: se.Rational(rng.randint(1, 2**31), rng.randint(1, 2**31)) for s in symbols}
        value = rational.subs(point)
        if not value.is_Number or not value.is_finite:
            continue  # a pole: try another point
        if value != 0:
            return False
        tried += 1
    return tried == points


def derived_values(d: Derivation, values: dict, funcs: Functions) -> tuple[dict, dict]:
    """The forward values computed from the spec (NumPy shapes) and, with them in 2-D,
    every derived delta and gradient evaluated from its matrix form, in order."""
    net = d.network
    fwd = forward(net, values, funcs)
    env = {
        k: (as_2d(v, net.quantities[k].shape) if k in net.quantities else v) for k, v in fwd.items()
    }
    for step in _all_steps(d):
        value = np.asarray(evaluate(step.matrix, env, funcs))
        if step.shape:  # a gradient that is constant along an axis comes out broadcast
            value = np.broadcast_to(
                value,
                as_2d(
                    values[step.name] if step.name in values else fwd[step.name], step.shape
                ).shape,
            )
        env[step.symbol] = value
    return fwd, env


def symbol_values(net: ir.Network, dims: dict[str, int]) -> dict:
    """Inputs, targets and params as arrays of SymPy symbols (one-hot targets summing to 1
    exactly), consts as symbols, dims as the given sizes."""
    values: dict = dict(dims)
    for q in net.quantities.values():
        if q.classes is not None:  # class labels are data: concrete integers
            values[q.name] = random_labels(q, np.random.default_rng(0), dims)
        elif q.kind in ("input", "target", "param"):
            arr = _symbol_array(q.name, _shape(q, dims))
            values[q.name] = arr if q.onehot_axis is None else _onehot_exact(arr, q.onehot_axis)
    for c in net.consts:
        values[c] = sp.Symbol(c, real=True)
    return values


def exact(d: Derivation) -> Proof:
    start = time.perf_counter()
    net = d.network
    dims = concrete_sizes(net)
    values = symbol_values(net, dims)
    params = {p.name: values[p.name] for p in net.params}
    funcs = Functions(exact=True)
    fwd, env = derived_values(d, values, funcs)
    loss = fwd[net.loss]
    details = {}
    for step in d.gradients.values():
        got = env[step.symbol]
        symbols = as_2d(params[step.name], step.shape)
        ok = all(
            _is_zero(sp.diff(loss, symbols[idx]) - got[idx]) for idx in np.ndindex(symbols.shape)
        )
        details[step.symbol] = "equal" if ok else "DIFFERS"
    sizes = ", ".join(f"{k}={v}" for k, v in dims.items())
    return Proof(
        f"exact ({sizes})",
        all(v == "equal" for v in details.values()),
        time.perf_counter() - start,
        details,
    )


# ---------------------------------------------------------------------------


def random_labels(q: ir.Quantity, rng: np.random.Generator, dims: dict[str, int]) -> np.ndarray:
    """Integer class labels in ``[0, classes)`` for a ``labels`` target."""
    classes = int(
        q.classes.xreplace({sp.Symbol(k, integer=True, positive=True): v for k, v in dims.items()})
    )
    return rng.integers(0, classes, size=_shape(q, dims))


def random_values(net: ir.Network, rng: np.random.Generator, dims: dict[str, int]) -> dict:
    """Random float64 inputs, targets, params and consts of the right shapes."""
    values: dict = dict(dims)
    for q in net.quantities.values():
        if q.kind not in ("input", "target", "param"):
            continue
        shape = _shape(q, dims)
        if q.classes is not None:
            values[q.name] = random_labels(q, rng, dims)
        elif q.onehot_axis is not None:
            n = shape[q.onehot_axis]
            labels = rng.integers(0, n, size=int(np.prod(shape)) // n)
            hot = np.eye(n)[labels]
            values[q.name] = np.moveaxis(
                hot.reshape(*np.delete(shape, q.onehot_axis), n), -1, q.onehot_axis
            )
        elif q.kind == "target":
            values[q.name] = rng.uniform(0.05, 0.95, size=shape)
        else:
            values[q.name] = rng.normal(size=shape) * (0.8 if q.kind == "param" else 1.0)
    for c, default in net.consts.items():
        values[c] = default if default is not None else 0.1
    return values


def numeric(d: Derivation, seed: int = 0, tol: float = 1e-6) -> Proof:
    start = time.perf_counter()
    net = d.network
    rng = np.random.default_rng(seed)
    dims = {name: int(rng.integers(3, 7)) for name in net.dims}
    values = random_values(net, rng, dims)
    funcs = Functions(generic=generic_bindings(net.funcs))

    def loss() -> float:
        return float(forward(net, values, funcs)[net.loss])

    _, env = derived_values(d, values, funcs)
    details = {}
    worst = 0.0
    for step in d.gradients.values():
        got = env[step.symbol]
        got = np.asarray(got, dtype=float).reshape(values[step.name].shape)
        fd = np.zeros_like(got)
        p = values[step.name]
        for idx in np.ndindex(p.shape):
            h = 1e-6 * max(1.0, abs(p[idx]))
            old = p[idx]
            p[idx] = old + h
            up = loss()
            p[idx] = old - h
            down = loss()
            p[idx] = old
            fd[idx] = (up - down) / (2 * h)
        err = float(np.linalg.norm(got - fd) / max(np.linalg.norm(got), np.linalg.norm(fd), 1e-12))
        worst = max(worst, err)
        details[step.symbol] = f"rel. error {err:.1e}" + ("" if err < tol else " > tolerance")
    sizes = ", ".join(f"{k}={v}" for k, v in dims.items())
    return Proof(
        f"numeric ({sizes}; finite differences)", worst < tol, time.perf_counter() - start, details
    )
