"""A small interpreter of ours for backward functions: it walks a whitelist of Python's
``ast`` on arrays whose entries are SymPy expressions (exact) or float64 (numeric).

User code is never executed by Python: there is no ``exec``, ``eval`` or ``compile``;
every node kind has its own handler here, and anything else is refused with its line.
Loops, lists, tuple unpacking, masks and in-place updates get their meaning from NumPy
on the concrete arrays.
"""

from __future__ import annotations

import ast
import copy
import weakref
from collections.abc import Callable
from typing import NoReturn

import numpy as np
import sympy as sp

from ..errors import SpecError
from ..rules import RULES
from .library import Bound, Library, call, reals_of

MAX_STEPS = 20_000  # statements executed per run: loops are bounded
MAX_CALLS = 16  # nesting of calls to functions of the same file
MAX_WORK = 2_000_000  # array entries computed per run: one line cannot hide a huge loop


class Return(Exception):
    """A ``return`` unwinding the statements of a function (its value)."""

    def __init__(self, value):
        self.value = value


class Lookup:
    """A ``cache`` tuple or dict, or ``self``: names looked up in the spec on use."""

    def __init__(self, name: str, find: Callable[[str], object]):
        self.name, self.lookup = name, find
        self.attrs: dict = {}

    def find(self, name):
        """The value of ``name``: set on this object, else looked up in the spec."""
        return self.attrs[name] if name in self.attrs else self.lookup(name)


class Interpreter:
    """Runs one function's body; ``hook(line, target, value, env)`` sees every assignment."""

    def __init__(self, file: str, exact: bool, functions: dict, hook):
        self.file, self.exact, self.functions, self.hook = file, exact, functions, hook
        self.steps = 0
        self.work = 0
        self.current = None  # the statement running (where a bound is exceeded)
        self.depth = 0
        self.symbols = 0
        self.loops = 0  # loops of the checked function itself the run is inside
        self.pending: dict = {}  # (line, name) -> owner: accumulations judged after the loop
        self.imported: dict[str, Bound] = {}  # from numpy.lib.stride_tricks import ...

    def fresh(self, what: str) -> sp.Symbol:
        """A new real symbol (an exact ``max`` whose value no verdict may rely on)."""
        self.symbols += 1
        return sp.Symbol(f"_{what}{self.symbols}", real=True)

    def error(self, node, message: str) -> NoReturn:
        """Refuse ``node`` with a one-line error at its position."""
        raise SpecError(
            message, self.file, getattr(node, "lineno", 1), getattr(node, "col_offset", 0) + 1
        )

    # -- statements -----------------------------------------------------------------------------
    def run(self, fn: ast.FunctionDef, env: dict, top: bool = True):
        """Run a function's body in ``env``; its returned value (None without a return)."""
        self.depth += 1
        if self.depth > MAX_CALLS:
            self.error(fn, f"calls nested more than {MAX_CALLS} deep")
        try:
            self.block(fn.body, env, top)
        except Return as r:
            return r.value
        finally:
            self.depth -= 1
            if top:  # a return inside a loop: its accumulations end there
                self.loops = 0
                self.flush(env)
        return None

    def block(self, body: list, env: dict, top: bool):
        """Run statements in order (bounded: at most MAX_STEPS in a run).  A value the code
        cannot compute with (a number compared with a cache, an index out of range) is the
        code's error, reported at its line."""
        for stmt in body:
            self.steps += 1
            if self.steps > MAX_STEPS:
                self.error(stmt, f"more than {MAX_STEPS} statements run: is a loop unbounded?")
            self.current = stmt
            try:
                self.statement(stmt, env, top)
            except (TypeError, IndexError, KeyError, ZeroDivisionError, AttributeError) as exc:
                self.error(stmt, f"cannot run this line on the spec's values: {exc}")

    def statement(self, s, env, top):
        """Run one statement of the whitelist; anything else is refused."""
        if isinstance(s, ast.Assign):
            value = self.expr(s.value, env)
            for t in s.targets:
                self.assign(t, value, env, s, top)
        elif isinstance(s, ast.AugAssign):
            op = _AUGMENTED.get(s)
            if op is None:  # built once per statement: a loop runs it many times
                op = _AUGMENTED[s] = ast.copy_location(ast.BinOp(_load(s.target), s.op, s.value), s)
            self.assign(s.target, self.expr(op, env), env, s, top)
        elif isinstance(s, ast.AnnAssign) and s.value is not None:
            self.assign(s.target, self.expr(s.value, env), env, s, top)
        elif isinstance(s, ast.Return):
            raise Return(None if s.value is None else self.expr(s.value, env))
        elif isinstance(s, ast.For):
            self.loop(s, env, top)
        elif isinstance(s, ast.If):
            test = self.expr(s.test, env)
            if not isinstance(test, (bool, int)):
                self.error(s, "an if on array values is not supported")
            self.block(s.body if test else s.orelse, env, top)
        elif isinstance(s, ast.Expr):
            if not isinstance(s.value, ast.Constant):  # a docstring is skipped
                self.expr(s.value, env)
        elif isinstance(s, ast.While):
            self.error(s, "a while loop has no bound the checker can see: loop over range(...)")
        elif not isinstance(s, (ast.Pass, ast.Assert, ast.Import, ast.ImportFrom)):
            self.error(s, f"unsupported statement ({type(s).__name__})")

    def count(self, entries: int):
        """Charge ``entries`` array entries computed to the run (bounded by MAX_WORK)."""
        self.work += int(entries)
        if self.work > MAX_WORK:
            self.error(
                self.current,
                f"more than {MAX_WORK} array entries computed in one run at the checker's "
                "sizes: the code does too much work to be checked",
            )

    def loop(self, s: ast.For, env, top):
        """``for target in items:`` over a list, a range or a zip (not over an array).

        A value built up inside a loop of the checked function (``dw[f] += …``,
        ``dWx += …``, ``dx[:, t] = …``) is partial until the loop ends: such a line is judged
        once, with the name's value when the outermost loop around it is done.
        """
        items = self.expr(s.iter, env)
        if isinstance(items, np.ndarray):
            self.error(s, "a loop over an array is not supported; loop over range(...)")
        if not isinstance(items, (range, list, tuple)):
            self.error(s, "expected a loop over range(...), a list or a zip")
        if len(items) > MAX_STEPS - self.steps:
            self.error(
                s,
                f"a loop of {len(items)} iterations at the checker's sizes: more than the "
                f"{MAX_STEPS} statements a run may take (a size the spec does not bound?)",
            )
        self.loops += top
        try:
            for item in items:
                self.assign(s.target, item, env, s, top, judge=False)
                self.block(s.body, env, top)
        finally:
            self.loops -= top
        if top and self.loops == 0:
            self.flush(env)

    def flush(self, env):
        """Judge the values built up in the loop that just ended, in line order."""
        pending, self.pending = self.pending, {}
        for (line, name), owner in sorted(pending.items(), key=lambda kv: kv[0][0]):
            self.hook(line, name, None, owner[name], env)

    def judge(self, stmt, name: str, value, env, owner=None, partial=False):
        """Show an assignment to the hook, or, for a value built up inside a loop of the
        checked function (``dw += …``, ``dw = dw + …``, ``dx[:, t] = …``), remember it for
        the end of that loop."""
        if self.loops and (partial or _builds(stmt, name)):
            self.pending[(stmt.lineno, name)] = env if owner is None else owner
            return
        self.hook(stmt.lineno, name, None, value, env)

    def assign(self, target, value, env, stmt, top, judge=True):
        """Bind ``value`` to a name, a tuple of names, an entry or an attribute of ``self``;
        the hook sees assignments of the checked function itself (``top``).
        """
        if isinstance(value, Bound):  # dx = dout.foo: a name of no value we know
            self.error(stmt, f"unsupported attribute or function {value.name!r} used as a value")
        if isinstance(target, ast.Name):
            if isinstance(value, Lookup) and target.id not in _CONTAINERS:
                value = value.find(target.id)  # x = cache: the cached x (cs231n's relu)
            env[target.id] = value
            if top and judge:
                self.judge(stmt, target.id, value, env)
        elif isinstance(target, (ast.Tuple, ast.List)):
            values = self.unpack(value, target, stmt)
            for t, v in zip(target.elts, values, strict=True):
                self.assign(t, v, env, stmt, top, judge)
        elif isinstance(target, ast.Subscript):
            self.store(target, value, env, stmt, top and judge)
        elif isinstance(target, ast.Attribute) and isinstance(
            self.expr(target.value, env), Lookup
        ):  # self.dweights = ...: an attribute of self, judged by its name
            owner = self.expr(target.value, env).attrs
            owner[target.attr] = value
            if top and judge:
                self.judge(stmt, target.attr, value, env, owner)
        else:
            self.error(stmt, f"unsupported assignment target ({type(target).__name__})")

    def unpack(self, value, target, stmt):
        """The values for ``a, b = value`` (a cache lookup yields each name's spec value)."""
        if isinstance(value, Lookup):  # x, w, b = cache: each name from the spec
            return [value.find(t.id) if isinstance(t, ast.Name) else None for t in target.elts]
        values = list(value) if isinstance(value, (list, tuple)) else None
        if values is None or len(values) != len(target.elts):
            self.error(stmt, f"cannot unpack into {len(target.elts)} names")
        return values

    def store(self, target: ast.Subscript, value, env, stmt, judge: bool):
        """``x[index] = value``: a list entry, a masked store (a 0/1 array as the index) or
        NumPy indexing on a copy (labels included: ``d[range(n), y] -= 1``).
        """
        base = self.expr(target.value, env)
        index = self.expr(target.slice, env)
        if isinstance(base, list):
            i = int(index)
            base[i] = value
            if judge and isinstance(target.value, ast.Name):
                self.hook(stmt.lineno, target.value.id, i % len(base), value, env)
            return
        if not isinstance(base, np.ndarray):
            self.error(stmt, "only lists and arrays can be assigned into")
        if isinstance(index, np.ndarray) and index.shape == base.shape:  # x[mask] = v
            new = (1 - index) * base + index * value
        else:
            new = base.copy()
            new[_index(index)] = value
        owner, name = env, target.value.id if isinstance(target.value, ast.Name) else None
        if isinstance(target.value, ast.Attribute):  # self.dinputs[range(n), y] -= 1
            obj = self.expr(target.value.value, env)
            if isinstance(obj, Lookup):
                owner, name = obj.attrs, target.value.attr
        if name is None:
            self.error(stmt, "expected NAME[...] = value")
        owner[name] = new
        self.count(np.size(new))
        if judge:
            self.judge(stmt, name, new, env, owner, partial=True)

    # -- expressions ----------------------------------------------------------------------------
    def expr(self, node, env):
        """Evaluate an expression node by its handler ``e_<kind>``; others are refused."""
        method = getattr(self, "e_" + type(node).__name__, None)
        if method is None:
            self.error(node, f"unsupported syntax ({type(node).__name__})")
        return method(node, env)

    def e_Constant(self, node, env):
        """A number (exact as a SymPy rational; at most 1e12), a string, a bool or None."""
        v = node.value
        if isinstance(v, bool) or v is None or isinstance(v, str):
            return v
        if isinstance(v, (int, float)) and abs(v) <= 1e12:
            if not self.exact:
                return float(v) if isinstance(v, float) else v
            return sp.Integer(v) if isinstance(v, int) else sp.nsimplify(v, rational=True)
        self.error(node, f"unsupported constant {v!r}")

    def e_Name(self, node, env):
        """A variable, a library (``np``), a builtin or a function of the file."""
        if node.id in env:
            return env[node.id]
        if node.id in ("np", "numpy", "torch", "math", "F"):
            return Library(node.id)
        if node.id in BUILTINS:
            return Bound(None, node.id)
        if node.id in self.functions:
            return Bound(None, node.id)
        if node.id in self.imported:  # from numpy.lib.stride_tricks import sliding_window_view
            return self.imported[node.id]
        self.error(node, f"unknown name {node.id!r}")

    def e_IfExp(self, node, env):
        """``a if test else b`` on a plain number or bool (``h[:, t - 1] if t > 0 else h0``)."""
        test = self.expr(node.test, env)
        if not isinstance(test, (bool, int)):
            self.error(node, "an if on array values is not supported")
        return self.expr(node.body if test else node.orelse, env)

    def e_Tuple(self, node, env):
        """A tuple of values."""
        return tuple(self.expr(e, env) for e in node.elts)

    def e_List(self, node, env):
        """A list of values."""
        return [self.expr(e, env) for e in node.elts]

    def e_Dict(self, node, env):
        """A dict of values."""
        keys = [self.expr(k, env) for k in node.keys if k is not None]
        return dict(zip(keys, [self.expr(v, env) for v in node.values], strict=False))

    def e_ListComp(self, node, env):
        """``[expr for x in items]`` (one generator, no conditions)."""
        if len(node.generators) != 1 or node.generators[0].ifs:
            self.error(node, "only [expr for x in items] is supported")
        gen, out = node.generators[0], []
        for item in list(self.expr(gen.iter, env)):
            inner = dict(env)
            self.assign(gen.target, item, inner, node, False)
            out.append(self.expr(node.elt, inner))
        return out

    def e_Slice(self, node, env):
        """``a:b:c`` with integer bounds."""
        part = [
            None if p is None else int(self.expr(p, env))
            for p in (node.lower, node.upper, node.step)
        ]
        return slice(*part)

    def e_UnaryOp(self, node, env):
        """``-x``, ``+x``, ``not x``."""
        v = self.expr(node.operand, env)
        if isinstance(node.op, ast.USub):
            return -v
        if isinstance(node.op, ast.UAdd):
            return v
        if isinstance(node.op, ast.Not):
            return not v
        self.error(node, "unsupported unary operator")

    def e_BinOp(self, node, env):
        """Arithmetic; shapes that NumPy cannot broadcast are a :class:`Clash` at the line."""
        a, b = self.expr(node.left, env), self.expr(node.right, env)
        out = self.arithmetic(node, a, b)
        self.count(np.size(out))
        return out

    def arithmetic(self, node, a, b):
        """``a op b`` for the operator of a BinOp node."""
        op = type(node.op)
        try:
            if op is ast.Add:
                return a + b
            if op is ast.Sub:
                return a - b
            if op is ast.Mult:
                return a * b
            if op is ast.Div:
                return a / b
            if op is ast.MatMult:
                return self.matmul(node, a, b)
            if op is ast.Pow:
                return self.power(node, a, b)
            if op in (ast.FloorDiv, ast.Mod) and all(_whole(v) for v in (a, b)):
                return int(a) // int(b) if op is ast.FloorDiv else int(a) % int(b)
        except ValueError as exc:
            raise Clash(node.lineno, str(exc)) from None
        self.error(node, f"unsupported operator {op.__name__}")

    def matmul(self, node, a, b):
        """``a @ b`` (a scalar factor multiplies); mismatched inner sizes are a clash."""
        if np.ndim(a) == 0 or np.ndim(b) == 0:
            return a * b
        a, b = np.asarray(a), np.asarray(b)
        if a.shape[-1] != b.shape[0]:
            raise Clash(node.lineno, f"shapes {a.shape} and {b.shape} do not fit for a product")
        self.count(a.size * (b.shape[-1] if b.ndim > 1 else 1))
        return a @ b

    def power(self, node, a, b):
        """``a ** b`` with a constant exponent of at most 64."""
        if np.ndim(b) != 0 or abs(float(b)) > 64:
            self.error(node, "expected a number up to 64 as the exponent")
        return a**b

    def e_Compare(self, node, env):
        """A comparison: of arrays, the 0/1 indicator (relu' of the difference); of
        plain numbers, a bool.
        """
        if len(node.ops) != 1:
            self.error(node, "only one comparison at a time")
        a, b = self.expr(node.left, env), self.expr(node.comparators[0], env)
        op = type(node.ops[0])
        arrays = isinstance(a, np.ndarray) or isinstance(b, np.ndarray)
        if op in (ast.Eq, ast.NotEq) and arrays:  # mask = window == np.max(window)
            return self.equal(node, a, b, op is ast.Eq)
        if op in (ast.Eq, ast.NotEq, ast.Is, ast.IsNot) or not (
            isinstance(a, np.ndarray) or isinstance(b, np.ndarray)
        ):
            return _python_compare(op, a, b, self, node)
        above = self.step(a - b)  # (a < b) is 1 − (a > b): one atom for both, up to ties
        return above if op in (ast.Gt, ast.GtE) else 1 - above

    def equal(self, node, a, b, eq: bool):
        """``a == b`` of arrays as 0/1: exactly, by the real values the entries stand for (a
        max-pool's inputs), never by how two expressions happen to be written."""
        if self.exact:
            ra, rb = reals_of(np.asarray(a)), reals_of(np.asarray(b))
            if ra is None or rb is None:
                self.error(node, "== on arrays needs values it can compare (a max-pool's inputs)")
            a, b = ra, rb
        same = np.asarray(a, dtype=float) == np.asarray(b, dtype=float)
        return (same if eq else ~same).astype(int)

    def step(self, x):
        """1 where x > 0: relu'(x), with relu'(relu(z)) = relu'(z)."""
        if not self.exact:
            return (np.asarray(x, dtype=float) > 0).astype(float)
        relu, prime = RULES["relu"].cls, RULES["relu_prime"].cls

        def one(e):
            return prime(e.args[0]) if isinstance(e, relu) else prime(e)

        return _each(one, np.asarray(x, dtype=object))

    def e_Subscript(self, node, env):
        """Indexing a lookup, dict, list, tuple or array (NumPy's own indexing)."""
        base = self.expr(node.value, env)
        index = self.expr(node.slice, env)
        if isinstance(base, Lookup):
            return base.find(index)
        if isinstance(base, dict):
            return base[index]
        if isinstance(base, (list, tuple)):
            return base[index] if isinstance(index, slice) else base[int(index)]
        if isinstance(base, np.ndarray):
            return base[_index(index)]
        self.error(node, "cannot index this value")

    def e_Attribute(self, node, env):
        """``np.f``, ``self.x``, ``x.T``, ``x.shape``, or a method to call."""
        obj = self.expr(node.value, env)
        if isinstance(obj, Library):
            if node.attr in ("lib", "stride_tricks"):  # np.lib.stride_tricks.sliding_window_view
                return Library(f"{obj.name}.{node.attr}")
            return None if node.attr == "newaxis" else Bound(obj, node.attr)
        if isinstance(obj, Lookup):
            if node.attr in self.functions and node.attr not in obj.attrs:
                return Bound(obj, node.attr)  # self.cost_derivative(...): a method of the file
            return obj.find(node.attr)
        if node.attr == "T" and isinstance(obj, np.ndarray):
            return obj.T
        if node.attr == "shape" and isinstance(obj, np.ndarray):
            return tuple(sp.Integer(d) if self.exact else d for d in obj.shape)
        if node.attr in ("ndim", "size") and isinstance(obj, np.ndarray):
            return getattr(obj, node.attr)
        return Bound(obj, node.attr)

    def e_Call(self, node, env):
        """A call: a function of the file, or of the library (:mod:`.library`)."""
        fn = self.expr(node.func, env)
        args = [self.expr(a, env) for a in node.args]
        kw = {k.arg: self.expr(k.value, env) for k in node.keywords if k.arg}
        if not isinstance(fn, Bound):
            self.error(node, "only functions and methods can be called")
        if fn.obj is None and fn.name in self.functions:
            return self.call_user(node, self.functions[fn.name], None, args, kw)
        if isinstance(fn.obj, Lookup) and fn.name in self.functions:
            return self.call_user(node, self.functions[fn.name], fn.obj, args, kw)
        try:
            out = call(self, node, fn, args, kw)
        except ValueError as exc:
            raise Clash(node.lineno, str(exc)) from None
        if isinstance(out, np.ndarray):
            self.count(out.size)
        return out

    def call_user(self, node, fdef: ast.FunctionDef, self_obj, args, kw):
        """Call a function of the same file with its arguments and defaults."""
        params = [a.arg for a in fdef.args.args]
        if self_obj is not None and params and params[0] == "self":
            args = [self_obj, *args]
        defaults = fdef.args.defaults
        local = dict(
            zip(
                params[len(params) - len(defaults) :],
                [self.expr(d, {}) for d in defaults],
                strict=False,
            )
        )
        local.update(zip(params, args, strict=False))
        local.update(kw)
        missing = [p for p in params if p not in local]
        if missing:
            self.error(node, f"{fdef.name}() needs {', '.join(missing)}")
        return self.run(fdef, local, top=False)


class Clash(Exception):
    """Shapes that do not fit at a line: the line is ill-formed."""

    def __init__(self, line: int, message: str):
        super().__init__(message)
        self.line, self.message = line, message


_CONTAINERS = {"self", "cache", "caches", "parameters", "params", "grads"}
BUILTINS = {"range", "len", "zip", "reversed", "list", "enumerate", "float", "int", "tuple", "abs"}


_AUGMENTED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # x += e → x + e


def _whole(v) -> bool:
    """A plain integer (a size or an index), as ``//`` and ``%`` take them."""
    return isinstance(v, (int, np.integer, sp.Integer)) and not isinstance(v, bool)


def _builds(stmt, name: str) -> bool:
    """Whether a statement adds to a name's value: ``x += e`` or ``x = x + e``."""
    if isinstance(stmt, ast.AugAssign):
        return True
    value = getattr(stmt, "value", None)
    return value is not None and any(
        isinstance(n, ast.Name) and n.id == name for n in ast.walk(value)
    )


def _load(target):
    """The same target, read instead of written."""
    out = copy.deepcopy(target)
    for n in ast.walk(out):
        if hasattr(n, "ctx"):
            n.ctx = ast.Load()
    return out


def _index(index):
    if isinstance(index, tuple):
        return tuple(_index(i) for i in index)
    if isinstance(index, sp.Basic):
        return int(index)
    return index


def _each(fn, x: np.ndarray):
    out = np.empty(x.shape, dtype=object)
    for idx in np.ndindex(x.shape):
        out[idx] = fn(x[idx])
    return out


def _python_compare(op, a, b, interp, node):
    table = {
        ast.Gt: lambda: a > b,
        ast.GtE: lambda: a >= b,
        ast.Lt: lambda: a < b,
        ast.LtE: lambda: a <= b,
        ast.Eq: lambda: a == b,
        ast.NotEq: lambda: a != b,
        ast.Is: lambda: a is b,
        ast.IsNot: lambda: a is not b,
    }
    value = table[op]()
    if isinstance(value, sp.Basic) and not value.is_Boolean:
        interp.error(node, "this comparison cannot be decided")
    return bool(value)
