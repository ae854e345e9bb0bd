"""Fancy indexing over integer class labels (``target y[N] labels(C)``): cs231n's
``softmax_loss_vectorized`` and ``svm_loss_vectorized`` and Karpathy's cross-entropy lines
(tests/backward/labels.py, our own code in their styles), right and wrong, as whole functions
and as claims.

The truth is independent of the verifier: the forward passes are written here again in NumPy,
the functions are run for real, and each gradient they return is compared with central
differences of that forward pass.
"""

from __future__ import annotations

import functools
import inspect
from pathlib import Path

import numpy as np
import pytest

import derive
from derive.verify import verify
from derive.verify.function import verify_function
from tests.backward import labels as styles

SOURCE = inspect.getsource(styles)
SPECS = Path(__file__).parent / "specs"
RNG = np.random.default_rng(11)


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def softmax_case():
    X, y, reg = RNG.normal(size=(5, 3)), RNG.integers(0, 4, size=5), 0.1
    P = {"W": RNG.normal(size=(3, 4))}

    def forward(P):
        probs = _softmax(X @ P["W"])
        loss = -np.mean(np.log(probs[np.arange(5), y])) + reg * np.sum(P["W"] ** 2)
        return loss, {"probs": probs}

    def call(fn, P):
        if "loss" in fn.__name__:
            return {"W": fn(P["W"], X, y, reg)[1]}
        return {"W": fn(X, y, P["W"], forward(P)[1]["probs"], reg)}

    return "verify/softmax_linear.nn", P, forward, call


def svm_case():
    X, y, reg = RNG.normal(size=(6, 3)), RNG.integers(0, 4, size=6), 0.1
    P = {"W": RNG.normal(size=(3, 4))}

    def forward(P):
        scores = X @ P["W"]
        margins = np.maximum(0, scores - scores[np.arange(6), y][:, None] + 1)
        margins[np.arange(6), y] = 0
        return margins.sum() / 6 + reg * np.sum(P["W"] ** 2), {}

    def call(fn, P):
        return {"W": fn(P["W"], X, y, reg)[1]}

    return "verify/svm_linear.nn", P, forward, call


def karpathy_case():
    h, Yb, n = RNG.normal(size=(5, 3)), RNG.integers(0, 4, size=5), 5
    P = {"W2": RNG.normal(size=(3, 4)), "b2": RNG.normal(size=4)}

    def forward(P):
        logits = h @ P["W2"] + P["b2"]
        counts = np.exp(logits)
        counts_sum = counts.sum(1, keepdims=True)
        counts_sum_inv = counts_sum**-1
        probs = counts * counts_sum_inv
        logprobs = np.log(probs)
        values = dict(logits=logits, counts=counts, counts_sum=counts_sum)
        values |= dict(counts_sum_inv=counts_sum_inv, probs=probs, logprobs=logprobs)
        return -logprobs[range(n), Yb].mean(), values

    def call(fn, P):
        dW2, db2 = fn(h, Yb, P["W2"], **forward(P)[1])
        return {"W2": dW2, "b2": db2}

    return "verify/karpathy_ce.nn", P, forward, call


def finite_difference_labels(P, forward, got) -> dict[str, bool]:
    """Whether each returned gradient equals central differences of the forward pass."""
    out = {}
    for name, p in P.items():
        fd = np.zeros_like(p)
        for idx in np.ndindex(p.shape):
            old = p[idx]
            p[idx] = old + 1e-6
            up = forward(P)[0]
            p[idx] = old - 1e-6
            down = forward(P)[0]
            p[idx] = old
            fd[idx] = (up - down) / 2e-6
        out[name] = bool(np.allclose(got[name], fd, atol=1e-6))
    return out


FUNCTIONS = [
    (softmax_case, "softmax_loss_vectorized"),
    (softmax_case, "softmax_loss_vectorized_no_onehot"),
    (svm_case, "svm_loss_vectorized"),
    (svm_case, "svm_loss_vectorized_correct_class"),
    (karpathy_case, "karpathy_ce_backward"),
    (karpathy_case, "karpathy_ce_backward_sign"),
    (karpathy_case, "karpathy_ce_fused"),
    (karpathy_case, "karpathy_ce_fused_no_mean"),
]
DIAGNOSES = {
    "softmax_loss_vectorized_no_onehot": "wrong only at the labels' entries [range(N), y]",
    "svm_loss_vectorized_correct_class": "wrong only at the labels' entries [range(N), y]",
    "karpathy_ce_backward_sign": "sign",
    "karpathy_ce_fused_no_mean": "a missing 1/n",
}


def _mistake_line(fn) -> int | None:
    lines, start = inspect.getsourcelines(fn)
    return next((n for n, text in enumerate(lines, start=start) if "# mistake" in text), None)


@functools.cache
def _net(spec: str):
    return derive.load_network(SPECS / spec)


@pytest.mark.parametrize(("case", "name"), FUNCTIONS, ids=[n for _, n in FUNCTIONS])
def test_label_functions_line_by_line(case, name):
    spec, P, forward, call = case()
    fn = getattr(styles, name)
    truth = finite_difference_labels(P, forward, call(fn, P))
    net = _net(spec)
    results = verify_function(net, SOURCE, "labels.py", name, {})
    for param, right in truth.items():  # the last line holding each returned gradient
        mine = [r for r in results if r.normalized.endswith(f"∂{net.loss}/∂{param}")]
        assert (mine[-1].verdict == "correct") == right, (param, [r.text for r in mine])
    first = next((r for r in results if r.verdict != "correct"), None)
    assert (first.line if first else None) == _mistake_line(fn)
    assert (first is None) == all(truth.values())
    if first is not None:
        assert DIAGNOSES[name] in (first.diagnosis or ""), first.diagnosis
        assert all(r.built_on == first.line or r.diagnosis for r in results if r.line > first.line)


def _body(fn) -> tuple[str, int]:
    """The function's statements as a claim text (its size lines dropped: the dims are the
    spec's) and the claim line of its ``# mistake``."""
    source = inspect.getsource(fn).splitlines()
    start = next(k for k, ln in enumerate(source) if ln.rstrip().endswith(":")) + 1
    lines = [ln.strip() for ln in source[start:]]
    keep = [ln for ln in lines if not ln.startswith(("return", "n = ", "N = ")) and ln]
    marked = next((k for k, ln in enumerate(keep, start=1) if "# mistake" in ln), None)
    return "\n".join(ln.split("  #")[0] for ln in keep), marked


CLAIMS = [
    (softmax_case, "softmax_grad"),
    (softmax_case, "softmax_grad_plus"),
    (karpathy_case, "karpathy_ce_backward"),
    (karpathy_case, "karpathy_ce_backward_sign"),
]


@pytest.mark.parametrize(("case", "name"), CLAIMS, ids=[n for _, n in CLAIMS])
def test_label_claims_give_the_verdicts_of_finite_differences(case, name):
    spec, P, forward, call = case()
    truth = finite_difference_labels(P, forward, call(getattr(styles, name), P))
    text, marked = _body(getattr(styles, name))
    net = _net(spec)
    results = verify(net, text)
    for param, right in truth.items():
        mine = [r for r in results if r.normalized.endswith(f"(∂{net.loss}/∂{param})")]
        assert (mine[-1].verdict == "correct") == right, (param, mine[-1].text)
    wrong = [r for r in results if r.verdict != "correct"]
    assert (wrong[0].line if wrong else None) == marked
    if wrong:
        assert wrong[0].diagnosis and all(r.built_on == marked for r in wrong[1:])


def test_picked_entries_in_a_claim():
    # the truth: the spec's own loss is -mean(log(probs)[range(N), y]); its gradient with
    # respect to probs is -onehot(y)/(N probs), which finite differences of it confirm in
    # test_label_claims_give_the_verdicts_of_finite_differences through dprobs
    net = _net("verify/karpathy_ce.nn")
    right = "dprobs = np.zeros_like(probs); "
    right += "dprobs[np.arange(n), Yb] = -1 / (n * probs[range(n), Yb])"
    assert verify(net, right)[-1].verdict == "correct"
    wrong = right.replace("-1 /", "1 /")
    assert verify(net, wrong)[-1].diagnosis.startswith("sign")


# --- np.outer and .reshape in claims (issue 9 item 1) -----------------------------------------
def _nielsen_truth():
    """The claims' values computed for real by NumPy, and the gradient by central differences
    of Nielsen's forward pass: which of them hold is decided here, not by the verifier."""
    x, y = RNG.normal(size=(3, 1)), RNG.uniform(size=(2, 1))
    W1, b1 = RNG.normal(size=(4, 3)), RNG.normal(size=(4, 1))
    W2, b2 = RNG.normal(size=(2, 4)), RNG.normal(size=(2, 1))

    def sig(z):
        return 1 / (1 + np.exp(-z))

    def cost(W2):
        return 0.5 * np.sum((sig(W2 @ sig(W1 @ x + b1) + b2) - y) ** 2)

    a1 = sig(W1 @ x + b1)
    a2 = sig(W2 @ a1 + b2)
    delta = (a2 - y) * a2 * (1 - a2)

    def holds(value) -> bool:
        got = {"W2": np.asarray(value)}
        return finite_difference_labels({"W2": W2.copy()}, lambda P: (cost(P["W2"]), {}), got)["W2"]

    return delta, a1, holds


@pytest.mark.parametrize(
    ("claim", "numpy_value"),
    [
        ("dL/dW2 = np.outer(delta, a1)", lambda d, a: np.outer(d, a)),
        ("dL/dW2 = np.outer(a1, delta)", lambda d, a: np.outer(a, d)),
        (
            "dL/dW2 = delta.reshape(-1, 1) @ a1.reshape(1, -1)",
            lambda d, a: d.reshape(-1, 1) @ a.reshape(1, -1),
        ),
        (
            "dL/dW2 = np.outer(delta.reshape(-1), a1.reshape(n1))",
            lambda d, a: np.outer(d.reshape(-1), a.reshape(4)),
        ),
        ("dL/dW2 = delta.reshape(n2) @ a1.T", lambda d, a: d.reshape(2) @ a.T),
    ],
)
def test_outer_and_reshape_in_claims(claim, numpy_value):
    delta, a1, holds = _nielsen_truth()
    try:
        value = numpy_value(delta, a1)
        right = holds(value) if value.shape == (2, 4) else False
    except ValueError:  # NumPy cannot compute it: ill-formed
        right = False
    net = _net("nielsen.nn")
    text = "delta = (a2 - y) * a2 * (1 - a2); " + claim.replace("dL/", "dC/")
    result = verify(net, text)[-1]
    assert (result.verdict == "correct") == right, (claim, result.verdict, result.reason)


def test_the_attention_benchmark_function_is_right():
    """benchmarks/verify_speed.py requires every line of it judged right: the truth, by
    central differences of its forward pass (benchmarks/specs/attention_bn.nn in NumPy)."""
    from tests.backward.attention import attention_bn_backward

    x, y = RNG.normal(size=(4, 3)), RNG.normal(size=(4, 2))
    P = {"Wq": RNG.normal(size=(3, 5)), "Wk": RNG.normal(size=(3, 5))}
    P |= {"Wv": RNG.normal(size=(3, 2)), "gamma": RNG.normal(size=2)}
    P |= {"beta": RNG.normal(size=2), "Wo": RNG.normal(size=(2, 2))}

    def forward(P):
        q, k, v = x @ P["Wq"], x @ P["Wk"], x @ P["Wv"]
        e = np.exp(q @ k.T / 2)
        esum = e.sum(1, keepdims=True)
        a = e / esum
        oc = a @ v - (a @ v).mean(0)
        bvar = (oc**2).mean(0)
        inv = (bvar + 1e-5) ** -0.5
        on = oc * inv
        h = np.tanh(P["gamma"] * on + P["beta"])
        diff = h @ P["Wo"] - y
        values = dict(q=q, k=k, v=v, e=e, esum=esum, a=a, oc=oc, bvar=bvar, inv=inv, on=on)
        return np.sum(diff**2) / 4, values | dict(h=h, diff=diff)

    args = {k: P[k] for k in ("Wq", "Wk", "Wv", "gamma", "Wo")}
    grads = attention_bn_backward(x, y, **args, **forward(P)[1])
    got = dict(zip(("Wq", "Wk", "Wv", "gamma", "beta", "Wo"), grads, strict=True))
    assert all(finite_difference_labels(P, forward, got).values())
