"""Verdict times of `derive verify`: every seed claims file, the README's claims, and the
backward functions of tests/backward/styles.py (batch norm included).  From the repository
root:

    python -m benchmarks.verify_speed [--quick]
"""

from __future__ import annotations

import inspect
import sys
import time
from functools import partial
from pathlib import Path

import derive
from derive.verify import verify_all
from derive.verify.function import verify_function
from tests.backward import styles

CLAIMS = Path(derive.__file__).parent / "claims"
SPECS = Path(__file__).parent.parent / "tests" / "specs"
FUNCTIONS = [
    ("ng.nn", "ng_backward_wrong_point", {}),
    ("cs231n.nn", "cs231n_backward_reg", {}),
    ("karpathy.nn", "karpathy_backward", {}),
    ("karpathy.nn", "karpathy_backward_bessel", {}),
    ("nielsen.nn", "backprop", {"weights": ["W1", "W2"], "biases": ["b1", "b2"]}),
    ("nnfs.nn", "nnfs_backward_sign", {"weights1": ["W1"], "weights2": ["W2"]}),
]


def timed(label: str, fn) -> float:
    start = time.perf_counter()
    fn()
    seconds = time.perf_counter() - start
    print(f"{seconds:6.2f} s  {label}")
    return seconds


def main(quick: bool = False) -> None:
    worst = 0.0
    files = sorted(CLAIMS.glob("*.claims"))[: 2 if quick else None]
    for path in files:
        text = path.read_text()
        spec = text.splitlines()[0].split(":", 1)[1].strip()
        spec = CLAIMS / spec if (CLAIMS / spec).exists() else spec
        net = derive.load_network(spec)
        worst = max(worst, timed(path.name, partial(verify_all, net, text, str(path))))
    source = inspect.getsource(styles)
    for spec, name, maps in FUNCTIONS[: 1 if quick else None]:
        net = derive.load_network(SPECS / spec)
        worst = max(worst, timed(name, partial(verify_function, net, source, "s", name, maps)))
    print(f"slowest: {worst:.2f} s")


if __name__ == "__main__":
    main("--quick" in sys.argv)
