"""Recurrences over time: the backward recurrence, derived by the one reverse sweep.

A spec with a ``for t in range(T):`` loop (:class:`~derive.ir.Loop`) is
derived as two ordinary networks, each by :func:`derive.derivation.derive`:

* the **body** at one step ``t``: the step's inputs (``x_t``), the previous
  states (``h_prev``, as params: their adjoint is wanted) and the params it
  reads; its outputs (``h_t``, …) feed a seeded loss
  ``L = Σ sum(dh_t * h_t)``, so the sweep gives, for an upstream adjoint
  ``dh_t`` of the step's outputs, the adjoint of the previous state
  (``δh_prev``) and the step's share of every weight gradient;
* the **outer** equations after the loop, the stacked outputs (``h[T, …]``)
  as params: their gradients ``δh`` are the loss's direct share at every t.

What is then chained is the same for every loop, whatever the body computes
(no operation is known here)::

    δh_prev = 0
    for t = T − 1, …, 0:
        dh_t = δh[t] + δh_prev          # the direct share and the next step's
        (the body's sweep at t)          # δh_prev, and each param's share at t
        ∂L/∂W += (the body's ∂L/∂W at t)
    ∂L/∂h0 = δh_prev

:func:`run` evaluates exactly that from the derived forms (floats or exact
values); :func:`forward` computes the loop from the parsed spec, independently
of the derivation, which the proofs (:mod:`derive.recurcheck`) compare with.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from . import derivation, ir
from .numeric import Functions
from .numeric import forward as run_forward


@dataclass(repr=False)
class Recurrence:
    """The derivation of a spec with a loop: the body's and the outer equations'.

    ``seeds`` maps each body output with an upstream adjoint (``h_t``) to the
    input that carries it (``dh_t``); ``direct`` maps those of them that the
    outer equations read to the stacked name (``h``) whose outer gradient is
    their direct share.
    """

    network: ir.Network
    body: derivation.Derivation
    outer: derivation.Derivation
    seeds: dict[str, str]
    direct: dict[str, str]
    proofs: list | None = field(default=None, compare=False)

    @property
    def loop(self) -> ir.Loop:
        assert self.network.loop is not None
        return self.network.loop

    @property
    def params(self) -> list[str]:
        """The spec's params, in declaration order."""
        return [p.name for p in self.network.params]

    def body_params(self) -> list[str]:
        """The spec's params the body reads (their gradients are sums over t)."""
        return [p for p in self.body.gradients if p not in self.loop.previous.values()]

    def state_of(self, prev: str) -> str:
        """The state whose previous value the body calls ``prev``."""
        return next(s for s, p in self.loop.previous.items() if p == prev)

    def __repr__(self) -> str:
        return (
            f"<Recurrence {self.network.name}: loop over {self.loop.var} < {self.loop.length} "
            f"with states {', '.join(self.loop.initial)}; gradients ({', '.join(self.params)})>"
        )


def body_network(net: ir.Network) -> ir.Network:
    """The loop body at one step, with the seeded loss over its outputs."""
    loop = net.loop
    assert loop is not None
    seeds = _seeds(net)
    quantities: dict[str, ir.Quantity] = {}
    for eq in loop.equations:
        for ref in eq.refs():
            if ref not in quantities:
                quantities[ref] = loop.quantities.get(ref) or net.quantities[ref]
        quantities[eq.name] = loop.quantities[eq.name]
    pos = loop.pos
    terms: list[ir.Node] = []
    for out, seed in seeds.items():
        shape = loop.quantities[out].shape
        quantities[seed] = ir.Quantity(seed, "input", shape, pos)
        product = ir.Binary(shape, pos, "*", ir.Ref(shape, pos, seed), ir.Ref(shape, pos, out))
        terms.append(ir.Reduce((), pos, "sum", product, None, False))
    loss = terms[0]
    for term in terms[1:]:
        loss = ir.Binary((), pos, "+", loss, term)
    equations = [*loop.equations, ir.Equation(net.loss, loss, pos)]
    quantities[net.loss] = ir.Quantity(net.loss, "intermediate", (), pos)
    return dataclasses.replace(
        net, name=f"{net.name}[{loop.var}]", quantities=quantities, equations=equations, loop=None
    )


def _seeds(net: ir.Network) -> dict[str, str]:
    """Body outputs with an upstream adjoint (states, stacked values read after the loop)."""
    loop = net.loop
    assert loop is not None
    read = {r for eq in net.equations for r in eq.refs()}
    return {
        step: "d" + step
        for step, stacked in loop.stepped.items()
        if loop.quantities[step].kind == "intermediate"
        and (stacked in loop.initial or stacked in read)
    }


def outer_network(net: ir.Network) -> ir.Network:
    """The equations after the loop, the stacked values they read as params."""
    loop = net.loop
    assert loop is not None
    read = {r for eq in net.equations for r in eq.refs()}
    quantities = {}
    for name, q in net.quantities.items():
        if q.kind == "param" and name not in read:
            continue  # the loop's own params: their gradients come from the body
        if name in loop.stepped.values() and q.kind == "intermediate":
            if name not in read:
                continue
            q = dataclasses.replace(q, kind="param")
        quantities[name] = q
    return dataclasses.replace(net, quantities=quantities, loop=None)


def derive(net: ir.Network) -> Recurrence:
    """Derive the body and the outer equations of a spec with a loop."""
    body = derivation.derive(body_network(net))
    outer = derivation.derive(outer_network(net))
    _check_apart(net, body, outer)
    seeds = _seeds(net)
    assert net.loop is not None
    direct = {
        out: net.loop.stepped[out] for out in seeds if net.loop.stepped[out] in outer.gradients
    }
    return Recurrence(net, body, outer, seeds, direct)


def refuse_loop(net) -> None:
    """``derive verify`` does not read loops over time yet: one line, exit 2."""
    from .errors import SpecError

    if net.loop is not None:
        line, col = net.loop.pos
        raise SpecError(
            "derive verify does not judge specs with a loop over time yet "
            "(derive grad shows and proves the backward loop)",
            net.file,
            line,
            col,
        )


def _check_apart(net: ir.Network, body, outer) -> None:
    """The names the sweep gave to values of the body (``h_t_in``) are neither the spec's
    nor those of the equations after the loop: the loops' code holds them all."""
    from .errors import SpecError

    made = {n for n, q in body.network.quantities.items() if q.kind == "intermediate"}
    made.discard(net.loss)  # the seeded loss: never printed in the loops
    clash = sorted(made & (set(net.quantities) | set(outer.network.quantities)))
    if clash:
        assert net.loop is not None
        line, col = net.quantities[clash[0]].pos if clash[0] in net.quantities else net.loop.pos
        raise SpecError(
            f"the loop's value {clash[0]!r} has the name of another value of the spec; rename it",
            net.file,
            line,
            col,
        )


# ---------------------------------------------------------------------------
# evaluation: the loop from the spec, the backward loop from the derived forms


def _length(rec: Recurrence, values: dict) -> int:
    return int(values[str(rec.loop.length)])


def _step_values(rec: Recurrence, values: dict, stacks: dict, t: int) -> dict:
    """The body's inputs at step ``t``: params, consts, dims, step ``t`` of stacked inputs."""
    loop = rec.loop
    out = {k: v for k, v in values.items() if k not in loop.stepped.values()}
    for step, stacked in loop.stepped.items():
        if loop.quantities[step].kind == "input":
            out[step] = values[stacked][t]
    for state, prev in loop.previous.items():
        out[prev] = stacked_at(stacks, state, t - 1) if t > 0 else values[loop.initial[state]]
    return out


def stacked_at(stacks: dict, name: str, t: int):
    """Step ``t`` of the stacked ``name`` while it is being built (a list of steps)."""
    return stacks[name][t]


def forward(rec: Recurrence, values: dict, funcs: Functions) -> dict:
    """Every value of the spec: the loop run step by step, then the outer equations.

    Computed from the parsed spec (:func:`derive.numeric.forward` of the
    body without its seeded loss), not from any derived form.
    """
    loop = rec.loop
    step_net = dataclasses.replace(rec.body.network, equations=rec.body.network.equations[:-1])
    stacks: dict[str, list] = {s: [] for s in loop.stepped.values()}
    for t in range(_length(rec, values)):
        env = run_forward(step_net, _step_values(rec, values, stacks, t), funcs)
        for step, stacked in loop.stepped.items():
            if loop.quantities[step].kind == "intermediate":
                stacks[stacked].append(env[step])
    env = dict(values)
    env |= {k: np.stack(v) for k, v in stacks.items() if v}
    return run_forward(rec.outer.network, env, funcs)


def run(rec: Recurrence, values: dict, funcs: Functions) -> dict:
    """Every param's gradient, by the backward loop over the derived forms."""
    from .check import derived_values

    loop = rec.loop
    fwd = forward(rec, values, funcs)
    _, outer_env = derived_values(rec.outer, fwd, funcs)
    grads = {
        p: _shaped(outer_env[s.symbol], values[p])
        for p, s in rec.outer.gradients.items()
        if p not in loop.stepped.values()
    }
    stacks = {s: list(fwd[s]) for s in loop.initial}
    carry = {prev: 0 * values[loop.initial[s]] for s, prev in loop.previous.items()}
    for t in reversed(range(_length(rec, values))):
        step = _step_values(rec, values, stacks, t)
        for out, seed in rec.seeds.items():
            state = loop.stepped[out]
            direct = outer_env[rec.outer.gradients[state].symbol][t] if out in rec.direct else 0
            share = carry[loop.previous[state]] if state in loop.previous else 0
            step[seed] = _shaped(direct + share, fwd[state][0])
        _, env = derived_values(rec.body, step, funcs)
        for p in rec.body_params():
            share = _shaped(env[rec.body.gradients[p].symbol], values[p])
            grads[p] = grads[p] + share if p in grads else share
        carry = {  # a previous state the body does not read gets no share
            prev: _shaped(env.get("delta_" + prev, 0 * carry[prev]), carry[prev]) for prev in carry
        }
    for state, prev in loop.previous.items():
        if loop.initial[state] in values and rec.network.quantities[loop.initial[state]].kind == (
            "param"
        ):
            grads[loop.initial[state]] = carry[prev]
    return grads


def _shaped(value, like):
    """``value`` with the shape of ``like`` (a zero or a gradient constant along an axis
    comes out broadcast, a vector's gradient as a 1 × n row)."""
    target = np.shape(like)
    value = np.asarray(value)
    if value.size == 1 and target:
        return np.full(target, value.reshape(()).item(), dtype=value.dtype)
    return value.reshape(target)
