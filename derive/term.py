"""Terminal output: verdicts and proof marks in colour where a person reads them.

Colour (ANSI SGR codes) only when the stream is a terminal and ``NO_COLOR``
is unset or empty (https://no-color.org); piped or redirected output, and
every test, stays plain text.
"""

from __future__ import annotations

import os
import sys

GREEN, RED, DIM, BOLD, RESET = "\033[32m", "\033[31m", "\033[2m", "\033[1m", "\033[0m"


def use_colour(stream=None) -> bool:
    """True when ``stream`` (default stdout) is a terminal and NO_COLOR is not set."""
    if os.environ.get("NO_COLOR"):
        return False
    stream = sys.stdout if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


def paint(text: str, code: str, colour: bool) -> str:
    """``text`` in the ANSI colour ``code`` when ``colour`` is on."""
    return f"{code}{text}{RESET}" if colour else text


def mark(passed: bool, colour: bool) -> str:
    """``✓`` in green or ``✗`` in red."""
    return paint("✓", GREEN, colour) if passed else paint("✗", RED, colour)


def colour_marks(text: str, colour: bool) -> str:
    """Every ``✓``/``✗`` of an already formatted report, coloured."""
    if not colour:
        return text
    return text.replace("✓", paint("✓", GREEN, True)).replace("✗", paint("✗", RED, True))


def verdict_text(r, colour: bool = False, first: bool = False) -> str:
    """One verdict as ``derive verify`` prints it (from the result's public fields); its line,
    and whether it is the first wrong one."""
    ok = r.verdict == "correct"
    head = paint(f"{r.verdict:<10}", GREEN if ok else RED, colour)
    where = f"line {r.line}: " if getattr(r, "line", None) else ""
    flag = "   ← the first wrong line" if first else ""
    out = [f"{mark(ok, colour)} {where}{head} {r.text}{flag}"]
    normalized = getattr(r, "normalized", None)
    if normalized:
        out.append(f"    read as: {normalized}")
    out.append(f"    {r.reason}")
    if r.diagnosis:
        out.append(f"    diagnosis: {r.diagnosis}")
    c = r.counterexample
    if c and "entry" in c:
        sizes = ", ".join(f"{k}={v}" for k, v in c["sizes"].items())
        out.append(
            f"    counterexample: random values (seed {c['seed']}) with {sizes}: at entry "
            f"{tuple(c['entry'])} the formula gives {c['formula']:.6g}, the gradient is "
            f"{c['gradient']:.6g}"
        )
    elif c and "z" in c:
        out.append(f"    counterexample: at z = {c['z']} the sides differ by {c['difference']:.6g}")
    if r.expected and not ok:
        out.append("    correct form: " + paint(r.expected, BOLD, colour))
    return "\n".join(out)
