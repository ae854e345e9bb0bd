"""Every registry entry: its derivative is d value/dz, its NumPy forms agree and are stable.

New entries in derive.rules are picked up automatically."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from derive.errors import SpecError
from derive.indices import new_index
from derive.printing import NumpyFormPrinter
from derive.rules import RULES, SOFTMAX, SoftmaxAt, activations, explicit, function_names

NAMES = sorted(RULES)


def _value(expr):
    """Replace every registered function by its explicit value."""
    return explicit(expr)


@pytest.mark.parametrize("name", NAMES)
def test_registered_derivative_is_the_derivative_of_the_value(name):
    rule = RULES[name]
    params = [sp.Rational(1, 10)] * len(rule.params)
    for z in (sp.Symbol("z", positive=True), sp.Symbol("z", negative=True)):
        want = sp.diff(rule.value(z, *params), z)
        got = _value(rule.derivative(z, *params))
        assert sp.simplify(want - got) == 0, (name, want, got)


@pytest.mark.parametrize("name", NAMES)
def test_sympy_class_differentiates_with_the_rule(name):
    rule = RULES[name]
    z = sp.Symbol("z")
    params = [sp.Rational(1, 10)] * len(rule.params)
    assert sp.diff(rule.cls(z, *params), z) == rule.derivative(z, *params)


@pytest.mark.parametrize("name", NAMES)
def test_numpy_template_and_kernel_agree_and_stay_finite(name):
    rule = RULES[name]
    z = np.array([-1000.0, -30.0, -1.5, -0.2, 0.3, 2.0, 30.0, 1000.0])
    if name in ("log", "sqrt"):
        z = np.abs(z) + 0.5
    if name == "exp":
        z = np.clip(z, -30, 30)
    params = [0.1] * len(rule.params)
    code = rule.numpy.format("z", *map(str, params))
    templ = eval(code, {"np": np, "z": z})  # noqa: S307 - the registry's own template
    kernel = rule.np_impl(z, *params)
    assert np.all(np.isfinite(kernel)), name
    np.testing.assert_allclose(np.asarray(templ, dtype=float), kernel, rtol=1e-12, atol=0)
    symbolic = sp.lambdify(sp.Symbol("z"), rule.value(sp.Symbol("z"), *params), "mpmath")
    for x, k in zip(z[2:-2], kernel[2:-2], strict=True):  # away from overflow
        assert float(symbolic(float(x))) == pytest.approx(k, rel=1e-9, abs=1e-12)


def test_derives_tanh_is_cheap_to_ask_and_leaves_sympys_tanh_alone():
    """derive's tanh answers "real?" from its argument alone and keeps its class through
    SymPy's derivatives and sign rules; SymPy's own tanh keeps SymPy's answers (derive
    changes nothing process-wide: SymPy knows tanh(2 + i) is not real)."""
    tanh, x = RULES["tanh"].cls, sp.Symbol("x", real=True)
    assert tanh is not sp.tanh and issubclass(tanh, sp.tanh)
    assert tanh(sp.log(x) ** sp.Rational(1, 3)).is_real is None  # unknown: never wrong
    assert tanh(x).is_real is True and tanh(x).is_finite is True
    assert sp.tanh(2 + sp.I).is_real is False and tanh(2 + sp.I).is_real is None
    made = [sp.diff(tanh(x**2), x, 2), tanh(-x), RULES["gelu"].value(x), explicit(tanh(x))]
    classes = {type(f) for e in made for f in e.atoms(sp.Function)}
    assert classes <= {tanh}, classes
    assert sp.diff(tanh(x), x) == 1 - tanh(x) ** 2 != 1 - sp.tanh(x) ** 2
    assert str(tanh(x)) == "tanh(x)" and sp.latex(tanh(x)) == sp.latex(sp.tanh(x))


def test_printer_uses_the_registry_template():
    z = sp.Symbol("z")
    assert NumpyFormPrinter().doprint(RULES["sigmoid"].cls(z)) == "np.exp(-np.logaddexp(0, -z))"


def test_softmax_jacobian_rule_matches_the_explicit_softmax():
    n = 3
    z = sp.IndexedBase("z")
    kappa = new_index(sp.Integer(n), "c")
    zs = [z[m] for m in range(n)]
    explicit = [sp.exp(zs[k]) / sum(sp.exp(v) for v in zs) for k in range(n)]
    for k in range(n):
        entry = SoftmaxAt(z[kappa], kappa, k, n)
        for j in range(n):
            got = sp.diff(entry, z[j]).doit()
            got = got.replace(lambda e: isinstance(e, SoftmaxAt), lambda e: e.explicit(n))
            want = sp.diff(explicit[k], zs[j])
            assert sp.simplify(got - want) == 0


def test_softmax_kernel_is_stable_and_normalised():
    from derive.rules import np_softmax

    z = np.array([[1000.0, -1000.0, 0.0], [5.0, 5.0, 5.0]])
    p = np_softmax(z, axis=-1)
    assert np.all(np.isfinite(p))
    np.testing.assert_allclose(p.sum(axis=-1), 1.0)
    np.testing.assert_allclose(p[0], [1.0, 0.0, 0.0])


# --- every kernel against its rule's mathematics ---------------------------------------------

_RNG = np.random.default_rng(12)
# random points, moderate and large, and the extremes: |z| ~ 1000, 0, ±1e-8
_POINTS = np.concatenate(
    [
        _RNG.normal(scale=2.0, size=12),
        _RNG.uniform(-40, 40, size=8),
        [-1000.0, -1e-8, 0.0, 1e-8, 1000.0, -1.0, 1.0, -30.0, 30.0],
    ]
)


def _domain(name: str) -> np.ndarray:
    if name in ("log", "sqrt"):  # sqrt: its derivative is infinite at 0
        return np.abs(_POINTS[_POINTS != 0])
    if name == "exp":
        return _POINTS[_POINTS < 700]  # exp overflows beyond, as it should
    return _POINTS


def _truth(expr, z, points):
    """High-precision values of a SymPy expression of ``z`` (mpmath, 50 digits)."""
    import mpmath

    f = sp.lambdify(z, expr, "mpmath")
    with mpmath.workdps(50):
        return np.array([float(f(mpmath.mpf(float(x)))) for x in points])


def _kernels_namespace():
    """Registered function classes evaluated by their kernels (as generated code does)."""
    return {rule.cls.__name__: rule.kernel for rule in RULES.values() if rule.sympy is None}


@pytest.mark.parametrize("name", NAMES)
def test_kernel_computes_the_rules_value(name):
    rule = RULES[name]
    z = sp.Symbol("z", real=True)
    params = [sp.Rational(3, 10)] * len(rule.params)
    points = _domain(name)
    want = _truth(rule.value(z, *params), z, points)
    got = rule.kernel(points.copy(), *[float(p) for p in params])
    # below 1e-200 counts as 0: 50 digits cannot resolve 1 + tanh(u) for u ≪ −100
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-200, err_msg=name)


@pytest.mark.parametrize("name", NAMES)
def test_kernels_compute_the_rules_derivative(name):
    """The derivative as generated code computes it: the rule's ``derivative``,
    its functions evaluated by their kernels, against d value/dz in mpmath."""
    rule = RULES[name]
    z = sp.Symbol("z", real=True)
    params = [sp.Rational(3, 10)] * len(rule.params)
    points = _domain(name)
    want = _truth(sp.diff(rule.value(z, *params), z), z, points)
    derivative = sp.lambdify(z, rule.derivative(z, *params), [_kernels_namespace(), "numpy"])
    with np.errstate(divide="ignore"):  # NumPy evaluates every branch of a Piecewise
        got = np.broadcast_to(derivative(points.copy()), points.shape)
    # absolute 1e-12: a derivative formula such as σ(1 − σ) or 1 − tanh² cancels where the
    # derivative is far below 1, as generated code computes it too; a wrong kernel is off by
    # far more at the moderate points
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("name", [*NAMES, "softmax"])
def test_kernel_writes_out_keeps_float32_and_honours_in_place(name):
    rule = SOFTMAX if name == "softmax" else RULES[name]
    params = [0.3] * len(rule.params) if name != "softmax" else [-1]
    points = _domain(name).reshape(1, -1)
    want = rule.kernel(points.copy(), *params)
    out = np.empty_like(points)
    assert rule.kernel(points.copy(), *params, out=out) is out
    np.testing.assert_array_equal(out, want)
    if rule.in_place:  # the generated step may run it in its argument's buffer
        z = points.copy()
        rule.kernel(z, *params, out=z)
        np.testing.assert_array_equal(z, want)
    for x, w in zip(
        points[0, :5], want[0, :5] if name != "softmax" else [], strict=False
    ):  # scalars too
        assert rule.kernel(np.float64(x), *params) == pytest.approx(w, rel=1e-12)
    small = points.astype(np.float32)
    got32 = rule.kernel(small, *params)
    assert got32.dtype == np.float32, name
    if name != "exp":
        assert np.all(np.isfinite(got32)), name


def test_softmax_kernel_matches_the_explicit_softmax():
    z = np.array([[1000.0, -1000.0, 0.0], [0.3, -1.2, 2.0]])
    p = SOFTMAX.kernel(z.copy(), axis=-1)
    np.testing.assert_allclose(p, np_softmax_reference(z))


def np_softmax_reference(z):
    import mpmath

    with mpmath.workdps(50):
        return np.array(
            [[float(mpmath.exp(x) / sum(mpmath.exp(y) for y in row)) for x in row] for row in z]
        )


# --- the names every reader takes from the table ---------------------------------------------


def test_notation_reads_every_function_by_its_names():
    from derive.notation import FUNCTION_NAMES

    for name in activations():
        assert FUNCTION_NAMES[name] == name
        for alias in RULES[name].aliases:
            assert FUNCTION_NAMES[alias] == name
    assert function_names()["sigma"] == "sigmoid"


def test_readme_lists_every_function_of_the_table():
    import re
    from pathlib import Path

    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("* Equations, one per name") :].split("\n* ", 2)[0]
    listed = set(re.findall(r"`([a-z_]+)(?:\(|`)", section))
    assert set(activations()) <= listed, set(activations()) - listed


def _outer_parens(code: str) -> bool:
    depth = 0
    for n, ch in enumerate(code):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth == 0 and n < len(code) - 1:
            return False
    return code.startswith("(")


@pytest.mark.parametrize("name", NAMES)
def test_numpy_template_is_atomic_and_takes_an_atomic_argument(name):
    """The printer contract of ``Rule.numpy``: an atomic result from an atomic argument."""
    import ast

    rule = RULES[name]
    params = [0.3] * len(rule.params)
    code = rule.numpy.format("(a + b)", *map(str, params))
    assert isinstance(ast.parse(code, mode="eval").body, ast.Call) or _outer_parens(code), code
    a, b = np.array([0.5, -2.0, 3.0]), np.array([0.25, 2.5, -1.0])  # sums > 0: log too
    got = eval(code + " * 2", {"np": np, "a": a, "b": b})  # noqa: S307 - the registry's own
    np.testing.assert_allclose(got, 2 * rule.kernel(a + b, *params), rtol=1e-12)


def test_every_code_target_has_a_kernel_for_every_rule():
    """Targets that keep kernels of their own (``codegen/targets/*_kernels.py``, read by
    name) must have one per rule, so a new function reaches every target or none."""
    import ast
    from pathlib import Path

    root = Path(__file__).parent.parent / "codegen" / "targets"
    for path in sorted(root.glob("*_kernels.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
        assert set(RULES) <= defined, (path.name, sorted(set(RULES) - defined))


def test_a_target_without_a_rules_kernel_refuses_in_one_line():
    """A rule added without, say, its JAX kernel: ``derive gen --target jax`` says so (exit
    2), not an internal error; tests/test_rules.py asks for the kernel too."""
    from codegen.targets import HERE, kernel_sources

    with pytest.raises(SpecError, match="jax target has no kernel for no_such_rule"):
        kernel_sources(HERE / "jax_kernels.py", ["relu", "no_such_rule"])
