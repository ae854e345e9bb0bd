"""The generated modules read like careful hand-written code: nothing is computed twice.

Checked on the committed modules in ``generated/`` (``tests/test_codegen.py``
keeps them in step with the generator) by reading their source with :mod:`ast`.
"""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

import pytest

GENERATED = sorted((Path(__file__).parent.parent / "generated").glob("*.py"))


def functions(path: Path) -> dict[str, ast.FunctionDef]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {f.name: f for f in tree.body if isinstance(f, ast.FunctionDef)}


def scalars(path: Path) -> set[str]:
    """The module's dims and consts, and the learning rate: names of numbers, not arrays."""
    out = {"lr"}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) in ("DIMS", "CONSTS"):
            out |= set(ast.literal_eval(node.value))
    return out


def repeated(node: ast.AST, numbers: set[str]) -> dict[str, int]:
    """Array expressions (operators and calls) written more than once in ``node``;
    arithmetic on dims and consts alone (``B * n_out``, ``lr / N``, the index range
    ``np.arange(H // 2)``) is not counted."""
    seen = Counter(
        ast.unparse(n)
        for n in ast.walk(node)
        if isinstance(n, (ast.BinOp, ast.UnaryOp, ast.Call))
        and not (isinstance(n, ast.Call) and ast.unparse(n.func) == "np.empty")  # buffers
        and not {m.id for m in ast.walk(n) if isinstance(m, ast.Name)} <= numbers | {"np"}
    )
    return {k: v for k, v in seen.items() if v > 1}


@pytest.mark.parametrize("path", GENERATED, ids=lambda p: p.stem)
def test_forward_predict_and_gradients_compute_nothing_twice(path):
    defs, numbers = functions(path), scalars(path)
    for name in ("forward", "predict", "gradients"):
        assert not repeated(defs[name], numbers), (name, repeated(defs[name], numbers))


@pytest.mark.parametrize("path", GENERATED, ids=lambda p: p.stem)
def test_the_fused_step_computes_nothing_twice_and_reads_every_temporary(path):
    step = functions(path)["bind_step"]
    calls = Counter(
        ast.unparse(n)
        for n in ast.walk(step)
        if isinstance(n, ast.Call) and any(k.arg == "out" for k in n.keywords)
    )
    assert all(v == 1 for v in calls.values()), calls
    assigned = {
        t.id
        for n in ast.walk(step)
        if isinstance(n, ast.Assign)
        for t in n.targets
        if isinstance(t, ast.Name) and t.id.startswith("_t")
    }
    read = {n.id for n in ast.walk(step) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    assert assigned <= read, f"computed, never read: {sorted(assigned - read)}"


def test_the_check_can_fail():
    twice = ast.parse("L = np.vdot(y - t, y - t) / (B * n)\nM = B * n")
    assert repeated(twice, {"B", "n"}) == {"y - t": 2}
