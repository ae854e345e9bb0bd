"""Issue 10, items 3-4 and 7: arrays of rank 3 and 4, layout (transpose with axes,
swapaxes, reshape, slices, concatenate), einsum, dim arithmetic, and the bundled
attention and LSTM specs.

Every construct is checked against independent truth: the three proofs, finite
differences of a loss written here in plain NumPy, and hand-written references
(tests/reference/attention.py, lstm.py) for the bundled networks.
"""

from __future__ import annotations

import numpy as np
import pytest

import codegen
import derive
from codegen.bundled import OUT
from derive import SpecError, check
from tests.helpers import finite_differences, rel_error
from tests.reference import attention, lstm
from tests.test_codegen import module_from_source

rng = np.random.default_rng(5)


def _sig(z):
    return 1 / (1 + np.exp(-z))


def _softmax(z, axis=-1):
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


# name -> (spec, sizes, NumPy loss of (params, data) written here)
CASES = {
    "reshape_merge": (
        """\
input  x[B, T, D]
param  Wp[D, E], W[T * E, H]
e = x @ Wp
h = tanh(e.reshape(B, T * E) @ W)
L = sum(h ** 2)
""",
        {"B": 3, "T": 2, "D": 3, "E": 2, "H": 3},
        lambda p, d: np.sum(np.tanh((d["x"] @ p["Wp"]).reshape(d["x"].shape[0], -1) @ p["W"]) ** 2),
    ),
    "reshape_of_a_product": (
        """\
input  x[B, T, D]
param  W[D, H], V[T * H, K]
z = (x @ W).reshape(B, T * H)
L = sum(sigmoid(z @ V))
""",
        {"B": 2, "T": 3, "D": 2, "H": 2, "K": 2},
        lambda p, d: np.sum(_sig((d["x"] @ p["W"]).reshape(d["x"].shape[0], -1) @ p["V"])),
    ),
    "reshape_split_softmax": (
        """\
input  x[B, D]
target t[B, T, E]
param  W[D, T * E]
u = reshape(x @ W, (B, T, E))
L = -sum(t * log(softmax(u, axis=-1))) / B
""",
        {"B": 3, "D": 2, "T": 2, "E": 3},
        lambda p, d: (
            -np.sum(d["t"] * np.log(_softmax((d["x"] @ p["W"]).reshape(d["x"].shape[0], 2, 3))))
            / d["x"].shape[0]
        ),
    ),
    "einsum_swapaxes": (
        """\
input  x[B, T, D]
param  A[D, D], v[T]
s = einsum("btd,de,bse->bts", x, A, x)
r = swapaxes(s, 1, 2) * v
L = sum(tanh(r))
""",
        {"B": 2, "T": 3, "D": 2},
        lambda p, d: np.sum(
            np.tanh(
                np.swapaxes(np.einsum("btd,de,bse->bts", d["x"], p["A"], d["x"]), 1, 2) * p["v"]
            )
        ),
    ),
    "concatenate_dims": (
        """\
input  x[B, D]
param  Wa[D, Ha], Wb[D, Hb], V[Ha + Hb, K]
c = concatenate([tanh(x @ Wa), sigmoid(x @ Wb)], axis=1)
L = sum((c @ V) ** 2)
""",
        {"B": 3, "D": 2, "Ha": 2, "Hb": 3, "K": 2},
        lambda p, d: np.sum(
            (np.concatenate([np.tanh(d["x"] @ p["Wa"]), _sig(d["x"] @ p["Wb"])], axis=1) @ p["V"])
            ** 2
        ),
    ),
    "concatenate_three_literal_parts": (  # the third part at offset 2 of a size-1 axis
        """\
input  x[N, 1, H]
param  u[H], v[H], W[H, K]
z = concatenate([x, x * u, tanh(x) * v], axis=1)
L = sum((z @ W) ** 2)
""",
        {"N": 2, "H": 3, "K": 2},
        lambda p, d: np.sum(
            (np.concatenate([d["x"], d["x"] * p["u"], np.tanh(d["x"]) * p["v"]], axis=1) @ p["W"])
            ** 2
        ),
    ),
    "exact_division": (
        """\
input  x[B, N]
param  U[N / 2, K]
h = x.reshape(B, 2, N / 2)
L = sum(tanh(h @ U))
""",
        {"B": 2, "N": 6, "K": 2},
        lambda p, d: np.sum(np.tanh(d["x"].reshape(d["x"].shape[0], 2, -1) @ p["U"])),
    ),
    "new_axes_outer": (
        """\
input  x[B, N]
param  W[N, K]
h = x @ W
s = h[:, :, None] * h[:, None]
L = sum(tanh(s))
""",
        {"B": 2, "N": 3, "K": 2},
        lambda p, d: np.sum(np.tanh((d["x"] @ p["W"])[:, :, None] * (d["x"] @ p["W"])[:, None])),
    ),
    "rank4_transpose_broadcast": (
        """\
input  img[B, C, P, Q]
param  Wc[C, F], b[F], g[P, 1]
y = einsum("bcpq,cf->bpqf", img, Wc) + b
z = y.transpose(0, 3, 1, 2) * g
L = mean(relu(z) ** 2)
""",
        {"B": 2, "C": 2, "P": 3, "Q": 2, "F": 2},
        lambda p, d: np.mean(
            np.maximum(
                (np.einsum("bcpq,cf->bpqf", d["img"], p["Wc"]) + p["b"]).transpose(0, 3, 1, 2)
                * p["g"],
                0,
            )
            ** 2
        ),
    ),
}


def _values(net, sizes, seed=0):
    r = np.random.default_rng(seed)
    params, data = {}, {}
    for q in net.quantities.values():
        if q.kind not in ("input", "target", "param"):
            continue
        shape = tuple(int(e.subs({s: sizes[str(s)] for s in e.free_symbols})) for e in q.shape)
        value = r.uniform(0.1, 0.9, shape) if q.kind == "target" else r.normal(size=shape)
        (params if q.kind == "param" else data)[q.name] = value
    return params, data


@pytest.mark.parametrize("name", sorted(CASES))
def test_layout_proofs_and_generated_gradients_match_finite_differences(name, tmp_path):
    spec, sizes, numpy_loss = CASES[name]
    d = derive.load(spec)
    proofs = check.run_all(d)
    assert [p.passed for p in proofs] == [True] * 3, [(p.name, p.details) for p in proofs]
    mod = module_from_source(codegen.generate(spec), tmp_path, f"tensor_{name}")
    params, data = _values(d.network, sizes)
    assert mod.loss(params, data) == pytest.approx(numpy_loss(params, data), rel=1e-12)
    got = mod.gradients(params, data)
    want = finite_differences(lambda: numpy_loss(params, data), params)
    for p in params:
        assert got[p].shape == params[p].shape, p
        assert rel_error(got[p], want[p]) < 1e-6, p
    # the fused step is the same update as gradients + SGD
    stepped = {k: v.copy() for k, v in params.items()}
    mod.train_step(stepped, data, 0.1, {})
    for p in params:
        np.testing.assert_allclose(stepped[p], params[p] - 0.1 * got[p], rtol=1e-10, atol=1e-12)


def test_batched_products_print_as_matmul_and_weight_gradients_sum_batch_and_time():
    d = derive.load("attention")
    code = {s.symbol: s.numpy() for s in d.steps} | {p: s.numpy() for p, s in d.gradients.items()}
    assert code["delta_att"] == "delta_out @ v.transpose(0, 2, 1)"
    assert code["delta_v"] == "att.transpose(0, 2, 1) @ delta_out"
    # Σ over batch and time: one BLAS product (in the fused step: flat views into a buffer)
    assert code["Wq"] == "np.tensordot(x, delta_q, axes=([0, 1], [0, 1]))"
    assert code["delta_att_in"] == (
        "(delta_att - (att * delta_att).sum(axis=2, keepdims=True)) * att"
    )
    source = (OUT / "attention.py").read_text()  # kept in sync by tests/test_codegen.py
    assert "q = x @ Wq" in source and "q @ k.transpose(0, 2, 1)" in source


def test_lstm_gate_deltas_are_concatenated_not_padded():
    d = derive.load("lstm")
    assert d.step("a").numpy() == (
        "np.concatenate([delta_i_in, delta_f_in, delta_o_in, delta_g_in], axis=1)"
    )
    assert d.gradients["Wx"].text() == "∂L/∂Wx = xᵀ δa"
    assert "a[:, H:2 * H]" in (OUT / "lstm.py").read_text()


@pytest.mark.parametrize(
    ("mod", "name"), [(attention, "attention"), (lstm, "lstm")], ids=["attention", "lstm"]
)
def test_bundled_references_match_finite_differences(mod, name):
    net = derive.load_network(name)
    params, data = _values(net, {"B": 3, "T": 4, "D": 3, "d": 2, "E": 2, "H": 2}, seed=2)
    want = finite_differences(lambda: mod.loss(params, data), params)
    got = mod.gradients(params, data)
    for p in params:
        assert rel_error(got[p], want[p]) < 1e-7, p


@pytest.mark.parametrize(
    ("bad", "words"),
    [
        ("input  x[B, T, D]\nparam W[6 / 4, H]", "not divisible"),
        ("input  x[B, T, D]\nparam W[D / H, H]", "divided by a positive integer"),
        ("input  x[B, T, D]\nparam W[D, H]\nz = x.reshape(B, T * H)", "cannot reshape"),
        ("input  x[B, T, D]\nparam W[D, H]\nz = x[:, 0:2 * T]", "within axis 1"),
        ("input  x[B, T, D]\nparam W[D, H]\nz = einsum('btd,dh', x, W)", "explicit output"),
        ("input  x[B, T, D]\nparam W[D, H]\nz = einsum('btd,th->bh', x, W)", "elsewhere"),
        ("input  x[B, T, D]\nparam W[D, H]\nz = einsum('bdd->b', x)", "at most once"),
        ("input  x[B, T, D]\nparam W[D, H]\nz = x.transpose(0, 1)", "permutation"),
        ("input  x[B, T, D]\nparam W[D, H]\nz = concatenate([x, W], axis=1)", "does not fit"),
        ("input  x[B, T, D]\nparam W[D, H]\nz = x @ W.T", "do not fit for @"),
        ("input  x[B, T, D]\nparam W[D, H]\nz = W.reshape(H, D)", "two steps"),
    ],
)
def test_layout_mistakes_are_one_line_errors_at_their_position(bad, words):
    with pytest.raises(SpecError) as err:
        derive.load(bad + "\nL = sum(W)\n")
    assert words in str(err.value) and str(err.value).count("\n") == 0


def test_other_targets_refuse_tensor_specs_in_one_line():
    from codegen.targets import generate_target

    with pytest.raises(SpecError, match="numpy target"):
        generate_target("attention", "torch")


@pytest.mark.parametrize(
    "decl", ["input x[B, 2 * H]\nparam W[2 * H, K]", "input x[B, H + 1]\nparam W[H + 1, K]"]
)
def test_a_dim_only_inside_arithmetic_is_refused_by_gen_in_one_line(decl):
    # generated code reads every dimension from some array's shape; H has no axis of its own
    source = decl + "\nz = x @ W\nL = sum(z ** 2)"
    derive.load(source)  # derivation and proofs do not need it
    with pytest.raises(SpecError, match=r"dimension H appears only inside") as err:
        codegen.generate(source)
    assert (err.value.line, err.value.col) == (1, 7)
