"""The Python face of a recurrence: :func:`derive.load` of a spec with a loop returns one.

>>> import derive
>>> rec = derive.load("char_rnn")
>>> print(rec.backward_code().splitlines()[4])
for t in reversed(range(T)):
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

from . import recurrence


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

    def text(self) -> str:
        """The loop, the outer equations and the backward loop as Unicode text."""
        from .recurprint import as_text

        return as_text(self, self.proofs)

    def latex(self) -> str:
        """The same as an ``aligned`` LaTeX block."""
        from .recurprint import as_latex

        return as_latex(self, proofs=self.proofs)

    def json(self) -> str:
        """The JSON document of ``derive grad --format json``."""
        from .recurprint import as_json

        return as_json(self, self.proofs)

    def backward_code(self) -> str:
        """Python statements: the backward loop over t, every gradient assigned."""
        from .recurprint import backward_code

        return backward_code(self)

    def forward_code(self) -> str:
        """Python statements: the forward loop over t, every stacked value assigned."""
        from .recurprint import forward_code

        return forward_code(self)

    def outer_code(self) -> list[tuple[str, str]]:
        """``(name, NumPy expression)`` of the equations after the loop, their deltas (the
        stacked values' direct shares among them) and their params' gradients, in order."""
        from .report import lines

        fwd, deltas, grads = lines(self.outer)
        return [(x.name, x.as_dict()["numpy"]) for x in [*fwd, *deltas, *grads]]

    def __str__(self) -> str:
        return self.text()


def derive(net) -> Recurrence:
    """Derive a spec with a loop (:func:`derive.recurrence.derive`)."""
    return Recurrence.of(recurrence.derive(net))
