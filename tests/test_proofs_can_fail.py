"""The proofs are not rubber stamps: a wrong form, of the right shape, fails each of them."""

from __future__ import annotations

import copy

import pytest
import sympy as sp

import derive
from derive import check
from derive.matexpr import Map
from derive.rules import RULES


def corrupted(kind: str):
    d = copy.deepcopy(derive.load("seed000"))
    u = d.step("u")
    if kind == "dropped derivative":  # δu = δh instead of δh ⊙ relu'(u)
        u.matrix = sp.MatrixSymbol("delta_h", *u.matrix.shape)
    elif kind == "factor 2":  # ∂L/∂S off by a constant factor
        d.gradients["S"].matrix = sp.MatMul(2, d.gradients["S"].matrix)
    elif kind == "wrong point":  # relu' taken at h instead of u
        z = sp.Dummy("z")
        h = sp.MatrixSymbol("h", *u.matrix.shape)
        u.matrix = sp.HadamardProduct(
            sp.MatrixSymbol("delta_h", *u.matrix.shape),
            Map(sp.Lambda(z, RULES["sigmoid"].cls(z)), h),
        )
    return d


@pytest.mark.parametrize("kind", ["dropped derivative", "factor 2", "wrong point"])
def test_each_proof_rejects_a_wrong_form(kind):
    d = corrupted(kind)
    assert not check.symbolic(d).passed
    assert not check.exact(d).passed
    assert not check.numeric(d).passed


def test_the_correct_derivation_passes():
    assert all(p.passed for p in check.run_all(derive.load("seed000")))
