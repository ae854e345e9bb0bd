"""Test helpers: run the NumPy expressions `derive grad --format json` prints.

Executing them is the point: the JSON promises expressions that evaluate
with only np, the arrays, dims and earlier steps in scope.  Tests compare
the results with independent truth (hand-written references, finite
differences of a loss written in the test itself).
"""

from __future__ import annotations

import json

import numpy as np

from derive import load_network
from derive.derivation import derive
from derive.report import as_json


def derived_json(source) -> dict:
    return json.loads(as_json(derive(load_network(source))))


def run_json(doc: dict, values: dict, functions: dict | None = None) -> dict:
    """Evaluate forward, steps and gradients of a JSON derivation on arrays."""
    env = {"np": np, **values, **(functions or {})}
    for line in doc["forward"]:
        env[line["name"]] = eval(line["numpy"], env)  # noqa: S307 - our own generated code
    for line in doc["steps"]:
        env[line["name"]] = eval(line["numpy"], env)  # noqa: S307
    grads = {}
    for param, line in doc["gradients"].items():
        grads[param] = np.asarray(eval(line["numpy"], env), dtype=float)  # noqa: S307
    return {"env": env, "grads": grads}


def finite_differences(loss, params: dict, h: float = 1e-6) -> dict:
    """Central differences of ``loss()`` w.r.t. every entry of every param (in place)."""
    out = {}
    for name, p in params.items():
        g = np.zeros_like(p, dtype=float)
        for idx in np.ndindex(p.shape):
            old = p[idx]
            step = h * max(1.0, abs(old))
            p[idx] = old + step
            up = loss()
            p[idx] = old - step
            down = loss()
            p[idx] = old
            g[idx] = (up - down) / (2 * step)
        out[name] = g
    return out


def rel_error(a, b) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a), np.linalg.norm(b), 1e-12))
