"""The targets benchmark's ``--quick`` mode runs (so it cannot rot); no timings are checked.

It generates every target for xor, checks one step of every contender against
the NumPy target's step (exit status 1 on a mismatch) and prints the table.
"""

from __future__ import annotations

import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def test_quick_run_checks_every_contender_and_prints_the_table(capsys, monkeypatch):
    from benchmarks import targets_speed

    limit = sys.getrecursionlimit()
    try:
        status = targets_speed.main(["--quick", "--only", "xor", "--rounds", "1"])
    finally:  # importing PyTensor raises the recursion limit for the whole process
        sys.setrecursionlimit(limit)
    out = capsys.readouterr().out
    assert status == 0, out
    header = next(line for line in out.splitlines() if line.startswith("| network"))
    for name in ("numpy", "numba", "torch (derived)", "torch autograd", "jax (derived)"):
        assert f"{name} µs" in header
    assert "| xor (float64) |" in out
    assert "unavailable" not in out and "differs" not in out
    sys.modules.pop("benchmarks.targets_speed", None)
