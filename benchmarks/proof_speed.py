"""Proof speed: ``derive grad --check`` (derivation + the three proofs) on real networks.

For the seed networks, every bundled spec, the specs under
``benchmarks/specs/`` (attention head, batchnorm MLP with an embedding,
unrolled RNN, literal widths) and sigmoid MLPs of depth 5, 10 and 20, times
in-process, side by side: the derivation, the symbolic, exact and numeric
proofs, and the total against its target (3 s for the seed networks, 10 s
for the others).  Prints a Markdown table for the README.

Run: ``python -m benchmarks.proof_speed`` (``--quick``: two small networks,
what the test suite runs so this script cannot rot).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import derive
from derive import check

HERE = Path(__file__).resolve().parent

SEEDS = ["seed000", "seed002", "seed003", "seed004"]


def mlp(depth: int) -> str:
    """A depth-``depth`` sigmoid MLP with biases and softmax cross-entropy."""
    lines = ["input x[B, n0]", f"target t[B, n{depth}] onehot"]
    lines.append(
        "param " + ", ".join(f"W{i + 1}[n{i}, n{i + 1}], b{i + 1}[n{i + 1}]" for i in range(depth))
    )
    h = "x"
    for i in range(depth):
        lines.append(f"z{i + 1} = {h} @ W{i + 1} + b{i + 1}")
        if i < depth - 1:
            lines.append(f"h{i + 1} = sigmoid(z{i + 1})")
            h = f"h{i + 1}"
    lines += [f"p = softmax(z{depth})", "L = -sum(t * log(p)) / B"]
    return "\n".join(lines) + "\n"


def workloads(quick: bool) -> list[tuple[str, str, float]]:
    """(name, spec source or bundled name, target seconds)."""
    if quick:
        return [("seed000", "seed000", 3.0), ("MLP depth 2", mlp(2), 10.0)]
    out = [(name, name, 3.0) for name in SEEDS]
    out += [(name, name, 10.0) for name in derive.bundled() if name not in SEEDS]
    for path in sorted((HERE / "specs").glob("*.nn")):
        out.append((path.stem + ".nn", str(path), 10.0))
    out += [(f"MLP depth {n}", mlp(n), 10.0) for n in (5, 10, 20)]
    return out


def measure(source: str) -> dict[str, float]:
    start = time.perf_counter()
    d = derive.load(source)
    row = {"derive": time.perf_counter() - start}
    stand_in = check.proof_network(d)
    proofs = [
        check.symbolic(d, stand_in),
        check.exact(d, stand_in=stand_in),
        check.numeric(d, stand_in=stand_in),
    ]
    for p in proofs:
        row[p.name.split(" ")[0]] = p.seconds
        if not p.passed:
            raise SystemExit(f"{source}: the {p.name} proof failed: {p.details}")
    row["total"] = time.perf_counter() - start
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="two small networks only")
    args = ap.parse_args(argv)
    print("| network | derive | symbolic | exact | numeric | `--check` total | target |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, source, target in workloads(args.quick):
        row = measure(source)
        ok = "✓" if row["total"] < target else "✗"
        cells = " | ".join(
            f"{row[k]:.2f} s" for k in ("derive", "symbolic", "exact", "numeric", "total")
        )
        print(f"| {name} | {cells} | < {target:.0f} s {ok} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
