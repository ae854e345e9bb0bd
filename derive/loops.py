"""The Python face of a recurrence: :func:`derive.load` of a spec with a loop returns one.

>>> import derive
>>> rec = derive.load("char_rnn")
>>> [line for line in rec.backward_code().splitlines() if line.startswith("for")]
['for t in reversed(range(T)):']
>>> all(p.passed for p in rec.check())
True

``rec.body`` is the derivation of the loop body at one step (the backward
recurrence's forms: ``rec.body.step("h_t_in")``, ``rec.body.gradients["h_prev"]``),
``rec.outer`` that of the equations after the loop (``δh``, the loss's direct
share of each state at every step), :meth:`Recurrence.backward_code` the
backward loop as NumPy statements.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from . import recurrence

LOOPS_DIR = Path(__file__).parent / "specs" / "loops"


def bundled() -> dict[str, Path]:
    """The bundled specs with a loop over time (``char_rnn``, ``char_lstm``), by name."""
    return {p.stem: p for p in sorted(LOOPS_DIR.glob("*.nn"))}


class Recurrence(recurrence.Recurrence):
    """A recurrence's derivation with its proofs and its displays."""

    @classmethod
    def of(cls, rec: recurrence.Recurrence) -> Recurrence:
        """The same derivation, with the proofs and displays."""
        return cls(**{f.name: getattr(rec, f.name) for f in fields(rec)})

    def check(self, seed: int = 0) -> list:
        """The three proofs (:mod:`derive.recurcheck`); kept for display."""
        from .recurcheck import run_all

        self.proofs = run_all(self, seed=seed)
        return self.proofs

    def text(self, steps: bool = False, elementwise: bool = False) -> str:
        """The loop, the outer equations and the backward loop as Unicode text (``steps``:
        the chain rule of each adjoint; ``elementwise``: its index form)."""
        from .recurprint import as_text

        return as_text(self, self.proofs, steps, elementwise)

    def latex(self, standalone: bool = False) -> str:
        """The same as an ``aligned`` LaTeX block; ``standalone``: a whole amsmath document."""
        from .recurprint import as_latex

        return as_latex(self, proofs=self.proofs, standalone=standalone)

    def json(self) -> str:
        """The JSON document of ``derive grad --format json``."""
        from .recurprint import as_json

        return as_json(self, self.proofs)

    def backward_code(
        self, printer=None, with_forward: bool = False, out_calls: bool = False
    ) -> str:
        """Python statements: the backward loop over t, every gradient assigned
        (``printer``: a :class:`derive.forms.NumpyFormPrinter` for the formulas;
        ``out_calls``: the dims are in scope, stacked deltas are made before the loop)."""
        from .recurprint import backward_code

        return backward_code(self, printer, with_forward, out_calls)

    def forward_code(self, printer=None, out_calls: bool = False, read=None) -> str:
        """Python statements: the forward loop over t, every stacked value assigned
        (``printer``: a :class:`derive.forms.NumpyFormPrinter` for the formulas;
        ``out_calls``: its element-wise calls take ``out=``, states are computed in place;
        ``read``: the names later code reads, the only stacked values stored)."""
        from .recurprint import forward_code

        return forward_code(self, printer, out_calls, read)

    def forms(self) -> list:
        """Every form the loops and the equations after them compute (forward and backward),
        as SymPy matrix expressions: what a code target prints."""
        from .matexpr import forward_form

        out = []
        for d in (self.body, self.outer):
            out += [forward_form(eq.expr) for eq in d.network.equations]
            out += [s.matrix for s in [*d.steps, *d.gradients.values()]]
        return out

    def __str__(self) -> str:
        return self.text()


def derive(net) -> Recurrence:
    """Derive a spec with a loop (:func:`derive.recurrence.derive`)."""
    return Recurrence.of(recurrence.derive(net))
