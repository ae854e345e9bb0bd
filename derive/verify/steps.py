"""Loops over time in backward functions: backpropagation through time, judged per step.

The spec is the recurrence unrolled at the checker's length T (``h1 = tanh(x1 @ Wx + h0 @ Wh
+ b)``, ``h2 = …``, the states stacked ``h = concatenate([h1, h2, h3], axis=1).reshape(N, 3,
H)``): every truth is that network's derivation.  Quantities named ``<stem><k><suffix>``
(``x1``…``x3``, ``h0``…``h3``, ``h1_in``…``h3_in``) form families, one member a step.

What a function's loop ``for t in reversed(range(T)):`` holds at step t, by name:

* ``x`` (not in the spec) is the family ``x1, x2, x3`` stacked on the time axis of ``h``,
  and ``dx`` its gradient, stacked the same way;
* ``dnext_h``, ``dh_t``, ``dh_next``, ``dh`` (inside the loop) is ∂L/∂h at step t: all of it,
  the loss's own share at t and what step t + 1 sends back;
* ``dprev_h``, ``dh_prev`` is what step t sends back to the state before it: ∂L/∂h at
  step t − 1 less the loss's own share there (all of ∂L/∂h0 at t = 0);
* ``dtanh``, ``dsigmoid``: ∂L/∂(that function's input) at step t.

A name with a suffix (``dh_next``, ``dhnext``, ``dh_prev``) says less (Karpathy's
``dhnext`` is what step t sends to t − 1): it is judged only if its value matches its
guess at one step at least (numerically, on the first run).  ``dnext_h``, ``dprev_h``,
``dh_t``, ``dtanh`` are always judged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from .. import ir
from ..numeric import evaluate

_MEMBER = re.compile(r"^(?P<stem>[A-Za-z_]*?[A-Za-z])(?P<k>\d+)(?P<suffix>(?:_[A-Za-z]\w*)?)$")
CARRY = "~carry"  # q + CARRY: ∂L/∂q less the loss's own share at q (what later steps send)
# cs231n's spellings say which step: dnext_h, dh_t, dh (step t), dprev_h (sent to t - 1)
_NOW = re.compile(r"^d_?(?:(?:next|cur|curr)_(?P<a>[A-Za-z]\w*?)|(?P<b>[A-Za-z]\w*?)(?:_t|_cur)?)$")
_PREV = re.compile(r"^dprev_(?P<a>[A-Za-z]\w*?)$")
# a suffix says less: Karpathy's dhnext is what step t sends to t - 1, not ∂L/∂h at t
_GUESS_NOW = re.compile(r"^d(?P<b>[A-Za-z]\w*?)_?next$")
_GUESS_PREV = re.compile(r"^d(?P<b>[A-Za-z]\w*?)_?prev$")


@dataclass
class Steps:
    """The families of an unrolled recurrence and how its states are stacked."""

    families: dict[str, list[str]] = field(default_factory=dict)  # "h", "h_in" → members
    index: dict[str, tuple[str, int]] = field(default_factory=dict)  # "h2" → ("h", 2)
    stacked: dict[str, tuple[str, int]] = field(default_factory=dict)  # "h" → ("h", axis)
    first: int = 1  # the member number of step t = 0
    axis: int = 1  # the time axis of stacked values (cs231n's x[N, T, D])
    length: int = 0  # T

    @property
    def stacks(self) -> set[str]:
        """The quantities that are a family stacked (``h``, ``c``)."""
        return {q for q, _ in self.stacked.values()}

    def member(self, family: str, t: int) -> str | None:
        """The member of ``family`` at step ``t`` (None before the first or after the last)."""
        names = dict((self.index[m][1], m) for m in self.families.get(family, []))
        return names.get(t + self.first)


def find(net: ir.Network, np_env: dict) -> Steps:
    """The families of ``net`` (at least two members), and the stacks among its quantities:
    a quantity whose entries along one axis are a family's members (numerically)."""
    out = Steps()
    for name in net.quantities:
        m = _MEMBER.match(name)
        if m:
            key = m["stem"] + m["suffix"]
            out.families.setdefault(key, []).append(name)
            out.index[name] = (key, int(m["k"]))
    out.families = {k: v for k, v in out.families.items() if len(v) >= 2}
    out.index = {n: v for n, v in out.index.items() if v[0] in out.families}
    for fam, members in out.families.items():
        members.sort(key=lambda n: out.index[n][1])
        found = _stack_of(net, np_env, members)
        if found is not None:
            out.stacked[fam] = found
            out.axis, out.length = found[1], _length(np_env, found)
            out.first = out.index[members[-out.length]][1]  # h1 is step 0 when h0 comes before
    return out


def _length(np_env, found) -> int:
    return int(np.shape(np_env[found[0]])[found[1]])


def _stack_of(net, np_env, members) -> tuple[str, int] | None:
    """The quantity holding ``members`` (all, or all but a first initial state) stacked."""
    shape = np.shape(np_env.get(members[-1]))
    for q in net.quantities:
        value = np_env.get(q)
        if q in members or value is None or np.ndim(value) != len(shape) + 1:
            continue
        for axis in range(np.ndim(value)):
            parts = members[-np.shape(value)[axis] :]
            if len(parts) != np.shape(value)[axis]:
                continue
            if all(
                np.take(value, i, axis=axis).shape == shape
                and np.allclose(np.take(value, i, axis=axis), np.asarray(np_env[p], float))
                for i, p in enumerate(parts)
            ):
                return q, axis
    return None


def stack(steps: Steps, family: str, value_of) -> np.ndarray | None:
    """The members of ``family`` stacked on the time axis (the steps 0 … T − 1 only)."""
    names = [steps.member(family, t) for t in range(steps.length)]
    if not names or None in names:
        return None
    return np.stack([np.asarray(value_of(n)) for n in names], axis=steps.axis)


def step_name(steps: Steps, net: ir.Network, name: str, t: int) -> tuple[str | None, bool]:
    """What a name assigned inside the time loop at step ``t`` holds: a member's gradient
    (or its carry), and whether that was guessed from affixes (judged only once matched)."""
    fn = name[1:] if name.startswith("d") else ""
    inputs = _function_inputs(steps, net, fn)
    if inputs is not None:
        return steps.member(inputs, t), False
    for pattern, shift, guessed in (
        (_PREV, -1, False),
        (_GUESS_PREV, -1, True),
        (_GUESS_NOW, 0, True),
        (_NOW, 0, False),
    ):
        m = pattern.match(name)
        stem = m and next((g for g in m.groups() if g), None)
        if stem in steps.families:
            q = steps.member(stem, t + shift)
            if q is not None and shift:
                q += CARRY
            return q, guessed
    return None, False


def _function_inputs(steps: Steps, net: ir.Network, fn: str) -> str | None:
    """The family of the inputs of ``fn`` (``tanh``) applied once a step (``h2 = tanh(h2_in)``)."""
    if not fn:
        return None
    fams = {
        steps.index[eq.expr.arg.name][0]
        for eq in net.equations
        if isinstance(eq.expr, ir.Call)
        and eq.expr.fn == fn
        and isinstance(eq.expr.arg, ir.Ref)
        and eq.expr.arg.name in steps.index
    }
    return next(iter(fams)) if len(fams) == 1 else None


def later(check, ev, q: str) -> list[str]:
    """The members of the step after ``q``'s whose deltas the derivation has."""
    k = check.steps.index[q][1]
    return [m for m, (_, j) in check.steps.index.items() if j == k + 1 and f"delta_{m}" in ev.env]


def alone(check, ev, q: str):
    """∂L/∂q without what the next step sends back: its derived form with every delta of
    the next step's members set to zero (the loss's own share of h_t; for an LSTM's c_t,
    what h_t sends)."""
    cache = check.alone.setdefault(ev.exact, {})
    if q not in cache:
        env = dict(ev.env)
        for m in later(check, ev, q):
            value = np.asarray(env[f"delta_{m}"])
            env[f"delta_{m}"] = np.zeros(value.shape, dtype=value.dtype) * (0 if ev.exact else 1)
        form = np.asarray(evaluate(check.d.step(q).matrix, env, ev.funcs))
        cache[q] = form.reshape(np.shape(ev.truth(q)))
    return cache[q]


def carry_truth(check, ev, q: str):
    """What the steps after ``q``'s send back to it: cs231n's ``dprev_h`` (all of ∂L/∂h0)."""
    return np.asarray(ev.truth(q)) - alone(check, ev, q)


def label(steps: Steps, loss: str, q: str) -> str:
    """How a judged line's quantity reads: ``∂L/∂h2``, ``∂L/∂h1 from the steps after it``,
    ``∂L/∂x (x1 … x3 stacked on axis 1)``."""
    if q.endswith(CARRY):
        return f"∂{loss}/∂{q[: -len(CARRY)]} from the steps after it"
    if q in steps.families:
        names = [steps.member(q, t) for t in range(steps.length)]
        return f"∂{loss}/∂{q} ({names[0]} … {names[-1]} stacked on axis {steps.axis})"
    return f"∂{loss}/∂{q}"


def expected(steps: Steps, d, q: str) -> str:
    """The correct form of a judged quantity (a member's, for a stack or a carry)."""
    if q.endswith(CARRY):
        m = q[: -len(CARRY)]
        return f"{d.step(m).text()}, less the loss's own share at {m}"
    if q in steps.families:
        names = [steps.member(q, t) for t in range(steps.length)]
        return "; ".join(d.step(n).text() for n in names if n is not None)
    return d.step(q).text()


def diagnosis(check, q, got, want, exact_wrong=None) -> str | None:
    """A state's gradient at one step without what step t + 1 sends back (cs231n's
    ``dnext_h = dh[:, t, :] + dprev_h`` without ``dprev_h``; an LSTM's ``dc`` without
    ``dnext_c``): the line equals the derived form of ∂L/∂q with every delta of the next
    step set to zero."""
    steps = getattr(check, "steps", None)
    if steps is None or q not in steps.index or not later(check, check.numeric, q):
        return None
    own = np.asarray(alone(check, check.numeric, q), float)
    if own.size != got.size or not np.allclose(got, own.reshape(got.shape), rtol=1e-7, atol=1e-9):
        return None
    fam = steps.index[q][0]
    text = check.d.step(q).text()
    names = [
        m for m in later(check, check.numeric, q) if re.search(rf"δ{re.escape(m)}(?!\w)", text)
    ]
    sent = ", ".join(f"δ{m}" for m in names) or "its deltas"
    return (
        f"the state delta is not accumulated from the next step: the line holds only step "
        f"t's own share of ∂{check.net.loss}/∂{q}; what step t + 1 sends back (through "
        f"{sent}: dprev_{fam} / dnext_{fam}) must be added"
    )
