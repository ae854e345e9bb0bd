"""The registry of every function the spec language knows: one entry per function.

Everything any module needs to know about a function lives in its
:class:`Rule`; the spec parser, the notation reader of :mod:`derive.verify`,
the printers, the numeric checks, the code generator (kernels, in-place
buffers, initialisation, the binary-output check) and the tests all read
:data:`RULES`.  Adding an activation is adding one ``Rule`` (and, for its
kernel, one function in :mod:`derive.kernels`); ``tests/test_rules.py``
then proves its derivative, checks its kernel against its value and checks
the README's list of functions.

Softmax is the one function that is not element-wise; its rule lives in
:class:`SoftmaxAt`, the value of one entry of a softmax, whose
``_eval_derivative`` is its local Jacobian ``p_k (δ_kj − p_j)``.
Generic functions declared with ``func f`` get classes from
:func:`generic_function`; their derivative is an opaque function ``f'``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import sympy as sp

from . import kernels
from .indices import as_expr, dim_of, new_index


def np_softmax(z: np.ndarray, axis: int = -1) -> np.ndarray:
    """Softmax along ``axis`` as ``exp(z − logsumexp(z))``: no overflow."""
    return np.exp(z - np.logaddexp.reduce(z, axis=axis, keepdims=True))


@dataclass(frozen=True)
class Rule:
    """Everything about one function, in one place.

    * ``name``: how the function is called in a spec (``sigmoid(z)``), and the
      name of its kernel in generated code; ``params``: its extra scalar
      arguments with defaults (``leaky_relu(z, alpha)``).
    * ``value(z, *params)``: its explicit SymPy value, the mathematical truth.
      The tests prove that ``derivative`` is ``d value / dz`` from this.
    * ``derivative(z, *params)``: its derivative, written with registered
      functions (``sigmoid(z) * (1 - sigmoid(z))``, ``relu_prime(z)``).  The
      SymPy function class of the entry returns it from ``fdiff``, so SymPy's
      own ``diff`` applies the chain rule; writing it through the function
      itself lets the engine re-express it with forward values
      (``h ⊙ (1 − h)`` when ``h = σ(u)``).
    * ``text`` / ``latex``: how its name prints in Unicode and LaTeX.
    * ``aliases``: other names a formula may call it by, as the notation
      reader sees them once Unicode and LaTeX are mapped and lower-cased
      (``σ``, ``\\sigma`` → ``sigma``; ``\\text{ReLU}`` → ``relu``;
      ``\\ln`` → ``ln``).  ``name`` is always accepted.
    * ``numpy``: a format string of a NumPy expression that needs nothing but
      ``np`` in scope.  Contract with the printers: ``{0}`` receives the
      argument already *atomic* (a name, a call, or parenthesised), so the
      template may put it next to any operator (``{1} * {0}``); ``{1}``… receive
      the printed params.  In turn the template's own result must be atomic
      (a call, or wrapped in parentheses): printers treat an applied
      function as an atom and put it next to any operator unparenthesised.
    * ``kernel``: the stable NumPy function of :mod:`derive.kernels`
      (``(z, *params, out=None)``) that numeric checks call and generated
      modules embed by source.
    * ``in_place``: the kernel is correct when ``out`` is its argument, so the
      generated step may run it in its argument's buffer.
    * ``init``: the initialisation this function asks of the weights of the
      layer feeding it: ``"he"`` (ReLU-like) or ``"glorot"``.
    * ``probability``: its values lie in (0, 1), so a network predicting with
      it (without one-hot targets) is a binary classifier.
    * ``smooth``: differentiable everywhere (numeric checks may sample anywhere).
    * ``internal``: a derivative-only function (``relu'``), not callable from specs.
    * ``sympy``: the SymPy class to use instead of a new one (``sp.exp``), for
      functions SymPy already knows.
    """

    name: str
    value: Callable[..., sp.Expr]
    derivative: Callable[..., sp.Expr]
    text: str
    latex: str
    numpy: str
    kernel: Callable[..., np.ndarray]
    params: tuple[tuple[str, float], ...] = ()
    aliases: tuple[str, ...] = ()
    in_place: bool = False
    init: Literal["he", "glorot"] = "glorot"
    probability: bool = False
    smooth: bool = True
    internal: bool = False
    sympy: Any = None
    cls: Any = field(default=None, compare=False, repr=False)

    @property
    def np_impl(self) -> Callable[..., np.ndarray]:
        """The kernel, under the name numeric code used before kernels joined the rule."""
        return self.kernel


_CLASSES: dict[str, type] = {}


def fn(name: str) -> Any:
    """The SymPy function class of a registered function."""
    return _CLASSES[name]


def _step(z):
    return sp.Piecewise((1, z > 0), (0, True))


RULES: dict[str, Rule] = {}


def _register(rule: Rule) -> None:
    if rule.sympy is not None:
        cls = rule.sympy
    else:

        def fdiff(self, argindex=1, _rule=rule):
            if argindex != 1:  # params are constants, never differentiated
                raise sp.ArgumentIndexError(self, argindex)
            return _rule.derivative(*self.args)

        cls = type(rule.name, (sp.Function,), {"nargs": 1 + len(rule.params), "fdiff": fdiff})
    _CLASSES[rule.name] = cls
    RULES[rule.name] = Rule(**{**rule.__dict__, "cls": cls})


class tanh(sp.tanh):  # named as SymPy's: every printer prints it the same
    """SymPy's ``tanh``, the class of every tanh that derive builds, with a cheaper answer
    to "is it real / finite?".

    SymPy's own answers split the argument into real and imaginary parts,
    and that work doubles with every ``tanh`` around a ``log`` or a fractional
    power (whose sign SymPy cannot know): eight nested layers took 28 s, and
    one equation within every limit of :mod:`derive.limits` took minutes.
    Here the answer is True when the argument is (extended) real, where tanh is
    real and bounded, and None ("unknown", always sound) otherwise.

    A subclass rather than a change to ``sympy.tanh`` itself, so SymPy
    behaves as it always does for everyone else in the process.  Derive's
    tanh stays this class wherever it goes: the rule table, the spec and
    claim readers and the tanh form of GELU build it, SymPy rebuilds an
    expression from its class (``expr.func``, ``cls(-x)`` in ``eval``), and
    :meth:`fdiff` below gives the derivative with this class too (SymPy's
    writes ``1 - sympy.tanh(x)**2``, which would not cancel against this one).
    """

    def fdiff(self, argindex=1):
        if argindex != 1:
            raise sp.ArgumentIndexError(self, argindex)
        return 1 - type(self)(self.args[0]) ** 2

    def _eval_is_real(self):
        return True if self.args[0].is_extended_real else None

    _eval_is_finite = _eval_is_real


_GELU_C = sp.sqrt(2 / sp.pi)  # the tanh form's constants, exact
_GELU_K = sp.Rational(44715, 1000000)


def _gelu_prime(z):
    t = tanh(_GELU_C * (z + _GELU_K * z**3))
    return (1 + t) / 2 + z * (1 - t**2) * _GELU_C * (1 + 3 * _GELU_K * z**2) / 2


for _rule in [
    Rule(
        "relu",
        value=lambda z: sp.Piecewise((z, z > 0), (0, True)),
        derivative=lambda z: fn("relu_prime")(z),
        text="relu",
        latex=r"\operatorname{relu}",
        numpy="np.maximum({0}, 0)",
        kernel=kernels.relu,
        in_place=True,
        init="he",
        smooth=False,
    ),
    Rule(
        "relu_prime",
        value=_step,
        derivative=lambda z: sp.Integer(0),
        text="relu'",
        latex=r"\operatorname{relu}'",
        numpy="({0} > 0)",
        kernel=kernels.relu_prime,
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
        kernel=kernels.leaky_relu,
        params=(("alpha", 0.01),),
        aliases=("leakyrelu",),
        init="he",
        smooth=False,
    ),
    Rule(
        "leaky_relu_prime",
        value=lambda z, a: sp.Piecewise((1, z > 0), (a, True)),
        derivative=lambda z, a: sp.Integer(0),
        text="leaky_relu'",
        latex=r"\operatorname{leaky\_relu}'",
        numpy="np.where({0} > 0, 1.0, {1})",
        kernel=kernels.leaky_relu_prime,
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
        kernel=kernels.sigmoid,
        aliases=("sigma",),
        in_place=True,
        probability=True,
    ),
    Rule(
        "tanh",
        value=lambda z: (sp.exp(z) - sp.exp(-z)) / (sp.exp(z) + sp.exp(-z)),
        derivative=lambda z: 1 - tanh(z) ** 2,
        text="tanh",
        latex=r"\tanh",
        numpy="np.tanh({0})",
        kernel=kernels.tanh,
        in_place=True,
        sympy=tanh,
    ),
    Rule(
        "softplus",
        value=lambda z: sp.log(1 + sp.exp(z)),
        derivative=lambda z: fn("sigmoid")(z),
        text="softplus",
        latex=r"\operatorname{softplus}",
        numpy="np.logaddexp(0, {0})",
        kernel=kernels.softplus,
        in_place=True,
    ),
    Rule(
        "exp",
        value=sp.exp,
        derivative=sp.exp,
        text="exp",
        latex=r"\exp",
        numpy="np.exp({0})",
        kernel=kernels.exp,
        in_place=True,
        sympy=sp.exp,
    ),
    Rule(
        "log",
        value=sp.log,
        derivative=lambda z: 1 / z,
        text="log",
        latex=r"\log",
        numpy="np.log({0})",
        kernel=kernels.log,
        aliases=("ln",),
        in_place=True,
        sympy=sp.log,
    ),
    Rule(
        "silu",
        value=lambda z: z / (1 + sp.exp(-z)),
        derivative=lambda z: fn("sigmoid")(z) * (1 + z * (1 - fn("sigmoid")(z))),
        text="silu",
        latex=r"\operatorname{SiLU}",
        numpy="({0} * np.exp(-np.logaddexp(0, -{0})))",
        kernel=kernels.silu,
        aliases=("swish",),
        in_place=True,
        init="he",
    ),
    Rule(
        "elu",
        value=lambda z, a: sp.Piecewise((z, z > 0), (a * (sp.exp(z) - 1), True)),
        derivative=lambda z, a: fn("elu_prime")(z, a),
        text="elu",
        latex=r"\operatorname{ELU}",
        numpy="np.where({0} > 0, {0}, {1} * np.expm1(np.minimum({0}, 0)))",
        kernel=kernels.elu,
        params=(("alpha", 1.0),),
        in_place=True,
        init="he",
        smooth=False,
    ),
    Rule(
        "elu_prime",
        value=lambda z, a: sp.Piecewise((1, z > 0), (a * sp.exp(z), True)),
        # 0 for z > 0 and α eᶻ below: elu'(z) − step(z) on both sides
        derivative=lambda z, a: fn("elu_prime")(z, a) - fn("relu_prime")(z),
        text="elu'",
        latex=r"\operatorname{ELU}'",
        numpy="np.where({0} > 0, 1.0, {1} * np.exp(np.minimum({0}, 0)))",
        kernel=kernels.elu_prime,
        params=(("alpha", 1.0),),
        in_place=True,
        smooth=False,
        internal=True,
    ),
    Rule(
        "gelu",
        value=lambda z: z * (1 + tanh(_GELU_C * (z + _GELU_K * z**3))) / 2,
        derivative=lambda z: fn("gelu_prime")(z),
        text="gelu",
        latex=r"\operatorname{GELU}",
        numpy="(0.5 * {0} * (1 + np.tanh(np.sqrt(2 / np.pi) * ({0} + 0.044715 * {0}**3))))",
        kernel=kernels.gelu,
        in_place=True,
        init="he",
    ),
    Rule(
        "gelu_prime",
        value=_gelu_prime,
        derivative=lambda z: sp.diff(_gelu_prime(z), z),
        text="gelu'",
        latex=r"\operatorname{GELU}'",
        numpy=(
            "(0.5 * (1 + np.tanh(np.sqrt(2 / np.pi) * ({0} + 0.044715 * {0}**3)))"
            " + 0.5 * {0} * (1 - np.tanh(np.sqrt(2 / np.pi) * ({0} + 0.044715 * {0}**3))**2)"
            " * np.sqrt(2 / np.pi) * (1 + 3 * 0.044715 * {0}**2))"
        ),
        kernel=kernels.gelu_prime,
        in_place=True,
        internal=True,
    ),
    Rule(
        "softsign",
        # by sign rather than with Abs: SymPy differentiates Abs only on declared-real symbols
        value=lambda z: sp.Piecewise((z / (1 + z), z >= 0), (z / (1 - z), True)),
        derivative=lambda z: fn("softsign_prime")(z),
        text="softsign",
        latex=r"\operatorname{softsign}",
        numpy="({0} / (1 + np.abs({0})))",
        kernel=kernels.softsign,
        in_place=True,
    ),
    Rule(
        "softsign_prime",
        value=lambda z: sp.Piecewise((1 / (1 + z) ** 2, z >= 0), (1 / (1 - z) ** 2, True)),
        derivative=lambda z: sp.Piecewise((-2 / (1 + z) ** 3, z >= 0), (2 / (1 - z) ** 3, True)),
        text="softsign'",
        latex=r"\operatorname{softsign}'",
        numpy="(1 / (1 + np.abs({0})) ** 2)",
        kernel=kernels.softsign_prime,
        in_place=True,
        smooth=False,
        internal=True,
    ),
    # Element-wise functions NumPy spells the same way: ``abs`` (L1 penalties),
    # ``sqrt`` (norms, batch-norm's standard deviation) and ``square``.
    Rule(
        "abs",
        value=sp.Abs,
        derivative=lambda z: fn("sign")(z),
        text="abs",
        latex=r"\operatorname{abs}",
        numpy="np.abs({0})",
        kernel=kernels.abs,
        in_place=True,
        smooth=False,
    ),
    Rule(
        "sign",
        # piecewise rather than sp.sign: its derivative is 0, not SymPy's 2 δ(z)
        value=lambda z: sp.Piecewise((1, z > 0), (-1, z < 0), (0, True)),
        derivative=lambda z: sp.Integer(0),
        text="sign",
        latex=r"\operatorname{sign}",
        numpy="np.sign({0})",
        kernel=kernels.sign,
        in_place=True,
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
        kernel=kernels.sqrt,
        in_place=True,
    ),
    Rule(
        "square",
        value=lambda z: z**2,
        derivative=lambda z: 2 * z,
        text="square",
        latex=r"\operatorname{square}",
        numpy="np.square({0})",
        kernel=kernels.square,
        in_place=True,
    ),
]:
    _register(_rule)


def rule_of(func: type) -> Rule | None:
    """The registry entry of a SymPy function class, if it has one."""
    for rule in RULES.values():
        if rule.cls is func:
            return rule
    return None


def rule_for(func: type) -> Rule:
    """The registry entry of a SymPy function class that must have one."""
    rule = rule_of(func)
    if rule is None:
        raise KeyError(f"no rule for the function {func}")
    return rule


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


# Smooth stand-ins for generic functions in numeric checks; each layer gets a
# different one so a derivative taken with the wrong function shows up.
GENERIC_BINDINGS: list[tuple[Callable[..., Any], Callable[..., Any]]] = [
    (np.tanh, lambda z: 1 - np.tanh(z) ** 2),
    (np.sin, np.cos),
    (lambda z: np.logaddexp(0, z), lambda z: np.exp(-np.logaddexp(0, -z))),
    (lambda z: z**3 / 3 + z, lambda z: z**2 + 1),
]


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
    kernel=kernels.softmax,
    params=(("axis", -1),),
    in_place=True,
)
"""The rule of ``softmax``: not in :data:`RULES` (it is row-wise), but printed,
evaluated and embedded through the same fields."""


def function_names() -> dict[str, str]:
    """Every name a formula may call a spec function by (lower case) → its rule's name.

    The notation reader's table: each callable rule's name and aliases, and softmax.
    """
    out = {SOFTMAX.name: SOFTMAX.name}
    for rule in RULES.values():
        if not rule.internal:
            for alias in (rule.name, *rule.aliases):
                out[alias.lower()] = rule.name
    return out


def explicit(expr: sp.Expr) -> sp.Expr:
    """``expr`` with every registered function replaced by its explicit value."""
    for rule in RULES.values():
        if rule.sympy is not None:
            continue
        expr = expr.replace(
            lambda e, c=rule.cls: isinstance(e, sp.Function) and e.func is c,
            lambda e, r=rule: r.value(*e.args),
        )
    return expr
