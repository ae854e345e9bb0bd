"""`derive verify` on hand-written convolution and pooling backward passes (issue 15, item 3):
cs231n-style naive loops and vectorised NumPy, right and with the classic mistakes
(tests/specs/verify/conv_backward.py, its EXPECTED diagnoses).

The truth is independent of the verifier: the fixture functions are run here for real, on
random values, and every gradient they return is compared with central differences of a
forward pass written here (sliding windows and einsum, no code shared with derive).  The
verifier only reads the source, and must agree on every returned gradient, mark the marked
line first, and name the expected mistake.
"""

from __future__ import annotations

import functools
import importlib.util
import inspect
from pathlib import Path

import numpy as np
import pytest

import derive
from derive import SpecError
from derive.verify.function import verify_function
from tests.test_verify_code import finite_difference_labels

SPECS = Path(__file__).parent / "specs" / "verify"
_spec = importlib.util.spec_from_file_location("conv_backward", SPECS / "conv_backward.py")
assert _spec is not None and _spec.loader is not None
fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fixtures)  # our own test fixture, run for its finite-difference labels
SOURCE = (SPECS / "conv_backward.py").read_text()
RNG = np.random.default_rng(15)


def conv_forward(x, w, b, stride, pad):
    """out[n, f, i, j] = Σ_{c,p,q} x_pad[n, c, stride·i + p, stride·j + q] w[f, c, p, q] + b[f]."""
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    win = np.lib.stride_tricks.sliding_window_view(xp, w.shape[2:], axis=(2, 3))
    return np.einsum("nchwpq,fcpq->nfhw", win[:, :, ::stride, ::stride], w) + b[:, None, None]


def conv_case(stride, pad, size):
    def make():
        n, c, f = 2, 2, 3
        P = {"x": RNG.normal(size=(n, c, *size)), "w": RNG.normal(size=(f, c, 3, 3))}
        P["b"] = RNG.normal(size=f)
        ho, wo = ((s + 2 * pad - 3) // stride + 1 for s in size)
        g = RNG.normal(size=(n, f, ho, wo))

        def forward(P):
            return np.sum(conv_forward(P["x"], P["w"], P["b"], stride, pad) * g), {}

        def call(fn, P):
            cache = (P["x"], P["w"], P["b"], {"stride": stride, "pad": pad})
            return dict(zip("xwb", fn(g, cache), strict=True))

        return P, forward, call

    return make


def pool_case(op):
    def make():
        P = {"x": RNG.normal(size=(2, 3, 4, 6))}
        g = RNG.normal(size=(2, 3, 2, 3))

        def forward(P):
            windows = P["x"].reshape(2, 3, 2, 2, 3, 2)  # 2×2 windows, stride 2
            return np.sum(getattr(windows, op)(axis=(3, 5)) * g), {}

        def call(fn, P):
            return {"x": fn(g, (P["x"], {"pool_height": 2, "pool_width": 2, "stride": 2}))}

        return P, forward, call

    return make


CONV = ("conv_layer.nn", conv_case(1, 1, (4, 5)))
STRIDED = ("conv_strided.nn", conv_case(2, 1, (5, 5)))
AVG = ("avgpool_layer.nn", pool_case("mean"))
MAX = ("maxpool_layer.nn", pool_case("max"))
CASES = [
    (CONV, "conv_backward_naive"),
    (CONV, "conv_backward_naive_uncropped"),
    (CONV, "conv_backward_vectorized"),
    (CONV, "conv_backward_vectorized_noflip"),
    (STRIDED, "conv_backward_naive"),
    (STRIDED, "conv_backward_naive_stride"),
    (STRIDED, "conv_backward_naive_dw_stride"),
    (AVG, "avg_pool_backward_naive"),
    (AVG, "avg_pool_backward_no_mean"),
    (AVG, "avg_pool_backward_stride"),
    (AVG, "avg_pool_backward_vectorized"),
    (MAX, "max_pool_backward_naive"),
    (MAX, "max_pool_backward_mask"),
    (MAX, "max_pool_backward_unravel"),
    (MAX, "max_pool_backward_everywhere"),
    (MAX, "max_pool_backward_swapped"),
]


@functools.cache
def network(spec: str):
    """One network object per spec: the verifier's derivation and values are remembered
    for it, so the functions checked against one spec share them."""
    return derive.load_network(SPECS / spec)


def marked_line(name: str) -> int | None:
    lines, start = inspect.getsourcelines(getattr(fixtures, name))
    return next((n for n, text in enumerate(lines, start=start) if "# mistake" in text), None)


@pytest.mark.parametrize(("case", "name"), CASES, ids=[f"{c[0]}-{n}" for c, n in CASES])
def test_conv_and_pool_backward(case, name):
    spec, make = case
    P, forward, call = make()
    truth = finite_difference_labels(P, forward, call(getattr(fixtures, name), P))
    net = network(spec)
    results = verify_function(net, SOURCE, "conv_backward.py", name)
    for param, right in truth.items():
        mine = [r for r in results if r.normalized.endswith(f"∂{net.loss}/∂{param}")]
        assert mine and (mine[-1].verdict == "correct") == right, (param, right, results)
    first = next((r for r in results if r.verdict != "correct"), None)
    assert (first.line if first else None) == marked_line(name)
    # a later line right in its own step is built on the marked one (dx = dx_pad[...])
    assert all(r.built_on in (None, marked_line(name)) for r in results)
    if name == "conv_backward_naive_stride":
        assert [r.text.split(" = ")[0] for r in results if r.built_on] == ["dx"]
    assert (name in fixtures.EXPECTED) == (first is not None)
    if first is not None:
        assert fixtures.EXPECTED[name] in (first.diagnosis or ""), first


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("    for i in range(10 ** 9):\n        dx = dout\n", "a loop of 1000000000 iterations"),
        ("    while True:\n        dx = dout\n", "a while loop has no bound"),
        ("    big = np.zeros((3000, 3000))\n", "array entries computed in one run"),
        ("    for i in range(3000):\n        dx = np.zeros((30, 30))\n", "array entries"),
    ],
)
def test_unbounded_work_is_refused_at_its_line(body, message):
    net = network("avgpool_layer.nn")
    source = f"import numpy as np\n\ndef avg_backward(dout, cache):\n{body}    return dout\n"
    with pytest.raises(SpecError) as err:
        verify_function(net, source, "b.py")
    assert message in str(err.value) and err.value.line >= 4, str(err.value)
