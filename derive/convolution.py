"""Reading convolutions and pooling: ``conv2d(x, K, stride=1, padding=0)``, ``avgpool2d``,
``maxpool2d``.

A mixin of :class:`~derive.expressions.ExpressionReader`.  NCHW layout and
cross-correlation, as PyTorch and cs231n: ``x[B, C, H, W]`` and
``K[F, C, HH, WW]`` give ``[B, F, (H + 2 padding - HH) / stride + 1, …]``.
Output sizes stay symbolic; a size that provably does not divide (numbers
on both sides) or is not positive is refused with both shapes named.

``maxpool2d(x, size, stride=size)`` sends its gradient to the first maximal
entry of each window (row-major within the window), as PyTorch's
``max_pool2d`` does; cs231n's ``max_pool_backward_naive`` (a mask of
``window == max``) sends it to every tied entry instead.  The two agree
wherever the maximum of each window is unique.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from typing import Any, NoReturn

import sympy as sp

from . import ir
from .shapes import fmt_shape

CONV_FUNCTIONS = ("conv2d", "avgpool2d", "maxpool2d")


class ConvReader:
    """``conv2d``, ``avgpool2d`` and ``maxpool2d`` calls; mixed into the expression reader."""

    expr: Callable[[ast.expr], ir.Node]
    node_error: Callable[..., NoReturn]
    pos: Callable[[Any], ir.Pos]
    int_literal: Callable[[ast.expr, str], int]
    call_args: Callable[..., tuple]

    def conv_call(self, node: ast.Call, name: str) -> ir.Node:
        """``conv2d(x, K, stride=1, padding=0)``, ``avgpool2d(x, size, stride)`` or
        ``maxpool2d(x, size, stride)``."""
        if name == "conv2d":
            args, kw = self.call_args(
                node, name, 2, {"stride": 1, "padding": 0}, positional_params=True
            )
            x, k = args
            stride = self.small_int(kw["stride"], "stride", 1)
            padding = self.small_int(kw["padding"], "padding", 0)
            self.four_d(node, x, "conv2d's input x[B, C, H, W]")
            self.four_d(node, k, "conv2d's kernels K[F, C, HH, WW]")
            if sp.simplify(x.shape[1] - k.shape[1]) != 0:
                self.node_error(
                    node,
                    f"conv2d: input {fmt_shape(x.shape)} has {x.shape[1]} channels, kernels "
                    f"{fmt_shape(k.shape)} expect {k.shape[1]}",
                )
            out = tuple(
                self.out_size(node, n, w, stride, padding, x.shape, k.shape, "kernels")
                for n, w in zip(x.shape[2:], k.shape[2:], strict=True)
            )
            shape = (x.shape[0], k.shape[0], *out)
            return ir.Conv2d(shape, self.pos(node), x, k, stride, padding)
        args, kw = self.call_args(node, name, 1, {"size": None, "stride": None}, True)
        (x,) = args
        if kw["size"] is None:
            self.node_error(node, f"{name} takes a window size: {name}(x, 2, 2)")
        size = self.small_int(kw["size"], "size", 1)
        stride = size if kw["stride"] is None else self.small_int(kw["stride"], "stride", 1)
        self.four_d(node, x, f"{name}'s input x[B, C, H, W]")
        window = (sp.Integer(size), sp.Integer(size))
        out = tuple(
            self.out_size(node, n, w, stride, 0, x.shape, window, "window")
            for n, w in zip(x.shape[2:], window, strict=True)
        )
        op = "max" if name == "maxpool2d" else "avg"
        return ir.Pool2d((*x.shape[:2], *out), self.pos(node), op, x, size, stride)

    def small_int(self, value, what: str, least: int) -> int:
        """An integer argument (a literal in the spec), at least ``least``."""
        n = value if isinstance(value, int) else self.int_literal(value, what)
        if n < least:
            self.node_error(
                value if isinstance(value, ast.AST) else None, f"{what} must be ≥ {least}"
            )
        return n

    def four_d(self, node: ast.AST, a: ir.Node, what: str) -> None:
        """Refuse an argument that is not of rank 4 (NCHW)."""
        if len(a.shape) != 4:
            self.node_error(node, f"expected {what} (rank 4), got shape {fmt_shape(a.shape)}")

    def out_size(self, node, n, w, stride: int, padding: int, xs, ks, kind: str) -> sp.Expr:
        """``(n + 2 padding − w) / stride + 1``, refused where it is not a positive integer."""
        span = sp.expand(n + 2 * padding - w)
        size = sp.expand(span / stride + 1)
        # with symbolic sizes the division is exact at the sizes used: proofs choose
        # stand-in sizes that divide, generated code computes (H - 3) // 2 + 1
        if span.is_number and (span < 0 or span % stride != 0):  # both shapes named
            self.node_error(
                node,
                f"input {fmt_shape(xs)} and {kind} {fmt_shape(ks)} with stride {stride}, "
                f"padding {padding}: output size ({n} + {2 * padding} - {w}) / {stride} + 1 "
                f"= {size} is not a positive integer",
            )
        return size
