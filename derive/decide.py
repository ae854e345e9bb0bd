"""The one exact decision procedure: are two expressions equal?  (Used by the proofs and verify.)

API
---
* :func:`is_zero(expr)` / :func:`equal(a, b)`: SymPy expressions (or NumPy
  object arrays of them, compared entry by entry) over the small concrete
  sizes: symbols for every entry, generic functions symbolic.
* :class:`Point` and :class:`Value`: the same evaluation as a value type,
  for code that computes with exact values instead of building SymPy
  expressions (the exact proof runs the network's forward pass and the
  derived forms on :class:`Value` arrays, and :func:`gradient` gives the
  exact derivative of the loss by reverse mode over that forward pass).

What is decided
---------------
Every function application ``g(z)`` (``exp``, ``log``, ``tanh``,
``sigmoid``, ``softplus``, a generic ``f``, ``f'``…) is an *atom*: a
fresh indeterminate, the same one for the same function of the same
argument (arguments are compared by their value at the point, so equal
arguments written differently share their atom).  A rational power
``x^(a/b)`` is ``x^n · y^r`` with ``y`` the atom ``x^(1/b)`` and
``a/b = n + r/b``, ``0 ≤ r < b``.  In the SymPy interface ``exp`` is first
split over the terms of its expanded argument, ``exp(2a − b) =
exp(a)² / exp(b)``.  Two expressions are then *equal* when they are the
same rational function of the inputs, params, consts and atoms.  Equal in
this sense implies equal as real functions (evaluating atoms is a ring
homomorphism); the converse can fail (``log(exp(x))`` and ``x`` are not
recognised equal), so "different" means "not equal as rational functions
of atoms".

The piecewise-linear functions ``relu``, ``leaky_relu`` and their
derivatives are not atoms: at each point they are evaluated exactly, the
branch chosen by the sign of their argument at a real point drawn with
the field point (points whose arguments come within ``KINK`` of a kink are
redrawn; an argument that is identically zero takes the rule's value at
0).  So an identity with such functions is decided on the sign region of
each sample point, where both sides are rational functions; when a branch
was taken, :func:`is_zero` uses :data:`PIECEWISE_POINTS` points (each with
its own real point), so an expression that differs on a sign region of
probability ``q`` escapes with probability ``(1 − q)^16``.  (In the exact
proof the arguments of every entry vary independently, and the comparison
is entry by entry at every point.)

How, and the error probability
------------------------------
Both sides are evaluated at random points of the prime field
``F_p``, ``p = 2^61 − 1`` (every indeterminate, atoms included, uniform
and independent), in exact modular arithmetic: no expansion, no floating
point in the decision.  Each value carries a bound on the total degree of
its numerator and denominator as a rational function (sums use a common
multiple of the denominators).  A non-zero rational function whose
numerator has degree ≤ D vanishes at a random point with probability at
most D/p (Schwartz–Zippel); two different atom arguments coincide with
probability at most D_arg/p each.  A point where a denominator vanishes
is redrawn.  With ``K`` independent points (:data:`POINTS`) a false
"equal" has probability at most ``(D'/p)^K`` with ``D' = D + A²·D_arg``
(``A`` atoms); :func:`error_bound` gives that number for a run.  For the
networks we know ``D'`` stays below ``2^30``, hence below ``2^-62`` per
decision.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable

import numpy as np
import sympy as sp

from .indices import as_expr

# A prime p ≡ 3 (mod 4), so −1 is not a square and F_p(i), i² = −1, is the field
# with p² elements; every prime below 60 is a square mod p, so square roots of
# the constants networks use (eps = 1e-5, 1/√d…) are in F_p and multiply.
P = 2305843009213057079
_ROOT_EXP = (P + 1) // 4
ZERO = (0, 0)


def _add(x, y):
    return ((x[0] + y[0]) % P, (x[1] + y[1]) % P)


def _mul(x, y):
    a, b = x
    c, d = y
    if not b and not d:
        return (a * c % P, 0)
    return ((a * c - b * d) % P, (a * d + b * c) % P)


def _inv(x):
    a, b = x
    n = pow((a * a + b * b) % P, P - 2, P)
    return (a * n % P, -b * n % P)


def _pow(x, k: int):
    out, base = (1, 0), x
    if not x[1]:
        return (pow(x[0], k, P), 0)
    while k:
        if k & 1:
            out = _mul(out, base)
        base = _mul(base, base)
        k >>= 1
    return out


def _sqrt(x):
    """A square root of an element of F_p, multiplicative against squares of F_p:
    ``v^((p+1)/4)`` for a square ``v``, ``i·(−v)^((p+1)/4)`` otherwise."""
    a = x[0]
    r = pow(a, _ROOT_EXP, P)
    if r * r % P == a:
        return (r, 0)
    return (0, pow(-a % P, _ROOT_EXP, P))


POINTS = 2  # independent points per decision
PIECEWISE_POINTS = 16  # when relu/leaky_relu branches were taken: their regions vary too
KINK = 1e-6  # real arguments of relu / leaky_relu closer to 0 than this are redrawn
_ATTEMPTS = 20


class Resample(Exception):
    """The point is unusable (a pole, or a non-smooth function's argument near its kink)."""


class _Tags:
    next = 0


def _fresh_tag() -> int:
    _Tags.next += 1
    return _Tags.next


def _merge_max(a: dict, b: dict) -> dict:
    if not a:
        return b
    if not b:
        return a
    out = dict(a)
    for k, v in b.items():
        if out.get(k, 0) < v:
            out[k] = v
    return out


def _merge_add(a: dict, b: dict) -> dict:
    if not a:
        return b
    if not b:
        return a
    out = dict(a)
    for k, v in b.items():
        out[k] = out.get(k, 0) + v
    return out


class Value:
    """A scalar at one point: its exact value in ``F_p`` and its value at the real point.

    ``deg`` bounds the degree of its numerator and ``den`` its denominator,
    a product of tagged polynomials (``{tag: degree}``).  Arithmetic with
    ints and SymPy rationals works; with a tape (:func:`gradient`) each
    operation records how to send its adjoint back.
    """

    __slots__ = ("f", "r", "deg", "den", "op", "args", "point")

    def __init__(
        self, f: tuple[int, int], r: float, deg: int, den: dict, point: Point, op=None, args=()
    ):
        self.f, self.r, self.deg, self.den, self.point = f, r, deg, den, point
        self.op, self.args = op, args
        if point.tape is not None and op is not None:
            point.tape.append(self)

    # -- coercion ---------------------------------------------------------------------------
    def _lift(self, x) -> Value:
        if isinstance(x, Value):
            return x
        return self.point.const(x)

    @property
    def den_deg(self) -> int:
        return sum(self.den.values())

    # -- arithmetic -------------------------------------------------------------------------
    def __add__(self, other):
        if isinstance(other, np.ndarray):
            return NotImplemented
        o = self._lift(other)
        if not self.den and not o.den:
            deg, den = max(self.deg, o.deg), {}
        else:
            den = _merge_max(self.den, o.den)
            total = sum(den.values())
            deg = max(self.deg + total - self.den_deg, o.deg + total - o.den_deg)
        return Value(_add(self.f, o.f), self.r + o.r, deg, den, self.point, "add", (self, o))

    __radd__ = __add__

    def __neg__(self):
        return Value(
            (-self.f[0] % P, -self.f[1] % P),
            -self.r,
            self.deg,
            self.den,
            self.point,
            "neg",
            (self,),
        )

    def __sub__(self, other):
        if isinstance(other, np.ndarray):
            return NotImplemented
        return self + (-self._lift(other))

    def __rsub__(self, other):
        if isinstance(other, np.ndarray):
            return NotImplemented
        return self._lift(other) + (-self)

    def __mul__(self, other):
        if isinstance(other, np.ndarray):
            return NotImplemented
        o = self._lift(other)
        return Value(
            _mul(self.f, o.f),
            self.r * o.r,
            self.deg + o.deg,
            _merge_add(self.den, o.den),
            self.point,
            "mul",
            (self, o),
        )

    __rmul__ = __mul__

    def inverse(self) -> Value:
        """1 / self (resampled when the denominator vanishes at the point)."""
        if self.f == ZERO:
            raise Resample("a denominator vanishes at the point")
        if self.deg == 0 and not self.den:
            deg, den = 0, {}
        else:
            deg, den = self.den_deg, {_fresh_tag(): self.deg}
        r = 1.0 / self.r if self.r != 0 else math.inf
        return Value(_inv(self.f), r, deg, den, self.point, "inv", (self,))

    def __truediv__(self, other):
        if isinstance(other, np.ndarray):
            return NotImplemented
        return self * self._lift(other).inverse()

    def __rtruediv__(self, other):
        if isinstance(other, np.ndarray):
            return NotImplemented
        return self._lift(other) * self.inverse()

    def __pow__(self, exponent):
        e = sp.Rational(exponent) if not isinstance(exponent, sp.Basic) else exponent
        if not e.is_Rational:
            raise TypeError(f"exponent {exponent} is not rational")
        if e.q != 1:  # x^(a/b) = x^n · y^r with y = x^(1/b)
            n, r = divmod(int(e.p), int(e.q))
            return self.ipow(n) * self.root(int(e.q)).ipow(r)
        return self.ipow(int(e))

    def root(self, b: int) -> Value:
        """``x^(1/b)``: for b = 2 and x in F_p a true square root (see :func:`_sqrt`),
        otherwise an atom (an indeterminate standing for the root)."""
        if b == 2 and not self.f[1]:
            if self.f == ZERO:
                raise Resample("a square root of zero")
            with np.errstate(all="ignore"):
                r = float(np.sqrt(self.r)) if self.r >= 0 else math.nan
            return Value(_sqrt(self.f), r, self.deg, self.den, self.point, "sqrt", (self,))
        return self.point.atom(("root", b), (), self)

    def ipow(self, k: int) -> Value:
        """self ** k for an integer k."""
        if k == 0:
            return self.point.const(1)
        if k < 0:
            return self.inverse().ipow(-k)
        if k == 1:
            return self
        try:
            r = self.r**k
        except OverflowError:
            r = math.inf
        return Value(
            _pow(self.f, k),
            r,
            self.deg * k,
            {t: d * k for t, d in self.den.items()},
            self.point,
            "pow",
            (self, k),
        )

    def __repr__(self) -> str:
        return f"Value({self.f}, {self.r:.3g})"


# ---------------------------------------------------------------------------


class Point:
    """One random point: field values for every indeterminate, real values for branch choices.

    Atoms are memoised by (function, params, argument value), so the same
    call gives the same atom.  ``tape`` (a list) records operations for
    :func:`gradient` when set.
    """

    def __init__(self, seed: int = 0):
        self.rng = random.Random(seed)
        self.nprng = np.random.default_rng(seed)
        self.atoms: dict = {}
        self.symbols: dict = {}
        self.tape: list | None = None
        self.max_arg_deg = 0
        self.max_deg = 0
        self.branched = False  # a piecewise function chose a branch at this point

    def const(self, x) -> Value:
        """``x`` (a number, bool or SymPy number) as a value at this point."""
        if isinstance(x, Value):
            return x
        if isinstance(x, (bool, np.bool_)):
            x = int(x)
        if isinstance(x, (int, np.integer)):
            return Value((int(x) % P, 0), float(x), 0, {}, self)
        if isinstance(x, sp.Basic) and x.is_Rational:
            p, q = int(x.p), int(x.q)
            return Value((p * pow(q, P - 2, P) % P, 0), p / q, 0, {}, self)
        if isinstance(x, sp.Basic) and x.is_Number:  # a float literal: its exact binary value
            x = float(x)
        if isinstance(x, (float, np.floating)):
            if not math.isfinite(x):
                raise TypeError(f"{x} is not a finite number")
            p, q = float(x).as_integer_ratio()
            return Value((p * pow(q, P - 2, P) % P, 0), float(x), 0, {}, self)
        raise TypeError(f"cannot evaluate {type(x).__name__} exactly")

    def fresh(self, real: float) -> Value:
        """A new independent indeterminate: uniform in F_p, ``real`` at the real point."""
        return Value((self.rng.randrange(P), 0), float(real), 1, {}, self)

    def symbol(self, name: str) -> Value:
        """The value of the scalar symbol ``name`` at this point (drawn once)."""
        if name not in self.symbols:
            self.symbols[name] = self.fresh(self.nprng.normal())
        return self.symbols[name]

    def atom(self, key: tuple, params: tuple, z: Value) -> Value:
        """The atom for ``key`` applied to ``z`` (with exact scalar ``params``)."""
        full = (key, tuple(p.f for p in params), z.f)
        hit = self.atoms.get(full)
        if hit is None:
            self.max_arg_deg = max(self.max_arg_deg, z.deg + z.den_deg)
            hit = self.fresh(_real_atom(key, [p.r for p in params], z.r))
            self.atoms[full] = hit
        if self.tape is None:
            return hit
        # a taped copy: same value, records that it came from z
        return Value(hit.f, hit.r, hit.deg, hit.den, self, "atom", (z, key, params))

    def bound(self) -> int:
        """D' of the module docstring for what this point evaluated so far."""
        return self.max_deg + len(self.atoms) ** 2 * self.max_arg_deg


def _real_atom(key, params, r) -> float:
    from .rules import GENERIC_BINDINGS, RULES, generic_base, generic_function

    with np.errstate(all="ignore"):
        kind = key[0]
        if kind == "root":
            return float(np.power(r, 1.0 / key[1])) if r >= 0 else math.nan
        if kind == "generic":
            base, order = generic_base(generic_function(key[1]))
            f, df = GENERIC_BINDINGS[sum(map(ord, base)) % len(GENERIC_BINDINGS)]
            return float((f if order == 0 else df)(r))
        return float(RULES[kind].np_impl(np.float64(r), *params))


# ---------------------------------------------------------------------------
# applying functions


_PIECEWISE = {"relu", "relu_prime", "leaky_relu", "leaky_relu_prime"}


def _kink_side(z: Value) -> int:
    """+1 or −1: the side of 0 the argument is on; 0 if it is identically zero (w.h.p.)."""
    if abs(z.r) < KINK or not math.isfinite(z.r):
        if z.f == ZERO and z.r == 0:
            return 0
        raise Resample("an argument of a non-smooth function is at its kink")
    return 1 if z.r > 0 else -1


def apply(func, z: Value, params: tuple = ()) -> Value:
    """``func(z, *params)`` for a SymPy function class of :mod:`derive.rules` or ``exp``/``log``."""
    from .rules import GenericFunction, rule_of

    point = z.point
    params = tuple(point.const(p) for p in params)
    if isinstance(func, type) and issubclass(func, GenericFunction):
        return point.atom(("generic", func.__name__), (), z)
    rule = rule_of(func)
    name = rule.name if rule is not None else getattr(func, "__name__", str(func))
    if name in _PIECEWISE:
        side = _kink_side(z)
        point.branched = True
        positive = side > 0
        if name == "relu":
            return z if positive else z * 0
        if name == "leaky_relu":
            return z if positive else z * params[0]
        if name == "relu_prime":
            return point.const(1 if positive else 0)
        return point.const(1) if positive else params[0] * 1
    if rule is None:
        raise TypeError(f"no rule for {name}")
    return point.atom((name,), params, z)


_DERIV_CACHE: dict = {}


def _derivative(key: tuple, params: tuple, z: Value) -> Value:
    """The rule's derivative of an atom's function at ``z``, evaluated on values."""
    kind = key[0]
    point = z.point
    if kind == "root":  # d x^(1/b)/dx = x^(1/b) / (b x)
        return point.atom(key, (), z) / (z * key[1])
    if kind == "generic":
        from .rules import generic_function

        return point.atom(("generic", generic_function(key[1] + "'").__name__), (), z)
    from .rules import RULES

    if kind not in _DERIV_CACHE:
        rule = RULES[kind]
        zs = sp.Dummy("z")
        ps = [sp.Dummy(f"p{n}") for n in range(len(rule.params))]
        _DERIV_CACHE[kind] = (zs, ps, rule.derivative(zs, *ps))
    zs, ps, expr = _DERIV_CACHE[kind]
    return _eval(expr, point, {zs: z, **dict(zip(ps, params, strict=True))}, {}, split_exp=False)


# ---------------------------------------------------------------------------
# reverse mode


def gradient(loss: Value, wrt: Iterable[Value]) -> list[Value]:
    """∂loss/∂w for each ``w``, by reverse mode over the point's tape (exact, in F_p).

    The operations were recorded while ``point.tape`` was a list; each
    atom sends its adjoint back through the derivative its rule gives
    (:mod:`derive.rules`), evaluated on values.
    """
    point = loss.point
    tape, point.tape = point.tape, None
    adj: dict[int, Value] = {id(loss): point.const(1)}

    def send(x, g):
        if not isinstance(x, Value):
            return
        k = id(x)
        adj[k] = adj[k] + g if k in adj else g

    for node in reversed(tape or []):
        g = adj.pop(id(node), None)
        if g is None:
            continue
        a = node.args
        if node.op == "add":
            send(a[0], g)
            send(a[1], g)
        elif node.op == "neg":
            send(a[0], -g)
        elif node.op == "mul":
            send(a[0], g * a[1])
            send(a[1], g * a[0])
        elif node.op == "inv":
            send(a[0], -(g * node * node))
        elif node.op == "pow":
            send(a[0], g * a[1] * a[0].ipow(a[1] - 1))
        elif node.op == "sqrt":
            send(a[0], g * (node * 2).inverse())
        elif node.op == "atom":
            z, key, params = a
            send(z, g * _derivative(key, params, z))
        # "leaf" values: adjoint stays for the caller
        adj[id(node)] = g
    return [adj.get(id(w), point.const(0)) for w in wrt]


# ---------------------------------------------------------------------------
# SymPy expressions


def _eval(expr, point: Point, bindings: dict, memo: dict, split_exp: bool = True) -> Value:
    hit = memo.get(expr)
    if hit is not None:
        return hit
    ev = lambda e: _eval(e, point, bindings, memo, split_exp)  # noqa: E731
    if expr in bindings:
        out = point.const(bindings[expr])
    elif isinstance(expr, sp.Symbol):
        out = point.symbol(expr.name)
    elif expr.is_Number:
        out = point.const(expr)
    elif isinstance(expr, sp.Add):
        out = ev(expr.args[0])
        for a in expr.args[1:]:
            out = out + ev(a)
    elif isinstance(expr, sp.Mul):
        out = ev(expr.args[0])
        for a in expr.args[1:]:
            out = out * ev(a)
    elif isinstance(expr, sp.Pow):
        out = ev(expr.base) ** expr.exp
    elif isinstance(expr, sp.exp) and split_exp:
        out = point.const(1)
        for term in sp.Add.make_args(sp.expand(expr.args[0])):
            coeff, rest = term.as_coeff_Mul()
            if not (coeff.is_Integer and rest != 1):
                coeff, rest = sp.Integer(1), term
            out = out * point.atom(("exp",), (), ev(rest)).ipow(int(coeff))
    elif isinstance(expr, sp.Function):
        out = apply(expr.func, ev(expr.args[0]), tuple(ev(a) for a in expr.args[1:]))
    else:
        raise TypeError(f"cannot decide with {type(expr).__name__}")
    memo[expr] = out
    return out


def evaluate_scalar(expr: sp.Expr, point: Point, bindings: dict) -> Value:
    """The value of a scalar SymPy expression at ``point``, some symbols bound to values."""
    return _eval(expr, point, bindings, {}, split_exp=False)


def is_zero(expr, points: int = POINTS) -> bool:
    """Whether ``expr`` is identically zero, in the sense of the module docstring."""
    expr = as_expr(expr)
    if expr == 0:
        return True
    return _decide([expr], points)


def equal(a, b, points: int = POINTS) -> bool:
    """Whether ``a`` and ``b`` (expressions, or arrays of them of one shape) are equal."""
    a, b = np.asarray(a, dtype=object), np.asarray(b, dtype=object)
    if a.shape != b.shape:
        return False
    diffs = [as_expr(x - y) for x, y in zip(a.flat, b.flat, strict=True)]
    diffs = [d for d in diffs if d != 0]
    return not diffs or _decide(diffs, points)


_SHARED: dict[int, tuple[Point, dict]] = {}  # seed -> (point, memo of sub-expressions)
_MEMO_LIMIT = 200_000


def _shared_point(seed: int) -> tuple[Point, dict]:
    """The points of :func:`is_zero` are reused across calls (with their memo of
    evaluated sub-expressions): each decision's error bound holds on its own."""
    if seed not in _SHARED or len(_SHARED[seed][1]) > _MEMO_LIMIT:
        _SHARED[seed] = (Point(seed=seed), {})
    return _SHARED[seed]


def _decide(exprs: list, points: int) -> bool:
    tried = attempts = 0
    branched = False
    while tried < (max(points, PIECEWISE_POINTS) if branched else points):
        attempts += 1
        if attempts > _ATTEMPTS * points:
            raise Resample("no usable point found (every point hit a pole or a kink)")
        point, memo = _shared_point(20261122 + attempts)  # branched stays set: conservative
        try:
            values = [_eval(e, point, {}, memo) for e in exprs]
        except Resample:
            continue
        if any(v.f != ZERO for v in values):
            return False
        point.max_deg = max(point.max_deg, *(v.deg for v in values))
        branched = branched or point.branched
        tried += 1
    return True


def error_bound(degree: int, points: int = POINTS) -> float:
    """The probability that ``points`` points all miss a non-zero function of that degree."""
    return (min(degree, P) / P) ** points
