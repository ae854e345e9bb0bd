"""Whether a piece of printed code is one operand (a leaf module shared by the printers)."""

from __future__ import annotations


def is_operand(code: str) -> bool:
    """Whether printed code is one operand: names, calls, indexing, or one group.

    Nothing outside brackets but identifier characters and dots (``x``,
    ``np.sqrt(a + b)``, ``A.sum(axis=0)``, ``(a + b)``) and no leading digit
    unless it is all digits (``2``, not ``2.5`` or ``1e-5``), so that it binds
    tighter than any operator placed next to it.
    """
    depth = 0
    for ch in code:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif depth == 0 and not (ch.isalnum() or ch in "_."):
            return False
    return bool(code) and depth == 0 and (not code[0].isdigit() or code.isdigit())
