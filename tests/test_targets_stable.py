"""The binary cross-entropy of a sigmoid is printed from the logits: ``t ⊙ z − softplus(z)``.

An identity for every ``t`` (soft labels too, not only 0/1): the generated
loss equals the textbook formula where the textbook formula is finite, and
stays finite where the sigmoid rounds to 0 or 1.  Every target prints it.
"""

from __future__ import annotations

import numpy as np

from codegen import generate
from codegen.printer import rewrite_notes, stabilise
from derive import load_network
from derive.forms import SumAll, forward_form
from tests.targets_helpers import load_module

BCE = """
input x[B, n]
target t[B, m]
param W[n, m]
z = x @ W
y = sigmoid(z)
L = -mean(t * log(y) + (1 - t) * log(1 - y))
"""


def test_rewrite_is_one_softplus_and_a_dot_product():
    net = load_network(BCE)
    defs = {eq.name: forward_form(eq.expr) for eq in net.equations}
    stable = stabilise(defs["L"], defs)
    assert len(stable.atoms(SumAll)) == 2  # Σ t ⊙ z and Σ softplus(z): no (1 − t) ⊙ … term left
    assert "log" not in str(stable)
    assert rewrite_notes(defs["L"], defs) == [
        "  the cross-entropy as t ⊙ z − softplus(z): finite for every logit"
    ]


def test_soft_labels_equal_the_textbook_loss_and_extremes_stay_finite(tmp_path):
    path = tmp_path / "bce_mod.py"
    path.write_text(generate(BCE), encoding="utf-8")
    mod = load_module(path, "bce_mod")
    rng = np.random.default_rng(0)
    x, w, t = rng.normal(size=(6, 3)), rng.normal(size=(3, 2)), rng.uniform(size=(6, 2))
    y = 1 / (1 + np.exp(-(x @ w)))
    textbook = -np.mean(t * np.log(y) + (1 - t) * np.log(1 - y))
    assert np.isclose(mod.loss({"W": w}, {"x": x, "t": t}), textbook, rtol=1e-12, atol=0)
    huge = mod.loss({"W": 1e4 * w}, {"x": x, "t": np.round(t)})
    assert np.isfinite(huge) and huge > 0
