"""Issue 10, item 7: Karpathy's makemore MLP (``derive/specs/makemore.nn``).

A rank-3 gather ``C[ix]`` with ``ix[B, T]``, a reshape, batch norm, tanh, max-shifted
logits and cross-entropy.  Truth is independent of the engine: the hand-written NumPy
forward and backward pass in Karpathy's style (tests/reference/makemore.py), finite
differences of that loss, and training on the shipped word list with the loss falling
below log(27)."""

from __future__ import annotations

import numpy as np

import codegen
import derive
from codegen import data as datasets
from codegen.model import init_rules
from derive import check, ir
from tests.helpers import finite_differences, rel_error
from tests.reference import makemore as reference
from tests.test_codegen import module_from_source

SPEC = "makemore"
SIZES = {"V": 5, "E": 3, "T": 3, "H": 4}


def _forward(p, ix, y):
    return reference.loss(p, {"ix": ix, "y": y})


def test_makemore_gradients_are_proven_three_ways_and_print_as_gather_and_scatter_add():
    d = derive.load(SPEC)
    proofs = check.run_all(d)
    assert [p.passed for p in proofs] == [True, True, True], [(p.name, p.details) for p in proofs]
    text = d.text()
    assert "emb = C[ix]" in text
    assert "∂L/∂C = scatter_add(δemb, ix, V)" in text
    assert "onehot(ix" not in text and "_onehot_ix" not in text
    # the max-shift passes no gradient: each row of the cross-entropy's delta sums to 0
    # (softmax rows sum to 1), so the engine drops δz − (δz 1) ⊙ onehot(argmax)
    assert d.step("logits").text() == "δlogits = (L_in − onehot(y))/B"
    assert "_argmax1" not in text.split("δlogits")[1]


def test_generated_makemore_matches_a_hand_written_backprop_and_finite_differences(tmp_path):
    source = codegen.generate(SPEC)
    assert "np.add.at" in source and "_onehot" not in source and "np.eye" not in source
    mod = module_from_source(source, tmp_path, "gen_makemore")
    rng = np.random.default_rng(3)
    params = mod.init_params(SIZES, seed=2)
    # the gain multiplies (g * xn): it starts at 1; the biases beta and b1 add: at 0
    assert (params["g"] == 1).all() and not params["beta"].any() and not params["b1"].any()
    params = {k: v + rng.normal(size=v.shape) * 0.3 for k, v in params.items()}
    # repeated characters: their rows of δemb must add up in C's gradient
    ix = np.array([[0, 0, 1], [0, 1, 4], [1, 4, 4], [4, 4, 2], [0, 0, 0], [3, 1, 3]])
    y = np.array([1, 4, 4, 2, 3, 0])
    data = {"ix": ix, "y": y}
    np.testing.assert_allclose(mod.loss(params, data), _forward(params, ix, y), rtol=1e-12)
    grads = mod.gradients(params, data)
    ref = reference.gradients(params, data)
    fd = finite_differences(lambda: _forward(params, ix, y), params)
    for p in params:  # (b1's gradient is zero: batch norm subtracts the mean it shifts)
        np.testing.assert_allclose(grads[p], ref[p], rtol=1e-9, atol=1e-12, err_msg=p)
        np.testing.assert_allclose(grads[p], fd[p], rtol=1e-5, atol=1e-8, err_msg=p)
    assert rel_error(grads["C"], ref["C"]) < 1e-9 and np.abs(grads["C"]).max() > 1e-3
    fused = {k: v.copy() for k, v in params.items()}
    mod.train_step(fused, data, 0.1, {})
    for p in params:
        np.testing.assert_allclose(fused[p], params[p] - 0.1 * grads[p], rtol=1e-10, atol=1e-12)


def _means(net, of: str) -> int:
    return sum(
        isinstance(n, ir.Reduce) and n.op == "mean" and getattr(n.arg, "name", None) == of
        for eq in net.equations
        for n in ir.walk(eq.expr)
    )


NAMED_D = """\
input X[B, D]
param W[D, H]
h = X @ W
mu = mean(h, axis=0, keepdims=True)
d = h - mu
L = sum(var(h, axis=0) * d)
"""


def test_var_beside_its_mean_computes_the_mean_and_the_centred_values_once():
    # var(hp) is sum((hp − mean(hp))²)/B: its mean is mu, and hp − mu, which xn reads too,
    # becomes one equation (the spec is written with var, as Karpathy's code is)
    assert "v = var(hp, axis=0, keepdims=True)" in derive.load_network(SPEC).source
    net = derive.load(SPEC).network
    assert _means(net, "hp") == 1
    assert [eq.name for eq in net.equations if eq.refs() == ["hp", "mu"]] == ["v_in"]
    # a spec that names the centred values itself: var reads that name
    net = derive.load(NAMED_D).network
    assert _means(net, "h") == 1
    assert [eq.name for eq in net.equations if eq.refs() == ["h", "mu"]] == ["d"]


INITS = """\
input  x[B, D]
param  W[D, H], b[H], s[H], c[H], w[H], k[H], u[H]
h = tanh(-(x @ W) * s + b) / c.reshape(1, H)
L = sum(h @ w) + sum(2 * k) + sum(exp(h + u))
"""


def test_init_reads_from_the_equations_whether_a_1d_param_scales_or_adds():
    # s and c scale entries (a factor, a divisor, through a reshape): ones; b, u add and k
    # is only doubled: zeros; w is summed against in a product: not a gain, zeros
    kinds = {i.name: i.kind for i in init_rules(derive.load_network(INITS))}
    assert kinds == {
        "W": "glorot", "b": "zeros", "s": "ones", "c": "ones",
        "w": "zeros", "k": "zeros", "u": "zeros",
    }  # fmt: skip


def test_makemore_trains_on_the_word_list_below_a_uniform_guess(tmp_path):
    words = datasets.load_words()
    ix, y = words.features.astype(np.int64), words.targets
    mod = module_from_source(codegen.generate(SPEC), tmp_path, "gen_makemore_train")
    params = mod.init_params({"V": 27, "E": 8, "T": ix.shape[1], "H": 32}, seed=0)
    rng = np.random.default_rng(0)
    state: dict = {}
    for _ in range(300):
        batch = rng.integers(0, len(y), size=64)
        mod.train_step(params, {"ix": ix[batch], "y": y[batch]}, 0.2, state)
    loss = mod.loss(params, {"ix": ix, "y": y})
    assert loss < np.log(27) - 0.5, loss
