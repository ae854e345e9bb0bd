"""The three proofs that a derivation is right, run by ``derive grad --check``.

* :func:`symbolic`: each matrix form, lowered back to indices through
  SymPy's own ``MatrixExpr[i, j]``, is the same element-wise expression as
  the adjoint it was recovered from (identical after canonical renaming
  of summation indices and expansion).
* :func:`exact`: at small concrete sizes, every input, target, param and
  const an independent random element of a prime field, each gradient form
  equals the exact derivative of the loss computed from the spec by reverse
  mode, entry by entry (:mod:`derive.decide`: function applications are
  atoms; the error probability is in the proof's name).
* :func:`numeric`: with random float64 values, the forms match central
  finite differences of the loss computed from the parsed spec (a tolerance
  with a noise floor, so exact zeros pass; NaN fails; kinks avoided).

Literal dims above :data:`SMALL` are proven at stand-in sizes
(:func:`proof_network`), except those a reshape, convolution or pooling
relates to others (:func:`related_literals`), proven at their value.

The exact and numeric checks compute the loss straight from the spec
(:func:`derive.numeric.forward`), independently of the derivation.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field

import numpy as np
import sympy as sp

from . import decide, ir
from .decide import Point
from .derivation import Derivation
from .elementwise import Term, same_terms
from .indices import as_expr
from .matexpr import elementwise_of
from .numeric import Functions, as_2d, evaluate, forward, generic_bindings
from .rules import rule_of


@dataclass
class Proof:
    name: str
    passed: bool
    seconds: float
    details: dict[str, str] = field(default_factory=dict)  # step name -> outcome

    def as_dict(self) -> dict:
        """The proof as JSON-ready data: passed, seconds, per-step details."""
        return {"passed": self.passed, "seconds": round(self.seconds, 3), "steps": self.details}


def run_all(d: Derivation, seed: int = 0) -> list[Proof]:
    """The three proofs of every step (symbolic, exact, numeric), in that order."""
    stand_in = proof_network(d)
    return [symbolic(d, stand_in), exact(d, stand_in=stand_in), numeric(d, seed, stand_in=stand_in)]


def _all_steps(d: Derivation):
    return [*d.steps, *d.gradients.values()]


def symbolic(d: Derivation, stand_in=None) -> Proof:
    """Proof by SymPy: each matrix form, lowered, equals the element-wise adjoint."""
    start = time.perf_counter()
    proven, _ = stand_in or proof_network(d)
    details = {}
    for step in _all_steps(proven):
        lowered = elementwise_of(step.matrix, step.indices)
        ok = same_terms([Term(lowered)], step.terms)
        details[step.symbol] = "identical" if ok else "DIFFERS"
    return Proof(
        "symbolic",
        all(v == "identical" for v in details.values()),
        time.perf_counter() - start,
        details,
    )


# ---------------------------------------------------------------------------


def concrete_sizes(net: ir.Network, sizes=(2, 3, 4)) -> dict[str, int]:
    """Small distinct sizes for the dimensions (cycled when there are more dims than sizes)."""
    return divisible({name: sizes[n % len(sizes)] for n, name in enumerate(net.dims)}, net)


def divisible(dims: dict[str, int], net: ir.Network) -> dict[str, int]:
    """``dims`` with the dims under an exact division (``N / 2``) made multiples of it."""
    out = dict(dims)
    shapes = [q.shape for q in net.quantities.values()]
    shapes += [n.shape for eq in net.equations for n in ir.walk(eq.expr)]
    for shape in shapes:
        for e in shape:
            num, den = sp.fraction(sp.factor(e))
            if den != 1 and num.free_symbols:
                name = str(sorted(num.free_symbols, key=str)[0])
                if name in out and out[name] % int(den):
                    out[name] *= int(den)
    return _positive(out, shapes)


def _positive(dims: dict[str, int], shapes: list) -> dict[str, int]:
    """``dims`` grown until every size is a positive integer (``(H − 3) / 2 + 1`` of a
    strided convolution needs ``H ≥ 3``, ``H`` odd)."""
    out = dict(dims)
    sizes = [as_expr(d) for shape in shapes for d in shape]  # engine-built, never text
    for _ in range(64):
        bad = next((name for e in sizes if (name := _not_positive(e, out))), None)
        if bad is None:
            return out
        out[bad] += 1
    return out


def _not_positive(e: sp.Expr, dims: dict[str, int]) -> str | None:
    """The first dim of ``e`` to grow when ``e`` at ``dims`` is not a positive integer."""
    names = sorted(str(s) for s in e.free_symbols if str(s) in dims)
    if not names:
        return None
    v = e.xreplace({s: sp.Integer(dims[str(s)]) for s in e.free_symbols if str(s) in dims})
    return None if (v.is_integer and v >= 1) else names[0]


def _symbol_array(name: str, shape: tuple[int, ...]) -> np.ndarray:
    out = np.empty(shape, dtype=object)
    for idx in np.ndindex(shape):
        out[idx] = sp.Symbol(f"{name}_{'_'.join(map(str, idx))}", real=True)
    return out


def array_shape(q: ir.Quantity, dims: dict[str, int]) -> tuple[int, ...]:
    """The concrete shape of quantity ``q`` with the dims' sizes ``dims`` put in."""
    return tuple(
        int(d.xreplace({sp.Symbol(k, integer=True, positive=True): v for k, v in dims.items()}))
        for d in q.shape
    )


_shape = array_shape  # the old private name, while its importers move to the public one


def _onehot_exact(value: np.ndarray, axis: int) -> np.ndarray:
    """Make the last entry along ``axis`` one minus the others, so entries sum to 1."""
    value = np.moveaxis(value.copy(), axis, -1)
    value[..., -1] = 1 - value[..., :-1].sum(axis=-1)
    return np.moveaxis(value, -1, axis)


def derived_values(d: Derivation, values: dict, funcs: Functions) -> tuple[dict, dict]:
    """The forward values computed from the spec (NumPy shapes) and, with them in 2-D,
    every derived delta and gradient evaluated from its matrix form, in order."""
    net = d.network
    fwd = forward(net, values, funcs)
    env = {
        k: (as_2d(v, net.quantities[k].shape) if k in net.quantities else v) for k, v in fwd.items()
    }
    for step in _all_steps(d):
        value = np.asarray(evaluate(step.matrix, env, funcs))
        if step.shape:  # a gradient that is constant along an axis comes out broadcast
            value = np.broadcast_to(
                value,
                as_2d(
                    values[step.name] if step.name in values else fwd[step.name], step.shape
                ).shape,
            )
        env[step.symbol] = value
    return fwd, env


def symbol_values(net: ir.Network, dims: dict[str, int]) -> dict:
    """Inputs, targets and params as arrays of SymPy symbols (one-hot targets summing to 1
    exactly), consts as symbols, dims as the given sizes."""
    values: dict = dict(dims)
    for q in net.quantities.values():
        if q.classes is not None:  # class labels are data: concrete integers
            values[q.name] = random_labels(q, np.random.default_rng(0), dims)
        elif q.kind in ("input", "target", "param"):
            arr = _symbol_array(q.name, array_shape(q, dims))
            values[q.name] = arr if q.onehot_axis is None else _onehot_exact(arr, q.onehot_axis)
    for c in net.consts:
        values[c] = sp.Symbol(c, real=True)
    return values


SMALL = 4  # literal dims above this are proven at a stand-in size


def _with_dims(net: ir.Network, dim) -> ir.Network:
    """The network with every shape entry ``e`` replaced by ``dim(e)``."""

    def node(n: ir.Node) -> ir.Node:
        changes: dict = {"shape": tuple(dim(e) for e in n.shape)}
        for f in dataclasses.fields(n):
            v = getattr(n, f.name)
            if isinstance(v, ir.Node):
                changes[f.name] = node(v)
        return dataclasses.replace(n, **changes)

    return dataclasses.replace(
        net,
        quantities={
            k: dataclasses.replace(
                q,
                shape=tuple(dim(e) for e in q.shape),
                # labels(10): the classes follow the scores' width (a max-pool's k² do not)
                classes=q.classes
                if q.classes is None or q.kind == "intermediate"
                else dim(q.classes),
            )
            for k, q in net.quantities.items()
        },
        equations=[dataclasses.replace(eq, expr=node(eq.expr)) for eq in net.equations],
    )


def _plain(form: sp.Expr) -> sp.Expr:
    """The form with its dummies (bound variables of ``Map``) made comparable."""
    return form.xreplace({x: sp.Symbol("_bound_" + x.name) for x in form.atoms(sp.Dummy)})


def _canonical(form: sp.Expr, back: dict) -> tuple:
    """``form`` with the stand-ins ``back`` put back and its indices (fresh in each
    derivation, made in the same order) renamed by that order, with their ranges."""
    from .indices import dim_of, is_index

    form = _plain(form.xreplace(back))
    found = sorted(
        (x for x in form.atoms(sp.Symbol) if is_index(x)),
        key=lambda x: int("".join(c for c in x.name if c.isdigit()) or 0),
    )
    ren = {x: sp.Symbol(f"_index{n}", integer=True) for n, x in enumerate(found)}
    return form.xreplace(ren), tuple(dim_of(x).xreplace(back) for x in found)


def proof_network(d: Derivation) -> tuple[Derivation, dict[str, int]]:
    """The derivation the exact and numeric proofs run on, and which stand-ins it uses.

    A literal dim larger than :data:`SMALL` (``W[784, 10000]``) is replaced by
    a named dim, the network derived again, and its forms, with the literal
    sizes put back, must be the very forms of ``d`` (so they do not depend on
    the value): then proving the stand-in at small sizes proves ``d``.
    Otherwise ``d``'s own forms are proven with those literal dims named in
    them (a form that is right only at the literal size then fails).
    """
    from .derivation import derive

    net = d.network
    lits: dict[int, sp.Symbol] = {}
    kept = related_literals(net)

    def dim(e):
        if isinstance(e, sp.Integer) and int(e) > SMALL and int(e) not in kept:
            return lits.setdefault(int(e), sp.Symbol(f"_n{int(e)}", integer=True, positive=True))
        return e

    general = _with_dims(net, dim)
    if not lits:
        return d, {}
    general.dims = {**net.dims, **{s.name: s for s in lits.values()}}
    back = {s: sp.Integer(v) for v, s in lits.items()}
    names = [s.name for s in _all_steps(d)]
    for keep_all in (False, True):
        g = derive(general, keep_all=keep_all)
        if [s.name for s in _all_steps(g)] != names:
            continue
        if all(
            _canonical(a.matrix, back) == _canonical(b.matrix, {})
            for a, b in zip(_all_steps(g), _all_steps(d), strict=True)
        ):
            return g, {s.name: v for v, s in lits.items()}
    # The forms differ from a fresh derivation's (a form was changed, or depends on
    # the value): prove d's own forms with the literal dims named in them.
    named = {sp.Integer(v): s for v, s in lits.items()}
    return Derivation(
        general,
        [dataclasses.replace(s, matrix=s.matrix.xreplace(named)) for s in d.steps],
        {
            k: dataclasses.replace(s, matrix=s.matrix.xreplace(named))
            for k, s in d.gradients.items()
        },
    ), {s.name: v for v, s in lits.items()}


def related_literals(net: ir.Network) -> set[int]:
    """Literal sizes that a reshape, a convolution or a pooling relates to others
    (``X[N, 64].reshape(N, 1, 8, 8)``: 64 = 8·8; a 2×2 pool of 8 is 4): an independent
    stand-in for each would break the relation, so these are proven at their value."""
    out: set[int] = set()
    for eq in net.equations:
        for n in ir.walk(eq.expr):
            if isinstance(n, (ir.Reshape, ir.Conv2d, ir.Pool2d, ir.PoolArgmax)):
                shapes = [n.shape, *(k.shape for k in n.children())]
                out |= {int(e) for shape in shapes for e in shape if isinstance(e, sp.Integer)}
    return out


def sizes_text(dims: dict[str, int], standins: dict[str, int]) -> str:
    """``B=2, n=3, literal 10000 as 4``: the sizes a proof ran at."""
    named = [f"{k}={v}" for k, v in dims.items() if k not in standins]
    return ", ".join(
        named + [f"literal {standins[k]} as {v}" for k, v in dims.items() if k in standins]
    )


def value_point(net: ir.Network, dims: dict[str, int], point: Point, rng) -> dict:
    """Inputs, targets, params and consts as independent indeterminates of ``point``
    (one-hot targets summing to 1 exactly); their real values are those of
    :func:`random_values`, which only choose the branches of relu-like functions."""
    real = random_values(net, rng, dims)
    values: dict = dict(dims)
    for q in net.quantities.values():
        if q.kind not in ("input", "target", "param"):
            continue
        r = real[q.name]
        if q.classes is not None:  # class labels are data: concrete integers
            values[q.name] = r
            continue
        arr = np.empty(r.shape, dtype=object)
        for idx in np.ndindex(r.shape):
            arr[idx] = point.fresh(r[idx])
        values[q.name] = arr if q.onehot_axis is None else _onehot_exact(arr, q.onehot_axis)
    for c in net.consts:
        values[c] = point.fresh(float(real[c]))
    return values


def exact(d: Derivation, points: int = decide.POINTS, stand_in=None) -> Proof:
    """Each gradient form, evaluated exactly at random points of F_p, equals the exact
    derivative of the loss computed from the spec by reverse mode (:func:`decide.gradient`).

    The reference is the forward pass of the parsed spec (:func:`forward`) on
    exact values; its derivative uses only the rules' derivatives, never a
    derived form.  A point where a denominator vanishes or a relu argument
    sits at its kink is redrawn.
    """
    start = time.perf_counter()
    proven, sizes = stand_in or proof_network(d)
    net = proven.network
    dims = concrete_sizes(net)
    ok = {step.symbol: True for step in proven.gradients.values()}
    used = attempts = degree = 0
    while used < points and attempts < 20 * points:
        attempts += 1
        point = Point(seed=attempts)
        try:
            values = value_point(net, dims, point, np.random.default_rng(attempts))
            funcs = Functions(point=point)
            point.tape = []
            fwd = forward(net, values, funcs)
            leaves = [v for p in net.params for v in np.asarray(values[p.name]).flat]
            truth = iter(decide.gradient(point.const(fwd[net.loss]), leaves))
            _, env = derived_values(proven, values, funcs)
        except decide.Resample:
            point.tape = None
            continue
        used += 1
        for p in net.params:
            step = proven.gradients[p.name]
            shape = np.shape(values[p.name])
            got = np.asarray(env[step.symbol], dtype=object).reshape(shape)
            for idx in np.ndindex(shape):
                diff = point.const(got[idx]) - next(truth)
                degree = max(degree, diff.deg)
                ok[step.symbol] &= diff.f == decide.ZERO
        degree = max(degree, point.bound())
    details = {k: ("equal" if v else "DIFFERS") for k, v in ok.items()}
    if used < points:
        details["points"] = f"only {used} of {points} usable points in {attempts} draws"
    shown = sizes_text(dims, sizes)
    bound = decide.error_bound(degree, used)
    return Proof(
        f"exact ({shown}; F_p at {used} points, error ≤ {bound:.0e})",
        used == points and all(ok.values()),
        time.perf_counter() - start,
        details,
    )


# ---------------------------------------------------------------------------


def random_labels(q: ir.Quantity, rng: np.random.Generator, dims: dict[str, int]) -> np.ndarray:
    """Integer class labels in ``[0, classes)`` for a ``labels`` target."""
    assert q.classes is not None, q.name  # a labels target
    classes = int(
        q.classes.xreplace({sp.Symbol(k, integer=True, positive=True): v for k, v in dims.items()})
    )
    return rng.integers(0, classes, size=array_shape(q, dims))


def random_values(net: ir.Network, rng: np.random.Generator, dims: dict[str, int]) -> dict:
    """Random float64 inputs, targets, params and consts of the right shapes."""
    values: dict = dict(dims)
    for q in net.quantities.values():
        if q.kind not in ("input", "target", "param"):
            continue
        shape = array_shape(q, dims)
        if q.classes is not None:
            values[q.name] = random_labels(q, rng, dims)
        elif q.onehot_axis is not None:
            n = shape[q.onehot_axis]
            labels = rng.integers(0, n, size=int(np.prod(shape)) // n)
            hot = np.eye(n)[labels]
            values[q.name] = np.moveaxis(
                hot.reshape(*np.delete(shape, q.onehot_axis), n), -1, q.onehot_axis
            )
        elif q.kind == "target":
            values[q.name] = rng.uniform(0.05, 0.95, size=shape)
        else:
            values[q.name] = rng.normal(size=shape) * (0.8 if q.kind == "param" else 1.0)
    for c, default in net.consts.items():
        values[c] = default if default is not None else 0.1
    return values


KINK_MARGIN = 1e-4  # non-smooth arguments this close to a kink: draw another point
_DRAWS = 20


class _KinkWatch(Functions):
    """Float functions that remember how close a non-smooth function's argument came to 0."""

    closest = np.inf

    def apply(self, func, params, x):
        rule = rule_of(func)
        if rule is not None and not rule.smooth:
            with np.errstate(invalid="ignore"):
                self.closest = min(self.closest, float(np.min(np.abs(x), initial=np.inf)))
        return super().apply(func, params, x)


def _sample(net: ir.Network, rng, funcs: _KinkWatch):
    """Sizes and values where the loss is finite and every kink is ``KINK_MARGIN`` away."""
    for draw in range(_DRAWS):
        dims = {name: int(rng.integers(3, 7)) for name in net.dims if not name.startswith("_")}
        dims |= {name: int(rng.integers(3, 5)) for name in net.dims if name.startswith("_")}
        dims = divisible(dims, net)
        values = random_values(net, rng, dims)
        funcs.closest = np.inf
        with np.errstate(all="ignore"):
            fwd = forward(net, values, funcs)
        if np.all(np.isfinite(fwd[net.loss])) and funcs.closest > KINK_MARGIN:
            return dims, values, fwd, draw
    return dims, values, fwd, _DRAWS


def _magnitude(fwd: dict) -> float:
    """The largest magnitude among the values the loss is computed from."""
    out = 1.0
    for v in fwd.values():
        a = np.asarray(v)
        if a.dtype.kind == "f" and a.size:
            out = max(out, float(np.max(np.abs(a))))
    return out


def numeric(d: Derivation, seed: int = 0, tol: float = 1e-6, stand_in=None) -> Proof:
    """Each gradient form matches central differences of the loss computed from the spec.

    The error of a gradient is ``‖form − fd‖`` against ``tol`` times the
    larger of ``‖form‖``, ``‖fd‖`` and the noise floor of the differences
    (rounding of the loss, ``ε·M/h`` with ``M`` the largest value the loss
    is computed from): meaningful when the true gradient is exactly zero.
    A point where the loss is not finite, or where a relu-like function's
    argument is within ``KINK_MARGIN`` of its kink, is redrawn (the name
    says how often); any NaN or inf left in a gradient or a difference fails.
    """
    start = time.perf_counter()
    proven, standins = stand_in or proof_network(d)
    net = proven.network
    rng = np.random.default_rng(seed)
    funcs = _KinkWatch(generic=generic_bindings(net.funcs))
    dims, values, fwd, redrawn = _sample(net, rng, funcs)

    def loss() -> float:
        with np.errstate(all="ignore"):
            return float(forward(net, values, funcs)[net.loss])

    details = {}
    passed = redrawn < _DRAWS
    if not passed:
        details["point"] = f"no point with a finite loss away from kinks in {_DRAWS} draws"
    with np.errstate(all="ignore"):
        _, env = derived_values(proven, values, funcs)
    floor = 100 * np.finfo(float).eps * _magnitude(fwd)
    for step in proven.gradients.values():
        got = env[step.symbol]
        got = np.asarray(got, dtype=float).reshape(values[step.name].shape)
        fd = np.zeros_like(got)
        p = values[step.name]
        for idx in np.ndindex(p.shape):
            h = 1e-6 * max(1.0, abs(p[idx]))
            old = p[idx]
            p[idx] = old + h
            up = loss()
            p[idx] = old - h
            down = loss()
            p[idx] = old
            fd[idx] = (up - down) / (2 * h)
        noise = floor / 1e-6 * np.sqrt(fd.size)
        scale = max(float(np.linalg.norm(got)), float(np.linalg.norm(fd)), noise / tol)
        err = float(np.linalg.norm(got - fd)) / scale
        if not (np.all(np.isfinite(got)) and np.all(np.isfinite(fd)) and np.isfinite(err)):
            details[step.symbol] = "not finite (NaN or inf)"
            passed = False
            continue
        passed &= err < tol
        details[step.symbol] = f"rel. error {err:.1e}" + ("" if err < tol else " > tolerance")
    how = "finite differences" + (f"; point redrawn {redrawn}×" if redrawn else "")
    return Proof(
        f"numeric ({sizes_text(dims, standins)}; {how})",
        bool(passed),
        time.perf_counter() - start,
        details,
    )
