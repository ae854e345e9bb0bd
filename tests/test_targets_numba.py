"""``derive gen --target numba``: the fused step as one compiled call of explicit loops.

The step must equal the NumPy target's fused step (params after several
steps, and the losses) to 1e-10 on specs that cover softmax cross-entropy
with biases, sigmoid cross-entropy, ReLU, consts, column layout (softmax
over axis 0, column biases), 1-D quantities and class labels; once more with every matrix
product sent to BLAS (``BLAS_MIN = 0``): through Numba's ``np.dot``, and through
NumPy's own BLAS in object mode (``NUMPY_MIN = 0``).  Every spec generates ruff-clean code.
"""

from __future__ import annotations

import numpy as np
import pytest

from codegen.targets import generate_target
from tests.targets_helpers import BIND, SPECS, generate_all, load_module, workload

# softmax CE with biases, sigmoid CE, column layout, 1-D quantities, consts, and class
# labels (x[range(N), y] and p − onehot(y), in softmax CE and in the SVM's margins)
STEP_SPECS = ["seed002", "seed004", "column", "vec", "penalty", "cs231n_softmax", "cs231n_svm"]


@pytest.fixture(scope="module")
def modules(tmp_path_factory):
    return generate_all("numba", tmp_path_factory.mktemp("numba"))


@pytest.fixture(scope="module")
def numpy_modules(tmp_path_factory):
    directory = tmp_path_factory.mktemp("numpy")
    out = {}
    for name in STEP_SPECS:
        path = directory / f"numpy_{name}.py"
        path.write_text(generate_target(SPECS[name], "numpy", bind=BIND.get(name)), "utf-8")
        out[name] = load_module(path, f"numpy_{name}")
    return out


def run_steps(mod, params, data, steps=4, lr=0.1):
    own = {k: v.copy() for k, v in params.items()}
    step = mod.bind_step(own, data)
    return own, [step(lr) for _ in range(steps)]


def assert_same_steps(mod, reference, name, seed):
    _, params, data = workload(name, reference, seed=seed)
    ours, our_losses = run_steps(mod, params, data)
    theirs, their_losses = run_steps(reference, params, data)
    np.testing.assert_allclose(our_losses, their_losses, rtol=1e-10, atol=1e-12)
    for key in params:
        np.testing.assert_allclose(ours[key], theirs[key], rtol=1e-10, atol=1e-12, err_msg=key)
        assert not np.array_equal(ours[key], params[key])  # the step updated it


@pytest.mark.parametrize("name", STEP_SPECS)
def test_step_equals_the_numpy_targets_step(name, modules, numpy_modules):
    assert_same_steps(modules[name], numpy_modules[name], name, seed=0)


SCALAR = """
input x[B, n]
target t[B, m]
param W[n, m]
y = x @ W
r = sum((y - t)**2)
L = r / B
"""


def test_step_with_blas_products_equals_the_numpy_targets_step(numpy_modules, tmp_path):
    """Every product of 2-D arrays on NumPy's BLAS in object mode (Numba's np.dot path:
    test_scalar_intermediate_and_scaled_blas_product below)."""
    path = tmp_path / "numba_blas_seed002.py"
    path.write_text(generate_target("seed002", "numba"), encoding="utf-8")
    mod = load_module(path, "numba_blas_seed002")
    mod.BLAS_MIN = mod.NUMPY_MIN = 0  # read when the step compiles
    assert_same_steps(mod, numpy_modules["seed002"], "seed002", seed=1)


def test_scalar_intermediate_and_scaled_blas_product(tmp_path):
    """A scalar equation (a local, not a buffer); the lr-scaled gradient xᵀ δy on BLAS
    through Numba's np.dot (below NUMPY_MIN)."""
    mods = {}
    for target in ("numpy", "numba"):
        path = tmp_path / f"{target}_scalar.py"
        path.write_text(generate_target(SCALAR, target), encoding="utf-8")
        mods[target] = load_module(path, f"{target}_scalar")
    mods["numba"].BLAS_MIN = 0
    rng = np.random.default_rng(0)
    data = {"x": rng.normal(size=(5, 3)), "t": rng.normal(size=(5, 2))}
    params = {"W": rng.normal(size=(3, 2))}
    ours, our_losses = run_steps(mods["numba"], params, data)
    theirs, their_losses = run_steps(mods["numpy"], params, data)
    np.testing.assert_allclose(our_losses, their_losses, rtol=1e-10)
    np.testing.assert_allclose(ours["W"], theirs["W"], rtol=1e-10, atol=1e-12)
    assert not np.array_equal(ours["W"], params["W"])


def test_init_params_is_the_numpy_targets(modules, numpy_modules):
    dims = {"B": 3, "n_in": 5, "n_h1": 4, "n_h2": 3, "n_out": 2}
    ours = modules["seed002"].init_params(dims, seed=3)
    theirs = numpy_modules["seed002"].init_params(dims, seed=3)
    assert all(np.array_equal(ours[k], theirs[k]) for k in theirs)


@pytest.mark.parametrize("bad", [[0, -1], [0.5, 1.0]])
def test_class_labels_must_be_whole_and_not_negative(bad, modules):
    mod = modules["cs231n_svm"]
    _, params, data = workload("cs231n_svm", mod)
    data["X"], data["y"] = data["X"][:2], np.asarray(bad)
    with pytest.raises(ValueError, match="class labels"):
        mod.bind_step(params, data)
