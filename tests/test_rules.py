"""Every registry entry: its derivative is d value/dz, its NumPy forms agree and are stable.

New entries in derive.rules are picked up automatically."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from derive.indices import new_index
from derive.printing import NumpyFormPrinter
from derive.rules import RULES, SoftmaxAt

NAMES = sorted(RULES)


def _value(expr):
    """Replace every registered function by its explicit value."""
    for rule in RULES.values():
        expr = expr.replace(
            lambda e, c=rule.cls: (
                isinstance(e, sp.Function) and e.func is c and c not in (sp.exp, sp.log, sp.tanh)
            ),
            lambda e, r=rule: r.value(*e.args),
        )
    return expr


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
