"""Lowering matrix forms to NumPy calls that write into preallocated buffers.

The readable ``forward``/``gradients`` of a generated module print each form
as one expression; NumPy then allocates a fresh array for every
intermediate, and on large layers the allocator hands those pages back to
the operating system each step (page faults dominate a textbook step).  The
fused ``train_step`` is printed from the same forms by :class:`Emitter`:
every node becomes one ufunc or ``np.matmul`` call with ``out=`` a buffer
that lives in a workspace dict across steps, element-wise chains run in place
in one buffer, and transposes are views.
"""

from __future__ import annotations

import re

import sympy as sp

from derive.forms import (
    Argmax,
    Broadcast,
    Gather,
    Map,
    OneHot,
    Pick,
    ScatterAdd,
    Softmax,
    SumAxis,
    Vector,
    as_coeff,
    np_rank,
    rule_for,
    scale,
    text,
)

from .printer import CodePrinter, LogSoftmax, split_onehot

_OUT = re.compile(r'buf\["([^"]+)"\]\)?$')  # the buffer a call writes: its out= or result


def np_shape(e) -> tuple:
    """The NumPy shape of a form's value (a vector is 1-D)."""
    rows, cols = e.shape
    rank = np_rank(e)
    return (cols,) if rank == 1 else (rows, cols)


class Emitter:
    """Emits statements computing forms into workspace buffers."""

    def __init__(self, printer: CodePrinter | None = None):
        self.printer = printer or CodePrinter()
        self.lines: list[str] = []
        self.count = 0  # temporaries so far: _t1, _t2, ... (a spec name cannot start with _)
        self.buffers: dict[str, str] = {}  # buffer name -> NumPy shape, as code
        self.known: dict = {}  # form -> the local holding its value, for reuse
        self.log_softmax: set = set()  # LogSoftmax forms a later line needs
        self.shared: set[str] = set()  # keys of forms a later line reads again: own buffers

    # -- helpers -------------------------------------------------------------------------------
    def buffer(self, e, name: str | None = None) -> str:
        """A workspace buffer shaped like ``e`` (named, or a numbered temporary)."""
        if name is None:
            named = isinstance(e, LogSoftmax) and isinstance(e.arg, sp.MatrixSymbol)
            name = f"_log_softmax_{e.arg.name}" if named else ""
            if not name or name in self.buffers:
                self.count += 1
                name = f"_t{self.count}"
            if _key(e) in self.shared:  # say what it holds and why it has its own buffer
                self.lines.append(f"# {name} = {_describe(e)}, read again below")
        shape = ", ".join(self.printer.doprint(d) for d in np_shape(e))
        self.buffers[name] = f"({shape},)" if len(np_shape(e)) == 1 else f"({shape})"
        return f'buf["{name}"]'

    def scalar(self, e) -> str:
        """A scalar form as code."""
        return self.printer.paren(e)

    def assign(self, name: str, e, into: str | None = None) -> None:
        """``name = e``, computed into the workspace buffer ``name`` (or ``into``'s)."""
        if not isinstance(e, sp.MatrixExpr) or isinstance(e, Argmax):  # argmax: integers
            self.lines.append(f"{name} = {self.printer.doprint(e)}")
            return
        before = len(self.lines)
        out = f'buf["{into}"]' if into is not None else self.buffer(e, name)
        code = self.value(e, out=out)
        last = self.lines[-1] if len(self.lines) > before else ""
        if last.startswith(f"{code} = "):
            self.lines[-1] = f"{name} = " + last[len(code) + 3 :]
        else:
            self.lines.append(f"{name} = {code}")

    def _fits(self, a, whole) -> bool:
        """``a`` may be computed in ``whole``'s buffer: compound, full shape, not read again."""
        return _compound(a, whole) and _key(a) not in self.shared

    def share(self, later, forms) -> None:
        """Give the sub-forms of ``later`` that ``forms`` compute too their own buffers.

        ``later`` is computed after ``forms`` (the loss after the backward
        pass); a sub-form both compute, such as ``y − t``, is then computed
        once, kept, and read again instead of being computed twice.
        """
        inner = {_key(n) for f in forms for n in sp.preorder_traversal(f) if _keep(n)}
        self.shared |= {_key(n) for n in sp.preorder_traversal(later) if _keep(n)} & inner

    # -- values --------------------------------------------------------------------------------
    def value(self, e, out: str | None = None) -> str:
        """Statements for ``e``; returns code naming its value (written to ``out`` if given)."""
        key = _key(e)
        if out is None and key in self.known:  # computed before, its buffer unchanged since
            return self.known[key]
        code = self._value(e, out)
        if (
            out is None
            and isinstance(e, sp.MatrixExpr)
            and not isinstance(e, (sp.MatrixSymbol, Vector, sp.Transpose, Broadcast))
        ):
            self.known[key] = code
        return code

    def reuse(self, form):
        """``form`` with every sub-form computed earlier replaced by the local holding it."""

        def known(n):
            return isinstance(n, sp.MatrixExpr) and self.known.get(_key(n), "").isidentifier()

        return form.replace(known, lambda n: sp.MatrixSymbol(self.known[_key(n)], *n.shape))

    def _value(self, e, out: str | None = None) -> str:
        if isinstance(e, OneHot):  # only where a form needs it whole (not p − onehot(y))
            n = self.printer.doprint(e.shape[1])
            return self._emit(f"onehot({e.labels}, {n}, out={out or self.buffer(e)})")
        if isinstance(e, (sp.MatrixSymbol, Vector)):
            return self._copy(str(e.name), e, out)
        if not isinstance(e, sp.MatrixExpr):
            return self.printer.paren(e)
        if isinstance(e, sp.Transpose):
            inner = self.value(e.arg)
            if isinstance(e.arg, SumAxis) and e.arg.axis == 1:
                return self._sum(e.arg, out, axis=1, keepdims=False, shape_of=e)
            view = f"{inner}[:, None]" if np_rank(e.arg) == 1 else f"{inner}.T"
            return self._copy(view, e, out)
        if isinstance(e, Broadcast):
            return self.value(e.arg, out) if out is None else self._copy(self.value(e.arg), e, out)
        if isinstance(e, sp.MatMul):
            return self._matmul(e, out)
        if isinstance(e, sp.HadamardProduct):
            return self._hadamard(e, out)
        if isinstance(e, sp.MatAdd):
            return self._add(e, out)
        if isinstance(e, sp.HadamardPower):
            base = self.value(e.base)
            buf = out or self.buffer(e)
            if e.exp == 2:
                return self._emit(f"np.multiply({base}, {base}, out={buf})")
            if e.exp == -1:
                return self._emit(f"np.divide(1, {base}, out={buf})")
            return self._emit(f"np.power({base}, {self.scalar(e.exp)}, out={buf})")
        if isinstance(e, Map):
            arg = self.value(e.arg)
            rule = rule_for(e.func_class)
            params = "".join(", " + self.printer.doprint(p) for p in e.params)
            return self._emit(f"{rule.name}({arg}{params}, out={out or self.buffer(e)})")
        if isinstance(e, Softmax):
            axis = -1 if np_rank(e.arg) == 1 else e.axis
            log_form = LogSoftmax(e.arg, e.axis)
            # the loss needs its log: the softmax is then the exp of the log-softmax
            if _key(log_form) in {_key(f) for f in self.log_softmax}:
                self.lines.append(
                    f"# (as exp(log_softmax({text(e.arg)})): the loss reads the log-softmax)"
                )
                logs = self.value(log_form)
                return self._emit(f"np.exp({logs}, out={out or self.buffer(e)})")
            arg = self.value(e.arg)
            return self._emit(f"softmax({arg}, axis={axis}, out={out or self.buffer(e)})")
        if isinstance(e, LogSoftmax):
            axis = -1 if np_rank(e.arg) == 1 else e.axis
            arg = self.value(e.arg)
            return self._emit(f"log_softmax({arg}, axis={axis}, out={out or self.buffer(e)})")
        if isinstance(e, SumAxis):
            return self._sum(e, out, axis=e.axis, keepdims=e.axis == 1, shape_of=e)
        if isinstance(e, Pick):
            return self._copy(self.printer.doprint(e), e, out)
        if isinstance(e, (Gather, ScatterAdd)):
            return self._index_form(e, out)
        if isinstance(e, sp.OneMatrix):
            buf = out or self.buffer(e)
            return self._emit(f"np.copyto({buf}, 1)", result=buf)
        if isinstance(e, sp.ZeroMatrix):  # a gradient that is exactly zero
            buf = out or self.buffer(e)
            return self._emit(f"np.copyto({buf}, 0)", result=buf)
        raise TypeError(f"cannot emit {type(e).__name__}")

    def _index_form(self, e, out: str | None) -> str:
        """A gather ``C[ix]`` (``np.take`` into a buffer) or its adjoint (``np.add.at``)."""
        arg, ix, buf = self.value(e.arg), e.onehot.labels, out or self.buffer(e)
        if isinstance(e, Gather):
            return self._emit(f"np.take({arg}, {ix}, axis=0, out={buf})")
        rows = self.printer.doprint(e.shape[0])
        return self._emit(f"scatter_add({arg}, {ix}, {rows}, out={buf})")

    def _emit(self, call: str, result: str | None = None) -> str:
        """A call that returns its ``out``: bind it to the local named after that buffer.

        Every value lives in a workspace buffer, and the local holding it is
        called as the buffer is: the quantity (``z1``), its delta
        (``delta_z1``), its gradient (``grad_W1``) or a temporary (``_t1``).
        A value built in several calls rebinds the same name.
        """
        found = _OUT.search(result or call)
        if found is None:
            raise ValueError(f"emitted call writes no buffer: {call}")
        name = found.group(1)
        if result is None:
            self.lines.append(f"{name} = {call}")
        else:
            self.lines.append(call)
            self.lines.append(f"{name} = {result}")
        return name

    def _copy(self, code: str, e, out: str | None) -> str:
        if out is None:
            return code
        return self._emit(f"np.copyto({out}, {code})", result=out)

    def _sum(self, e, out, axis: int, keepdims: bool, shape_of) -> str:
        arg = self.value(e.arg)
        buf = out or self.buffer(shape_of)
        kd = ", keepdims=True" if keepdims else ""
        return self._emit(f"np.sum({arg}, axis={axis}{kd}, out={buf})")

    def _matmul(self, e: sp.MatMul, out: str | None) -> str:
        coeff, mats = e.as_coeff_matrices()
        if len(mats) == 1:  # c X: compute X in the result's buffer, then scale in place
            buf = out or self.buffer(e)
            x = self.value(mats[0], out=buf if self._fits(mats[0], e) else None)
            return self._emit(f"np.multiply({x}, {self.scalar(coeff)}, out={buf})")
        acc = self._operand(mats[0], first=True)
        for n, m in enumerate(mats[1:], start=1):
            last = n == len(mats) - 1
            part = sp.MatMul(*mats[: n + 1])
            buf = (out or self.buffer(e)) if last else self.buffer(part)
            acc = self._emit(f"np.matmul({acc}, {self._operand(m)}, out={buf})")
        if coeff != 1:
            self.lines.append(f"{acc} *= {self.scalar(coeff)}")
        return acc

    def _operand(self, m, first: bool = False) -> str:
        if isinstance(m, Broadcast):
            inner = self.value(m.arg)
            dims = ", ".join(self.printer.doprint(d) for d in m.shape)
            return f"np.broadcast_to({inner}, ({dims}))"
        code = self.value(m)
        return code if first or np_rank(m) != 1 else f"{code}[None, :]"

    def _hadamard(self, e: sp.HadamardProduct, out: str | None) -> str:
        num, den = [], []
        for a in e.args:
            if isinstance(a, sp.HadamardPower) and a.exp == -1:
                den.append(a.base)
            else:
                num.append(a)
        if len(num) == 1 and not den:
            return self.value(num[0], out)
        buf = out or self.buffer(e)
        num.sort(key=lambda a: not self._fits(a, e))  # run in place on a compound factor
        acc = self.value(num[0], out=buf if self._fits(num[0], e) else None) if num else "1"
        for a in num[1:]:
            acc = self._emit(f"np.multiply({acc}, {self.value(a)}, out={buf})")
        for a in den:
            acc = self._emit(f"np.divide({acc}, {self.value(a)}, out={buf})")
        return acc

    def _add(self, e: sp.MatAdd, out: str | None) -> str:
        hot, rest = split_onehot(e)
        if hot and rest:  # p − onehot(y): the rest in the buffer, then a scatter into it
            buf = out or self.buffer(e)
            whole = rest[0] if len(rest) == 1 else sp.MatAdd(*rest)
            code = self.value(whole, out=buf if self._fits(whole, e) else None)
            for coeff, onehot in hot:
                c = self.printer.doprint(coeff)
                code = self._emit(f"add_labels({code}, {onehot.labels}, {c}, out={buf})")
            return code
        buf = out or self.buffer(e)
        acc: str | None = None
        terms = sorted(
            e.args, key=lambda a: (as_coeff(a)[0].could_extract_minus_sign(), not self._fits(a, e))
        )
        for a in terms:
            coeff, rest = as_coeff(a)
            if isinstance(rest, sp.OneMatrix):
                # -c, not abs(c): a symbolic coefficient (a mean) has no known sign
                negative = coeff.could_extract_minus_sign()
                code = self.scalar(-coeff if negative else coeff)
            elif coeff == -1:
                code, negative = self.value(rest), True
            else:
                first = acc is None and self._fits(a, e)
                code, negative = self.value(a, out=buf if first else None), False
            if acc is None:
                acc = self._emit(f"np.negative({code}, out={buf})") if negative else code
                continue
            op = "subtract" if negative else "add"
            acc = self._emit(f"np.{op}({acc}, {code}, out={buf})")
        assert acc is not None  # a MatAdd has terms
        return acc


def _describe(e) -> str:
    """A form as its comment shows it."""
    if isinstance(e, LogSoftmax):
        return f"log_softmax({text(e.arg)})"
    return text(e)


def _compound(a, whole) -> bool:
    """Computed (not a named array or view) and of the full shape: a buffer can hold it."""
    if isinstance(a, (sp.MatrixSymbol, Vector, sp.Transpose, Broadcast, sp.OneMatrix)):
        return False
    return isinstance(a, sp.MatrixExpr) and np_shape(a) == np_shape(whole)


def _keep(n) -> bool:
    """A computed matrix value worth keeping for a later line."""
    return isinstance(n, (sp.MatAdd, sp.HadamardProduct, LogSoftmax)) and not n.atoms(sp.Symbol) & {
        sp.Symbol("lr")
    }


__all__ = ["Emitter", "np_shape", "scale_terms"]


def _key(e) -> str:
    """A key equal for equal forms whatever the order of their terms (srepr sorts them)."""
    return sp.srepr(e)


def _has_delta(e) -> bool:
    """Whether ``e`` reads an adjoint (a ``delta_`` matrix or scalar)."""
    return any(str(m.name).startswith("delta_") for m in e.atoms(sp.MatrixSymbol, sp.Symbol))


def scale_terms(form, factor):
    """``factor`` times an adjoint form, applied where the loss's seed enters it.

    Every adjoint is linear in the seed: each term either reads an earlier
    adjoint (which carries the factor already) or is the loss's own and is
    scaled.  The walk goes through sums, products and the linear nodes
    (``c (δa + x)``, ``1ᵀ (δa ⊙ x)``) down to the terms that read no delta;
    scaling only the top-level terms would scale ``(δa + x)/10`` not at all.
    """
    if not _has_delta(form):
        return scale(factor, form) if isinstance(form, sp.MatrixExpr) else factor * form
    if isinstance(form, (sp.MatAdd, sp.Add)):
        return form.func(*[scale_terms(a, factor) for a in form.args])
    holders = [n for n, a in enumerate(form.args) if isinstance(a, sp.Basic) and _has_delta(a)]
    if len(holders) != 1:  # a delta itself (or, never for an adjoint, two factors of one)
        return form
    (n,) = holders
    args = list(form.args)
    args[n] = scale_terms(args[n], factor)
    return form.func(*args)
