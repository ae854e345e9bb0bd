"""The three proofs of a recurrence (``derive grad --check`` on a spec with a loop).

* symbolic: every matrix form of the body (at one step, ``T`` symbolic) and
  of the outer equations equals its element-wise adjoint
  (:func:`derive.check.symbolic` on each);
* exact: at small sizes and ``T = 3``, every param's gradient from the
  backward loop (:func:`derive.recurrence.run` over the derived forms), at
  random points of F_p, equals the exact reverse-mode derivative of the loss
  computed from the spec by running the loop step by step
  (:func:`derive.recurrence.forward`, which reads no derived form);
* numeric: the same gradients in float64 against central finite differences
  of that loss.
"""

from __future__ import annotations

import time

import numpy as np

from . import decide
from .check import Proof, concrete_sizes, random_values, symbolic, value_point
from .decide import Point
from .numeric import Functions, generic_bindings
from .recurrence import Recurrence, forward, run

STEPS = 3  # the sequence length the exact and numeric proofs run the loop at


def run_all(rec: Recurrence, seed: int = 0) -> list[Proof]:
    """Symbolic, exact and numeric, in that order."""
    return [symbolic_both(rec), exact(rec), numeric(rec, seed)]


def symbolic_both(rec: Recurrence) -> Proof:
    """The body's forms and the outer equations' forms, each against its adjoint."""
    start = time.perf_counter()
    details: dict[str, str] = {}
    passed = True
    for where, d in (("loop body", rec.body), ("after the loop", rec.outer)):
        proof = symbolic(d)
        passed &= proof.passed
        details |= {f"{k} ({where})": v for k, v in proof.details.items()}
    return Proof(
        f"symbolic (body at one step, {rec.loop.length} symbolic)",
        passed,
        time.perf_counter() - start,
        details,
    )


def sizes(rec: Recurrence) -> dict[str, int]:
    """Small sizes for the dims, the loop's length :data:`STEPS`."""
    return concrete_sizes(rec.network) | {str(rec.loop.length): STEPS}


def _text(dims: dict[str, int]) -> str:
    return ", ".join(f"{k}={v}" for k, v in dims.items())


def exact(rec: Recurrence, points: int = decide.POINTS) -> Proof:
    """The backward loop's gradients equal the exact derivative of the unrolled loss."""
    start = time.perf_counter()
    net, dims = rec.network, sizes(rec)
    ok = {p: True for p in _proven(rec)}
    used = attempts = degree = 0
    while used < points and attempts < 20 * points:
        attempts += 1
        point = Point(seed=attempts)
        try:
            values = value_point(net, dims, point, np.random.default_rng(attempts))
            funcs = Functions(point=point)
            point.tape = []
            loss = forward(rec, values, funcs)[net.loss]
            leaves = [v for p in ok for v in np.asarray(values[p]).flat]
            truth = iter(decide.gradient(point.const(loss), leaves))
            grads = run(rec, values, funcs)
        except decide.Resample:
            point.tape = None
            continue
        used += 1
        for p in ok:
            for got in np.asarray(grads[p], dtype=object).flat:
                diff = point.const(got) - next(truth)
                degree = max(degree, diff.deg)
                ok[p] &= diff.f == decide.ZERO
        degree = max(degree, point.bound())
    details = {f"delta_{k}": ("equal" if v else "DIFFERS") for k, v in ok.items()}
    bound = decide.error_bound(degree, used)
    return Proof(
        f"exact ({_text(dims)}; F_p at {used} points, error ≤ {bound:.0e})",
        used == points and all(ok.values()),
        time.perf_counter() - start,
        details,
    )


def _proven(rec: Recurrence) -> list[str]:
    """The params with a gradient (an initial state that is an input has none)."""
    return [p.name for p in rec.network.params]


def numeric(rec: Recurrence, seed: int = 0, tol: float = 1e-6) -> Proof:
    """The backward loop's gradients against central differences of the unrolled loss."""
    start = time.perf_counter()
    net, dims = rec.network, sizes(rec)
    funcs = Functions(generic=generic_bindings(net.funcs))
    values = random_values(net, np.random.default_rng(seed), dims)
    with np.errstate(all="ignore"):
        grads = run(rec, values, funcs)

    def loss() -> float:
        with np.errstate(all="ignore"):
            return float(forward(rec, values, funcs)[net.loss])

    details, passed = {}, True
    for p in _proven(rec):
        got, value = np.asarray(grads[p], dtype=float), values[p]
        fd = np.zeros_like(got)
        for idx in np.ndindex(value.shape):
            h, old = 1e-6 * max(1.0, abs(value[idx])), value[idx]
            value[idx] = old + h
            up = loss()
            value[idx] = old - h
            fd[idx] = (up - loss()) / (2 * h)
            value[idx] = old
        scale = max(float(np.linalg.norm(got)), float(np.linalg.norm(fd)), 1e-3)
        err = float(np.linalg.norm(got - fd)) / scale
        good = bool(np.all(np.isfinite(got)) and np.isfinite(err) and err < tol)
        passed &= good
        details[f"delta_{p}"] = f"rel. error {err:.1e}" + ("" if good else " > tolerance")
    return Proof(
        f"numeric ({_text(dims)}; finite differences)",
        passed,
        time.perf_counter() - start,
        details,
    )
