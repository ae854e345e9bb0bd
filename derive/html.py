"""HTML pieces: MathML, aligned equations, steps, verdicts, notebook fragments and pages.

A whole derivation's page is :func:`derive.report.as_html` (built from these
pieces); this module depends on no derivation, so a :class:`~derive.derivation.Step`
can render itself here.

The math is MathML, converted from the LaTeX printer's output by
``latex2mathml`` (current browsers lay MathML out natively), so a page needs
no JavaScript, no font and no network.  Every piece of user text (spec
names, file names, claims as written) goes through :func:`html.escape`;
MathML comes from the converter, which escapes what it copies.

Equations sit in a table with the left-hand side, ``=`` and the right-hand
side in their own columns, so a block of equations is aligned on ``=`` the
way ``aligned`` aligns it in LaTeX.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from pathlib import Path

_STYLE = """
.derive { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; color: #1b1b1b;
  max-width: 60rem; line-height: 1.4; }
.derive h1 { font-size: 1.5rem; margin: 0.2rem 0; }
.derive h2 { font-size: 1.15rem; margin: 1.2rem 0 0.3rem; border-bottom: 1px solid #ddd; }
.derive .source { color: #555; font-size: 0.9rem; }
.derive table.eqs { border-collapse: collapse; }
.derive table.eqs td { padding: 0.25rem 0.35rem; vertical-align: middle; }
.derive td.lhs { text-align: right; }
.derive td.eq { text-align: center; }
.derive td.rhs { text-align: left; }
.derive td.shape { color: #666; padding-left: 2rem; font-size: 0.9rem; }
.derive math { font-size: 1.15rem; math-style: normal; }
.derive td.steps { padding: 0 0 0.6rem 2rem; }
.derive div.steps { color: #444; font-size: 0.85rem; width: 0; min-width: 100%;
  white-space: pre; font-family: ui-monospace, "DejaVu Sans Mono", monospace; }
.derive .ok { color: #1a7f37; font-weight: bold; }
.derive .bad { color: #cf222e; font-weight: bold; }
.derive table.verdicts { border-collapse: collapse; width: 100%; }
.derive table.verdicts td, .derive table.verdicts th { border-bottom: 1px solid #eee;
  padding: 0.4rem; text-align: left; vertical-align: top; }
.derive tr.first-wrong { background: #fff1f0; outline: 2px solid #cf222e; }
.derive .note { color: #555; font-size: 0.9rem; }
pre.spec { background: #f6f8fa; padding: 0.6rem; font-size: 0.9rem; }
"""


def math(tex: str, display: bool = False) -> str:
    """MathML for one LaTeX fragment (``latex2mathml``; no JavaScript needed to show it)."""
    from latex2mathml.converter import convert

    mathml = convert(tex, display="block" if display else "inline")
    # latex2mathml puts \hat's accent as U+005E, which Chromium stretches into a wide
    # roof set high above the letter; U+02C6 is the small circumflex that sits on it
    return mathml.replace(_WIDE_HAT, _SMALL_HAT)


_WIDE_HAT = "<mo>&#x0005E;</mo></mover>"
_SMALL_HAT = "<mo>&#x002C6;</mo></mover>"


def page(title: str, body: str) -> str:
    """A complete, self-contained HTML document: inline style, no script, no links."""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n"
        f"<body>\n{body}\n</body>\n</html>\n"
    )


def fragment(body: str) -> str:
    """A piece for a notebook cell: the same style, scoped to ``.derive``."""
    return f"<style>{_STYLE}</style>\n{body}"


def equations(rows: Iterable[tuple[str, str, str, list[str] | None]]) -> str:
    """Rows of (lhs LaTeX, rhs LaTeX, shape LaTeX, step lines or None), aligned on ``=``."""
    out = ['<table class="eqs">']
    for lhs, rhs, shape, steps in rows:
        out.append(
            f'<tr><td class="lhs">{math(lhs)}</td><td class="eq">{math("=")}</td>'
            f'<td class="rhs">{math(rhs)}</td><td class="shape">{math(shape)}</td></tr>'
        )
        if steps:
            text = "\n".join(html.escape(s) for s in steps)
            # width 0: the chain-rule lines overflow the cell instead of widening the columns
            out.append(
                f'<tr><td colspan="4" class="steps"><div class="steps">{text}</div></td></tr>'
            )
    out.append("</table>")
    return "\n".join(out)


def proofs_list(proofs) -> str:
    """The proofs as an HTML list."""
    out = ["<ul>"]
    for p in proofs:
        mark = '<span class="ok">✓</span>' if p.passed else '<span class="bad">✗</span>'
        out.append(f"<li>{mark} {html.escape(p.name)} ({p.seconds:.2f} s)</li>")
    out.append("</ul>")
    return "\n".join(out)


def step_body(step) -> str:
    """One step: its matrix form with its shape."""
    from .latexnames import latex_name, latex_shape
    from .printing import latex

    if step.kind == "gradient":
        lhs = rf"\frac{{\partial {latex_name(step.loss)}}}{{\partial {latex_name(step.name)}}}"
    else:
        lhs = latex_name(step.symbol)
    rows = [(lhs, latex(step.matrix), latex_shape(step.shape), None)]
    return '<div class="derive">' + equations(rows) + "</div>"


_MARK = {"correct": ("ok", "✓"), "incorrect": ("bad", "✗"), "ill-formed": ("bad", "✗")}


def verdicts_body(results, errors=(), title: str = "verify", source: str = "") -> str:
    """A table of verdicts: one row a statement, the first wrong one highlighted, the
    correct form beside each wrong one.  Uses only the results' public fields."""
    out = ['<div class="derive">', f"<h1>{html.escape(title)}</h1>"]
    if source:
        out.append(f'<div class="source">{html.escape(source)}</div>')
    n_ok = sum(r.verdict == "correct" for r in results)
    out.append(f'<p class="note">{n_ok} of {len(results)} statements correct</p>')
    out.append(
        '<table class="verdicts"><tr><th></th><th>statement</th><th>verdict</th>'
        "<th>correct form</th></tr>"
    )
    first = next(
        (i for i, r in enumerate(results) if r.verdict != "correct" and r.built_on is None), None
    )
    for i, r in enumerate(results):
        cls, mark = _MARK.get(r.verdict, ("bad", "✗"))
        detail = [html.escape(r.reason or "")]
        if r.diagnosis:
            detail.append(f"diagnosis: {html.escape(r.diagnosis)}")
        row_class = ' class="first-wrong"' if i == first else ""
        expected = html.escape(r.expected) if r.expected and r.verdict != "correct" else ""
        out.append(
            f'<tr{row_class}><td class="{cls}">{mark}</td>'
            f"<td><code>{html.escape(r.text)}</code></td>"
            f'<td><span class="{cls}">{html.escape(r.verdict)}</span><br>'
            f'<span class="note">{"<br>".join(detail)}</span></td>'
            f"<td><code>{expected}</code></td></tr>"
        )
    out.append("</table>")
    if errors:
        out.append("<h2>Not read</h2><ul>")
        out += [f"<li><code>{html.escape(str(e))}</code></li>" for e in errors]
        out.append("</ul>")
    out.append("</div>")
    return "\n".join(out)


def write_atomic(path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename."""
    import os
    import tempfile

    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent if str(path.parent) else ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
