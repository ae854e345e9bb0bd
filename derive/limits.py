"""The documented limits of the spec language, checked at parse time.

Each bounds the work a spec can ask for, so that every input is parsed and
derived, or refused with ``file:line:col: error: …``, in seconds and with
little memory.  The README's "Limits" section lists the same numbers.
"""

from __future__ import annotations

MAX_SPEC_CHARS = 200_000  # the whole spec text
MAX_LINE_CHARS = 2_000  # one line, comment included
MAX_EQUATIONS = 100  # equations in a spec
MAX_NAMES = 300  # declared names: arrays, consts, funcs and dimensions
MAX_NESTING = 32  # parentheses and brackets open at once in one line
MAX_DEPTH = 50  # depth of one equation's expression tree
MAX_NODES = 300  # names, numbers and operators in one equation
MAX_TOTAL_NODES = 1_000  # names, numbers and operators in all equations together
MAX_CALL_NESTING = 4  # function calls inside one another in one equation
MAX_NUMBER = 10**12  # largest magnitude of a number, literal or folded
MAX_DENOMINATOR = 10**18  # largest denominator of an exact fraction (1e-18 is the finest)
MAX_EXPONENT = 64  # largest magnitude of an exponent
MAX_EXPONENT_DENOMINATOR = 1_000  # ``x ** (p/q)``: q at most this
MAX_LITERAL_DIM = 1_000_000  # a literal size such as ``W[784, 10]`` (proofs use stand-ins)


__all__ = [name for name in dir() if name.startswith("MAX_")]
