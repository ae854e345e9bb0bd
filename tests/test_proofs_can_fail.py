"""The proofs are not rubber stamps: a wrong form, of the right shape, fails each of them."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import sympy as sp

import derive
from derive import check, decide
from derive.matexpr import Map
from derive.numeric import Functions
from derive.rules import RULES
from derive.verify import verify


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


# ---------------------------------------------------------------------------
# proofs that can't be fooled (issue 8 item 4)

BATCHNORM = """
input x[B, n_in]
target t[B, n_out]
param W1[n_in, n_h], b1[n_h], gamma[n_h], W2[n_h, n_out]
h = x @ W1 + b1
hc = h - mean(h, axis=0, keepdims=True)
v = mean(hc**2, axis=0, keepdims=True)
a = tanh(gamma * hc * (v + 0.00001) ** -0.5)
y = a @ W2
L = sum((y - t)**2) / B
"""

ATTENTION_KEY_BIAS = """
input x[T, d]
target y[T, d_v]
param Wq[d, d_k], Wk[d, d_k], bk[d_k], Wv[d, d_v]
q = x @ Wq
k = x @ Wk + bk
a = softmax(q @ k.T / 4)
o = a @ (x @ Wv)
L = sum((o - y)**2) / T
"""


@pytest.mark.parametrize(("spec", "bias"), [(BATCHNORM, "b1"), (ATTENTION_KEY_BIAS, "bk")])
def test_a_gradient_that_is_exactly_zero_passes(spec, bias):
    d = derive.derive(derive.load_network(spec))
    proofs = check.run_all(d)
    assert [p.passed for p in proofs] == [True, True, True], [(p.name, p.details) for p in proofs]
    # the bias gradient really is zero: the numeric proof compared a zero with a zero
    values = check.random_values(
        d.network, np.random.default_rng(1), {n: 3 for n in d.network.dims}
    )
    _, env = check.derived_values(d, values, Functions(generic={}))
    assert np.max(np.abs(np.asarray(env["delta_" + bias], dtype=float))) < 1e-12


def test_a_nan_loss_fails_the_numeric_proof():
    # log of a difference of random sign: no point with a finite loss exists
    d = derive.load(
        "input x[B, n]\ntarget t[B, m]\nparam W[n, m]\ny = x @ W\nL = sum(log(y - t))\n"
    )
    proof = check.numeric(d)
    assert not proof.passed
    assert "finite" in " ".join(proof.details.values())


def test_an_infinite_gradient_fails_and_is_never_ignored():
    # √relu(z): finite loss, but the gradient is inf·0 = NaN wherever z < 0
    d = derive.load("input x[B, n]\nparam W[n, m]\nL = sum(relu(x @ W) ** 0.5)\n")
    assert not check.numeric(d).passed
    assert not check.exact(d).passed


def test_relu_kinks_are_not_sampled():
    d = derive.load("seed000")
    proofs = check.run_all(d)
    assert all(p.passed for p in proofs)
    # the numeric sample keeps every relu argument away from 0
    funcs = check._KinkWatch(generic={})
    _, values, _, redrawn = check._sample(d.network, np.random.default_rng(0), funcs)
    assert redrawn < check._DRAWS and funcs.closest > check.KINK_MARGIN


def test_verify_decides_relu_prime_of_a_relu_output():
    net = derive.load_network(
        "input x[B, n_in]\ntarget t[B, n_out]\nparam W1[n_in, n_h], W2[n_h, n_out]\n"
        "a1 = x @ W1\nout1 = relu(a1)\ny = out1 @ W2\nL = sum((y - t)**2)\n"
    )
    right = "dL/dW1 = x.T @ ((2 * (y - t) @ W2.T) * relu'(out1))"
    wrong = "dL/dW1 = x.T @ (2 * (y - t) @ W2.T)"
    assert verify(net, right)[-1].verdict == "correct"
    assert verify(net, wrong)[-1].verdict == "incorrect"


def test_a_size_one_dimension_is_proven():
    d = derive.load(
        "input x[B, n]\ntarget t[B, 1]\nparam W[n, 1], b3[1]\n"
        "y = x @ W + b3\nL = sum((y - t)**2) + sum(b3**2)\n"
    )
    assert all(p.passed for p in check.run_all(d))
    claim = "dL/db3 = sum(2 * (y - t), axis=0) + 2 * b3"
    assert verify(d.network, claim)[-1].verdict == "correct"


def test_a_literal_width_is_proven_at_a_stand_in_size():
    d = derive.load(
        "input x[B, 10000]\ntarget t[B, 10] onehot\nparam W1[10000, 64], b1[64], W2[64, 10]\n"
        "h = relu(x @ W1 + b1)\np = softmax(h @ W2)\nL = -sum(t * log(p)) / B\n"
    )
    proofs = check.run_all(d)
    assert all(p.passed for p in proofs), [(p.name, p.details) for p in proofs]
    assert "literal 10000 as" in proofs[1].name and "literal 10000 as" in proofs[2].name
    wrong = copy.deepcopy(d)
    wrong.gradients["W2"].matrix = sp.MatMul(2, wrong.gradients["W2"].matrix)
    assert not check.exact(wrong).passed and not check.numeric(wrong).passed


def test_the_decision_procedure():
    x, y = sp.symbols("x y", real=True)
    sig, relu, relu_p = (RULES[n].cls for n in ("sigmoid", "relu", "relu_prime"))
    assert decide.is_zero(sig(x) * (1 - sig(x)) - (sig(x) - sig(x) ** 2))
    assert not decide.is_zero(sig(x) - sig(y))
    assert decide.is_zero(sp.exp(2 * x - y) - sp.exp(x) ** 2 / sp.exp(y))
    assert decide.is_zero(relu_p(relu(x)) - relu_p(x))
    assert not decide.is_zero(relu(x) - x)  # equal on x > 0 only
    half = sp.Rational(1, 2)
    assert decide.is_zero((x**2 + 1) ** -half * (x**2 + 1) ** -1 - (x**2 + 1) ** (-3 * half))
    assert decide.is_zero(sp.sqrt(10) * (x**2 + 1) ** half - (10 * x**2 + 10) ** half)
    assert not decide.is_zero((x + y) ** 2 - x**2 - y**2)
    assert decide.equal(np.array([x + y, x * y]), np.array([y + x, y * x]))
    assert decide.error_bound(100) < 1e-30
