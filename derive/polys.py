"""SymPy's polynomial factoring with its random choices fixed.

Wang's multivariate factoring (``sympy.polys.factortools.dmp_zz_wang``) draws
its evaluation points from ``sympy.core.random.rng``, which SymPy seeds
afresh in every process. The factors do not depend on those points, but the
time does: the same seven-term delta of a spec with ``max``, ``sqrt`` and
``var`` factored in 0.1 s in one run and in 80 s in another. With the points
drawn from a fixed seed every run takes the same path, so a derivation's
time is the same from run to run (and a test's). Even so, Hensel lifting over
many generators can take seconds where it finds nothing a form could use, so
an expression over more than :data:`MAX_GENERATORS` generators is left as it
is: factoring only tidies, the forms are as right without it.
"""

from __future__ import annotations

import sympy as sp
from sympy.core import random as sympy_random
from sympy.polys.polyerrors import BasePolynomialError

SEED = 0
MAX_GENERATORS = 8  # the deltas factoring tidies (δ ⊙ (1 − h²), p − t) have two to five


def factor(expr: sp.Expr) -> sp.Expr:
    """``sp.factor(expr)``, its random points drawn from :data:`SEED` (the caller's
    random state is put back afterwards); ``expr`` itself over too many generators."""
    if len(_generators(expr)) > MAX_GENERATORS:
        return expr
    state = sympy_random.rng.getstate()
    sympy_random.rng.seed(SEED)
    try:
        return sp.factor(expr)
    finally:
        sympy_random.rng.setstate(state)


def _generators(expr: sp.Expr) -> tuple:
    """The generators of ``expr``'s numerator as a polynomial (none if it is not one)."""
    num, _ = sp.fraction(sp.together(expr))
    try:
        return sp.Poly(num).gens
    except BasePolynomialError:  # a number, or not a polynomial
        return ()
