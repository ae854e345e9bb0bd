"""Derivation speed: seed000, and L-layer MLPs for L = 1..20 with symbolic and literal widths.

Times parsing + reverse sweep + matrix recovery in-process (the proofs are
not included), median of ``--repeat`` runs, and prints Markdown tables for the
README.  Run: ``python -m benchmarks.derivation_speed``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import derive


def mlp(depth: int, width: str | int) -> str:
    """An L-layer sigmoid MLP with biases and softmax cross-entropy."""
    dims = [f"n{i}" if width == "symbolic" else str(width) for i in range(depth + 1)]
    lines = [f"input x[B, {dims[0]}]", f"target t[B, {dims[-1]}] onehot"]
    lines.append(
        "param "
        + ", ".join(
            f"W{i + 1}[{dims[i]}, {dims[i + 1]}], b{i + 1}[{dims[i + 1]}]" for i in range(depth)
        )
    )
    h = "x"
    for i in range(depth):
        lines.append(f"z{i + 1} = {h} @ W{i + 1} + b{i + 1}")
        if i < depth - 1:
            lines.append(f"h{i + 1} = sigmoid(z{i + 1})")
            h = f"h{i + 1}"
    lines += [f"p = softmax(z{depth})", "L = -sum(t * log(p)) / B"]
    return "\n".join(lines) + "\n"


def timed(source, repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        derive.load(source)
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def main(argv=None) -> int:
    """Print the two tables; ``--quick``: one run of seed000 and depths 1, 2."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--depths", default="1,2,3,5,8,12,16,20")
    ap.add_argument("--quick", action="store_true", help="one run, small depths: a smoke run")
    args = ap.parse_args(argv)
    if args.quick:
        args.repeat, args.depths = 1, "1,2"
    derive.load("seed000")  # warm-up: imports and SymPy caches

    print("| spec | derivation + recovery (median) |\n|---|---|")
    for name in ["seed000"] if args.quick else derive.bundled():
        print(f"| {name} | {timed(name, args.repeat) * 1000:.0f} ms |")

    depths = [int(d) for d in args.depths.split(",")]
    print("\n| layers L | symbolic widths | widths 8 | widths 1024 | per layer (symbolic) |")
    print("|---|---|---|---|---|")
    for depth in depths:
        t_sym = timed(mlp(depth, "symbolic"), args.repeat)
        t_8 = timed(mlp(depth, 8), args.repeat)
        t_1024 = timed(mlp(depth, 1024), args.repeat)
        print(
            f"| {depth} | {t_sym * 1000:.0f} ms | {t_8 * 1000:.0f} ms | "
            f"{t_1024 * 1000:.0f} ms | {t_sym / depth * 1000:.0f} ms |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
