"""Nielsen's symbolic layer index, read against the spec's layer numbering.

``δ^l = ((w^{l+1})^T δ^{l+1}) ⊙ σ'(z^l)`` is a statement about every layer ``l``.  The
spec numbers its layers by the trailing digits of its names (``W1``, ``z1``, ``a1`` are
layer 1), so the statement is judged once for every ``l`` at which each indexed name
exists (``w^{l+1}`` is ``W2`` at ``l = 1``; at ``l = 2`` there is no ``W3``, so that
instance is not a statement about this network).  ``L`` is the last layer.  As in
Nielsen's book, ``δ^l`` is ``∂C/∂z^l`` and ``∇_a C`` is ``∂C/∂a^L``.  Ng's ``W^{[l]}``
and ``dZ^{[l]}`` are read the same way.  Only text is rewritten: nothing is evaluated.
"""

from __future__ import annotations

import re

from .. import ir

_SUPERSCRIPT = re.compile(
    r"(\\[A-Za-z]+|δ|[A-Za-z]+)\s*\^\s*"
    r"(?:\{\s*[\[(]?\s*(?P<b>[lL])\s*(?:(?P<sign>[+-])\s*(?P<off>\d+))?\s*[\])]?\s*(?P<t>T)?\s*\}"
    r"|(?P<u>[lL])(?![A-Za-z0-9_]))"
)
_NABLA = re.compile(r"\\nabla_\s*([A-Za-z])(?![A-Za-z0-9_{^])")
_DELTAS = ("\\delta", "δ", "delta")


def layer_instances(raw: str, net: ir.Network) -> list[tuple[str, int | None]]:
    """The statement at every layer it speaks of: ``(text, l)``; ``l`` is None when the
    statement has no symbolic ``l`` (it is returned as it is, or with ``L`` put in)."""
    found = list(_SUPERSCRIPT.finditer(raw))
    if not found and not _NABLA.search(raw):
        return [(raw, None)]
    layers = sorted(
        {int(m.group(1)) for name in net.quantities if (m := re.search(r"(\d+)$", name))}
    )
    if not layers:
        return [(raw, None)]
    symbolic = any((m.group("b") or m.group("u")) == "l" for m in found)
    out = []
    for layer in layers if symbolic else [layers[-1]]:
        text = _at(raw, layer, layers[-1], net)
        if text is not None:
            out.append((text, layer if symbolic else None))
    return out or [(raw, None)]


def _at(raw: str, layer: int, last: int, net: ir.Network) -> str | None:
    """The statement with ``l`` (and ``L``) put in, or None if a name does not exist there."""
    missing = []

    def put(m: re.Match) -> str:
        letter = m.group("b") or m.group("u")
        k = (layer if letter == "l" else last) + int(
            (m.group("sign") or "+") + (m.group("off") or "0")
        )
        rhs = "\\" in raw and m.start() > raw.find("=")  # LaTeX reads δz1 as δ·z1 there
        name = _layer_name(m.group(1), k, net, net.loss if rhs else None)
        if name is None:
            missing.append(m.group(0))
            return m.group(0)
        return f"({name})^{{T}}" if m.group("t") else f" {name} "

    text = _SUPERSCRIPT.sub(put, raw)
    if missing:
        return None

    def nabla(m: re.Match) -> str:
        name = _layer_name(m.group(1), last, net) if m.group(1) not in net.quantities else None
        return f"\\nabla_{{{name}}}" if name else m.group(0)

    return _NABLA.sub(nabla, text)


def _layer_name(base: str, k: int, net: ir.Network, loss: str | None = None) -> str | None:
    """The spec's name for ``base`` at layer ``k`` (``w``, 2 → ``W2``; ``δ``, 1 → ``δz1``)."""
    if k < 1:
        return None
    by_lower = {q.lower(): q for q in net.quantities}
    if base in _DELTAS:
        z = by_lower.get(f"z{k}")
        if z is None:
            return None
        return f"\\nabla_{{{z}}} {loss}" if loss else f"δ{z}"
    name = by_lower.get(f"{base.lstrip(chr(92)).lower()}{k}")
    if name is not None:
        return name
    if base[:1] in "dδ" and len(base) > 1:  # Ng's dZ^{[l]}: the gradient of Z at layer l
        inner = by_lower.get(f"{base[1:].lower()}{k}")
        return f"d{inner}" if inner else None
    return None
