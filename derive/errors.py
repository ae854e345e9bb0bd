"""The project's one error type for bad user input.

Every problem found in user text (a spec, a claim, a command-line option)
is raised as :class:`SpecError` carrying the file, line and column it was
found at and a sentence saying what was expected.  The command line prints
it as ``file:line:col: error: message`` and exits with status 2; nothing
else ever reaches the user as a traceback.
"""

from __future__ import annotations


class SpecError(Exception):
    """A problem in user-supplied text, located at ``file:line:col``."""

    def __init__(self, message: str, file: str = "<spec>", line: int = 1, col: int = 1):
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line
        self.col = col

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}: error: {self.message}"


class DerivationError(Exception):
    """The engine could not carry a derivation through (not the user's fault).

    Raised, for example, when an element-wise adjoint has no matrix form
    expressible with products, transposes, Hadamard products and sums.
    ``pos`` is the 1-based (line, column) of the equation or declaration
    being derived when it was raised (set by :func:`derive.derivation.derive`),
    so the command can point at it.
    """

    pos: tuple[int, int] | None = None
