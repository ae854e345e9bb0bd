"""codegen: standalone NumPy training modules from derive's proven matrix forms.

``generate(spec)`` renders :file:`templates/module.py.j2` (Jinja2,
``StrictUndefined``) with the context :mod:`codegen.model` works out from a
derivation; expressions are printed by :class:`codegen.printer.CodePrinter`.
The module imports only NumPy.  ``codegen`` imports ``derive``, never the
reverse.
"""

from __future__ import annotations

import ast
import math
import sys
import types
from pathlib import Path
from typing import TYPE_CHECKING

from derive.errors import SpecError

from .environment import env

if TYPE_CHECKING:  # pragma: no cover - for type checkers only
    from derive import ir

__all__ = [
    "const_values",
    "generate",
    "parse_bindings",
    "parse_consts",
    "prepare",
    "render",
    "write_atomic",
    "train",
    "evaluate",
]

DTYPES = ("float32", "float64")


def generate(
    source,
    dtype: str = "float64",
    bind: dict[str, str] | None = None,
    consts: dict[str, float] | None = None,
    target: str = "numpy",
) -> str:
    """The source of a training module for a spec (path, bundled name or text).

    ``bind`` binds generic functions (``{"f": "tanh"}``); ``consts`` gives
    const values (``--const lam=0.01``), which become the module's defaults;
    ``target`` is what the module runs on, as ``derive gen --target``
    (``numpy``, ``numba``, ``torch``, ``jax``).  The source is checked with
    :func:`ast.parse` before it is returned.

    >>> import codegen
    >>> source = codegen.generate("seed000", dtype="float32")
    >>> "DTYPE = np.float32" in source and "def train(" in source
    True
    >>> "torch.autograd.Function" in codegen.generate("seed004", target="torch")
    True
    """
    if target == "numpy" and _has_loop(source):  # a recurrence: codegen.recurrent
        from .recurrent import generate as generate_loop

        return generate_loop(source, dtype=dtype)
    if target != "numpy":
        from .targets import generate_target

        return generate_target(source, target, dtype=dtype, bind=bind, consts=consts)
    from .model import context

    d, header, name, values = prepare(source, dtype, bind, consts)
    ctx = context(d, dtype, header, name)
    ctx["consts"] = list(values.items())
    return _long_lines_marked(render("module.py.j2", ctx))


LINE = 100  # ruff's line length for the generated modules


def _long_lines_marked(code: str) -> str:
    """A module with lines longer than :data:`LINE` (a convolution's window views, one
    NumPy expression the generator does not wrap) says so after its docstring, so it
    stays ruff clean: ``# ruff: noqa: E501`` and ``# fmt: off``."""
    if all(len(line) <= LINE for line in code.splitlines()) or not code.startswith('"""'):
        return code
    end = code.index('"""', 3) + 3
    return code[:end] + "\n\n# ruff: noqa: E501\n# fmt: off" + code[end:]


def prepare(
    source,
    dtype: str = "float64",
    bind: dict[str, str] | None = None,
    consts: dict[str, float] | None = None,
    claimed: frozenset | None = None,
    what: str = "module",
):
    """(derivation, header, spec name, const values) of a spec with every option and
    name checked: what every code target starts from (``codegen.targets`` too).
    ``claimed``: the names the target's module uses (default: this module's)."""
    import derive
    from derive import derive as derive_network
    from derive import ir

    from .names import check_names

    if dtype not in DTYPES:
        raise SpecError(
            f"unknown dtype {dtype!r}; expected one of {', '.join(DTYPES)}", "<options>", 1, 1
        )
    net = derive.load_network(source)
    if net.loop is not None:
        line, col = net.loop.pos
        raise SpecError(
            f"a loop over time generates NumPy only (derive gen SPEC), not a {what}",
            net.file,
            line,
            col,
        )
    check_names(net, claimed, what)
    bind = dict(bind or {})
    _check_bindings(net, bind)
    _check_dims(net)
    values = const_values(net, consts)
    header = _header(net.source, bind, consts)
    d = derive_network(ir.bind(net, bind))
    check_names(d.network, claimed, what)  # and the names the derivation gave to hoisted values
    return d, header, net.name, values


def _has_loop(source) -> bool:
    """Whether the spec has a loop over time (its module comes from codegen.recurrent)."""
    import derive

    return derive.load_network(source).loop is not None


def _check_dims(net: ir.Network) -> None:
    """Every dimension sizes some axis of an input, target or param on its own, so that
    generated code can read it from an array's shape (else a one-line :class:`SpecError`)."""
    direct = {
        str(dim)
        for q in [*net.of_kind("input"), *net.of_kind("target"), *net.of_kind("param")]
        if q.keep is None  # a mask's shape is built from the dims, not read
        for dim in q.shape
        if dim.is_Symbol
    }
    for q in net.quantities.values():
        for dim in q.shape:
            hidden = sorted(str(s) for s in dim.free_symbols if str(s) not in direct)
            if hidden and q.kind in ("input", "target", "param"):
                line, col = q.pos
                raise SpecError(
                    f"dimension {hidden[0]} appears only inside {dim} (in {q.name}); generated "
                    f"code reads each dimension from an array's shape, so give one input, "
                    f"target or param an axis of size {hidden[0]} itself",
                    net.file,
                    line,
                    col,
                )


def _check_bindings(net: ir.Network, bind: dict[str, str]) -> None:
    """Every ``--bind NAME=FUNCTION`` names a generic function of the spec and a known
    activation, and every generic function is bound (else a one-line :class:`SpecError`)."""
    from derive.forms import RULES, activations

    for name, fn in bind.items():
        if name not in net.funcs:
            raise SpecError(
                f"--bind {name}={fn}: the spec declares no generic function "
                f"{name!r} (it declares: {', '.join(net.funcs) or 'none'})",
                "<options>",
                1,
                1,
            )
        if fn not in RULES or RULES[fn].internal:
            line, col = net.func_pos[name]
            raise SpecError(
                f"--bind {name}={fn}: unknown function {fn!r}; known: {', '.join(activations())}",
                net.file,
                line,
                col,
            )
    unbound = [f for f in net.funcs if f not in bind]
    if unbound:
        line, col = net.func_pos[unbound[0]]
        raise SpecError(
            f"generic function{'s' if len(unbound) > 1 else ''} "
            f"{', '.join(unbound)} must be bound to generate code, e.g. "
            f"--bind {unbound[0]}=tanh",
            net.file,
            line,
            col,
        )


def _header(spec_text: str, bind: dict[str, str], consts: dict[str, float] | None) -> str:
    """The spec as the generated module reproduces it, with the options that shaped it."""
    from .text import number

    header = spec_text
    if bind:
        header += "\n# bound: " + ", ".join(f"{k}={v}" for k, v in bind.items())
    if consts:
        header += "\n# consts: " + ", ".join(f"{k}={number(v)}" for k, v in consts.items())
    return header


def render(template: str, ctx: dict) -> str:
    """``template`` rendered with ``ctx``, checked with :func:`ast.parse`."""
    code = env().get_template(template).render(**ctx)
    try:
        ast.parse(code)
    except SyntaxError as exc:  # our bug, never the user's: nothing may run it
        raise RuntimeError(f"generated code does not parse: {exc}") from None
    return code


def const_values(net: ir.Network, given: dict[str, float] | None) -> dict[str, float | None]:
    """Every const's value: given (``--const``), else the spec's default (None: none)."""
    given = dict(given or {})
    value: float | None
    for name, value in given.items():
        if name not in net.consts:
            raise SpecError(
                f"--const {name}: the spec declares no const {name!r} "
                f"(it declares: {', '.join(net.consts) or 'none'})",
                "<options>",
                1,
                1,
            )
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            raise SpecError(f"--const {name}: expected a finite number, got {value!r}", "<options>")
    from . import names

    out: dict[str, float | None] = {}
    for name, default in net.consts.items():
        value = given.get(name, default)
        if value is not None and not math.isfinite(float(value)):
            line, col = names.position(net, name)
            raise SpecError(
                f"const {name} = {value}: expected a finite number", net.file, line, col
            )
        out[name] = None if value is None else float(value)
    return out


def parse_bindings(items: list[str]) -> dict[str, str]:
    """``["f=tanh", …]`` (the ``--bind`` options) as ``{"f": "tanh", …}``."""
    out = {}
    for item in items:
        name, sep, fn = item.partition("=")
        if not sep or not name.isidentifier() or not fn.isidentifier():
            raise SpecError(
                f"--bind expects NAME=FUNCTION (e.g. f=tanh), got {item!r}", "<options>", 1, 1
            )
        out[name] = fn
    return out


def parse_consts(items: list[str]) -> dict[str, float]:
    """``--const NAME=VALUE`` options: finite numbers by name."""
    out = {}
    for item in items:
        name, sep, text = item.partition("=")
        try:
            value = float(text)
        except ValueError:
            value = None
        if not sep or not name.isidentifier() or value is None:
            raise SpecError(
                f"--const expects NAME=NUMBER (e.g. lam=0.01), got {item!r}", "<options>", 1, 1
            )
        if not math.isfinite(value):
            raise SpecError(f"--const {name}: expected a finite number, got {text!r}", "<options>")
        out[name] = value
    return out


def write_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (see :mod:`codegen.output` for the rules)."""
    from . import output

    output.write_atomic(path, text)


def evaluate(trained, data: str, seed: int | None = None) -> dict:
    """Loss, accuracy and confusion of :func:`train`'s result on ``data``'s test part."""
    from .api import evaluate as _evaluate

    return _evaluate(trained, data, seed)


class _Package(types.ModuleType):
    """``codegen.train`` is the function, though a submodule of that name exists.

    Importing the submodule ``codegen.train`` makes the import system bind the
    attribute ``train`` of this package to the module; the property keeps the
    function (:func:`codegen.api.train`) in its place.  ``from codegen.train
    import …`` reads ``sys.modules`` and is not affected.
    """

    @property
    def train(self):
        from .api import train

        return train

    @train.setter
    def train(self, value) -> None:
        pass  # the submodule binding; ``codegen.train`` stays the function


sys.modules[__name__].__class__ = _Package
