"""The registry of every function the spec language knows: one entry per function.

Contract of an entry (:class:`Rule`):

* ``name``: how the function is called in a spec (``sigmoid(z)``);
  ``params``: its extra scalar arguments with defaults (``leaky_relu(z, alpha)``).
* ``value(z, *params)``: its explicit SymPy value, the mathematical truth.
  The tests prove that ``derivative`` is ``d value / dz`` from this.
* ``derivative(z, *params)``: its derivative, written with registered
  functions (``sigmoid(z) * (1 - sigmoid(z))``, ``relu_prime(z)``).  The
  SymPy function class of the entry returns it from ``fdiff``, so SymPy's
  own ``diff`` applies the chain rule; writing it through the function
  itself lets the engine re-express it with forward values
  (``h ⊙ (1 − h)`` when ``h = σ(u)``).
* ``text`` / ``latex``: how its name prints in Unicode and LaTeX;
  ``numpy``: a format string of a NumPy expression (``{0}`` the argument,
  ``{1}``… the params) that needs nothing but ``np`` in scope;
  ``np_impl``: the same as a Python function, for numeric checks.
* ``smooth``: differentiable everywhere (numeric checks may sample anywhere).

Adding an activation is adding one entry to :data:`RULES`; the parser,
the printers, the code generator and the tests all read this table.

Softmax is the one function that is not element-wise; its rule lives in
:class:`SoftmaxAt`, the value of one entry of a softmax, whose
``_eval_derivative`` is its local Jacobian ``p_k (δ_kj − p_j)``.
Generic functions declared with ``func f`` get classes from
:func:`generic_function`; their derivative is an opaque function ``f'``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import sympy as sp

from .indices import as_expr, dim_of, new_index

# ---------------------------------------------------------------------------
# numeric kernels (stable: finite for |z| ~ 1000)


def _np_sigmoid(z):
    return np.exp(-np.logaddexp(0, -z))


def _np_softplus(z):
    return np.logaddexp(0, z)


def np_softmax(z, axis=-1):
    return np.exp(z - np.logaddexp.reduce(z, axis=axis, keepdims=True))


# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    name: str
    value: Callable[..., sp.Expr]
    derivative: Callable[..., sp.Expr]
    text: str
    latex: str
    numpy: str
    np_impl: Callable[..., np.ndarray]
    params: tuple[tuple[str, float], ...] = ()
    smooth: bool = True
    internal: bool = False  # a derivative-only function, not callable from specs
    cls: type = field(default=None, compare=False, repr=False)


_CLASSES: dict[str, type] = {}


def fn(name: str) -> type:
    """The SymPy function class of a registered or generic function."""
    return _CLASSES[name]


def _step(z):
    return sp.Piecewise((1, z > 0), (0, True))


RULES: dict[str, Rule] = {}


def _register(rule: Rule) -> None:
    if rule.name in ("exp", "log", "tanh"):
        cls = {"exp": sp.exp, "log": sp.log, "tanh": sp.tanh}[rule.name]
    else:

        def fdiff(self, argindex=1, _rule=rule):
            if argindex != 1:  # params are constants, never differentiated
                raise sp.ArgumentIndexError(self, argindex)
            return _rule.derivative(*self.args)

        cls = type(rule.name, (sp.Function,), {"nargs": 1 + len(rule.params), "fdiff": fdiff})
    _CLASSES[rule.name] = cls
    RULES[rule.name] = Rule(**{**rule.__dict__, "cls": cls})


for _rule in [
    Rule(
        "relu",
        value=lambda z: sp.Piecewise((z, z > 0), (0, True)),
        derivative=lambda z: fn("relu_prime")(z),
        text="relu",
        latex=r"\operatorname{relu}",
        numpy="np.maximum({0}, 0)",
        np_impl=lambda z: np.maximum(z, 0),
        smooth=False,
    ),
    Rule(
        "relu_prime",
        value=_step,
        derivative=lambda z: sp.Integer(0),
        text="relu'",
        latex=r"\operatorname{relu}'",
        numpy="({0} > 0)",
        np_impl=lambda z: (z > 0).astype(float),
        smooth=False,
        internal=True,
    ),
    Rule(
        "leaky_relu",
        value=lambda z, a: sp.Piecewise((z, z > 0), (a * z, True)),
        derivative=lambda z, a: fn("leaky_relu_prime")(z, a),
        text="leaky_relu",
        latex=r"\operatorname{leaky\_relu}",
        numpy="np.where({0} > 0, {0}, {1} * {0})",
        np_impl=lambda z, a: np.where(z > 0, z, a * z),
        params=(("alpha", 0.01),),
        smooth=False,
    ),
    Rule(
        "leaky_relu_prime",
        value=lambda z, a: sp.Piecewise((1, z > 0), (a, True)),
        derivative=lambda z, a: sp.Integer(0),
        text="leaky_relu'",
        latex=r"\operatorname{leaky\_relu}'",
        numpy="np.where({0} > 0, 1.0, {1})",
        np_impl=lambda z, a: np.where(z > 0, 1.0, a),
        params=(("alpha", 0.01),),
        smooth=False,
        internal=True,
    ),
    Rule(
        "sigmoid",
        value=lambda z: 1 / (1 + sp.exp(-z)),
        derivative=lambda z: fn("sigmoid")(z) * (1 - fn("sigmoid")(z)),
        text="σ",
        latex=r"\sigma",
        numpy="np.exp(-np.logaddexp(0, -{0}))",
        np_impl=_np_sigmoid,
    ),
    Rule(
        "tanh",
        value=lambda z: (sp.exp(z) - sp.exp(-z)) / (sp.exp(z) + sp.exp(-z)),
        derivative=lambda z: 1 - sp.tanh(z) ** 2,
        text="tanh",
        latex=r"\tanh",
        numpy="np.tanh({0})",
        np_impl=np.tanh,
    ),
    Rule(
        "softplus",
        value=lambda z: sp.log(1 + sp.exp(z)),
        derivative=lambda z: fn("sigmoid")(z),
        text="softplus",
        latex=r"\operatorname{softplus}",
        numpy="np.logaddexp(0, {0})",
        np_impl=_np_softplus,
    ),
    Rule(
        "exp",
        value=sp.exp,
        derivative=sp.exp,
        text="exp",
        latex=r"\exp",
        numpy="np.exp({0})",
        np_impl=np.exp,
    ),
    Rule(
        "log",
        value=sp.log,
        derivative=lambda z: 1 / z,
        text="log",
        latex=r"\log",
        numpy="np.log({0})",
        np_impl=np.log,
    ),
]:
    _register(_rule)


# Element-wise functions NumPy spells the same way: ``abs`` (L1 penalties),
# ``sqrt`` (norms, batch-norm's standard deviation) and ``square``.
for _rule in [
    Rule(
        "abs",
        value=sp.Abs,
        derivative=lambda z: fn("sign")(z),
        text="abs",
        latex=r"\operatorname{abs}",
        numpy="np.abs({0})",
        np_impl=np.abs,
        smooth=False,
    ),
    Rule(
        "sign",
        value=sp.sign,
        derivative=lambda z: sp.Integer(0),
        text="sign",
        latex=r"\operatorname{sign}",
        numpy="np.sign({0})",
        np_impl=np.sign,
        smooth=False,
        internal=True,
    ),
    Rule(
        "sqrt",
        value=sp.sqrt,
        derivative=lambda z: 1 / (2 * fn("sqrt")(z)),
        text="sqrt",
        latex=r"\operatorname{sqrt}",
        numpy="np.sqrt({0})",
        np_impl=np.sqrt,
    ),
    Rule(
        "square",
        value=lambda z: z**2,
        derivative=lambda z: 2 * z,
        text="square",
        latex=r"\operatorname{square}",
        numpy="np.square({0})",
        np_impl=np.square,
    ),
]:
    _register(_rule)


def rule_of(func: type) -> Rule | None:
    """The registry entry of a SymPy function class, if it has one."""
    for rule in RULES.values():
        if rule.cls is func:
            return rule
    return None


def activations() -> list[str]:
    """Names of the element-wise functions a spec may call."""
    return [name for name, rule in RULES.items() if not rule.internal]


# ---------------------------------------------------------------------------
# generic functions declared with ``func f``


class GenericFunction(sp.Function):
    """Base of the classes made for ``func f``: an unknown smooth function."""

    prime_of: str | None = None  # set on derivative classes: the function they derive

    def fdiff(self, argindex=1):
        return generic_function(self.func.__name__ + "'")(self.args[0])


_GENERIC: dict[str, type] = {}


def generic_function(name: str) -> type:
    """The class of the generic function ``name`` (``f``, ``f'``, ``f''``…)."""
    if name not in _GENERIC:
        _GENERIC[name] = type(name, (GenericFunction,), {"nargs": 1})
    return _GENERIC[name]


def generic_base(func: type) -> tuple[str, int]:
    """``f''`` → (``f``, 2): the declared name and the order of derivative."""
    name = func.__name__
    stripped = name.rstrip("'")
    return stripped, len(name) - len(stripped)


# ---------------------------------------------------------------------------
# softmax, the one row-wise function


class SoftmaxAt(sp.Expr):
    """Entry ``k`` of ``softmax`` over one axis: ``exp(z(k)) / Σ_κ exp(z(κ))``.

    ``body`` is the element-wise expression of the softmax's argument in
    which the bound symbol ``kappa`` stands for the position along the
    softmax axis; ``k`` is where this entry sits on that axis and ``n`` the
    axis length.  The derivative is the local Jacobian
    ``∂p_k/∂z_j = p_k (δ_kj − p_j)``, applied through the chain rule to
    whatever ``body`` depends on.
    """

    is_commutative = True

    def __new__(cls, body, kappa, k, n):
        return sp.Expr.__new__(cls, body, kappa, as_expr(k), as_expr(n))

    body = property(lambda self: self.args[0])
    kappa = property(lambda self: self.args[1])
    k = property(lambda self: self.args[2])
    n = property(lambda self: self.args[3])

    @property
    def free_symbols(self):
        return (self.body.free_symbols - {self.kappa}) | self.k.free_symbols | self.n.free_symbols

    def at(self, position) -> sp.Expr:
        """The argument's value at ``position`` along the softmax axis."""
        return self.body.xreplace({self.kappa: position})

    def _eval_derivative(self, s):
        j = new_index(dim_of(self.kappa), "s")
        other = SoftmaxAt(self.body, self.kappa, j, self.n)
        inner = sp.Sum(other * sp.diff(self.at(j), s), (j, 0, self.n - 1))
        return self * (sp.diff(self.at(self.k), s) - inner)

    def explicit(self, size: int) -> sp.Expr:
        """The value with the axis length ``size`` made concrete (for exact checks)."""
        return sp.exp(self.at(self.k)) / sp.Add(*[sp.exp(self.at(m)) for m in range(size)])

    def _sympystr(self, printer):
        return f"softmax_{printer._print(self.k)}({printer._print(self.at(self.kappa))})"


SOFTMAX = Rule(
    "softmax",
    value=lambda z: z,  # not element-wise: see SoftmaxAt
    derivative=lambda z: z,
    text="softmax",
    latex=r"\operatorname{softmax}",
    numpy="np.exp({0} - np.logaddexp.reduce({0}, axis={1}, keepdims=True))",
    np_impl=np_softmax,
    params=(("axis", -1),),
)
