"""The proof-speed benchmark runs (its quick mode), so it cannot rot.  No timing is asserted."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_proof_speed_benchmark_quick_mode_runs():
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.proof_speed", "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    rows = [line for line in out.stdout.splitlines() if line.startswith("| ")]
    assert rows[0].startswith("| network |") and len(rows) == 3  # header, seed000, MLP
    assert "seed000" in rows[1] and "MLP depth 2" in rows[2]
