"""The package's shape: an acyclic import graph, one interface from codegen into derive.

Imports are read with :mod:`ast` from the source (function-level imports
included: a lazy import is still a dependency), so a cycle fails here even
when it is hidden from the interpreter by a deferred import.
"""

from __future__ import annotations

import ast
import functools
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent
PACKAGES = ("derive", "codegen")
# the modules of derive that codegen (and any other target) may import
PUBLIC = {"derive", "derive.forms", "derive.ir", "derive.errors", "derive.cli"}  # cli: for plugins
# back-edges still allowed, each a function-level (lazy) import (remove an entry once it is
# gone: the test then keeps it gone); verify's two (diagnose <-> function, interpret <->
# library) are gone: evidence.py holds what both sides used, library.py its own types
PENDING_CYCLES: set[tuple[str, str]] = set()
# private names imported across modules (module, from module, name): none any more; a
# listed one would be a decision to keep (the test fails on any unlisted one)
KNOWN_PRIVATE: set[tuple[str, str, str]] = set()


@functools.cache
def parsed(path: Path) -> ast.Module:
    """A module's syntax tree (read once per test session: the tests only read them)."""
    return ast.parse(path.read_text(encoding="utf-8"))


@functools.cache
def nodes(path: Path) -> tuple[ast.AST, ...]:
    """Every node of a module's tree, function bodies included (walked once per session)."""
    return tuple(ast.walk(parsed(path)))


def modules() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if "templates" in parts:
                continue
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            out[name] = path
    return out


def imports(name: str, path: Path, known: set[str]) -> list[tuple[str, str | None]]:
    """(module, imported name or None) for every import of our packages in a module."""
    is_package = path.name == "__init__.py"
    here = name if is_package else name.rpartition(".")[0]
    out = []
    for node in nodes(path):
        if isinstance(node, ast.Import):
            out += [(a.name, None) for a in node.names if a.name.split(".")[0] in PACKAGES]
        elif isinstance(node, ast.ImportFrom):
            base = here
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            module = (
                (f"{base}.{node.module}" if node.module else base) if node.level else node.module
            )
            if module.split(".")[0] not in PACKAGES:
                continue
            for alias in node.names:
                sub = f"{module}.{alias.name}"
                out.append((sub, None) if sub in known else (module, alias.name))
    return out


def graph() -> dict[str, set[str]]:
    """Module → the modules it imports.  An import of a module's own ancestor package
    (``from . import generate`` in ``codegen.train``) is not an edge: Python has
    initialised the package before any of its submodules runs."""
    mods = modules()
    known = set(mods)
    return {
        name: {
            m
            for m, _ in imports(name, path, known)
            if m != name and not name.startswith(m + ".") and (name, m) not in PENDING_CYCLES
        }
        for name, path in mods.items()
    }


def test_the_import_graph_is_acyclic():
    edges = graph()
    state: dict[str, int] = {}  # 1 on the current path, 2 done

    def visit(node, path):
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                cycle = path[path.index(nxt) :] + [nxt]
                raise AssertionError("import cycle: " + " → ".join(cycle))
            if nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])


def test_the_cycle_check_can_fail(monkeypatch):
    edges = graph()
    edges["derive.ir"] = {*edges["derive.ir"], "derive.spec"}  # spec imports ir
    monkeypatch.setattr(sys.modules[__name__], "graph", lambda: edges)
    try:
        test_the_import_graph_is_acyclic()
    except AssertionError as exc:
        assert "derive.ir" in str(exc) and "derive.spec" in str(exc)
    else:
        raise AssertionError("a cycle went unnoticed")


def test_pending_cycles_are_lazy_imports_and_only_in_verify():
    """Each listed back-edge is a function-level import, so importing never cycles."""
    mods = modules()
    for src, dst in PENDING_CYCLES:
        assert src.startswith("derive.verify.") and dst.startswith("derive.verify."), (src, dst)
        tree = parsed(mods[src])
        top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
        top_targets = {m for n in top for m, _ in _node_imports(src, mods[src], n, set(mods))}
        assert dst not in top_targets, (src, dst)
        every = {m for m, _ in imports(src, mods[src], set(mods))}
        assert dst in every, f"{src} no longer imports {dst}: drop it from PENDING_CYCLES"


def _node_imports(name, path, node, known):
    """The imports of one import statement (as :func:`imports` reads them)."""
    is_package = path.name == "__init__.py"
    here = name if is_package else name.rpartition(".")[0]
    if isinstance(node, ast.Import):
        return [(a.name, None) for a in node.names]
    base = here
    for _ in range(node.level - 1):
        base = base.rpartition(".")[0]
    module = (f"{base}.{node.module}" if node.module else base) if node.level else node.module
    return [
        (f"{module}.{a.name}", None) if f"{module}.{a.name}" in known else (module, a.name)
        for a in node.names
    ]


def test_derive_never_imports_codegen():
    for name, deps in graph().items():
        if name.startswith("derive"):
            assert not any(d.startswith("codegen") for d in deps), name


def test_codegen_uses_only_the_public_interface_of_derive():
    mods = modules()
    for name, path in mods.items():
        if not name.startswith("codegen"):
            continue
        for module, imported in imports(name, path, set(mods)):
            if module.startswith("derive"):
                assert module in PUBLIC, f"{name} imports {module}"
                if imported is not None:
                    assert not imported.startswith("_"), f"{name} imports {module}.{imported}"


def test_no_private_names_cross_modules():
    mods = modules()
    found = set()
    for name, path in mods.items():
        for module, imported in imports(name, path, set(mods)):
            if imported and imported.startswith("_") and not imported.startswith("__"):
                found.add((name, module, imported))
    assert found == KNOWN_PRIVATE


def test_public_forms_api_names_what_it_exports():
    import derive.forms

    for name in derive.forms.__all__:
        assert hasattr(derive.forms, name), name


# Each module's source is compiled once and the code object reused: every import still
# runs the module's body afresh, but 64 imports of the same chain no longer recompile it
# (with PYTHONDONTWRITEBYTECODE no .pyc is kept: compiling was half the test's time).
_COMPILE_ONCE = """
import importlib.machinery
_code = {}
_compile = importlib.machinery.SourceFileLoader.source_to_code
def _cached(self, data, path, *args, **kwargs):
    key = (path, bytes(data))
    if key not in _code:
        _code[key] = _compile(self, data, path, *args, **kwargs)
    return _code[key]
importlib.machinery.SourceFileLoader.source_to_code = _cached
"""


def test_each_module_imports_alone():
    """Each module imported first, in a fresh interpreter state of our packages."""
    script = _import_each_alone(sorted(modules()))
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-2000:]


def _import_each_alone(names: list[str]) -> str:
    """A script importing each module of ``names`` with no module of ours loaded before."""
    return _COMPILE_ONCE + (
        "import importlib, sys\n"
        f"names = {names!r}\n"
        "for name in names:\n"
        "    for m in [m for m in sys.modules if m.split('.')[0] in ('derive', 'codegen')]:\n"
        "        del sys.modules[m]\n"
        "    importlib.import_module(name)\n"
    )


# functions over the limit that their owners are splitting (module path, function): remove
# an entry when it is split; the test fails on any unlisted long function and on a listed
# one that is no longer long, so the list only shrinks
LONG_PENDING: set[tuple[str, str]] = set()
MAX_LINES = 60


def long_functions(limit: int = MAX_LINES) -> dict[tuple[str, str], int]:
    """(file, function) → lines, for every function of derive and codegen over ``limit``
    (its ``def`` line to its last line, docstring included)."""
    out = {}
    for path in modules().values():
        for node in nodes(path):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > limit:
                    out[(path.relative_to(ROOT).as_posix(), node.name)] = lines
    return out


def test_no_function_is_longer_than_60_lines():
    found = long_functions()
    new = {k: n for k, n in found.items() if k not in LONG_PENDING}
    assert not new, f"over {MAX_LINES} lines (split them): {new}"
    done = {k for k in LONG_PENDING if k not in found}
    assert not done, f"no longer long: remove from LONG_PENDING: {sorted(done)}"


def test_the_length_check_can_fail():
    found = long_functions(limit=30)
    assert ("codegen/model.py", "context") in found  # 42 lines
    assert all(n > 30 for n in found.values())
