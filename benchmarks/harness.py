"""Shared helpers of the speed benchmarks: contenders, timing rounds, checks, formatting.

A *contender* is a named zero-argument training step over params it updates in
place; :func:`run_round` times several side by side (alternating blocks, so a
change in the machine's speed hits all alike), :func:`check_against` compares
one step of each with a reference, :func:`load_generated` writes and imports
a workload's generated module.  The workloads themselves (sizes, data, the
careful hand-written steps) live in :mod:`benchmarks.careful`.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import resource
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from benchmarks.careful import WORKLOADS, Workload, rel_diff

ROOT = Path(__file__).resolve().parents[1]


THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


@dataclass
class Contender:
    """A named zero-argument step and the params it updates in place."""

    name: str
    step: Callable[[], object]
    params: dict = field(default_factory=dict)
    initial: dict = field(default_factory=dict)
    rounds: list = field(default_factory=list)  # per-round median seconds
    faults: list = field(default_factory=list)  # per-round minor faults per step

    def __post_init__(self):
        self.initial = {k: v.copy() for k, v in self.params.items()}

    def reset(self):
        for k, v in self.initial.items():
            np.copyto(self.params[k], v)

    @property
    def seconds(self) -> float:
        return statistics.median(self.rounds)


def load_generated(w: Workload, directory: Path):
    """The generated module for ``w``'s spec, written to ``directory`` and imported."""
    import codegen

    source = codegen.generate(str(w.spec), dtype=w.dtype)
    path = directory / f"generated_{w.name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(f"generated_{w.name}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def dims_for(mod, w: Workload) -> dict[str, int]:
    """The module's dimension names bound to the workload's sizes."""
    shapes, dims = w.shapes(), {}
    for table in (mod.PARAMS, mod.INPUTS, mod.TARGETS):
        for name, names in table.items():
            for dim, size in zip(names, shapes[name], strict=True):
                if isinstance(dim, str):
                    dims[dim] = size
    return dims


def copy_params(params):
    return {k: v.copy() for k, v in params.items()}


def generated_step(mod, params, data, lr):
    def step():
        mod.sgd_step(params, mod.gradients(params, data), lr)

    return step


def fused_step(mod, params, data, lr):
    """``mod.train_step`` with a workspace: ``mod.Workspace`` if the module has one,
    else a plain dict (the generated ``train`` keeps one across steps)."""
    if hasattr(mod, "bind_step"):  # the arrays and buffers bound once, like careful.py
        bound = mod.bind_step(params, data)
        return lambda: bound(lr)
    ws = {}
    if hasattr(mod, "Workspace"):
        try:
            ws = mod.Workspace()
        except TypeError:
            ws = mod.Workspace(params, data)
    if len(inspect.signature(mod.train_step).parameters) >= 4:
        return lambda: mod.train_step(params, data, lr, ws)
    return lambda: mod.train_step(params, data, lr)


def careful_step(w: Workload, params, data, lr):
    careful = w.careful(params, data)
    return lambda: careful.step(lr)


def minor_faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


@dataclass(frozen=True)
class CpuSnapshot:
    """Wall time, this process's CPU time and the machine's busy and steal time."""

    wall: float
    own: float
    busy: float | None  # seconds of non-idle CPU time, all cores (Linux /proc/stat)
    steal: float | None

    @classmethod
    def now(cls) -> CpuSnapshot:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        busy = steal = None
        try:
            line = Path("/proc/stat").read_text().split("\n", 1)[0]
            ticks = [int(v) / os.sysconf("SC_CLK_TCK") for v in line.split()[1:]]
            busy = sum(ticks[:8]) - ticks[3] - ticks[4]  # all but idle and iowait
            steal = ticks[7]
        except (OSError, ValueError, IndexError):
            pass
        return cls(time.perf_counter(), usage.ru_utime + usage.ru_stime, busy, steal)

    def others_since(self, before: CpuSnapshot) -> tuple[float, float] | None:
        """(cores used by other processes, cores stolen by the hypervisor) on average;
        None for spans under 0.25 s, too short for the kernel's 10 ms ticks."""
        wall = self.wall - before.wall
        if self.busy is None or before.busy is None or wall < 0.25:
            return None
        others = (self.busy - before.busy - self.steal + before.steal) - (self.own - before.own)
        return max(others, 0.0) / wall, (self.steal - before.steal) / wall


SMALLEST = min(WORKLOADS, key=lambda n: WORKLOADS[n].batch * sum(WORKLOADS[n].widths))
"""The workload ``--quick`` runs: the smallest."""

BLOCK = 20  # steps a contender runs before the next one takes over


def run_round(contenders, steps: int, warmup: int, clock=time.perf_counter) -> None:
    """One round: every contender reset and warmed up, then ``steps`` timed steps each,
    taken in blocks of :data:`BLOCK` that alternate between the contenders (so that a
    change in the machine's speed hits all of them alike).  Each block starts with
    one untimed step to bring the contender's arrays back into cache.  ``clock`` may
    be ``time.process_time`` (CPU seconds of the process: on a shared machine, time
    spent waiting for a core is not counted)."""
    times = {c.name: [] for c in contenders}
    faults = dict.fromkeys(times, 0)
    for c in contenders:
        c.reset()
        for _ in range(warmup):
            c.step()
    for start in range(0, steps, BLOCK):
        for c in contenders:
            c.step()
            before = minor_faults()
            for _ in range(min(BLOCK, steps - start)):
                t0 = clock()
                c.step()
                times[c.name].append(clock() - t0)
            faults[c.name] += minor_faults() - before
    for c in contenders:
        c.rounds.append(statistics.median(times[c.name]))
        c.faults.append(faults[c.name] / steps)


def step_count(c: Contender, quick: bool) -> int:
    """Steps per round: about 1.5 s (quick: 0.2 s) of the careful step, within bounds."""
    c.step()
    start = time.perf_counter()
    for _ in range(3):
        c.step()
    estimate = (time.perf_counter() - start) / 3
    low, high, budget = (5, 30, 0.2) if quick else (30, 200, 1.5)
    return max(low, min(high, int(budget / estimate)))


def check_against(contenders, reference: Contender, tol: float, problems: list[str]):
    """One step of every contender from the same params, compared to ``reference``;
    the contenders that ran (a contender that raises is reported and dropped)."""
    reference.reset()
    reference.step()
    ran = []
    for c in contenders:
        c.reset()
        try:
            c.step()
        except Exception as exc:
            problems.append(f"{c.name} step failed: {type(exc).__name__}: {exc}")
            continue
        ran.append(c)
        worst = max(rel_diff(c.params[k], reference.params[k]) for k in reference.params)
        if not worst <= tol:
            problems.append(f"{c.name} differs from careful after one step: rel diff {worst:.1e}")
    return ran


def check_finite(contenders, problems: list[str]) -> None:
    """Report params that overflowed while timing (NaN and inf can change the speed)."""
    for c in contenders:
        bad = [k for k, v in c.params.items() if not np.isfinite(v).all()]
        if bad:
            problems.append(f"{c.name}: params {', '.join(bad)} are not finite after timing")


def fmt_us(seconds: float) -> str:
    return f"{seconds * 1e6:.0f}"


def describe(w: Workload) -> str:
    sizes = "→".join(str(n) for n in w.widths[1:])
    return f"{w.batch}×{sizes} {w.hidden}, {w.loss}, {w.dtype}"


def blas_name() -> str:
    """The BLAS NumPy was built with, e.g. 'scipy-openblas 0.3.31', if NumPy says."""
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{blas['name']} {blas['version']}"
    except Exception:
        return "BLAS unknown"


def ratio(a: Contender | None, b: Contender | None) -> str:
    """The median over rounds of a's time / b's time (each round times both side by side)."""
    if a is None or b is None:
        return "–"
    return f"{statistics.median(x / y for x, y in zip(a.rounds, b.rounds, strict=True)):.2f}"
