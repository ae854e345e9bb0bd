"""``derive verify``: is a gradient formula, or a backward function, right for this network?

A claim is a list of statements: definitions of intermediates
(``delta3 = (X3 - T) * f3'(X2 @ W3)``) and gradient statements
(``dE/dW3 = X2.T @ delta3``), in code, Unicode or LaTeX notation
(:mod:`derive.notation`).  A definition whose name says which adjoint it is
(``dW2``, ``grad_W2``, ``W2_grad``, ``dL_dW2``, ``δu``, ``delta_z3``) is judged as
the gradient statement its name makes.  Each gets a verdict:

* ``ill-formed``: a sub-expression whose shapes clash (both shapes named),
  or a result of the wrong shape; if the formula does hold in the transposed
  layout (column vectors instead of row-major batches) the reason says so;
* ``correct`` / ``incorrect``: decided exactly, entry by entry, at small
  concrete sizes with every input, target and param a SymPy symbol, against
  the engine's proven form, then confirmed numerically.  An incorrect
  statement gets a named diagnosis where one fits, a counterexample and the
  correct form; a line whose own step is right but which uses a wrong
  earlier line says so ("built on line 4").

The units: :mod:`.reader` (claim text → IR), :mod:`.evaluate` (values and the
one exact equality test), :mod:`.judge` (verdicts), :mod:`.diagnose`
(named mistakes), :mod:`.identity` (scalar identities), :mod:`.function`
(whole backward functions, interpreted over their ``ast``).
"""

from __future__ import annotations

from .. import ir
from .evaluate import derivation
from .identity import verify_identity
from .judge import Verifier
from .reader import ClaimParser
from .result import Result


def verify(net: ir.Network, claim_text: str, file: str = "<claim>") -> list[Result]:
    """Verdicts for every gradient statement of a claim against ``net``."""
    results, errors = verify_all(net, claim_text, file)
    if errors:
        raise errors[0]
    return results


def verify_all(net: ir.Network, claim_text: str, file: str = "<claim>", names: bool = True):
    """Verdicts, and the statements that could not be read (checking goes on past them)."""
    return verify_set(net, [(file, claim_text)], names)


def verify_set(net: ir.Network, sources: list[tuple[str, str]], names: bool = True):
    """One claim set from several sources (repeated ``--claim`` flags, a claims file), in
    order: a definition in one is known in the next."""
    v = Verifier(derivation(net), net, names)
    for file, text in sources:
        v.run(text, file)
    return v.results, v.errors


__all__ = ["verify", "verify_all", "verify_set", "verify_identity", "Result", "ClaimParser"]
