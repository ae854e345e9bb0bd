"""The NumPy printer of generated modules, and the stable rewrites it prints.

:class:`CodePrinter` extends derive's NumPy printer: functions call the
module's own stable kernels (``sigmoid(z1)``, ``softmax(z3, axis=1)``)
instead of the inline ``np`` forms, and :func:`stabilise` rewrites forward
forms into their numerically safe equivalents before printing:

* ``log(p)`` with ``p = softmax(z)`` → ``log_softmax(z)``;
* ``log(y)`` with ``y = σ(z)`` → ``−softplus(−z)``;
* ``log(1 − y)`` with ``y = σ(z)`` → ``−softplus(z)``;
* ``t ⊙ log(y) + (1 − t) ⊙ log(1 − y)`` with ``y = σ(z)`` → ``t ⊙ z − softplus(z)``
  (binary cross-entropy from the logits: one softplus instead of two; its sum
  prints as a dot product minus one sum).

Each is an identity (tests prove them with SymPy); together they make
cross-entropy finite where the probabilities round to 0 or 1.
"""

from __future__ import annotations

import ast

import sympy as sp
from sympy.matrices.expressions.matexpr import MatrixExpr

from derive.forms import (
    RULES,
    Broadcast,
    Einsum,
    Gather,
    Map,
    NumpyFormPrinter,
    OneHot,
    Pick,
    ScatterAdd,
    Softmax,
    SoftmaxAt,
    SumAll,
    as_coeff,
    einsum_names,
    np_rank,
    rule_for,
    rule_of,
)


class LogSoftmax(MatrixExpr):
    """``log(softmax(X, axis))`` computed as ``X − logsumexp(X)``."""

    def __new__(cls, X, axis: int):
        return sp.Basic.__new__(cls, X, sp.Integer(axis))

    arg = property(lambda self: self.args[0])
    axis = property(lambda self: int(self.args[1]))
    shape = property(lambda self: self.args[0].shape)


@np_rank.register(LogSoftmax)
def _rank_log_softmax(e: LogSoftmax) -> int:
    return np_rank(e.arg)


def _map(name: str, X) -> Map:
    z = sp.Dummy("z")
    return Map(sp.Lambda(z, RULES[name].cls(z)), X)


def _is(e, name: str) -> bool:
    return isinstance(e, Map) and rule_of(e.func_class) is RULES[name]


def stabilise(form, definitions: dict, record: list | None = None, einsums: bool = False):
    """Rewrite logs of softmax and sigmoid outputs into their stable forms.

    ``definitions`` maps a forward quantity's name to its matrix form; each
    rewrite made is appended to ``record`` as (the log, its stable form).
    ``einsums``: also the log of a softmax of any rank in einsum form (printed by
    derive's printers; the workspace emitter of :mod:`codegen.emit` is rank 2 only).
    """
    made = [] if record is None else record
    merged: set = set()  # the merged cross-entropies: their sums split in two

    def cross_entropy(e):
        stable = _cross_entropy(e, definitions)
        if stable is not e:
            made.append((e, stable))
            merged.add(stable)
        return stable

    def log(e):
        stable = _stable_log(e, definitions)
        if stable is not e:
            made.append((e, stable))
        return stable

    def einsum_log(e):
        stable = _einsum_log_softmax(e, definitions)
        if stable is not None:
            made.append((e, stable))
            return stable
        return e

    form = form.replace(lambda e: isinstance(e, sp.MatAdd), cross_entropy)
    form = form.replace(lambda e: isinstance(e, SumAll) and e.arg in merged, _split_sum)
    if einsums:
        form = form.replace(lambda e: isinstance(e, Einsum), einsum_log)
    return form.replace(lambda e: _is(e, "log"), log)


def _einsum_log_softmax(e: Einsum, definitions: dict) -> LogSoftmax | None:
    """``log(p)`` of any rank, ``p`` a softmax over one axis, as ``log_softmax``.

    The einsum form of an element-wise ``log`` (rank 3 and up have no matrix
    form) whose argument is a softmax entry at the same indices, written inline
    or through a quantity defined as one.  None when the form is anything else.
    """
    if len(e.terms) != 1 or e.terms[0][1] or not _is_log_call(e.terms[0][0]):
        return None
    arg = e.terms[0][0].args[0]
    out, shapes = e.out, e.shapes
    if isinstance(arg, sp.Indexed) and tuple(arg.indices) == out:
        inner = definitions.get(str(arg.base))
        if not isinstance(inner, Einsum) or len(inner.terms) != 1 or inner.terms[0][1]:
            return None
        arg, out, shapes = inner.terms[0][0], inner.out, inner.shapes
    if not isinstance(arg, SoftmaxAt) or arg.k not in out:
        return None
    logits = Einsum(out, [(arg.at(arg.k), ())], sorted(shapes.items()))
    return LogSoftmax(logits, out.index(arg.k))


def _is_log_call(f) -> bool:
    return isinstance(f, sp.Function) and rule_of(f.func) is RULES["log"]


def _source(e, definitions: dict):
    """The form a named quantity stands for (``e`` itself when it is not a name)."""
    if isinstance(e, sp.MatrixSymbol):
        return definitions.get(str(e.name))
    return e


def _stable_log(e, definitions: dict):
    """The stable form of ``log(arg)`` (``e`` itself when none applies)."""
    arg = e.arg
    inner = _source(arg, definitions)
    if isinstance(inner, Softmax):
        return LogSoftmax(inner.arg, inner.axis)
    if inner is not None and _is(inner, "sigmoid"):
        return sp.MatMul(-1, _map("softplus", sp.MatMul(-1, inner.arg)))
    t = _one_minus(arg)  # log(1 − σ(z))
    inner = _source(t, definitions) if t is not None else None
    if inner is not None and _is(inner, "sigmoid"):
        return sp.MatMul(-1, _map("softplus", inner.arg))
    return e


def _sigmoid_logit(log, definitions: dict):
    """("y", z) for log(σ(z)), ("1-y", z) for log(1 − σ(z)), else None."""
    stable = _stable_log(log, definitions)
    if (
        not isinstance(stable, sp.MatMul)
        or stable.args[0] != -1
        or not _is(stable.args[-1], "softplus")
    ):
        return None
    arg = stable.args[-1].arg
    if isinstance(arg, sp.MatMul) and arg.args[0] == -1 and len(arg.args) == 2:
        return ("y", arg.args[1])
    return ("1-y", arg)


def _cross_entropy(e: sp.MatAdd, definitions: dict):
    """t ⊙ log(σ(z)) + (1 − t) ⊙ log(1 − σ(z)) in a sum as t ⊙ z − softplus(z): one
    softplus (``e`` itself when the sum holds no such pair)."""
    found = {}
    for term in e.args:
        if not isinstance(term, sp.HadamardProduct) or len(term.args) != 2:
            continue
        logs = [a for a in term.args if _is(a, "log")]
        side = _sigmoid_logit(logs[0], definitions) if len(logs) == 1 else None
        if side is None:
            continue
        weight = next(a for a in term.args if a is not logs[0])
        weight = _one_minus(weight) if side[0] == "1-y" else weight
        if weight is not None:
            found[side[0]] = (term, side[1], weight)
    if set(found) != {"y", "1-y"} or len({(z, t) for _, z, t in found.values()}) != 1:
        return e
    _, z, t = found["y"]
    rest = [a for a in e.args if a not in (found["y"][0], found["1-y"][0])]
    return sp.MatAdd(*rest, sp.HadamardProduct(t, z), sp.MatMul(-1, _map("softplus", z)))


def _split_sum(e: SumAll):
    """Σ(t ⊙ z − softplus(z)) as Σ t ⊙ z − Σ softplus(z): a dot product and one sum."""
    terms = [as_coeff(a) for a in e.arg.args]
    return sp.Add(*[c * SumAll(body) for c, body in terms])


def _one_minus(e):
    """``t`` when ``e`` is ``1 − t`` (a OneMatrix minus an array), else None."""
    if not isinstance(e, sp.MatAdd) or len(e.args) != 2:
        return None
    ones = [a for a in e.args if isinstance(a, sp.OneMatrix)]
    rest = [a for a in e.args if not isinstance(a, sp.OneMatrix)]
    if len(ones) != 1 or not isinstance(rest[0], sp.MatMul):
        return None
    coeff, mats = rest[0].as_coeff_matrices()
    return mats[0] if coeff == -1 and len(mats) == 1 else None


def rewrite_notes(form, definitions: dict) -> list[str]:
    """One comment per stable rewrite :func:`stabilise` makes in ``form``.

    ``log(y_hat)`` with ``y_hat = softmax(z3)`` reads ``log(y_hat) as
    log_softmax(z3): stable where y_hat rounds to 0``.
    """
    from derive.forms import text

    def show(e) -> str:
        if isinstance(e, LogSoftmax):
            return f"log_softmax({text(e.arg)})"
        return text(e)

    made: list = []
    stabilise(form, definitions, made)
    notes = []
    for log, stable in dict.fromkeys(made):
        if isinstance(log, Einsum):  # log(p) of rank 3 and up, p a softmax
            notes.append(f"  {text(log)} as {show(stable)}: finite where the softmax rounds to 0")
            continue
        if not _is(log, "log"):  # the binary cross-entropy of a sigmoid, merged
            notes.append(f"  the cross-entropy as {show(stable)}: finite for every logit")
            continue
        notes.append(f"  {text(log)} as {show(stable)}: finite where {text(log.arg)} rounds to 0")
    return notes


def kernel_call(printer: NumpyFormPrinter, e, arg: str) -> str:
    """A call of the generated module's own stable kernel (``sigmoid(z1)``), every target's."""
    rule = rule_of(e.func_class if isinstance(e, Map) else e.func)
    if rule is None:
        raise ValueError(f"unbound function {e}: bind it with --bind NAME=FUNCTION")
    params = e.params if isinstance(e, Map) else e.args[1:]
    extra = "".join(", " + printer._print(p) for p in params)
    return f"{rule.name}({arg}{extra})"


def vdot_pair(arg) -> tuple | None:
    """The two factors of ``sum(arg)`` printed as ``np.vdot(a, b)``, or None.

    A square or a product of two same-shaped arrays; for a square both factors
    are its base, so a computed base (``y − t``) is printed twice and
    :func:`printed_twice` names it for the caller to bind first.
    """
    pair = None
    if isinstance(arg, sp.HadamardPower) and arg.exp == 2:
        pair = (arg.base, arg.base)
    elif isinstance(arg, sp.HadamardProduct) and len(arg.args) == 2:
        pair = arg.args
    if pair and all(
        not isinstance(a, (Broadcast, sp.HadamardPower)) and np_rank(a) == np_rank(arg)
        for a in pair
    ):
        return pair
    return None


def printed_twice(form) -> list:
    """Computed sub-forms that :class:`CodePrinter` prints twice in ``form``'s code.

    The base of a square summed as ``np.vdot(y - t, y - t)``: bound to a
    local first, it is computed once.  Named arrays and transposes (views)
    cost nothing to repeat and are not listed.
    """
    out = []
    for node in sp.preorder_traversal(form):
        pair = vdot_pair(node.arg) if isinstance(node, SumAll) else None
        if pair and pair[0] == pair[1] and not isinstance(pair[0], _VIEWS) and pair[0] not in out:
            out.append(pair[0])
    return out


_VIEWS = (sp.MatrixSymbol, sp.Transpose)


class CodePrinter(NumpyFormPrinter):
    """Prints forms for generated modules: kernel calls, no inline ``np`` math."""

    def call(self, e, arg: str) -> str:
        """A call of the module's own stable kernel (``sigmoid(z1)``)."""
        return kernel_call(self, e, arg)

    def _print_Softmax(self, e):
        axis = -1 if np_rank(e.arg) == 1 else e.axis
        return f"softmax({self._print(e.arg)}, axis={axis})"

    def softmax_code(self, arg: str, axis: int) -> str:
        """Softmax along an axis in an einsum form: the module's kernel."""
        return f"softmax({arg}, axis={axis})"

    def _print_LogSoftmax(self, e):
        axis = -1 if np_rank(e.arg) == 1 else e.axis
        return f"log_softmax({self._print(e.arg)}, axis={axis})"

    def _print_SumAll(self, e):
        """Σ of a square or of a product of two same-shaped arrays: one ``np.vdot`` call."""
        pair = vdot_pair(e.arg)
        if pair:
            return f"np.vdot({self._print(pair[0])}, {self._print(pair[1])})"
        return super()._print_SumAll(e)

    def _print_Float(self, e):
        return repr(float(e))

    def _print_OneHot(self, e):
        return f"onehot({e.labels}, {self._print(e.shape[1])})"

    def _print_Column(self, e):
        return f"{self.paren(e.arg)}[:, 0]"

    def _print_Rational(self, e):
        return f"{e.p} / {e.q}"  # spaced as ruff formats generated code (SymPy prints 1/2)

    def scatter_add_code(self, x: str, ix: str, n: str) -> str:
        """The adjoint of a gather of any rank: the module's ``scatter_add`` kernel."""
        return f"scatter_add({x}, {ix}, {n})"

    def _print_ScatterAdd(self, e):
        """The adjoint of a gather: the module's ``scatter_add`` kernel (``np.add.at``)."""
        return f"scatter_add({self._print(e.arg)}, {e.onehot.labels}, {self._print(e.shape[0])})"

    def _print_MatAdd(self, e):
        """``p − onehot(y)`` as ``add_labels(p, y, -1)``: a scatter, no one-hot matrix."""
        return scattered_sum(self, e) or super()._print_MatAdd(e)


class StepPrinter(CodePrinter):
    """The fused step's printer: the rows of each bound labels array are made once
    (``rows``: labels -> the local holding ``np.arange(len(labels))``), and a sum of
    every entry is the array's own ``.sum()`` (``np.sum``'s dispatch costs ~1 µs a call,
    much of a tiny network's loss line)."""

    def __init__(self, rows: dict[str, str], settings=None):
        super().__init__(settings)
        self.rows = rows

    def _print_Pick(self, e):
        labels = e.onehot.labels
        if labels not in self.rows:
            return super()._print_Pick(e)
        return f"{self.paren(e.arg)}[{self.rows[labels]}, {labels}]"

    def _print_SumAll(self, e):
        code = super()._print_SumAll(e)
        if not (code.startswith("np.sum(") and code.endswith(")")):
            return code
        inner = code[len("np.sum(") : -1]
        primary = (ast.Name, ast.Attribute, ast.Subscript, ast.Call)
        if not isinstance(ast.parse(inner, mode="eval").body, primary):
            inner = f"({inner})"
        return f"{inner}.sum()"


def scattered_sum(printer: NumpyFormPrinter, e: sp.MatAdd) -> str | None:
    """``p − onehot(y)`` as ``add_labels(p, y, -1)`` (every target's printers), or None
    when the sum has no one-hot term beside others."""
    hot, rest = split_onehot(e)
    if not hot or not rest:
        return None
    code = printer._print(rest[0] if len(rest) == 1 else sp.MatAdd(*rest))
    for coeff, onehot in hot:
        code = f"add_labels({code}, {onehot.labels}, {printer._print(coeff)})"
    return code


class Column(MatrixExpr):
    """An ``n × 1`` column as the 1-D array of its entries: ``X[:, 0]`` (a coefficient)."""

    def __new__(cls, X):
        return sp.Basic.__new__(cls, X)

    arg = property(lambda self: self.args[0])
    shape = property(lambda self: (sp.Integer(1), self.args[0].shape[0]))


def split_onehot(e: sp.MatAdd) -> tuple[list, list]:
    """The terms ``c · onehot(y)`` of a sum, as (c, onehot) pairs, and the other terms."""
    hot: list[tuple[sp.Expr, OneHot]] = []
    rest: list[sp.Expr] = []
    for a in e.args:
        coeff, body = as_coeff(a)
        if isinstance(body, OneHot):
            hot.append((coeff, body))
            continue
        if isinstance(body, sp.HadamardProduct) and coeff == 1 and len(body.args) == 2:
            # v[:, None] ⊙ onehot(y): v[b] added at (b, y[b]), v a 1-D array
            onehot = [x for x in body.args if isinstance(x, OneHot)]
            other = [x.arg if isinstance(x, Broadcast) else x for x in body.args if x not in onehot]
            if (
                onehot
                and other
                and isinstance(other[0], sp.Transpose)
                and np_rank(other[0].arg) == 1
            ):
                hot.append((other[0].arg, onehot[0]))
                continue
            # δm ⊙ onehot(a) with δm an n × 1 column (the adjoint of max(x, axis=1, keepdims)),
            # or a computed column such as the row sums (s 1) it was fused into
            if (
                onehot
                and other
                and isinstance(other[0], sp.MatrixExpr)
                and other[0].shape[1] == 1
                and np_rank(other[0]) == 2
            ):
                hot.append((Column(other[0]), onehot[0]))
                continue
        rest.append(a)
    return hot, rest


def kernel_names(forms) -> set[str]:
    """The kernels a list of printed forms calls."""
    names = set()
    scattered: set[int] = set()
    for form in forms:
        for node in sp.preorder_traversal(form):
            if isinstance(node, Map):
                names.add(rule_for(node.func_class).name)
            elif isinstance(node, sp.Function) and (rule := rule_of(node.func)):
                names.add(rule.name)
            elif isinstance(node, (Softmax, SoftmaxAt)):
                names.add("softmax")
            elif isinstance(node, LogSoftmax):
                names.add("log_softmax")
            elif isinstance(node, sp.MatAdd) and split_onehot(node)[0]:
                hot, rest = split_onehot(node)
                if rest:  # scattered: the one-hot matrix itself is never built
                    names.add("add_labels")
                    scattered.update(id(h) for _, h in hot)
            elif isinstance(node, Pick):  # an index, not a matrix
                scattered.add(id(node.onehot))
            elif isinstance(node, (Gather, ScatterAdd)):  # indexing and np.add.at
                scattered.add(id(node.onehot))
                if isinstance(node, ScatterAdd):
                    names.add("scatter_add")
            elif isinstance(node, Einsum) and "_acc" in einsum_names(node):
                names.add("scatter_add")  # Σ_b onehot(ix)[b…, v] δ[b…, e]: np.add.at
            elif isinstance(node, OneHot) and id(node) not in scattered:
                names.add("onehot")
    return names
