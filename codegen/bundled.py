"""The modules in generated/: one per bundled spec, with the bindings used for generic ones.

``python -m codegen.bundled`` regenerates them; a test fails when a committed
module differs from what the generator makes now.
"""

from __future__ import annotations

from pathlib import Path

import derive

from . import generate, write_atomic

# generic functions get the activation their seed trains with
BINDINGS = {
    "seed000_generic": {"f": "relu"},
    "seed003": {"f1": "sigmoid", "f2": "sigmoid", "f3": "sigmoid"},
}
OUT = Path(__file__).resolve().parent.parent / "generated"


def modules() -> dict[str, str]:
    """Module file name -> source, for every bundled spec."""
    return {f"{name}.py": generate(name, bind=BINDINGS.get(name)) for name in derive.bundled()}


def main() -> None:
    """Regenerate ``generated/`` from the bundled specs."""
    OUT.mkdir(exist_ok=True)
    for filename, source in modules().items():
        write_atomic(OUT / filename, source)
        print(f"wrote generated/{filename}")


if __name__ == "__main__":
    main()
