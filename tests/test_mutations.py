"""Mutation test of `derive verify`: small slips in correct formulas must be caught.

From every correct claim below, each mutant changes one thing (drop or add
a transpose, swap the operands of a matrix product, ⊙ ↔ @, drop a derivative
factor, flip a sign, change a constant, take the wrong layer's derivative).
Independently of the verifier, each mutant is labelled by finite differences
of the loss at random values: equivalent or not.  The verifier must accept
exactly the equivalent ones.  The score is printed for the README.
"""

from __future__ import annotations

import ast
import copy
import re

import numpy as np
import pytest

import derive
from derive.check import random_values
from derive.errors import SpecError
from derive.notation import FormulaParser, read_head, split_equals, split_statements
from derive.numeric import Functions, forward, generic_bindings, run_node
from derive.verify import ClaimParser, verify

CORRECT = [
    ("seed000", "dL/dW = x.T @ (2 * (y - t) @ S.T * relu'(u))"),
    ("seed000", "dL/dS = h.T @ (2 * (y - t))"),
    ("seed003", "d3 = (X3 - T) * f3'(X2 @ W3); dE/dW3 = X2.T @ d3"),
    ("seed003", "d3 = (X3 - T) * f3'(X2 @ W3); d2 = d3 @ W3.T * f2'(X1 @ W2); dE/dW2 = X1.T @ d2"),
    ("seed003_sigmoid", "d3 = (X3 - T) * X3 * (1 - X3); dE/dW3 = X2.T @ d3"),
    ("seed002", "d3 = (y_hat - T) / B; dL/dW3 = a2.T @ d3"),
    ("seed002", "d3 = (y_hat - T) / B; d2 = d3 @ W3.T * a2 * (1 - a2); dL/dW2 = a1.T @ d2"),
    ("seed004", "d2 = (Y_hat - Y) / (B * n_out); dJ/dW2 = X2.T @ d2"),
    ("seed004", "d2 = (Y_hat - Y) / (B * n_out); d1 = d2 @ W2.T * relu'(Z1); dJ/dW1 = X1.T @ d1"),
]


def rules(node, funcs):
    """(kind, make) for each single-point change of ``node``; make builds the new node."""
    c = copy.deepcopy
    if isinstance(node, ast.Attribute) and node.attr == "T":
        yield "drop a transpose", lambda n: c(n.value)
    if isinstance(node, ast.Name) and node.id not in funcs:
        yield "add a transpose", lambda n: ast.Attribute(c(n), "T")
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.MatMult):
        yield "swap a product", lambda n: ast.BinOp(c(n.right), ast.MatMult(), c(n.left))
        yield "@ → ⊙", lambda n: ast.BinOp(c(n.left), ast.Mult(), c(n.right))
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
        yield "⊙ → @", lambda n: ast.BinOp(c(n.left), ast.MatMult(), c(n.right))
        for side in ("left", "right"):
            drop = getattr(node, side)
            if isinstance(drop, ast.Call) and drop.func.id.startswith("_d_"):
                keep = "right" if side == "left" else "left"
                yield "drop a derivative factor", lambda n, k=keep: c(getattr(n, k))
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Sub, ast.Add)):
        flip = ast.Add if isinstance(node.op, ast.Sub) else ast.Sub
        yield "flip a sign", lambda n, f=flip: ast.BinOp(c(n.left), f(), c(n.right))
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        yield "change a constant", lambda n: ast.Constant(n.value * 3)
    if isinstance(node, ast.Call) and node.func.id.startswith("_d_f"):
        for other in funcs:
            if other != node.func.id[3:]:

                def make(n, o=other):
                    new = c(n)
                    new.func.id = "_d_" + o
                    return new

                yield "wrong layer's derivative", make


def mutants(tree, funcs):
    """Every single-point mutant of an expression, as code."""
    for i, node in enumerate(ast.walk(tree)):
        for kind, make in rules(node, funcs):
            clone = copy.deepcopy(tree)
            target = list(ast.walk(clone))[i]
            new = make(target)
            if target is clone:
                yield kind, ast.unparse(new)
                continue
            for parent in ast.walk(clone):
                for field, value in ast.iter_fields(parent):
                    if value is target:
                        setattr(parent, field, new)
                    elif isinstance(value, list) and target in value:
                        value[value.index(target)] = new
            yield kind, ast.unparse(clone)


def normalised(net, claim):
    """(statement heads, normalised code) of each statement of a claim."""
    known = set(net.quantities) | set(net.dims) | {"d1", "d2", "d3"}
    out = []
    for s in split_statements(claim):
        lhs, rhs = split_equals(s)
        head = lhs.strip()
        code = FormulaParser(rhs, known, set(net.funcs), ("<t>", 1)).parse()
        out.append((head, code))
    return out


def finite_difference_label(net, statements, seed=5) -> bool:
    """Whether the claim's gradient equals central differences of the loss (numerically)."""
    rng = np.random.default_rng(seed)
    dims = {
        d: int(s)
        for d, s in zip(net.dims, rng.permutation(np.arange(3, 3 + len(net.dims))), strict=True)
    }
    values = random_values(net, rng, dims)
    funcs = Functions(generic=generic_bindings(net.funcs))
    env = dict(forward(net, values, funcs))
    parser = ClaimParser(net, dict(net.quantities), "<t>")
    scalars = {**dims, **{c: values[c] for c in net.consts}}
    try:
        for head, code in statements:
            node = parser.claim(code, 1)
            value = run_node(node, env, scalars, funcs)
            if "/" in head:
                wrt = read_head(head, set(net.quantities), ("<t>", 1)).name
                break
            parser.quantities[head] = derive.ir.Quantity(head, "claim", node.shape, (1, 1))
            env[head] = value
    except SpecError:
        return False  # ill-formed: not equivalent
    p = values[wrt]
    if np.shape(value) != p.shape:
        return False
    fd = np.zeros_like(p)
    for idx in np.ndindex(p.shape):
        old = p[idx]
        p[idx] = old + 1e-6
        up = forward(net, values, funcs)[net.loss]
        p[idx] = old - 1e-6
        down = forward(net, values, funcs)[net.loss]
        p[idx] = old
        fd[idx] = (up - down) / 2e-6
    return bool(np.allclose(value, fd, rtol=1e-5, atol=1e-7))


def mutants_of(spec: str, claim: str):
    net = derive.load_network(spec)
    statements = normalised(net, claim)
    for i, (head, code) in enumerate(statements):
        for kind, mutant in mutants(ast.parse(code, mode="eval").body, net.funcs):
            mutated = list(statements)
            mutated[i] = (head, mutant)
            yield net, kind, mutated


def test_there_are_over_a_hundred_mutants():
    assert sum(1 for spec, claim in CORRECT for _ in mutants_of(spec, claim)) > 100


@pytest.mark.parametrize(("spec", "claim"), CORRECT)
def test_mutation_score_is_perfect(spec, claim, capsys):
    """Every mutant of one correct claim is judged as finite differences label it."""
    total = caught = equivalent = 0
    misses = []
    for net, kind, statements in mutants_of(spec, claim):
        mutated = "; ".join(f"{h} = {c}" for h, c in statements)
        mutated = re.sub(r"_d_(\w+)\(", r"\1'(", mutated)
        try:
            accepted = verify(net, mutated)[-1].verdict == "correct"
        except SpecError:
            accepted = False
        label = finite_difference_label(net, statements)
        total += 1
        equivalent += label
        if accepted == label:
            caught += 1
        else:
            misses.append((spec, kind, mutated, label))
    with capsys.disabled():
        print(
            f"\nmutation score {spec}: {caught}/{total} mutants judged right "
            f"({total - equivalent} not equivalent, all rejected; {equivalent} equivalent, "
            "all accepted)"
            if caught == total
            else f"\nmisses: {misses}"
        )
    assert total > 0
    assert misses == []


@pytest.mark.parametrize(("spec", "claim"), CORRECT)
def test_the_unmutated_claims_are_correct(spec, claim):
    assert verify(derive.load_network(spec), claim)[-1].verdict == "correct"
