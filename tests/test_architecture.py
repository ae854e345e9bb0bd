"""The package's shape: an acyclic import graph, one interface from codegen into derive.

Imports are read with :mod:`ast` from the source (function-level imports
included: a lazy import is still a dependency), so a cycle fails here even
when it is hidden from the interpreter by a deferred import.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent
PACKAGES = ("derive", "codegen")
# the modules of derive that codegen (and any other target) may import
PUBLIC = {"derive", "derive.forms", "derive.ir", "derive.errors", "derive.cli"}  # cli: for plugins
# convenience methods on upstream objects that call downstream stages
# (``Derivation.check()``, ``.text()``, ``.html()``): lazy imports, kept out of the
# graph but listed here so the list is a decision, not an accident
FACADE_EDGES = {
    ("derive.derivation", "derive.check"),
    ("derive.derivation", "derive.report"),
    ("derive.derivation", "derive.html"),
}
# private names imported across modules (module, from module, name): none any more; a
# listed one would be a decision to keep (the test fails on any unlisted one)
KNOWN_PRIVATE: set[tuple[str, str, str]] = set()


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
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
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
            if m != name and not name.startswith(m + ".") and (name, m) not in FACADE_EDGES
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


def test_facade_edges_are_lazy_imports():
    """Each listed back-edge is a function-level import, so importing never cycles."""
    mods = modules()
    for src, dst in FACADE_EDGES:
        tree = ast.parse(mods[src].read_text(encoding="utf-8"))
        top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
        top_targets = {m for n in top for m, _ in _node_imports(src, mods[src], n, set(mods))}
        assert dst not in top_targets, (src, dst)


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


def test_each_module_imports_alone():
    """Each module imported first, in a fresh interpreter state of our packages."""
    script = (
        "import importlib, sys\n"
        f"names = {sorted(modules())!r}\n"
        "for name in names:\n"
        "    for m in [m for m in sys.modules if m.split('.')[0] in ('derive', 'codegen')]:\n"
        "        del sys.modules[m]\n"
        "    importlib.import_module(name)\n"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-2000:]
