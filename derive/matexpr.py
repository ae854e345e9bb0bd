"""Matrix-expression nodes the engine adds to SymPy's, and element-wise → matrix placement.

Backward matrix forms are SymPy matrix expressions (``MatrixSymbol``,
``MatMul``, ``Transpose``, ``HadamardProduct``, ``MatAdd``, ``OneMatrix``)
plus the nodes below, each with an ``_entry`` so that ``form[i, j]`` lowers
any matrix form back to indices (the symbolic proof relies on it):

* :class:`Vector`: a NumPy 1-D array, seen as a ``1 × n`` row (NumPy
  broadcasts a 1-D array as a row);
* :class:`Map`: an element-wise function applied to a matrix (``f'(u)``);
* :class:`Softmax`: softmax along axis 0 or 1;
* :class:`SumAxis`: sum over one axis (``1ᵀ δ`` for a bias gradient);
* :class:`Broadcast`: a row, column or scalar stretched to a full matrix;
* :class:`SumAll`: the sum of all entries, a scalar.
"""

from __future__ import annotations

import functools
from typing import TypeVar

import sympy as sp
from sympy.matrices.expressions.matexpr import MatrixExpr

from . import ir
from .indices import as_expr, dim_of, is_index, new_index
from .rules import RULES, SoftmaxAt, generic_function


class Vector(sp.MatrixSymbol):
    """A named 1-D array, as the ``1 × n`` row NumPy broadcasts it as."""


class OneHot(sp.MatrixSymbol):
    """``onehot(y, n)``: the ``B × n`` one-hot matrix of the class labels ``y``.

    Named ``_onehot_y`` like its element-wise array; :attr:`labels` is ``y``.
    Printers show it as ``onehot(y)``; generated code never builds it where
    it is added to a matrix (a scatter into the labelled entries instead).
    """

    @property
    def labels(self) -> str:
        from .elementwise import ONEHOT_PREFIX

        return str(self.name)[len(ONEHOT_PREFIX) :]


class Pick(MatrixExpr):
    """``X[range(B), y]``: entry ``y[b]`` of each row ``b`` of ``X``, a 1-D array (a row)."""

    def __new__(cls, X, onehot: OneHot):
        return sp.Basic.__new__(cls, X, onehot)

    arg = property(lambda self: self.args[0])
    onehot = property(lambda self: self.args[1])
    shape = property(lambda self: (sp.Integer(1), self.args[0].shape[0]))

    def _entry(self, i, j, **kwargs):
        c = new_index(self.arg.shape[1], "c")
        body = self.onehot._entry(j, c) * self.arg._entry(j, c)
        return sp.Sum(body, (c, 0, self.arg.shape[1] - 1)) if is_index(c) else body


class Gather(MatrixExpr):
    """``X[ix]``: row ``ix[b]`` of the table ``X`` for each ``b`` (``onehot(ix) X``, unbuilt)."""

    def __new__(cls, X, onehot: OneHot):
        return sp.Basic.__new__(cls, X, onehot)

    arg = property(lambda self: self.args[0])
    onehot = property(lambda self: self.args[1])
    shape = property(lambda self: (self.args[1].shape[0], self.args[0].shape[1]))

    def _entry(self, i, j, **kwargs):
        v = new_index(self.arg.shape[0], "v")
        body = self.onehot._entry(i, v) * self.arg._entry(v, j)
        return sp.Sum(body, (v, 0, self.arg.shape[0] - 1)) if is_index(v) else body


class ScatterAdd(MatrixExpr):
    """``onehot(ix)ᵀ X``: each row ``b`` of ``X`` added into row ``ix[b]`` of a zero table.

    The adjoint of a gather ``C[ix]``; NumPy's ``np.add.at(zeros, ix, X)``.
    """

    def __new__(cls, X, onehot: OneHot):
        return sp.Basic.__new__(cls, X, onehot)

    arg = property(lambda self: self.args[0])
    onehot = property(lambda self: self.args[1])
    shape = property(lambda self: (self.args[1].shape[1], self.args[0].shape[1]))

    def _entry(self, i, j, **kwargs):
        b = new_index(self.arg.shape[0], "b")
        body = self.onehot._entry(b, i) * self.arg._entry(b, j)
        return sp.Sum(body, (b, 0, self.arg.shape[0] - 1)) if is_index(b) else body


class Argmax(MatrixExpr):
    """``argmax(X, axis)`` (``argmin``): integer positions, a 1-D row, not differentiated."""

    def __new__(cls, X, axis: int, op: str):
        return sp.Basic.__new__(cls, X, sp.Integer(axis), sp.Symbol(op))

    arg = property(lambda self: self.args[0])
    axis = property(lambda self: int(self.args[1]))
    op = property(lambda self: str(self.args[2]))
    shape = property(lambda self: (sp.Integer(1), self.args[0].shape[1 - int(self.args[1])]))


def index_forms(form):
    """``onehot(ix) X`` as the gather ``X[ix]`` and ``onehot(ix)ᵀ X`` as a scatter-add.

    Recovery finds these products by the index structure alone; named, they
    print (and generate) as NumPy's fancy indexing and ``np.add.at``.
    """

    def named(e):
        coeff, mats = e.as_coeff_matrices()
        first, rest = mats[0], mats[1:]
        if not rest:
            return e
        tail = rest[0] if len(rest) == 1 else sp.MatMul(*rest)
        if isinstance(first, OneHot):
            out = Gather(tail, first)
        elif isinstance(first, sp.Transpose) and isinstance(first.arg, OneHot):
            out = ScatterAdd(tail, first.arg)
        else:
            return e
        return out if coeff == 1 else sp.MatMul(coeff, out)

    if not isinstance(form, sp.Basic) or not form.has(OneHot):
        return form
    return form.replace(lambda e: isinstance(e, sp.MatMul), named)


class Map(MatrixExpr):
    """``F(X)`` entry by entry; ``lam`` is a one-argument ``Lambda``."""

    def __new__(cls, lam: sp.Lambda, X):
        return sp.Basic.__new__(cls, lam, X)

    lam = property(lambda self: self.args[0])
    arg = property(lambda self: self.args[1])
    shape = property(lambda self: self.args[1].shape)

    @property
    def func_class(self):
        return self.lam.expr.func

    @property
    def params(self):
        return self.lam.expr.args[1:]

    def _entry(self, i, j, **kwargs):
        return self.lam(self.arg._entry(i, j, **kwargs))


class Softmax(MatrixExpr):
    def __new__(cls, X, axis: int):
        return sp.Basic.__new__(cls, X, sp.Integer(axis))

    arg = property(lambda self: self.args[0])
    axis = property(lambda self: int(self.args[1]))
    shape = property(lambda self: self.args[0].shape)

    def _entry(self, i, j, **kwargs):
        n = self.shape[self.axis]
        kappa = new_index(n, "c")
        if self.axis == 0:
            return SoftmaxAt(self.arg._entry(kappa, j), kappa, i, n)
        return SoftmaxAt(self.arg._entry(i, kappa), kappa, j, n)


class SumAxis(MatrixExpr):
    """Sum over ``axis`` keeping it as size 1: ``(1, c)`` for axis 0, ``(r, 1)`` for axis 1."""

    def __new__(cls, X, axis: int):
        return sp.Basic.__new__(cls, X, sp.Integer(axis))

    arg = property(lambda self: self.args[0])
    axis = property(lambda self: int(self.args[1]))

    @property
    def shape(self):
        r, c = self.arg.shape
        return (sp.Integer(1), c) if self.axis == 0 else (r, sp.Integer(1))

    def _entry(self, i, j, **kwargs):
        k = new_index(self.arg.shape[self.axis])
        inner = self.arg._entry(k, j) if self.axis == 0 else self.arg._entry(i, k)
        return sp.Sum(inner, (k, 0, self.arg.shape[self.axis] - 1)) if is_index(k) else inner


class Broadcast(MatrixExpr):
    """``X`` of shape (1, c), (r, 1) or (1, 1) stretched to ``(rows, cols)``."""

    def __new__(cls, X, rows, cols):
        return sp.Basic.__new__(cls, X, as_expr(rows), as_expr(cols))

    arg = property(lambda self: self.args[0])
    shape = property(lambda self: (self.args[1], self.args[2]))

    def _entry(self, i, j, **kwargs):
        r, c = self.arg.shape
        return self.arg._entry(0 if r == 1 else i, 0 if c == 1 else j)


class SumAll(sp.Expr):
    """The sum of every entry of a matrix expression (a scalar)."""

    is_commutative = True

    def __new__(cls, X):
        return sp.Expr.__new__(cls, X)

    arg = property(lambda self: self.args[0])

    def elementwise(self) -> sp.Expr:
        """The sum written over the entries of its argument."""
        r, c = self.arg.shape
        i, j = new_index(r), new_index(c)
        body = self.arg._entry(i, j)
        for k in (i, j):
            if is_index(k):
                body = sp.Sum(body, (k, 0, dim_of(k) - 1))
        return body


class Einsum(sp.Expr):
    """A contraction of index expressions: the form of whatever has no matrix form.

    ``Einsum(out, [(factor, summed), ...])`` is the array whose entry at the
    indices ``out`` is ``Σ_terms Σ_{summed} factor``: the element-wise
    adjoint itself, kept whole where no matrix pattern fits (rank 3 and 4,
    reshapes, slices, concatenation).  Printed as ``np.einsum`` calls (a
    batched ``@`` where one fits, a sum over an axis, a reshape or slice of an
    array) and in index notation; evaluated by the same plan
    (:mod:`derive.contraction`).
    """

    is_commutative = True

    def __new__(cls, out, terms, shapes=()):
        packed = [sp.Tuple(f, sp.Tuple(*summed)) for f, summed in terms]
        known = [sp.Tuple(sp.Symbol(str(n)), sp.Tuple(*shape)) for n, shape in shapes]
        return sp.Expr.__new__(cls, sp.Tuple(*out), sp.Tuple(*packed), sp.Tuple(*known))

    @property
    def shapes(self) -> dict[str, tuple]:
        """The shapes of arrays read, where known (forward forms): views need them."""
        return {str(n): tuple(shape) for n, shape in self.args[2]} if len(self.args) > 2 else {}

    @property
    def out(self) -> tuple:
        return tuple(self.args[0])

    @property
    def terms(self) -> list[tuple[sp.Expr, tuple]]:
        return [(t[0], tuple(t[1])) for t in self.args[1]]

    @property
    def shape(self) -> tuple:
        return tuple(dim_of(i) for i in self.out)

    @property
    def free_symbols(self):
        """Consts and dims: every index in an einsum form is bound by it."""
        return {s for s in super().free_symbols if not is_index(s)}

    def entry(self, idx: tuple) -> sp.Expr:
        """The element at ``idx`` (indices or numbers), its sums written out."""
        ren = {o: i for o, i in zip(self.out, idx, strict=True) if is_index(o)}
        out = sp.Integer(0)
        for factor, summed in self.terms:
            body = factor
            for k in summed:
                body = sp.Sum(body, (k, 0, dim_of(k) - 1))
            out += body.xreplace(ren)
        return out


def tensor_form(node: ir.Node) -> Einsum:
    """The einsum form of a forward expression: its lowering, whole."""
    from .elementwise import fresh_indices, lower

    idx = fresh_indices(node.shape, "f")
    shapes = {n.name: n.shape for n in ir.walk(node) if isinstance(n, ir.Ref)}
    return Einsum(idx, [(lower(node, idx), ())], sorted(shapes.items()))


def matrix_symbol(name: str, indices: tuple) -> sp.Expr:
    """The matrix form of the array ``name`` indexed by ``indices`` in element-wise forms."""
    from .elementwise import ONEHOT_PREFIX

    if not indices:
        return sp.Symbol(name, real=True)
    if len(indices) == 1:
        return Vector(name, 1, dim_of(indices[0]))
    if name.startswith(ONEHOT_PREFIX):
        return OneHot(name, dim_of(indices[0]), dim_of(indices[1]))
    return sp.MatrixSymbol(name, dim_of(indices[0]), dim_of(indices[1]))


def symbol_for(name: str, shape: tuple) -> sp.Expr:
    """The matrix form of an array of the given NumPy shape."""
    if not shape:
        return sp.Symbol(name, real=True)
    if len(shape) == 1:
        return Vector(name, 1, shape[0])
    return sp.MatrixSymbol(name, *shape)


def elementwise_of(form: sp.Expr, idx: tuple) -> sp.Expr:
    """Lower a matrix form to its element ``idx`` in the engine's indexed notation."""
    if isinstance(form, Einsum):
        value = form.entry(idx)
    elif isinstance(form, MatrixExpr):
        i, j = (sp.Integer(0), idx[0]) if len(idx) == 1 else (idx + (0, 0))[:2]
        value = form._entry(i, j)
    else:
        value = form
    value = value.replace(lambda e: isinstance(e, SumAll), lambda e: e.elementwise())
    value = _register_sums(value)
    return value.replace(
        lambda e: isinstance(e, sp.matrices.expressions.matexpr.MatrixElement),
        lambda e: _indexed(e),
    )


def _indexed(e) -> sp.Expr:
    parent, i, j = e.args
    name = str(parent.name)
    if isinstance(parent, Vector):
        return sp.IndexedBase(name)[j]
    return sp.IndexedBase(name)[i, j]


def _register_sums(expr: sp.Basic) -> sp.Basic:
    """Give the dummies of SymPy's own ``MatMul._entry`` sums a known extent."""
    if isinstance(expr, sp.Sum):
        body, limits = _register_sums(expr.function), []
        for k, lo, hi in expr.limits:
            if is_index(k):
                limits.append((k, lo, hi))
                continue
            fresh = new_index(hi - lo + 1)
            body = body.xreplace({k: fresh})
            if is_index(fresh):
                limits.append((fresh, 0, hi - lo))
        return sp.Sum(body, *limits) if limits else body
    if not expr.args or isinstance(expr, sp.Symbol):
        return expr
    new_args = [_register_sums(a) for a in expr.args]
    if all(a is b for a, b in zip(new_args, expr.args, strict=True)):
        return expr
    return expr.func(*new_args)


# ---------------------------------------------------------------------------
# forward equations as matrix forms


def _lift(expr: sp.Expr, shape: tuple, target: tuple) -> sp.Expr:
    """Broadcast ``expr`` of NumPy ``shape`` to ``target`` (NumPy rules)."""
    if tuple(shape) == tuple(target) or not shape:
        return expr
    rows, cols = (sp.Integer(1), target[0]) if len(target) == 1 else target
    return expr if expr.shape == (rows, cols) else Broadcast(expr, rows, cols)


_F = TypeVar("_F")


def _tensors_first(dispatch: _F) -> _F:
    """Expressions of rank above 2 or with layout nodes take their einsum form whole."""

    @functools.wraps(dispatch)  # type: ignore[arg-type]
    def forward_form(node: ir.Node) -> sp.Expr:
        if ir.is_tensor(node):
            return tensor_form(node)
        return dispatch(node)  # type: ignore[operator]

    return forward_form  # type: ignore[return-value]


@_tensors_first
@functools.singledispatch
def forward_form(node: ir.Node) -> sp.Expr:
    """The matrix form of a forward expression (a 1-D array is a ``1 × n`` row).

    One function per node type, registered on this one (``forward_form.register``).
    """
    raise TypeError(f"no matrix form for {type(node).__name__}")


@forward_form.register(ir.Ref)
def _form_ref(node: ir.Ref) -> sp.Expr:
    return symbol_for(node.name, node.shape)


@forward_form.register(ir.OneHot)
def _form_onehot(node: ir.OneHot) -> sp.Expr:
    from .elementwise import onehot_name

    return OneHot(onehot_name(node.labels.name), *node.shape)


@forward_form.register(ir.Pick)
def _form_pick(node: ir.Pick) -> sp.Expr:
    from .elementwise import onehot_name

    return Pick(forward_form(node.arg), OneHot(onehot_name(node.labels.name), *node.arg.shape))


@forward_form.register(ir.Argmax)
def _form_argmax(node: ir.Argmax) -> sp.Expr:
    return Argmax(forward_form(node.arg), node.axis, node.op)


@forward_form.register(ir.Gather)
def _form_gather(node: ir.Gather) -> sp.Expr:
    from .elementwise import onehot_name

    rows = (node.index.shape[0], node.arg.shape[0])
    return Gather(forward_form(node.arg), OneHot(onehot_name(node.index.name), *rows))


@forward_form.register(ir.Column)
def _form_column(node: ir.Column) -> sp.Expr:
    return sp.Transpose(forward_form(node.a))


@forward_form.register(ir.Scalar)
def _form_scalar(node: ir.Scalar) -> sp.Expr:
    return node.value


@forward_form.register(ir.Neg)
def _form_neg(node: ir.Neg) -> sp.Expr:
    return -forward_form(node.a)


@forward_form.register(ir.Power)
def _form_power(node: ir.Power) -> sp.Expr:
    base = forward_form(node.base)
    return sp.HadamardPower(base, node.exponent) if node.shape else base**node.exponent


@forward_form.register(ir.Transpose)
def _form_transpose(node: ir.Transpose) -> sp.Expr:
    a = forward_form(node.a)
    return a.T if len(node.a.shape) == 2 else a


@forward_form.register(ir.Binary)
def _form_binary(node: ir.Binary) -> sp.Expr:
    a, b = forward_form(node.a), forward_form(node.b)
    if not node.shape:
        return ir.BINARY_OPS[node.op](a, b)
    if node.op in "*/" and (not node.a.shape or not node.b.shape):
        if node.op == "*" and isinstance(a, sp.MatAdd) != isinstance(b, sp.MatAdd):
            # c (1 − m) kept as written: SymPy's c·1 − c·m loses what it adds to c (where's
            # m a + (1 − m)(−1e9) would give a + 1e9 − 1e9, a to ~1e-7, for m = 1)
            return sp.MatMul(b, a) if isinstance(a, sp.MatAdd) else sp.MatMul(a, b)
        return (
            a * b
            if node.op == "*"
            else a * (1 / b)
            if not node.b.shape
            else (a * sp.HadamardPower(_lift(b, node.b.shape, node.shape), -1))
        )
    rows, cols = (sp.Integer(1), node.shape[0]) if len(node.shape) == 1 else node.shape
    la = _lift(a, node.a.shape, node.shape) if node.a.shape else a * sp.OneMatrix(rows, cols)
    lb = _lift(b, node.b.shape, node.shape) if node.b.shape else b * sp.OneMatrix(rows, cols)
    if node.op == "+":
        return sp.MatAdd(la, lb)
    if node.op == "-":
        return sp.MatAdd(la, -lb)
    if node.op == "*":
        return sp.HadamardProduct(la, lb)
    return sp.HadamardProduct(la, sp.HadamardPower(lb, -1))


@forward_form.register(ir.MatMul)
def _form_matmul(node: ir.MatMul) -> sp.Expr:
    a, b = forward_form(node.a), forward_form(node.b)
    ra, rb = len(node.a.shape), len(node.b.shape)
    if ra == 1 and rb == 1:
        return SumAll(sp.HadamardProduct(a, b))
    if rb == 1:  # M @ v is a 1-D array: the row v Mᵀ
        return sp.MatMul(b, a.T)
    return sp.MatMul(a, b)


@forward_form.register(ir.Call)
def _form_call(node: ir.Call) -> sp.Expr:
    cls = generic_function(node.fn) if node.generic else RULES[node.fn].cls
    arg = forward_form(node.arg)
    if not node.shape:
        return cls(arg, *node.params)
    z = sp.Dummy("z")
    return Map(sp.Lambda(z, cls(z, *node.params)), arg)


@forward_form.register(ir.Softmax)
def _form_softmax(node: ir.Softmax) -> sp.Expr:
    axis = 1 if len(node.shape) == 1 else node.axis
    return Softmax(forward_form(node.arg), axis)


@forward_form.register(ir.Reduce)
def _form_reduce(node: ir.Reduce) -> sp.Expr:
    arg = forward_form(node.arg)
    shape = node.arg.shape
    if node.axis is None or len(shape) == 1:
        value = SumAll(arg)
        count = sp.Mul(*shape)
        if node.keepdims:
            value = value * sp.OneMatrix(*((1, 1) if len(shape) == 2 else (1, 1)))
    else:
        value = SumAxis(arg, node.axis)
        if node.axis == 1 and not node.keepdims:
            value = value.T
        count = shape[node.axis]
    return value / count if node.op == "mean" else value
