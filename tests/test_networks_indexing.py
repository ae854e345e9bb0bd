"""Issue 10, part 2: index inputs and gathers ``C[ix]``, ``max``/``min`` along an axis,
``logsumexp`` and dropout masks ``bernoulli(p)``.

Truth is independent of the engine: NumPy's own fancy indexing, ``np.max`` and a
``logsumexp`` written here, finite differences of losses written in plain NumPy, and the
exact identity ``params − lr · gradients`` for the fused step."""

from __future__ import annotations

import numpy as np
import pytest

import codegen
import derive
from derive import SpecError, check
from tests.helpers import finite_differences, rel_error
from tests.test_codegen import module_from_source

rng = np.random.default_rng(7)


def _proofs_pass(spec: str) -> derive.Derivation:
    d = derive.load(spec)
    proofs = check.run_all(d)
    assert [p.passed for p in proofs] == [True, True, True], [(p.name, p.details) for p in proofs]
    return d


def _fused_matches(mod, params: dict, data: dict, lr: float = 0.1) -> None:
    """One fused step moves every param by exactly ``lr`` times ``gradients()``."""
    grads = mod.gradients(params, data)
    fused = {k: v.copy() for k, v in params.items()}
    mod.train_step(fused, data, lr, {})
    for p in params:
        np.testing.assert_allclose(fused[p], params[p] - lr * grads[p], rtol=1e-10, atol=1e-12)


# --- gathers: C[ix] and its scatter-add -----------------------------------------------------

EMBED = """\
input  ix[B] index(V)
input  x[B, D]
target t[B, K]
param  C[V, E], W[E, K], U[D, K]
emb = C[ix]
z = tanh(emb) @ W + x @ U
L = sum((z - t) ** 2)
"""


def _embed_loss(params, data):
    emb = params["C"][data["ix"]]
    z = np.tanh(emb) @ params["W"] + data["x"] @ params["U"]
    return np.sum((z - data["t"]) ** 2)


def test_the_adjoint_of_a_gather_is_a_scatter_add_in_every_printer():
    d = _proofs_pass(EMBED)
    grad = d.gradients["C"]
    assert grad.text() == "∂L/∂C = scatter_add(ix, δemb)"
    assert "np.add.at(_acc, ix, delta_emb)" in grad.numpy() and "eye" not in grad.numpy()
    assert r"\operatorname{scatter\_add}" in grad.latex()


def test_printed_numpy_of_a_gather_runs_as_numpy_fancy_indexing():
    from tests.helpers import derived_json, run_json

    data = {"ix": np.array([0, 3, 3, 1, 0]), "x": rng.normal(size=(5, 2))}
    data["t"] = rng.normal(size=(5, 3))
    params = {"C": rng.normal(size=(4, 6)), "W": rng.normal(size=(6, 3))}
    params["U"] = rng.normal(size=(2, 3))
    env = {**data, **params, "B": 5, "V": 4, "D": 2, "K": 3, "E": 6}
    got = run_json(derived_json(EMBED), env)
    np.testing.assert_array_equal(got["env"]["emb"], params["C"][data["ix"]])
    fd = finite_differences(lambda: _embed_loss(params, data), params)
    for p in params:
        assert rel_error(got["grads"][p], fd[p]) < 1e-6, p


def test_generated_gather_scatters_with_add_at_and_matches_finite_differences(tmp_path):
    source = codegen.generate(EMBED)
    assert "np.add.at" in source and "scatter_add(delta_emb, ix, V" in source
    assert "np.take(C, ix, axis=0" in source  # the fused step gathers into a buffer
    assert "def onehot" not in source and "np.eye" not in source
    mod = module_from_source(source, tmp_path, "gen_embed")
    params = mod.init_params({"V": 5, "D": 3, "K": 2, "E": 4}, seed=1)
    # repeated indices: their rows of δemb must add up in the table's gradient
    data = {"ix": np.array([4, 0, 4, 4, 2, 0, 1]), "x": rng.normal(size=(7, 3))}
    data["t"] = rng.normal(size=(7, 2))
    grads = mod.gradients(params, data)
    fd = finite_differences(lambda: _embed_loss(params, data), params)
    for p in params:
        assert rel_error(grads[p], fd[p]) < 1e-6, p
    _fused_matches(mod, params, data)
    with pytest.raises(ValueError, match="whole numbers"):
        mod.loss(params, {**data, "ix": data["ix"] + 0.5})


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("input ix[B] index(V)\nparam C[V, E]\nL = sum(C * ix)\n", "gather with it: C[ix]"),
        ("input ix[B] index(V)\nparam C[K, E]\nL = sum(C[ix])\n", "table of V rows"),
        ("input ix[B] index(V)\nparam C[V]\nL = sum(C[ix])\n", "expected a table [V, n]"),
        ("input ix[B] index\nparam C[V, E]\nL = sum(C[ix])\n", "expected 'index(...)'"),
    ],
)
def test_index_misuse_is_a_spec_error_with_a_position(spec, words):
    with pytest.raises(SpecError) as err:
        derive.load(spec)
    assert words in str(err.value) and err.value.line >= 1 and err.value.col >= 1


# --- max/min along an axis, logsumexp, and the rest of item 2 -------------------------------

SHIFTED = """\
input  X[B, D]
target y[B] labels(C)
param  W[D, C]
s = X @ W
m = max(s, axis=1, keepdims=True)
logits = s - m
c = min(s, axis=0)
L = -mean(log_softmax(logits, axis=1)[range(B), y]) + sum(c * c) + sum(logsumexp(s, axis=1)) \
    + sum(m.T @ s)
"""


def _logsumexp(a, axis):
    top = a.max(axis=axis, keepdims=True)
    return (top + np.log(np.exp(a - top).sum(axis=axis, keepdims=True))).squeeze(axis)


def _shifted_loss(X, y, W):
    s = X @ W
    logits = s - s.max(axis=1, keepdims=True)
    logp = logits - _logsumexp(logits, 1)[:, None]
    c, m = s.min(axis=0), s.max(axis=1)
    return (
        -logp[np.arange(len(y)), y].mean()
        + np.sum(c * c)
        + np.sum(_logsumexp(s, 1))
        + np.sum(m[:, None] * s)
    )


def test_max_min_logsumexp_match_numpy_and_finite_differences(tmp_path):
    d = _proofs_pass(SHIFTED)
    # the gradient of max reaches the one maximal entry of each row (torch.max(dim));
    # the shift's own share of it is zero (each row of the cross-entropy's delta sums to
    # 0); the share of m.T @ s remains (δm = s 1, fused into δs)
    assert "onehot(_argmax1) ⊙ (s 1)" in d.step("s").text()
    source = codegen.generate(SHIFTED)
    assert "add_labels(delta_s, _argmax1, " in source  # scattered, not built
    mod = module_from_source(source, tmp_path, "gen_shifted")
    X, y, W = rng.normal(size=(6, 3)), rng.integers(0, 4, 6), rng.normal(size=(3, 4))
    data, params = {"X": X, "y": y}, {"W": W}
    assert mod.loss(params, data) == pytest.approx(_shifted_loss(X, y, W), rel=1e-12)
    fd = finite_differences(lambda: _shifted_loss(X, y, W), params)["W"]
    assert rel_error(mod.gradients(params, data)["W"], fd) < 1e-6
    _fused_matches(mod, params, data)
    # ties go to the first maximal entry, as np.argmax and torch.max pick it
    fwd = mod.forward({"W": np.ones((3, 4))}, {"X": X[:2], "y": y[:2]})  # equal columns
    np.testing.assert_array_equal(fwd["_argmax1"], [0, 0])
    # logsumexp stays finite where exp overflows
    big = {"W": W * 1e4}
    assert np.isfinite(mod.loss(big, data))


# every function of item 2, in two networks (one would make the simplifier's factoring
# of δh slow): where with numbers and broadcasting, maximum/minimum, max/min/logsumexp
# with keepdims, var/std with ddof, abs/sqrt/square
HEAD = "input X[B, D], M[B, H]\ntarget T[B, H]\nparam W[D, H], v[H]\nh = X @ W\n"
ITEM2 = [
    "a = exp(where(M > 0, h, -30)) * T + where(v > 0.5, h, 2) ** 2 + where(h > v, 1, h) * T\n"
    "b = maximum(h, v) + minimum(0.5, h) + min(h, axis=1, keepdims=True) * T\n"
    "L = sum(a + b)\n",
    "c = logsumexp(h, axis=0, keepdims=True) * T + abs(h) + sqrt(square(h) + 1)\n"
    "L = sum(c) + sum(max(h, axis=0) ** 2) + sum(std(h, axis=0, ddof=1)) + sum(v * v)\n",
]


def _item2_loss(part, X, M, v, T, W):
    h = X @ W
    if part == 0:
        a = np.exp(np.where(M > 0, h, -30)) * T + np.where(v > 0.5, h, 2) ** 2
        a = a + np.where(h > v, 1, h) * T
        b = np.maximum(h, v) + np.minimum(0.5, h) + np.min(h, axis=1, keepdims=True) * T
        return np.sum(a + b)
    c = _logsumexp(h, 0)[None, :] * T + np.abs(h) + np.sqrt(np.square(h) + 1)
    top = np.sum(np.max(h, axis=0) ** 2)
    return np.sum(c) + top + np.sum(np.std(h, axis=0, ddof=1)) + np.sum(v * v)


@pytest.mark.parametrize("part", [0, 1])
def test_every_function_of_item_2_is_proven_and_generated(part, tmp_path):
    spec = HEAD + ITEM2[part]
    _proofs_pass(spec)
    mod = module_from_source(codegen.generate(spec), tmp_path, f"gen_item2_{part}")
    X, M, T = rng.normal(size=(5, 3)), rng.normal(size=(5, 4)), rng.normal(size=(5, 4))
    params = {"W": rng.normal(size=(3, 4)), "v": rng.uniform(size=4)}
    data = {"X": X, "M": M, "T": T}

    def want():
        return _item2_loss(part, X, M, params["v"], T, params["W"])

    assert mod.loss(params, data) == pytest.approx(want(), rel=1e-12)
    fd = finite_differences(want, params)
    grads = mod.gradients(params, data)
    for p in params:
        assert rel_error(grads[p], fd[p]) < 1e-6, p
    _fused_matches(mod, params, data)


@pytest.mark.parametrize(
    ("call", "words"),
    [
        ("max(h)", "needs a 2-D array and an axis"),
        ("min(h, axis=2)", "out of range"),
        ("max(h, axis=1, keepdims=2)", "keepdims must be True or False"),
        ("logsumexp(h)", "needs an axis"),
    ],
)
def test_max_and_logsumexp_misuse_is_a_spec_error(call, words):
    spec = f"input X[B, D]\nparam W[D, H]\nh = X @ W\nL = sum({call})\n"
    with pytest.raises(SpecError) as err:
        derive.load(spec)
    assert words in str(err.value) and err.value.line == 4


# --- dropout masks ----------------------------------------------------------------------------

DROPOUT = """\
input  X[B, D]
input  D1[B, H] bernoulli(keep)
target y[B] labels(C)
param  W1[D, H], W2[H, C]
const  keep = 0.75
h = relu(X @ W1)
hd = h * D1 / keep
L = -mean(log_softmax(hd @ W2, axis=1)[range(B), y])
"""


def test_a_dropout_mask_is_an_input_drawn_each_step_and_its_mean_when_evaluating(tmp_path):
    d = _proofs_pass(DROPOUT)  # for grad and verify: an input like any other
    assert d.step("h").text() == "δh = (δhd ⊙ D1)/keep"
    mod = module_from_source(codegen.generate(DROPOUT), tmp_path, "gen_dropout")
    assert list(mod.INPUTS) == ["X"] and "D1" not in mod.BATCH_AXES  # not data to give
    params = mod.init_params({"D": 3, "H": 50, "C": 3}, seed=0)
    X, y = rng.normal(size=(40, 3)), rng.integers(0, 3, 40)
    drawn = mod.draw_masks(params, {"X": X, "y": y}, np.random.default_rng(1))
    mask = drawn["D1"]
    assert mask.shape == (40, 50) and set(np.unique(mask)) == {0.0, 1.0}
    assert abs(mask.mean() - 0.75) < 0.03  # 2000 draws: 4.6 standard deviations
    again = mod.draw_masks(params, {"X": X, "y": y}, np.random.default_rng(1))["D1"]
    np.testing.assert_array_equal(mask, again)  # the seeded generator decides
    # evaluation uses the mask's mean: h * keep / keep = h, no dropout
    mean = np.full((40, 50), 0.75)
    assert mod.loss(params, {"X": X, "y": y}) == mod.loss(params, {**drawn, "D1": mean})

    def ref():
        hd = np.maximum(X @ params["W1"], 0) * mask / 0.75
        s = hd @ params["W2"]
        return -(s - _logsumexp(s, 1)[:, None])[np.arange(40), y].mean()

    grads = mod.gradients(params, drawn)
    fd = finite_differences(ref, params)
    for p in params:
        assert rel_error(grads[p], fd[p]) < 1e-6, p
    _fused_matches(mod, params, drawn)
    # training draws a fresh mask every step: two epochs with the same seed agree,
    # and the losses recorded (with the mean mask) fall
    runs = []
    for _ in range(2):
        p = mod.init_params({"D": 3, "H": 50, "C": 3}, seed=0)
        runs.append(mod.train(p, {"X": X, "y": y}, epochs=3, batch_size=8, lr=0.5, seed=3))
    assert runs[0]["loss"] == runs[1]["loss"] and runs[0]["loss"][-1] < runs[0]["loss"][0]


@pytest.mark.parametrize(
    ("decl", "words"),
    [
        ("bernoulli(1.5)", "must be in (0, 1]"),
        ("bernoulli(q)", "must be a number or a const"),
        ("bernoulli", "expected 'bernoulli(...)'"),
    ],
)
def test_bernoulli_misuse_is_a_spec_error(decl, words):
    spec = f"input X[B, D]\ninput D1[B, D] {decl}\nparam W[D, H]\nL = sum((X * D1) @ W)\n"
    with pytest.raises(SpecError) as err:
        derive.load(spec)
    assert words in str(err.value)


def test_derive_train_draws_dropout_masks_and_learns_digits(tmp_path, capsys):
    import json

    from derive.cli import main

    w = str(tmp_path / "dropout.npz")
    argv = ["--data", "digits", "--epochs", "10", "--lr", "0.01", "--optimizer", "adam"]
    assert main(["train", "mlp_dropout_l1", *argv, "--dim", "H=32", "--out", w]) == 0
    capsys.readouterr()
    test = ["test", "mlp_dropout_l1", "--data", "digits", "--weights", w, "--format", "json"]
    assert main(test) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["accuracy"] >= 0.9, report["accuracy"]


def test_the_words_source_is_makemores_contexts_of_the_shipped_word_list():
    from codegen import data

    ds = data.load_words()
    words = [w for w in data.WORDS_FILE.read_text().split("\n") if w and not w.startswith("#")]
    assert len(words) >= 300 and ds.n_classes == 27
    assert ds.n_examples == sum(len(w) + 1 for w in words)  # each character, then the end
    first = words[0]  # "abc": ... → a, ..a → b, .ab → c, abc → .
    index = [data.WORDS_ALPHABET.index(c) for c in first]
    np.testing.assert_array_equal(ds.features[0], [0, 0, 0])
    np.testing.assert_array_equal(ds.features[len(first)], index[-3:])
    np.testing.assert_array_equal(ds.targets[: len(first) + 1], [*index, 0])


@pytest.mark.parametrize(("spec", "words"), [(EMBED, "index inputs"), (DROPOUT, "bernoulli masks")])
def test_other_targets_refuse_index_inputs_and_bernoulli_masks_in_one_line(spec, words):
    """Labels they take (tests/test_networks.py); gathers and masks have no kernels there yet."""
    from codegen.targets import generate_target

    for target in ("torch", "jax", "numba"):
        with pytest.raises(SpecError, match=f"the {target} target does not support {words}"):
            generate_target(spec, target)
