"""`derive verify SPEC backward.py`: backward passes in the styles of Ng, cs231n, Karpathy,
Nielsen and nnfs (tests/backward/styles.py, our own code), right and with mistakes.

The truth is independent of the verifier: each style's forward pass is written here again in
NumPy, the functions are run for real on random values, and every gradient they return is
compared with central differences of that forward pass.  The verifier only reads the source.
"""

from __future__ import annotations

import functools
import inspect
from pathlib import Path

import numpy as np
import pytest

import derive
from derive.verify.function import verify_function
from tests.backward import styles

SOURCE = inspect.getsource(styles)
SPECS = Path(__file__).parent / "specs"
RNG = np.random.default_rng(7)


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _onehot(n, k):
    return np.eye(k)[RNG.integers(0, k, size=n)]


# --- each style: params, a forward pass (loss and the values its backward function reads),
# and how to call the function --------------------------------------------------------------
def ng_case():
    X, Y = RNG.normal(size=(3, 5)), RNG.uniform(0.1, 0.9, size=(2, 5))
    P = {"W1": RNG.normal(size=(4, 3)), "b1": RNG.normal(size=(4, 1))}
    P |= {"W2": RNG.normal(size=(2, 4)), "b2": RNG.normal(size=(2, 1))}

    def forward(P):
        Z1 = P["W1"] @ X + P["b1"]
        A1 = np.tanh(Z1)
        A2 = _sigmoid(P["W2"] @ A1 + P["b2"])
        loss = -np.sum(Y * np.log(A2) + (1 - Y) * np.log(1 - A2)) / X.shape[1]
        return loss, {"Z1": Z1, "A1": A1, "A2": A2}

    def call(fn, P):
        return fn(P, forward(P)[1], X, Y)

    return "ng.nn", P, forward, call, {}


def cs231n_case():
    X, T = RNG.normal(size=(5, 3)), _onehot(5, 3)
    P = {"W1": RNG.normal(size=(3, 4)), "b1": RNG.normal(size=4)}
    P |= {"W2": RNG.normal(size=(4, 3)), "b2": RNG.normal(size=3)}
    reg = 0.1

    def forward(P):
        h1 = np.maximum(0, X @ P["W1"] + P["b1"])
        p = _softmax(h1 @ P["W2"] + P["b2"])
        loss = -np.sum(T * np.log(p)) / 5 + reg * (np.sum(P["W1"] ** 2) + np.sum(P["W2"] ** 2))
        return loss, {"h1": h1, "p": p}

    def call(fn, P):
        v = forward(P)[1]
        return fn(X, T, P["W1"], P["b1"], P["W2"], P["b2"], v["h1"], v["p"], reg)

    return "cs231n.nn", P, forward, call, {}


def karpathy_case():
    X, Y, n = RNG.normal(size=(4, 3)), _onehot(4, 3), 4
    P = {"W1": RNG.normal(size=(3, 5)), "bngain": RNG.normal(size=(1, 5))}
    P |= {"bnbias": RNG.normal(size=(1, 5)), "W2": RNG.normal(size=(5, 3))}
    P |= {"b2": RNG.normal(size=3)}

    def forward(P):
        hprebn = X @ P["W1"]
        bndiff = hprebn - hprebn.mean(0, keepdims=True)
        bndiff2 = bndiff**2
        bnvar = bndiff2.sum(0, keepdims=True) / (n - 1)
        bnvar_inv = (bnvar + 1e-5) ** -0.5
        bnraw = bndiff * bnvar_inv
        hact = np.tanh(P["bngain"] * bnraw + P["bnbias"])
        probs = _softmax(hact @ P["W2"] + P["b2"])
        loss = -np.sum(Y * np.log(probs)) / n
        values = dict(hprebn=hprebn, bndiff=bndiff, bndiff2=bndiff2, bnvar=bnvar)
        return loss, values | dict(bnvar_inv=bnvar_inv, bnraw=bnraw, hact=hact, probs=probs)

    def call(fn, P):
        v = forward(P)[1]
        return fn(X, Y, P["W1"], P["bngain"], P["W2"], **v)

    return "karpathy.nn", P, forward, call, {}


def nielsen_case():
    x, y = RNG.normal(size=(3, 1)), RNG.uniform(size=(2, 1))
    P = {"W1": RNG.normal(size=(4, 3)), "b1": RNG.normal(size=(4, 1))}
    P |= {"W2": RNG.normal(size=(2, 4)), "b2": RNG.normal(size=(2, 1))}

    def forward(P):
        a1 = _sigmoid(P["W1"] @ x + P["b1"])
        a2 = _sigmoid(P["W2"] @ a1 + P["b2"])
        return 0.5 * np.sum((a2 - y) ** 2), {}

    def call(fn, P):
        net = styles.Network([P["W1"], P["W2"]], [P["b1"], P["b2"]])
        nabla_b, nabla_w = fn(net, x, y)
        return {"W1": nabla_w[0], "W2": nabla_w[1], "b1": nabla_b[0], "b2": nabla_b[1]}

    return "nielsen.nn", P, forward, call, {"weights": ["W1", "W2"], "biases": ["b1", "b2"]}


def nnfs_case():
    X, y_true = RNG.normal(size=(5, 3)), _onehot(5, 3)
    P = {"W1": RNG.normal(size=(3, 4)), "b1": RNG.normal(size=(1, 4))}
    P |= {"W2": RNG.normal(size=(4, 3)), "b2": RNG.normal(size=(1, 3))}

    def forward(P):
        Z1 = X @ P["W1"] + P["b1"]
        A1 = np.maximum(0, Z1)
        y_pred = _softmax(A1 @ P["W2"] + P["b2"])
        return -np.sum(y_true * np.log(y_pred)) / 5, {"Z1": Z1, "A1": A1, "y_pred": y_pred}

    def call(fn, P):
        v = forward(P)[1]
        return fn(X, P["W1"], P["W2"], v["Z1"], v["A1"], v["y_pred"], y_true)

    maps = {"weights1": ["W1"], "weights2": ["W2"], "biases1": ["b1"], "biases2": ["b2"]}
    return "nnfs.nn", P, forward, call, maps


def affine_case():
    x, t = RNG.normal(size=(5, 3)), RNG.normal(size=(5, 4))
    P = {"x": x, "w": RNG.normal(size=(3, 4)), "b": RNG.normal(size=4)}

    def forward(P):
        out = P["x"] @ P["w"] + P["b"]
        return 0.5 * np.sum((out - t) ** 2), {"out": out}

    def call(fn, P):
        dout = forward(P)[1]["out"] - t
        dx, dw, db = fn(dout, (P["x"], P["w"], P["b"]))
        return {"x": dx, "w": dw, "b": db}

    return "affine.nn", P, forward, call, {}


def batchnorm_case():
    t = RNG.normal(size=(5, 3))
    P = {"x": RNG.normal(size=(5, 3)), "gamma": RNG.normal(size=3), "beta": RNG.normal(size=3)}

    def forward(P):
        mu = P["x"].mean(axis=0)
        var = ((P["x"] - mu) ** 2).mean(axis=0)
        x_hat = (P["x"] - mu) / np.sqrt(var + 1e-5)
        out = P["gamma"] * x_hat + P["beta"]
        return 0.5 * np.sum((out - t) ** 2), {"mu": mu, "var": var, "x_hat": x_hat, "out": out}

    def call(fn, P):
        v = forward(P)[1]
        cache = (P["x"], v["x_hat"], v["mu"], v["var"], P["gamma"], P["beta"], 1e-5)
        dx, dgamma, dbeta = fn(v["out"] - t, cache)
        return {"x": dx, "gamma": dgamma, "beta": dbeta}

    return "verify/batchnorm.nn", P, forward, call, {"var": ["bvar"]}


def finite_difference_labels(P, forward, got) -> dict[str, bool]:
    """Whether each returned gradient equals central differences of the forward pass."""
    labels = {}
    for name, p in P.items():
        if name not in got:  # a function returning only some gradients
            continue
        fd = np.zeros_like(p)
        for idx in np.ndindex(p.shape):
            old = p[idx]
            p[idx] = old + 1e-6
            up = forward(P)[0]
            p[idx] = old - 1e-6
            down = forward(P)[0]
            p[idx] = old
            fd[idx] = (up - down) / 2e-6
        g = np.asarray(got[name], dtype=float)
        labels[name] = g.size == fd.size and np.allclose(g.reshape(fd.shape), fd, atol=1e-5)
    return labels


CASES = [
    (ng_case, "ng_backward"),
    (ng_case, "ng_backward_no_mean"),
    (ng_case, "ng_backward_wrong_point"),
    (ng_case, "ng_backward_axis"),
    (karpathy_case, "karpathy_softmax"),
    (cs231n_case, "cs231n_backward"),
    (cs231n_case, "cs231n_backward_reg"),
    (cs231n_case, "cs231n_backward_axis"),
    (karpathy_case, "karpathy_backward_bessel"),
    (nielsen_case, "backprop"),
    (nielsen_case, "backprop_transposed"),
    (nnfs_case, "nnfs_backward"),
    (nnfs_case, "nnfs_backward_sign"),
    (affine_case, "affine_backward"),
    (affine_case, "affine_backward_transposed"),
    (batchnorm_case, "batchnorm_backward"),
    (batchnorm_case, "batchnorm_backward_no_var"),
    (batchnorm_case, "batchnorm_backward_alt"),
    (batchnorm_case, "batchnorm_backward_alt_n"),
]


@functools.cache
def _verdicts(case, name):
    spec, _, _, _, maps = case()
    net = derive.load_network(SPECS / spec)
    return net.loss, verify_function(net, SOURCE, "styles.py", name, maps)


def _function(name):
    return getattr(styles.Network, name) if name.startswith("backprop") else getattr(styles, name)


def _mistake_line(name: str) -> int | None:
    lines, start = inspect.getsourcelines(_function(name))
    for n, text in enumerate(lines, start=start):
        if "# mistake" in text:
            return n
    return None


@pytest.mark.parametrize(("case", "name"), CASES, ids=[n for _, n in CASES])
def test_backward_functions_line_by_line(case, name):
    spec, P, forward, call, maps = case()
    labels = finite_difference_labels(P, forward, call(_function(name), P))
    loss, results = _verdicts(case, name)
    for param, right in labels.items():  # the last line holding each returned gradient
        mine = [r for r in results if r.normalized.endswith(f"∂{loss}/∂{param}")]
        assert mine, (param, [r.normalized for r in results])
        assert (mine[-1].verdict == "correct") == right, (param, mine[-1].text)
    first = next((r.line for r in results if r.verdict != "correct"), None)
    assert first == _mistake_line(name)
    assert (first is None) == all(labels.values())


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("ng_backward_no_mean", "a missing 1/m"),
        ("ng_backward_wrong_point", "wrong point"),
        ("cs231n_backward_reg", "a term off by a constant factor: 1/2 × (2*reg W2)"),
        ("cs231n_backward_axis", "a missing sum over axis 0"),
        ("ng_backward_axis", "a reduction over the wrong axis: sum(…, axis=0) on line"),
        ("backprop_transposed", "transposed"),
        ("nnfs_backward_sign", "sign"),
        ("batchnorm_backward_alt_n", "a missing 1/N"),
    ],
)
def test_the_first_wrong_line_is_named(name, words):
    case = {n: c for c, n in CASES}[name]
    _, results = _verdicts(case, name)
    first = next(r for r in results if r.verdict != "correct")
    assert words in (first.diagnosis or ""), first.diagnosis
    later = [r for r in results if r.line > first.line and r.verdict != "correct"]
    assert all(r.built_on == first.line or r.diagnosis for r in later)


def test_pytorch_spelling_gets_the_verdicts_of_the_numpy_spelling():
    # the truth: the NumPy spelling, checked above by finite differences
    for case, name in [(ng_case, "ng_backward_wrong_point"), (cs231n_case, "cs231n_backward_reg")]:
        _, numpy_results = _verdicts(case, name)
        text = inspect.getsource(_function(name))
        for old, new in [
            ("np.dot", "torch.matmul"),
            ("np.sum", "torch.sum"),
            ("np.power", "torch.pow"),
        ]:
            text = text.replace(old, new)
        text = text.replace("axis=", "dim=").replace("keepdims=", "keepdim=").replace(".T", ".t()")
        spec, _, _, _, maps = case()
        torch_results = verify_function(derive.load_network(SPECS / spec), text, "t.py", name, maps)
        assert "torch." in text
        assert [r.verdict for r in torch_results] == [r.verdict for r in numpy_results]


def test_a_dropped_keepdims_in_a_function_is_named():
    # the truth: NumPy itself cannot broadcast the line as written, and the same function
    # with keepdims=True matches finite differences (karpathy_softmax in CASES)
    spec, P, forward, call, maps = karpathy_case()
    with pytest.raises(ValueError, match="broadcast"):
        call(styles.karpathy_softmax_keepdims, P)
    net = derive.load_network(SPECS / spec)
    results = verify_function(net, SOURCE, "styles.py", "karpathy_softmax_keepdims", maps)
    bad = next(r for r in results if r.verdict != "correct")
    assert bad.line == _mistake_line("karpathy_softmax_keepdims")
    assert "a dropped keepdims: sum(…, axis=1)" in (bad.diagnosis or ""), bad.diagnosis
