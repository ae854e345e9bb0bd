"""The matrix-form layer: the one interface between the derivation and its users.

A derivation's results are *matrix forms*: SymPy matrix expressions
(``MatrixSymbol``, ``MatMul``, ``Transpose``, ``HadamardProduct``,
``HadamardPower``, ``MatAdd``, ``OneMatrix``) plus derive's own nodes
(:class:`Map`, :class:`Softmax`, :class:`SumAxis`, :class:`SumAll`,
:class:`Broadcast`, :class:`Vector`, for class labels :class:`OneHot`
and :class:`Pick`, and :class:`Einsum`: a contraction of index expressions,
the form of whatever has no matrix form, such as rank 3 and 4 or layout).
This module names everything a consumer of forms needs, in one place:

* the nodes, and :func:`forward_form` (a forward equation as a form),
  :func:`elementwise_of` (a form back to indices);
* evaluation: :func:`evaluate` with :class:`Functions` (NumPy or exact);
* printing: :func:`text`, :func:`latex`, :func:`numpy_code` and the
  printer classes to extend (``codegen`` subclasses
  :class:`NumpyFormPrinter`), :func:`np_rank`, :func:`as_coeff`, :func:`scale`;
* the function table a form's :class:`Map` nodes refer to: :data:`RULES`,
  :data:`SOFTMAX`, :func:`rule_of`.

``codegen`` (and any other target) imports forms from here, the parsed
network from :mod:`derive.ir`, and the rest from :mod:`derive`; nothing
else of derive's modules.  ``tests/test_architecture.py`` checks it.
"""

from __future__ import annotations

from .matexpr import (
    Argmax,
    Broadcast,
    Einsum,
    Gather,
    Map,
    OneHot,
    Pick,
    ScatterAdd,
    Softmax,
    SumAll,
    SumAxis,
    Vector,
    elementwise_of,
    forward_form,
    matrix_symbol,
)
from .numeric import Functions, evaluate
from .printing import (
    LatexFormPrinter,
    NumpyFormPrinter,
    TextPrinter,
    as_coeff,
    einsum_matmul,
    einsum_names,
    latex,
    np_rank,
    numpy_code,
    size_code,
    text,
)
from .recover import scale
from .rules import RULES, SOFTMAX, Rule, SoftmaxAt, activations, rule_for, rule_of

__all__ = [
    "Broadcast",
    "Einsum",
    "Map",
    "OneHot",
    "Argmax",
    "Gather",
    "ScatterAdd",
    "Pick",
    "Softmax",
    "SumAll",
    "SumAxis",
    "Vector",
    "elementwise_of",
    "forward_form",
    "matrix_symbol",
    "Functions",
    "evaluate",
    "LatexFormPrinter",
    "NumpyFormPrinter",
    "TextPrinter",
    "as_coeff",
    "einsum_matmul",
    "einsum_names",
    "latex",
    "np_rank",
    "numpy_code",
    "size_code",
    "text",
    "scale",
    "RULES",
    "SOFTMAX",
    "Rule",
    "SoftmaxAt",
    "activations",
    "rule_for",
    "rule_of",
]
