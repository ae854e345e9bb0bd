"""Reading layout syntax: transposes with axes, reshapes, slices, ``concatenate``, ``einsum``.

A mixin of :class:`~derive.expressions.ExpressionReader`: NumPy's own
spellings (``x.transpose(0, 2, 1)``, ``swapaxes(x, 1, 2)``,
``x.reshape(B, T * D)``, ``reshape(x, (B, T * D))``, ``a[:, H:2 * H]``,
``concatenate([a, b], axis=1)``, ``einsum("bqd,bkd->bqk", q, k)``) become
the layout nodes of :mod:`derive.ir`, every shape checked here.  Sizes
written in them are dims, integers and arithmetic on those (``T * D``).
"""

from __future__ import annotations

import ast
import string
from collections.abc import Callable
from typing import Any, NoReturn

import sympy as sp

from . import ir
from .shapes import fmt_shape, product, reshape_chunks

LAYOUT_FUNCTIONS = ("einsum", "concatenate", "reshape", "swapaxes", "transpose")
_LETTERS = set(string.ascii_letters)


class LayoutReader:
    """Layout calls and slices; mixed into the expression reader (which provides ``expr``)."""

    # provided by ExpressionReader / SourceReader (annotations only: no override)
    expr: Callable[[ast.expr], ir.Node]
    node_error: Callable[..., NoReturn]
    pos: Callable[[Any], ir.Pos]
    int_literal: Callable[[ast.expr, str], int]
    axis: Callable[..., int]

    # -- entry points ----------------------------------------------------------------
    def method_call(self, node: ast.Call) -> ir.Node:
        """``x.transpose(...)`` or ``x.reshape(...)``."""
        func = node.func
        assert isinstance(func, ast.Attribute)
        if func.attr not in ("transpose", "reshape") or node.keywords:
            self.node_error(
                node,
                f"unsupported method .{func.attr}(): expected .transpose(...) or .reshape(...)",
            )
        a = self.expr(func.value)
        args = list(node.args)
        if len(args) == 1 and isinstance(args[0], (ast.Tuple, ast.List)):
            args = list(args[0].elts)
        if func.attr == "transpose":
            return self.permute(node, a, args)
        return self.reshape(node, a, args)

    def layout_call(self, node: ast.Call, name: str) -> ir.Node:
        """``einsum``, ``concatenate``, ``reshape``, ``swapaxes`` or ``transpose`` as functions."""
        if name == "einsum":
            return self.einsum(node)
        if name == "concatenate":
            return self.concatenate(node)
        if not node.args or node.keywords and name != "concatenate":
            self.node_error(node, f"{name} takes an array first: {name}(x, ...)")
        a = self.expr(node.args[0])
        rest = list(node.args[1:])
        if name == "swapaxes":
            if len(rest) != 2:
                self.node_error(node, "swapaxes takes two axes: swapaxes(x, 1, 2)")
            i, j = (self.axis(node, self.int_literal(r, "an axis"), a.shape) for r in rest)
            axes = list(range(len(a.shape)))
            axes[i], axes[j] = axes[j], axes[i]
            return self.permuted(node, a, tuple(axes))
        if len(rest) == 1 and isinstance(rest[0], (ast.Tuple, ast.List)):
            rest = list(rest[0].elts)
        if name == "transpose":
            return self.permute(node, a, rest)
        if not rest:
            self.node_error(node, "reshape takes the new shape: reshape(x, (B, T * D))")
        return self.reshape(node, a, rest)

    # -- transposes --------------------------------------------------------------------
    def permute(self, node, a: ir.Node, args: list) -> ir.Node:
        """``x.transpose()`` (all axes reversed) or ``x.transpose(0, 2, 1)``."""
        rank = len(a.shape)
        if not args:
            return self.permuted(node, a, tuple(reversed(range(rank))))
        axes = tuple(self.axis(node, self.int_literal(x, "an axis"), a.shape) for x in args)
        if sorted(axes) != list(range(rank)):
            self.node_error(
                node, f"expected a permutation of the {rank} axes of {fmt_shape(a.shape)}"
            )
        return self.permuted(node, a, axes)

    def permuted(self, node, a: ir.Node, axes: tuple[int, ...]) -> ir.Node:
        """``a`` with its axes in the order ``axes`` (itself for the identity)."""
        if axes == tuple(range(len(axes))):
            return a
        shape = tuple(a.shape[i] for i in axes)
        return ir.Permute(shape, self.pos(node), a, axes)

    # -- reshapes ----------------------------------------------------------------------
    def size(self, node: ast.expr, what: str) -> sp.Expr:
        """A size written in an equation: dims, positive integers and arithmetic on them."""
        value = self.expr(node)
        if not isinstance(value, ir.Scalar):
            self.node_error(node, f"expected a size for {what}: dims and integers")
        v = value.value
        dims = set(getattr(self, "dims", {}).values())
        if not (v.free_symbols <= dims) or (v.is_number and not (v.is_integer and v > 0)):
            self.node_error(node, f"expected a size for {what}: dims and positive integers")
        return v

    def reshape(self, node, a: ir.Node, args: list) -> ir.Node:
        """``x.reshape(B, T * D)`` (one ``-1`` allowed): the same entries, another shape."""
        sizes: list[sp.Expr | None] = []
        for x in args:
            if isinstance(x, ast.UnaryOp) and isinstance(x.op, ast.USub):
                if self.int_literal(x, "a size") != -1 or None in sizes:
                    self.node_error(x, "expected sizes, with at most one -1")
                sizes.append(None)
            else:
                sizes.append(self.size(x, "reshape"))
        total = product(a.shape)
        if None in sizes:
            known = product(tuple(s for s in sizes if s is not None))
            rest = sp.cancel(total / known)
            if sp.fraction(rest)[1] != 1:
                self.node_error(
                    node, f"-1 cannot be inferred: {total} is not a multiple of {known}"
                )
            sizes = [rest if s is None else s for s in sizes]
        shape = tuple(s for s in sizes if s is not None)
        if sp.simplify(product(shape) - total) != 0:
            self.node_error(
                node, f"cannot reshape {fmt_shape(a.shape)} ({total} entries) to {fmt_shape(shape)}"
            )
        if tuple(shape) == tuple(a.shape):
            return a
        if reshape_chunks(a.shape, shape) is None:
            self.node_error(
                node,
                f"reshape {fmt_shape(a.shape)} to {fmt_shape(shape)} both splits and merges "
                "the same axes; reshape in two steps",
            )
        return ir.Reshape(shape, self.pos(node), a)

    # -- slices ------------------------------------------------------------------------
    @staticmethod
    def is_slicing(node: ast.Subscript) -> bool:
        """``a[:, H:2 * H]``: every item a slice without a step, one of them not ``:``."""
        items = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        return all(isinstance(i, ast.Slice) and i.step is None for i in items) and any(
            i.lower is not None or i.upper is not None for i in items if isinstance(i, ast.Slice)
        )

    @staticmethod
    def is_new_axis(node: ast.Subscript) -> bool:
        """``x[:, None]``, ``x[:, :, None]``: whole axes and new size-1 ones only."""
        items = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        whole = [isinstance(i, ast.Slice) and i.lower is i.upper is i.step is None for i in items]
        none = [isinstance(i, ast.Constant) and i.value is None for i in items]
        return any(none) and all(w or n for w, n in zip(whole, none, strict=True))

    def new_axis(self, node: ast.Subscript, a: ir.Node) -> ir.Node:
        """``x[:, None]`` on any rank: a reshape that inserts size-1 axes."""
        items = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        kept = sum(not (isinstance(i, ast.Constant) and i.value is None) for i in items)
        if kept > len(a.shape):
            self.node_error(node, f"too many ':' for shape {fmt_shape(a.shape)}")
        shape, axes = [], iter(a.shape)
        for i in items:
            shape.append(sp.Integer(1) if isinstance(i, ast.Constant) else next(axes))
        shape += list(axes)
        return ir.Reshape(tuple(shape), self.pos(node), a)

    def slicing(self, node: ast.Subscript) -> ir.Node:
        """``a[:, H:2 * H]``: bounds checked to lie within each axis, non-empty."""
        a = self.expr(node.value)
        items = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        if len(items) > len(a.shape):
            self.node_error(node, f"too many slices for shape {fmt_shape(a.shape)}")
        starts, shape = [], []
        for n, dim in enumerate(a.shape):
            item = items[n] if n < len(items) else None
            lo = sp.Integer(0)
            hi = dim
            if isinstance(item, ast.Slice):
                if item.lower is not None:
                    lo = self.bound(item.lower)
                if item.upper is not None:
                    hi = self.bound(item.upper)
            length = sp.simplify(hi - lo)
            if not (length.is_positive and (dim - hi).is_nonnegative):
                self.node_error(
                    item or node,
                    f"slice {lo}:{hi} must be non-empty and within axis {n} of size {dim}",
                )
            starts.append(lo)
            shape.append(length)
        if all(s == 0 for s in starts) and tuple(shape) == tuple(a.shape):
            return a
        return ir.Slice(tuple(shape), self.pos(node), a, tuple(starts))

    def bound(self, node: ast.expr) -> sp.Expr:
        """A slice bound: 0, or a size (dims, integers, arithmetic)."""
        if isinstance(node, ast.Constant) and node.value == 0 and type(node.value) is int:
            return sp.Integer(0)
        return self.size(node, "a slice bound")

    # -- concatenate -------------------------------------------------------------------
    def concatenate(self, node: ast.Call) -> ir.Node:
        """``concatenate([a, b], axis=1)`` (axis 0 when not given, as NumPy)."""
        if (
            len(node.args) != 1
            or not isinstance(node.args[0], (ast.List, ast.Tuple))
            or not node.args[0].elts
            or any(k.arg != "axis" for k in node.keywords)
        ):
            self.node_error(node, "expected concatenate([a, b, ...], axis=N)")
        parts = tuple(self.expr(x) for x in node.args[0].elts)
        first = parts[0].shape
        if not first:
            self.node_error(node, "concatenate needs arrays, got a scalar")
        axis_node = node.keywords[0].value if node.keywords else None
        axis = self.axis(node, self.int_literal(axis_node, "axis") if axis_node else 0, first)
        for p, x in zip(parts, node.args[0].elts, strict=True):
            same = len(p.shape) == len(first) and all(
                d == e for i, (d, e) in enumerate(zip(p.shape, first, strict=True)) if i != axis
            )
            if not same:
                self.node_error(
                    x,
                    f"shape {fmt_shape(p.shape)} does not fit {fmt_shape(first)} along axis {axis}",
                )
        total = sp.Add(*[p.shape[axis] for p in parts])
        shape = first[:axis] + (total,) + first[axis + 1 :]
        if len(parts) == 1:
            return parts[0]
        return ir.Concat(shape, self.pos(node), parts, axis)

    # -- einsum ------------------------------------------------------------------------
    def einsum(self, node: ast.Call) -> ir.Node:
        """``einsum("bqd,bkd->bqk", q, k)``: explicit subscripts, any number of operands."""
        if (
            not node.args
            or node.keywords
            or not isinstance(node.args[0], ast.Constant)
            or not isinstance(node.args[0].value, str)
        ):
            self.node_error(node, 'expected einsum("ij,jk->ik", a, b): subscripts, then arrays')
        spec = node.args[0].value.replace(" ", "")
        if spec.count("->") != 1:
            self.node_error(node.args[0], "einsum needs explicit output subscripts: '...->ik'")
        lhs, output = spec.split("->")
        inputs = lhs.split(",")
        operands = tuple(self.expr(x) for x in node.args[1:])
        if len(inputs) != len(operands):
            self.node_error(node, f"{len(inputs)} subscripts for {len(operands)} arrays in einsum")
        sizes: dict[str, sp.Expr] = {}
        for sub, op, x in zip(inputs, operands, node.args[1:], strict=True):
            if not set(sub) <= _LETTERS or len(set(sub)) != len(sub):
                self.node_error(
                    node.args[0], f"subscripts {sub!r}: letters, each at most once per array"
                )
            if len(sub) != len(op.shape):
                self.node_error(
                    x, f"subscripts {sub!r} for an array of shape {fmt_shape(op.shape)}"
                )
            for letter, dim in zip(sub, op.shape, strict=True):
                if sizes.setdefault(letter, dim) != dim:
                    self.node_error(
                        x, f"subscript {letter!r} is {sizes[letter]} elsewhere, {dim} here"
                    )
        if len(set(output)) != len(output) or not set(output) <= set(sizes):
            self.node_error(
                node.args[0], f"output subscripts {output!r}: input letters, each at most once"
            )
        shape = tuple(sizes[c] for c in output)
        return ir.Einsum(shape, self.pos(node), tuple(inputs), output, operands)
