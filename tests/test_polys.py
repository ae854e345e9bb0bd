"""derive/polys.py: SymPy's factoring with fixed random points and a bound on generators."""

from __future__ import annotations

import sympy as sp
from sympy.core import random as sympy_random

from derive import polys


def test_factor_factors_small_expressions_and_puts_the_random_state_back():
    a, b, h = sp.symbols("a b h")
    before = sympy_random.rng.getstate()
    assert polys.factor(a * h - a * h**3) == -a * h * (h - 1) * (h + 1)
    assert polys.factor(a**2 - b**2) == (a - b) * (a + b)
    assert sympy_random.rng.getstate() == before


def test_an_expression_over_many_generators_is_left_as_it_is():
    xs = sp.symbols(f"x0:{polys.MAX_GENERATORS + 2}")
    e = sp.Add(*[x * xs[0] for x in xs[1:]])  # x0 (x1 + … ) would factor
    assert polys.factor(e) == e
    few = sp.Add(*[x * xs[0] for x in xs[1:4]])
    assert polys.factor(few) == xs[0] * (xs[1] + xs[2] + xs[3])
