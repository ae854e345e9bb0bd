"""Every benchmark script runs in its ``--quick`` mode, so none can rot unnoticed.

Each runs as ``python -m benchmarks.NAME --quick`` from the repository root,
the way benchmarks/__init__.py documents; a script whose own checks fail
(a contender disagreeing with the careful step, say) exits non-zero here.
No timing is asserted.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
# targets_speed's quick mode runs in tests/test_targets_bench.py, in-process, with every
# contender checked against the NumPy target's step; a second run in a fresh
# interpreter here would only pay the torch, JAX, PyTensor and Numba start-up again
IN_PROCESS = {"targets_speed"}
SCRIPTS = sorted(
    p.stem
    for p in (ROOT / "benchmarks").glob("*.py")
    if p.stem not in ("__init__", "harness", *IN_PROCESS)
    and "def main(" in p.read_text(encoding="utf-8")
)


def test_every_script_is_listed():
    assert {"careful", "derivation_speed", "frameworks", "step_speed"} <= set(SCRIPTS)


@pytest.mark.parametrize("name", SCRIPTS)
def test_benchmark_runs_quick(name):
    run = subprocess.run(
        [sys.executable, "-m", f"benchmarks.{name}", "--quick"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert run.returncode == 0, (run.stdout[-2000:], run.stderr[-2000:])
    assert run.stdout.strip(), "a benchmark prints its results"


def test_no_benchmark_edits_sys_path():
    for path in (ROOT / "benchmarks").glob("*.py"):
        assert "sys.path" not in path.read_text(encoding="utf-8"), path.name
