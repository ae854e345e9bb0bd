"""Every activation of the rule table, end to end: proven, generated, verified.

A network with one hidden layer per activation goes through ``derive grad
--check``, ``derive gen`` (its gradients against finite differences of a loss
written here by hand, so a wrong kernel or form fails) and ``derive verify``.
A new activation without a hand-written reference below fails this file.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

import codegen
from derive.cli import main
from derive.rules import activations
from tests.helpers import finite_differences, rel_error


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


# independent references: each activation as the textbook writes it (alpha = 0.3)
REFERENCE = {
    "relu": lambda z: np.maximum(z, 0),
    "leaky_relu": lambda z: np.where(z > 0, z, 0.3 * z),
    "sigmoid": _sigmoid,
    "tanh": np.tanh,
    "softplus": lambda z: np.log1p(np.exp(z)),
    "exp": np.exp,
    "silu": lambda z: z * _sigmoid(z),
    "elu": lambda z: np.where(z > 0, z, 0.3 * (np.exp(z) - 1)),
    "gelu": lambda z: 0.5 * z * (1 + np.tanh(np.sqrt(2 / np.pi) * (z + 0.044715 * z**3))),
    "softsign": lambda z: z / (1 + np.abs(z)),
    "abs": lambda z: np.where(z < 0, -z, z),
    "square": lambda z: z * z,
    "sqrt": lambda z: z**0.5,
}
CALLS = {"leaky_relu": "leaky_relu(u, 0.3)", "elu": "elu(u, 0.3)"}
NEW = ["silu", "elu", "gelu", "softsign"]
# log and sqrt need a positive argument (sqrt is tested on one in tests/test_networks.py)
ACTS = [a for a in activations() if a not in ("log", "sqrt")]


def spec(act: str, default_params: bool = False) -> str:
    call = f"{act}(u)" if default_params else CALLS.get(act, f"{act}(u)")
    return (
        f"# one hidden {act} layer\n"
        "input  x[B, n]\ntarget t[B, m]\nparam  W[n, h], b[h], V[h, m]\n"
        f"u = x @ W + b\na = {call}\ny = a @ V\nL = mean((y - t) ** 2)\n"
    )


def test_every_activation_has_a_hand_written_reference():
    assert set(ACTS) <= set(REFERENCE), set(ACTS) - set(REFERENCE)


@pytest.mark.parametrize("act", ACTS)
def test_generated_module_matches_finite_differences_of_a_hand_written_loss(act, tmp_path):
    path = tmp_path / f"{act}_net.py"
    path.write_text(codegen.generate(spec(act)))
    module_spec = importlib.util.spec_from_file_location(f"{act}_net", path)
    mod = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(mod)
    rng = np.random.default_rng(3)
    params = {
        "W": rng.normal(size=(3, 4)),
        "b": rng.normal(size=4),
        "V": rng.normal(size=(4, 2)),
    }
    data = {"x": rng.normal(size=(5, 3)), "t": rng.normal(size=(5, 2))}
    f = REFERENCE[act]

    def loss():
        y = f(data["x"] @ params["W"] + params["b"]) @ params["V"]
        return np.mean((y - data["t"]) ** 2)

    assert mod.loss(params, data) == pytest.approx(loss(), rel=1e-12)
    got = mod.gradients(params, data)
    want = finite_differences(loss, params)
    for p in params:
        assert rel_error(got[p], want[p]) < 1e-6, (act, p)
    fused = {k: v.copy() for k, v in params.items()}
    mod.train_step(fused, data, 0.1, {})  # the fused step, with its in-place kernels
    for p in params:
        np.testing.assert_allclose(fused[p], params[p] - 0.1 * got[p], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("act", [*NEW, "leaky_relu"])
def test_grad_check_proves_the_network(act, tmp_path, capsys):
    path = tmp_path / f"{act}.nn"
    path.write_text(spec(act))
    assert main(["grad", str(path), "--check"]) == 0
    out = capsys.readouterr().out
    assert out.count("✓") == 3 and "✗" not in out


@pytest.mark.parametrize(
    "identity",
    [
        "silu'(z) = sigmoid(z) * (1 + z * (1 - sigmoid(z)))",
        "elu'(z) = elu(z) - relu(z) + 1",
        "softsign'(z) = (softsign(z) / z)**2",
        # the notation reader takes each rule's names and aliases from the table
        "\\text{SiLU}'(z) = \\sigma(z) (1 + z (1 - \\sigma(z)))",
        "swish'(z) = σ(z) + z σ(z)(1 − σ(z))",
        "\\operatorname{softsign}'(z) = (\\operatorname{softsign}(z)/z)^2",
    ],
)
def test_verify_proves_the_derivative_identity(identity, capsys):
    assert main(["verify", "--identity", identity]) == 0
    assert main(["verify", "--identity", identity.replace("z)", "z + 1)", 1)]) == 1
    capsys.readouterr()


@pytest.mark.parametrize("act", NEW)
def test_verify_accepts_the_true_gradient_and_refuses_a_wrong_one(act, tmp_path, capsys):
    path = tmp_path / f"{act}.nn"
    path.write_text(spec(act, default_params=True))  # claims write elu'(u): alpha's default
    delta = "((y - t) @ V^T * 2 / (B*m))"
    right = f"dL/dW = x^T ({delta} * {act}'(u))"
    wrong = f"dL/dW = x^T ({delta} * {act}(u))"
    assert main(["verify", str(path), "--claim", right]) == 0
    assert main(["verify", str(path), "--claim", wrong]) == 1
    capsys.readouterr()
