"""The parsed network: quantities with symbolic shapes and typed forward expressions.

The spec parser (:mod:`derive.spec`) produces these objects and checks
every shape; everything downstream (element-wise lowering, numeric
evaluation, matrix forms, code generation) reads them and never sees user
text again.  Shapes are tuples of SymPy expressions: a dimension name is a
positive integer symbol, a literal size an Integer; ``()`` is a scalar.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import sympy as sp

Shape = tuple[sp.Expr, ...]
QuantityKind = Literal["input", "target", "param", "intermediate", "claim"]
"""What a name is: data in, data to match, learned, computed, or (verify) a claimed value."""
Pos = tuple[int, int]  # 1-based line and column


@dataclass(frozen=True, eq=False)
class Node:
    shape: Shape
    pos: Pos

    def children(self) -> tuple[Node, ...]:
        """The operand nodes, in order (empty for leaves)."""
        return ()


@dataclass(frozen=True, eq=False)
class Ref(Node):
    """A named array: input, target, param or an earlier equation's result."""

    name: str


@dataclass(frozen=True, eq=False)
class Scalar(Node):
    """A scalar that is not differentiated: a number, a ``const`` or a dimension."""

    value: sp.Expr


@dataclass(frozen=True, eq=False)
class MatMul(Node):
    a: Node
    b: Node

    def children(self):
        return (self.a, self.b)


BINARY_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
}
"""The element-wise operators of :class:`Binary`, and how each applies to values.

The one operator table: the parser folds constants with it, lowering,
forward forms and numeric evaluation apply it to SymPy and NumPy values.
"""


@dataclass(frozen=True, eq=False)
class Binary(Node):
    """Element-wise ``+ - * /`` with NumPy broadcasting."""

    op: str
    a: Node
    b: Node

    def children(self):
        return (self.a, self.b)


@dataclass(frozen=True, eq=False)
class Power(Node):
    base: Node
    exponent: sp.Expr

    def children(self):
        return (self.base,)


@dataclass(frozen=True, eq=False)
class Neg(Node):
    a: Node

    def children(self):
        return (self.a,)


@dataclass(frozen=True, eq=False)
class Transpose(Node):
    a: Node

    def children(self):
        return (self.a,)


@dataclass(frozen=True, eq=False)
class Call(Node):
    """An element-wise function: registered (``sigmoid``) or generic (``func f``)."""

    fn: str
    arg: Node
    params: tuple[sp.Expr, ...] = ()
    generic: bool = False

    def children(self):
        return (self.arg,)


@dataclass(frozen=True, eq=False)
class Softmax(Node):
    arg: Node
    axis: int  # non-negative

    def children(self):
        return (self.arg,)


@dataclass(frozen=True, eq=False)
class Reduce(Node):
    """``sum`` or ``mean`` over one axis (``axis``) or all (``None``)."""

    op: str
    arg: Node
    axis: int | None
    keepdims: bool

    def children(self):
        return (self.arg,)


def walk(node: Node):
    """All nodes of an expression, parents first."""
    yield node
    for child in node.children():
        yield from walk(child)


@dataclass
class Quantity:
    name: str
    kind: QuantityKind
    shape: Shape
    pos: Pos
    onehot_axis: int | None = None  # targets only: the axis along which entries sum to 1

    @property
    def rank(self) -> int:
        return len(self.shape)


@dataclass
class Equation:
    name: str
    expr: Node
    pos: Pos

    @property
    def shape(self) -> Shape:
        return self.expr.shape

    def refs(self) -> list[str]:
        """Names of the arrays the right-hand side reads, in order of first use."""
        seen: list[str] = []
        for node in walk(self.expr):
            if isinstance(node, Ref) and node.name not in seen:
                seen.append(node.name)
        return seen


@dataclass
class Network:
    name: str
    file: str
    source: str
    quantities: dict[str, Quantity]
    equations: list[Equation]
    dims: dict[str, sp.Symbol]
    consts: dict[str, float | None]  # name -> default value (None: must be given)
    funcs: list[str]  # generic functions declared with ``func``
    const_symbols: dict[str, sp.Symbol] = field(default_factory=dict)
    func_pos: dict[str, Pos] = field(default_factory=dict)  # where each ``func`` is declared

    @property
    def loss(self) -> str:
        return self.equations[-1].name

    def of_kind(self, kind: QuantityKind) -> list[Quantity]:
        """The quantities declared as ``kind`` (``input``, ``target``, ``param``…), in order."""
        return [q for q in self.quantities.values() if q.kind == kind]

    @property
    def params(self) -> list[Quantity]:
        return self.of_kind("param")

    def equation(self, name: str) -> Equation:
        """The equation defining ``name``."""
        return next(eq for eq in self.equations if eq.name == name)

    def depends_on(self) -> dict[str, set[str]]:
        """For each quantity, every array it depends on, directly or not."""
        deps: dict[str, set[str]] = {q: set() for q in self.quantities}
        for eq in self.equations:
            for ref in eq.refs():
                deps[eq.name] |= {ref} | deps[ref]
        return deps

    def needs_adjoint(self) -> set[str]:
        """Quantities on a path from a param to the loss (their adjoints are derived)."""
        deps = self.depends_on()
        params = {p.name for p in self.params}
        on_path = {self.loss} | (deps[self.loss] & params)
        for name in deps[self.loss]:
            if deps[name] & params:
                on_path.add(name)
        return on_path


def name_arguments(net: Network) -> Network:
    """The network with costly values the backward pass needs given names.

    ``X1 = f1(X0 @ W1)`` becomes ``X1_in = X0 @ W1; X1 = f1(X1_in)``, so the
    pre-activation gets its own delta (``δX1_in = δX1 ⊙ f1'(X1_in)``) and the
    forward pass keeps the value the backward pass needs instead of the
    backward pass recomputing a matrix product.  Likewise a matrix product or
    a function of one that is a factor of an element-wise product (a gated
    unit).  Cheap element-wise arguments (``log(1 - y)``) stay as written, so
    that simplification still sees through them.
    """
    quantities = dict(net.quantities)
    equations: list[Equation] = []
    taken = set(quantities) | set(net.consts) | set(net.dims) | set(net.funcs)

    def fresh(base: str) -> str:
        name, n = base, 1
        while name in taken:
            n += 1
            name = f"{base}{n}"
        taken.add(name)
        return name

    def hoist(node: Node, name: str) -> Ref:
        quantities[name] = Quantity(name, "intermediate", node.shape, node.pos)
        equations.append(Equation(name, node, node.pos))
        return Ref(node.shape, node.pos, name)

    def expensive(node: Node) -> bool:
        return any(isinstance(n, (MatMul, Softmax, Reduce)) for n in walk(node))

    def visit(node: Node, owner: str) -> Node:
        if isinstance(node, (Call, Softmax)) and expensive(node.arg):
            node = replace(node, arg=hoist(visit(node.arg, owner), fresh(owner + "_in")))
        elif isinstance(node, Binary) and node.op in "*/":
            # a product's derivative holds the other factor: keep products and
            # function values that appear in one by name, not recomputed
            kids: dict[str, Any] = {}
            for f in ("a", "b"):
                original = getattr(node, f)
                kid = visit(original, owner)
                if isinstance(kid, MatMul) or (
                    isinstance(kid, (Call, Softmax)) and expensive(original.arg)
                ):
                    stem = (
                        kid.fn
                        if isinstance(kid, Call)
                        else ("softmax" if isinstance(kid, Softmax) else "mm")
                    )
                    kid = hoist(kid, fresh(f"{owner}_{stem}"))
                kids[f] = kid
            return replace(node, **kids)
        else:
            kids = {
                f: visit(getattr(node, f), owner)
                for f in ("a", "b", "base", "arg")
                if isinstance(getattr(node, f, None), Node)
            }
            node = replace(node, **kids) if kids else node
        return node

    for eq in net.equations:
        expr = visit(eq.expr, eq.name)
        equations.append(Equation(eq.name, expr, eq.pos))
    # keep declaration order, then equations in order
    ordered = {k: v for k, v in quantities.items() if v.kind != "intermediate"}
    ordered.update({eq.name: quantities[eq.name] for eq in equations})
    return replace(net, quantities=ordered, equations=equations)


def bind(net: Network, mapping: dict[str, str]) -> Network:
    """The network with generic functions replaced by registered ones (``f=tanh``)."""

    def visit(node: Node) -> Node:
        kids: dict[str, Any] = {
            f: visit(getattr(node, f))
            for f in ("a", "b", "base", "arg")
            if isinstance(getattr(node, f, None), Node)
        }
        node = replace(node, **kids) if kids else node
        if isinstance(node, Call) and node.generic and node.fn in mapping:
            node = replace(node, fn=mapping[node.fn], generic=False)
        return node

    equations = [Equation(eq.name, visit(eq.expr), eq.pos) for eq in net.equations]
    funcs = [f for f in net.funcs if f not in mapping]
    return replace(net, equations=equations, funcs=funcs)
