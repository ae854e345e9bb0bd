"""``derive gen --target torch``: the derived backward inside ``torch.autograd.Function``.

Every bundled spec and every test spec: ``torch.autograd.gradcheck`` in
float64 (finite differences of the module's own forward pass), gradients
equal to PyTorch autograd's on the same forward pass, the loss equal to the
NumPy target's, and ``Model`` training like the module it wraps.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from codegen import generate
from codegen.targets import generate_target
from derive.errors import SpecError
from tests.targets_helpers import BIND, SPECS, load_module, workload


@pytest.fixture(scope="module")
def modules(tmp_path_factory):
    from tests.targets_helpers import generate_all

    return generate_all("torch", tmp_path_factory.mktemp("torch"))


def tensors(params):
    return {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in params.items()}


@pytest.mark.parametrize("name", list(SPECS))
def test_gradcheck_in_float64(name, modules):
    mod = modules[name]
    _, params, data = workload(name, mod)
    names = list(params)

    def loss(*values):
        return mod.loss(dict(zip(names, values, strict=True)), data)

    assert torch.autograd.gradcheck(loss, tuple(tensors(params).values()), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", list(SPECS))
def test_derived_gradients_equal_pytorch_autograd(name, modules):
    mod = modules[name]
    _, params, data = workload(name, mod, seed=1)
    p = tensors(params)
    derived = torch.autograd.grad(mod.loss(p, data), list(p.values()))
    theirs = torch.autograd.grad(mod.autograd_loss(p, data), list(p.values()))
    for key, a, b in zip(p, derived, theirs, strict=True):
        assert a.shape == p[key].shape
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12, msg=key)


@pytest.mark.parametrize("name", ["seed002", "penalty", "column", "cs231n_svm"])
def test_loss_and_gradients_equal_the_numpy_target(name, modules, tmp_path):
    numpy_mod = load_module_from_source(generate(SPECS[name], bind=BIND.get(name)), tmp_path)
    mod = modules[name]
    _, params, data = workload(name, mod, seed=2)
    p = tensors(params)
    value = mod.loss(p, data)
    assert value.item() == pytest.approx(numpy_mod.loss(params, data), rel=1e-12)
    grads = torch.autograd.grad(value, list(p.values()))
    want = numpy_mod.gradients(params, data)
    for key, g in zip(p, grads, strict=True):
        np.testing.assert_allclose(g.numpy(), want[key], rtol=1e-10, atol=1e-12, err_msg=key)


def test_upstream_gradient_scales_every_gradient(modules):
    """The seed of the backward pass reaches every term, the loss's own ones included."""
    mod = modules["penalty"]
    _, params, data = workload("penalty", mod, seed=3)
    p = tensors(params)
    once = torch.autograd.grad(mod.loss(p, data), list(p.values()))
    scaled = torch.autograd.grad(-2.5 * mod.loss(p, data), list(p.values()))
    for a, b in zip(once, scaled, strict=True):
        torch.testing.assert_close(b, -2.5 * a, rtol=1e-12, atol=1e-14)


def test_model_holds_initial_params_and_trains(modules):
    mod = modules["seed002"]
    dims, _, data = workload("seed002", mod, seed=4)
    model = mod.Model(dims, seed=7)
    initial = mod.init_params(dims, seed=7)
    assert list(model.param_dict()) == list(mod.PARAMS)
    for key, value in model.param_dict().items():
        assert isinstance(value, torch.nn.Parameter)
        torch.testing.assert_close(value.detach(), initial[key].detach(), rtol=0, atol=0)
    optimiser = torch.optim.SGD(model.parameters(), lr=0.5)
    losses = []
    for _ in range(30):
        optimiser.zero_grad()
        value = model(data)
        value.backward()
        optimiser.step()
        losses.append(value.item())
    assert losses[-1] < 0.5 * losses[0]


def test_init_follows_the_numpy_targets_rules(modules):
    mod = modules["seed004_deep"]  # ReLU layers: He; the output layer: Glorot
    dims = {"B": 4, "n_in": 400, "n_h1": 300, "n_h2": 200, "n_out": 100}
    params = mod.init_params(dims, seed=0)
    assert params["W1"].dtype == torch.float64 and params["W1"].requires_grad
    assert params["W1"].std().item() == pytest.approx((2 / 400) ** 0.5, rel=0.02)
    assert params["W2"].std().item() == pytest.approx((2 / 300) ** 0.5, rel=0.02)
    limit = (6 / (200 + 100)) ** 0.5
    assert params["W3"].abs().max().item() <= limit
    assert params["W3"].abs().max().item() > 0.95 * limit
    again = mod.init_params(dims, seed=0)
    assert all(torch.equal(params[k], again[k]) for k in params)


@pytest.mark.parametrize("bad", [[0, -1], [0.5, 1.0]])
def test_class_labels_must_be_whole_and_not_negative(bad, modules):
    mod = modules["cs231n_softmax"]
    _, params, data = workload("cs231n_softmax", mod)
    data["X"], data["y"] = data["X"][:2], np.asarray(bad)
    with pytest.raises(ValueError, match="class labels"):
        mod.loss(tensors(params), data)


def test_the_loss_runs_the_derived_backward(modules):
    mod = modules["seed002"]
    _, params, data = workload("seed002", mod)
    assert type(mod.loss(tensors(params), data).grad_fn).__name__ == "DerivedLossBackward"


@pytest.mark.parametrize("taken", ["torch", "DerivedLoss", "autograd_loss", "log_softmax"])
def test_spec_names_that_collide_with_the_modules_names_are_refused(taken):
    spec = (
        f"input x[B, n]\ntarget t[B, n]\nparam {taken}[n, n]\n"
        f"y = x @ {taken}\nL = sum((y - t)**2)\n"
    )
    # log_softmax is also a spec function now (issue 10): refused earlier, as reserved
    with pytest.raises(SpecError, match="uses for itself|is reserved"):
        generate_target(spec, "torch")


def load_module_from_source(source: str, directory):
    path = directory / "numpy_target.py"
    path.write_text(source, encoding="utf-8")
    return load_module(path, "numpy_target")


def test_command_line_writes_each_target(tmp_path, capsys):
    from derive.cli import main

    for target in ("torch", "jax", "numba"):
        out = tmp_path / f"{target}.py"
        assert main(["gen", "seed004", "--target", target, "-o", str(out)]) == 0
        assert f"--target {target}" in out.read_text(encoding="utf-8")
    spec = tmp_path / "net.nn"
    spec.write_text(
        "input x[B, n]\ntarget t[B, n]\nparam torch[n, n]\ny = x @ torch\nL = sum((y - t)**2)\n",
        encoding="utf-8",
    )
    capsys.readouterr()
    assert main(["gen", str(spec), "--target", "torch"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"{spec}:3:") and "error:" in err and "\n" not in err


def test_unicode_spec_names_reach_the_saved_tensors(tmp_path):
    """Names outside ASCII (NFKC-normal) are found in the printed lines like any other."""
    spec = (
        "input x[B, n]\ntarget t[B, m]\nparam Wβ[n, k], β[k], V[k, m]\n"
        "hα = tanh(x @ Wβ + β)\ny = hα @ V\nL = sum((y - t)**2) / B\n"
    )
    path = tmp_path / "torch_unicode.py"
    path.write_text(generate_target(spec, "torch"), encoding="utf-8")
    mod = load_module(path, "torch_unicode")
    generator = torch.Generator().manual_seed(0)
    data = {
        k: torch.randn(s, generator=generator, dtype=torch.float64)
        for k, s in {"x": (3, 2), "t": (3, 2)}.items()
    }
    params = mod.init_params({"B": 3, "n": 2, "k": 4, "m": 2})
    names = list(params)

    def loss(*values):
        return mod.loss(dict(zip(names, values, strict=True)), data)

    assert torch.autograd.gradcheck(loss, tuple(params.values()))
