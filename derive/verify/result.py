"""What a verdict is: :class:`Result`, and the two internal signals of the judge."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..errors import SpecError

Verdict = Literal["correct", "incorrect", "ill-formed"]
"""What :func:`derive.verify` says of a statement."""


@dataclass
class Result:
    """The verdict on one statement (a gradient statement or a definition naming an adjoint)."""

    text: str
    normalized: str
    verdict: Verdict
    reason: str
    diagnosis: str | None = None
    counterexample: dict | None = None
    expected: str | None = None
    line: int | None = None  # where the statement is (1-based)
    file: str | None = None
    built_on: int | None = None  # wrong only through an earlier wrong line (its number)

    def as_dict(self) -> dict:
        """The verdict as JSON-ready data (``--format json``)."""
        return {
            "text": self.text,
            "normalized": self.normalized,
            "verdict": self.verdict,
            "reason": self.reason,
            "diagnosis": self.diagnosis,
            "counterexample": self.counterexample,
            "expected": self.expected,
            "line": self.line,
            "built_on": self.built_on,
        }


class Shapes(SpecError):
    """A shape clash inside a claim (the statement is ill-formed, not the input bad)."""


class Broken(Exception):
    """A statement uses a definition that is itself ill-formed."""

    def __init__(self, name):
        super().__init__(name)
        self.name = name
