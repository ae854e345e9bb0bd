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


@dataclass(frozen=True, eq=False)
class OneHot(Node):
    """``onehot(y, n)``: the ``[B, n]`` one-hot matrix of the class labels ``y[B]``.

    Not differentiated (labels are data); element ``[b, c]`` is 1 where
    ``y[b] == c``.  Its rows sum to 1, which the simplifier uses.
    """

    labels: Ref
    n: sp.Expr

    def children(self):
        return (self.labels,)


@dataclass(frozen=True, eq=False)
class Pick(Node):
    """``x[range(B), y]``: NumPy's fancy indexing, entry ``y[b]`` of each row ``b``.

    Lowered as ``Σ_c onehot(y)[b, c] x[b, c]``, so its adjoint is a one-hot
    matrix the simplifier and the code generator know how to handle.
    """

    arg: Node
    labels: Ref

    def children(self):
        return (self.arg, self.labels)


@dataclass(frozen=True, eq=False)
class Argmax(Node):
    """``argmax(x, axis)`` (or ``argmin``) of a 2-D ``x``: integer positions, not differentiated.

    Never written in a spec: ``max(x, axis=1)`` is read as ``x[range(B), a]``
    with ``a = argmax(x, axis=1)`` a hidden equation, so the gradient flows
    to one maximal entry (the first), as ``torch.max(x, dim)`` sends it.
    """

    arg: Node
    axis: int
    op: str  # "max" or "min"

    def children(self):
        return (self.arg,)


@dataclass(frozen=True, eq=False)
class Gather(Node):
    """``C[ix]``: rows ``ix`` of the table ``C`` (an embedding), shape ``ix.shape + C.shape[1:]``.

    ``ix`` is an ``index(V)`` input.  Lowered as ``Σ_v onehot(ix)[b, v] C[v, e]``,
    so the table's adjoint is ``onehot(ix)ᵀ δ``: a scatter-add of the rows of
    ``δ`` into the rows ``ix`` (``np.add.at``), never a one-hot matrix in code.
    """

    arg: Node
    index: Ref

    def children(self):
        return (self.arg, self.index)


@dataclass(frozen=True, eq=False)
class Column(Node):
    """``x[:, None]``: a 1-D array as an ``[n, 1]`` column."""

    a: Node

    def children(self):
        return (self.a,)


@dataclass(frozen=True, eq=False)
class Permute(Node):
    """``x.transpose(0, 2, 1)`` or ``swapaxes(x, 1, 2)``: axis ``i`` of the result is
    axis ``axes[i]`` of ``a``."""

    a: Node
    axes: tuple[int, ...]

    def children(self):
        return (self.a,)


@dataclass(frozen=True, eq=False)
class Reshape(Node):
    """``x.reshape(B, T * D)``: the entries of ``a`` in C order, in the shape ``shape``."""

    a: Node

    def children(self):
        return (self.a,)


@dataclass(frozen=True, eq=False)
class Slice(Node):
    """``a[:, H:2 * H]``: along each axis the entries ``start ≤ i < start + shape[axis]``."""

    a: Node
    starts: tuple[sp.Expr, ...]

    def children(self):
        return (self.a,)


@dataclass(frozen=True, eq=False)
class Concat(Node):
    """``concatenate([a, b], axis=1)``."""

    parts: tuple[Node, ...]
    axis: int

    def children(self):
        return self.parts


@dataclass(frozen=True, eq=False)
class Einsum(Node):
    """``einsum("bqd,bkd->bqk", q, k)``: explicit subscripts, one string per operand."""

    inputs: tuple[str, ...]
    output: str
    operands: tuple[Node, ...]

    def children(self):
        return self.operands


@dataclass(frozen=True, eq=False)
class Conv2d(Node):
    """``conv2d(x, K, stride, padding)``: NCHW cross-correlation of ``a[B, C, H, W]`` with
    the kernels ``b[F, C, HH, WW]`` (zero padding), as PyTorch's and cs231n's."""

    a: Node
    b: Node
    stride: int
    padding: int

    def children(self):
        return (self.a, self.b)


@dataclass(frozen=True, eq=False)
class Pool2d(Node):
    """``avgpool2d(x, size, stride)``: the mean of each ``size × size`` window of ``a``;
    ``maxpool2d``: its first maximal entry (row-major in the window, as PyTorch).

    A max-pool reads the hidden integer quantity ``argmax`` (a :class:`PoolArgmax`
    equation :func:`name_arguments` adds): the flat position of that entry in each
    window, so the gradient is routed to it alone and the argmax is not differentiated.
    """

    op: str  # "avg" or "max"
    a: Node
    size: int
    stride: int
    argmax: Node | None = None  # max: Ref to the hidden PoolArgmax equation, once named

    def children(self):
        return (self.a,) if self.argmax is None else (self.a, self.argmax)


@dataclass(frozen=True, eq=False)
class PoolArgmax(Node):
    """The flat position ``size p + q`` of the first maximum of each ``size × size`` window
    of ``a`` (integers, never differentiated): what ``maxpool2d`` routes its gradient to."""

    a: Node
    size: int
    stride: int

    def children(self):
        return (self.a,)


POOL_ARGMAX = "_argmaxpool"  # hidden argmax equations of max-pools ("_": no spec name)

TENSOR_NODES = (Permute, Reshape, Slice, Concat, Einsum, Conv2d, Pool2d, PoolArgmax)
"""The layout nodes: their matrix forms are always einsum forms (any rank)."""


def is_tensor(node: Node) -> bool:
    """Whether an expression has a value of rank above 2 or a layout node anywhere in it."""
    return any(len(n.shape) > 2 or isinstance(n, TENSOR_NODES) for n in walk(node))


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
    classes: sp.Expr | None = None  # labels targets: classes; index inputs: table rows
    keep: sp.Expr | None = None  # bernoulli inputs: the probability of a 1 (a number or const)

    @property
    def integer(self) -> bool:
        """Integer data (class labels or table indices), not values."""
        return self.classes is not None

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
    loop: Loop | None = None  # ``for t in range(T):`` before the equations (derive.recurrence)

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
        if self.loop is not None:  # what the loop computes depends on all the loop reads
            for stacked in self.loop.stepped.values():
                deps[stacked] = set(self.loop.reads())
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
            if deps[name] & params and not self.quantities[name].integer:  # argmax: no adjoint
                on_path.add(name)
        return on_path


@dataclass
class Loop:
    """``for t in range(T):``: equations at one step ``t``, with names of their own.

    In the body, ``x[t]`` of a stacked ``x[T, ...]`` is the quantity ``x_t``,
    ``h[t - 1]`` of a state ``h`` is ``h_prev`` (``h0``, the state's initial
    value, at ``t = 0``) and ``h[t] = ...`` defines ``h_t``; after the loop,
    ``h`` is the stack of every step's ``h_t``.  ``quantities`` are the
    body's own names (steps of stacked inputs as ``input``, previous states
    as ``param``), ``equations`` the body in order.
    """

    var: str
    length: sp.Expr
    pos: Pos
    initial: dict[str, str]  # state -> the name of its value before step 0 (h -> h0)
    previous: dict[str, str]  # state -> its name at t - 1 in the body (h -> h_prev)
    stepped: dict[str, str]  # body name at step t -> the stacked quantity (x_t -> x)
    quantities: dict[str, Quantity] = field(default_factory=dict)
    equations: list[Equation] = field(default_factory=list)

    def reads(self) -> list[str]:
        """The spec's names the body reads (stacked arrays, params, initial states)."""
        out: list[str] = list(self.initial.values())
        for eq in self.equations:
            for ref in eq.refs():
                q = self.quantities.get(ref)
                if q is not None and q.kind != "input":  # h_prev, h_t: the loop's own
                    continue
                name = self.stepped[ref] if q is not None else ref
                if name not in out:
                    out.append(name)
        return out


def name_arguments(net: Network) -> Network:
    """The network with costly values the backward pass needs given names.

    ``X1 = f1(X0 @ W1)`` becomes ``X1_in = X0 @ W1; X1 = f1(X1_in)``, so the
    pre-activation gets its own delta (``δX1_in = δX1 ⊙ f1'(X1_in)``) and the
    forward pass keeps the value the backward pass needs instead of the
    backward pass recomputing a matrix product.  Likewise a matrix product or
    a function of one that is a factor of an element-wise product (a gated
    unit), and a reduction under a non-linear operation (``sum(e**2) ** 0.5``,
    ``sum(a) * sum(b)``), whose adjoint is then a scalar or vector of its own
    instead of an index sum inside another adjoint.  Cheap element-wise
    arguments (``log(1 - y)``) stay as written, so that simplification still
    sees through them.
    """
    namer = _ArgumentNamer(net)
    for eq in net.equations:
        namer.top = eq.expr
        expr = namer.visit(eq.expr, eq.name)
        namer.equations.append(Equation(eq.name, expr, eq.pos))
    # keep declaration order, then equations in order
    quantities = namer.quantities
    ordered = {k: v for k, v in quantities.items() if v.kind != "intermediate"}
    ordered.update({eq.name: quantities[eq.name] for eq in namer.equations})
    return replace(net, quantities=ordered, equations=namer.equations)


def _expensive(node: Node) -> bool:
    return any(isinstance(n, (MatMul, Softmax, Reduce, Conv2d, Pool2d)) for n in walk(node))


class _ArgumentNamer:
    """The rewriting behind :func:`name_arguments`: new equations, fresh names."""

    def __init__(self, net: Network):
        self.quantities = dict(net.quantities)
        self.equations: list[Equation] = []
        self.top: Node | None = None  # the right-hand side being visited
        self.taken = set(self.quantities) | set(net.consts) | set(net.dims) | set(net.funcs)

    def fresh(self, base: str) -> str:
        name, n = base, 1
        while name in self.taken:
            n += 1
            name = f"{base}{n}"
        self.taken.add(name)
        return name

    def hoist(self, node: Node, name: str) -> Ref:
        self.quantities[name] = Quantity(name, "intermediate", node.shape, node.pos)
        self.equations.append(Equation(name, node, node.pos))
        return Ref(node.shape, node.pos, name)

    def pool_argmax(self, node: Pool2d) -> Ref:
        """The hidden equation of a max-pool's argmax positions (integers, ``_`` names
        are the engine's own), computed just before the equation reading them."""
        name = self.fresh(POOL_ARGMAX)
        self.quantities[name] = Quantity(
            name, "intermediate", node.shape, node.pos, classes=sp.Integer(node.size**2)
        )
        found = PoolArgmax(node.shape, node.pos, node.a, node.size, node.stride)
        self.equations.append(Equation(name, found, node.pos))
        return Ref(node.shape, node.pos, name)

    def visit(self, node: Node, owner: str, linear: bool = True) -> Node:
        """``node`` with its costly parts named; ``linear``: no non-linear operation above."""
        if isinstance(node, Concat):  # each part by name: its adjoint is a slice of the delta
            top = node is self.top
            parts = tuple(
                p
                if isinstance(p, Ref)
                else self.hoist(self.visit(p, owner), self.fresh(owner + "_in"))
                for p in node.parts
            )
            node = replace(node, parts=parts)
            if not top:
                return self.hoist(node, self.fresh(owner + "_cat"))
            return node
        if isinstance(node, (Conv2d, Pool2d)):
            # windows are views of named arrays (sliding_window_view), in the derivation too
            named: dict[str, Any] = {}
            for f in ("a", "b"):
                kid = getattr(node, f, None)
                if isinstance(kid, Node) and not isinstance(kid, Ref):
                    named[f] = self.hoist(self.visit(kid, owner), self.fresh(owner + "_in"))
            node = replace(node, **named)
            if isinstance(node, Pool2d) and node.op == "max" and node.argmax is None:
                node = replace(node, argmax=self.pool_argmax(node))
            return node
        if isinstance(node, Reshape) and not isinstance(node.a, Ref):
            # a reshape reads a named array: its views and its adjoint stay reshapes
            inner = self.hoist(self.visit(node.a, owner), self.fresh(owner + "_in"))
            return replace(node, a=inner)
        if isinstance(node, Slice) and node is not self.top:
            # a slice is an equation of its own: its adjoint is the zero-padded delta,
            # and whatever reads it sees an array of its own width
            return self.hoist(replace(node, a=self.visit(node.a, owner)), self.fresh(owner + "_in"))
        if isinstance(node, Reduce) and not linear:
            reduced = replace(node, arg=self.visit(node.arg, owner))
            return self.hoist(reduced, self.fresh(f"{owner}_{node.op}"))
        if isinstance(node, (Call, Softmax)) and _expensive(node.arg):
            arg = self.hoist(self.visit(node.arg, owner), self.fresh(owner + "_in"))
            return replace(node, arg=arg)
        if isinstance(node, Binary) and node.op in "*/":
            return self.product(node, owner, linear)
        # sums, differences, negation, transposes and reductions pass a linear
        # position on; powers, functions and matrix products do not
        keeps = isinstance(
            node, (Binary, Neg, Transpose, Reduce, Pick, Column, Gather, *TENSOR_NODES)
        )
        keeps = keeps and not isinstance(node, Einsum)
        kids: dict[str, Any] = {
            f: self.visit(getattr(node, f), owner, linear and keeps)
            for f in ("a", "b", "base", "arg")
            if isinstance(getattr(node, f, None), Node)
        }
        kids |= _tuple_kids(node, lambda n: self.visit(n, owner, linear and keeps))
        return replace(node, **kids) if kids else node

    def product(self, node: Binary, owner: str, linear: bool) -> Node:
        """A product's derivative holds the other factor: name costly factors."""
        kids: dict[str, Any] = {}
        for f in ("a", "b"):
            original = getattr(node, f)
            other = node.b if f == "a" else node.a
            # scaling by a number is linear; anything else is not (and the
            # divisor of a quotient never is)
            scaled = isinstance(other, Scalar) and not (node.op == "/" and f == "b")
            kid = self.visit(original, owner, linear and scaled)
            if isinstance(kid, MatMul) or (
                isinstance(kid, (Call, Softmax)) and _expensive(original.arg)
            ):
                stem = (
                    kid.fn
                    if isinstance(kid, Call)
                    else "softmax"
                    if isinstance(kid, Softmax)
                    else "mm"
                )
                kid = self.hoist(kid, self.fresh(f"{owner}_{stem}"))
            kids[f] = kid
        return replace(node, **kids)


def _tuple_kids(node: Node, visit) -> dict[str, Any]:
    """The operand tuples of a node (``concatenate``'s parts, ``einsum``'s operands), visited."""
    return {
        f: tuple(visit(n) for n in getattr(node, f))
        for f in ("parts", "operands")
        if isinstance(getattr(node, f, None), tuple)
    }


def bind(net: Network, mapping: dict[str, str]) -> Network:
    """The network with generic functions replaced by registered ones (``f=tanh``)."""

    def visit(node: Node) -> Node:
        kids: dict[str, Any] = {
            f: visit(getattr(node, f))
            for f in ("a", "b", "base", "arg")
            if isinstance(getattr(node, f, None), Node)
        }
        kids |= _tuple_kids(node, visit)
        node = replace(node, **kids) if kids else node
        if isinstance(node, Call) and node.generic and node.fn in mapping:
            node = replace(node, fn=mapping[node.fn], generic=False)
        return node

    equations = [Equation(eq.name, visit(eq.expr), eq.pos) for eq in net.equations]
    funcs = [f for f in net.funcs if f not in mapping]
    return replace(net, equations=equations, funcs=funcs)
