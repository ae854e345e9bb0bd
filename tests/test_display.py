"""Rich display and typesetting: names as textbooks write them, HTML with MathML, LaTeX
documents, short reprs, escaped user text, colour only where a person reads it."""

from __future__ import annotations

import html.parser
import re

import pytest

import derive
from derive import cli, report
from derive.html import math
from derive.latexnames import latex_name, latex_shape
from derive.spec import bundled
from derive.term import use_colour, verdict_text

# hand-written: how each name is typeset
NAMES = {
    "n_h1": "n_{h1}",
    "n_in": r"n_{\mathrm{in}}",
    "y_hat": r"\hat{y}",
    "Y_hat": r"\hat{Y}",
    "x_bar": r"\bar{x}",
    "z_tilde": r"\tilde{z}",
    "X1_in": r"X_{1,\mathrm{in}}",
    "lam": r"\lambda",
    "alpha": r"\alpha",
    "W1": "W_{1}",
    "W": "W",
    "logits": r"\mathrm{logits}",
    "delta_z1": r"\delta_{z_{1}}",
    "delta_y_hat": r"\delta_{\hat{y}}",
    "δ3": r"\delta_{3}",
}


@pytest.mark.parametrize("name", NAMES)
def test_names_are_typeset_as_textbooks_write_them(name):
    assert latex_name(name) == NAMES[name]


def test_scalar_is_a_word_and_shapes_group_their_subscripts():
    assert latex_shape(()) == r"\text{scalar}"
    assert latex_shape(("B", "n_h1")) == r"[B \times n_{h1}]"


def _text_of(mathml: str) -> str:
    return re.sub(r"<[^>]+>", "", mathml)


@pytest.mark.parametrize("spec", sorted(bundled()))
def test_every_fragment_converts_to_mathml_without_leftover_tex(spec):
    """Every LaTeX fragment of every bundled spec is read by a LaTeX-to-MathML converter
    with nothing left as raw TeX (an unknown command would stay as a backslash)."""
    d = derive.load(spec)
    forward, deltas, grads = report.lines(d)
    for x in [*forward, *deltas, *grads]:
        for tex in (x.lhs_latex, derive.printing.latex(x.form), latex_shape(x.shape)):
            assert tex.count("{") == tex.count("}")
            out = math(tex)
            assert out.startswith("<math") and "merror" not in out
            assert "\\" not in _text_of(out), (tex, out)


def test_hat_is_the_small_circumflex_on_its_letter():
    """\\hat becomes U+02C6 over the letter (the caret U+005E that latex2mathml writes
    renders as a wide roof set high in Chromium)."""
    out = math(r"\hat{y}_{k} = \hat{W}")
    assert out.count("<mo>&#x002C6;</mo></mover>") == 2 and "&#x0005E;" not in out
    assert out.count('<mover accent="true">') == 2


def test_standalone_latex_is_a_complete_balanced_document(capsys):
    assert cli.main(["grad", "seed002", "--format", "latex", "--standalone"]) == 0
    doc = capsys.readouterr().out
    assert doc.startswith(r"\documentclass") and doc.rstrip().endswith(r"\end{document}")
    assert r"\usepackage{amsmath,amssymb}" in doc
    begins = re.findall(r"\\begin\{(\w+\*?)\}", doc)
    ends = re.findall(r"\\end\{(\w+\*?)\}", doc)
    assert sorted(begins) == sorted(ends) and begins.count("align*") == 3
    assert doc.count("{") == doc.count("}")
    assert r"\hat{y} &= \operatorname{softmax}" in doc and r"[B \times n_{h1}]" in doc
    # the align* bodies convert: amsmath's && is a column separator MathML tables read
    for body in re.findall(r"\\begin\{align\*\}\n(.*?)\n\\end\{align\*\}", doc, re.S):
        for row in body.split(" \\\\\n"):
            lhs, rhs, shape = re.split(r" &= | && ", row)
            assert "\\" not in _text_of(math(lhs + "=" + rhs + r"\quad " + shape))


class _Text(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.skip, self.parts, self.tags = 0, [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag in ("style", "math"):
            self.skip += 1

    def handle_endtag(self, tag):
        if tag in ("style", "math"):
            self.skip -= 1

    def handle_data(self, data):
        if not self.skip:
            self.parts.append(data)


def test_html_page_is_self_contained_and_aligned(tmp_path, capsys):
    out = tmp_path / "page.html"
    assert cli.main(["grad", "seed002", "--format", "html", "--steps", "-o", str(out)]) == 0
    page = out.read_text()
    parser = _Text()
    parser.feed(page)
    assert "script" not in parser.tags and "link" not in parser.tags and "img" not in parser.tags
    assert "http://" not in page.replace("http://www.w3.org/1998/Math/MathML", "")
    assert "https://" not in page
    # every equation: lhs, =, rhs and shape cells, so a block aligns on =
    assert page.count('<td class="eq">') == 7 + 5 + 6
    assert page.count("<math") == 1 + 4 * 18
    text = "".join(parser.parts)
    assert "Kronecker deltas summed" in text and "\\" not in text
    assert not list(tmp_path.glob("*.tmp"))  # written through a temporary file


def test_user_text_is_escaped(tmp_path):
    spec = tmp_path / "a<b>&'x.nn"
    spec.write_text("input x[B, n]\nparam w[n, 1]\nL = sum((x @ w) ** 2)\n")
    page = derive.load(str(spec)).html(standalone=True)
    assert "a&lt;b&gt;&amp;&#x27;x.nn" in page and "<b>" not in page
    v = derive.verify("seed000", "dL/dS = h @ (2 * (y - t)) # <script>alert(1)</script>")
    snippet = v.html(standalone=True)
    assert "<script>" not in snippet


def test_verify_html_highlights_the_first_wrong_line_with_the_correct_form(tmp_path, capsys):
    claims = tmp_path / "c.claims"
    claims.write_text(
        "dL/dS = h.T @ (2 * (y - t))\ndL/dS = h @ (2 * (y - t))\ndL/dS = h.T @ (y - t)\n"
    )
    out = tmp_path / "v.html"
    code = cli.main(["verify", "seed000", str(claims), "--format", "html", "-o", str(out)])
    page = out.read_text()
    assert code == 1
    rows = re.findall(r"<tr( class=\"first-wrong\")?><td class=\"(ok|bad)\">", page)
    assert rows == [("", "ok"), (' class="first-wrong"', "bad"), ("", "bad")]
    first = page.split('class="first-wrong"')[1].split("</tr>")[0]
    assert "∂L/∂S = hᵀ δy" in first  # the correct form beside it


def test_derivation_and_step_have_short_reprs_and_rich_forms():
    d = derive.load("seed002")
    assert repr(d) == (
        "<Derivation seed002: 7 forward equations, 5 deltas, 6 gradients (W1, b1, W2, b2, W3, b3)>"
    )
    assert str(d) == report.as_text(d)
    g = d.gradients["W1"]
    assert repr(g) == "<Step ∂L/∂W1 = Xᵀ δz1  [n_in×n_h1]>" and str(g) == "∂L/∂W1 = Xᵀ δz1"
    html_out = d._repr_html_()
    assert html_out.count('<td class="eq">') == 18 and "Proofs" not in html_out
    assert "<math" in g._repr_html_() and g._repr_markdown_().startswith("$$")
    assert d._repr_markdown_().startswith("# seed002") and r"\begin{aligned}" in d._repr_latex_()
    small = derive.load("seed000")  # the proofs of the small network: seconds, not tens
    small.check()
    assert "Proofs" in small._repr_html_() and small._repr_html_().count("✓") == 3


def test_verification_object_from_python():
    v = derive.verify("seed000", "dL/dS = h.T @ (2 * (y - t)); dL/dS = h @ (2 * (y - t))")
    assert [r.verdict for r in v] == ["correct", "ill-formed"] and not v.ok
    assert v.as_dict()["results"][1]["verdict"] == "ill-formed"
    rows = v._repr_markdown_().splitlines()
    assert len(rows) == 4 and rows[3].startswith("| ✗ |") and "`∂L/∂S = hᵀ δy" in rows[3]
    assert "\033[" not in str(v) and "correct form: ∂L/∂S = hᵀ δy" in str(v)
    assert derive.verify(identities=["tanh'(z) = 1 - tanh(z)**2"]).ok
    from derive.verify import verify_all  # importing the submodule leaves the function

    assert callable(derive.verify) and callable(verify_all) and derive.verify is not verify_all
    assert derive.verify("seed000", "dL/dS = h.T @ (2 * (y - t))").ok


class _Tty:
    def isatty(self):
        return True


def test_colour_only_on_a_terminal_and_without_no_color(monkeypatch, capsys):
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert use_colour(_Tty()) and not use_colour(open(__file__))  # noqa: SIM115
    monkeypatch.setenv("NO_COLOR", "1")
    assert not use_colour(_Tty())
    r = derive.verify("seed000", "dL/dS = h @ (2 * (y - t))")[0]
    coloured = verdict_text(r, colour=True)
    assert "\033[31m✗\033[0m" in coloured and "\033[" not in verdict_text(r, colour=False)
    ok = derive.verify("seed000", "dL/dS = h.T @ (2 * (y - t))")[0]
    assert "\033[32m✓\033[0m" in verdict_text(ok, colour=True)
    monkeypatch.delenv("NO_COLOR")
    cli.main(["verify", "seed000", "--claim", "dL/dS = h @ (2 * (y - t))"])
    assert "\033[" not in capsys.readouterr().out  # captured output is not a terminal
