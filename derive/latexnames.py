r"""How a spec's identifiers look in LaTeX: ``n_h1`` → ``n_{h1}``, ``y_hat`` → ``\hat{y}``.

A spec name is a Python identifier; textbooks write it with a base letter, a
subscript and perhaps an accent.  The rules, chosen so every result is valid
in both KaTeX and amsmath:

* ``_`` separates a base from its subscripts: ``n_in`` → ``n_{\mathrm{in}}``,
  ``n_h1`` → ``n_{h1}`` (one group, never ``n_h·1``), ``X1_in`` →
  ``X_{1,\mathrm{in}}``;
* trailing digits of the base are a subscript: ``W1`` → ``W_{1}``;
* ``hat``, ``bar``, ``tilde``, ``dot``, ``vec`` after a base put the accent on
  it: ``y_hat`` → ``\hat{y}``;
* Greek letter names (and ``lam``, the usual spelling of λ where ``lambda``
  is a Python keyword) become the letter: ``alpha`` → ``\alpha``;
* other multi-letter words are upright (``\mathrm{in}``, ``\mathrm{logits}``),
  so they do not read as a product of italic letters;
* ``delta_u``, the adjoint of ``u``, is ``\delta_{u}``.

>>> print(latex_name("n_h1"), latex_name("y_hat"), latex_name("X1_in"), latex_name("lam"))
n_{h1} \hat{y} X_{1,\mathrm{in}} \lambda

A Greek letter typed as itself (``δ3``) is the letter (``\delta_{3}``); any
other non-ASCII word is kept inside ``\text{…}``.
"""

from __future__ import annotations

import re
import unicodedata

GREEK = {
    "alpha",
    "beta",
    "gamma",
    "delta",
    "epsilon",
    "varepsilon",
    "zeta",
    "eta",
    "theta",
    "vartheta",
    "iota",
    "kappa",
    "lambda",
    "mu",
    "nu",
    "xi",
    "pi",
    "rho",
    "sigma",
    "tau",
    "upsilon",
    "phi",
    "varphi",
    "chi",
    "psi",
    "omega",
    "Gamma",
    "Delta",
    "Theta",
    "Lambda",
    "Xi",
    "Pi",
    "Sigma",
    "Upsilon",
    "Phi",
    "Psi",
    "Omega",
}
ALIASES = {"lam": "lambda", "lmbda": "lambda", "eps": "epsilon"}
ACCENTS = {"hat": "hat", "bar": "bar", "tilde": "tilde", "dot": "dot", "vec": "vec"}
_BASE = re.compile(r"^(?P<word>.*?)(?P<digits>[0-9]*)$")


def _letters(word: str) -> str:
    """A word without digits: a Greek letter, one italic letter, or upright text."""
    word = ALIASES.get(word, _greek_name(word) or word)
    if word in GREEK:
        return "\\" + word
    if len(word) == 1 and word.isascii() and word.isalpha():
        return word
    if word.isascii() and word.isalnum():
        return rf"\mathrm{{{word}}}"
    return rf"\text{{{word}}}"


def _greek_name(word: str) -> str | None:
    """``alpha`` for ``α``, ``Delta`` for ``Δ``: a one-character Greek identifier by name."""
    if len(word) != 1:
        return None
    name = unicodedata.name(word, "")
    for prefix, case in (("GREEK SMALL LETTER ", str.lower), ("GREEK CAPITAL LETTER ", str.title)):
        if name.startswith(prefix):
            letter = case(name[len(prefix) :].replace("LAMDA", "LAMBDA"))
            return letter if letter in GREEK else None
    return None


def _sub_part(part: str) -> str:
    """One subscript: digits as they are, ``h1`` grouped, words upright."""
    if part.isdigit():
        return part
    m = _BASE.match(part)
    assert m is not None  # _BASE matches any string (both groups may be empty)
    word, digits = m.group("word"), m.group("digits")
    if len(word) == 1 and word.isascii() and word.isalpha():
        return word + digits  # h1 → h1 in one group: the caller braces it
    return _letters(word) + digits


def latex_name(name: str) -> str:
    """The LaTeX of a spec identifier (see the module docstring)."""
    if name.startswith("delta_") and len(name) > len("delta_"):
        return rf"\delta_{{{latex_name(name[len('delta_') :])}}}"
    head, *rest = name.split("_")
    if not head:  # a leading underscore: not a spec name, but print it readably
        return rf"\mathrm{{{_tt(name)}}}" if name.isascii() else rf"\text{{{_tt(name)}}}"
    m = _BASE.match(head)
    assert m is not None  # _BASE matches any string (both groups may be empty)
    word, digits = m.group("word"), m.group("digits")
    if not word:  # all digits cannot start an identifier; keep it as text
        return head
    base = _letters(word)
    subs = [digits] if digits else []
    for part in rest:
        if not part:
            continue
        if part in ACCENTS and not subs:
            base = rf"\{ACCENTS[part]}{{{base}}}"
        else:
            subs.append(_sub_part(part))
    return base + (f"_{{{','.join(subs)}}}" if subs else "")


def _tt(name: str) -> str:
    return name.replace("_", r"\_")


def latex_shape(shape: tuple) -> str:
    """``[B \\times n_{h1}]`` for a shape; ``\\text{scalar}`` for none."""
    if not shape:
        return r"\text{scalar}"
    return "[" + r" \times ".join(latex_dim(d) for d in shape) + "]"


def latex_dim(d) -> str:
    """A dimension as LaTeX."""
    s = str(d)
    return s if s.isdigit() else latex_name(s)
