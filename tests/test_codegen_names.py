"""User text is data, one namespace per generated module.

A spec's text and file name reach a generated module only as comments and
escaped docstring lines: the attack of issue 8 runs nothing.  Every spec name,
in every role, either gets a one-line refusal or gives a module whose
gradients match finite differences and whose fused step matches
``gradients`` + ``sgd_step``.
"""

from __future__ import annotations

import ast
import re
import symtable

import numpy as np
import pytest

import codegen
import derive
from codegen.bundled import BINDINGS, OUT
from codegen.names import SENTINEL, _skeletons, module_names, nfkc
from codegen.text import comment, comment_lines, doc
from codegen.train import load_source
from derive import SpecError, ir
from derive.cli import main
from derive.derivation import derive as derive_network
from tests.helpers import finite_differences, rel_error

ONE_LINE = re.compile(r"^[^\n]+:\d+:\d+: error: [^\n]+$")

ATTACK = '''# """; __import__("os").system("id > {marker}"); """
# \\xi and \\N{{BULLET}} and \\N and \\u12 and a trailing backslash \\
input  x[B, n_x]
target t[B, n_y]
param  W[n_x, n_y]
y = x @ W
L = sum((y - t)**2)
'''


def test_the_comment_attack_runs_nothing_and_the_module_compiles(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "PWNED"
    spec = tmp_path / 'a"""b\'c\\N.nn'
    spec.write_text(ATTACK.format(marker=marker), encoding="utf-8")
    source = codegen.generate(str(spec))
    tree = ast.parse(source)
    docstring = ast.get_docstring(tree, clean=False)
    assert docstring.startswith('a"""b\'c\\N: a NumPy training module')  # the name, as itself
    assert "__import__" not in docstring and "__import__" in source  # only in a comment
    for node in ast.walk(tree):  # nothing calls __import__ or os.system
        assert not (isinstance(node, ast.Name) and node.id == "__import__")
        assert not (isinstance(node, ast.Attribute) and node.attr == "system")
    out = tmp_path / "out.py"
    assert main(["gen", str(spec), "-o", str(out)]) == 0
    assert main(["train", str(spec), "--data", "seed000", "--epochs", "1", "--lr", "1e-6"]) == 0
    assert main(["test", str(spec), "--data", "seed000", "--weights", "weights.npz"]) == 0
    assert not marker.exists()
    capsys.readouterr()


@pytest.mark.parametrize(
    "text",
    [
        'x """ y',
        "back\\slash \\N{BULLET} \\xi",
        "line\u2028sep\u2029para\x0cfeed\x0bvt\x1c\x85",
        "bidi \u202e reversed \u2066 isolate",
        "lone \ud800 surrogate",
        "nul \x00 byte and tab \t",
        "\r\n\r\n",
    ],
)
def test_user_text_stays_comment_and_docstring_text(text):
    lines = comment_lines(text)
    source = f'"""{doc(text)}"""\n' + "\n".join(lines) + "\n" + comment(text) + "\nVALUE = 1\n"
    source.encode("utf-8")  # no lone surrogate reaches the file
    tree = ast.parse(source)
    assert [type(n).__name__ for n in tree.body] == ["Expr", "Assign"]  # nothing else
    assert ast.get_docstring(tree, clean=False) == text
    for line in source.splitlines()[1:-1]:
        assert line.startswith("#") and line.isprintable()


# --- names -----------------------------------------------------------------------------------

TEMPLATE = """input  {x}[{B}, {n_in}]
target {t}[{B}, {n_out}]
param  {W}[{n_in}, {n_h}], {b}[{n_h}], {V}[{n_h}, {n_out}]
const  {c} = 0.01
{z} = {x} @ {W} + {b}
{h} = tanh({z})
{y} = {h} @ {V}
{L} = sum(({y} - {t})**2) + {c} * sum({W}**2)
"""
ROLES = {
    "x": "input",
    "t": "target",
    "W": "param",
    "b": "param (bias)",
    "V": "param",
    "c": "const",
    "B": "dim (batch)",
    "n_in": "dim",
    "n_h": "dim (hidden)",
    "n_out": "dim",
    "z": "intermediate",
    "h": "intermediate",
    "y": "intermediate (output)",
    "L": "loss",
}
SIZES = {"B": 4, "n_in": 3, "n_h": 5, "n_out": 2}
# names of the module, builtins it calls, locals beside spec names, old temporaries,
# non-ASCII names and names NFKC folds (µ → μ, ﬁ → fi, 𝑥 → x, ｆｌｏａｔ → float)
NAMES = [
    "v1", "float", "DTYPE", "CONSTS", "PARAMS", "buf", "ws", "step", "forward",
    "gradients", "log_softmax", "relu_prime", "range", "len", "np", "os", "fwd", "lr",
    "params", "data", "loss", "é", "δ", "µ", "ﬁ", "𝑥", "ｆｌｏａｔ", "Ｌ", "grad_W", "_t1",
]  # fmt: skip


def numpy_loss(params: dict, data: dict, r: dict) -> float:
    """The template's network, written here in NumPy with the role names."""
    z = data[r["x"]] @ params[r["W"]] + params[r["b"]]
    y = np.tanh(z) @ params[r["V"]]
    return float(np.sum((y - data[r["t"]]) ** 2) + 0.01 * np.sum(params[r["W"]] ** 2))


def check_module(source: str, r: dict) -> None:
    """Gradients equal finite differences; the fused step equals gradients + SGD."""
    mod = load_source(source)
    rng = np.random.default_rng(0)
    dims = {r[k]: v for k, v in SIZES.items()}
    params = {k: rng.normal(size=tuple(dims[d] for d in shape)) for k, shape in mod.PARAMS.items()}
    data = {
        k: rng.normal(size=tuple(dims[d] for d in shape))
        for k, shape in {**mod.INPUTS, **mod.TARGETS}.items()
    }
    got = mod.gradients(params, data)
    want = finite_differences(lambda: numpy_loss(params, data, r), params)
    for p in params:
        assert rel_error(got[p], want[p]) < 1e-6, (r, p)
    assert mod.loss(params, data) == pytest.approx(numpy_loss(params, data, r), rel=1e-12)
    fused = {k: v.copy() for k, v in params.items()}
    mod.sgd_step(params, got, 0.01)
    mod.train_step(fused, data, 0.01, {})
    for p in params:
        np.testing.assert_allclose(fused[p], params[p], rtol=1e-12, atol=1e-14, err_msg=p)


def generate_or_refuse(roles: dict) -> str | None:
    try:
        return codegen.generate(TEMPLATE.format(**roles))
    except SpecError as exc:
        assert ONE_LINE.match(str(exc)), str(exc)
        return None


@pytest.mark.parametrize("name", NAMES)
def test_a_name_in_every_role_is_refused_or_works(name):
    ran = 0
    for role in ROLES:
        roles = {**{k: k for k in ROLES}, role: name}
        source = generate_or_refuse(roles)
        if source is None:
            continue
        if nfkc(name) in module_names():  # such a name must never get through
            pytest.fail(f"{name!r} as {ROLES[role]} was accepted")
        check_module(source, roles)
        ran += 1
    if name in ("v1", "é", "δ"):  # plain identifiers: accepted in every role
        assert ran == len(ROLES), name


def test_the_bias_named_v1_is_trained():
    roles = {**{k: k for k in ROLES}, "b": "v1", "z": "v4", "h": "v7"}
    source = codegen.generate(TEMPLATE.format(**roles))
    check_module(source, roles)


def test_refusals_point_at_the_name():
    roles = {**{k: k for k in ROLES}, "n_h": "ｆｌｏａｔ"}
    with pytest.raises(SpecError) as info:
        codegen.generate(TEMPLATE.format(**roles))
    assert (info.value.line, info.value.col) == (3, 16)
    assert "'float'" in info.value.message


def test_names_nfkc_folds_together_are_refused():
    spec = TEMPLATE.format(**{**{k: k for k in ROLES}, "z": "ﬁ", "h": "fi"})
    with pytest.raises(SpecError) as info:
        codegen.generate(spec)
    assert ONE_LINE.match(str(info.value))


def _scopes(table, path=()):
    """(path of function names, symbol table) of every scope below ``table``."""
    for child in table.get_children():
        here = (*path, child.get_name())
        yield here, child
        yield from _scopes(child, here)


def test_module_names_cover_every_name_a_generated_module_needs():
    """Every global, builtin and local beside a spec name in the real modules is claimed."""
    skeleton = symtable.symtable(_skeletons(SENTINEL)[0], "skeleton", "exec")
    holding = {
        path
        for path, table in _scopes(skeleton)
        if any(s.get_name() == SENTINEL for s in table.get_symbols())
    }
    assert {("forward",), ("gradients",), ("bind_step",), ("bind_step", "step")} <= holding
    claimed = module_names()
    for path in sorted(OUT.glob("*.py")):  # the committed modules (a test keeps them in sync)
        filename, source = path.name, path.read_text(encoding="utf-8")
        spec = path.stem
        net = derive_network(ir.bind(derive.load_network(spec), BINDINGS.get(spec, {}))).network
        own = {*net.quantities, *net.consts, *map(str, net.dims), *net.funcs}
        table = symtable.symtable(source, filename, "exec")
        needed = {s.get_name() for s in table.get_symbols()}
        for path, scope in _scopes(table):
            for s in scope.get_symbols():
                if s.is_global() or (path in holding and not s.is_imported()):
                    needed.add(s.get_name())
        unclaimed = {
            n for n in needed - claimed - own if not n.startswith(("delta_", "grad_", "_"))
        }
        assert not unclaimed, (filename, unclaimed)
    assert {"float", "DTYPE", "CONSTS", "buf", "ws", "step", "forward", "log_softmax"} <= claimed
