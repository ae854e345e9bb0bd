"""Lowering matrix forms to NumPy calls that write into preallocated buffers.

The readable ``forward``/``gradients`` of a generated module print each form
as one expression; NumPy then allocates a fresh array for every
intermediate, and on large layers the allocator hands those pages back to
the operating system each step (page faults dominate a textbook step).  The
fused ``train_step`` is printed from the same forms by :class:`Emitter`:
every node becomes one ufunc or ``.dot`` call with ``out=`` a buffer
that lives in a workspace dict across steps, element-wise chains run in place
in one buffer, and transposes are views.
"""

from __future__ import annotations

import functools
import re

import sympy as sp

from derive.forms import (
    Argmax,
    Broadcast,
    Einsum,
    Gather,
    Map,
    OneHot,
    Pick,
    ScatterAdd,
    Softmax,
    SumAxis,
    Vector,
    as_coeff,
    einsum_matmul,
    np_rank,
    rule_for,
    scale,
    size_code,
    text,
)

from .printer import CodePrinter, LogSoftmax, split_onehot

_ATOM = re.compile(r"[A-Za-z_]\w*(\.\w+)*")  # a name or attribute chain: x, X.T
_OUT = re.compile(r"\b_out_(\w+)\)?$")  # the buffer a call writes: its out= or result


def buffer_local(name: str) -> str:
    """The local of ``bind_step`` holding workspace buffer ``name`` (bound once, read by
    every step as a closure cell: cheaper than a dict look-up per call on tiny networks).
    Spec names cannot start with ``_`` and temporaries are ``_t1``, ``_log_softmax_x``,
    so ``_out_`` names collide with neither."""
    return f"_out_{name}"


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
        # argmax positions the step never computes -> "max"/"min": their picks are reductions
        self.maxes: dict[str, str] = {}
        self.shifted: set[str] = set()  # values x − max(x) along axis 1 (their max is 0)

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
        shape = ", ".join(size_code(d, self.printer) for d in np_shape(e))  # N // 2: an int
        self.buffers[name] = f"({shape},)" if len(np_shape(e)) == 1 else f"({shape})"
        return buffer_local(name)

    def scalar(self, e) -> str:
        """A scalar form as code."""
        return self.printer.paren(e)

    def assign(self, name: str, e, into: str | None = None) -> None:
        """``name = e``, computed into the workspace buffer ``name`` (or ``into``'s)."""
        if isinstance(e, Einsum) and self._einsum_product(name, e):
            return
        if not isinstance(e, sp.MatrixExpr) or isinstance(e, Argmax):  # argmax: integers
            self.lines.append(f"{name} = {self.printer.doprint(e)}")
            return
        before = len(self.lines)
        out = buffer_local(into) if into is not None else self.buffer(e, name)
        code = self.value(e, out=out)
        last = self.lines[-1] if len(self.lines) > before else ""
        if last.startswith(f"{code} = "):
            self.lines[-1] = f"{name} = " + last[len(code) + 3 :]
        else:
            self.lines.append(f"{name} = {code}")

    def _einsum_product(self, name: str, e) -> bool:
        """An einsum form that is one (batched) product: ``np.matmul`` into its buffer."""
        parts = einsum_matmul(e, self.printer)
        if parts is None:
            return False
        dims = [size_code(d, self.printer) for d in e.shape]
        self.buffers[name] = f"({dims[0]},)" if len(dims) == 1 else f"({', '.join(dims)})"
        self.emit(f"np.matmul({parts[0]}, {parts[1]}, out={buffer_local(name)})")
        return True

    def fits(self, a, whole) -> bool:
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
        code = emit_value(e, self, out)
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

    def emit(self, call: str, result: str | None = None) -> str:
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

    def copy(self, code: str, e, out: str | None) -> str:
        """``code`` (an array or a view), copied into ``out`` if given."""
        if out is None:
            return code
        return self.emit(f"np.copyto({out}, {code})", result=out)

    def sum_into(self, e, out, axis: int, keepdims: bool, shape_of) -> str:
        """The sum of ``e.arg`` over ``axis``, into ``out`` or a buffer shaped like ``shape_of``."""
        arg = self.value(e.arg)
        buf = out or self.buffer(shape_of)
        kd = ", keepdims=True" if keepdims else ""
        # the ufunc's own reduce: what np.sum calls, without its ~0.8 µs Python wrapper
        return self.emit(f"np.add.reduce({arg}, axis={axis}{kd}, out={buf})")


# ---------------------------------------------------------------------------
# one handler per matrix-form class


@functools.singledispatch
def emit_value(e, em: Emitter, out: str | None) -> str:
    """Statements computing the form ``e`` (appended to ``em``); code naming its value.

    One function per matrix-form class, registered on this one
    (``emit_value.register``), as :func:`derive.forms.evaluate` is; anything
    that is not a matrix form is a scalar, printed in place.
    """
    if isinstance(e, sp.MatrixExpr):
        raise TypeError(f"cannot emit {type(e).__name__}")
    return em.printer.paren(e)


@emit_value.register(OneHot)
def _emit_onehot(e: OneHot, em: Emitter, out: str | None) -> str:
    # only where a form needs it whole (not p − onehot(y))
    n = em.printer.doprint(e.shape[1])
    return em.emit(f"onehot({e.labels}, {n}, out={out or em.buffer(e)})")


@emit_value.register(sp.MatrixSymbol)
def _emit_array(e: sp.MatrixSymbol, em: Emitter, out: str | None) -> str:
    return em.copy(str(e.name), e, out)


@emit_value.register(sp.Transpose)
def _emit_transpose(e: sp.Transpose, em: Emitter, out: str | None) -> str:
    if isinstance(e.arg, SumAxis) and e.arg.axis == 1:  # (X 1)ᵀ: the 1-D row sums
        return em.sum_into(e.arg, out, axis=1, keepdims=False, shape_of=e)
    inner = em.value(e.arg)
    view = f"{inner}[:, None]" if np_rank(e.arg) == 1 or _flat(e.arg, em) else f"{inner}.T"
    return em.copy(view, e, out)


def _flat(e, em: Emitter) -> bool:
    """A named ``1 × n`` row whose value the step holds 1-D (``L_mean = (1ᵀ h)/B`` is a
    vector): its transpose is a column, ``x[:, None]``, where ``x.T`` would stay 1-D."""
    return isinstance(e, sp.MatrixSymbol) and em.buffers.get(str(e.name), "").endswith(",)")


@emit_value.register(Broadcast)
def _emit_broadcast(e: Broadcast, em: Emitter, out: str | None) -> str:
    return em.value(e.arg, out) if out is None else em.copy(em.value(e.arg), e, out)


@emit_value.register(sp.HadamardPower)
def _emit_power(e: sp.HadamardPower, em: Emitter, out: str | None) -> str:
    base = em.value(e.base)
    buf = out or em.buffer(e)
    if e.exp == 2:
        return em.emit(f"np.multiply({base}, {base}, out={buf})")
    if e.exp == -1:
        return em.emit(f"np.divide(1, {base}, out={buf})")
    return em.emit(f"np.power({base}, {em.scalar(e.exp)}, out={buf})")


@emit_value.register(Map)
def _emit_map(e: Map, em: Emitter, out: str | None) -> str:
    arg = em.value(e.arg)
    rule = rule_for(e.func_class)
    params = "".join(", " + em.printer.doprint(p) for p in e.params)
    return em.emit(f"{rule.name}({arg}{params}, out={out or em.buffer(e)})")


@emit_value.register(Softmax)
def _emit_softmax(e: Softmax, em: Emitter, out: str | None) -> str:
    axis = -1 if np_rank(e.arg) == 1 else e.axis
    log_form = LogSoftmax(e.arg, e.axis)
    # the loss needs its log: the softmax is then the exp of the log-softmax
    if _key(log_form) in {_key(f) for f in em.log_softmax}:
        probs = out or em.buffer(e)
        if _key(log_form) in em.known:
            return em.emit(f"np.exp({em.known[_key(log_form)]}, out={probs})")
        # both from one exp: the kernel writes the softmax beside the log-softmax
        em.lines.append(f"# (with log_softmax({text(e.arg)}), which the loss reads)")
        logs = em.buffer(log_form)
        name = logs[len(buffer_local("")) :]
        em.known[_key(log_form)] = name
        call = f"log_softmax({em.value(e.arg)}, {axis}, out={logs}, probs={probs}"
        # x − max(x) along the softmax's axis has maximum 0 exactly: no second shift
        call += ", shifted=True)" if str(e.arg) in em.shifted and axis == 1 else ")"
        return em.emit(f"{name} = {call}", result=probs)
    arg = em.value(e.arg)
    return em.emit(f"softmax({arg}, axis={axis}, out={out or em.buffer(e)})")


@emit_value.register(LogSoftmax)
def _emit_log_softmax(e: LogSoftmax, em: Emitter, out: str | None) -> str:
    axis = -1 if np_rank(e.arg) == 1 else e.axis
    arg = em.value(e.arg)
    return em.emit(f"log_softmax({arg}, axis={axis}, out={out or em.buffer(e)})")


@emit_value.register(SumAxis)
def _emit_sum_axis(e: SumAxis, em: Emitter, out: str | None) -> str:
    return em.sum_into(e, out, axis=e.axis, keepdims=e.axis == 1, shape_of=e)


@emit_value.register(Pick)
def _emit_pick(e: Pick, em: Emitter, out: str | None) -> str:
    op = em.maxes.get(e.onehot.labels)
    if op is not None:  # X[range(B), argmax(X)]: the row maxima, one reduction
        ufunc = "maximum" if op == "max" else "minimum"
        return em.emit(f"np.{ufunc}.reduce({em.value(e.arg)}, axis=1, out={out or em.buffer(e)})")
    return em.copy(em.printer.doprint(e), e, out)


@emit_value.register(Gather)
@emit_value.register(ScatterAdd)
def _emit_index_form(e: Gather | ScatterAdd, em: Emitter, out: str | None) -> str:
    """A gather ``C[ix]`` (``np.take`` into a buffer) or its adjoint (``np.add.at``)."""
    arg, ix, buf = em.value(e.arg), e.onehot.labels, out or em.buffer(e)
    if isinstance(e, Gather):
        return em.emit(f"np.take({arg}, {ix}, axis=0, out={buf})")
    rows = em.printer.doprint(e.shape[0])
    return em.emit(f"scatter_add({arg}, {ix}, {rows}, out={buf})")


@emit_value.register(sp.OneMatrix)
def _emit_ones(e: sp.OneMatrix, em: Emitter, out: str | None) -> str:
    buf = out or em.buffer(e)
    return em.emit(f"np.copyto({buf}, 1)", result=buf)


@emit_value.register(sp.ZeroMatrix)
def _emit_zeros(e: sp.ZeroMatrix, em: Emitter, out: str | None) -> str:
    # a gradient that is exactly zero
    buf = out or em.buffer(e)
    return em.emit(f"np.copyto({buf}, 0)", result=buf)


@emit_value.register(sp.MatMul)
def _emit_matmul(e: sp.MatMul, em: Emitter, out: str | None) -> str:
    coeff, mats = e.as_coeff_matrices()
    small = _row(mats[0]) if len(mats) == 1 and coeff != 1 else None
    if small is not None:  # c (r ⊙ X), r a broadcast row: scale the small r, not the product
        rows, cols = small.arg.shape
        name = f"_t{em.count + 1}"
        em.count += 1
        em.buffers[name] = f"(1, {size_code(cols, em.printer)})"  # (n,) or (1, n) fit in it
        arg = em.value(small.arg)
        local = em.emit(f"np.multiply({arg}, {em.scalar(coeff)}, out={buffer_local(name)})")
        scaled = Broadcast(sp.MatrixSymbol(local, rows, cols), *small.shape)
        rest = [a for a in mats[0].args if a is not small] if small is not mats[0] else []
        return em.value(sp.HadamardProduct(scaled, *rest) if rest else scaled, out)
    if len(mats) == 1:  # c X: compute X in the result's buffer, then scale in place
        buf = out or em.buffer(e)
        x = em.value(mats[0], out=buf if em.fits(mats[0], e) else None)
        if coeff == -1:
            return em.emit(f"np.negative({x}, out={buf})")
        return em.emit(f"np.multiply({x}, {em.scalar(coeff)}, out={buf})")
    acc = _operand(em, mats[0], first=True)
    for n, m in enumerate(mats[1:], start=1):
        last = n == len(mats) - 1
        part = sp.MatMul(*mats[: n + 1])
        buf = (out or em.buffer(e)) if last else em.buffer(part)
        acc = em.emit(_dot(acc, _operand(em, m), buf))
    if coeff != 1:
        em.lines.append(f"{acc} *= {em.scalar(coeff)}")
    return acc


def _dot(a: str, b: str, out: str) -> str:
    """``a b`` into ``out`` as ``a.dot(b, out=out)``: for these 1-D and 2-D operands the
    same BLAS product as ``np.matmul``, with ~0.4 µs less overhead per call (``np.dot``
    without its dispatch saves another ~0.15 µs); on tiny networks that decides the step."""
    if _ATOM.fullmatch(a):
        return f"{a}.dot({b}, out={out})"
    return f"np.dot({a}, {b}, out={out})"


def _operand(em: Emitter, m, first: bool = False) -> str:
    """A factor of a product as code: a vector first in line stays 1-D, later ones are rows."""
    if isinstance(m, Broadcast):
        inner = em.value(m.arg)
        dims = ", ".join(em.printer.doprint(d) for d in m.shape)
        return f"np.broadcast_to({inner}, ({dims}))"
    code = em.value(m)
    return code if first or np_rank(m) != 1 else f"{code}[None, :]"


@emit_value.register(sp.HadamardProduct)
def _emit_hadamard(e: sp.HadamardProduct, em: Emitter, out: str | None) -> str:
    num, den = [], []
    for a in e.args:
        if isinstance(a, sp.HadamardPower) and a.exp == -1 and isinstance(a.base, Broadcast):
            # ⊘ a broadcast row: its reciprocal once (small), then a multiplication,
            # cheaper than dividing every entry
            b = a.base
            num.append(Broadcast(sp.HadamardPower(b.arg, -1), *b.shape))
        elif isinstance(a, sp.HadamardPower) and a.exp == -1:
            den.append(a.base)
        else:
            num.append(a)
    if len(num) == 1 and not den:
        return em.value(num[0], out)
    buf = out or em.buffer(e)
    num.sort(key=lambda a: not em.fits(a, e))  # run in place on a compound factor
    acc = em.value(num[0], out=buf if em.fits(num[0], e) else None) if num else "1"
    for a in num[1:]:
        acc = em.emit(f"np.multiply({acc}, {em.value(a)}, out={buf})")
    for a in den:
        acc = em.emit(f"np.divide({acc}, {em.value(a)}, out={buf})")
    return acc


@emit_value.register(sp.MatAdd)
def _emit_add(e: sp.MatAdd, em: Emitter, out: str | None) -> str:
    hot, rest = split_onehot(e)
    if hot and rest:  # p − onehot(y): the rest in the buffer, then a scatter into it
        buf = out or em.buffer(e)
        whole = rest[0] if len(rest) == 1 else sp.MatAdd(*rest)
        code = em.value(whole, out=buf if em.fits(whole, e) else None)
        for coeff, onehot in hot:
            c = em.printer.doprint(coeff)
            code = em.emit(f"add_labels({code}, {onehot.labels}, {c}, out={buf})")
        return code
    buf = out or em.buffer(e)
    acc: str | None = None
    terms = sorted(
        e.args, key=lambda a: (as_coeff(a)[0].could_extract_minus_sign(), not em.fits(a, e))
    )
    for a in terms:
        coeff, rest = as_coeff(a)
        if isinstance(rest, sp.OneMatrix):
            # -c, not abs(c): a symbolic coefficient (a mean) has no known sign
            negative = coeff.could_extract_minus_sign()
            code = em.scalar(-coeff if negative else coeff)
        elif coeff == -1:
            code, negative = em.value(rest), True
        else:
            first = acc is None and em.fits(a, e)
            code, negative = em.value(a, out=buf if first else None), False
        if acc is None:
            acc = em.emit(f"np.negative({code}, out={buf})") if negative else code
            continue
        op = "subtract" if negative else "add"
        acc = em.emit(f"np.{op}({acc}, {code}, out={buf})")
    assert acc is not None  # a MatAdd has terms
    return acc


def _row(m):
    """``r`` of a broadcast row ``r`` or of a product ``r ⊙ X`` with one; else None."""
    if isinstance(m, sp.HadamardProduct):
        m = next((a for a in m.args if isinstance(a, Broadcast)), None)
    if isinstance(m, Broadcast) and m.arg.shape[0] == 1:
        return m
    return None


def _describe(e) -> str:
    """A form as its comment shows it."""
    if isinstance(e, LogSoftmax):
        return f"log_softmax({text(e.arg)})"
    return text(e)


def _compound(a, whole) -> bool:
    """Computed (not a named array or view) and of the full shape: a buffer can hold it."""
    if isinstance(a, sp.Transpose) and isinstance(a.arg, SumAxis) and a.arg.axis == 1:
        return np_shape(a) == np_shape(whole)  # the row sums, computed (not a view)
    if isinstance(a, (sp.MatrixSymbol, Vector, sp.Transpose, Broadcast, sp.OneMatrix)):
        return False
    if isinstance(a, sp.MatMul) and isinstance(a.as_coeff_matrices()[1][-1], Broadcast):
        return len(a.as_coeff_matrices()[1]) > 1  # c r, r broadcast: computed small
    return isinstance(a, sp.MatrixExpr) and np_shape(a) == np_shape(whole)


def _keep(n) -> bool:
    """A computed matrix value worth keeping for a later line."""
    return isinstance(n, (sp.MatAdd, sp.HadamardProduct, LogSoftmax)) and not n.atoms(sp.Symbol) & {
        sp.Symbol("lr")
    }


__all__ = ["Emitter", "emit_value", "np_shape", "scale_terms"]


def _key(e) -> str:
    """A key equal for equal forms whatever the order of their terms (srepr sorts them)."""
    return sp.srepr(e)


def _has_delta(e) -> bool:
    """Whether ``e`` reads an adjoint (a ``delta_`` matrix, scalar or indexed array)."""
    return any(str(m.name).startswith("delta_") for m in e.atoms(sp.MatrixSymbol, sp.Symbol))


def scale_terms(form, factor):
    """``factor`` times an adjoint form, applied where the loss's seed enters it.

    Every adjoint is linear in the seed: each term either reads an earlier
    adjoint (which carries the factor already) or is the loss's own and is
    scaled.  The walk goes through sums, products and the linear nodes
    (``c (δa + x)``, ``1ᵀ (δa ⊙ x)``) down to the terms that read no delta;
    scaling only the top-level terms would scale ``(δa + x)/10`` not at all.
    """
    if isinstance(form, Einsum):  # an einsum form's terms: the same rule, term by term
        return Einsum(form.out, [(f if _has_delta(f) else factor * f, s) for f, s in form.terms])
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
