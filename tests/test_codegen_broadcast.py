"""Generated modules whose loss stretches a reduction back over the axis it removed.

``mean(z, axis=0, keepdims=True)`` is printed as a broadcast whose shape names a
dimension (``np.broadcast_to(..., (1, k))``) that no array of the line is called
after; the preambles must bind exactly the names the printed code reads (a
missing one was a NameError in ``forward()``, an extra one an unused variable).
Every function of the module is compared with a NumPy reference written here.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import codegen
from codegen.train import load_source
from tests.helpers import finite_differences, rel_error

HEAD = "input x[n, d]\ntarget t[n, k]\nparam W[d, k]\nparam b[k]\nz = x @ W + b\n"


def _var(z, axis):
    return ((z - z.mean(axis=axis, keepdims=True)) ** 2).mean(axis=axis, keepdims=True)


# loss lines, and the same loss in NumPy (z = x W + b)
CASES = {
    "mean0": (
        "L = sum(z - mean(z, axis=0, keepdims=True))",
        lambda z, t: np.sum(z - z.mean(axis=0, keepdims=True)),
    ),
    "mean0_sq": (
        "L = sum((z - mean(z, axis=0, keepdims=True) - t)**2)",
        lambda z, t: np.sum((z - z.mean(axis=0, keepdims=True) - t) ** 2),
    ),
    "mean1_sq": (
        "L = sum((z - mean(z, axis=1, keepdims=True) - t)**2)",
        lambda z, t: np.sum((z - z.mean(axis=1, keepdims=True) - t) ** 2),
    ),
    "sum1_ratio": (
        "L = sum((z / sum(z*z, axis=1, keepdims=True) - t)**2)",
        lambda z, t: np.sum((z / (z * z).sum(axis=1, keepdims=True) - t) ** 2),
    ),
    "named_mean": (
        "m = mean(z, axis=0, keepdims=True)\nL = sum((z - m - t)**2)",
        lambda z, t: np.sum((z - z.mean(axis=0, keepdims=True) - t) ** 2),
    ),
    "var0": (
        "L = sum((z - var(z, axis=0, keepdims=True) - t)**2)",
        lambda z, t: np.sum((z - _var(z, 0) - t) ** 2),
    ),
    "std1": (
        "L = sum((z / std(z, axis=1, keepdims=True) - t)**2)",
        lambda z, t: np.sum((z / np.sqrt(_var(z, 1)) - t) ** 2),
    ),
    "sum0_times_t": (
        "L = sum(sum(z, axis=0, keepdims=True) * t)",
        lambda z, t: np.sum(z.sum(axis=0, keepdims=True) * t),
    ),
}


@pytest.fixture(scope="module")
def sources():
    return {name: codegen.generate(HEAD + line) for name, (line, _) in CASES.items()}


@pytest.mark.parametrize("name", CASES)
def test_forward_gradients_and_step_match_numpy(name, sources):
    mod = load_source(sources[name], f"broadcast_{name}")
    rng = np.random.default_rng(3)
    params = mod.init_params({"n": 5, "d": 3, "k": 4}, seed=1)
    params["b"] += rng.normal(scale=0.5, size=4)
    data = {"x": rng.normal(size=(5, 3)), "t": rng.normal(size=(5, 4))}
    reference = CASES[name][1]

    def loss(p=params):
        return reference(data["x"] @ p["W"] + p["b"], data["t"])

    fwd = mod.forward(params, data)
    assert np.isclose(fwd["L"], loss(params), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(fwd["z"], data["x"] @ params["W"] + params["b"])
    grads = mod.gradients(params, data)
    for p, g in finite_differences(loss, params).items():  # moves params in place
        assert grads[p].shape == params[p].shape
        assert rel_error(grads[p], g) < 1e-5 or np.abs(grads[p] - g).max() < 1e-6, p
    expected = {p: params[p] - 0.01 * grads[p] for p in params}
    step_loss = mod.bind_step(params, data)(0.01)  # the fused step, params in place
    assert np.isclose(step_loss, fwd["L"], rtol=1e-10, atol=1e-10)
    for p in params:
        np.testing.assert_allclose(params[p], expected[p], rtol=1e-10, atol=1e-12)
    mod.predict(params, {"x": data["x"]})  # binds what it reads, needs no target


def test_generated_preambles_bind_nothing_unused(sources, tmp_path: Path):
    """ruff's pyflakes rules: no undefined name (F821) and no unused variable (F841)."""
    for name, source in sources.items():
        (tmp_path / f"{name}.py").write_text(source)
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    check = subprocess.run(
        [ruff, "check", "--no-cache", "--select", "F", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stdout
