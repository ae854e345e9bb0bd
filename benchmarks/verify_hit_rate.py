"""Hit rate of ``derive verify`` on whole backward functions written the way courses and
books write them (tests/backward: Ng's course, cs231n's two-layer net, affine, softmax, SVM
and batch-norm backward passes, Karpathy's backprop ninja, Nielsen's ``backprop``, nnfs),
right and with the usual mistakes; counted apart, the held-out ones of
tests/test_verify_heldout.py (written after the rest, to see what the verifier had missed).

A function is a hit when the verdict on every gradient it returns agrees with central
differences of its forward pass (written in the tests, run for real on our own functions)
and the first wrong line reported is the line marked ``# mistake`` (none for a right
function).  For the wrong functions, the share whose first wrong line gets a named
diagnosis is printed too.  From the repository root:

    python -m benchmarks.verify_hit_rate [--quick]
"""

from __future__ import annotations

import inspect
import sys
import time
from pathlib import Path

import derive
from derive.verify.function import verify_function
from tests import test_verify_code as code
from tests import test_verify_heldout as heldout
from tests import test_verify_labels as labelled
from tests.backward import labels, styles

SPECS = Path(__file__).parent.parent / "tests" / "specs"


def cases(held_out: bool = False):
    """(name, spec, params, forward, call, --map, the function, its module's source)."""
    if held_out:
        for case, name in heldout.CASES:
            spec, P, forward, call, maps = case()
            yield name, spec, P, forward, call, maps, heldout.function(name), heldout.SOURCE
        return
    for case, name in code.CASES:
        spec, P, forward, call, maps = case()
        yield name, spec, P, forward, call, maps, code._function(name), inspect.getsource(styles)
    for case, name in labelled.FUNCTIONS:
        spec, P, forward, call = case()
        yield name, spec, P, forward, call, {}, getattr(labels, name), inspect.getsource(labels)


def first_marked(fn) -> int | None:
    lines, start = inspect.getsourcelines(fn)
    return next((n for n, text in enumerate(lines, start=start) if "# mistake" in text), None)


def judge(name, spec, P, forward, call, maps, fn, source) -> tuple[bool, bool | None]:
    """(a hit, whether a wrong function's first wrong line is named; None when right)."""
    truth = code.finite_difference_labels(P, forward, call(fn, P))
    net = derive.load_network(SPECS / spec)
    results = verify_function(net, source, "backward.py", name, maps)
    hit = True
    for param, right in truth.items():
        mine = [r for r in results if r.normalized.endswith(f"∂{net.loss}/∂{param}")]
        hit = hit and bool(mine) and (mine[-1].verdict == "correct") == right
    first = next((r for r in results if r.verdict != "correct"), None)
    hit = hit and (first.line if first else None) == first_marked(fn)
    return hit, (None if first is None else bool(first.diagnosis))


def main(quick: bool = False) -> None:
    for label, held_out in (("written with the verifier", False), ("held out", True)):
        hits = total = wrong = named = 0
        for case in list(cases(held_out))[: 1 if quick else None]:
            start = time.perf_counter()
            hit, diagnosed = judge(*case)
            seconds = time.perf_counter() - start
            total += 1
            hits += hit
            if diagnosed is not None:
                wrong += 1
                named += diagnosed
            print(f"{'hit ' if hit else 'MISS'}  {seconds:5.2f} s  {case[0]}")
        print(f"{label}: {hits}/{total} functions judged right ({100 * hits / total:.0f}%)")
        if wrong:
            print(
                f"  named diagnoses: {named}/{wrong} wrong functions ({100 * named / wrong:.0f}%)"
            )


if __name__ == "__main__":
    main("--quick" in sys.argv)
