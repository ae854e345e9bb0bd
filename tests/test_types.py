"""mypy reports no error on derive/ and codegen/ (configured in pyproject.toml)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent


def test_mypy_is_clean():
    run = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-error-summary"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    errors = [line for line in run.stdout.splitlines() if ": error:" in line]
    assert not errors, f"{len(errors)} mypy errors:\n" + "\n".join(errors)
    assert run.returncode == 0, run.stdout + run.stderr
