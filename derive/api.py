"""The Python face of ``derive grad`` and ``derive verify``: objects, not printed text.

>>> import derive
>>> d = derive.load("seed000")
>>> print(d.gradients["W"])
∂L/∂W = xᵀ δu
>>> v = derive.verify("seed000", "dL/dS = h.T @ (2 * (y - t)); dL/dS = h @ (2 * (y - t))")
>>> v
<Verification seed000: 1 correct, 1 ill-formed>
>>> v.ok, [r.verdict for r in v]
(False, ['correct', 'ill-formed'])
>>> print(v[1].expected)
∂L/∂S = hᵀ δy   where δy = 2 (y − t)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from pathlib import Path

from . import check, derivation, ir, report
from .errors import SpecError


def load_network(source: str | Path):
    """Parse a spec given as a path, a bundled name (``seed000``) or the spec text itself.

    >>> import derive
    >>> net = derive.load_network("input x[B, n]\\nparam w[n, 1]\\nL = sum((x @ w) ** 2)")
    >>> [p.name for p in net.params], net.loss
    (['w'], 'L')
    """
    from .spec import bundled, parse, parse_file

    # text is anything of more than one line (a spec needs a declaration and
    # an equation): a one-line string is a path or a bundled name, even with "="
    if isinstance(source, str) and ("\n" in source or "\r" in source):
        return parse(source, file="<text>", name="spec")
    try:
        is_file = Path(source).is_file()
    except (OSError, ValueError):  # a NUL or an over-long name: not a file
        is_file = False
    if is_file:
        return parse_file(source)
    specs = bundled()
    if str(source) in specs:
        return parse_file(specs[str(source)])
    from .loops import bundled as bundled_loops

    loops = bundled_loops()  # specs with a loop over time
    if str(source) in loops:
        return parse_file(loops[str(source)])
    raise SpecError(
        f"no spec file or bundled spec named {str(source)!r}; bundled: {', '.join(specs)}",
        str(source),
        1,
        1,
    )


def load(source: str | Path) -> Derivation:
    """Parse and derive: the :class:`Derivation` of a spec.

    >>> import derive
    >>> d = derive.load("seed002")
    >>> d.gradients["b1"].numpy()
    'delta_z1.sum(axis=0)'
    """
    return derive(load_network(source))


def derive(net: ir.Network, keep_all: bool = False) -> Derivation:
    """Derive every delta and gradient of a parsed network (``derive grad``).

    >>> import derive
    >>> d = derive.derive(derive.load_network("seed000"))
    >>> d.check()[0].passed
    True
    """
    if net.loop is not None:  # a recurrence: the body and the outer equations, chained
        from .loops import derive as derive_loop

        return derive_loop(net)  # type: ignore[return-value]
    return Derivation.of(derivation.derive(net, keep_all=keep_all))


class Derivation(derivation.Derivation):
    """Every delta and gradient of a network, with its proofs and its displays for terminals
    and notebooks (:func:`load` returns one).

    >>> import derive
    >>> d = derive.load("seed000")
    >>> print(d.gradients["S"])
    ∂L/∂S = hᵀ δy
    >>> "<math" in d._repr_html_()  # Jupyter shows MathML: no JavaScript needed
    True
    >>> print(d.text().splitlines()[-1])
      ∂L/∂S = hᵀ δy       [n_h×n_y]
    """

    @classmethod
    def of(cls, d: derivation.Derivation) -> Derivation:
        """The same derivation (not a copy of its steps), with the proofs and displays."""
        return cls(**{f.name: getattr(d, f.name) for f in fields(d)})

    def check(self, seed: int = 0) -> list[check.Proof]:
        """Run the three proofs (symbolic, exact, numeric); keep them for display.

        >>> import derive
        >>> d = derive.load("seed000")
        >>> all(p.passed for p in d.check())
        True
        """
        self.proofs = check.run_all(self, seed=seed)
        return self.proofs

    def __str__(self) -> str:
        return self.text()

    def text(self, steps: bool = False, elementwise: bool = False) -> str:
        """Unicode text, as ``derive grad`` prints it."""
        return report.as_text(self, elementwise=elementwise, steps=steps, proofs=self.proofs)

    def latex(self, standalone: bool = False) -> str:
        """An ``aligned`` block; with ``standalone``, a complete LaTeX document."""
        return report.as_latex(self, standalone=standalone, proofs=self.proofs)

    def markdown(self) -> str:
        """The derivation as Markdown."""
        return report.as_markdown(self, self.proofs)

    def html(self, steps: bool = False, standalone: bool = False) -> str:
        """HTML with MathML: a notebook fragment, or (``standalone``) a whole page."""
        return report.as_html(self, steps=steps, proofs=self.proofs, standalone=standalone)

    def _repr_html_(self) -> str:
        return self.html()

    def _repr_markdown_(self) -> str:
        return self.markdown()

    def _repr_latex_(self) -> str:
        return "$" + self.latex() + "$"


@dataclass
class Verification:
    """The verdicts of ``derive verify``: iterate for one result per statement.

    Each result has ``verdict`` (``correct``, ``incorrect`` or ``ill-formed``),
    ``text``, ``reason``, ``diagnosis``, ``expected`` (the correct form) and
    ``counterexample``; ``errors`` are the statements that could not be read.
    Renders in Jupyter as an HTML table (MathML-free: the statements are
    shown as written).
    """

    results: list
    errors: list = field(default_factory=list)
    spec: str = ""

    @property
    def ok(self) -> bool:
        """Every statement read and correct."""
        return not self.errors and all(r.verdict == "correct" for r in self.results)

    def __iter__(self):
        return iter(self.results)

    def __len__(self) -> int:
        return len(self.results)

    def __getitem__(self, i):
        return self.results[i]

    def as_dict(self) -> dict:
        """The verdicts as JSON-ready data."""
        return {
            "spec": self.spec,
            "ok": self.ok,
            "results": [r.as_dict() for r in self.results],
            "errors": [str(e) for e in self.errors],
        }

    def __repr__(self) -> str:
        counts: dict[str, int] = {}
        for r in self.results:
            counts[r.verdict] = counts.get(r.verdict, 0) + 1
        summary = ", ".join(f"{n} {v}" for v, n in counts.items()) or "no statements"
        unread = f", {len(self.errors)} not read" if self.errors else ""
        return f"<Verification {self.spec or 'identities'}: {summary}{unread}>"

    def __str__(self) -> str:
        from .term import verdict_text

        lines = [verdict_text(r, colour=False) for r in self.results]
        return "\n".join([*lines, *(str(e) for e in self.errors)])

    def html(self, standalone: bool = False) -> str:
        """The verdicts as an HTML page."""
        from . import html

        body = html.verdicts_body(
            self.results, self.errors, title=f"verify {self.spec}".strip(), source=""
        )
        return html.page(f"verify {self.spec}", body) if standalone else html.fragment(body)

    def _repr_html_(self) -> str:
        return self.html()

    def markdown(self) -> str:
        """A Markdown table: mark, statement, verdict and reason, correct form."""

        def cell(text) -> str:  # a statement's | or ` must not break the table
            return (text or "").replace("|", "\\|").replace("`", "'").replace("\n", " ")

        out = ["| | statement | verdict | correct form |", "|---|---|---|---|"]
        for r in self.results:
            ok = r.verdict == "correct"
            expected = "" if ok or not r.expected else f"`{cell(r.expected)}`"
            out.append(
                f"| {'✓' if ok else '✗'} | `{cell(r.text)}` | {r.verdict}: {cell(r.reason)} | "
                f"{expected} |"
            )
        return "\n".join(out)

    def _repr_markdown_(self) -> str:
        return self.markdown()


def verify(
    spec: str | Path | None = None,
    claims: str | Iterable[str] = (),
    identities: Iterable[str] = (),
) -> Verification:
    """Check gradient statements (code, Unicode or LaTeX) against a spec, and scalar identities.

    ``claims`` is the text of a claims file (statements one a line or
    separated by ``;``) or a list of such texts; the file is read by the
    caller (``Path(...).read_text()``), so nothing here opens user paths but
    the spec.

    >>> import derive
    >>> v = derive.verify("seed003", r"\\frac{\\partial E}{\\partial W_3} = X_2^T \\delta_3")
    >>> v.results[0].verdict
    'ill-formed'
    >>> derive.verify(identities=["sigmoid'(z) = sigmoid(z)*(1 - sigmoid(z))"]).ok
    True
    """
    from .verify import verify_identity, verify_set

    results = [verify_identity(t) for t in identities]
    errors: list = []
    if spec is not None:
        texts = [claims] if isinstance(claims, str) else list(claims)
        net = load_network(spec)
        from .recurrence import refuse_loop

        refuse_loop(net)
        found, errors = verify_set(net, [("<claim>", t) for t in texts])  # one claim set
        results += found
        name = net.name
    else:
        name = ""
    return Verification(results, errors, name)
