"""The reverse sweep: from a parsed network to named deltas and gradients.

For each equation, last to first, the adjoint of every operand ``v`` is
accumulated from the adjoint of the result ``r`` by SymPy's ``diff`` of the
lowered equation (the local rule)::

    δv[a] += Σ_o δr[o] · ∂rhs[o]/∂v[a]

The sweep knows no operation: Kronecker deltas from ``diff`` are summed
away (:func:`~derive.elementwise.normalise`), the result is simplified
(:mod:`derive.simplify`) and turned into a matrix form
(:func:`~derive.recover.recover`).  Each intermediate gets one named delta
``δr`` that later equations use as an opaque array, so every step stays
local and the cost grows linearly with depth, independent of widths.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Literal

import sympy as sp

from . import html, ir
from .elementwise import Term, element, fresh_indices, lower, normalise, summation
from .errors import DerivationError
from .indices import dim_of, named_index
from .printing import fmt_dims, numpy_code, step_latex, step_text
from .recover import recover
from .share import share_subexpressions
from .simplify import Simplifier, forward_patterns, resubstitute

StepKind = Literal["delta", "gradient"]
"""A step is the adjoint of an intermediate (``delta``) or of a param (``gradient``)."""


def delta_name(name: str) -> str:
    """The identifier of the adjoint of ``name``: ``delta_name``."""
    return "delta_" + name


@dataclass
class Contribution:
    """One use of a quantity: its share of the adjoint, as derived."""

    source: str  # the equation whose right-hand side uses the quantity
    raw: sp.Expr  # Σ_o δr[o] ∂rhs[o]/∂v[a], Kronecker deltas and all
    terms: list[Term]  # after summing the Kronecker deltas away


@dataclass
class Step:
    """The adjoint of one quantity: a delta (intermediate) or a gradient (param)."""

    name: str
    kind: StepKind
    shape: ir.Shape
    indices: tuple
    terms: list[Term]
    matrix: sp.Expr
    contributions: list[Contribution] = field(default_factory=list)
    inlined: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    loss: str = "L"

    @property
    def symbol(self) -> str:
        """The identifier of this adjoint in printed forms and generated code."""
        return delta_name(self.name)

    @property
    def elementwise(self) -> sp.Eq:
        """``δv[i, j] = Σ …``: the element-wise form, with readable index names."""
        lhs, rhs = display_elementwise(self)
        return sp.Eq(lhs, rhs, evaluate=False)

    def text(self) -> str:
        """``δu = δh ⊙ relu'(u)`` (Unicode)."""
        return step_text(self)

    def latex(self) -> str:
        """The step in LaTeX."""
        return step_latex(self)

    def numpy(self) -> str:
        """NumPy code computing the step's matrix form."""
        return numpy_code(self.matrix, self.shape)

    # display: a short repr, the formula as str, rich forms for notebooks

    def __repr__(self) -> str:
        return f"<Step {self.text()}  {fmt_dims(self.shape)}>"

    def __str__(self) -> str:
        return self.text()

    def _repr_latex_(self) -> str:
        return "$\\displaystyle " + self.latex() + "$"

    def _repr_html_(self) -> str:
        return html.fragment(html.step_body(self))

    def _repr_markdown_(self) -> str:
        return "$$" + self.latex() + "$$"


@dataclass(repr=False)
class Derivation:
    """Every delta and gradient of a network: what the reverse sweep produces.

    Data only: the proofs (``check()``) and the displays (``text()``,
    ``html()``, notebook output) come with :class:`derive.Derivation`, which
    :func:`derive.load` returns; they live downstream, in :mod:`derive.api`,
    because the proofs and reports read this class.

    >>> import derive
    >>> d = derive.load("seed000")
    >>> d
    <Derivation seed000: 4 forward equations, 3 deltas, 2 gradients (W, S)>
    >>> print(d.gradients["S"])
    ∂L/∂S = hᵀ δy
    >>> d.step("u").text()
    "δu = δh ⊙ relu'(u)"
    """

    network: ir.Network
    steps: list[Step]  # deltas of intermediates, in the order code computes them
    gradients: dict[str, Step]
    proofs: list | None = field(default=None, compare=False)  # set by check()

    def step(self, name: str) -> Step:
        """The step (delta or gradient) of the quantity ``name``."""
        for s in [*self.steps, *self.gradients.values()]:
            if s.name == name:
                return s
        raise KeyError(name)

    def __repr__(self) -> str:
        grads = ", ".join(self.gradients)
        return (
            f"<Derivation {self.network.name}: {len(self.network.equations)} forward equations, "
            f"{len(self.steps)} deltas, {len(self.gradients)} gradients ({grads})>"
        )


def derive(net: ir.Network, keep_all: bool = False) -> Derivation:
    """Derive every delta and gradient of ``net`` by a reverse sweep.

    Deltas fused into others drop out of the result unless ``keep_all``.
    """
    net = ir.name_arguments(share_subexpressions(net))
    needs = net.needs_adjoint()
    index = {n: fresh_indices(net.quantities[n].shape, "a") for n in needs}
    simplifier = Simplifier(net, index)
    patterns = forward_patterns(net)
    pending: dict[str, list[Contribution]] = {}
    steps: list[Step] = []

    for eq in reversed(net.equations):
        if eq.name not in needs:
            continue
        with _located(eq.pos):
            _sweep(eq, net, needs, index, simplifier, patterns, pending, steps)

    gradients = {}
    for p in net.params:
        with _located(p.pos):
            gradients[p.name] = _finish(simplifier, p.name, "gradient", pending.pop(p.name))
    if not keep_all:
        steps = simplifier.prune(steps, list(gradients.values()))
    for step in [*steps, *gradients.values()]:
        with _located(net.quantities[step.name].pos):
            step.matrix = recover(step.terms, step.indices)
        step.loss = net.loss
    return Derivation(net, steps, gradients)


@contextmanager
def _located(pos):
    """Give a :class:`DerivationError` raised inside the position of what was being derived."""
    try:
        yield
    except DerivationError as exc:
        if exc.pos is None:
            exc.pos = tuple(pos) if pos else None
        raise


def _sweep(eq, net, needs, index, simplifier, patterns, pending, steps) -> None:
    """One equation of the reverse sweep: its delta, then its contributions to its inputs."""
    if eq.name != net.loss:
        steps.append(_finish(simplifier, eq.name, "delta", pending.pop(eq.name)))
    out = fresh_indices(eq.shape, "o")
    rhs = lower(eq.expr, out)
    seed = 1 if eq.name == net.loss else element(delta_name(eq.name), out)
    for v in eq.refs():
        if v not in needs:
            continue
        local = resubstitute(sp.diff(rhs, element(v, index[v])), patterns)
        raw = seed * local
        pending.setdefault(v, []).append(
            Contribution(eq.name, summation(raw, out), normalise(raw, out))
        )


def _finish(simplifier: Simplifier, name: str, kind: StepKind, contributions) -> Step:
    """The simplified, fused adjoint of ``name`` as a step, recorded for later fusing."""
    terms, inlined = simplifier.fuse(contributions)
    shape = simplifier.net.quantities[name].shape
    step = Step(name, kind, shape, simplifier.index[name], terms, None, contributions, inlined)
    simplifier.done[name] = step
    return step


# ---------------------------------------------------------------------------
# display


_FREE_NAMES = ("i", "j")
_SUM_NAMES = ("k", "l", "m", "r", "s")


def display_elementwise(step: Step):
    """The element-wise form with indices renamed i, j (free) and k, l, m (summed)."""
    free = [i for i in step.indices if isinstance(i, sp.Symbol)]
    ren = {a: named_index(n, dim_of(a)) for a, n in zip(free, _FREE_NAMES, strict=False)}
    lhs_idx = tuple(ren.get(i, i) for i in step.indices)
    lhs = element(step.symbol, lhs_idx)
    parts = []
    for t in step.terms:
        local = dict(ren)
        for k, n in zip(t.summed, _SUM_NAMES, strict=False):
            local[k] = named_index(n, dim_of(k))
        parts.append(summation(t.factor.xreplace(local), [local[k] for k in t.summed]))
    return lhs, sp.Add(*parts)
