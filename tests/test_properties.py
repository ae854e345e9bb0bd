"""Random networks, derived and checked against finite differences of their own loss.

Hypothesis draws depth 1–5, an activation per layer from the registry (or a
generic function), biases or none, row-major or column-vector layout, a
weight shared between two square layers, and a loss (squared error, half or
mean squared error, softmax cross-entropy, sigmoid with binary
cross-entropy, optionally with an L2 penalty).  The test writes the spec
text and, independently, the same network as plain NumPy; the gradients from
`derive grad --format json` must match central differences of the latter.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st

from derive.rules import RULES, activations
from tests.helpers import derived_json, finite_differences, rel_error, run_json

ACTS = [a for a in activations() if a not in ("log", "exp", "sqrt")] + ["exp", "generic", "none"]
LOSSES = ["sse", "half_sse", "mse", "softmax_ce", "bce"]


def np_act(name: str, params=()):
    rule = RULES[name]
    return lambda z: rule.np_impl(z, *params)


@st.composite
def networks(draw):
    depth = draw(st.integers(1, 5))
    layout = draw(st.sampled_from(["row", "col"]))
    acts = [draw(st.sampled_from(ACTS)) for _ in range(depth - 1)]
    bias = [draw(st.booleans()) for _ in range(depth)]
    loss = draw(st.sampled_from(LOSSES))
    penalty = draw(st.booleans())
    widths = [draw(st.integers(2, 4)) for _ in range(depth + 1)]
    share = None
    if depth >= 3 and draw(st.booleans()):
        share = draw(st.integers(1, depth - 2))  # layer `share` reuses the weight of share-1
    return depth, layout, acts, bias, loss, penalty, widths, share


def build(depth, layout, acts, bias, loss, penalty, widths, share):
    """Spec text, dims, a NumPy loss(params, data) and the function bindings."""
    B = 3
    dn = [f"n{i}" for i in range(depth + 1)]  # the dimension name of each layer width
    names = [f"W{i + 1}" for i in range(depth)]
    if share is not None:  # a square weight used by two layers: their widths are one dim
        names[share] = names[share - 1]
        dn[share] = dn[share + 1] = dn[share - 1]
    dims = {"B": B, **{d: w for d, w in zip(dn, widths, strict=True)}}
    lines, funcs, decl, np_funcs = [], [], {}, {}
    row = layout == "row"
    x_shape = "[B, n0]" if row else "[n0, B]"
    t_dim = dn[depth]
    onehot = loss == "softmax_ce"
    t_shape = f"[B, {t_dim}]" if row else f"[{t_dim}, B]"
    x_shape = x_shape.replace("n0", dn[0])
    lines.append(f"input x{x_shape}")
    lines.append(
        f"target t{t_shape}"
        + (" onehot" if onehot and row else " onehot(axis=0)" if onehot else "")
    )
    for i in range(depth):
        w = names[i]
        if w not in decl:
            decl[w] = f"[{dn[i]}, {dn[i + 1]}]" if row else f"[{dn[i + 1]}, {dn[i]}]"
        if bias[i]:
            decl[f"b{i + 1}"] = f"[{dn[i + 1]}]" if row else f"[{dn[i + 1]}, 1]"
    lines.append("param " + ", ".join(f"{k}{v}" for k, v in decl.items()))
    if penalty:
        lines.append("const lam = 0.01")
    h = "x"
    steps = []
    for i in range(depth):
        z = f"z{i + 1}"
        prod = f"{h} @ {names[i]}" if row else f"{names[i]} @ {h}"
        lines.append(f"{z} = {prod}" + (f" + b{i + 1}" if bias[i] else ""))
        steps.append(("lin", z, h, names[i], bias[i] and f"b{i + 1}"))
        if i < depth - 1:
            act = acts[i]
            if act == "none":
                h = z
                continue
            a = f"h{i + 1}"
            if act == "generic":
                f = f"f{i + 1}"
                funcs.append(f)
                lines.append(f"{a} = {f}({z})")
                np_funcs[f], np_funcs[f + "_prime"] = np.sin, np.cos
                steps.append(("act", a, z, np.sin))
            else:
                lines.append(f"{a} = {act}({z})")
                steps.append(("act", a, z, np_act(act, [d for _, d in RULES[act].params])))
            h = a
    out = f"z{depth}"
    axis = 1 if row else 0
    if loss == "sse":
        lines.append(f"L = sum(({out} - t)**2)")
    elif loss == "half_sse":
        lines.append(f"L = 0.5 * sum(({out} - t)**2)")
    elif loss == "mse":
        lines.append(f"L = mean(({out} - t)**2)")
    elif loss == "softmax_ce":
        lines.append(f"p = softmax({out}, axis={axis})")
        lines.append("L = -sum(t * log(p)) / B")
    else:
        lines.append(f"p = sigmoid({out})")
        lines.append("L = -mean(t * log(p) + (1 - t) * log(1 - p))")
    if penalty:
        lines[-1] += " + lam * (" + " + ".join(f"sum({w}**2)" for w in dict.fromkeys(names)) + ")"
    if funcs:
        lines.insert(0, "func " + ", ".join(funcs))

    def np_loss(params, data):
        env = {**params, **data}
        for st_ in steps:
            if st_[0] == "lin":
                _, z, hh, w, b = st_
                env[z] = env[hh] @ env[w] if row else env[w] @ env[hh]
                if b:
                    env[z] = env[z] + env[b]
            else:
                _, a, z, fn = st_
                env[a] = fn(env[z])
        zz = env[out]
        t = data["t"]
        if loss == "sse":
            value = np.sum((zz - t) ** 2)
        elif loss == "half_sse":
            value = 0.5 * np.sum((zz - t) ** 2)
        elif loss == "mse":
            value = np.mean((zz - t) ** 2)
        elif loss == "softmax_ce":
            m = zz.max(axis=axis, keepdims=True)
            logp = zz - m - np.log(np.exp(zz - m).sum(axis=axis, keepdims=True))
            value = -np.sum(t * logp) / B
        else:  # log σ(z) = −log(1 + e^−z) and log(1 − σ(z)) = −log(1 + e^z), both exact
            # to rounding: log(1 − p) with p rounded loses digits as p nears 1
            log_p, log_1mp = -np.logaddexp(0, -zz), -np.logaddexp(0, zz)
            value = -np.mean(t * log_p + (1 - t) * log_1mp)
        if penalty:
            value += 0.01 * sum(np.sum(params[w] ** 2) for w in dict.fromkeys(names))
        return value

    return "\n".join(lines) + "\n", dims, np_loss, np_funcs, decl, onehot, row, dn


# No shrinking: a failure is reported as drawn (with its spec text in the message) instead
# of minutes of re-deriving smaller networks; the deadline bounds any one example.
@settings(
    max_examples=30,
    deadline=timedelta(seconds=60),
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow],
)
@given(networks(), st.integers(0, 2**32 - 1))
def test_random_network_gradients_match_finite_differences(net, seed):
    text, dims, np_loss, np_funcs, decl, onehot, row, dn = build(*net)
    rng = np.random.default_rng(seed)

    def shape(s):
        return tuple(
            dims[d.strip()] if not d.strip().isdigit() else int(d) for d in s.strip("[]").split(",")
        )

    params = {k: rng.normal(size=shape(v)) * 0.6 for k, v in decl.items()}
    n_in, n_out = dims[dn[0]], dims[dn[-1]]
    x_shape = (dims["B"], n_in) if row else (n_in, dims["B"])
    t_shape = (dims["B"], n_out) if row else (n_out, dims["B"])
    if onehot:
        hot = np.eye(t_shape[1] if row else t_shape[0])[
            rng.integers(0, 10, dims["B"]) % (t_shape[1] if row else t_shape[0])
        ]
        t = hot if row else hot.T
    else:
        t = rng.uniform(0.1, 0.9, size=t_shape)
    data = {"x": rng.normal(size=x_shape), "t": t, "lam": 0.01}
    value = np_loss(params, data)
    assume(np.isfinite(value) and abs(value) < 1e6)  # exp of exp can overflow: not our subject
    doc = derived_json(text)
    got = run_json(doc, {**data, **params, **dims}, np_funcs)["grads"]
    want = finite_differences(lambda: np_loss(params, data), params)
    for p in params:
        assert got[p].shape == params[p].shape, (text, p)
        assert rel_error(got[p], want[p]) < 1e-5, (text, p, rel_error(got[p], want[p]))
