"""``derive verify``: is a gradient formula, as a textbook prints it, right for this network?

A claim is a list of statements: definitions of intermediates
(``delta3 = (X3 - T) * f3'(X2 @ W3)``) and gradient statements
(``dE/dW3 = X2.T @ delta3``), in code, Unicode or LaTeX notation
(:mod:`derive.notation`).  Each gradient statement gets a verdict:

* ``ill-formed``: a sub-expression whose shapes clash (both shapes named),
  or a result of the wrong shape; if the formula does hold in the transposed
  layout (column vectors instead of row-major batches) the reason says so;
* ``correct`` / ``incorrect``: decided symbolically, entry by entry, at
  small concrete sizes with every input, target and param a SymPy symbol
  (generic functions symbolic, one-hot targets summing to 1 exactly) against
  the engine's proven form, then confirmed numerically.  An incorrect
  statement gets a diagnosis where one fits (transposed; a constant factor;
  a sign; a missing or extra term; a derivative at the wrong point or of the
  wrong layer), a counterexample and the correct form.
"""

from __future__ import annotations

import ast
import copy
import itertools
import re
from dataclasses import dataclass, replace

import numpy as np
import sympy as sp

from . import ir
from .check import (
    _shape,
    concrete_sizes,
    derived_values,
    random_values,
    symbol_values,
)
from .decide import is_zero
from .derivation import Derivation, derive
from .errors import SpecError
from .notation import FormulaParser, read_head, split_equals, split_statements
from .numeric import Functions, _run, evaluate, generic_bindings
from .printing import text as text_of
from .rules import RULES
from .spec import _Parser, fmt_shape


@dataclass
class Result:
    text: str
    normalized: str
    verdict: str  # correct | incorrect | ill-formed
    reason: str
    diagnosis: str | None = None
    counterexample: dict | None = None
    expected: str | None = None

    def as_dict(self) -> dict:
        return {
            "text": self.text,
            "normalized": self.normalized,
            "verdict": self.verdict,
            "reason": self.reason,
            "diagnosis": self.diagnosis,
            "counterexample": self.counterexample,
            "expected": self.expected,
        }


class _Shapes(SpecError):
    """A shape clash inside a claim (the statement is ill-formed, not the input bad)."""


# ---------------------------------------------------------------------------
# claim expressions → IR


def derivative_ir(fn: str, arg: ir.Node, params: tuple, generic: bool) -> ir.Node:
    """The IR of ``fn'(arg)``, from the registry's derivative (``σ(a)(1 − σ(a))``)."""
    if generic:
        return ir.Call(arg.shape, arg.pos, fn + "'", arg, (), True)
    z = sp.Dummy("z")
    return _from_sympy(RULES[fn].derivative(z, *params), z, arg, params)


def _from_sympy(e, z, arg: ir.Node, params) -> ir.Node:
    shape, pos = arg.shape, arg.pos
    if e == z:
        return arg
    if e.is_number:
        return ir.Scalar((), pos, e)
    if isinstance(e, sp.Add):
        out = _from_sympy(e.args[0], z, arg, params)
        for a in e.args[1:]:
            out = ir.Binary(shape, pos, "+", out, _from_sympy(a, z, arg, params))
        return out
    if isinstance(e, sp.Mul):
        out = _from_sympy(e.args[0], z, arg, params)
        for a in e.args[1:]:
            out = ir.Binary(shape, pos, "*", out, _from_sympy(a, z, arg, params))
        return out
    if isinstance(e, sp.Pow):
        return ir.Power(shape, pos, _from_sympy(e.base, z, arg, params), e.exp)
    for rule in RULES.values():
        if e.func is rule.cls:
            return ir.Call(
                shape, pos, rule.name, _from_sympy(e.args[0], z, arg, params), tuple(e.args[1:])
            )
    raise SpecError(f"cannot express the derivative {e}")


@dataclass
class Derivative:
    """Where a claim takes a derivative: for trying other points and other functions."""

    node: ir.Node
    fn: str
    arg: ir.Node
    params: tuple
    generic: bool


class ClaimParser(_Parser):
    """The spec's expression walker, with derivatives and scalar juxtaposition allowed."""

    def __init__(self, net: ir.Network, quantities: dict, file: str):
        super().__init__("", file, net.name)
        self.quantities = dict(quantities)
        self.dims, self.consts, self.funcs = net.dims, net.consts, net.funcs
        self.const_symbols = net.const_symbols
        self.derivatives: list[Derivative] = []
        self.gradients: set[str] = set()
        self.jx_ops: dict[int, str] = {}  # how each juxtaposition was read

    def node_error(self, node, message):
        if (
            "do not fit" in message
            or "do not broadcast" in message
            or message.startswith("unknown name")
        ):
            raise _Shapes(message, self.file, self.line_no, 1)
        raise SpecError(message, self.file, self.line_no, 1)

    def expr_Name(self, node: ast.Name) -> ir.Node:
        if node.id.startswith("_g_") and node.id[3:] in self.gradients:
            q = self.quantities.get(node.id[3:])
            return ir.Ref(q.shape, self.pos(node), node.id)
        return super().expr_Name(node)

    def expr_BinOp(self, node: ast.BinOp) -> ir.Node:
        if isinstance(node.op, ast.MatMult):
            a, b = self.expr(node.left), self.expr(node.right)
            if not a.shape or not b.shape:  # "½ X" or "\frac{1}{B} δ": a scalar product
                return ir.Binary(a.shape or b.shape, self.pos(node), "*", a, b)
            return ir.MatMul(self.matmul_shape(node, a, b), self.pos(node), a, b)
        return super().expr_BinOp(node)

    def expr_Call(self, node: ast.Call) -> ir.Node:
        name = node.func.id if isinstance(node.func, ast.Name) else ""
        if name == "_jx":  # juxtaposition: a matrix product unless only element-wise fits
            a, b = (self.expr(x) for x in node.args)
            pos = self.pos(node)
            elementwise = (
                not a.shape or not b.shape or (a.shape[-1] != b.shape[0] and a.shape == b.shape)
            )
            self.jx_ops[node.col_offset] = "*" if elementwise else "@"
            if elementwise:
                return ir.Binary(a.shape or b.shape, pos, "*", a, b)
            return ir.MatMul(self.matmul_shape(node, a, b), pos, a, b)
        if not name.startswith("_d_"):
            return super().expr_Call(node)
        fn = name[3:]
        generic = fn in self.funcs
        if not generic and (fn not in RULES or RULES[fn].internal):
            self.node_error(node, f"unknown function {fn!r} in {fn}'(...)")
        args = [self.expr(a) for a in node.args]
        if not 1 <= len(args) <= 1 + len(RULES[fn].params if not generic else ()):
            self.node_error(node, f"{fn}' takes one argument")
        params = tuple(a.value for a in args[1:] if isinstance(a, ir.Scalar))
        if not generic:
            params = params or tuple(sp.nsimplify(d) for _, d in RULES[fn].params)
        out = derivative_ir(fn, args[0], params, generic)
        self.derivatives.append(Derivative(out, fn, args[0], params, generic))
        return out

    def claim(self, code: str, line: int) -> ir.Node:
        self.code, self.base_col, self.line_no = code, 0, line
        try:
            tree = ast.parse(code, mode="eval").body
        except SyntaxError as exc:
            raise SpecError(f"cannot read the formula: {exc.msg}", self.file, line, 1) from None
        return self.expr(tree)


# ---------------------------------------------------------------------------
# exact and numeric evaluation of claims


class Evaluator:
    """Values of the network, its proven deltas and a claim's expressions at one size."""

    def __init__(self, d: Derivation, exact: bool, seed: int = 0):
        net = self.net = d.network
        self.exact = exact
        self.transposed = False
        if exact:
            self.dims = concrete_sizes(net, (2, 3, 4, 5))
            values = symbol_values(net, self.dims)
            self.funcs = Functions(exact=True)
        else:
            rng = np.random.default_rng(seed)
            self.dims = {
                name: int(s)
                for name, s in zip(
                    net.dims, rng.permutation(np.arange(3, 3 + len(net.dims))), strict=True
                )
            }
            values = random_values(net, rng, self.dims)
            self.funcs = Functions(generic=generic_bindings(net.funcs))
        self.values = values
        fwd, self.env = derived_values(d, values, self.funcs)
        self.np_env = dict(fwd)  # NumPy shapes, for claims
        self.scalars = {**{c: values[c] for c in net.consts}, **self.dims}

    def transposed_layout(self) -> Evaluator:
        """The same values seen in the transposed layout (every array transposed)."""
        other = copy.copy(self)
        other.transposed = True
        other.np_env = {k: _t(v) for k, v in self.np_env.items()}
        return other

    def truth(self, wrt: str) -> np.ndarray:
        q = self.net.quantities[wrt]
        value = np.asarray(self.env["delta_" + wrt]).reshape(_shape(q, self.dims))
        return _t(value) if self.transposed else value

    def claim(self, node: ir.Node, env_extra: dict):
        grads = {
            "_g_" + r.name[3:]: self.truth(r.name[3:])
            for r in ir.walk(node)
            if isinstance(r, ir.Ref) and r.name.startswith("_g_")
        }
        return _run(node, {**self.np_env, **grads, **env_extra}, self.scalars, self.funcs)


def _t(v):
    v = np.asarray(v)
    if v.ndim == 1:
        return v.reshape(-1, 1)
    return v.T if v.ndim == 2 else v


def _zero(expr) -> bool:
    """Identically zero, decided by the one exact procedure (:mod:`derive.decide`)."""
    return is_zero(expr)


def _equal(a, b) -> bool:
    a, b = np.asarray(a, dtype=object), np.asarray(b, dtype=object)
    return a.shape == b.shape and all(_zero(x - y) for x, y in zip(a.flat, b.flat, strict=True))


# ---------------------------------------------------------------------------


def verify(net: ir.Network, claim_text: str, file: str = "<claim>") -> list[Result]:
    """Verdicts for every gradient statement of a claim against ``net``."""
    results, errors = verify_all(net, claim_text, file)
    if errors:
        raise errors[0]
    return results


def verify_all(net: ir.Network, claim_text: str, file: str = "<claim>"):
    """Verdicts, and the statements that could not be read (checking goes on past them)."""
    d = derive(net, keep_all=True)
    v = _Verifier(d, net, file)
    results = v.run(claim_text)
    return results, v.errors


class _Verifier:
    def __init__(self, d: Derivation, user_net: ir.Network, file: str):
        self.d, self.net, self.file = d, d.network, file
        self.user_net = user_net
        self.user = dict(user_net.quantities)
        self.exact = Evaluator(d, exact=True)
        self.numeric = Evaluator(d, exact=False, seed=1)
        self.trans_exact = self.exact.transposed_layout()
        self.functions = set(user_net.funcs)
        self.def_derivs: dict[str, list] = {}
        self.derivs: list = []

    def run(self, claim_text: str) -> list[Result]:
        results = []
        self.errors: list[SpecError] = []
        parser = ClaimParser(self.net, self.user, self.file)
        tparser = ClaimParser(self.net, _transposed(self.user), self.file)
        with_delta = {k for k in self.user if "delta_" + k in self.exact.env}
        parser.gradients = tparser.gradients = with_delta
        defs: dict[str, tuple] = {}  # name -> (node or None, transposed node or None, error)
        line_of = _line_numbers(claim_text)
        for n, raw in enumerate(split_statements(claim_text)):
            line = line_of(raw, n)
            try:
                results += self._statement(raw, line, parser, tparser, defs)
            except SpecError as exc:  # unreadable: report it, check the other statements
                self.errors.append(exc)
        return results

    def _statement(self, raw, line, parser, tparser, defs) -> list[Result]:
        parts = split_equals(raw)
        if len(parts) < 2:
            raise SpecError(
                f"expected NAME = formula or dE/dW = formula, got {raw.strip()!r}",
                self.file,
                line,
                1,
            )
        known = set(parser.quantities) | set(self.net.consts) | set(self.net.dims)
        head = read_head(parts[0], known, (self.file, line))
        self.line = line
        results = []
        for rhs in parts[1:]:
            code = FormulaParser(rhs, known, self.functions, (self.file, line)).parse()
            parser.jx_ops = {}
            node, error = self._parse(parser, code, line)
            shown = _display(code, parser.jx_ops)
            derivs = parser.last_derivatives
            tnode, terror = self._parse(tparser, code, line)
            if head.kind == "definition":
                self._define(parser, tparser, head.name, node, tnode, line)
                defs[head.name] = (node, tnode, error)
                self.def_derivs[head.name] = derivs
                continue
            self.derivs = derivs
            result = self._judge(
                raw.strip(), code, head, node, error, tnode, terror, defs, parser, tparser
            )
            result.normalized = f"d{head.loss}/d{head.name} = {shown}"
            results.append(result)
        return results

    def _parse(self, parser: ClaimParser, code: str, line: int):
        parser.derivatives = []
        try:
            return parser.claim(code, line), None
        except _Shapes as exc:
            return None, exc.message
        finally:
            parser.last_derivatives = list(parser.derivatives)

    def _define(self, parser, tparser, name, node, tnode, line):
        pos = (line, 1)
        for p, n in ((parser, node), (tparser, tnode)):
            shape = n.shape if n is not None else ()
            p.quantities[name] = ir.Quantity(name, "claim", shape, pos)
            p.claim_nodes = getattr(p, "claim_nodes", {})
            p.claim_nodes[name] = n

    def _defs_env(
        self, evaluator: Evaluator, parser: ClaimParser, override=None, node=None
    ) -> dict:
        """Values of the claim's definitions that ``node`` uses, in order."""
        nodes = {**getattr(parser, "claim_nodes", {}), **(override or {})}
        needed, todo = set(), [node] if node is not None else list(nodes.values())
        while todo:
            n = todo.pop()
            for r in ir.walk(n) if n is not None else []:
                if isinstance(r, ir.Ref) and r.name in nodes and r.name not in needed:
                    needed.add(r.name)
                    todo.append(nodes[r.name])
        env: dict = {}
        for name, n in nodes.items():
            if name not in needed:
                continue
            if n is None:
                raise _Broken(name)
            env[name] = evaluator.claim(n, env)
        return env

    # -- the verdict ----------------------------------------------------------------------------
    def _judge(self, text, code, head, node, error, tnode, terror, defs, parser, tparser):
        wrt, net = head.name, self.net
        if head.loss != net.loss:
            raise SpecError(
                f"the numerator of {text!r} must be the loss {net.loss!r}, not {head.loss!r}",
                self.file,
                1,
                1,
            )
        if wrt not in net.quantities or "delta_" + wrt not in self.exact.env:
            raise SpecError(
                f"{wrt!r} is not a param or an intermediate the loss depends on", self.file, 1, 1
            )
        expected = self._expected(wrt)
        want_shape = net.quantities[wrt].shape
        broken = [
            r.name
            for r in (ir.walk(node) if node is not None else [])
            if isinstance(r, ir.Ref) and r.name in defs and defs[r.name][0] is None
        ]
        if error or broken:
            reason = error or f"it uses {broken[0]}, which is ill-formed ({defs[broken[0]][2]})"
            if tnode is not None and self._holds(tnode, head, self.trans_exact, tparser):
                reason += (
                    "; the formula holds in the transposed layout (column vectors, "
                    "examples as columns) instead of the spec's row-major batch"
                )
            return Result(text, code, "ill-formed", reason, expected=expected)
        got_shape = node.shape
        if head.transposed:
            got_shape = tuple(reversed(got_shape))
        if tuple(got_shape) != tuple(want_shape):
            reason = (
                f"the formula has shape {fmt_shape(got_shape)} but ∂{net.loss}/∂{wrt} has "
                f"shape {fmt_shape(want_shape)}"
            )
            diagnosis = None
            if tuple(reversed(got_shape)) == tuple(want_shape) and self._holds(
                node, replace(head, transposed=not head.transposed), self.exact, parser
            ):
                diagnosis = f"transposed: the formula is (∂{net.loss}/∂{wrt})ᵀ"
                return Result(
                    text,
                    code,
                    "incorrect",
                    reason,
                    diagnosis,
                    self._counterexample(node, head, parser),
                    expected,
                )
            return Result(text, code, "ill-formed", reason, diagnosis, expected=expected)
        try:
            ok = self._holds(node, head, self.exact, parser, strict=True)
        except _Broken as exc:
            return Result(
                text,
                code,
                "ill-formed",
                f"it uses {exc.name}, which is ill-formed",
                expected=expected,
            )
        confirmed = self._holds(node, head, self.numeric, parser, numeric=True)
        if ok != confirmed:
            raise SpecError(
                f"internal: exact and numeric checks disagree on {text!r}", self.file, 1, 1
            )
        if ok:
            return Result(
                text,
                code,
                "correct",
                "equal to the derived gradient entry by entry (exact, symbolic); "
                "confirmed numerically",
                expected=expected,
            )
        diagnosis = self._diagnose(node, head, parser)
        return Result(
            text,
            code,
            "incorrect",
            "differs from the derived gradient",
            diagnosis,
            self._counterexample(node, head, parser),
            expected,
        )

    def _expected(self, wrt: str) -> str:
        """The derived gradient with the deltas and named values it uses."""
        step = self.d.step(wrt)
        lines, seen, todo = [step.text()], set(), [step]
        while todo:
            s = todo.pop()
            for sym in s.matrix.atoms(sp.MatrixSymbol):
                name = str(sym.name)
                if name in seen:
                    continue
                seen.add(name)
                if name.startswith("delta_"):
                    dep = self.d.step(name[len("delta_") :])
                    lines.append(dep.text())
                    todo.append(dep)
                elif name in self.net.quantities and name not in self.user:
                    eq = self.net.equation(name)
                    lines.append(f"{name} = {_show(eq.expr)}")
        return lines[0] + ("   where " + "; ".join(lines[1:]) if len(lines) > 1 else "")

    def _holds(
        self, node, head, ev: Evaluator, parser, numeric=False, override=None, strict=False
    ) -> bool:
        try:
            env = self._defs_env(ev, parser, override, node)
        except _Broken:
            if strict:
                raise
            return False
        got = np.asarray(ev.claim(node, env))
        want = ev.truth(head.name)
        if head.transposed:
            got = _t(got)
        if got.shape != want.shape:
            if got.size == want.size and 1 in want.shape + got.shape:
                got = got.reshape(want.shape)
            else:
                return False
        if numeric:
            return bool(
                np.allclose(np.asarray(got, float), np.asarray(want, float), rtol=1e-7, atol=1e-9)
            )
        return _equal(got, want)

    # -- diagnosis -----------------------------------------------------------------------------
    def _numeric_values(self, node, head, parser):
        """The formula's value and the gradient's, in float64 at the numeric sizes."""
        ev = self.numeric
        got = np.asarray(ev.claim(node, self._defs_env(ev, parser, node=node)), dtype=float)
        want = np.asarray(ev.truth(head.name), dtype=float)
        return (_t(got) if head.transposed else got), want

    def _diagnose(self, node, head, parser) -> str | None:
        ev = self.numeric
        got, want = self._numeric_values(node, head, parser)
        got = got.reshape(want.shape) if got.size == want.size else got
        # a constant factor (a sign, a missing 1/B, a 2)
        mask = np.abs(got) > 1e-9
        if mask.any() and got.shape == want.shape:
            ratios = want[mask] / got[mask]
            if np.allclose(ratios, ratios[0], rtol=1e-7):
                factor = self._name_factor(ratios[0], ev)
                if factor is not None and self._scaled_holds(node, head, parser, factor):
                    if factor == -1:
                        return "sign: the formula is the negative of the gradient"
                    return (
                        f"off by a constant factor: the gradient is {text_of(factor)} "
                        "times the formula"
                    )
        # the transpose of the formula
        flipped = replace(head, transposed=not head.transposed)
        square = got.ndim == 2 and got.shape[0] == got.shape[1]
        if (got.shape == want.shape[::-1] or square) and self._holds(
            node, flipped, self.exact, parser
        ):
            return f"transposed: the formula is (∂{self.net.loss}/∂{head.name})ᵀ"
        # a term missing from, or extra in, the formula
        form = self.d.step(head.name).matrix
        if isinstance(form, sp.MatAdd):
            for term in form.args:
                part = (
                    np.asarray(evaluate(term, ev.env, ev.funcs), dtype=float).reshape(want.shape)
                    if np.asarray(evaluate(term, ev.env, ev.funcs)).size == want.size
                    else None
                )
                if part is not None and np.allclose(got, want - part, rtol=1e-7, atol=1e-9):
                    return f"a term is missing: {text_of(term)}"
        for extra in _addends(node):
            rest = _without_addend(node, extra)
            if rest is not None and self._holds(rest, head, self.exact, parser):
                return f"an extra term: {_show(extra)}"
        # a derivative at the wrong point, or of the wrong layer's function
        places = [(None, w) for w in self.derivs] + [
            (name, w) for name, ws in self.def_derivs.items() for w in ws
        ]
        for owner, where in places:
            for fn, arg in self._alternatives(where):
                new = derivative_ir(fn, arg, where.params, fn in self.net.funcs)
                if owner is None:
                    fixed, override = _swap(node, where.node, new), None
                else:
                    fixed = node
                    override = {owner: _swap(parser.claim_nodes[owner], where.node, new)}
                if self._holds(fixed, head, self.exact, parser, override=override):
                    if fn != where.fn:
                        return (
                            f"the derivative of the wrong function: {where.fn}' where {fn}' belongs"
                        )
                    return (
                        f"a derivative taken at the wrong point: {where.fn}'({_show(where.arg)})"
                        f" should be {fn}'({_show(arg)})"
                    )
        return None

    def _alternatives(self, where: Derivative):
        user = self.user_net
        args = [eq.expr.arg for eq in user.equations if isinstance(eq.expr, (ir.Call, ir.Softmax))]
        args += [
            ir.Ref(q.shape, (1, 1), q.name)
            for q in user.quantities.values()
            if q.kind in ("intermediate", "input")
        ]
        args = [a for a in args if a.shape == where.arg.shape]
        fns = list(
            dict.fromkeys(
                [
                    where.fn,
                    *user.funcs,
                    *(eq.expr.fn for eq in user.equations if isinstance(eq.expr, ir.Call)),
                ]
            )
        )
        for fn, arg in itertools.product(fns, args):
            if fn.endswith("'") or (fn == where.fn and _show(arg) == _show(where.arg)):
                continue
            yield fn, arg

    def _name_factor(self, ratio: float, ev: Evaluator):
        dims = [sp.Symbol(d, integer=True, positive=True) for d in self.net.dims]
        candidates = [sp.Integer(k) for k in (-1, 2, -2, 4)] + [
            sp.Rational(1, 2),
            sp.Rational(-1, 2),
        ]
        for d1 in dims:
            candidates += [1 / d1, d1, -1 / d1, 2 / d1]
        for d1, d2 in itertools.combinations(dims, 2):
            candidates += [1 / (d1 * d2), d1 * d2]
        for c in candidates:
            value = float(c.subs({s: ev.dims[str(s)] for s in dims}))
            if np.isclose(value, ratio, rtol=1e-9):
                return c
        return None

    def _scaled_holds(self, node, head, parser, factor) -> bool:
        scaled = ir.Binary(node.shape, node.pos, "*", ir.Scalar((), node.pos, factor), node)
        return self._holds(scaled, head, self.exact, parser)

    def _counterexample(self, node, head, parser) -> dict:
        got, want = self._numeric_values(node, head, parser)
        out = {"sizes": dict(self.numeric.dims), "seed": 1}
        if got.shape == want.shape:
            idx = np.unravel_index(int(np.argmax(np.abs(got - want))), want.shape)
            out.update(
                {
                    "entry": [int(i) for i in idx],
                    "formula": float(got[idx]),
                    "gradient": float(want[idx]),
                }
            )
        else:
            out.update({"formula_shape": list(got.shape), "gradient_shape": list(want.shape)})
        return out


class _Broken(Exception):
    def __init__(self, name):
        super().__init__(name)
        self.name = name


def _transposed(quantities: dict) -> dict:
    """The quantities of the same network in the transposed layout (examples as columns)."""
    out = {}
    for k, q in quantities.items():
        shape = (
            tuple(reversed(q.shape))
            if len(q.shape) == 2
            else ((q.shape[0], sp.Integer(1)) if len(q.shape) == 1 else q.shape)
        )
        out[k] = replace(q, shape=shape)
    return out


def _line_numbers(text: str):
    lines = text.splitlines()

    def find(stmt: str, n: int) -> int:
        for i, line in enumerate(lines, start=1):
            if stmt in line:
                return i
        return n + 1

    return find


def _addends(node: ir.Node) -> list:
    if isinstance(node, ir.Binary) and node.op in "+-":
        return [node.a, node.b]
    return []


def _without_addend(node: ir.Node, gone: ir.Node):
    if not isinstance(node, ir.Binary) or node.op not in "+-":
        return None
    if node.b is gone:
        return node.a
    if node.a is gone:
        return node.b if node.op == "+" else ir.Neg(node.b.shape, node.b.pos, node.b)
    return None


def _swap(tree: ir.Node, old: ir.Node, new: ir.Node) -> ir.Node:
    if tree is old:
        return new
    kids = {
        f: _swap(getattr(tree, f), old, new)
        for f in ("a", "b", "base", "arg")
        if isinstance(getattr(tree, f, None), ir.Node)
    }
    return replace(tree, **kids) if kids else tree


def _display(code: str, ops: dict[int, str]) -> str:
    """The normalised code with each juxtaposition written as the product it was read as."""

    class Rewrite(ast.NodeTransformer):
        def visit_Call(self, node):
            self.generic_visit(node)
            if isinstance(node.func, ast.Name) and node.func.id == "_jx":
                op = ast.Mult() if ops.get(node.col_offset) == "*" else ast.MatMult()
                return ast.BinOp(node.args[0], op, node.args[1])
            if isinstance(node.func, ast.Name) and node.func.id.startswith("_d_"):
                node.func.id = node.func.id[3:] + "'"
            return node

        def visit_Name(self, node):
            if node.id.startswith("_g_"):
                node.id = f"dL/d{node.id[3:]}"
            return node

    return ast.unparse(Rewrite().visit(ast.parse(code, mode="eval")))


def _show(node: ir.Node) -> str:
    from .matexpr import forward_form

    return text_of(forward_form(node))


# ---------------------------------------------------------------------------
# scalar identities


def verify_identity(text: str) -> Result:
    """``sigmoid'(z) = sigmoid(z)*(1 - sigmoid(z))``: a scalar derivative identity."""
    parts = split_equals(text)
    if len(parts) != 2:
        raise SpecError("an identity is LEFT = RIGHT", "<identity>", 1, 1)
    z = sp.Symbol("z", real=True)
    sides = []
    for part in parts:
        code = FormulaParser(part, {"z", "x"}, set(), ("<identity>", 1)).parse()
        sides.append(_scalar(ast.parse(code, mode="eval").body, code))
    diff = _values(sides[0] - sides[1])
    normalized = re.sub(
        r"_d_(\w+)\(",
        r"\1'(",
        " = ".join(FormulaParser(p, {"z", "x"}, set(), ("<identity>", 1)).parse() for p in parts),
    )
    for sign in (sp.Symbol("z", positive=True), sp.Symbol("z", negative=True)):
        d = diff.xreplace({z: sign})
        if sp.simplify(d) != 0:
            for value in (0.5, -0.5, 1.5, -2.0, 0.1, 3.0):
                v = complex(sp.N(diff.subs(z, value)))
                if abs(v) > 1e-12:
                    return Result(
                        text,
                        normalized,
                        "incorrect",
                        "the two sides differ",
                        counterexample={"z": value, "difference": v.real},
                    )
            return Result(text, normalized, "incorrect", "the two sides differ symbolically")
    return Result(text, normalized, "correct", "equal for every z (symbolic)")


def _scalar(node: ast.AST, code: str) -> sp.Expr:
    z = sp.Symbol("z", real=True)
    if isinstance(node, ast.Name) and node.id in ("z", "x"):
        return z
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return sp.nsimplify(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_scalar(node.operand, code)
    if isinstance(node, ast.BinOp):
        a, b = _scalar(node.left, code), _scalar(node.right, code)
        ops = {
            ast.Add: a + b,
            ast.Sub: a - b,
            ast.Mult: a * b,
            ast.MatMult: a * b,
            ast.Div: a / b if b != 0 else sp.zoo,
        }
        if isinstance(node.op, ast.Pow):
            return a**b
        if type(node.op) in ops:
            return ops[type(node.op)]
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "_jx":
        return _scalar(node.args[0], code) * _scalar(node.args[1], code)  # juxtaposition
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and len(node.args) == 1:
        name = node.func.id
        arg = _scalar(node.args[0], code)
        prime = name.startswith("_d_")
        base = name[3:] if prime else name
        if base in RULES and not RULES[base].internal:
            rule = RULES[base]
            params = [sp.nsimplify(d) for _, d in rule.params]
            if not prime:
                return rule.cls(arg, *params)
            w = sp.Dummy("w")  # the derivative of the explicit value, at the argument
            return sp.diff(rule.value(w, *params), w).subs(w, arg)
    raise SpecError(f"cannot read {code!r} as a scalar function of z", "<identity>", 1, 1)


def _values(expr: sp.Expr) -> sp.Expr:
    """Registered functions replaced by their explicit values."""
    for rule in RULES.values():
        if rule.cls in (sp.exp, sp.log, sp.tanh):
            continue
        expr = expr.replace(
            lambda e, c=rule.cls: isinstance(e, sp.Function) and e.func is c,
            lambda e, r=rule: r.value(*e.args),
        )
    return expr


__all__ = ["verify", "verify_all", "verify_identity", "Result"]
