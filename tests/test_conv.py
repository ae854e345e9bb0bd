"""Issue 15, item 1: ``conv2d`` (stride, padding) and ``avgpool2d``, derived and proven.

Each spec goes through the three proofs, then its generated module is checked
against finite differences of a loss written here with loops over output
positions (the hand-written reference: no code shared with derive).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import numpy as np
import pytest

import codegen
import derive
from derive import SpecError, check
from tests.helpers import finite_differences, rel_error
from tests.test_codegen import module_from_source


def conv_ref(x, k, stride=1, padding=0):
    """cs231n's conv_forward_naive: a loop over output positions."""
    x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    _, _, hh, ww = k.shape
    ho = (x.shape[2] - hh) // stride + 1
    wo = (x.shape[3] - ww) // stride + 1
    out = np.zeros((x.shape[0], k.shape[0], ho, wo))
    for i in range(ho):
        for j in range(wo):
            patch = x[:, :, i * stride : i * stride + hh, j * stride : j * stride + ww]
            out[:, :, i, j] = np.tensordot(patch, k, axes=([1, 2, 3], [1, 2, 3]))
    return out


def avgpool_ref(x, size, stride):
    ho = (x.shape[2] - size) // stride + 1
    wo = (x.shape[3] - size) // stride + 1
    out = np.zeros((*x.shape[:2], ho, wo))
    for i in range(ho):
        for j in range(wo):
            window = x[:, :, i * stride : i * stride + size, j * stride : j * stride + size]
            out[:, :, i, j] = window.mean(axis=(2, 3))
    return out


def maxpool_ref(x, size, stride):
    """cs231n's max_pool_forward_naive: a loop over output positions."""
    ho = (x.shape[2] - size) // stride + 1
    wo = (x.shape[3] - size) // stride + 1
    out = np.zeros((*x.shape[:2], ho, wo))
    for i in range(ho):
        for j in range(wo):
            window = x[:, :, i * stride : i * stride + size, j * stride : j * stride + size]
            out[:, :, i, j] = window.max(axis=(2, 3))
    return out


def maxpool_backward_ref(dout, x, size, stride):
    """cs231n's max_pool_backward_naive, each window's delta to its first maximum
    (row-major), as PyTorch routes it (cs231n's mask would split it among ties)."""
    dx = np.zeros_like(x)
    for b in range(x.shape[0]):
        for c in range(x.shape[1]):
            for i in range(dout.shape[2]):
                for j in range(dout.shape[3]):
                    window = x[b, c, i * stride : i * stride + size, j * stride : j * stride + size]
                    p, q = np.unravel_index(np.argmax(window), window.shape)
                    dx[b, c, i * stride + p, j * stride + q] += dout[b, c, i, j]
    return dx


# name -> (spec, sizes, NumPy loss of (params, data) written here)
CASES = {
    "padded_then_strided": (
        """\
input  x[B, C, H, W]
param  K1[F, C, 3, 3], b1[F], K2[G, F, 3, 3]
h = tanh(conv2d(x, K1, padding=1) + b1[:, None, None])
z = conv2d(h, K2, stride=2)
L = sum(tanh(z) ** 2) / B
""",
        {"B": 2, "C": 2, "H": 7, "W": 5, "F": 3, "G": 2},
        lambda p, d: (
            np.sum(
                np.tanh(
                    conv_ref(
                        np.tanh(conv_ref(d["x"], p["K1"], 1, 1) + p["b1"][:, None, None]),
                        p["K2"],
                        2,
                    )
                )
                ** 2
            )
            / d["x"].shape[0]
        ),
    ),
    "full_convolution": (
        """\
input  x[B, C, H, W]
param  K1[F, C, 3, 3], K2[G, F, 2, 2]
h = tanh(conv2d(x, K1))
z = conv2d(h, K2)
L = sum(tanh(z) ** 2) / B
""",
        {"B": 2, "C": 2, "H": 6, "W": 7, "F": 2, "G": 3},
        lambda p, d: (
            np.sum(np.tanh(conv_ref(np.tanh(conv_ref(d["x"], p["K1"])), p["K2"])) ** 2)
            / d["x"].shape[0]
        ),
    ),
    "avgpool_then_linear": (
        """\
input  x[B, C, H, W]
param  K1[F, C, 3, 3], V[F, G]
h = tanh(conv2d(x, K1, padding=1))
a = avgpool2d(h, 2)
z = a.transpose(0, 2, 3, 1) @ V
L = sum(tanh(z) ** 2) / B
""",
        {"B": 2, "C": 2, "H": 6, "W": 4, "F": 3, "G": 2},
        lambda p, d: (
            np.sum(
                np.tanh(
                    avgpool_ref(np.tanh(conv_ref(d["x"], p["K1"], 1, 1)), 2, 2).transpose(
                        0, 2, 3, 1
                    )
                    @ p["V"]
                )
                ** 2
            )
            / d["x"].shape[0]
        ),
    ),
    "maxpool_tiling": (
        """\
input  x[B, C, H, W]
param  K1[F, C, 3, 3], b1[F], V[F, G]
h = relu(conv2d(x, K1, padding=1) + b1[:, None, None])
a = maxpool2d(h, 2)
z = a.transpose(0, 2, 3, 1) @ V
L = sum(tanh(z) ** 2) / B
""",
        {"B": 2, "C": 2, "H": 6, "W": 4, "F": 3, "G": 2},
        lambda p, d: (
            np.sum(
                np.tanh(
                    maxpool_ref(
                        np.maximum(conv_ref(d["x"], p["K1"], 1, 1) + p["b1"][:, None, None], 0),
                        2,
                        2,
                    ).transpose(0, 2, 3, 1)
                    @ p["V"]
                )
                ** 2
            )
            / d["x"].shape[0]
        ),
    ),
    "maxpool_overlapping": (
        """\
input  x[B, C, H, W]
param  K1[F, C, 2, 2]
a = maxpool2d(tanh(conv2d(x, K1)), 3, stride=2)
L = sum(tanh(a) ** 2) / B
""",
        {"B": 2, "C": 2, "H": 8, "W": 10, "F": 3},
        lambda p, d: (
            np.sum(np.tanh(maxpool_ref(np.tanh(conv_ref(d["x"], p["K1"])), 3, 2)) ** 2)
            / d["x"].shape[0]
        ),
    ),
}


def _values(net, sizes, seed=0):
    r = np.random.default_rng(seed)
    params, data = {}, {}
    for q in net.quantities.values():
        if q.kind in ("input", "param"):
            shape = tuple(int(e.subs({s: sizes[str(s)] for s in e.free_symbols})) for e in q.shape)
            (params if q.kind == "param" else data)[q.name] = r.normal(size=shape)
    return params, data


@pytest.mark.parametrize("name", sorted(CASES))
def test_conv_proofs_and_generated_gradients_match_finite_differences(name, tmp_path):
    spec, sizes, numpy_loss = CASES[name]
    d = derive.load(spec)
    proofs = check.run_all(d)
    assert [p.passed for p in proofs] == [True] * 3, [(p.name, p.details) for p in proofs]
    source = codegen.generate(spec)
    assert "sliding_window_view" in source
    assert not re.search(r"for \w+ in range\([A-Z]", source, re.M)  # no loops over pixels
    mod = module_from_source(source, tmp_path, f"conv_{name}")
    params, data = _values(d.network, sizes)
    assert mod.loss(params, data) == pytest.approx(numpy_loss(params, data), rel=1e-12)
    got = mod.gradients(params, data)
    want = finite_differences(lambda: numpy_loss(params, data), params)
    for p in params:
        assert got[p].shape == params[p].shape, p
        assert rel_error(got[p], want[p]) < 1e-6, p


def test_adjoints_are_a_correlation_and_a_full_convolution_with_the_flipped_kernel():
    d = derive.load(CASES["full_convolution"][0])
    # the kernel gradient: input windows against the output delta
    assert d.gradients["K2"].numpy() == (
        'np.einsum("abcd,aecdfg->befg", delta_z, np.lib.stride_tricks.sliding_window_view('
        "np.lib.stride_tricks.sliding_window_view(h, 2, axis=2), 2, axis=3), optimize=True)"
    )
    # the input gradient: windows of the zero-padded delta, flipped (a full convolution)
    code = d.step("h").numpy()
    assert "np.pad(delta_z, ((0, 0), (0, 0), (1, 1), (0, 0)))" in code
    assert code.count("[..., ::-1]") == 2 and "K2" in code


def test_forms_print_as_correlations_in_math_notation():
    full = derive.load(CASES["full_convolution"][0])
    assert full.step("h").text() == "δh = pad₁(δz) ⋆ rot180(K2)"
    assert full.gradients["K2"].text() == "∂L/∂K2 = h ⋆ δz"
    assert r"\operatorname{rot180}" in full.step("h").latex()
    strided = derive.load(CASES["padded_then_strided"][0])
    assert strided.gradients["K1"].text() == "∂L/∂K1 = pad₁(x) ⋆ δh_in"
    assert strided.gradients["K2"].text() == "∂L/∂K2 = h ⋆₂ δz"
    assert strided.step("h").text() == "δh = convᵀ₂(δz, K2)"


@pytest.mark.parametrize(
    ("bad", "words"),
    [
        (
            "param K[F, C, 3, 3]\nz = conv2d(x, K, stride=2)",
            "(6 + 0 - 3) / 2 + 1 = 5/2 is not a positive integer",
        ),
        ("param K[F, 2, 3, 3]\nz = conv2d(x, K)", "expect 2"),
        ("param K[F, C, 7, 3]\nz = conv2d(x, K)", "(B, C, 5, 6) and kernels (F, C, 7, 3)"),
        ("param K[F, C, 3]\nz = conv2d(x, K)", "rank 4"),
        ("param K[F, C, 3, 3]\nz = avgpool2d(x, 4)", "window (4, 4)"),
        ("param K[F, C, 3, 3]\nz = conv2d(x, K, padding=-1)", "padding must be"),
    ],
)
def test_conv_mistakes_are_one_line_errors(bad, words):
    with pytest.raises(SpecError) as err:
        derive.load("input  x[B, C, 5, 6]\n" + bad + "\nL = sum(z)\n")
    assert words in str(err.value) and str(err.value).count("\n") == 0


def test_convolution_latex_renders_in_katex():
    """The ⋆ forms (and the index forms beside them) in LaTeX that KaTeX reads."""
    from tests.test_katex_latex import CHECK, KATEX

    node = shutil.which("node")
    assert node and KATEX.is_dir(), "KaTeX is not installed: npm install --prefix .ci/node katex"
    fragments = []
    for spec, _, _ in CASES.values():
        d = derive.load(spec)
        steps = [*d.steps, *d.gradients.values()]
        fragments += [(s.latex(), True) for s in steps]
    assert any(r"\star" in f for f, _ in fragments)
    done = subprocess.run(
        [node, str(CHECK), str(KATEX)],
        input=json.dumps(fragments),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_maxpool_routes_each_windows_delta_to_its_first_maximum(tmp_path):
    """At ties (integer inputs), the generated δ of the pooled input is the loop reference
    routing to the first maximum of each window; and the forms print as pooling routing."""
    spec = """\
input  x[B, C, H, W]
param  s[C], V[C, G]
h = x * s[:, None, None]
a = maxpool2d(h, 2)
z = a.transpose(0, 2, 3, 1) @ V
L = sum(z ** 2) / 2
"""
    d = derive.load(spec)
    assert d.step("h").text() == "δh = maxunpool₂×₂(δa, _argmaxpool)"
    assert "maxpool" in d.step("h").latex()
    mod = module_from_source(codegen.generate(spec), tmp_path, "maxpool_ties")
    r = np.random.default_rng(1)
    x = r.integers(0, 3, size=(2, 3, 4, 6)).astype(float)  # many ties in each window
    params = {"s": np.ones(3), "V": r.normal(size=(3, 2))}
    fwd = mod.forward(params, {"x": x})
    assert np.array_equal(fwd["a"], maxpool_ref(x, 2, 2))
    z = maxpool_ref(x, 2, 2).transpose(0, 2, 3, 1) @ params["V"]
    da = (z @ params["V"].T).transpose(0, 3, 1, 2)
    dh = maxpool_backward_ref(da, x, 2, 2)
    got = mod.gradients(params, {"x": x})["s"]
    assert np.allclose(got, (dh * x).sum(axis=(0, 2, 3)))


def test_literal_sizes_a_reshape_relates_are_proven_at_their_value():
    """``X[N, 25].reshape(N, 1, 5, 5)`` relates 25 = 5·5 (and the pooled 8 = 2·2·2): the
    proofs keep those literals (independent stand-ins broke the relation) and stand in
    only for the unrelated 7 classes."""
    spec = """\
input  X[N, 25]
target y[N] labels(7)
param  K1[2, 1, 3, 3], W2[8, 7]
x = X.reshape(N, 1, 5, 5)
p = maxpool2d(tanh(conv2d(x, K1, padding=1)), 3, 2)
scores = p.reshape(N, 8) @ W2
L = -mean(log_softmax(scores)[range(N), y])
"""
    proofs = check.run_all(derive.load(spec))
    assert [p.passed for p in proofs] == [True] * 3, [(p.name, p.details) for p in proofs]
    assert "literal 7 as" in proofs[1].name and "literal 5" not in proofs[1].name


def test_the_bundled_cnn_learns_the_digits_as_images():
    """``derive train cnn_digits --data digits`` reads the flat 8×8 features as
    ``X[N, 1, 8, 8]``; a few steps of the committed module lower the loss (the README's
    full run reaches 97%)."""
    from pathlib import Path

    from codegen import data as datasets
    from codegen.train import bind, load_source

    path = Path(__file__).parent.parent / "generated" / "cnn_digits.py"
    mod = load_source(path.read_text(encoding="utf-8"), "cnn_digits_learns")
    ds = datasets.load("digits")
    data, fixed = bind(mod, derive.load_network("cnn_digits"), ds, "digits")
    assert np.array_equal(data["X"], ds.features.reshape(-1, 1, 8, 8)) and fixed == {
        "N": len(ds.targets)
    }
    data = {"X": data["X"][:256] / 16, "y": data["y"][:256]}  # pixels 0..16
    params = mod.init_params({"N": 256, "F": 4}, seed=0)
    before = mod.loss(params, data)
    step = mod.bind_step(params, data)
    for _ in range(20):
        step(0.2)
    assert mod.loss(params, data) < 0.75 * before


def test_the_strided_input_gradient_routes_the_delta_without_sliding_the_kernel(tmp_path):
    """``δh = convᵀ₂(δz, K2)`` of a padded, strided convolution: the kernel against the
    delta and two 0/1 routings ``[m = 2 i + t − 1]`` (memory of the im2col size, not a
    window of the kernel per input position), checked against finite differences."""
    spec = """\
input  x[B, C, H, W]
param  K1[F, C, 3, 3], K2[G, F, 3, 3]
h = tanh(conv2d(x, K1))
z = conv2d(h, K2, stride=2, padding=1)
L = sum(tanh(z) ** 2) / B
"""
    d = derive.load(spec)
    assert d.step("h").text() == "δh = convᵀ₂(δz, K2)"
    code = d.step("h").numpy()
    assert "sliding_window_view" not in code and "np.arange(3) - 1" in code
    mod = module_from_source(codegen.generate(spec), tmp_path, "strided_routed")
    params, data = _values(d.network, {"B": 2, "C": 2, "H": 8, "W": 7, "F": 3, "G": 2})

    def numpy_loss(p, dd):
        z = conv_ref(np.tanh(conv_ref(dd["x"], p["K1"])), p["K2"], 2, 1)
        return np.sum(np.tanh(z) ** 2) / dd["x"].shape[0]

    assert mod.loss(params, data) == pytest.approx(numpy_loss(params, data), rel=1e-12)
    got = mod.gradients(params, data)
    want = finite_differences(lambda: numpy_loss(params, data), params)
    assert all(rel_error(got[p], want[p]) < 1e-6 for p in params)
