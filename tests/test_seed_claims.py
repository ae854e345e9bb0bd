"""The seed documents' own gradient formulas, transcribed as printed (derive/claims/),
and the verdict `derive verify` gives each.  The README reports them."""

from __future__ import annotations

from pathlib import Path

import pytest

import derive
from derive.verify import verify_all

CLAIMS = Path(derive.__file__).parent / "claims"

# file -> [(verdict, words in the reason or diagnosis)], in order; then unreadable lines
CATALOG = {
    "seed000_columns.claims": (
        [
            ("correct", ""),  # ∇_S L = h · ∂L/∂yᵀ
            ("ill-formed", "(B, n_y) and (n_h, n_y)"),  # ∇_{hᵀ}L = ∇_{yᵀ}L · S: needs Sᵀ
            ("correct", ""),  # ∇_W L = x · ∇_{uᵀ}L
            # diag(∇f) · ∇_{hᵀ}L: one n_h-vector per example cannot scale the B rows
            ("ill-formed", "cannot scale the rows of a matrix of shape (B, n_h)"),
        ],
        [],
    ),
    # the program's backward pass: each grad_Q = … is itself judged as ∂L/∂Q (its name says
    # so), then the statement dL/dQ = grad_Q that follows it
    "seed000_rows.claims": ([("correct", "")] * 10, []),
    "seed002_rows.claims": (
        [
            ("ill-formed", "has shape (N, no) but ∂L/∂Bo has shape (no,)"),  # bias: no batch sum
            ("ill-formed", "uses delta2"),  # δ² = ((ω^o)ᵀ δ^o) ⊙ φ'(z²): column-vector form
            ("ill-formed", "uses delta1"),
            ("correct", ""),  # ∂L/∂W^o = (A²)ᵀ δ^o
            ("ill-formed", "uses delta2"),
            ("ill-formed", "uses delta1"),
        ],
        [],
    ),
    "seed002_vectors.claims": (
        [
            ("correct", ""),
            ("correct", ""),
            ("correct", ""),  # ∂L/∂B^l = δ^l
            ("ill-formed", "holds in the transposed layout"),  # (A^{l-1})ᵀ δ^l: row-layout form
            ("ill-formed", "(1, n1) and (n2, 1)"),
            ("ill-formed", "(1, n0) and (n1, 1)"),
        ],
        [],
    ),
    "seed003.claims": (
        [
            ("correct", ""),  # ∂E/∂W3 = X2ᵀ δ3
            ("ill-formed", "unknown name 'delta2'"),  # δ2 is printed with a stray ')'
            ("ill-formed", "unknown name 'delta2'"),
            ("ill-formed", "unknown name 'delta1'"),  # δ1 is used, never defined
        ],
        [33],
    ),
    "seed003_paren_fixed.claims": (
        [
            ("correct", ""),
            ("correct", ""),  # X1ᵀ δ2 with δ2 = δ3 W3ᵀ ∘ f2'(X1 W2)
            ("ill-formed", "(h2, h1) and (n, h2)"),  # [W2ᵀ δ2 ∘ f1'(X0 W1)] X0ᵀ
            ("ill-formed", "unknown name 'delta1'"),
        ],
        [],
    ),
    "seed004.claims": ([("incorrect", "1/(B*n_out) times the formula")] * 5, []),
}


@pytest.mark.parametrize("name", sorted(CATALOG))
def test_seed_formula_verdicts(name):
    path = CLAIMS / name
    text = path.read_text()
    spec = text.splitlines()[0].split(":", 1)[1].strip()
    source = CLAIMS / spec if (CLAIMS / spec).exists() else spec
    results, errors = verify_all(derive.load_network(source), text, str(path))
    expected, unreadable = CATALOG[name]
    assert [(r.verdict) for r in results] == [v for v, _ in expected]
    for r, (_, words) in zip(results, expected, strict=True):
        assert words in f"{r.reason} {r.diagnosis}", (r.text, r.reason, r.diagnosis)
    assert [e.line for e in errors] == unreadable


def test_every_claims_file_is_in_the_catalog():
    assert sorted(p.name for p in CLAIMS.glob("*.claims")) == sorted(CATALOG)


def test_diag_of_nabla_f_in_the_right_order_is_correct():
    # by hand (EXPECTED.md, seed000_columns #4): per example ∇_{uᵀ}L = ∇_{hᵀ}L · diag(f'(u)),
    # which is (∇_h L ⊙ f'(u))ᵀ, the engine's δuᵀ; the printed order does not conform
    net = derive.load_network(CLAIMS / "seed000_columns.nn")
    right = r"\nabla_{u^T} \mathcal{L} = \nabla_{h^T} \mathcal{L} \cdot \text{diag}(\nabla f)"
    results, errors = verify_all(net, right)
    assert [r.verdict for r in results] == ["correct"] and not errors
