"""Audit of issue 8 (hardening): gaps found after the first pass, each with a test that
fails without its fix."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

import derive
from derive import check
from derive import derivation as derivation_module
from derive.cli import main
from derive.errors import DerivationError

CENTRED = """input x[B, n]
param W[n, n]
param b[n]
z = x @ W + b
L = sum(z - mean(z, axis=0, keepdims=True))
"""

CENTRED_BIAS = """input x[B, n]
param W[n, n]
param b[n]
z = x @ W
h = z + b - mean(z + b, axis=0, keepdims=True)
L = sum(h**2)
"""


def test_an_adjoint_that_cancels_to_nothing_is_a_zero_matrix_and_proven():
    # every term of δz cancels element-wise: this used to be "an adjoint with no terms"
    d = derive.derive(derive.load_network(CENTRED))
    for name in ("W", "b"):
        assert isinstance(d.gradients[name].matrix, sp.ZeroMatrix)
    proofs = check.run_all(d)
    assert [p.passed for p in proofs] == [True, True, True], [(p.name, p.details) for p in proofs]


def test_a_bias_cancelled_by_centering_is_derived_as_zero():
    # δb = 1ᵀδh − 1ᵀδh (the terms cancel only once a summed index's extent is counted)
    d = derive.derive(derive.load_network(CENTRED_BIAS))
    assert isinstance(d.gradients["b"].matrix, sp.ZeroMatrix)
    assert not isinstance(d.gradients["W"].matrix, sp.ZeroMatrix)
    assert all(p.passed for p in check.run_all(d))


def test_the_generated_module_of_a_zero_gradient_runs(tmp_path):
    from codegen.train import module_for

    path = tmp_path / "centred.nn"
    path.write_text(CENTRED)
    mod = module_for(str(path))
    params = mod.init_params({"n": 3}, seed=1)
    data = {"x": np.random.default_rng(0).normal(size=(4, 3))}
    grads = mod.gradients(params, data)
    assert np.array_equal(grads["W"], np.zeros((3, 3)))
    assert np.array_equal(grads["b"], np.zeros(3))
    assert main(["gen", str(path), "-o", str(tmp_path / "m.py")]) == 0


def test_a_derivation_error_points_at_its_equation(tmp_path, capsys, monkeypatch):
    # the engine refuses rarely; make it refuse on the equation of line 4 (h)
    real = derivation_module.lower

    def refusing(node, out):
        if "b" in str(node) and len(out) == 2:
            raise DerivationError("no matrix form for this")
        return real(node, out)

    monkeypatch.setattr(derivation_module, "lower", refusing)
    path = tmp_path / "c.nn"
    path.write_text(CENTRED_BIAS)
    assert main(["grad", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"{path}:5:1: error: cannot derive this network"), err


@pytest.mark.parametrize("where", ["recover"])
def test_a_recovery_error_points_at_its_declaration(tmp_path, capsys, monkeypatch, where):
    real = derivation_module.recover

    def refusing(terms, out):
        if len(out) == 1:  # the bias gradient, declared on line 3
            raise DerivationError("no matrix form for this")
        return real(terms, out)

    monkeypatch.setattr(derivation_module, "recover", refusing)
    path = tmp_path / "c.nn"
    path.write_text(CENTRED_BIAS)
    assert main(["grad", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"{path}:3:"), err
