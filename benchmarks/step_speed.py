"""Training-step speed: generated NumPy modules against careful hand-written NumPy.

For every workload in :data:`careful.WORKLOADS` (specs in ``benchmarks/specs``)
this generates the training module with ``codegen.generate``, imports it, and
times one full training step (forward, loss, backward, SGD update) of

* generated:  ``mod.sgd_step(params, mod.gradients(params, data), lr)``;
* generated (fused):  ``mod.bind_step(params, data)(lr)`` (the arrays and buffers
  bound once, as the careful classes do in their constructors), else
  ``mod.train_step(params, data, lr, ws)``, if the module has one;
* careful:  the hand-written in-place step of ``careful.py``;
* GEMM floor:  only the matrix products of one step, each as
  ``np.matmul(a, b, out=c)`` with the step's shapes and transposed views
  (per layer x W, xᵀ δ and δ Wᵀ, without the first layer's input gradient).

Data are seeded random arrays (one-hot targets where the spec says so);
params come from the generated ``init_params`` and every contender gets its
own copy, reset at the start of every round.  Each round times every
contender for the same number of steps after a warm-up, alternating between
the contenders every 20 steps (the order rotates between rounds); a
contender's time is the median over the rounds of the per-round median step
time, and a ratio is the median over the rounds of the per-round ratio.  The
CPU time other processes (and the hypervisor) took during each round is
reported, with a warning when it was large: two-thread BLAS slows down
several-fold when another process holds one of two cores.  Minor page
faults per step come from ``getrusage``.  Before timing, one step of each
contender is checked against the careful step.

Run from the repository root::

    python -m benchmarks.step_speed              # default threads (all cores)
    python -m benchmarks.step_speed --threads 1  # re-runs itself with one BLAS thread
    python -m benchmarks.step_speed --quick --only wide --alloc
"""

from __future__ import annotations

import argparse
import linecache
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import tracemalloc
from collections import defaultdict
from pathlib import Path

import numpy as np

from benchmarks.careful import WORKLOADS, Workload
from benchmarks.harness import (
    ROOT,
    SMALLEST,
    THREAD_VARS,
    Contender,
    CpuSnapshot,
    blas_name,
    careful_step,
    check_against,
    check_finite,
    copy_params,
    describe,
    dims_for,
    fmt_us,
    fused_step,
    generated_step,
    load_generated,
    ratio,
    run_round,
    step_count,
)

CHILD_MARK = "STEP_SPEED_THREADS"


def gemm_products(w: Workload, rng):
    """(a, b, out) for every matrix product of one step, laid out as in the step."""
    dtype, B = w.dtype, w.batch
    products = []
    for i, (n_in, n_out) in enumerate(w.layers):
        a = rng.standard_normal((B, n_in)).astype(dtype)  # the layer's input
        W = rng.standard_normal((n_in, n_out)).astype(dtype)
        delta = rng.standard_normal((B, n_out)).astype(dtype)
        products.append((a, W, np.empty((B, n_out), dtype)))  # forward: a W
        products.append((a.T, delta, np.empty((n_in, n_out), dtype)))  # gradient: aᵀ δ
        if i > 0:
            products.append((delta, W.T, np.empty((B, n_in), dtype)))  # input delta: δ Wᵀ
    return products


def gemm_flops(w: Workload) -> int:
    """FLOPs of those products: 6 B Σ n_in n_out minus 2 B n_in n_h1 (no input gradient)."""
    n_in, n_h1 = w.layers[0]
    return 6 * w.batch * sum(a * b for a, b in w.layers) - 2 * w.batch * n_in * n_h1


def gemm_step(products):
    def step():
        for a, b, out in products:
            np.matmul(a, b, out=out)

    return step


def allocation_profile(mod, step, top: int = 8):
    """The largest transient allocations per source line of the generated module.

    Runs ``step`` once under ``tracemalloc`` and a line tracer restricted to
    the module's top-level functions; for every line it records the peak of
    traced memory above what was in use when the line started (calls into
    the module's kernels count towards the calling line).
    """
    path = mod.__file__
    traced = {"forward", "gradients", "sgd_step", "train_step"}
    peaks: dict[tuple[str, int], int] = defaultdict(int)
    current = {"key": None, "base": 0}

    def settle(key):
        if current["key"] is not None:
            peak = tracemalloc.get_traced_memory()[1] - current["base"]
            peaks[current["key"]] = max(peaks[current["key"]], peak)
        tracemalloc.reset_peak()
        current["key"], current["base"] = key, tracemalloc.get_traced_memory()[0]

    def local(frame, event, arg):
        if event == "line":
            settle((frame.f_code.co_name, frame.f_lineno))
        elif event == "return":
            settle(None)
        return local

    def calls(frame, event, arg):
        code = frame.f_code
        return local if code.co_filename == path and code.co_name in traced else None

    step()  # warm-up outside the trace
    tracemalloc.start()
    sys.settrace(calls)
    try:
        step()
    finally:
        sys.settrace(None)
        tracemalloc.stop()
    ranked = sorted(peaks.items(), key=lambda item: -item[1])[:top]
    return [(fn, line, size, linecache.getline(path, line).strip()) for (fn, line), size in ranked]


def run_workload(w: Workload, directory: Path, args) -> dict:
    """Every contender's timings for one workload (and the problems found)."""
    data = w.make_data(seed=0)
    result = {"workload": w, "problems": [], "contenders": {}, "alloc": None}
    contenders = []
    try:
        mod = load_generated(w, directory)
    except Exception as exc:  # report the code generator's error as it is
        result["problems"].append(f"codegen failed on {w.spec.name}: {type(exc).__name__}: {exc}")
        mod = None
    if mod is not None:
        params = mod.init_params(dims_for(mod, w), seed=0)
        own = copy_params(params)
        contenders.append(Contender("generated", generated_step(mod, own, data, w.lr), own))
        if hasattr(mod, "train_step"):
            own = copy_params(params)
            try:
                step = fused_step(mod, own, data, w.lr)
                contenders.append(Contender("generated (fused)", step, own))
            except Exception as exc:
                result["problems"].append(f"train_step setup failed: {type(exc).__name__}: {exc}")
    else:
        params = w.make_params(seed=0)
    own = copy_params(params)
    careful = Contender("careful", careful_step(w, own, data, w.lr), own)
    gemm = Contender("GEMM floor", gemm_step(gemm_products(w, np.random.default_rng(1))))

    tol = 1e-9 if w.dtype == "float64" else 1e-5
    contenders = check_against(contenders, careful, tol, result["problems"]) + [careful, gemm]

    steps = step_count(careful, args.quick)
    warmup = 2 if args.quick else 5
    result["others"] = []  # per round: (cores used by other processes, cores stolen)
    for r in range(args.rounds):
        shift = r % len(contenders)
        before = CpuSnapshot.now()
        run_round(contenders[shift:] + contenders[:shift], steps, warmup)
        result["others"].append(CpuSnapshot.now().others_since(before))
    check_finite(contenders, result["problems"])
    result["steps"] = steps
    result["contenders"] = {c.name: c for c in contenders}
    if args.alloc and mod is not None:
        result["alloc"] = {}
        for name in ("generated", "generated (fused)"):
            if name in result["contenders"]:
                c = result["contenders"][name]
                c.reset()
                result["alloc"][name] = allocation_profile(mod, c.step)
    return result


def print_report(results, args) -> None:
    threads = os.environ.get("OPENBLAS_NUM_THREADS") or f"default ({os.cpu_count()} cores)"
    print(
        f"numpy {np.__version__} ({blas_name()}), Python {platform.python_version()}, "
        f"BLAS threads: {threads}, {args.rounds} rounds{' (quick)' if args.quick else ''}\n"
    )
    fused = any("generated (fused)" in r["contenders"] for r in results)
    head = ["workload", "generated µs"] + (["generated (fused) µs"] if fused else [])
    head += ["careful µs", "generated / careful"] + (["fused / careful"] if fused else [])
    head += [
        f"faults/step gen{' / fused' if fused else ''} / careful",
        "GEMM floor µs",
        "GEMM GFLOP/s",
        "fraction GEMM / generated",
    ]
    head += (["GEMM / fused"] if fused else []) + ["GEMM / careful"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in results:
        w, cs = r["workload"], r["contenders"]
        gen, fus = cs.get("generated"), cs.get("generated (fused)")
        car, gemm = cs["careful"], cs["GEMM floor"]
        timed = [gen, fus, car] if fused else [gen, car]
        row = [f"{w.name} ({describe(w)})"]
        row += [fmt_us(c.seconds) if c else "–" for c in timed]
        row += [ratio(gen, car)] + ([ratio(fus, car)] if fused else [])
        row += [" / ".join(f"{statistics.median(c.faults):.0f}" if c else "–" for c in timed)]
        row += [fmt_us(gemm.seconds), f"{gemm_flops(w) / gemm.seconds / 1e9:.1f}"]
        row += [ratio(gemm, c) for c in timed]
        print("| " + " | ".join(row) + " |")
    print(
        "\nTimes: median over rounds of each round's median step.  Ratios and fractions: "
        "median over rounds of the per-round ratio.  GEMM FLOPs are counted precisely: "
        "6·B·Σ n_in·n_out − 2·B·n_in·n_h1 (the first layer's input gradient is not "
        "computed); GEMM GFLOP/s = those FLOPs / GEMM floor time; fraction = GEMM floor "
        "time / step time = the fraction of the GEMM rate the step reaches."
    )
    print("\nPer-round medians (µs):")
    for r in results:
        rounds = "; ".join(
            f"{c.name} " + ", ".join(fmt_us(s) for s in c.rounds) for c in r["contenders"].values()
        )
        others = ", ".join(f"{x[0]:.2f}+{x[1]:.2f}" if x else "–" for x in r["others"])
        print(
            f"- {r['workload'].name} ({r['steps']} steps/round): {rounds}; "
            f"other processes + steal (cores): {others}"
        )
    busy = max((x[0] + x[1] for r in results for x in r["others"] if x), default=0.0)
    cores = os.cpu_count() or 1
    threads = int(os.environ.get("OPENBLAS_NUM_THREADS") or cores)
    if busy > max(cores - threads, 0) + 0.25:
        print(
            f"\n**Warning: other processes or the hypervisor used up to {busy:.2f} of "
            f"{cores} cores during some rounds while BLAS ran {threads} threads; those "
            "rounds are unreliable (the medians over rounds absorb one bad round; rerun "
            "on a quiet machine, or with more --rounds or --threads 1).**"
        )
    for r in results:
        for problem in r["problems"]:
            print(f"\n**{r['workload'].name}: {problem}**")
    for r in results:
        for name, lines in (r["alloc"] or {}).items():
            print(
                f"\nLargest transient allocations of one {name} {r['workload'].name} step "
                f"(peak of traced memory above the line's start):\n"
            )
            print("| KiB | function:line | source |\n|---|---|---|")
            for fn, line, size, text in lines:
                print(f"| {size / 1024:.0f} | {fn}:{line} | `{text}` |")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, help="BLAS/OpenMP threads (re-runs in a subprocess)")
    ap.add_argument("--quick", action="store_true", help="few steps: a fast smoke run")
    ap.add_argument("--only", help="comma-separated workloads: " + ", ".join(WORKLOADS))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument(
        "--alloc",
        action="store_true",
        help="also list the generated step's largest temporaries per line",
    )
    args = ap.parse_args(argv)
    if args.quick:  # a smoke run of a few seconds (tests/test_benchmarks.py runs it)
        args.only = args.only or SMALLEST
        args.rounds = 1

    if args.threads and os.environ.get(CHILD_MARK) != str(args.threads):
        env = dict(os.environ, **{v: str(args.threads) for v in THREAD_VARS})
        env[CHILD_MARK] = str(args.threads)
        argv = sys.argv[1:] if argv is None else argv
        return subprocess.call(
            [sys.executable, "-m", "benchmarks.step_speed", *argv], env=env, cwd=ROOT
        )

    names = args.only.split(",") if args.only else list(WORKLOADS)
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown:
        ap.error(f"unknown workload {', '.join(unknown)}; known: {', '.join(WORKLOADS)}")
    with tempfile.TemporaryDirectory() as tmp:
        results = [run_workload(WORKLOADS[n], Path(tmp), args) for n in names]
    print_report(results, args)
    return 1 if any(r["problems"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
