"""The share of rejected mutants that get a named diagnosis, and verdict times.

Mutants: every single-point mutant of tests/test_mutations.py (drop or add a transpose, swap
a product, ⊙ ↔ @, drop a derivative factor, flip a sign, change a constant, the wrong
layer's derivative).  Run from the repository root:

    python -m benchmarks.verify_diagnoses [--quick]
"""

from __future__ import annotations

import re
import sys
import time
from collections import Counter

from derive.errors import SpecError
from derive.verify import verify
from tests.test_mutations import CORRECT, mutants_of


def main(quick: bool = False) -> None:
    rejected = named = 0
    kinds: Counter = Counter()
    missing: Counter = Counter()
    slowest = 0.0
    every = [m for spec, claim in CORRECT for m in mutants_of(spec, claim)]
    for n, (net, kind, statements) in enumerate(every):
        if quick and n % 10:
            continue
        claim = "; ".join(f"{h} = {c}" for h, c in statements)
        claim = re.sub(r"_d_(\w+)\(", r"\1'(", claim)
        start = time.perf_counter()
        try:
            result = verify(net, claim)[-1]
        except SpecError:
            continue
        slowest = max(slowest, time.perf_counter() - start)
        if result.verdict == "correct":
            continue
        rejected += 1
        if result.diagnosis or result.verdict == "ill-formed":
            named += 1  # an ill-formed verdict names the clash (both shapes)
            kinds[(result.diagnosis or "ill-formed: " + result.reason).split(":")[0]] += 1
        else:
            missing[kind] += 1
    print(f"rejected mutants: {rejected}; with a named diagnosis: {named} ({named / rejected:.0%})")
    print(f"slowest verdict: {slowest:.1f} s")
    for k, v in kinds.most_common():
        print(f"  {v:4d}  {k}")
    print("without a diagnosis, by mutation:", dict(missing))


if __name__ == "__main__":
    main("--quick" in sys.argv)
