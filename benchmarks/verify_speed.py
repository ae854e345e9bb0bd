"""Verdict times of `derive verify`: every seed claims file, the README's claims, the
backward functions of tests/backward/styles.py (batch norm included), the label functions of
tests/backward/labels.py and a 20-equation attention + batch-norm backward function
(tests/backward/attention.py on benchmarks/specs/attention_bn.nn).  The right functions must
be judged right (the script exits 1 otherwise).  From the repository root:

    python -m benchmarks.verify_speed [--quick]
"""

from __future__ import annotations

import inspect
import sys
import time
from functools import partial
from pathlib import Path
from typing import cast

import derive
from derive.verify import verify_all
from derive.verify.function import verify_function
from tests.backward import attention, labels, styles

CLAIMS = Path(derive.__file__).parent / "claims"
SPECS = Path(__file__).parent.parent / "tests" / "specs"
BENCH_SPECS = Path(__file__).parent / "specs"
# (spec, module, function, --map, whether every line is right)
ATTENTION = (BENCH_SPECS / "attention_bn.nn", attention, "attention_bn_backward", {}, True)
LABELS = [
    (SPECS / "verify/softmax_linear.nn", labels, "softmax_loss_vectorized", {}, True),
    (SPECS / "verify/svm_linear.nn", labels, "svm_loss_vectorized", {}, True),
    (SPECS / "verify/karpathy_ce.nn", labels, "karpathy_ce_backward", {}, True),
]
FUNCTIONS = [
    (SPECS / "ng.nn", styles, "ng_backward_wrong_point", {}, False),
    (SPECS / "cs231n.nn", styles, "cs231n_backward_reg", {}, False),
    (SPECS / "karpathy.nn", styles, "karpathy_backward", {}, True),
    (SPECS / "karpathy.nn", styles, "karpathy_backward_bessel", {}, False),
    (
        SPECS / "nielsen.nn",
        styles,
        "backprop",
        {"weights": ["W1", "W2"], "biases": ["b1", "b2"]},
        True,
    ),
    (
        SPECS / "nnfs.nn",
        styles,
        "nnfs_backward_sign",
        {"weights1": ["W1"], "weights2": ["W2"]},
        False,
    ),
    *LABELS,
    ATTENTION,
]


def timed(label: str, fn) -> tuple[float, object]:
    """Seconds of one call of ``fn`` (printed), and its value."""
    start = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - start
    print(f"{seconds:6.2f} s  {label}")
    return seconds, out


def main(quick: bool = False) -> None:
    worst = 0.0
    files = sorted(CLAIMS.glob("*.claims"))[: 2 if quick else None]
    for path in files:
        text = path.read_text()
        spec = text.splitlines()[0].split(":", 1)[1].strip()
        spec = CLAIMS / spec if (CLAIMS / spec).exists() else spec
        net = derive.load_network(spec)
        worst = max(worst, timed(path.name, partial(verify_all, net, text, str(path)))[0])
    for spec, module, name, maps, right in [FUNCTIONS[0], ATTENTION] if quick else FUNCTIONS:
        net = derive.load_network(spec)
        source = inspect.getsource(module)
        seconds, results = timed(
            name, partial(verify_function, net, source, module.__name__, name, maps)
        )
        worst = max(worst, seconds)
        if right != all(r.verdict == "correct" for r in cast(list, results)):
            raise SystemExit(f"{name}: expected {'right' if right else 'a wrong line'}")
    print(f"slowest: {worst:.2f} s")


if __name__ == "__main__":
    main("--quick" in sys.argv)
