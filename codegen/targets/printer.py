"""Printers of matrix forms for array libraries other than NumPy: PyTorch and JAX.

:class:`ArrayPrinter` extends derive's :class:`~derive.printing.NumpyFormPrinter`
(dispatch by node type, as SymPy's printers are built): every node whose
NumPy spelling names a library function (``np.broadcast_to``, ``np.ones``,
``np.sum``) prints it from the printer's ``lib`` instead, element-wise
functions call the generated module's own kernels (``sigmoid(z1)``,
``relu_prime(u)``, as the NumPy target's :class:`~codegen.printer.CodePrinter`
does), and :class:`~codegen.printer.LogSoftmax` prints as ``log_softmax``.
PyTorch tensors and JAX arrays share NumPy's operators, ``.T``,
``.sum(axis=…, keepdims=…)``, ``[None, :]`` and ``.reshape(-1)``, so those
print as they do for NumPy.
"""

from __future__ import annotations

import sympy as sp

from derive.forms import Broadcast, Map, NumpyFormPrinter, as_coeff, np_rank

from ..printer import LogSoftmax, kernel_call, scattered_sum


class ArrayPrinter(NumpyFormPrinter):
    """NumPy-like code for the array library ``lib`` (a module name in scope)."""

    lib = "np"

    def paren(self, e) -> str:
        if isinstance(e, LogSoftmax):  # a call: no parentheses needed
            return self._print(e)
        return super().paren(e)

    def call(self, e, arg: str) -> str:
        """A call of the module's own kernel, as the NumPy target prints it."""
        return kernel_call(self, e, arg)

    def _print_Softmax(self, e):
        axis = -1 if np_rank(e.arg) == 1 else e.axis
        return f"softmax({self._print(e.arg)}, {axis})"

    def _print_LogSoftmax(self, e):
        axis = -1 if np_rank(e.arg) == 1 else e.axis
        return f"log_softmax({self._print(e.arg)}, {axis})"

    def _print_Float(self, e):
        return repr(float(e))

    def _print_OneHot(self, e):
        """The one-hot matrix, only where a form needs it whole (not ``p − onehot(y)``)."""
        return f"onehot({e.labels}, {self._print(e.shape[1])}, DTYPE)"

    def _print_Pick(self, e):
        labels = e.onehot.labels
        return f"{self.paren(e.arg)}[{self.lib}.arange({labels}.shape[0]), {labels}]"

    def _print_MatAdd(self, e):
        """``p − onehot(y)`` as ``add_labels(p, y, -1)``: a scatter, no one-hot matrix."""
        return scattered_sum(self, e) or super()._print_MatAdd(e)

    def _print_OneMatrix(self, e):
        rows, cols = (self._print(d) for d in e.shape)
        return f"{self.lib}.ones(({rows}, {cols}), dtype=DTYPE)"

    def _print_SumAll(self, e):
        return f"{self.lib}.sum({self._print(e.arg)})"

    def broadcast(self, code: str, dims: list[str]) -> str:
        """Code stretching ``code`` to the shape ``dims``."""
        inner = ", ".join(dims) + ("," if len(dims) == 1 else "")
        return f"{self.lib}.broadcast_to({code}, ({inner}))"

    def _print_MatMul(self, e):
        coeff, mats = e.as_coeff_matrices()
        if not any(isinstance(m, Broadcast) for m in mats):
            return super()._print_MatMul(e)
        # a stretched operand of a product: broadcast it explicitly, then as NumPy prints
        parts = []
        for n, m in enumerate(mats):
            if isinstance(m, Broadcast):
                s = self.broadcast(self._print(m.arg), [self._print(d) for d in m.shape])
            else:
                s = self.paren(m) + ("[None, :]" if n and np_rank(m) == 1 else "")
            parts.append(s)
        body = " @ ".join(parts)
        return body if coeff == 1 else f"{self.paren(coeff)} * ({body})"


class TorchPrinter(ArrayPrinter):
    lib = "torch"


class JaxPrinter(ArrayPrinter):
    """JAX code; a product whose left operand is a transposed matrix (``Xᵀ δz``, the
    weight gradients) calls the ``t_matmul`` kernel, which may store that operand
    row by row first: XLA folds ``X.T @ d`` into a dot contracting both operands'
    first axes, and its CPU backend runs such a dot on a slower GEMM (see the kernel).
    """

    lib = "jnp"

    def __init__(self, settings=None):
        super().__init__(settings)
        self.extra_kernels: set[str] = set()

    def _print_MatMul(self, e):
        coeff, mats = e.as_coeff_matrices()
        first = mats[0] if mats else None
        if (
            len(mats) < 2
            or not isinstance(first, sp.Transpose)
            or np_rank(first.arg) != 2
            or any(isinstance(m, Broadcast) for m in mats)
        ):
            return super()._print_MatMul(e)
        self.extra_kernels.add("t_matmul")
        if len(mats) > 2:
            rest = super()._print_MatMul(sp.MatMul(*mats[1:]))
        else:
            rest = self._print(mats[1]) + ("[None, :]" if np_rank(mats[1]) == 1 else "")
        return self.scaled(coeff, f"t_matmul({self._print(first.arg)}, {rest})")

    def scaled(self, coeff, body: str) -> str:
        """``coeff · body`` as the NumPy printer writes a scaled product."""
        if coeff == 1:
            return body
        num, den = sp.fraction(coeff)
        body = f"({body})"
        if num == -1:
            body = "-" + body
        elif num != 1:
            body = f"{self.paren(num)} * {body}"
        return body if den == 1 else f"{body} / {self.paren(den)}"


def array_code(e, shape: tuple, printer: ArrayPrinter) -> str:
    """Code for ``e``, shaped like an array of NumPy shape ``shape`` (as ``numpy_code``)."""
    code = printer.doprint(e)
    rank = np_rank(e)
    if len(shape) == 1 and rank == 2:
        return f"({code}).reshape(-1)"
    if len(shape) > rank or (len(shape) == 2 and _stretched(e)):
        return printer.broadcast(code, [printer.doprint(d) for d in shape])
    return code


def _stretched(e) -> bool:
    """True when no operand carries the full 2-D shape (all are stretched rows or columns)."""
    if isinstance(e, Broadcast):
        return True
    if isinstance(e, (sp.HadamardProduct, sp.MatAdd)):
        return all(_stretched(a) or isinstance(as_coeff(a)[1], sp.OneMatrix) for a in e.args)
    if isinstance(e, sp.MatMul):
        _, mats = e.as_coeff_matrices()
        return len(mats) == 1 and _stretched(mats[0])
    if isinstance(e, (Map, sp.HadamardPower)):
        return _stretched(e.args[0] if isinstance(e, sp.HadamardPower) else e.arg)
    return False
