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
from typing import cast

import numpy as np

from .. import ir
from ..errors import SpecError
from ..notation import resolve
from . import steps
from .evaluate import Evaluator, derivation, evaluator, is_zero
from .evidence import name_value, value_diagnosis
from .interpret import Clash, Interpreter, Lookup
from .library import FUNCTIONS, Bound, Library
from .reader import adjoint_of, gradient_name
from .result import Result
from .unroll import unroll
from .windows import crop, padded_name, padding_of
from .windows import params as window_params


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
    net = unroll(net)  # a spec's loop over time: the network unrolled at T = 3
    d = derivation(net)
    fdef, functions = pick(source, file, function)
    checker = FunctionCheck(d, net, file, source, fdef, functions, maps or {}, names)
    with np.errstate(all="ignore"):  # dx = dout / (x - x) is a verdict, not a warning
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
        self.imported = numpy_imports(source)
        self.fdef, self.functions, self.maps, self.names = fdef, functions, maps, names
        self.exact = evaluator(d, exact=True)
        self.numeric = evaluator(d, exact=False)
        # named pre-activations (tanh's input) too: cs231n's dtanh names one
        self.with_delta = {k for k in self.net.quantities if f"delta_{k}" in self.exact.env}
        # by value, any adjoint of the derivation (named pre-activations included)
        self.by_value_candidates = sorted(  # intermediates first: δz before an equal ∂L/∂b
            (k for k in self.net.quantities if f"delta_{k}" in self.exact.env),
            key=lambda k: self.net.quantities[k].kind == "param",
        )
        self.by_value: dict[int, tuple[str, bool]] = {}
        self.steps = steps.find(self.net, self.numeric.np_env)  # an unrolled recurrence
        self.loop_var = loop_variables(fdef)  # line → the variable of the loop it is in
        self.step_seen: set[int] = set()  # lines whose name matched its step guess once
        self.alone: dict[bool, dict] = {}  # exact → q → ∂L/∂q without the next step's share
        self.batch = batch_dim(self.net)
        self.partial = partial_lines(fdef)
        self.unmasked = before_masks(fdef)  # dx = dout.copy() before dx[x < 0] = 0
        self.inplace = {  # x[mask] = 0 turns ∂L/∂h into ∂L/∂(pre-activation) under h's name
            n.lineno
            for n in ast.walk(fdef)
            if isinstance(n, ast.Assign) and isinstance(n.targets[0], ast.Subscript)
        }

    def results(self) -> list[Result]:
        """A verdict for every judged line, in order, and for a line whose shapes clash."""
        self.run(self.numeric, repair=False, discover=True)
        actual, clash = self.run(self.exact, repair=False)
        num_actual, _ = self.run(self.numeric, repair=False)
        repaired = num_repaired = {}
        if any(line.wrong for run in (actual, num_actual) for line in run.values()):
            repaired, _ = self.run(self.exact, repair=True)
            num_repaired, _ = self.run(self.numeric, repair=True)
        out = []
        # the first line wrong in its own step (in a loop, a line above it may run after it)
        roots = [n for n in sorted(actual) if n not in repaired or repaired[n].wrong]
        first = next((n for n in roots if actual[n].wrong), None)
        for n in sorted(actual):
            line = actual[n]
            own = repaired.get(n)
            result = self.verdict(line, own, num_actual.get(n), num_repaired.get(n), first)
            if line.per_example and not self.closed(n, actual):
                result = self.unclosed(result)
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

    def closed(self, n: int, lines: dict) -> bool:
        """Whether a per-example adjoint (m·∂L/∂Z) on line ``n`` is followed by a param's
        gradient, where the 1/m is applied: else the function ends m times too large."""
        kinds = (
            self.net.quantities[q].kind
            for k, line in lines.items()
            if k > n
            for q in line.qs
            if q in self.net.quantities
        )
        return "param" in kinds

    def unclosed(self, result: Result) -> Result:
        """A per-example line no later line divides by m: the last value is wrong."""
        result.verdict = "incorrect"
        held = result.normalized.split(" = ")[1]
        result.reason = (
            f"equal to {self.batch}·{held}, and no later line applies the 1/{self.batch}"
        )
        result.diagnosis = (
            f"off by a constant factor: the gradient is 1/{self.batch} times the line "
            f"(a missing 1/{self.batch})"
        )
        return result

    # -- running --------------------------------------------------------------------------------
    def run(self, ev: Evaluator, repair: bool, discover: bool = False):
        """Run the function once at ``ev``'s sizes; with ``repair`` each wrong gradient is
        replaced by the truth for the lines after it; with ``discover`` (numeric) only record which
        adjoint each assignment holds by value.  Returns the judged lines and a shape clash, if any.
        """
        state = _Run(self, ev, repair, discover)
        interp = Interpreter(self.file, ev.exact, self.functions, state.hook)
        interp.imported = self.imported
        state.interp = interp
        env = self.bind(ev, state.lists)
        try:
            with np.errstate(all="ignore"):  # a repair tried on the way may take sqrt(-1)
                interp.run(self.fdef, env)
        except Clash as exc:
            return state.lines, exc
        return state.lines, None

    def discover(self, k: int, named: str | None, value):
        """Which adjoint an assignment holds, by value (numeric): equal to it, m times it (a
        per-example adjoint) or a named constant times it (a mistake on that adjoint)."""
        if not isinstance(value, np.ndarray) or value.dtype == object or not np.any(value):
            return
        ev = self.numeric
        cands = ([named] if named else []) + [q for q in self.by_value_candidates if q != named]
        scaled = None
        for q in cands:
            truth = np.asarray(self.truth(ev, q), float)
            got = fit(value, truth)
            if got is None:
                continue
            ks = [1.0] + ([float(ev.dims[self.batch])] if self.per_example(q) else [])
            if any(np.allclose(got, k * truth, rtol=1e-7, atol=1e-9) for k in ks):
                self.by_value[k] = (q, True)
                return
            mask = np.abs(got) > 1e-9
            ratios = truth[mask] / got[mask] if mask.any() else np.array([])
            constant = (  # the zeros must be where the gradient's are (svm's margins)
                ratios.size
                and np.array_equal(mask, np.abs(truth) > 1e-9)
                and np.allclose(ratios, ratios[0], rtol=1e-7)
            )
            if scaled is None and constant and name_value(self, ratios[0]) is not None:
                scaled = q
        if scaled is not None:
            self.by_value[k] = (scaled, False)

    def per_example(self, q: str) -> bool:
        """Whether ``q`` may be held per example (m·∂L/∂q): an intermediate of a batch."""
        kind = self.net.quantities[q].kind if q in self.net.quantities else "param"
        return self.batch is not None and kind != "param"

    def truth(self, ev: Evaluator, q: str):
        """∂L/∂q: a quantity's, a family's stacked on the time axis (``dx`` of ``x1 … x3``) or
        a state's share from the steps after it (``dprev_h``)."""
        if q.endswith(steps.CARRY):
            return steps.carry_truth(self, ev, q[: -len(steps.CARRY)])
        if q in self.net.quantities:
            return ev.truth(q)
        return steps.stack(self.steps, q, ev.truth)

    def same(self, ev, got, truth) -> bool:
        """Whether a line's value is the truth: exactly (the one zero test) or in float64."""
        if not ev.exact:
            return bool(
                np.allclose(np.asarray(got, float), np.asarray(truth, float), rtol=1e-7, atol=1e-9)
            )
        return all(
            is_zero(a - b, ev.explicit) for a, b in zip(np.ravel(got), np.ravel(truth), strict=True)
        )

    def adjoint(self, name, index, env, lists):
        """The quantity whose gradient this assignment holds, if its name (or --map) says."""
        if index is not None:
            key = lists.get(id(env.get(name)))
            spec_names = self.maps.get(key, []) if key else []
            return spec_names[index] if index < len(spec_names) else None
        if name in self.maps and len(self.maps[name]) == 1:  # --map dW=W: a gradient's name
            q = self.maps[name][0]
            return q if q in self.with_delta and gradient_name(name) else None
        value = env.get(name)
        if isinstance(value, list):
            key = self.list_key(name)
            if key:
                lists[id(value)] = key
            return None
        if not self.names:
            return None
        q = adjoint_of(name, self.net, self.with_delta)
        key = self.list_key(name, single=True)
        if q is None and key is None and name[:1] == "d" and name[1:] in self.steps.families:
            return name[1:] if self.steps.length else None  # dx: x1 … x3 stacked over t
        return q if q is not None else (self.maps[key][0] if key else None)

    def list_key(self, name: str, single: bool = False) -> str | None:
        """``nabla_w`` mirrors the --map list whose name starts with ``w`` (weights);
        with ``single``, ``dweights`` the --map name ``weights=W1``."""
        for prefix in ("nabla_", "grad_", "d"):
            if name.startswith(prefix):
                rest = name[len(prefix) :]
                keys = [
                    k
                    for k in self.maps
                    if (len(self.maps[k]) == 1) == single
                    and (k == rest if single else k.startswith(rest))
                ]
                if rest and len(keys) == 1:
                    return keys[0]
        return None

    def bind(self, ev: Evaluator, lists) -> dict:
        """The function's arguments bound to the spec's values (``cache``, ``self`` and
        ``parameters`` as lookups by name; ``--map`` lists as lists).
        """
        env = {}
        known = set(self.net.quantities) | set(self.net.consts)

        def find(name):
            if not isinstance(name, str):
                return None
            if name in self.maps:
                values = [value_of(ev, q, self.net, self.with_delta) for q in self.maps[name]]
                return values[0] if len(values) == 1 else values
            if name == "num_layers" and self.maps:
                return 1 + max(len(v) for v in self.maps.values())
            slide = window_params(self.net, name)  # conv_param, pool_param, stride, pad
            if slide is not None:
                return slide
            if name in self.steps.families:  # x: x1, x2, x3 stacked on the time axis
                stacked = steps.stack(
                    self.steps, name, lambda n: value_of(ev, n, self.net, self.with_delta)
                )
                if stacked is not None:
                    return stacked
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
        """The source text of a line."""
        return self.source_lines[lineno - 1].strip() if lineno <= len(self.source_lines) else ""

    def verdict(self, line: Line, own: Line | None, num: Line | None, num_own, first) -> Result:
        """The verdict of one line from its four runs (exact/numeric, as written/repaired)."""
        qs = ", ".join(dict.fromkeys(steps.label(self.steps, self.net.loss, q) for q in line.qs))
        normalized = f"{line.target} = {qs}"
        sizes = num is not None and num.wrong and not line.wrong  # equal only at the exact sizes
        if not line.wrong and not sizes:
            reason = "equal to the derived gradient (exact, entry by entry); confirmed numerically"
            if line.per_example:
                reason = (
                    f"equal to {self.batch}·∂{self.net.loss}/∂{line.qs[0]}: the per-example "
                    f"adjoint of the mean loss (the 1/{self.batch} is applied later)"
                )
            return Result(line.text, normalized, "correct", reason, line=line.line, file=self.file)
        result = Result(line.text, normalized, "incorrect", "differs from the derived gradient")
        result.line, result.file = line.line, self.file
        if sizes:  # 1/(T − 1) is 1/T·T at T = 2: the numeric sizes tell them apart
            result.reason += f" (at the sizes {self.numeric.dims}; equal at {self.exact.dims} only)"
        q = (line.wrong or cast(Line, num).wrong)[0][0]
        result.expected = steps.expected(self.steps, self.d, q)
        if own is not None and not own.wrong and first is not None:
            result.built_on = first
            result.reason = (
                f"its own step is right (exact, given the true values of the lines before it), "
                f"but it is built on line {first}, which is wrong"
            )
            return result
        if num_own is not None and num_own.wrong:
            exact = own.wrong[0] if own and own.wrong else ("sizes" if sizes else None)
            result.diagnosis = value_diagnosis(self, num_own.wrong[0], exact) or reduction_fix(
                self, line.line
            )
            _, got, want = num_own.wrong[0]
            if got is not None and np.shape(got) == np.shape(want):
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
        """The verdict of a line whose shapes clash, with a reduction fix if one repairs it."""
        text = self.text(clash.line)
        result = Result(
            text,
            text,
            "ill-formed",
            f"shapes do not fit: {clash.message}",
            line=clash.line,
            file=self.file,
        )
        result.diagnosis = reduction_fix(self, clash.line)
        return result


class _Run:
    """One run's record: the judged lines, and how each assignment is judged (the hook)."""

    def __init__(self, check: FunctionCheck, ev: Evaluator, repair: bool, discover: bool):
        self.check, self.ev, self.repair, self.discover = check, ev, repair, discover
        self.lines: dict[int, Line] = {}
        self.calls = 0  # the k-th assignment: the same in every run (control flow has no values)
        self.lists: dict[int, str] = {}  # id of a gradient list -> the --map key it mirrors
        self.per_example = False  # the function writes m·∂L/∂Z for intermediates (Ng)
        self.interp: Interpreter | None = None

    def hook(self, lineno, name, index, value, env):
        """Judge one assignment (or, discovering, record which adjoint it holds by value)."""
        c, ev = self.check, self.ev
        k, self.calls = self.calls, self.calls + 1
        if isinstance(value, list) and index is None:
            c.adjoint(name, None, env, self.lists)  # nabla_w = [...]: its entries are gradients
            return
        if value is None or (index is None and lineno in c.partial):
            return  # accumulated or rescaled later: only the final value is a gradient
        q, pad = c.adjoint(name, index, env, self.lists), 0
        if q is None and index is None and (stem := padded_name(name)) is not None:
            q = c.adjoint(stem, None, env, self.lists)  # dx_pad: ∂L/∂x on a zero-padded grid
            pad = padding_of(c.net, q) if q is not None else 0
            q = q if pad else None
        family = q in c.steps.families and q not in c.net.quantities  # di: of i1 … i3
        stacked = q is None or q in c.steps.stacks or family  # dc in a loop: ∂L/∂c at step t
        step = self.step(lineno, name, index, value, env) if stacked else None
        if family and self.in_loop():
            q = None  # in the loop, di is one step's: judged only as that step's
        if self.discover:
            c.discover(k, step or q, value)
            return
        found = c.by_value.get(k)
        renamed = found is not None and ((found[1] and lineno in c.inplace) or lineno in c.unmasked)
        if step is not None:
            q = step  # at step t of a loop over time: the name says which step's adjoint
        elif found is not None and (q is None or (renamed and found[0] != q)):
            q, pad = found[0], 0  # the value says which adjoint (cs231n's dh1 after its mask)
        if q is None:
            return
        truth = c.truth(ev, q)
        got = crop(value, pad, np.shape(truth)) if pad else fit(value, truth)
        rec = self.lines.setdefault(lineno, Line(lineno, c.text(lineno), name))
        rec.qs.append(q)
        same = got is not None and c.same(ev, got, truth)
        if not same and got is not None and c.per_example(q):
            scaled = truth * ev.dims[c.batch]
            if c.same(ev, got, scaled):  # Ng's dZ = A - Y: m·∂L/∂Z, the 1/m comes later
                same, truth = True, scaled
                rec.per_example = self.per_example = True
        if not same and self.per_example and c.per_example(q):
            truth = truth * ev.dims[c.batch]  # repair in the function's own convention
        if not same:
            rec.wrong.append((q, got if got is not None else value, truth))
        if self.repair and not same:
            self.put(env, name, index, value, truth, got, pad)

    def in_loop(self) -> bool:
        """Whether the run is inside a loop of the checked function (not judging after it)."""
        return self.interp is not None and self.interp.loops > 0

    def step(self, lineno, name, index, value, env) -> str | None:
        """Inside a loop over time (not when its accumulations are judged after it): the
        adjoint a name holds at this step; a guess from affixes only once it has matched."""
        c = self.check
        var = c.loop_var.get(lineno)
        t = env.get(var) if var is not None else None
        if index is not None or not c.steps.families or not self.in_loop() or t is None:
            return None
        q, guessed = steps.step_name(c.steps, c.net, name, int(t))
        if q is None or not guessed:
            return q
        if self.discover and not self.ev.exact:
            truth = np.asarray(c.truth(self.ev, q), float)
            got = fit(value, truth) if isinstance(value, np.ndarray) else None
            if got is not None and np.allclose(got, truth, rtol=1e-7, atol=1e-9):
                c.step_seen.add(lineno)
            return None
        return q if lineno in c.step_seen else None

    def put(self, env, name, index, value, truth, got, pad):
        """The true value in place of a wrong one (in the zero-padded array's middle)."""
        if pad and got is not None:
            fixed = np.array(value, copy=True)
            fixed[..., pad:-pad, pad:-pad] = truth
        else:
            fixed = truth if got is None else np.asarray(truth).reshape(np.shape(value))
        if index is None:
            env[name] = fixed
        else:
            env[name][index] = fixed


def loop_variables(fdef: ast.FunctionDef) -> dict[int, str]:
    """Each line inside a ``for NAME in …:`` loop → NAME (of the innermost such loop)."""
    out: dict[int, str] = {}

    def visit(node, var):
        for child in ast.iter_child_nodes(node):
            inner = var
            if isinstance(child, ast.For) and isinstance(child.target, ast.Name):
                inner = child.target.id
                for stmt in child.body:
                    visit_stmt(stmt, inner)
                continue
            visit(child, inner)

    def visit_stmt(stmt, var):
        if hasattr(stmt, "lineno"):
            out[stmt.lineno] = var
        visit(stmt, var)

    visit(fdef, None)
    return {k: v for k, v in out.items() if v is not None}


def numpy_imports(source: str) -> dict[str, Bound]:
    """Library functions a file imports by name (``from numpy.lib.stride_tricks import
    sliding_window_view``): known to the interpreter under that name."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, RecursionError, MemoryError, ValueError):
        return {}
    out = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in (
            "numpy",
            "torch",
        ):
            for alias in node.names:
                if alias.name in FUNCTIONS:
                    out[alias.asname or alias.name] = Bound(Library("np"), alias.name)
    return out


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


def partial_lines(fdef: ast.FunctionDef) -> set[int]:
    """Lines assigning a name that a later line of the function assigns again (``dx = …``
    then ``dx += …``, or Ng's ``dA2 = dA2 * D2; dA2 /= keep_prob``): partial values."""
    last: dict[str, int] = {}
    lines: dict[str, list[int]] = {}
    looped = {id(n) for loop in ast.walk(fdef) if isinstance(loop, ast.For) for n in ast.walk(loop)}
    for node in ast.walk(fdef):
        if isinstance(node, (ast.Assign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            built = isinstance(node, ast.AugAssign) or id(node) in looped  # dw[f] += … in a loop
            for name in (k for t in targets for k in _target_names(t, built)):
                lines.setdefault(name, []).append(node.lineno)
                last[name] = max(last.get(name, 0), node.lineno)
    return {n for name, ns in lines.items() for n in ns if n != last[name]}


def before_masks(fdef: ast.FunctionDef) -> set[int]:
    """Lines giving a name the value a later mask store (``dx[x < 0] = 0``) edits: such a
    value is judged by what it holds (cs231n's ``dx = dout.copy()`` holds ∂L/∂out)."""
    assigned: dict[str, int] = {}
    out = set()
    nodes = sorted(
        (n for n in ast.walk(fdef) if isinstance(n, ast.Assign) and len(n.targets) == 1),
        key=lambda n: n.lineno,
    )
    for node in nodes:
        t = node.targets[0]
        if isinstance(t, ast.Name):
            assigned[t.id] = node.lineno
        elif (
            isinstance(t, ast.Subscript)
            and isinstance(t.value, ast.Name)
            and not _entries(t)
            and t.value.id in assigned
        ):
            out.add(assigned[t.value.id])
    return out


def _target_names(t, built: bool = False) -> list[str]:
    """The names an assignment target gives a whole new value: ``x``, ``self.x``, the names
    of ``a, b = …``, and ``x`` of ``x[range(n), y] = …``; with ``built`` (an augmented
    store, or a store in a loop: ``dw[f] += …``) ``x`` of any ``x[…] = …``."""
    if isinstance(t, (ast.Tuple, ast.List)):
        return [k for e in t.elts for k in _target_names(e, built)]
    if isinstance(t, ast.Subscript) and (built or _entries(t)):  # d[range(n), y] -= 1
        t = t.value
    if isinstance(t, ast.Name):
        return [t.id]
    if isinstance(t, ast.Attribute):
        return [t.attr]
    return []


def _entries(target: ast.Subscript) -> bool:
    """Whether a store writes chosen entries (``d[range(n), y] = …``), completing a value
    built on the lines before; a mask store (``dh[h <= 0] = 0``) turns one adjoint into
    another, and the value before it is judged on its own."""
    return isinstance(target.value, (ast.Name, ast.Attribute)) and isinstance(
        target.slice, ast.Tuple
    )


def batch_dim(net: ir.Network) -> str | None:
    """The dimension every input and target has: the batch (None if there is not one)."""
    shapes = [q.shape for q in net.quantities.values() if q.kind in ("input", "target")]
    common = set.intersection(*(set(s) for s in shapes)) if shapes else set()
    names = [str(d) for d in common if not d.is_number]
    return names[0] if len(names) == 1 else None


_REDUCTIONS = ("sum", "mean")


def reduction_fix(check: FunctionCheck, lineno: int) -> str | None:
    """A reduction on this line or before it over the wrong axis, or without the keepdims its
    broadcast needs: the one edit of the source (flip the axis, keep the axis) after which the
    line holds, found by running the edited function numerically (nothing is executed)."""
    calls = [
        n
        for n in ast.walk(check.fdef)
        if isinstance(n, ast.Call)
        and isinstance(n.func, ast.Attribute)
        and n.func.attr in _REDUCTIONS
        and n.lineno <= lineno
    ]
    for call in sorted(calls, key=lambda n: -n.lineno)[:12]:
        axis, where = _axis_of(call)
        if not isinstance(axis, int) or isinstance(axis, bool):
            continue
        keys = {k.arg for k in call.keywords}
        edits = []
        if axis in (0, 1):
            edits.append(("axis", 1 - axis))
        if not keys & {"keepdims", "keepdim"}:
            edits.append(("keepdims", True))
        for kind, value in edits:
            if _holds_after(check, call, where, kind, value, lineno):
                op = call.func.attr  # type: ignore[attr-defined]
                if kind == "axis":
                    return (
                        f"a reduction over the wrong axis: {op}(…, axis={axis}) on line "
                        f"{call.lineno} where axis={value} belongs"
                    )
                return (
                    f"a dropped keepdims: {op}(…, axis={axis}) on line {call.lineno} must "
                    "keep its axis (keepdims=True) to broadcast"
                )
    return None


def _axis_of(call: ast.Call):
    """The axis of a reduction call and where it is written (a keyword or a position)."""
    for k in call.keywords:
        if k.arg in ("axis", "dim"):
            return (k.value.value if isinstance(k.value, ast.Constant) else None), k.arg
    func = call.func
    module = isinstance(func, ast.Attribute) and (
        isinstance(func.value, ast.Name) and func.value.id in ("np", "numpy", "torch")
    )
    position = 1 if module else 0
    if len(call.args) > position and isinstance(call.args[position], ast.Constant):
        return call.args[position].value, position  # type: ignore[attr-defined]
    return None, None


def _holds_after(check: FunctionCheck, call: ast.Call, where, kind, value, lineno) -> bool:
    import copy

    index = next(i for i, n in enumerate(ast.walk(check.fdef)) if n is call)
    edited = copy.deepcopy(check.fdef)
    twin = next(n for i, n in enumerate(ast.walk(edited)) if i == index)
    assert isinstance(twin, ast.Call)
    if kind == "axis":
        if isinstance(where, int):
            twin.args[where] = ast.Constant(value)
        else:
            for k in twin.keywords:
                if k.arg == where:
                    k.value = ast.Constant(value)
    else:
        twin.keywords.append(ast.keyword("keepdims", ast.Constant(True)))
    original = check.fdef
    check.fdef = edited
    try:
        lines, clash = check.run(check.numeric, repair=False)
    except SpecError:
        return False
    finally:
        check.fdef = original
    if clash is not None and clash.line <= lineno:
        return False
    judged = [line for n, line in lines.items() if n <= lineno]
    return (
        bool(judged)
        and not any(line.wrong for line in judged)
        and (lineno not in lines or not lines[lineno].wrong)
    )
