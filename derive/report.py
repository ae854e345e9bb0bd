"""What ``derive grad`` shows: a derivation as Unicode text, LaTeX, Markdown or JSON."""

from __future__ import annotations

import html as _escape
import json
from dataclasses import dataclass
from pathlib import Path

import sympy as sp

from . import html
from .check import Proof
from .derivation import Derivation, Step, display_elementwise
from .indices import dim_of, indices_in, named_index
from .latexnames import latex_name, latex_shape
from .matexpr import forward_form
from .printing import LatexFormPrinter, fmt_dims, latex, numpy_code, text


@dataclass
class Line:
    """One equation of the report: forward value, delta or gradient."""

    name: str
    lhs_text: str
    lhs_latex: str
    shape: tuple
    form: sp.Expr
    step: Step | None = None

    def as_dict(self) -> dict:
        """The line as JSON-ready data."""
        out = {
            "name": self.name,
            "shape": [str(d) for d in self.shape],
            "text": f"{self.lhs_text} = {text(self.form)}",
            "latex": f"{self.lhs_latex} = {latex(self.form)}",
            "numpy": numpy_code(self.form, self.shape),
        }
        if self.step is not None:
            lhs, rhs = display_elementwise(self.step)
            out["elementwise"] = f"{text(lhs)} = {text(rhs)}"
            if self.step.inlined:
                out["fused"] = ["delta_" + n for n in self.step.inlined]
        return out


def lines(d: Derivation) -> tuple[list[Line], list[Line], list[Line]]:
    """The forward, delta and gradient lines of a derivation, in printing order."""
    lp = LatexFormPrinter()
    forward = [
        Line(eq.name, eq.name, lp.name(eq.name), eq.shape, forward_form(eq.expr))
        for eq in d.network.equations
    ]
    deltas = [
        Line(s.symbol, text(sp.Symbol(s.symbol)), lp.name(s.symbol), s.shape, s.matrix, s)
        for s in d.steps
    ]
    loss = d.network.loss
    grads = [
        Line(
            s.symbol,
            f"∂{loss}/∂{p}",
            rf"\frac{{\partial {lp.name(loss)}}}{{\partial {lp.name(p)}}}",
            s.shape,
            s.matrix,
            s,
        )
        for p, s in d.gradients.items()
    ]
    return forward, deltas, grads


# ---------------------------------------------------------------------------


def as_json(d: Derivation, proofs: list[Proof] | None = None) -> str:
    """The derivation (and proofs, if given) as a JSON document."""
    forward, deltas, grads = lines(d)
    out = {
        "spec": d.network.name,
        "file": d.network.file,
        "loss": d.network.loss,
        "dims": list(d.network.dims),
        "forward": [f.as_dict() for f in forward],
        "steps": [s.as_dict() for s in deltas],
        "gradients": {p: g.as_dict() for p, g in zip(d.gradients, grads, strict=True)},
    }
    if proofs is not None:
        out["check"] = {p.name.split(" ")[0]: {"title": p.name, **p.as_dict()} for p in proofs}
    return json.dumps(out, indent=2, ensure_ascii=False)


def as_text(
    d: Derivation, elementwise: bool = False, steps: bool = False, proofs: list[Proof] | None = None
) -> str:
    """The derivation as the terminal report of ``derive grad``."""
    forward, deltas, grads = lines(d)
    out = [f"{d.network.name}  ({d.network.file})", ""]
    width = max(len(f"{x.lhs_text} = {text(x.form)}") for x in [*forward, *deltas, *grads])
    width = min(width, 72)

    def row(x: Line) -> str:
        eq = f"{x.lhs_text} = {text(x.form)}"
        return f"  {eq:<{width}}  {fmt_dims(x.shape)}"

    out.append("forward")
    out += [row(x) for x in forward]
    for title, group in (("deltas", deltas), ("gradients", grads)):
        out += ["", title]
        for x in group:
            out.append(row(x))
            if elementwise and x.step is not None:
                lhs, rhs = display_elementwise(x.step)
                out.append(f"      {text(lhs)} = {text(rhs)}")
            if steps and x.step is not None:
                out += ["      " + s for s in chain_text(x.step)]
    if proofs is not None:
        out += ["", "proofs"]
        for p in proofs:
            mark = "✓" if p.passed else "✗"
            out.append(f"  {mark} {p.name}  ({p.seconds:.2f} s)")
            for name, outcome in p.details.items():
                if not p.passed or name.startswith("delta_") and outcome.startswith("rel"):
                    out.append(f"      {text(sp.Symbol(name))}: {outcome}")
    return "\n".join(out)


def chain_text(step: Step) -> list[str]:
    """The chain rule step by step: local derivative, Kronecker deltas summed, matrix form."""
    out = []
    names = _readable(step)
    lhs = (
        text(sp.Indexed(sp.IndexedBase(step.symbol), *step.indices).xreplace(names))
        if step.indices
        else text(sp.Symbol(step.symbol))
    )
    for c in step.contributions:
        out.append(f"through {c.source}:  {lhs} ∋ {text(c.raw.xreplace(names))}")
        summed = " + ".join(text(t.as_expr().xreplace(names)) for t in c.terms) or "0"
        out.append(f"  Kronecker deltas summed:  {summed}")
    if step.inlined:
        fused = ", ".join("δ" + n for n in step.inlined)
        total = " + ".join(text(t.as_expr().xreplace(names)) for t in step.terms)
        out.append(f"fusing {fused} and simplifying:  {total}")
    out.append(f"matrix form:  {text(step.matrix)}")
    return out


def chain_latex(step: Step) -> list[str]:
    """:func:`chain_text` in LaTeX: one row per stage of the chain rule."""
    out = []
    names = _readable(step)
    lhs = (
        latex(sp.Indexed(sp.IndexedBase(step.symbol), *step.indices).xreplace(names))
        if step.indices
        else latex_name(step.symbol)
    )
    for c in step.contributions:
        out.append(
            rf"\text{{through }} {latex_name(c.source)}\colon\ {lhs} \ni "
            + latex(c.raw.xreplace(names))
        )
        summed = " + ".join(latex(t.as_expr().xreplace(names)) for t in c.terms) or "0"
        out.append(rf"\quad \text{{Kronecker deltas summed: }} {summed}")
    if step.inlined:
        fused = ", ".join(latex_name(f"delta_{n}") for n in step.inlined)
        total = " + ".join(latex(t.as_expr().xreplace(names)) for t in step.terms)
        out.append(rf"\text{{fusing }} {fused} \text{{ and simplifying: }} {total}")
    out.append(rf"\text{{matrix form: }} {latex(step.matrix)}")
    return out


def _readable(step: Step) -> dict:
    """Index names for display: the free ones i, j; the summed ones k, l, m, … ."""
    pool = iter("klmnpqrsuvw")
    ren = {
        a: named_index(n, dim_of(a))
        for a, n in zip([i for i in step.indices if isinstance(i, sp.Symbol)], "ij", strict=False)
    }
    for c in step.contributions:
        for sym in sorted((indices_in(c.raw) | _bound(c.raw)) - set(ren), key=str):
            ren[sym] = named_index(next(pool, sym.name), dim_of(sym))
        for t in c.terms:
            for sym in t.summed:
                if sym not in ren:
                    ren[sym] = named_index(next(pool, sym.name), dim_of(sym))
    for t in step.terms:
        for sym in t.summed:
            if sym not in ren:
                ren[sym] = named_index(next(pool, sym.name), dim_of(sym))
    return ren


def _bound(expr) -> set:
    return {lim[0] for s in expr.atoms(sp.Sum) for lim in s.limits}


def as_latex(
    d: Derivation,
    standalone: bool = False,
    proofs: list[Proof] | None = None,
    steps: bool = False,
) -> str:
    """The equations in an ``aligned`` block, or (``standalone``) a complete amsmath document
    with the forward pass, the deltas and the gradients, each equation with its shape;
    ``steps``: each delta and gradient followed by its chain rule (:func:`chain_latex`)."""
    forward, deltas, grads = lines(d)

    def chain(x, cols: str) -> list[str]:
        if not steps or x.step is None:
            return []
        return [rf"&\qquad {row}{cols}" for row in chain_latex(x.step)]

    if not standalone:
        rows = []
        for x in [*forward, *deltas, *grads]:
            rows += [rf"{x.lhs_latex} &= {latex(x.form)}", *chain(x, "")]
        return "\\begin{aligned}\n" + " \\\\\n".join(rows) + "\n\\end{aligned}"
    body = []
    for title, group in (("Forward pass", forward), ("Deltas", deltas), ("Gradients", grads)):
        body.append(rf"\subsection*{{{title}}}")
        body.append(r"\begin{align*}")
        rows = []
        for x in group:
            rows += [rf"{x.lhs_latex} &= {latex(x.form)} && {latex_shape(x.shape)}", *chain(x, "")]
        body.append(" \\\\\n".join(rows))
        body.append(r"\end{align*}")
    return latex_document(d.network, rf"; loss ${latex_name(d.network.loss)}$.", body, proofs)


def latex_document(network, intro: str, body: list[str], proofs: list[Proof] | None) -> str:
    """A complete amsmath document: the network's name, its spec file and ``intro``
    (LaTeX), the ``body`` lines, then each proof's verdict when there are proofs."""
    out = [
        r"\documentclass[11pt]{article}",
        r"\usepackage[utf8]{inputenc}",
        r"\usepackage{amsmath,amssymb}",
        r"\usepackage[margin=2cm]{geometry}",
        r"\begin{document}",
        rf"\section*{{{latex_text(network.name)}}}",
        rf"Spec \texttt{{{latex_text(str(network.file))}}}{intro}",
        *body,
    ]
    if proofs is not None:
        out.append(r"\subsection*{Proofs}")
        out.append(r"\begin{itemize}")
        out += [
            rf"\item {'passed' if p.passed else 'FAILED'}: {latex_text(p.name)}" for p in proofs
        ]
        out.append(r"\end{itemize}")
    out.append(r"\end{document}")
    return "\n".join(out) + "\n"


_LATEX_SPECIAL = {c: "\\" + c for c in "#$%&_{}"} | {
    "\\": r"\textbackslash{}",
    "^": r"\textasciicircum{}",
    "~": r"\textasciitilde{}",
}


def latex_text(s: str) -> str:
    """User text (a spec or file name) inside LaTeX text: every special character escaped."""
    return "".join(_LATEX_SPECIAL.get(c, c) if c.isascii() else "?" for c in s)


def as_markdown(d: Derivation, proofs: list[Proof] | None = None) -> str:
    """The derivation (and proofs, if given) as Markdown."""
    forward, deltas, grads = lines(d)
    out = [f"# {d.network.name}", ""]
    for title, group in (("Forward", forward), ("Deltas", deltas), ("Gradients", grads)):
        out += [
            f"## {title}",
            "",
            "| quantity | shape | matrix form | NumPy |",
            "|---|---|---|---|",
        ]
        for x in group:
            out.append(
                f"| ${x.lhs_latex}$ | ${latex_shape(x.shape)}$ | ${latex(x.form)}$ | "
                f"`{numpy_code(x.form, x.shape)}` |"
            )
        out.append("")
    if proofs is not None:
        out += ["## Proofs", ""]
        out += [f"- {'✓' if p.passed else '✗'} {p.name} ({p.seconds:.2f} s)" for p in proofs]
    return "\n".join(out)


def as_html(
    d: Derivation, steps: bool = False, proofs: list[Proof] | None = None, standalone: bool = False
) -> str:
    """HTML with MathML (no JavaScript, no network): a notebook fragment, or (``standalone``)
    a whole page with the spec's text; ``steps``: each chain rule under its equation."""
    body = html_body(d, steps=steps, proofs=proofs, spec_text=standalone)
    if standalone:
        return html.page(f"{d.network.name}: derivation", body)
    return html.fragment(body)


def html_body(
    d: Derivation, steps: bool = False, proofs: list[Proof] | None = None, spec_text: bool = False
) -> str:
    """The body of a derivation: forward pass, deltas and gradients, with shapes and proofs."""
    forward, deltas, grads = lines(d)
    net = d.network
    out = [
        '<div class="derive">',
        f"<h1>{_escape.escape(net.name)}</h1>",
        # the file's name, not its folder: a page handed out should not show the author's paths
        f'<div class="source">{_escape.escape(Path(str(net.file)).name)} · loss '
        f"{html.math(latex_name(net.loss))}</div>",
    ]
    if spec_text and getattr(net, "source", None):
        out.append(f'<pre class="spec">{_escape.escape(net.source)}</pre>')
    for title, group in (("Forward pass", forward), ("Deltas", deltas), ("Gradients", grads)):
        out.append(f"<h2>{title}</h2>")
        out.append(
            html.equations(
                (
                    x.lhs_latex,
                    latex(x.form),
                    latex_shape(x.shape),
                    chain_text(x.step) if steps and x.step is not None else None,
                )
                for x in group
            )
        )
    if proofs is not None:
        out.append("<h2>Proofs</h2>")
        out.append(html.proofs_list(proofs))
    out.append("</div>")
    return "\n".join(out)
