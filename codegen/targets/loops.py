"""Lowering matrix forms to explicit loops for ``--target numba``.

Every form is computed into a buffer by loops over its entries: the entry
``(i, j)`` of an element-wise form is SymPy's own ``form[i, j]`` (each node
of derive's forms has an ``_entry``), printed by :class:`LoopPrinter` (a
printer subclass: dispatch by node type).  The nodes that are not
element-wise are computed first into buffers of their own (prefix ``_t``)
or straight into the destination:

* a matrix product: an accumulation loop over the inner dimension, or, when
  both operands are named 2-D arrays (or their transposes) and the product is
  large (at least ``BLAS_MIN`` multiply-adds, decided at run time),
  ``np.dot(a, b, out)``, which Numba sends to SciPy's BLAS, and from
  ``NUMPY_MIN`` multiply-adds on NumPy's own BLAS (``ndarray.dot``) in object mode
  (``_numpy_matmul``: about a microsecond to enter, and then the NumPy
  target's own GEMM; SciPy's OpenBLAS build is up to 13% slower in float32);
* a sum over an axis: an accumulation loop;
* softmax and log-softmax: the module's row kernels;
* ``x[range(B), y]`` (class labels ``y``): a loop over the rows reading ``x[b, y[b]]``.

The one-hot matrix of class labels is never built: its entry ``(i, j)``
prints as ``(1.0 if y[i] == j else 0.0)``.

Sums over all entries (in the loss) accumulate into scalars.  No statement
allocates: buffers are allocated once, outside the compiled step.
"""

from __future__ import annotations

import sympy as sp

from derive.forms import (
    Broadcast,
    Map,
    NumpyFormPrinter,
    OneHot,
    Pick,
    Softmax,
    SumAll,
    SumAxis,
    Vector,
    np_rank,
    rule_of,
)

from ..emit import np_shape
from ..printer import LogSoftmax

BODY_INDENT = 4  # the compiled functions' bodies are indented once in the template
LINE_LENGTH = 100
I, J, K = sp.Symbol("_i", integer=True), sp.Symbol("_j", integer=True), sp.Symbol("_k")


class LoopPrinter(NumpyFormPrinter):
    """Scalar code for one entry of a form: ``sigmoid(z1[_i, _j])``, ``b1[_j]``."""

    def paren(self, e) -> str:
        if isinstance(e, sp.matrices.expressions.matexpr.MatrixElement) or (
            isinstance(e, sp.Function) and rule_of(e.func)
        ):
            return self._print(e)
        return super().paren(e)

    def _print_MatrixElement(self, e):
        parent, i, j = e.args
        if isinstance(parent, OneHot):  # never built: a comparison with the label
            return f"(1.0 if {parent.labels}[{self._print(i)}] == {self._print(j)} else 0.0)"
        name = str(parent.name)
        if isinstance(parent, Vector):  # a 1-D array: the row index is always 0
            return f"{name}[{self._print(j)}]"
        return f"{name}[{self._print(i)}, {self._print(j)}]"

    def call(self, e, arg: str) -> str:
        rule = rule_of(e.func)
        if rule is None:
            raise ValueError(f"unbound function {e}: bind it with --bind NAME=FUNCTION")
        extra = "".join(", " + self._print(p) for p in e.args[1:])
        return f"{rule.name}({arg}{extra})"

    def _print_Float(self, e):
        return repr(float(e))

    def _print_Rational(self, e):
        return f"{e.p} / {e.q}"


def _elementwise(e) -> bool:
    """True for nodes whose entry (i, j) reads entries (i, j) of their operands only
    (after broadcasting and transposition)."""
    if isinstance(e, sp.MatMul):
        _, mats = e.as_coeff_matrices()
        return len(mats) == 1
    return not isinstance(e, (SumAxis, Softmax, LogSoftmax, Pick))


class LoopEmitter:
    """Statements computing forms into buffers with loops (see the module docstring)."""

    def __init__(self, blas: bool = True):
        self.printer = LoopPrinter()
        self.lines: list[str] = []
        self.buffers: dict[str, tuple] = {}  # temporary buffer name -> its NumPy shape
        self.count = 0
        self.blas = blas

    def code(self, e) -> str:
        """The Numba code of a scalar expression."""
        return self.printer.doprint(e)

    def emit(self, line: str, depth: int = 0) -> None:
        """One line of code, indented ``depth`` levels inside the current body."""
        self.lines.append("    " * depth + line)

    def statement(self, target: str, op: str, value, depth: int) -> None:
        """``target op value`` within the line length ruff allows (100): a long sum or
        product accumulates term by term in the scalar ``_v`` first."""
        line = f"{target} {op} {self.code(value)}"
        if BODY_INDENT + 4 * depth + len(line) <= LINE_LENGTH or not isinstance(
            value, (sp.Add, sp.Mul)
        ):
            return self.emit(line, depth)
        step = "+=" if isinstance(value, sp.Add) else "*="
        for n, part in enumerate(value.args):
            self.wrapped(f"_v {'=' if n == 0 else step}", self.code(part), depth)
        return self.emit(f"{target} {op} _v", depth)

    def wrapped(self, head: str, code: str, depth: int) -> None:
        """``head code``, parenthesised over three lines when too long (as ruff does)."""
        if BODY_INDENT + 4 * depth + len(head) + 1 + len(code) <= LINE_LENGTH:
            return self.emit(f"{head} {code}", depth)
        self.emit(f"{head} (", depth)
        self.emit(code, depth + 1)
        return self.emit(")", depth)

    # -- buffers -------------------------------------------------------------------------------
    def temporary(self, e) -> sp.MatrixSymbol:
        """A new buffer holding ``e`` (computed now); the symbol that stands for it."""
        self.count += 1
        name = f"_t{self.count}"
        shape = np_shape(e)
        self.buffers[name] = tuple(shape)
        symbol = Vector(name, *e.shape) if len(shape) == 1 else sp.MatrixSymbol(name, *e.shape)
        self.assign(symbol, e)
        return symbol

    def operand(self, e):
        """``e`` as something whose entries print directly: itself, or a buffer holding it."""
        if isinstance(e, (sp.MatrixSymbol, sp.OneMatrix)):
            return e
        if isinstance(e, (sp.Transpose, Broadcast)) and isinstance(e.arg, sp.MatrixSymbol):
            return e
        return self.temporary(e)

    def lift(self, e, slot=None):
        """``e`` with every node that is not element-wise replaced by a buffer holding it.

        ``slot`` (a list holding the destination, or empty) lets the first full-shape
        matrix product be computed in the destination itself: the loop that follows
        reads each destination entry only to write that same entry.
        """
        slot = [] if slot is None else slot
        if not isinstance(e, sp.Basic) or not e.args:
            return e
        if isinstance(e, sp.MatrixExpr) and not _elementwise(e):
            if slot and isinstance(e, sp.MatMul) and e.shape == slot[0].shape:
                into = slot.pop()
                self.assign(into, e)
                return into
            return self.temporary(e)
        if isinstance(e, (sp.MatrixSymbol, sp.Lambda, SumAll)):
            return e  # SumAll: summed by :meth:`scalar`
        if isinstance(e, Map):
            return Map(e.lam, self.lift(e.arg, slot))
        if isinstance(e, (sp.Transpose, Broadcast)):  # they read other entries: no slot
            return e.func(self.operand(self.lift(e.arg)), *e.args[1:])
        return e.func(*[self.lift(a, slot) for a in e.args])

    # -- statements ----------------------------------------------------------------------------
    def assign(self, dest, e) -> None:
        """Loops writing the value of form ``e`` into the buffer ``dest`` (a symbol)."""
        if isinstance(e, sp.MatMul) and not _elementwise(e):
            return self.matmul(dest, e)
        if isinstance(e, SumAxis):
            return self.sum_axis(dest, e)
        if isinstance(e, Pick):
            return self.pick(dest, e)
        if isinstance(e, (Softmax, LogSoftmax)):
            kernel = "softmax" if isinstance(e, Softmax) else "log_softmax"
            arg = self.operand(e.arg)
            if np_rank(e) == 1:
                self.emit(f"{kernel}_rows({self.code(arg)}[None, :], {dest.name}[None, :])")
            elif e.axis == 1:
                self.emit(f"{kernel}_rows({self.code(arg)}, {dest.name})")
            else:
                self.emit(f"{kernel}_rows({self.code(arg)}.T, {dest.name}.T)")
            return None
        lifted = self.lift(e, [dest])
        rows, cols = e.shape
        self.emit(f"for _i in range({self.code(rows)}):")
        self.emit(f"for _j in range({self.code(cols)}):", 1)
        self.statement(self.target(dest, I, J), "=", lifted[I, J], 2)
        return None

    def target(self, dest, i, j) -> str:
        """The code of entry ``(i, j)`` of the destination ``dest``."""
        return self.code(dest[i, j])

    def matmul(self, dest, e: sp.MatMul) -> None:
        """Loops writing the matrix product ``e`` into ``dest``."""
        coeff, mats = e.as_coeff_matrices()
        while len(mats) > 2:  # a chain: the first product into a buffer, then the next
            mats = [self.temporary(sp.MatMul(mats[0], mats[1])), *mats[2:]]
        a, b = (self.operand(m) for m in mats)
        rows, inner, cols = a.shape[0], a.shape[1], b.shape[1]
        depth = 0
        if self.blas and all(_named_2d(m) for m in (a, b)) and np_rank(dest) == 2:
            size = f"{self.code(rows)} * {self.code(inner)} * {self.code(cols)}"
            self.emit(f"if {size} >= BLAS_MIN:")
            self.emit(f"if {size} >= NUMPY_MIN:", 1)
            self.emit(f"_numpy_matmul({self.array(a)}, {self.array(b)}, {dest.name})", 2)
            self.emit("else:", 1)
            self.emit(f"np.dot({self.array(a)}, {self.array(b)}, {dest.name})", 2)
            if coeff != 1:
                self.emit(f"for _i in range({self.code(rows)}):", 1)
                self.emit(f"for _j in range({self.code(cols)}):", 2)
                self.emit(f"{self.target(dest, I, J)} *= {self.printer.paren(coeff)}", 3)
            self.emit("else:")
            depth = 1
        self.emit(f"for _i in range({self.code(rows)}):", depth)
        self.emit(f"for _j in range({self.code(cols)}):", depth + 1)
        self.emit("_acc = 0.0", depth + 2)
        self.emit(f"for _k in range({self.code(inner)}):", depth + 2)
        self.emit(f"_acc += {self.code(a[I, K])} * {self.code(b[K, J])}", depth + 3)
        value = "_acc" if coeff == 1 else f"{self.printer.paren(coeff)} * _acc"
        self.emit(f"{self.target(dest, I, J)} = {value}", depth + 2)

    def array(self, m) -> str:
        """The code naming a stored array (``W.T`` for a transposed one)."""
        return f"{m.arg.name}.T" if isinstance(m, sp.Transpose) else str(m.name)

    def sum_axis(self, dest, e: SumAxis) -> None:
        """Loops writing the axis sum ``e`` into ``dest``."""
        arg = self.operand(e.arg)
        rows, cols = e.shape
        if e.axis == 0:  # row by row into the destination: the inner loop vectorises
            inner = arg.shape[0]
            self.emit(f"for _j in range({self.code(cols)}):")
            self.emit(f"{self.target(dest, 0, J)} = 0.0", 1)
            self.emit(f"for _k in range({self.code(inner)}):")
            self.emit(f"for _j in range({self.code(cols)}):", 1)
            self.emit(f"{self.target(dest, 0, J)} += {self.code(arg[K, J])}", 2)
            return
        self.emit(f"for _i in range({self.code(rows)}):")
        self.emit(f"for _j in range({self.code(cols)}):", 1)
        self.emit("_acc = 0.0", 2)
        self.emit(f"for _k in range({self.code(arg.shape[1])}):", 2)
        self.emit(f"_acc += {self.code(arg[I, K])}", 3)
        self.emit(f"{self.target(dest, I, J)} = _acc", 2)

    def pick(self, dest, e: Pick) -> None:
        """A loop writing ``x[range(B), y]`` (entry ``y[b]`` of each row ``b``) into ``dest``."""
        arg = self.operand(e.arg)
        label = sp.Symbol(f"{e.onehot.labels}[_j]", integer=True)
        self.emit(f"for _j in range({self.code(e.arg.shape[0])}):")
        self.emit(f"{self.target(dest, 0, J)} = {self.code(arg[J, label])}", 1)

    def scalar(self, name: str, e) -> None:
        """``name = e`` for a scalar form: each sum over all entries is an accumulation."""
        sums = {}
        for node in sp.preorder_traversal(e):
            if isinstance(node, SumAll) and node not in sums:
                self.count += 1
                total = sp.Symbol(f"_s{self.count}")
                arg = self.lift(node.arg)
                rows, cols = arg.shape
                self.emit(f"{total} = 0.0")
                self.emit(f"for _i in range({self.code(rows)}):")
                self.emit(f"for _j in range({self.code(cols)}):", 1)
                self.statement(str(total), "+=", arg[I, J], 2)
                sums[node] = total
        self.emit(f"{name} = {self.code(e.xreplace(sums))}")


def _named_2d(m) -> bool:
    if isinstance(m, sp.Transpose):
        m = m.arg
    return isinstance(m, sp.MatrixSymbol) and not isinstance(m, Vector)
