"""Printers for matrix forms: Unicode text, LaTeX and NumPy.

Each format is a SymPy printer subclass that dispatches on node type
(``_print_HadamardProduct`` …), the way SymPy's own printers are built.
Function names come from the registry (:mod:`derive.rules`).

Naming conventions: the adjoint of ``u`` is the symbol ``delta_u``, shown
as ``δu`` (text) and ``\\delta_{u}`` (LaTeX); the derivative of a generic
function ``f`` is ``f'``, written ``f_prime`` in NumPy.

NumPy code follows NumPy's own shapes: a 1-D array is a row under
broadcasting, is lifted to 2-D (``v[None, :]``, ``v[:, None]``) only where
a matrix product or a transpose needs it, and :func:`numpy_code` reshapes
a result to the shape of the array it is assigned to.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

import sympy as sp
from sympy.printing.latex import LatexPrinter
from sympy.printing.numpy import NumPyPrinter
from sympy.printing.str import StrPrinter

from .convprint import notation
from .latexnames import latex_name
from .matexpr import (
    Argmax,
    Broadcast,
    Einsum,
    Gather,
    Map,
    Pick,
    ScatterAdd,
    Softmax,
    SumAxis,
    Vector,
)
from .operand import is_operand
from .rules import SOFTMAX, GenericFunction, generic_base, rule_of
from .slide import plain

_SUPERSCRIPT = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")
_MATRIX_NODES = (sp.MatrixSymbol, sp.MatMul, sp.MatAdd, sp.HadamardProduct, sp.Transpose)


def _is_compound(e) -> bool:
    if isinstance(e, Broadcast):
        return _is_compound(e.arg)
    return isinstance(e, (sp.MatAdd, sp.HadamardProduct, sp.MatMul, sp.Add, sp.Mul, SumAxis))


def _display_order(a) -> int:
    """Deltas first, then named arrays, then other values, then function derivatives."""
    names = {str(s.name) for s in a.atoms(sp.MatrixSymbol)}
    if isinstance(a, sp.MatrixSymbol):
        return 0 if str(a.name).startswith("delta_") else 1
    if any(n.startswith("delta_") for n in names):
        return 0
    return 3 if isinstance(a, (Map, Softmax)) else 2


def _split_hadamard(e: sp.HadamardProduct):
    """Numerator and denominator factors of a Hadamard product, in reading order."""
    num, den = [], []
    for a in sorted(e.args, key=_display_order):
        if isinstance(a, sp.HadamardPower) and a.exp.is_negative:
            den.append(a.base if a.exp == -1 else sp.HadamardPower(a.base, -a.exp))
        else:
            num.append(a)
    return num, den


def _function_parts(e):
    """(registry rule or None, display name, params) of an applied function or a Map."""
    func, params = (e.func_class, e.params) if isinstance(e, Map) else (e.func, e.args[1:])
    return rule_of(func), func, params


class _Forms:
    """What the text and LaTeX printers share: structure, with format hooks."""

    hadamard = " ⊙ "
    divide = " ⊘ "
    minus = " − "
    # provided by the SymPy printer and the format class this mixes into
    _print: Callable[..., str]
    function_name: Callable[..., str]
    juxtapose = " "  # between the factors of a matrix product

    def name(self, name: str) -> str:
        """How a quantity's name prints (``delta_u`` → ``δu``, ``\\delta_{u}``)."""
        raise NotImplementedError

    def transpose(self, inner: str) -> str:
        """The transpose of an already printed operand."""
        raise NotImplementedError

    def paren(self, e) -> str:
        """``e`` printed, in parentheses if it is compound or negative."""
        s = self._print(e)
        return (
            f"({s})"
            if _is_compound(e)
            or (hasattr(e, "could_extract_minus_sign") and e.could_extract_minus_sign())
            else s
        )

    def power_base(self, e, *raised) -> str:
        """The base of a power: grouped if it carries an exponent of its own (``(A⁻²)²``)."""
        s = self.paren(e)
        if isinstance(e, (sp.HadamardPower, *raised)) and not _enclosed(s):
            return f"({s})"
        return s

    def _print_MatrixSymbol(self, e):
        return self.name(str(e.name))

    def _print_Transpose(self, e):
        return self.transpose(self.paren(e.arg))

    def _print_MatMul(self, e):
        coeff, mats = e.as_coeff_matrices()
        body = self.juxtapose.join(self.paren(m) for m in mats)
        return self.scaled(coeff, body, len(mats) > 1)

    def scaled(self, coeff, body: str, compound: bool) -> str:
        """``body`` times a scalar coefficient, as a reader writes it (``-x``, ``2 x``, ``x/B``)."""
        if coeff == 1:
            return body
        if coeff == -1:
            return "-" + (f"({body})" if compound else body)
        num, den = sp.fraction(coeff)
        wrapped = f"({body})" if compound else body
        out = (
            wrapped if num == 1 else (("-" if num == -1 else self.coefficient(num) + " ") + wrapped)
        )
        return out if den == 1 else self.fraction(out, self.paren(den))

    def fraction(self, num: str, den: str) -> str:
        """``num`` over ``den``."""
        return f"{num}/{den}"

    def coefficient(self, c) -> str:
        """A scalar coefficient, parenthesised if it is a sum."""
        s = self._print(c)
        return f"({s})" if isinstance(c, sp.Add) else s

    def _print_HadamardProduct(self, e):
        num, den = _split_hadamard(e)
        top = self.hadamard.join(self.paren(a) for a in num) if num else "1"
        if not den:
            return top
        bottom = self.hadamard.join(self.paren(a) for a in den)
        # a ⊘ (b ⊙ c): ⊙ and ⊘ read left to right, so a product below is grouped
        return (
            (f"({top})" if len(num) > 1 else top)
            + self.divide
            + (f"({bottom})" if len(den) > 1 else bottom)
        )

    def _print_MatAdd(self, e):
        out = ""
        for n, a in enumerate(_positive_first(e.args)):
            s = self._print(a)
            if n and s.startswith("-"):
                out += self.minus + s[1:]
            else:
                out += (" + " if n else "") + s
        return out

    def _print_OneMatrix(self, e):
        return "1"

    def _print_Broadcast(self, e):
        return self._print(e.arg)

    def _print_Map(self, e):
        return self.call(e, self._print(e.arg))

    def _print_Function(self, e, exp=None):
        # LaTeX passes the exponent of a power of a function (tanh(c)²) here
        if rule_of(e.func) or isinstance(e, GenericFunction):
            call = self.call(e, self._print(e.args[0]))
            return call if exp is None else f"{call}^{{{exp}}}"
        return super()._print_Function(e) if exp is None else super()._print_Function(e, exp)

    def call(self, e, arg: str) -> str:
        """A registered or generic function applied to ``arg`` (with its params)."""
        rule, func, params = _function_parts(e)
        name = self.function_name(rule, func)
        extra = "".join(", " + self._print(p) for p in params)
        return f"{name}({arg}{extra})"


class TextPrinter(_Forms, StrPrinter):
    """Unicode math: ``δu = δh ⊙ f'(u)``, ``∂L/∂W = xᵀ δu``."""

    def _print_OneHot(self, e):
        return f"onehot({e.labels})"

    def _print_Pick(self, e):
        return f"{self.paren(e.arg)}[range({self._print(e.arg.shape[0])}), {e.onehot.labels}]"

    def _print_Argmax(self, e):
        return f"arg{e.op}({self._print(e.arg)}, axis={e.axis})"

    def _print_Gather(self, e):
        return f"{self.paren(e.arg)}[{e.onehot.labels}]"

    def _print_ScatterAdd(self, e):
        # rows of the argument added into the table's rows ix (np.add.at), a V × n table
        return f"scatter_add({e.onehot.labels}, {self._print(e.arg)})"

    def name(self, name: str) -> str:
        return "δ" + name[len("delta_") :] if name.startswith("delta_") else name

    def _print_Symbol(self, e):
        return self.name(e.name)

    def _print_Indexed(self, e):
        return f"{self.name(str(e.base))}[{', '.join(self._print(i) for i in e.indices)}]"

    def transpose(self, inner):
        return inner + "ᵀ"

    def _print_HadamardPower(self, e):
        exp = str(e.exp)
        sup = exp.translate(_SUPERSCRIPT) if exp.lstrip("-").isdigit() else f"^({exp})"
        return self.power_base(e.base) + sup

    def function_name(self, rule, func) -> str:
        """The Unicode name of a function (``σ``; ``f'`` for generic derivatives)."""
        return rule.text if rule else func.__name__

    def _print_Softmax(self, e):
        return f"softmax({self._print(e.arg)}{', axis=0' if e.axis == 0 else ''})"

    def _print_SumAxis(self, e):
        return f"1ᵀ {self.paren(e.arg)}" if e.axis == 0 else f"{self.paren(e.arg)} 1"

    def _print_SumAll(self, e):
        return f"sum({self._print(e.arg)})"

    def _print_Sum(self, e):
        names = ",".join(self._print(lim[0]) for lim in e.limits)
        return f"Σ_{names} {self.paren(e.function)}"

    def _print_KroneckerDelta(self, e):
        return f"[{self._print(e.args[0])}={self._print(e.args[1])}]"

    def _print_SoftmaxAt(self, e):
        return (
            f"softmax({self._print(e.at(e.kappa))} over {self._print(e.kappa)})"
            f"[{self._print(e.kappa)}={self._print(e.k)}]"
        )

    def _print_Window(self, e):
        return self._print(e.args[0] + e.args[1])

    def _print_Slide(self, e):
        return self._print(plain(e))

    def _print_InRange(self, e):
        x, lo, hi = (self._print(a) for a in e.args)
        return f"[{lo} ≤ {x} < {hi}]"

    def _print_Digit(self, e):
        m, stride, n = (self._print(a) for a in e.args)
        return f"(⌊{m}/{stride}⌋ mod {n})"

    def _print_Einsum(self, e):
        """``[Σ_p δa[i,j,p]*v[i,p,k]]`` (free indices i, j, k in order), or a view of
        one array in NumPy's spelling: ``δc[:, Ha:Ha + Hb]``, ``concatenate([…], axis=1)``."""
        from .contraction import code, plan, readable

        conv = notation(e, lambda n: re.sub(r"^delta_(\w+)", r"δ\1", n))
        if conv is not None:
            return conv
        p = plan(e)
        if p[0] == "concat" or (
            p[0] in ("window", "reshape", "gather", "scatter") and p[1][0] == "arr"
        ):  # C[ix] and scatter_add(δemb, ix, V) too: the one-hot of ix is never shown
            printer = NumpyFormPrinter()
            printer.scatter_add_code = lambda x, ix, n: f"scatter_add({x}, {ix}, {n})"
            view = code(p, printer).replace("np.", "")
            return re.sub(r"\bdelta_(\w+)", r"δ\1", view)
        free, terms = readable(e)
        out = ""
        for n, (f, s) in enumerate(terms):
            sign = f.could_extract_minus_sign()
            body = self._print(-f if sign else f)
            if s:
                last = n == len(terms) - 1
                body = f"Σ_{','.join(map(str, s))} " + (body if last else f"({body})")
            out += (" − " if sign else " + ") + body if n else ("−" if sign else "") + body
        names = "".join(map(str, free))
        # free indices are i, j, k… for the axes in order; other letters are named
        axes = "" if "ijklmn".startswith(names) else f"_({','.join(names)})"
        return "[" + re.sub(r", (?=[^\[\]]*\])", ",", out or "0") + "]" + axes


class LatexFormPrinter(_Forms, LatexPrinter):
    """LaTeX: ``\\delta_{u} = \\delta_{h} \\odot f'(u)``."""

    hadamard = r" \odot "
    divide = r" \oslash "
    minus = " - "
    juxtapose = r" \, "  # a thin space: X W reads as a product, not one name

    def name(self, name: str) -> str:
        return latex_name(name)

    def _print_Symbol(self, e, style="plain"):
        return latex_name(e.name)

    def _print_OneHot(self, e):
        return rf"\operatorname{{onehot}}\left({self.name(e.labels)}\right)"

    def _print_Pick(self, e):
        return (
            rf"\operatorname{{pick}}\left({self._print(e.arg)}, {self.name(e.onehot.labels)}\right)"
        )

    def _print_Argmax(self, e):
        return rf"\operatorname{{arg{e.op}}}\left({self._print(e.arg)}\right)"

    def _print_Gather(self, e):
        return rf"{self.paren(e.arg)}\left[{self.name(e.onehot.labels)}\right]"

    def _print_ScatterAdd(self, e):
        labels = self.name(e.onehot.labels)
        return rf"\operatorname{{scatter\_add}}\left({labels}, {self._print(e.arg)}\right)"

    def transpose(self, inner):
        return inner + r"^{\top}"

    def fraction(self, num, den):
        return rf"\frac{{{num}}}{{{den}}}"

    def _print_HadamardPower(self, e):
        return f"{self.power_base(e.base, sp.Transpose)}^{{{self._print(e.exp)}}}"

    def function_name(self, rule, func) -> str:
        """The LaTeX name of a function (``\\sigma``; ``f'`` for generic derivatives)."""
        if rule:
            return rule.latex
        base, order = generic_base(func)
        return self._print(sp.Symbol(base)) + "'" * order

    def _print_Softmax(self, e):
        return rf"\operatorname{{softmax}}\left({self._print(e.arg)}\right)"

    def _print_SumAxis(self, e):
        return (
            rf"\mathbf{{1}}^{{\top}} \, {self.paren(e.arg)}"
            if e.axis == 0
            else rf"{self.paren(e.arg)} \, \mathbf{{1}}"
        )

    def _print_SumAll(self, e):
        return rf"\operatorname{{sum}}\left({self._print(e.arg)}\right)"

    def _print_SoftmaxAt(self, e):
        arg, k = self._print(e.at(e.kappa)), self._print(e.k)
        return rf"\operatorname{{softmax}}\left({arg}\right)_{{{k}}}"

    def _print_Indexed(self, e):
        # the name in braces: X_{3} indexed is {X_{3}}_{k,l}, never a double subscript
        return (
            "{" + self.name(str(e.base)) + "}_{" + ",".join(self._print(i) for i in e.indices) + "}"
        )

    def _print_KroneckerDelta(self, e):
        # Iverson brackets, as the text form: \delta would read as a backprop delta
        return f"[{self._print(e.args[0])} = {self._print(e.args[1])}]"

    def _print_Sum(self, e):
        names = ",".join(self._print(lim[0]) for lim in e.limits)
        return rf"\sum_{{{names}}} {self.paren(e.function)}"

    def _print_Einsum(self, e):
        """``\\left[\\sum_{p} …\right]_{ijk}``, or ``\\operatorname{concatenate}(…)``."""
        from .contraction import plan, readable

        conv = notation(
            e,
            self.name,
            star=r"\star",
            sub=lambda s: f"_{{{s}}}",
            flip=lambda x: rf"\operatorname{{rot180}}\left({x}\right)",
            pad=r"\operatorname{pad}",
            convt=r"\operatorname{conv}^{\top}",
        )
        if conv is not None:
            return conv
        p = plan(e)
        if p[0] == "concat" and all(x[0] == "arr" for x in p[1]):
            names = ", ".join(self.name(x[1]) for x in p[1])
            return rf"\operatorname{{concatenate}}\left(\left[{names}\right], {p[2]}\right)"
        free, terms = readable(e)
        body = " + ".join(
            (rf"\sum_{{{','.join(map(str, s))}}} " if s else "") + self.paren(f) for f, s in terms
        )
        return rf"\left[{body or '0'}\right]_{{{''.join(map(str, free))}}}"

    def _print_Window(self, e, exp=None):
        return self._print(e.args[0] + e.args[1])

    def _print_Slide(self, e, exp=None):
        return self._print(plain(e))

    def _print_InRange(self, e, exp=None):
        x, lo, hi = (self._print(a) for a in e.args)
        return rf"[{lo} \le {x} < {hi}]"

    def _print_Digit(self, e, exp=None):
        m, stride, n = (self._print(a) for a in e.args)
        return rf"(\lfloor {m} / {stride} \rfloor \bmod {n})"


# ---------------------------------------------------------------------------
# NumPy


@functools.singledispatch
def np_rank(e) -> int:
    """The ``ndim`` of the array the NumPy printer's code for ``e`` evaluates to.

    One function per matrix-form class, registered on this one (``np_rank.register``);
    anything that is not a matrix form is a scalar.
    """
    return 0


@np_rank.register(Argmax)
@np_rank.register(Pick)
@np_rank.register(Vector)
def _rank_vector(e: Vector | Pick) -> int:
    return 1


@np_rank.register(Einsum)
def _rank_einsum(e: Einsum) -> int:
    return len(e.out)


@np_rank.register(Gather)
@np_rank.register(ScatterAdd)
@np_rank.register(sp.MatrixSymbol)
def _rank_symbol(e: sp.MatrixSymbol) -> int:
    return 2


@np_rank.register(sp.Transpose)
def _rank_transpose(e: sp.Transpose) -> int:
    return 1 if isinstance(e.arg, SumAxis) and e.arg.axis == 1 else 2


@np_rank.register(sp.MatMul)
def _rank_matmul(e: sp.MatMul) -> int:
    _, mats = e.as_coeff_matrices()
    if isinstance(mats[0], Broadcast) or _stretched(mats[0]):
        return 2  # printed stretched: np.broadcast_to(row, (r, c)) @ …
    return np_rank(mats[0]) if len(mats) == 1 else (1 if np_rank(mats[0]) == 1 else 2)


@np_rank.register(SumAxis)
def _rank_sum_axis(e: SumAxis) -> int:
    return 1 if e.axis == 0 else 2


@np_rank.register(sp.HadamardProduct)
@np_rank.register(sp.MatAdd)
def _rank_elementwise(e: sp.MatrixExpr) -> int:
    return max(np_rank(a) for a in e.args)


@np_rank.register(Softmax)
def _rank_softmax(e: Softmax) -> int:
    return 2 if _stretched(e.arg) else np_rank(e.args[0])


@np_rank.register(Map)
def _rank_map(e: Map) -> int:
    return np_rank(e.arg)


@np_rank.register(sp.HadamardPower)
@np_rank.register(Broadcast)
def _rank_of_operand(e: sp.MatrixExpr) -> int:
    return np_rank(e.args[0])


@np_rank.register(sp.MatrixExpr)
def _rank_matrix(e: sp.MatrixExpr) -> int:
    """Other element-wise nodes: the rank of their operands."""
    return max((np_rank(a) for a in e.args if isinstance(a, sp.MatrixExpr)), default=2)


class NumpyFormPrinter(NumPyPrinter):
    """NumPy expressions needing only ``np``, the named arrays and the dims in scope."""

    def __init__(self, settings=None):
        super().__init__({"fully_qualified_modules": True, **(settings or {})})

    def _module_format(self, fqn, register=True):
        return "np." + fqn[len("numpy.") :] if fqn.startswith("numpy.") else fqn

    def paren(self, e) -> str:
        """``e`` as an atom: safe as an operand of any operator (parenthesised if needed)."""
        return self.wrap(e, self._print(e))

    def wrap(self, e, s: str) -> str:
        """The printed ``s`` of ``e``, parenthesised unless ``e`` prints as an atom."""
        simple = (
            isinstance(e, (sp.MatrixSymbol, sp.Symbol, Map, Softmax, sp.Indexed))
            or (isinstance(e, sp.Integer) and e >= 0)
            or (isinstance(e, sp.Transpose) and isinstance(e.arg, sp.MatrixSymbol))
            or is_operand(s)
        )
        return s if simple else f"({s})"

    def _print_MatrixSymbol(self, e):
        return str(e.name)

    def _print_Symbol(self, e):
        return e.name

    def _print_Einsum(self, e):
        """Views, element-wise blocks, sums over an axis, then one einsum or batched ``@``."""
        from .contraction import code, plan

        return code(plan(e), self)

    def softmax_code(self, arg: str, axis: int) -> str:
        """Softmax of printed code along ``axis`` (the rule's template)."""
        atom = arg if is_operand(arg) else f"({arg})"
        return fill(SOFTMAX.numpy, [arg, str(axis)], [atom, str(axis)])

    def _print_OneHot(self, e):
        return f"np.eye({self._print(e.shape[1])})[{e.labels}]"

    def _print_Pick(self, e):
        labels = e.onehot.labels
        return f"{self.paren(e.arg)}[np.arange(len({labels})), {labels}]"

    def _print_Argmax(self, e):
        return f"np.arg{e.op}({self._print(e.arg)}, axis={e.axis})"

    def _print_Gather(self, e):
        return f"{self.paren(e.arg)}[{e.onehot.labels}]"

    def scatter_add_code(self, x: str, ix: str, n: str) -> str:
        """Rows ``x[b…]`` added into rows ``ix[b…]`` of an ``n``-row zero table: one
        expression (``np.add.at`` returns None), ``ix`` of any rank."""
        zeros = f"np.zeros(({n}, *_x.shape[np.ndim({ix}) :]))"
        return f"(_x := {x}, _acc := {zeros}, np.add.at(_acc, {ix}, _x))[1]"

    def _print_ScatterAdd(self, e):
        """``np.add.at`` into a zero table, as one expression (it returns None)."""
        rows, cols = (self._print(d) for d in e.shape)
        arg = self._print(e.arg)
        return f"(_acc := np.zeros(({rows}, {cols})), np.add.at(_acc, {e.onehot.labels}, {arg}))[0]"

    def _print_Transpose(self, e):
        if isinstance(e.arg, SumAxis) and e.arg.axis == 1:
            return f"{self.paren(e.arg.arg)}.sum(axis=1)"
        if np_rank(e.arg) == 1:
            return f"{self.paren(e.arg)}[:, None]"
        return f"{self.paren(e.arg)}.T"

    def _print_MatMul(self, e):
        coeff, mats = e.as_coeff_matrices()
        parts = []
        for n, m in enumerate(mats):
            if isinstance(m, Broadcast) and len(mats) == 1:  # c·x: NumPy broadcasts x itself
                s = self.paren(m.arg)
            elif isinstance(m, Broadcast) or _stretched(m):  # a matrix product needs it whole
                s = (
                    f"np.broadcast_to({self._print(m)}, ({self._print(m.shape[0])}, "
                    f"{self._print(m.shape[1])}))"
                )
            else:
                s = self.paren(m)
                if n and np_rank(m) == 1:
                    s += "[None, :]"
            parts.append(s)
        body = " @ ".join(parts)
        if coeff == 1:
            return body
        if len(mats) > 1:
            body = f"({body})"
        num, den = sp.fraction(coeff)
        if num == -1:
            body = "-" + body
        elif num != 1:
            body = f"{self.paren(num)} * {body}"
        return body if den == 1 else f"{body} / {self.paren(den)}"

    def _print_Pow(self, e, rational=False):
        if e.exp == -1:
            return f"1 / {self.paren(e.base)}"
        if e.exp == sp.S.Half:
            return f"np.sqrt({self._print(e.base)})"
        if e.exp == -sp.S.Half:
            return f"1 / np.sqrt({self._print(e.base)})"
        return self._power(e.base, e.exp)

    def _print_Mul(self, e):
        coeff, rest = e.as_coeff_Mul()
        if coeff == -1:
            return "-" + self.paren(rest)
        num, den = sp.fraction(e)
        if den == 1:
            return " * ".join(self.paren(a) for a in sp.Mul.make_args(num))
        top = self._print(num) if not isinstance(num, sp.Add) else f"({self._print(num)})"
        return f"{top} / {self.paren(den)}"

    def _print_HadamardProduct(self, e):
        num, den = _split_hadamard(e)
        top = " * ".join(self.paren(a) for a in num) if num else "1"
        if not den:
            return top
        return (
            top
            + " / "
            + (
                self.paren(den[0])
                if len(den) == 1
                else "(" + " * ".join(self.paren(a) for a in den) + ")"
            )
        )

    def _print_HadamardPower(self, e):
        if e.exp == -1:
            return f"1 / {self.paren(e.base)}"
        return self._power(e.base, e.exp)

    def _power(self, base, exp) -> str:
        """``a**2`` for a name and a literal, ``(a + b) ** 2`` otherwise (as ruff formats).

        The exponent is an atom: ``x ** (-1/2)``, never ``x ** -1/2`` (which
        Python reads as ``(x ** -1) / 2``).
        """
        simple = isinstance(base, (sp.Symbol, sp.MatrixSymbol)) and exp.is_Integer and exp >= 0
        sep = "**" if simple else " ** "
        power = self._print(exp) if exp.is_Integer else self.paren(exp)
        return f"{self.paren(base)}{sep}{power}"

    def _print_MatAdd(self, e):
        out = ""
        for n, a in enumerate(_positive_first(e.args)):
            coeff, rest = as_coeff(a)
            s = self._print(coeff) if isinstance(rest, sp.OneMatrix) else self._print(a)
            if n and s.startswith("-"):
                out += " - " + s[1:]
            else:
                out += (" + " if n else "") + s
        return out

    def _print_OneMatrix(self, e):
        return f"np.ones(({self._print(e.shape[0])}, {self._print(e.shape[1])}))"

    def _print_Broadcast(self, e):
        return self._print(e.arg)

    def _print_Map(self, e):
        return self.call(e, self._print(e.arg))

    def _print_Function(self, e):
        if rule_of(e.func) or isinstance(e, GenericFunction):
            return self.call(e, self._print(e.args[0]))
        return super()._print_Function(e)

    def call(self, e, arg: str) -> str:
        """A function applied to ``arg`` (atomic): the rule's template, or ``f_prime(arg)``."""
        rule, func, params = _function_parts(e)
        if rule:
            atom = self.wrap(e.arg if isinstance(e, Map) else e.args[0], arg)
            return fill(
                rule.numpy,
                [arg, *[self._print(p) for p in params]],
                [atom, *[self.paren(p) for p in params]],
            )
        base, order = generic_base(func)
        suffix = "" if order == 0 else "_prime" if order == 1 else f"_prime{order}"
        return f"{base}{suffix}({arg})"

    def full(self, e) -> str:
        """``e`` as an atom holding its whole 2-D shape (a stretched row or column made full).

        Element-wise operators broadcast by themselves; softmax and sums
        along an axis need the array they mean, not its unstretched row.
        """
        if _stretched(e):
            rows, cols = (self._print(d) for d in e.shape)
            return f"np.broadcast_to({self._print(e)}, ({rows}, {cols}))"
        return self.paren(e)

    def _print_Softmax(self, e):
        axis = str(-1 if np_rank(e.arg) == 1 and not _stretched(e.arg) else e.axis)
        atom = self.full(e.arg)
        plain = atom if _stretched(e.arg) else self._print(e.arg)
        return fill(SOFTMAX.numpy, [plain, axis], [atom, axis])

    def _print_SumAxis(self, e):
        arg = self.full(e.arg)
        return f"{arg}.sum(axis=0)" if e.axis == 0 else f"{arg}.sum(axis=1, keepdims=True)"

    def _print_SumAll(self, e):
        if _stretched(e.arg):
            return f"np.sum({self.full(e.arg)})"
        return f"np.sum({self._print(e.arg)})"


def _enclosed(code: str) -> bool:
    """Whether the whole of ``code`` is one parenthesised group: ``(a + b)``, not ``(a)²``."""
    if not code.startswith("("):
        return False
    depth = 0
    for n, ch in enumerate(code):
        depth += (ch == "(") - (ch == ")")
        if depth == 0:
            return n == len(code) - 1
    return False


_SLOT = re.compile(r"\{(\d+)\}")


def fill(template: str, plain: list[str], atoms: list[str]) -> str:
    """A rule's NumPy template with its arguments in, each parenthesised where it must be.

    A placeholder that is a whole argument of a call (``np.tanh({0})``,
    ``np.maximum({0}, 0)``) takes the argument as printed; anywhere else
    (``-{0}``, ``{1} * {0}``, ``({0} > 0)``) it takes the argument as an
    atom, so ``sigmoid(z/2 - 1)`` prints ``-(z / 2 - 1)``, not ``-z / 2 - 1``.
    """

    def one(m: re.Match) -> str:
        n = int(m.group(1))
        before = template[: m.start()].rstrip(" ")
        after = template[m.end() :].lstrip(" ")
        whole = before.endswith(("(", ",")) and after.startswith((")", ","))
        # ``({0} > 0)``: the parenthesis is a group, not a call
        grouped = before.endswith("(") and (before[:-1].endswith((" ", "(")) or before == "(")
        return plain[n] if whole and not grouped else atoms[n]

    out = _SLOT.sub(one, template)
    if _COMPARISON.fullmatch(template.strip()):
        # a step function's template is a comparison: a bool array, which
        # NumPy refuses to negate and computes on in float16; a number it is
        out = f"np.where({out.strip()[1:-1]}, 1.0, 0.0)"
    return out


_COMPARISON = re.compile(r"\(([^(),]*?)\s*(>=|<=|>|<|==|!=)\s*([^(),]*)\)")


def _positive_first(args):
    """Terms without a leading minus first: ``y − t`` rather than ``−t + y``."""
    return sorted(args, key=lambda a: as_coeff(a)[0].could_extract_minus_sign())


def as_coeff(e):
    """(scalar, matrix) of ``c·M``; (1, e) for anything else."""
    if isinstance(e, sp.MatMul):
        coeff, mats = e.as_coeff_matrices()
        if len(mats) == 1:
            return coeff, mats[0]
    return sp.Integer(1), e


# ---------------------------------------------------------------------------
# entry points


def text(e) -> str:
    """``e`` as Unicode math (``xᵀ δu``)."""
    return TextPrinter().doprint(e)


def latex(e) -> str:
    """``e`` as LaTeX."""
    return LatexFormPrinter().doprint(e)


def numpy_code(e, shape: tuple, printer: NumpyFormPrinter | None = None) -> str:
    """NumPy code for ``e``, shaped like an array of NumPy shape ``shape``."""
    printer = printer or NumpyFormPrinter()
    code = printer.doprint(e)
    rank = np_rank(e)
    dims = ", ".join(printer.doprint(d) for d in shape)
    if len(shape) == 1 and rank == 2:
        return f"({code}).reshape(-1)"
    if len(shape) > rank or (len(shape) == 2 and _needs_broadcast(e)):
        return f"np.broadcast_to({code}, ({dims}{',' if len(shape) == 1 else ''}))"
    return code


def einsum_names(e: Einsum) -> set[str]:
    """The names an einsum form's NumPy code reads: arrays, consts and dims."""
    import ast

    from .contraction import code, plan

    tree = ast.parse(code(plan(e), NumpyFormPrinter()), mode="eval")
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}


def size_code(d, printer: NumpyFormPrinter | None = None) -> str:
    """A size (dim arithmetic) as integer code: ``N // 2`` for an exact division."""
    from .contraction import size_text

    return size_text(d, printer or NumpyFormPrinter())


def einsum_matmul(e: Einsum, printer: NumpyFormPrinter | None = None) -> tuple[str, str] | None:
    """``(A, B)`` when an einsum form's code is the one product ``A @ B`` (batched or of
    flat views): code may then write it into a buffer with ``np.matmul(A, B, out=…)``."""
    from .contraction import matmul_parts, plan

    parts = matmul_parts(plan(e), printer or NumpyFormPrinter())
    if parts is None or parts[2] is not None:
        return None
    return parts[0], parts[1]


def _stretched(e) -> bool:
    """A matrix form whose NumPy code is a row or column standing for a taller matrix."""
    return isinstance(e, sp.MatrixExpr) and e.shape[0] != 1 and _needs_broadcast(e)


@functools.singledispatch
def _needs_broadcast(e) -> bool:
    """True when no operand carries the full 2-D shape (all are stretched rows or columns).

    One function per matrix-form class, registered on this one; other forms are full.
    """
    return False


@_needs_broadcast.register(Einsum)
def _einsum_full(e: Einsum) -> bool:
    return False  # its code broadcasts to the full shape itself


@_needs_broadcast.register(Broadcast)
def _broadcast_stretched(e: Broadcast) -> bool:
    return True


@_needs_broadcast.register(sp.Transpose)
@_needs_broadcast.register(Map)
def _operand_stretched(e: sp.MatrixExpr) -> bool:
    return _needs_broadcast(e.arg)


@_needs_broadcast.register(sp.HadamardPower)
def _base_stretched(e: sp.HadamardPower) -> bool:
    return _needs_broadcast(e.args[0])


@_needs_broadcast.register(sp.HadamardProduct)
@_needs_broadcast.register(sp.MatAdd)
def _all_stretched(e: sp.MatrixExpr) -> bool:
    return all(_needs_broadcast(a) or isinstance(as_coeff(a)[1], sp.OneMatrix) for a in e.args)


@_needs_broadcast.register(sp.MatMul)
def _product_stretched(e: sp.MatMul) -> bool:
    _, mats = e.as_coeff_matrices()
    return len(mats) == 1 and _needs_broadcast(mats[0])


def fmt_dims(shape: tuple) -> str:
    """A shape as ``[B×n]`` (``[scalar]`` for ``()``)."""
    return "[" + "×".join(str(d) for d in shape) + "]" if shape else "[scalar]"


def step_text(step) -> str:
    """``∂L/∂W = xᵀ δu`` or ``δu = δh ⊙ relu'(u)``: a step in Unicode."""
    lhs = f"∂{step_loss(step)}/∂{step.name}" if step.kind == "gradient" else f"δ{step.name}"
    return f"{lhs} = {text(step.matrix)}"


def step_latex(step) -> str:
    """A step in LaTeX, with ``\\frac{\\partial L}{\\partial W}`` for gradients."""
    name = LatexFormPrinter().name(step.name)
    if step.kind == "gradient":
        lhs = rf"\frac{{\partial {LatexFormPrinter().name(step_loss(step))}}}{{\partial {name}}}"
    else:
        lhs = LatexFormPrinter().name(step.symbol)
    return f"{lhs} = {latex(step.matrix)}"


def step_loss(step) -> str:
    """The name of the loss a step differentiates (``L`` by default)."""
    return getattr(step, "loss", "L")


__all__ = [
    "text",
    "latex",
    "numpy_code",
    "einsum_names",
    "einsum_matmul",
    "size_code",
    "TextPrinter",
    "LatexFormPrinter",
    "NumpyFormPrinter",
]
