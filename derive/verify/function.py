"""``derive verify SPEC backward.py``: a whole backward function, checked line by line.

The function's body is run by our interpreter (:mod:`.interpret`, never Python's) at the
verifier's small sizes, on the spec's values: exactly (every entry a SymPy expression) and
numerically.  Every assignment to a name that says which gradient it holds (``dW2``,
``grad_W``, ``dL_dW``, ``delta_z``, a list ``nabla_w`` under ``--map weights=W1,W2``, or a
name given by ``--map``) is judged against the engine's proven gradient.  A second run puts
the true value in place of every wrong line, so a later line is judged on its own step:
"correct, but built on line 4".
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

import numpy as np
import sympy as sp

from .. import ir
from ..derivation import derive
from ..errors import SpecError
from ..notation import resolve
from ..rules import RULES
from .evaluate import Evaluator, is_zero
from .interpret import Clash, Interpreter, Lookup
from .reader import adjoint_of
from .result import Result


@dataclass
class Line:
    """What one source line assigned, over every time it ran."""

    line: int
    text: str
    target: str
    wrong: list = field(default_factory=list)  # (q, value, truth) of the wrong runs
    qs: list = field(default_factory=list)
    per_example: bool = False  # held m·∂L/∂q, the per-example adjoint of a mean loss


def verify_function(
    net: ir.Network,
    source: str,
    file: str = "<code>",
    function: str | None = None,
    maps: dict[str, list[str]] | None = None,
    names: bool = True,
) -> list[Result]:
    """Verdicts for every gradient-holding line of one function of ``source``."""
    d = derive(net, keep_all=True)
    fdef, functions = pick(source, file, function)
    checker = FunctionCheck(d, net, file, source, fdef, functions, maps or {}, names)
    return checker.results()


def pick(source: str, file: str, function: str | None):
    """The function to check, and every function of the file (for calls between them)."""
    try:
        tree = ast.parse(source, filename=file)
    except SyntaxError as exc:
        raise SpecError(
            f"cannot read the code: {exc.msg}", file, exc.lineno or 1, exc.offset or 1
        ) from None
    except (RecursionError, MemoryError, ValueError):
        raise SpecError("the code is nested too deeply or not text", file, 1, 1) from None
    functions = {}
    for node in tree.body:
        body = node.body if isinstance(node, ast.ClassDef) else [node]
        functions.update({f.name: f for f in body if isinstance(f, ast.FunctionDef)})
    if function is not None:
        if function not in functions:
            raise SpecError(
                f"no function {function!r}; found: {', '.join(functions) or 'none'}", file, 1, 1
            )
        return functions[function], functions
    likely = [f for f in functions if "backward" in f or "backprop" in f] or list(functions)
    if len(likely) != 1:
        raise SpecError(
            f"give --function NAME; found: {', '.join(functions) or 'no function'}", file, 1, 1
        )
    return functions[likely[0]], functions


class FunctionCheck:
    """Runs the function four times (exact/numeric, as written/repaired) and judges lines."""

    def __init__(self, d, user_net, file, source, fdef, functions, maps, names):
        self.d, self.net, self.file = d, d.network, file
        self.source_lines = source.splitlines()
        self.fdef, self.functions, self.maps, self.names = fdef, functions, maps, names
        self.exact = Evaluator(d, exact=True)
        self.numeric = Evaluator(d, exact=False, seed=1)
        self.with_delta = {k for k in user_net.quantities if f"delta_{k}" in self.exact.env}
        self.batch = batch_dim(self.net)

    def results(self) -> list[Result]:
        actual, clash = self.run(self.exact, repair=False)
        repaired, _ = self.run(self.exact, repair=True)
        num_actual, _ = self.run(self.numeric, repair=False)
        num_repaired, _ = self.run(self.numeric, repair=True)
        out, first = [], None
        for n in sorted(actual):
            line = actual[n]
            own = repaired.get(n)
            result = self.verdict(line, own, num_actual.get(n), num_repaired.get(n), first)
            if result.verdict != "correct" and first is None:
                first = n
            out.append(result)
        if clash is not None:
            out.append(self.ill_formed(clash))
        if not out:
            raise SpecError(
                f"nothing was checked in {self.fdef.name}(): no line assigns a gradient by name "
                "(dW, grad_W, dL_dW, delta_z) and --map names none",
                self.file,
                self.fdef.lineno,
                1,
            )
        return out

    # -- running --------------------------------------------------------------------------------
    def run(self, ev: Evaluator, repair: bool):
        lines: dict[int, Line] = {}
        lists: dict[int, str] = {}  # id of a gradient list -> the --map key it mirrors

        def hook(lineno, name, index, value, env):
            qs = self.adjoint(name, index, env, lists)
            if qs is None:
                return
            q = qs
            truth = ev.truth(q)
            got = fit(value, truth)
            rec = lines.setdefault(lineno, Line(lineno, self.text(lineno), name))
            rec.qs.append(q)
            same = got is not None and self.same(ev, got, truth)
            if not same and got is not None and self.per_example(q):
                scaled = truth * ev.dims[self.batch]
                if self.same(ev, got, scaled):  # Ng's dZ = A - Y: m·∂L/∂Z, the 1/m comes later
                    same, truth = True, scaled
                    rec.per_example = True
            if not same:
                rec.wrong.append((q, got, truth))
            if repair and not same:
                fixed = np.asarray(truth).reshape(np.shape(value)) if got is not None else truth
                if index is None:
                    env[name] = fixed
                else:
                    env[name][index] = fixed

        interp = Interpreter(self.file, ev.exact, self.functions, hook)
        env = self.bind(ev, lists)
        try:
            interp.run(self.fdef, env)
        except Clash as exc:
            return lines, exc
        return lines, None

    def per_example(self, q: str) -> bool:
        return self.batch is not None and self.net.quantities[q].kind != "param"

    def same(self, ev, got, truth) -> bool:
        if not ev.exact:
            return bool(
                np.allclose(np.asarray(got, float), np.asarray(truth, float), rtol=1e-7, atol=1e-9)
            )
        return all(
            is_zero(explicit(a - b)) for a, b in zip(np.ravel(got), np.ravel(truth), strict=True)
        )

    def adjoint(self, name, index, env, lists):
        """The quantity whose gradient this assignment holds, if its name (or --map) says."""
        if index is not None:
            key = lists.get(id(env.get(name)))
            spec_names = self.maps.get(key, []) if key else []
            return spec_names[index] if index < len(spec_names) else None
        if name in self.maps and len(self.maps[name]) == 1:
            q = self.maps[name][0]
            return q if q in self.with_delta else None
        value = env.get(name)
        if isinstance(value, list):
            key = self.list_key(name)
            if key:
                lists[id(value)] = key
            return None
        return adjoint_of(name, self.net, self.with_delta) if self.names else None

    def list_key(self, name: str) -> str | None:
        """``nabla_w`` mirrors the --map list whose name starts with ``w`` (weights)."""
        for prefix in ("nabla_", "grad_", "d"):
            if name.startswith(prefix):
                rest = name[len(prefix) :]
                keys = [k for k in self.maps if len(self.maps[k]) > 1 and k.startswith(rest)]
                if rest and len(keys) == 1:
                    return keys[0]
        return None

    def bind(self, ev: Evaluator, lists) -> dict:
        env = {}
        known = set(self.net.quantities)

        def find(name):
            if not isinstance(name, str):
                return None
            if name in self.maps:
                values = [value_of(ev, q, self.net, self.with_delta) for q in self.maps[name]]
                return values[0] if len(values) == 1 else values
            if name == "num_layers" and self.maps:
                return 1 + max(len(v) for v in self.maps.values())
            spec = resolve([name], known)
            if spec in known:
                return value_of(ev, spec, self.net, self.with_delta)
            q = adjoint_of(name, self.net, self.with_delta)
            if q is not None:
                return ev.truth(q)
            raise SpecError(
                f"cannot bind {name!r} to the spec: give --map {name}=SPEC_NAME",
                self.file,
                self.fdef.lineno,
                1,
            )

        for a in self.fdef.args.args:
            if a.arg in ("self", "cache", "parameters", "params", "grads", "caches"):
                env[a.arg] = Lookup(a.arg, find)
            else:
                env[a.arg] = find(a.arg)
        return env

    # -- verdicts -------------------------------------------------------------------------------
    def text(self, lineno: int) -> str:
        return self.source_lines[lineno - 1].strip() if lineno <= len(self.source_lines) else ""

    def verdict(self, line: Line, own: Line | None, num: Line | None, num_own, first) -> Result:
        qs = ", ".join(dict.fromkeys(f"∂{self.net.loss}/∂{q}" for q in line.qs))
        normalized = f"{line.target} = {qs}"
        if not line.wrong:
            if num is not None and num.wrong:
                raise SpecError(
                    f"internal: exact and numeric checks disagree on line {line.line}",
                    self.file,
                    line.line,
                    1,
                )
            reason = "equal to the derived gradient (exact, entry by entry); confirmed numerically"
            if line.per_example:
                reason = (
                    f"equal to {self.batch}·∂{self.net.loss}/∂{line.qs[0]}: the per-example "
                    f"adjoint of the mean loss (the 1/{self.batch} is applied later)"
                )
            return Result(line.text, normalized, "correct", reason, line=line.line, file=self.file)
        result = Result(line.text, normalized, "incorrect", "differs from the derived gradient")
        result.line, result.file = line.line, self.file
        q = line.wrong[0][0]
        result.expected = self.d.step(q).text()
        if own is not None and not own.wrong and first is not None:
            result.built_on = first
            result.reason = (
                f"its own step is right (exact, given the true values of the lines before it), "
                f"but it is built on line {first}, which is wrong"
            )
            return result
        if num_own is not None and num_own.wrong:
            result.diagnosis = value_diagnosis(
                self, num_own.wrong[0], own.wrong[0] if own and own.wrong else None
            )
            _, got, want = num_own.wrong[0]
            if got is not None:
                idx = np.unravel_index(
                    int(np.argmax(np.abs(np.asarray(got, float) - np.asarray(want, float)))),
                    np.shape(want),
                )
                result.counterexample = {
                    "sizes": dict(self.numeric.dims),
                    "seed": 1,
                    "entry": [int(i) for i in idx],
                    "formula": float(np.asarray(got, float)[idx]),
                    "gradient": float(np.asarray(want, float)[idx]),
                }
        return result

    def ill_formed(self, clash: Clash) -> Result:
        text = self.text(clash.line)
        return Result(
            text,
            text,
            "ill-formed",
            f"shapes do not fit: {clash.message}",
            line=clash.line,
            file=self.file,
        )


def value_diagnosis(check: FunctionCheck, num_wrong, exact_wrong) -> str | None:
    """Named mistakes decided on the values of the line (given true inputs)."""
    from .diagnose import why

    q, got, want = num_wrong
    want = np.asarray(want, float)
    if got is None:
        return None
    got = np.asarray(got, float)
    if got.shape == want.shape:
        mask = np.abs(got) > 1e-9
        if mask.any():
            ratios = want[mask] / got[mask]
            if np.allclose(ratios, ratios[0], rtol=1e-7):
                c = name_value(check, ratios[0])
                if c is not None and confirm(check, exact_wrong, c):
                    if c == -1:
                        return "sign: the line is the negative of the gradient"
                    return f"off by a constant factor: the gradient is {c} times the line{why(c)}"
        if got.ndim == 2 and np.allclose(got.T, want, rtol=1e-7, atol=1e-9):
            return f"transposed: the line holds (∂{check.net.loss}/∂{q})ᵀ"
    return None


def name_value(check, ratio):
    from .diagnose import name_factor

    class View:  # name_factor reads net and numeric only
        net, numeric = check.net, check.numeric

    return name_factor(View, ratio)


def confirm(check, exact_wrong, c) -> bool:
    if exact_wrong is None or exact_wrong[1] is None:
        return False
    _, got, want = exact_wrong
    subs = {sp.Symbol(k, integer=True, positive=True): v for k, v in check.exact.dims.items()}
    subs.update({sp.Symbol(k, real=True): check.exact.values[k] for k in check.net.consts})
    cv = sp.sympify(c).subs(subs)
    return all(
        is_zero(explicit(cv * a - b)) for a, b in zip(np.ravel(got), np.ravel(want), strict=True)
    )


def fit(value, truth):
    """The value in the gradient's shape: (n, 1) or (1, n) for a vector of n is the same."""
    if not isinstance(value, np.ndarray):
        value = np.asarray(value)
    truth = np.asarray(truth)
    if value.shape == truth.shape:
        return value
    if (
        value.size == truth.size
        and (value.ndim <= 1 or 1 in value.shape)
        and (truth.ndim <= 1 or 1 in truth.shape)
    ):
        return value.reshape(truth.shape)
    return None


def explicit(e):
    """Smooth registered functions as their explicit values, as code computes them."""
    if not isinstance(e, sp.Basic):
        return sp.sympify(e)
    for name in ("sigmoid", "softplus"):
        rule = RULES[name]
        e = e.replace(lambda x, c=rule.cls: isinstance(x, c), lambda x, r=rule: r.value(*x.args))
    return e


def value_of(ev: Evaluator, name: str, net, with_delta):
    """A spec quantity's forward value, or (for ``dZ``-like names) its true gradient."""
    if name in ev.np_env:
        return np.asarray(ev.np_env[name])
    q = adjoint_of(name, net, with_delta)
    if q is not None:
        return ev.truth(q)
    if name in net.consts:
        return ev.values[name]
    raise SpecError(f"{name!r} is not a quantity of the spec", "<options>", 1, 1)


def batch_dim(net: ir.Network) -> str | None:
    """The dimension every input and target has: the batch (None if there is not one)."""
    shapes = [q.shape for q in net.quantities.values() if q.kind in ("input", "target")]
    common = set.intersection(*(set(s) for s in shapes)) if shapes else set()
    common = [str(d) for d in common if not d.is_number]
    return common[0] if len(common) == 1 else None
