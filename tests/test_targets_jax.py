"""``derive gen --target jax``: the derived backward as a ``jax.custom_vjp``.

Every bundled spec and every test spec: ``jax.test_util.check_grads`` in
float64 (reverse mode against finite differences of the module's forward
pass), gradients equal to ``jax.grad`` of the same forward pass left to JAX,
under ``jax.jit`` too, and the loss equal to the PyTorch target's.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from codegen.targets import generate_target
from derive.errors import SpecError
from tests.targets_helpers import SPECS, generate_all, workload

jax.config.update("jax_enable_x64", True)


@pytest.fixture(scope="module")
def modules(tmp_path_factory):
    return generate_all("jax", tmp_path_factory.mktemp("jax"))


def arrays(params):
    return {k: jnp.asarray(v, jnp.float64) for k, v in params.items()}


@pytest.mark.parametrize("name", list(SPECS))
def test_check_grads_in_float64(name, modules):
    mod = modules[name]
    _, params, data = workload(name, mod)
    check_grads(lambda p: mod.loss(p, data), (arrays(params),), order=1, modes=["rev"])


@pytest.mark.parametrize("name", list(SPECS))
def test_derived_gradients_equal_jax_grad(name, modules):
    mod = modules[name]
    _, params, data = workload(name, mod, seed=1)
    p = arrays(params)
    derived = jax.grad(mod.loss)(p, data)
    theirs = jax.grad(mod.autograd_loss)(p, data)
    assert set(derived) == set(p)
    for key in p:
        assert derived[key].shape == p[key].shape
        np.testing.assert_allclose(derived[key], theirs[key], rtol=1e-10, atol=1e-12, err_msg=key)


def test_jitted_gradients_and_scaled_seed(modules):
    mod = modules["penalty"]  # the loss has terms of its own (lam ‖W‖²): they take the seed too
    _, params, data = workload("penalty", mod, seed=2)
    p = arrays(params)
    eager = jax.grad(mod.loss)(p, data)
    jitted = jax.jit(jax.grad(mod.loss))(p, data)
    scaled = jax.grad(lambda q, d: -2.5 * mod.loss(q, d))(p, data)
    for key in p:
        np.testing.assert_allclose(jitted[key], eager[key], rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(scaled[key], -2.5 * eager[key], rtol=1e-12, atol=1e-14)


def test_class_labels_under_jit_and_bad_labels_refused(modules):
    mod = modules["cs231n_softmax"]
    _, params, data = workload("cs231n_softmax", mod, seed=3)
    p = arrays(params)
    eager = jax.grad(mod.loss)(p, data)
    jitted = jax.jit(jax.grad(mod.loss))(p, {k: jnp.asarray(v) for k, v in data.items()})
    for key in p:
        np.testing.assert_allclose(jitted[key], eager[key], rtol=1e-12, atol=1e-14)
    with pytest.raises(ValueError, match="class labels"):
        mod.loss(p, {**data, "y": -1 - data["y"]})


def test_the_derived_backward_is_the_one_that_runs(modules):
    """A vjp through ``derived_loss`` calls the module's backward, not JAX's autodiff."""
    mod = modules["seed002"]
    _, params, data = workload("seed002", mod)
    calls = []
    backward = mod._derived_backward

    def spy(saved, seed):
        calls.append(seed)
        return backward(saved, seed)

    mod.derived_loss.defvjp(mod._derived_forward, spy)
    try:
        jax.grad(mod.loss)(arrays(params), data)
    finally:
        mod.derived_loss.defvjp(mod._derived_forward, backward)
    assert len(calls) == 1


def test_init_params_is_a_seeded_pytree(modules):
    mod = modules["seed004_deep"]
    dims = {"B": 4, "n_in": 400, "n_h1": 100, "n_h2": 200, "n_out": 100}
    params = mod.init_params(dims, seed=0)
    assert list(params) == list(mod.PARAMS)
    assert params["W1"].dtype == jnp.float64
    assert float(params["W1"].std()) == pytest.approx((2 / 400) ** 0.5, rel=0.02)
    limit = (6 / (200 + 100)) ** 0.5
    assert limit * 0.95 < float(jnp.abs(params["W3"]).max()) <= limit
    again = mod.init_params(dims, seed=0)
    assert all(bool(jnp.array_equal(params[k], again[k])) for k in params)


@pytest.mark.parametrize("taken", ["jnp", "jax", "derived_loss", "DTYPE"])
def test_spec_names_that_collide_with_the_modules_names_are_refused(taken):
    spec = (
        f"input x[B, n]\ntarget t[B, n]\nparam {taken}[n, n]\n"
        f"y = x @ {taken}\nL = sum((y - t)**2)\n"
    )
    with pytest.raises(SpecError, match="uses for itself"):
        generate_target(spec, "jax")


def test_weight_gradient_products_stored_transposed_or_not_are_xt_d(modules):
    """``t_matmul(X, d)`` (every weight gradient ``Xᵀ δ``) is ``Xᵀ d`` on both of its paths:
    Xᵀ stored row by row first (from 2¹⁷ multiply-adds: float64, float32 with 256+
    columns) or the plain product."""
    t_matmul = modules["seed000"].t_matmul
    rng = np.random.default_rng(5)
    for dtype, (b, m, n) in [
        ("float64", (16, 128, 64)),  # stored transposed
        ("float32", (4, 128, 256)),  # stored transposed
        ("float32", (16, 128, 64)),  # plain: narrow
        ("float64", (3, 4, 5)),  # plain: small
    ]:
        x = rng.normal(size=(b, m)).astype(dtype)
        d = rng.normal(size=(b, n)).astype(dtype)
        out = t_matmul(jnp.asarray(x), jnp.asarray(d))
        assert out.dtype == dtype and out.shape == (m, n)
        tol = 1e-12 if dtype == "float64" else 1e-5
        np.testing.assert_allclose(out, x.T @ d, rtol=tol, atol=tol)
