"""A spec at every documented limit of :mod:`derive.limits` at once: refused or quick.

``python -m benchmarks.limits`` builds the spec (:func:`at_every_limit`),
parses and derives it in a fresh interpreter, and prints the wall time and
the peak memory (``ru_maxrss``) of each stage; the README's "Limits"
section quotes the numbers.  ``--check`` adds the exact and numeric proofs,
``--quick`` only parses.

The spec holds, at once: the longest spec text and line (comments pad
them), the most equations, declared names, parentheses open at once,
expression depth, nodes per equation and in all, functions nested in one
another, the largest number, the finest fraction, the largest exponent and
exponent denominator, and the widest literal dimension.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from derive import limits as L


def _balanced(items: list[str]) -> str:
    """``a + b + ...`` as a balanced tree, so depth grows as log2 of the terms."""
    while len(items) > 1:
        items = [
            f"({items[i]} + {items[i + 1]})" if i + 1 < len(items) else items[i]
            for i in range(0, len(items), 2)
        ]
    return items[0]


def _depth(node) -> int:
    import ast

    below = [_depth(child) for child in ast.iter_child_nodes(node)]
    return (1 if isinstance(node, ast.expr) else 0) + max(below, default=0)


def _big(prev: str, consts: list[str]) -> str:
    """One right-hand side at MAX_NODES (or just under), MAX_DEPTH deep at most, with
    functions MAX_CALL_NESTING deep and MAX_NESTING parentheses open at once."""
    import ast

    terms = [
        f"{prev} ** {L.MAX_EXPONENT} * {L.MAX_NUMBER}",
        f"{prev} ** ({L.MAX_EXPONENT_DENOMINATOR - 1}/{L.MAX_EXPONENT_DENOMINATOR})",
        f"{prev} * {1 / L.MAX_DENOMINATOR!r}",
        f"log(exp(-{prev} ** 2) + 1)",
    ]
    best = ""
    for m in range(2, 80):
        core = _balanced([terms[k % 4] + f" * {consts[k % len(consts)]}" for k in range(m)])
        for level in range(L.MAX_CALL_NESTING - 2):  # log(exp(...)) is two levels already
            core = f"tanh({core} * {consts[level % len(consts)]} + {prev})"
        value = ast.parse(core).body[0].value  # type: ignore[attr-defined]
        if _nodes(core) > L.MAX_NODES or _depth(value) > L.MAX_DEPTH:
            break
        best = core
    opened, depth = 0, 0
    for char in best:
        depth += {"(": 1, ")": -1}.get(char, 0)
        opened = max(opened, depth)
    extra = L.MAX_NESTING - opened  # redundant parentheses: MAX_NESTING open at once
    return "(" * extra + best + ")" * extra


def at_every_limit() -> str:
    """The spec text (see the module docstring)."""
    width = L.MAX_LITERAL_DIM
    head = [f"input x[B, {width}]", f"target t[B, {width}]", f"param W[{width}, {width}]"]
    n_consts = L.MAX_NAMES - 4 - L.MAX_EQUATIONS  # and x, t, W, B and the equations
    consts = [f"c{k}" for k in range(n_consts)]
    head += [
        "const " + ", ".join(f"{c} = {1 + k / 1000}" for k, c in enumerate(consts[i : i + 50]))
        for i in range(0, n_consts, 50)
    ]
    body = ["z0 = x @ W"]
    loss = f"L = sum((z{L.MAX_EQUATIONS - 2} - t) ** 2)"
    nodes = _nodes(body[0]) + _nodes(loss)
    small = _nodes("z2 = tanh(z1) + z1")
    while len(body) < L.MAX_EQUATIONS - 1:  # two or three big equations, then small ones
        k = len(body)
        candidate = f"z{k} = " + _big(f"z{k - 1}", consts)
        rest = small * (L.MAX_EQUATIONS - 1 - len(body))  # this one and those after it
        if nodes + _nodes(candidate) + rest <= L.MAX_TOTAL_NODES:
            body.append(candidate)
            nodes += _nodes(candidate)
        else:  # a small one, with `* c` factors (2 nodes each) while the budget lasts
            line = f"z{k} = tanh(z{k - 1}) + z{k - 1}"
            spare = L.MAX_TOTAL_NODES - nodes - rest  # rest counts this one's 5 nodes
            for j in range(min(spare // 2, 20)):
                line += f" * {consts[j]}"
            body.append(line)
            nodes += _nodes(line)
    body.append(loss)
    lines = ["# a spec at every limit of derive/limits.py at once", *head, *body]
    # comments pad lines to MAX_LINE_CHARS, as long as the text stays within MAX_SPEC_CHARS
    budget = L.MAX_SPEC_CHARS - sum(len(line) + 1 for line in lines)
    for n, line in enumerate(lines):
        pad = min(L.MAX_LINE_CHARS - len(line) - 4, budget - 4)
        if pad > 0:
            lines[n] = line + "  # " + "x" * pad
            budget -= pad + 4
    return "\n".join(lines) + "\n"


def _nodes(code: str) -> int:
    """Names, numbers and operators in an expression or ``NAME = expression``."""
    import ast

    tree = ast.parse(code).body[0]
    value = tree.value  # type: ignore[attr-defined]
    return sum(isinstance(n, ast.expr) for n in ast.walk(value))


STAGE = """
import json, resource, sys, time
from benchmarks.limits import at_every_limit
from derive import SpecError, parse
from derive.derivation import derive
text = at_every_limit()
out = {"chars": len(text)}
t0, c0 = time.perf_counter(), time.process_time()
try:
    net = parse(text, file="limits.nn")
    out["parse_s"] = time.perf_counter() - t0
    out["equations"] = len(net.equations)
    if sys.argv[1] != "quick":
        d = derive(net)
        out["derive_s"] = time.perf_counter() - t0 - out["parse_s"]
        out["parse_and_derive_cpu_s"] = time.process_time() - c0
    if sys.argv[1] == "check":
        from derive.check import run_all
        t1 = time.perf_counter()
        out["proofs"] = [p.passed for p in run_all(d, seed=0)]
        out["check_s"] = time.perf_counter() - t1
        out["total_cpu_s"] = time.process_time() - c0
except SpecError as exc:
    out["refused"] = str(exc)
out["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
"""


def measure(stage: str = "derive") -> dict:
    """Run one stage (quick, derive, check) in a fresh interpreter; its numbers."""
    run = subprocess.run(
        [sys.executable, "-c", STAGE, stage], capture_output=True, text=True, check=True
    )
    return json.loads(run.stdout)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="parse only")
    parser.add_argument("--check", action="store_true", help="also run the proofs")
    args = parser.parse_args(argv)
    if args.quick:  # parse only, in this interpreter (the suite runs it: keep it cheap)
        from derive import parse

        net = parse(at_every_limit(), file="limits.nn")
        print(json.dumps({"equations": len(net.equations)}))
        return
    print(json.dumps(measure("check" if args.check else "derive"), indent=1))


if __name__ == "__main__":
    main()
