"""What a generated module holds, worked out from a derivation (the template's context).

Everything here is data for :mod:`codegen.templates`: lines of code printed
by :class:`~codegen.printer.CodePrinter` with the formula each implements,
parameter metadata, initialisation rules, kernels to embed.  No math is
written as strings here; every expression comes from a matrix form.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field, replace
from typing import Literal

import sympy as sp

from derive import Derivation, ir
from derive.forms import (
    RULES,
    SOFTMAX,
    Broadcast,
    Einsum,
    Gather,
    Map,
    OneHot,
    Pick,
    ScatterAdd,
    Softmax,
    Vector,
    einsum_names,
    forward_form,
    matrix_symbol,
    np_rank,
    numpy_code,
    rule_of,
    size_code,
    text,
)

from . import kernels
from .emit import Emitter, buffer_local
from .printer import (
    CodePrinter,
    LogSoftmax,
    kernel_names,
    printed_twice,
    rewrite_notes,
    split_onehot,
    stabilise,
)
from .text import comment


@dataclass
class Line:
    """One statement of a readable function: ``name = code`` under its formula."""

    name: str
    code: str
    comment: str
    notes: list[str] = field(default_factory=list)  # the stable rewrites the code uses
    setup: list[str] = field(default_factory=list)  # temporaries it reads, bound just before


InitKind = Literal["zeros", "he", "glorot"]


@dataclass
class Init:
    """How a param starts: zeros, He or Glorot, with the fans that scale it."""

    name: str
    shape: list[str]
    kind: InitKind
    fan_in: str = "1"
    fan_out: str = "1"

    codes: dict[str, str] = field(default_factory=dict)  # dim arithmetic (4*H) as code

    def dim_code(self, d: str) -> str:
        """A dim of the shape as code over ``dims``: ``dims["H"]``, ``4 * dims["H"]``, ``3``."""
        return d if d.isdigit() else self.codes.get(d, f'dims["{d}"]')

    @property
    def shape_code(self) -> str:
        """The param's shape as code reading the module's ``dims``."""
        items = [self.dim_code(d) for d in self.shape]
        return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"

    @property
    def fan_in_code(self) -> str:
        return self.dim_code(self.fan_in)

    @property
    def fan_out_code(self) -> str:
        return self.dim_code(self.fan_out)


def dims_code(d: sp.Expr) -> str:
    """Dim arithmetic as Python over the ``dims`` dict: ``4 * dims["H"]``; exact ``//``."""
    num, den = sp.fraction(sp.factor(d))

    def factor(f) -> list[str]:
        if isinstance(f, sp.Pow) and f.exp.is_Integer and f.exp > 0:
            return factor(f.base) * int(f.exp)
        return [str(f) if f.is_Number else f'dims["{f}"]']

    terms = [
        " * ".join(x for f in sp.Mul.make_args(t) for x in factor(f))
        for t in sp.Add.make_args(sp.expand(num))
    ]
    text = " + ".join(terms)
    return f"({text}) // {den}" if den != 1 else f"({text})"


def _symbols(forms) -> set[str]:
    """Names a form reads: arrays, consts and dims (not the dims in array shapes)."""
    names: set[str] = set()

    def visit(node):
        if isinstance(node, Pick):  # x[range(B), y] reads x and the labels only
            names.add(node.onehot.labels)
            visit(node.arg)
            return
        if isinstance(node, (Gather, ScatterAdd)):  # C[ix] and its adjoint read ix and C
            names.add(node.onehot.labels)
            visit(node.arg)
            if isinstance(node, ScatterAdd):  # the table's rows, to size it
                visit(node.shape[0])
            return
        if isinstance(node, OneHot):  # read from the labels; its width where it is built
            names.add(node.labels)
            visit(node.shape[1])
            return
        if isinstance(node, sp.MatAdd) and all(split_onehot(node)):  # scattered: no width
            hot, rest = split_onehot(node)
            names.update(h.labels for _, h in hot)
            for arg in [*rest, *(c for c, _ in hot)]:  # a coefficient may be an array (δm)
                visit(arg)
            return
        if isinstance(node, Einsum):  # the names its printed code reads
            names.update(einsum_names(node))
            return
        if isinstance(node, (sp.MatrixSymbol, sp.Symbol)):
            names.add(str(node.name))
            return
        if isinstance(node, (sp.OneMatrix, sp.Identity, sp.Lambda)):
            return
        if isinstance(node, Broadcast):  # printed as its argument; NumPy broadcasts it
            visit(node.arg)
            return
        for arg in node.args:
            visit(arg)

    for form in forms:
        visit(form)
    return names


def init_rules(net: ir.Network) -> list[Init]:
    """He (normal, std √(2/fan_in)) for weights feeding a function whose rule asks
    for it (``init="he"``: ReLU-like), Glorot
    (uniform, ±√(6/(fan_in+fan_out))) for other weights, zeros for biases."""
    relu_inputs = {
        node.arg.name
        for eq in net.equations
        for node in ir.walk(eq.expr)
        if isinstance(node, ir.Call)
        and node.fn in RULES
        and RULES[node.fn].init == "he"
        and isinstance(node.arg, ir.Ref)
    }
    out = []
    kernels = _conv_kernels(net, relu_inputs)
    for p in net.params:
        shape = [str(d) for d in p.shape]
        if p.name in kernels:
            out.append(kernels[p.name])
            continue
        if len(p.shape) == 1 or 1 in p.shape:
            codes = {
                str(d): dims_code(d) for d in p.shape if not isinstance(d, (sp.Symbol, sp.Integer))
            }
            out.append(Init(p.name, shape, "zeros", codes=codes))
            continue
        kind: InitKind = "glorot"
        fan_in, fan_out = shape[0], shape[1]
        for eq in net.equations:
            for node in ir.walk(eq.expr):
                if not isinstance(node, ir.MatMul):
                    continue
                if isinstance(node.b, ir.Ref) and node.b.name == p.name:
                    fan_in, fan_out = shape[0], shape[1]
                elif isinstance(node.a, ir.Ref) and node.a.name == p.name:
                    fan_in, fan_out = shape[1], shape[0]
                else:
                    continue
                if eq.name in relu_inputs:
                    kind = "he"
                break
            else:
                continue
            break
        codes = {
            str(d): dims_code(d) for d in p.shape if not isinstance(d, (sp.Symbol, sp.Integer))
        }
        out.append(Init(p.name, shape, kind, fan_in, fan_out, codes))
    return out


def _conv_kernels(net: ir.Network, relu_inputs: set) -> dict[str, Init]:
    """Kernels ``K[F, C, HH, WW]`` of ``conv2d``: fans ``C·HH·WW`` in and ``F·HH·WW`` out
    (PyTorch's), He where the convolution feeds a ReLU-like function."""
    out: dict[str, Init] = {}
    for eq in net.equations:
        for node in ir.walk(eq.expr):
            if isinstance(node, ir.Conv2d) and isinstance(node.b, ir.Ref):
                f, c, hh, ww = node.b.shape
                fans = [sp.Mul(c, hh, ww), sp.Mul(f, hh, ww)]
                codes = {str(d): dims_code(d) for d in [*node.b.shape, *fans] if not d.is_Integer}
                kind: InitKind = "he" if eq.name in relu_inputs else "glorot"
                shape = [str(d) for d in node.b.shape]
                fan_in, fan_out = (str(d) for d in fans)
                out[node.b.name] = Init(node.b.name, shape, kind, fan_in, fan_out, codes)
    return out


def _batch_axes(net: ir.Network) -> tuple[str, dict[str, int]]:
    """The dimension every input and target shares: the one mini-batches split."""
    arrays = [
        q for q in net.quantities.values() if q.kind in ("input", "target") and q.keep is None
    ]
    common = set.intersection(*[{str(d) for d in q.shape} for q in arrays]) if arrays else set()
    if len(common) > 1:  # a dimension of a param is a feature, not the batch
        common -= {str(d) for p in net.params for d in p.shape}
    leading = {str(q.shape[0]) for q in arrays}
    if len(common) > 1 and len(leading) == 1 and leading <= common:
        common = leading  # sequences [B, T, D]: the batch is the leading axis
    if len(common) != 1:
        raise ValueError(
            "cannot tell the batch dimension: inputs and targets share "
            f"{sorted(common) or 'no dimension'}"
        )
    (dim,) = common
    return dim, {q.name: [str(d) for d in q.shape].index(dim) for q in arrays}


def _in_place_safe(form) -> bool:
    """Kernels that may write their result over their argument (the rule says so)."""
    rule = SOFTMAX if isinstance(form, Softmax) else rule_of(form.func_class)
    return rule is not None and rule.in_place


def _times_lr(form):
    """The form of ``lr`` times this adjoint, for a step that updates ``p -= grad``.

    Every adjoint is linear in the loss's seed, so scaling the terms that hold
    no delta (the ones the loss gives directly) scales everything downstream:
    the learning rate rides on the small output delta instead of costing a
    pass over every weight gradient.
    """
    from .emit import scale_terms

    return scale_terms(form, sp.Symbol("lr"))


def _names_read(code: list[str]) -> set[str]:
    """Every name the printed code reads (``ast``, so exactly the names Python looks up).

    The preambles bind these and nothing else: a dimension that only a
    broadcast's shape mentions (``np.broadcast_to(..., (1, k))``) is bound,
    and nothing is bound that the code never reads (an unused variable).
    """
    return {
        node.id
        for line in code
        for node in ast.walk(ast.parse(line.strip()))
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)
    }


def _code(lines: list[Line]) -> list[str]:
    """The statements of readable lines: their setup, then their own code."""
    return [code for x in lines for code in [*x.setup, x.code]]


def _dims_in_buffers(net: ir.Network, lines: list[str]) -> set[str]:
    """Dimensions that buffer shapes in emitted lines mention."""
    words = _names_read(lines)
    return {d for d in net.dims if d in words}


def _preamble(
    net: ir.Network, used: set[str], defined: set[str], fwd_dict: bool, dim_sources: dict
) -> list[str]:
    """The lines that bind what a function's code reads: arrays, consts, dims."""
    lines, need = [], set(used) - defined
    masks = [q for q in net.quantities.values() if q.keep is not None and q.name in need]
    for q in masks:  # a mask not given is its mean: built from its shape and probability
        keep = q.keep
        assert keep is not None  # masks have one
        need |= {str(s) for d in q.shape for s in d.free_symbols}
        need |= {str(s) for s in keep.free_symbols}
    dims = [d for d in net.dims if d in need]
    for d in dims:  # a dimension is read from an array's shape
        need.add(dim_sources[d][1])
    for q in net.quantities.values():
        if q.name not in need or q.keep is not None:
            continue
        if q.kind == "param":
            lines.append(f'{q.name} = params["{q.name}"]')
        elif q.classes is not None and q.kind != "intermediate":  # labels, table indices
            lines.append(f'{q.name} = class_labels(data["{q.name}"])')
        elif q.kind in ("input", "target"):
            lines.append(f'{q.name} = np.asarray(data["{q.name}"], DTYPE)')
        elif fwd_dict:
            lines.append(f'{q.name} = fwd["{q.name}"]')
    for c in net.consts:
        if c in need:
            lines.append(f'{c} = data.get("{c}", CONSTS["{c}"])')
    for d in dims:
        _, name, axis = dim_sources[d]
        lines.append(f"{d} = {name}.shape[{axis}]")
    for q in masks:
        lines.append(f'{q.name} = mask(data, "{q.name}", {_mask_args(q)})')
    return lines


def _mask_args(q: ir.Quantity) -> str:
    """``keep, (B, n)``: a bernoulli mask's probability and shape, as code."""
    assert q.keep is not None
    keep = repr(float(q.keep)) if q.keep.is_number else str(q.keep)
    shape = ", ".join(str(d) for d in q.shape)
    return f"{keep}, ({shape}{',' if len(q.shape) == 1 else ''})"


def _mask_context(net: ir.Network) -> dict:
    """What ``draw_masks`` needs: its preamble (dims, consts) and one draw per mask."""
    masks = [q for q in net.of_kind("input") if q.keep is not None]
    need = {str(s) for q in masks for d in q.shape for s in d.free_symbols}
    need |= {str(s) for q in masks for s in q.keep.free_symbols}  # type: ignore[union-attr]
    return {
        "masks": [(q.name, _mask_args(q)) for q in masks],
        "indices": [q.name for q in net.of_kind("input") if q.classes is not None],
        "mask_preamble": _preamble(net, need, set(), False, _dim_sources(net)) if masks else [],
    }


def _bind_repeats(form, printer: CodePrinter, taken: list[str]) -> tuple[list[str], sp.Basic]:
    """``form`` with each sub-form its code would compute twice (``y − t`` in
    ``np.vdot(y - t, y - t)``) read from a temporary bound first: (setup lines, form)."""
    setup = []
    for sub in printed_twice(form):
        name = f"_t{len(taken) + 1}"  # a spec name cannot start with _
        taken.append(name)
        setup.append(f"{name} = {printer.doprint(sub)}")
        local = (Vector if np_rank(sub) == 1 else sp.MatrixSymbol)(name, *sub.shape)
        form = form.xreplace({sub: local})
    return setup, form


@dataclass
class Forms:
    """A network's forward forms: as written, as computed (stable rewrites), and the notes
    naming each rewrite."""

    defs: dict
    stable: dict
    rewrites: dict

    @classmethod
    def of(cls, net: ir.Network) -> Forms:
        """The forms of every equation of ``net``."""
        defs = {eq.name: forward_form(eq.expr) for eq in net.equations}
        return cls(
            defs,
            {name: stabilise(form, defs) for name, form in defs.items()},
            {name: rewrite_notes(defs[name], defs) for name in defs},
        )


def _reading_deltas(d: Derivation) -> Derivation:
    """``d`` with each delta's form, where a later step holds it whole, read from that delta
    instead (``δscores = δgap + …``, not ``relu'(gap)/N + …`` computed again).  Exact: the
    delta holds that very value; the comments print the forms the code computes."""
    earlier: dict[str, sp.Expr] = {}  # the form's key -> the delta holding it

    def reading(form):
        # only a whole adjoint or one of its terms: the fused step holds lr times a delta,
        # which is right where the seed enters linearly, not for a 1 inside (1 − m) ⊙ δ
        if not earlier:
            return form
        if _same(form) in earlier:
            return earlier[_same(form)]
        if isinstance(form, sp.MatAdd):
            return sp.MatAdd(*[earlier.get(_same(a), a) for a in form.args])
        return form

    steps = []
    for s in d.steps:
        matrix = reading(s.matrix)
        steps.append(replace(s, matrix=matrix) if matrix != s.matrix else s)
        local = matrix_symbol(s.symbol, s.indices)
        computed = isinstance(matrix, sp.MatrixExpr) and not isinstance(matrix, sp.MatrixSymbol)
        if computed and getattr(local, "shape", None) == s.matrix.shape:
            earlier[_same(s.matrix)] = earlier[_same(matrix)] = local
    grads = {p: replace(s, matrix=reading(s.matrix)) for p, s in d.gradients.items()}
    return replace(d, steps=steps, gradients=grads)


def _same(form) -> str:
    """A key equal for equal forms: ``srepr`` without the indices of the dummies that each
    :class:`Map`'s function binds (every Map gets fresh ones)."""
    return re.sub(r", dummy_index=\d+", "", sp.srepr(form))


def context(d: Derivation, dtype: str, source: str, spec_name: str) -> dict:
    """The template context of the module generated from ``d``."""
    d = _reading_deltas(d)
    net = d.network
    printer = CodePrinter()
    forms = Forms.of(net)
    forward, predict, prediction = _forward_lines(net, forms, printer)
    backward = [Line(s.symbol, numpy_code(s.matrix, s.shape, printer), s.text()) for s in d.steps]
    grads = [
        Line(p, numpy_code(s.matrix, s.shape, printer), s.text()) for p, s in d.gradients.items()
    ]
    derived = [s.matrix for s in [*d.steps, *d.gradients.values()]]
    used = kernel_names(list(forms.stable.values())) | kernel_names(
        [*forms.defs.values(), *derived]
    )
    batch_dim, batch_axes = _batch_axes(net)
    onehot = [(q.name, q.onehot_axis) for q in net.of_kind("target") if q.onehot_axis is not None]
    emitter = _fused_step(d, forms, printer)
    return {
        **_preambles(d, [forward, predict, [*backward, *grads]], emitter),
        **_mask_context(net),
        # 1-D params whose step buffer is a 1 × n row (B 1 − 1ᵀ x): updated through a view
        "flat_grads": [
            p.name
            for p in net.params
            if len(p.shape) == 1 and not emitter.buffers.get("grad_" + p.name, ",)").endswith(",)")
        ],
        "spec_name": spec_name,
        "source": source.rstrip(),
        "dtype": dtype,
        "params": [(p.name, [str(d) for d in p.shape]) for p in net.params],
        "inputs": [
            (q.name, [str(d) for d in q.shape]) for q in net.of_kind("input") if q.keep is None
        ],
        "targets": [(q.name, [str(d) for d in q.shape]) for q in net.of_kind("target")],
        "consts": list(net.consts.items()),
        "dims": list(net.dims),
        "dim_sources": _dim_sources(net),
        "forward": forward,
        "predict": predict,
        "prediction": prediction,
        "loss": net.loss,
        "backward": backward,
        "grads": grads,
        "derived": [x.comment for x in [*backward, *grads]],
        "inits": init_rules(net),
        "kernels": [kernels.kernel_source(k) for k in sorted(used)],
        "batch_dim": batch_dim,
        "batch_axes": batch_axes,
        "onehot": onehot,
        "labels": [q.name for q in net.of_kind("target") if q.classes is not None],
        "binary": not onehot and _probability_output(net, prediction),
    }


def _forward_lines(
    net: ir.Network, forms: Forms, printer: CodePrinter
) -> tuple[list[Line], list[Line], str]:
    """The lines of ``forward()`` and of ``predict()`` (those that need no target and that
    the prediction depends on), and the prediction's name."""
    needs_target = {q.name for q in net.of_kind("target")}
    forward, predict = [], []
    temps: list[str] = []
    for eq in net.equations:
        setup, form = _bind_repeats(forms.stable[eq.name], printer, temps)
        line = Line(
            eq.name,
            numpy_code(form, eq.shape, printer),
            f"{eq.name} = {text(forms.defs[eq.name])}",
            forms.rewrites[eq.name],
            setup,
        )
        forward.append(line)
        if set(eq.refs()) & needs_target:
            needs_target.add(eq.name)
        else:
            predict.append(line)
    prediction = next(
        eq.name
        for eq in reversed(net.equations[:-1])
        if eq.name not in needs_target and not eq.name.endswith("_in") and eq.shape
    )
    upstream = net.depends_on()[prediction] | {prediction}
    predict = [x for x in predict if x.name in upstream]  # not a scalar penalty beside it
    return forward, predict, prediction


def _dim_sources(net: ir.Network) -> dict[str, tuple[str, str, int]]:
    """Each symbolic dim → (kind, name, axis) of the first input, param or target it sizes."""
    out: dict[str, tuple[str, str, int]] = {}
    for q in [*net.of_kind("input"), *net.of_kind("param"), *net.of_kind("target")]:
        if q.keep is not None:  # a mask is drawn (or its mean built) from the dims: not a source
            continue
        for axis, dim in enumerate(q.shape):
            if isinstance(dim, sp.Symbol) and str(dim) not in out:
                out[str(dim)] = (q.kind, q.name, axis)
    return out


def _probability_output(net: ir.Network, prediction: str) -> bool:
    """The prediction is a function whose rule says its values are probabilities (σ), and
    no target holds class labels: a binary classifier."""
    predicted = net.equation(prediction).expr
    return (
        not any(q.classes is not None for q in net.of_kind("target"))
        and isinstance(predicted, ir.Call)
        and predicted.fn in RULES
        and RULES[predicted.fn].probability
    )


def _preambles(d: Derivation, functions: list[list[Line]], emitter: Emitter) -> dict:
    """The fused step (lines, buffers, the key its buffers are cached under) and the lines
    binding what each function reads (``functions``: the lines of forward, predict and
    gradients), found in the printed code itself."""
    net = d.network
    forward, predict, backward = functions
    dim_sources = _dim_sources(net)
    fwd_used = _names_read(_code(forward))
    pred_used = _names_read(_code(predict))
    bwd_used = _names_read(_code(backward))
    bwd_defined = {s.symbol for s in d.steps}
    step_used = _names_read(emitter.lines + list(emitter.buffers.values())) | {
        p.name for p in net.params
    }
    defined_fwd = {eq.name for eq in net.equations}
    return {
        "step_preamble": _preamble(net, step_used, defined_fwd | bwd_defined, False, dim_sources),
        "step_lines": emitter.lines,
        "step_buffers": emitter.buffers,
        "step_locals": {buffer_local(name): name for name in emitter.buffers},
        "step_key": sorted(
            _dims_in_buffers(net, list(emitter.buffers.values())), key=list(net.dims).index
        ),
        "forward_preamble": _preamble(net, fwd_used, defined_fwd, False, dim_sources),
        "predict_preamble": _preamble(
            net, pred_used, {x.name for x in predict}, False, dim_sources
        ),
        "backward_preamble": _preamble(net, bwd_used, bwd_defined, True, dim_sources),
    }


def _fused_step(d: Derivation, forms: Forms, printer: CodePrinter) -> Emitter:
    """The fused step's statements: forward, deltas and gradients times ``lr``, then the
    loss, reusing what the lines before hold (``X3 − T``, the log-softmax)."""
    net = d.network
    emitter = Emitter(printer)
    loss_form = forms.stable[net.loss]
    emitter.log_softmax = {n for n in sp.preorder_traversal(loss_form) if isinstance(n, LogSoftmax)}
    scaled = {s.symbol: _times_lr(s.matrix) for s in d.steps}
    grads_lr = {p: _times_lr(s.matrix) for p, s in d.gradients.items()}
    emitter.share(loss_form, [*scaled.values(), *grads_lr.values()])
    _step_forward(d, forms, emitter)
    for s in d.steps:
        note = ", times lr" if scaled[s.symbol] != s.matrix else ""
        emitter.lines.append(comment(f"{s.text()}{note}"))
        emitter.assign(s.symbol, scaled[s.symbol])
    for p, s in d.gradients.items():
        emitter.lines.append(comment(f"{s.text()}, times lr"))
        emitter.assign("grad_" + p, grads_lr[p])
        # a gradient has its param's shape: a zero form of a bias is a 1×k matrix,
        # and ``np.subtract(b, grad_b, out=b)`` cannot write (1, k) into (k,)
        dims = [size_code(dim, emitter.printer) for dim in net.quantities[p].shape]
        row = emitter.buffers.get("grad_" + p, "").replace(" ", "") == f"(1,{dims[0]})"
        if not (len(dims) == 1 and row):  # a computed 1 × k row: updated through a view
            emitter.buffers["grad_" + p] = (
                f"({dims[0]},)" if len(dims) == 1 else f"({', '.join(dims)})"
            )
    emitter.lines.append(comment(f"{net.loss} = {text(forms.defs[net.loss])}"))
    emitter.lines += [comment(note) for note in forms.rewrites[net.loss]]
    emitter.lines.append(f"{net.loss} = {printer.doprint(emitter.reuse(loss_form))}")
    return emitter


def _step_forward(d: Derivation, forms: Forms, emitter: Emitter) -> None:
    """The forward lines of the fused step (the loss comes last, after the gradients); an
    activation whose argument nothing later reads runs in that argument's buffer."""
    net = d.network
    later = [forms.stable[eq.name] for eq in net.equations] + [
        s.matrix for s in [*d.steps, *d.gradients.values()]
    ]
    for n, eq in enumerate(net.equations[:-1]):
        emitter.lines.append(comment(f"{eq.name} = {text(forms.defs[eq.name])}"))
        form = forms.stable[eq.name]
        arg = getattr(form, "arg", None)
        in_place = (
            isinstance(form, (Map, Softmax))
            and isinstance(arg, sp.MatrixSymbol)
            and _in_place_safe(form)
            and str(arg.name) not in _symbols(later[n + 1 :])
            and str(arg.name) in emitter.buffers
        )
        if in_place and arg is not None:
            emitter.lines.append(
                comment(f"(in {arg.name}'s buffer: nothing after this line reads {arg.name})")
            )
        emitter.assign(eq.name, form, into=str(arg.name) if in_place and arg is not None else None)
