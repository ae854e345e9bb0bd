"""The judge: reads a claim set statement by statement and gives every gradient statement
(and every definition whose name or value says which adjoint it is) a verdict."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import cast

import numpy as np
import sympy as sp

from .. import ir
from ..derivation import Derivation
from ..errors import SpecError
from ..notation import FormulaParser, Head, read_head, split_equals, split_statements
from ..spec import fmt_shape
from . import diagnose
from .evaluate import Evaluator, equal, transpose
from .layers import layer_instances
from .reader import FANCY, ClaimParser, adjoint_of, rewrite_statement
from .result import Broken, Result, Shapes
from .show import display, show


class Verifier:
    """One claim set against one derivation; statements may come from several sources."""

    def __init__(self, d: Derivation, user_net: ir.Network, names: bool = True):
        self.d, self.net = d, d.network
        self.user_net, self.user = user_net, dict(user_net.quantities)
        self.names = names  # the d<q> / grad_<q> naming convention
        self.exact = Evaluator(d, exact=True)
        self.exact.explicit = True  # a claim may write np.square, np.sqrt, σ by hand
        self.numeric = Evaluator(d, exact=False, seed=1)
        self.trans_exact = self.exact.transposed_layout()
        self.functions = set(user_net.funcs)
        # derive grad's names read back: a named pre-activation (X1_in) is known too
        known = {**self.net.quantities, **self.user}
        self.with_delta = {k for k in known if "delta_" + k in self.exact.env}
        self.parser = ClaimParser(self.net, known, "<claim>")
        self.tparser = ClaimParser(self.net, transposed_quantities(known), "<claim>")
        self.parser.gradients = self.tparser.gradients = self.with_delta
        self.parser.names = self.tparser.names = names
        self.defs: dict[str, tuple] = {}  # internal name -> (node, transposed node, error)
        self.def_derivs: dict[str, list] = {}
        self.def_line: dict[str, int] = {}  # internal name -> its line
        self.def_adjoint: dict[str, str] = {}  # internal name -> the q it stands for
        self.wrong_lines: dict[str, int] = {}  # internal name -> line, for wrong definitions
        self.def_scale: dict[str, object] = {}  # per-example definitions: m·∂L/∂q
        self.partial: set[int] = set()
        self.index = 0
        self.batch = self.parser._batch_dim()
        self.derivs: list = []
        self.results: list[Result] = []
        self.errors: list[SpecError] = []

    def run(self, claim_text: str, file: str = "<claim>") -> list[Result]:
        """Read and judge every statement of ``claim_text``; unreadable ones go to errors."""
        self.file = self.parser.file = self.tparser.file = file
        start = len(self.results)
        statements = list(numbered_statements(claim_text))
        self.partial = partial_statements([raw for _, raw in statements])
        for n, (line, raw) in enumerate(statements):
            self.index = n
            try:
                for text, layer in layer_instances(raw, self.net):  # Nielsen's δ^l: each l
                    shown = raw.strip() + (f"   [at l = {layer}]" if layer is not None else "")
                    with np.errstate(all="ignore"):  # x / (x - x) is a verdict, not a warning
                        self.results += self.statement(rewrite_statement(text), shown, line)
            except SpecError as exc:  # unreadable: report it, check the other statements
                self.errors.append(exc)
        return self.results[start:]

    def statement(self, raw: str, text: str, line: int) -> list[Result]:
        """Judge one statement: a definition (judged when its name says which adjoint it
        is) or a gradient statement, for each right-hand side of ``a = b = c``.
        """
        parts = split_equals(raw)
        if len(parts) < 2:
            raise SpecError(
                f"expected NAME = formula or dE/dW = formula, got {text!r}", self.file, line, 1
            )
        known = set(self.parser.quantities) | set(self.net.consts) | set(self.net.dims)
        known |= set(self.parser.version)
        head = read_head(parts[0], known, (self.file, line))
        self.line = line
        out = []
        for rhs in parts[1:]:
            markers = self.functions | set(FANCY.values())  # x[range(N), y] -= e, rewritten
            code = FormulaParser(rhs, known, markers, (self.file, line)).parse()
            self.parser.jx_ops = {}
            node, error = self.parse(self.parser, code, line)
            shown = display(code, self.parser.jx_ops)
            derivs = self.parser.last_derivatives
            tnode, terror = self.parse(self.tparser, code, line, lenient=True)
            if head.kind == "definition":
                out += self.definition(head.name, text, code, shown, node, error, tnode, derivs)
                continue
            self.derivs = derivs
            result = self.judge(text, code, head, node, error, tnode, terror)
            result.normalized = f"d{head.loss}/d{head.name} = {shown}"
            out.append(self.placed(result, line))
        return out

    def definition(self, name, text, code, shown, node, error, tnode, derivs) -> list[Result]:
        """Record a definition, and judge it as ∂L/∂q when its name is one of q's."""
        internal = self.parser.define(name, node, self.line)
        self.tparser.define(name, tnode, self.line)
        self.defs[internal] = (node, tnode, error)
        self.def_derivs[internal] = derivs
        self.def_line[internal] = self.line
        q = adjoint_of(name, self.net, self.with_delta) if self.names else None
        if q is None or self.index in self.partial:  # redefined later: a partial value
            return []
        self.def_adjoint[internal] = q
        self.derivs = derivs
        head = Head("gradient", q, self.net.loss)
        result = self.judge(text, code, head, node, error, tnode, None)
        if result.verdict == "incorrect" and not result.built_on:
            result = self.other_reading(result, internal, text, code, head, node, tnode) or result
        result.normalized = f"{name} = {shown}   (∂{self.net.loss}/∂{q})"
        if result.verdict != "correct":
            self.wrong_lines[internal] = self.line
        return [self.placed(result, self.line)]

    def other_reading(self, result, internal, text, code, head, node, tnode) -> Result | None:
        """A definition right in another sense: Ng's per-example ``dZ = A - Y`` (m·∂L/∂Z of
        a mean loss), or a masked ``dh[h <= 0] = 0`` that now holds ∂L/∂(pre-activation)."""
        batch = self.batch
        if self.per_example(head.name) and diagnose.scaled_holds(self, node, head, 1 / batch):
            self.def_adjoint[internal] = head.name
            self.def_scale[internal] = batch
            reason = (
                f"equal to {batch}·∂{self.net.loss}/∂{head.name}: the per-example adjoint "
                f"of the mean loss (the 1/{batch} is applied later)"
            )
            return Result(text, code, "correct", reason, expected=result.expected)
        if "[" not in text:
            return None
        every = [q for q in self.net.quantities if "delta_" + q in self.exact.env]
        for q in every:
            if q != head.name and tuple(self.net.quantities[q].shape) == tuple(node.shape):
                other = Head("gradient", q, self.net.loss)
                if self.holds(node, other, self.exact, self.parser):
                    self.def_adjoint[internal] = q
                    reason = f"equal to ∂{self.net.loss}/∂{q} (by value: the mask made it so)"
                    return Result(text, code, "correct", reason, expected=self.expected(q))
        return None

    def per_example(self, q: str) -> bool:
        """Whether ``q`` may be written per example (m·∂L/∂q): an intermediate of a batch."""
        return self.batch is not None and self.net.quantities[q].kind != "param"

    def placed(self, result: Result, line: int) -> Result:
        """The result with its line and file."""
        result.line, result.file = line, self.file
        return result

    def parse(self, parser: ClaimParser, code: str, line: int, lenient: bool = False):
        """The IR of a formula, or (None, why) when its shapes clash; in the transposed
        layout (``lenient``) anything it cannot read is just "does not hold there"."""
        parser.derivatives = []
        try:
            return parser.claim(code, line), None
        except Shapes as exc:
            return None, exc.message
        except SpecError as exc:
            if not lenient:
                raise
            return None, exc.message
        finally:
            parser.last_derivatives = list(parser.derivatives)

    # -- values ---------------------------------------------------------------------------------
    def defs_env(self, ev: Evaluator, parser: ClaimParser, override=None, node=None) -> dict:
        """Values of the claim's definitions that ``node`` uses, in order."""
        nodes = {**parser.claim_nodes, **(override or {})}
        env: dict = {}
        for name in self.uses(node, nodes) if node is not None else nodes:
            n = nodes[name]
            if n is None:
                raise Broken(name)
            env[name] = ev.claim(n, env)
        return env

    def uses(self, node: ir.Node, nodes: dict) -> list[str]:
        """The definitions ``node`` uses, directly or through others, in definition order."""
        needed, todo = set(), [node]
        while todo:
            n = todo.pop()
            for r in ir.walk(n) if n is not None else []:
                if isinstance(r, ir.Ref) and r.name in nodes and r.name not in needed:
                    needed.add(r.name)
                    todo.append(nodes[r.name])
        return [name for name in nodes if name in needed]

    def holds(self, node, head, ev: Evaluator, parser, numeric=False, override=None, strict=False):
        """Whether the formula equals the gradient, exactly or (``numeric``) in float64."""
        try:
            env = self.defs_env(ev, parser, override, node)
        except Broken:
            if strict:
                raise
            return False
        got = np.asarray(ev.claim(node, env))
        want = ev.truth(head.name)
        if head.transposed:
            got = transpose(got)
        if got.shape != want.shape:
            if got.size == want.size and 1 in want.shape + got.shape:
                got = got.reshape(want.shape)
            else:
                return False
        if numeric:
            got, want = np.asarray(got, float), np.asarray(want, float)
            return bool(np.allclose(got, want, rtol=1e-7, atol=1e-9))
        return equal(got, want)  # a claim may write np.square or np.sqrt: always explicit

    # -- the verdict ----------------------------------------------------------------------------
    def judge(self, text, code, head, node, error, tnode, terror) -> Result:
        """The verdict of one formula for ∂L/∂q: ill-formed, correct or incorrect (with a
        diagnosis, a counterexample or the wrong line it is built on).
        """
        self.check_head(text, head)
        expected = self.expected(head.name)
        broken = [
            r.name
            for r in (ir.walk(node) if node is not None else [])
            if isinstance(r, ir.Ref) and r.name in self.defs and self.defs[r.name][0] is None
        ]
        if error or broken:
            reason = (
                error or f"it uses {broken[0]}, which is ill-formed ({self.defs[broken[0]][2]})"
            )
            if tnode is not None and self.holds(tnode, head, self.trans_exact, self.tparser):
                reason += (
                    "; the formula holds in the transposed layout (column vectors, "
                    "examples as columns) instead of the spec's row-major batch"
                )
            diagnosis = diagnose.dropped_keepdims(self, code, head) if error else None
            return Result(text, code, "ill-formed", reason, diagnosis, expected=expected)
        shaped = self.shape_verdict(text, code, head, node, expected)
        if shaped is not None:
            return shaped
        try:
            ok = self.holds(node, head, self.exact, self.parser, strict=True)
        except Broken as exc:
            reason = f"it uses {exc.name}, which is ill-formed"
            return Result(text, code, "ill-formed", reason, expected=expected)
        confirmed = self.holds(node, head, self.numeric, self.parser, numeric=True)
        if confirmed and not ok:
            raise SpecError(f"internal: exact and numeric checks disagree on {text!r}", self.file)
        sizes = ok and not confirmed  # equal only at the exact sizes: 1/(T − 1) = T/T at T = 2
        if ok and confirmed:
            reason = (
                "equal to the derived gradient entry by entry (exact, symbolic); "
                "confirmed numerically"
            )
            return Result(text, code, "correct", reason, expected=expected)
        result = Result(text, code, "incorrect", "differs from the derived gradient")
        if sizes:
            result.reason += f" at the sizes {self.numeric.dims} (equal at {self.exact.dims} only)"
        result.expected = expected
        result.built_on = self.built_on(node, head)
        if result.built_on is not None:
            result.reason = (
                f"its own step is right (exact, given the true values of the lines before it), "
                f"but it is built on line {result.built_on}, which is wrong"
            )
            return result
        result.diagnosis = diagnose.diagnose(self, node, head)
        result.counterexample = diagnose.counterexample(self, node, head)
        return result

    def check_head(self, text: str, head: Head):
        """Refuse a head whose loss is not the spec's or whose quantity has no gradient."""
        wrt, net = head.name, self.net
        if head.loss != net.loss:
            raise SpecError(
                f"the numerator of {text!r} must be the loss {net.loss!r}, not {head.loss!r}",
                self.file,
                self.line,
                1,
            )
        if wrt not in net.quantities or "delta_" + wrt not in self.exact.env:
            raise SpecError(
                f"{wrt!r} is not a param or an intermediate the loss depends on",
                self.file,
                self.line,
                1,
            )

    def shape_verdict(self, text, code, head, node, expected) -> Result | None:
        """A result of the wrong shape: transposed (when its transpose holds) or ill-formed."""
        want_shape = self.net.quantities[head.name].shape
        got_shape = tuple(reversed(node.shape)) if head.transposed else node.shape
        if _squeezed(got_shape) == _squeezed(want_shape):  # (1, n) from keepdims is (n,)
            return None
        loss, wrt = self.net.loss, head.name
        reason = (
            f"the formula has shape {fmt_shape(got_shape)} but ∂{loss}/∂{wrt} has "
            f"shape {fmt_shape(want_shape)}"
        )
        flipped = replace(head, transposed=not head.transposed)
        if tuple(reversed(got_shape)) == tuple(want_shape) and self.holds(
            node, flipped, self.exact, self.parser
        ):
            diagnosis: str | None = f"transposed: the formula is (∂{loss}/∂{wrt})ᵀ"
            example = diagnose.counterexample(self, node, head)
            return Result(text, code, "incorrect", reason, diagnosis, example, expected)
        named = diagnose.shape_diagnosis(self, node, head)
        return Result(text, code, "ill-formed", reason, named, expected=expected)

    def built_on(self, node, head) -> int | None:
        """The first wrong earlier line this formula uses, if it is right given the truth there."""
        used = self.uses(node, self.parser.claim_nodes)
        wrong = [n for n in used if n in self.wrong_lines]
        if not wrong:
            return None
        truth = {}
        for n in used:
            if n in self.def_adjoint and self.parser.claim_nodes[n] is not None:
                shape = cast(ir.Node, self.parser.claim_nodes[n]).shape
                ref: ir.Node = ir.Ref(shape, (1, 1), "_g_" + self.def_adjoint[n])
                scale = self.def_scale.get(n)
                if scale is None and self.def_scale and self.per_example(self.def_adjoint[n]):
                    scale = next(iter(self.def_scale.values()))  # the claim's own convention
                if scale is not None:
                    ref = ir.Binary(shape, (1, 1), "*", ir.Scalar((), (1, 1), scale), ref)
                truth[n] = ref
        if self.holds(node, head, self.exact, self.parser, override=truth):
            return min(self.wrong_lines[n] for n in wrong)
        return None

    def expected(self, wrt: str) -> str:
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
                    lines.append(f"{name} = {show(eq.expr)}")
        return lines[0] + ("   where " + "; ".join(lines[1:]) if len(lines) > 1 else "")


_ASSIGNED = re.compile(r"^\s*([^\W\d]\w*)\s*(?:[-+*/]?=(?!=)|\[)")


def partial_statements(statements: list[str]) -> set[int]:
    """Indices of definitions whose name a later statement assigns again (``dW = …`` then
    ``dW += reg * W``; Ng's ``dA2 = dA2 * D2`` then ``dA2 /= keep_prob``)."""
    last: dict[str, int] = {}
    names = []
    for n, raw in enumerate(statements):
        m = _ASSIGNED.match(raw)
        names.append(m.group(1) if m else None)
        if names[-1]:
            last[names[-1]] = n
    return {n for n, name in enumerate(names) if name and last[name] != n}


def _squeezed(shape) -> tuple:
    return tuple(d for d in shape if d != 1)


def numbered_statements(text: str):
    """(line, statement) for every statement of a claim text, in order."""
    for line, row in enumerate(text.splitlines(), start=1):
        for statement in split_statements(row):
            yield line, statement


def transposed_quantities(quantities: dict) -> dict:
    """The quantities of the same network in the transposed layout (examples as columns)."""
    out = {}
    for k, q in quantities.items():
        if len(q.shape) == 2:
            shape = tuple(reversed(q.shape))
        else:
            shape = (q.shape[0], sp.Integer(1)) if len(q.shape) == 1 else q.shape
        out[k] = replace(q, shape=shape)
    return out
