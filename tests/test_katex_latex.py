"""Every LaTeX fragment ``derive`` produces is valid KaTeX (``throwOnError``, strict) and,
as a document, compiles with pdflatex and amsmath.

KaTeX comes from npm: ``.ci/run`` installs it with ``npm install --prefix .ci/node katex``
(locally: the same command in the repository).  TeX Live's ``pdflatex`` comes from
Debian's ``texlive-latex-base`` (installed by ``.ci/run`` too).  Neither is skipped when
missing: the test fails and says how to install it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

import derive
from derive import cli, report
from derive.latexnames import latex_name, latex_shape
from derive.spec import bundled

ROOT = Path(__file__).resolve().parent.parent
KATEX = ROOT / ".ci" / "node" / "node_modules" / "katex"
CHECK = Path(__file__).resolve().parent / "js" / "katex_check.js"


def _fragments(capsys) -> list[tuple[str, bool]]:
    """(LaTeX, display mode) of everything the LaTeX outputs hold, for every bundled spec."""
    out: list[tuple[str, bool]] = []
    for spec in sorted(bundled()):
        d = derive.load(spec)
        for flags in ([], ["--steps"], ["--check"]):
            assert cli.main(["grad", spec, "--format", "latex", *flags]) in (0, 1)
            tex = capsys.readouterr().out
            assert (r"\text{through }" in tex) == (flags == ["--steps"])  # the chain rule
            out.append((tex, True))
        out.append((d._repr_latex_().strip("$"), False))
        out.append((latex_name(d.network.loss), False))
        forward, deltas, grads = report.lines(d)
        for x in [*forward, *deltas, *grads]:
            out += [(x.lhs_latex, False), (derive.printing.latex(x.form), False)]
            out.append((latex_shape(x.shape), False))
            if x.step is not None:
                out += [(row, True) for row in report.chain_latex(x.step)]
                out.append((x.step.latex(), True))
                out.append((x.step._repr_latex_().strip("$"), False))
        # the standalone document's align* bodies (KaTeX reads align* in display mode)
        doc = report.as_latex(d, standalone=True, steps=True)
        body = doc.split(r"\begin{align*}")[1:]
        out += [
            (r"\begin{align*}" + b.split(r"\end{align*}")[0] + r"\end{align*}", True) for b in body
        ]
        # Markdown's $...$ cells
        for cell in report.as_markdown(d).split("$")[1::2]:
            out.append((cell, False))
    out += [(derive.load(spec).latex(), True) for spec in ("char_rnn", "char_lstm")]  # loops
    return out


def test_every_latex_fragment_renders_in_katex(capsys):
    node = shutil.which("node")
    assert node, "node is not installed: KaTeX runs on Node.js (apt-get install nodejs)"
    assert KATEX.is_dir(), (
        f"KaTeX is not installed in {KATEX.parent}: run `npm install --prefix .ci/node katex` "
        "in the repository (.ci/run does)"
    )
    fragments = _fragments(capsys)
    assert len(fragments) > 200
    done = subprocess.run(
        [node, str(CHECK), str(KATEX)],
        input=json.dumps(fragments),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_katex_check_can_fail():
    """The same check refuses what KaTeX cannot read (an unknown command, unbalanced braces)."""
    node = shutil.which("node")
    assert node and KATEX.is_dir(), "KaTeX is not installed: npm install --prefix .ci/node katex"
    bad = [[r"\operatorname{softmax}\left(z\right", False], [r"\hadamard x", False]]
    done = subprocess.run(
        [node, str(CHECK), str(KATEX)],
        input=json.dumps(bad),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1 and done.stdout.count("\n") == 2, done.stdout + done.stderr


@pytest.mark.parametrize("spec", ["seed002", "seed003"])
def test_standalone_document_compiles_with_pdflatex(spec, tmp_path, capsys):
    pdflatex = shutil.which("pdflatex")
    assert pdflatex, "pdflatex is not installed: apt-get install texlive-latex-base (.ci/run does)"
    assert cli.main(["grad", spec, "--format", "latex", "--standalone", "--check", "--steps"]) == 0
    (tmp_path / "doc.tex").write_text(capsys.readouterr().out)
    done = subprocess.run(
        [pdflatex, "-interaction=nonstopmode", "-halt-on-error", "-no-shell-escape", "doc.tex"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout[-3000:]
    assert (tmp_path / "doc.pdf").stat().st_size > 10_000
    log = (tmp_path / "doc.log").read_text(errors="replace")
    assert "Undefined control sequence" not in log and "Missing $" not in log
    assert "Double subscript" not in log
