"""One training step of every code target against its peers, side by side in one run.

For the benchmark networks of :data:`careful.WORKLOADS` plus ``xor``
(``benchmarks/specs/xor.nn``: 4×2→3→1, ReLU, sigmoid, biases, mean binary
cross-entropy on the four XOR points), one SGD step (forward, loss, backward,
update) of

* ``numpy``:  the NumPy target's fused ``bind_step(params, data)`` → ``step(lr)``;
* ``numba``:  the Numba target's ``bind_step`` (one compiled call per step);
* ``careful``:  the hand-written NumPy step of ``careful.py`` (``CarefulXor`` for xor);
* ``torch (derived)``:  the PyTorch target's ``loss`` (its ``autograd.Function``
  runs the derived backward), ``torch.autograd.grad``, ``p.sub_(g, alpha=lr)``;
* ``torch autograd``:  the same module's ``autograd_loss`` (the same forward
  pass, PyTorch's own backward), the same update;
* ``torch.compile``:  the same with ``torch.compile`` of ``autograd_loss`` (as
  ``torch.compile(model)`` is used: AOTAutograd compiles the forward and backward
  graphs; ``--compile`` only: it builds C++ with the system compiler, about a minute
  per network);
* ``jax (derived)``:  ``jax.jit`` of ``value_and_grad`` of the JAX target's
  ``custom_vjp`` loss and ``params - lr * grad``, params donated;
* ``jax jit(grad)``:  the same with ``autograd_loss`` (JAX's own backward);
* ``pytensor``:  PyTensor's compiled graph (``mode="NUMBA"``) of the same forward
  pass (printed with the targets' printer), ``pytensor.grad`` and SGD updates
  of shared variables (if PyTensor is installed).

Data, initial params (the NumPy target's ``init_params``, seed 0) and the
learning rate are the same for all; before timing, one step of every
contender is compared with the NumPy target's (1e-9 in float64, 1e-4 in
float32: a mismatch is reported and exits with status 1).  Timing reuses
``step_speed.py``'s rounds (blocks of 20 steps alternating between the
contenders); a time is the median over rounds of the per-round median step.

Run from the repository root::

    python -m benchmarks.targets_speed                 # all cores
    python -m benchmarks.targets_speed --threads 1     # re-runs itself: one thread, one CPU
    python -m benchmarks.targets_speed --quick --only xor,iris
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.careful import SPECS, WORKLOADS, Workload
from benchmarks.harness import (
    THREAD_VARS,
    check_against,
    check_finite,
    copy_params,
    fmt_us,
    run_round,
    step_count,
)

ROOT = Path(__file__).resolve().parents[1]
CHILD_MARK = "TARGETS_SPEED_THREADS"
ORDER = [
    "numpy",
    "numba",
    "careful",
    "torch (derived)",
    "torch autograd",
    "torch.compile",
    "jax (derived)",
    "jax jit(grad)",
    "pytensor",
]


@dataclass(frozen=True)
class Net:
    """A benchmark network: spec, data, dtype, learning rate, and its careful step."""

    name: str
    spec: Path
    dtype: str
    lr: float
    data: dict
    dims: dict
    workload: Workload | None = None


def networks(names) -> list[Net]:
    out = []
    for name in names:
        if name == "xor":
            X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
            Y = np.array([[0.0], [1.0], [1.0], [0.0]])
            dims = {"B": 4, "n_in": 2, "n_h": 3, "n_out": 1}
            out.append(Net("xor", SPECS / "xor.nn", "float64", 0.5, {"X": X, "Y": Y}, dims))
            continue
        w = WORKLOADS[name]
        out.append(Net(name, w.spec, w.dtype, w.lr, w.make_data(seed=0), {}, w))
    return out


def load(source: str, name: str, directory: Path):
    import importlib.util

    path = directory / f"{name}.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # torch.compile re-imports the module its code comes from
    spec.loader.exec_module(mod)
    return mod


def dims_of(mod, net: Net) -> dict:
    dims = dict(net.dims)
    for table in (mod.INPUTS, mod.TARGETS):
        for name, names in table.items():
            for d, size in zip(names, net.data[name].shape, strict=True):
                dims.setdefault(d, size)
    if net.workload is not None:
        shapes = net.workload.shapes()
        for name, names in mod.PARAMS.items():
            for d, size in zip(names, shapes[name], strict=True):
                dims.setdefault(d, size)
    return dims


# --- contenders ----------------------------------------------------------------------------


def numpy_like(name, mod, params, data, lr):
    from benchmarks.frameworks import PeerContender

    own = copy_params(params)
    step = mod.bind_step(own, data)
    return PeerContender(name, lambda: step(lr), own)


def torch_contender(name, loss_fn, params, data, lr, compile_it=False):
    """``torch.autograd.grad`` of ``loss_fn`` and an in-place SGD update; ``compile_it``:
    ``torch.compile`` of the loss (as ``torch.compile(model)`` is used: AOTAutograd
    compiles its forward and backward graphs; the update stays eager)."""
    import torch

    from benchmarks.frameworks import PeerContender

    own = copy_params(params)
    P = {k: torch.from_numpy(v).requires_grad_() for k, v in own.items()}
    D = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in data.items()}
    tensors = list(P.values())
    if compile_it:
        loss_fn = torch.compile(loss_fn)

    def step():
        loss = loss_fn(P, D)
        grads = torch.autograd.grad(loss, tensors)
        with torch.no_grad():
            for p, g in zip(tensors, grads, strict=True):
                p.sub_(g, alpha=lr)
        return loss

    return PeerContender(name, step, own)


def jax_update(loss_fn, lr):
    """One jitted SGD step: ``(params - lr * grad, loss)`` from ``value_and_grad`` (the
    loss is computed, as every other contender computes it), params donated."""
    import jax

    def update(P, D):
        loss, grads = jax.value_and_grad(loss_fn)(P, D)
        return jax.tree_util.tree_map(lambda p, g: p - lr * g, P, grads), loss

    return jax.jit(update, donate_argnums=0)


def jax_contender(name, loss_fn, params, data, lr):
    import jax
    import jax.numpy as jnp

    from benchmarks.frameworks import LiveParams, PeerContender

    initial = copy_params(params)
    D = {k: jnp.asarray(v) for k, v in data.items()}
    update = jax_update(loss_fn, lr)
    state = {}

    def reset():
        state["P"] = {k: jnp.asarray(v.copy()) for k, v in initial.items()}

    def step():
        state["P"], loss = update(state["P"], D)
        jax.block_until_ready((state["P"], loss))
        return loss

    reset()
    return PeerContender(name, step, LiveParams(lambda: state["P"]), on_reset=reset)


PYTENSOR_KERNELS = {
    "relu": "pt.switch(pt.gt({0}, 0), {0}, 0)",  # gradient 0 at 0, as the targets
    "sigmoid": "pt.sigmoid({})",
    "tanh": "pt.tanh({})",
    "softplus": "pt.softplus({})",
    "exp": "pt.exp({})",
    "log": "pt.log({})",
    "relu_prime": "pt.gt({}, 0)",  # the backward lines are printed too (and unused)
    "leaky_relu": "pt.where(pt.gt({0}, 0), {0}, {1} * {0})",
    "leaky_relu_prime": "pt.where(pt.gt({0}, 0), 1.0, {1})",
}


def pytensor_contender(net: Net, params, data, lr):
    """PyTensor's compiled graph (Numba backend) of the forward pass the targets print."""
    import pytensor
    import pytensor.tensor as pt

    from benchmarks.frameworks import LiveParams, PeerContender
    from codegen import prepare
    from codegen.targets.context import framework_context
    from codegen.targets.printer import ArrayPrinter

    class PyTensorPrinter(ArrayPrinter):
        lib = "pt"

        def call(self, e, arg):
            from derive.matexpr import Map
            from derive.rules import rule_of

            rule = rule_of(e.func_class if isinstance(e, Map) else e.func)
            params = e.params if isinstance(e, Map) else e.args[1:]
            return PYTENSOR_KERNELS[rule.name].format(arg, *[self._print(p) for p in params])

        def _print_Softmax(self, e):
            return f"pt.special.softmax({self._print(e.arg)}, axis={e.axis})"

        def _print_LogSoftmax(self, e):
            return f"pt.special.log_softmax({self._print(e.arg)}, axis={e.axis})"

    d, header, spec_name, _ = prepare(str(net.spec), net.dtype)
    ctx = framework_context(d, net.dtype, header, spec_name, PyTensorPrinter())
    body = "".join(f"    {line}\n" for line in ctx["forward_dims"])
    body += "".join(f"    {line.name} = {line.code}\n" for line in ctx["forward"])
    source = (
        "import pytensor.tensor as pt\n\n"
        f"DTYPE = '{net.dtype}'\n\n"
        f"def forward({', '.join(ctx['arg_names'])}):\n{body}    return {ctx['loss']}\n"
    )
    with tempfile.TemporaryDirectory() as tmp:
        mod = load(source, f"pytensor_{net.name}", Path(tmp))
    shared = {k: pytensor.shared(v.copy(), name=k) for k, v in params.items()}
    inputs = {k: pt.constant(np.asarray(v, net.dtype)) for k, v in data.items()}
    loss = mod.forward(*[shared[a] if a in shared else inputs[a] for a in ctx["arg_names"]])
    grads = pytensor.grad(loss, list(shared.values()))
    updates = [
        (p, p - np.asarray(lr, net.dtype) * g) for p, g in zip(shared.values(), grads, strict=True)
    ]
    fn = pytensor.function([], loss, updates=updates, mode="NUMBA")

    def reset():
        for k, v in params.items():
            shared[k].set_value(v.copy())

    read = lambda: {k: s.get_value(borrow=True) for k, s in shared.items()}  # noqa: E731
    return PeerContender("pytensor", fn, LiveParams(read), on_reset=reset)


# --- one network ---------------------------------------------------------------------------


def run_network(net: Net, directory: Path, args) -> dict:
    from codegen.targets import generate_target

    result = {"net": net, "problems": [], "contenders": {}}
    mods = {
        t: load(generate_target(str(net.spec), t, dtype=net.dtype), f"{t}_{net.name}", directory)
        for t in ("numpy", "numba", "torch", "jax")
    }
    params = mods["numpy"].init_params(dims_of(mods["numpy"], net), seed=0)
    data = {k: np.asarray(v, net.dtype) for k, v in net.data.items()}
    reference = numpy_like("numpy", mods["numpy"], params, data, net.lr)
    contenders = []
    for name, make in contender_makers(net, mods, params, data, args).items():
        try:
            c = make()
        except Exception as exc:  # a peer that cannot run here is reported, not fatal
            result["problems"].append(f"{name} unavailable: {type(exc).__name__}: {exc}")
            continue
        if c is not None:
            contenders.append(c)
    contenders = [reference, *compiled_and_checked(contenders, reference, net, result)]
    steps = step_count(reference, args.quick)
    for r in range(args.rounds):
        # a fresh order each round (seeded), not a rotation, which keeps each contender's
        # neighbours: with it, jax (derived) (always after torch.compile) read 1.03× jax
        # jit(grad) (always after it) on MNIST, where XLA compiles the same program for both
        order = list(contenders)
        random.Random(r).shuffle(order)
        clock = time.process_time if args.clock == "cpu" else time.perf_counter
        run_round(order, steps, 2 if args.quick else 5, clock)
    check_finite(contenders, result["problems"])
    result["contenders"] = {c.name: c for c in contenders}
    return result


def contender_makers(net: Net, mods: dict, params, data, args) -> dict:
    """name -> a function making that contender (``--contenders`` keeps some)."""
    makers = {
        "numba": lambda: numpy_like("numba", mods["numba"], params, data, net.lr),
        "careful": lambda: careful(net, params, data),
        "torch (derived)": lambda: torch_contender(
            "torch (derived)", mods["torch"].loss, params, data, net.lr
        ),
        "torch autograd": lambda: torch_contender(
            "torch autograd", mods["torch"].autograd_loss, params, data, net.lr
        ),
        "jax (derived)": lambda: jax_contender(
            "jax (derived)", mods["jax"].loss, params, data, net.lr
        ),
        "jax jit(grad)": lambda: jax_contender(
            "jax jit(grad)", mods["jax"].autograd_loss, params, data, net.lr
        ),
        "pytensor": lambda: pytensor_contender(net, params, data, net.lr),
    }
    if args.contenders:  # a contender pair, run alternately: less noise on a shared machine
        keep = set(args.contenders.split(","))
        makers = {n: m for n, m in makers.items() if n in keep}
    if args.compile and (not args.contenders or "torch.compile" in args.contenders):
        makers["torch.compile"] = lambda: torch_contender(
            "torch.compile", mods["torch"].autograd_loss, params, data, net.lr, compile_it=True
        )
    return makers


def compiled_and_checked(contenders, reference, net: Net, result: dict) -> list:
    """The contenders whose first step (it compiles: Numba, JAX, PyTensor, torch.compile)
    ran and matched the reference's (1e-9 in float64, 1e-4 in float32)."""
    compiled = []
    for c in contenders:
        c.reset()
        try:
            c.step()
        except Exception as exc:
            result["problems"].append(f"{c.name} failed: {type(exc).__name__}: {exc}")
            continue
        compiled.append(c)
    tol = 1e-9 if net.dtype == "float64" else 1e-4
    return check_against(compiled, reference, tol, result["problems"])


def careful(net: Net, params, data):
    from benchmarks.careful import CarefulXor
    from benchmarks.frameworks import PeerContender

    own = copy_params(params)
    step = CarefulXor(own, data) if net.name == "xor" else net.workload.careful(own, data)
    return PeerContender("careful", lambda: step.step(net.lr), own)


def hlo_ops(mod, loss_name: str, params, data, lr) -> list[tuple[str, str, str]]:
    """(result shape, operation, what it computes) of each instruction XLA runs for one
    jitted SGD step with ``mod``'s ``loss_name`` (the optimised program's entry
    computation, in order); "what" is ``dot``, ``transpose``, ``copy`` or ``other``."""
    import re

    import jax.numpy as jnp

    P = {k: jnp.asarray(v) for k, v in params.items()}
    D = {k: jnp.asarray(v) for k, v in data.items()}
    text = jax_update(getattr(mod, loss_name), lr).lower(P, D).compile().as_text()
    bodies = dict(re.findall(r"\n(?:ENTRY )?%([\w.-]+) .*? \{\n(.*?)\n\}", text, re.S))
    entry = text[text.index("\nENTRY") :].split("\n}")[0]
    ops = []
    for line in entry.splitlines()[1:]:
        m = re.match(r"\s*(?:ROOT )?%\S+ = (\S+) ([\w-]+)\(", line)
        if not m or m.group(2) in ("parameter", "constant", "tuple"):
            continue
        called = re.search(r"calls=%([\w.-]+)", line)
        body = bodies.get(called.group(1), "") if called else line
        what = next((w for w in ("dot", "transpose", "copy") if f" {w}(" in body), "other")
        ops.append((m.group(1).split("{")[0], m.group(2), what))
    return ops


def print_hlo(nets, directory: Path) -> None:
    """What XLA makes of the derived backward and of ``jit(grad)``, per network: the
    operations of one SGD step (products, transposes, copies among them), and whether
    the two programs are the same operation for operation."""
    import collections

    from codegen.targets import generate_target

    print("| network | jax (derived): ops (dots, transposes, copies) | jax jit(grad) | same |")
    print("|---|---|---|---|")
    for net in nets:
        made = {
            t: load(
                generate_target(str(net.spec), t, dtype=net.dtype), f"hlo_{t}_{net.name}", directory
            )
            for t in ("numpy", "jax")
        }
        params = made["numpy"].init_params(dims_of(made["numpy"], net), seed=0)
        data = {k: np.asarray(v, net.dtype) for k, v in net.data.items()}
        programs = [
            hlo_ops(made["jax"], name, params, data, net.lr) for name in ("loss", "autograd_loss")
        ]
        cells = []
        for ops in programs:
            n = collections.Counter(what for _, _, what in ops)
            cells.append(f"{len(ops)} ({n['dot']}, {n['transpose']}, {n['copy']})")
        same = "yes" if programs[0] == programs[1] else "no"
        print(f"| {net.name} ({net.dtype}) | {cells[0]} | {cells[1]} | {same} |")


# ratios reported beside the times (the median over rounds of the per-round ratio)
RATIOS = [
    ("numba", "numpy"),
    ("numpy", "careful"),
    ("torch (derived)", "torch autograd"),
    ("jax (derived)", "jax jit(grad)"),
]


TARGETS = ("numpy", "numba", "torch (derived)", "jax (derived)")


def ratio(cs: dict, a: str, b: str) -> str:
    """``a``'s time over ``b``'s: the median of the per-round ratios ("–" if one is missing)."""
    if a not in cs or b not in cs:
        return "–"
    pairs = zip(cs[a].rounds, cs[b].rounds, strict=True)
    return f"{statistics.median(x / y for x, y in pairs):.2f}"


def best_ratio(cs: dict) -> str:
    """The fastest target's time over the fastest peer's, per round (the issue's test:
    at most 1), as "median [lowest–highest]" over the rounds."""
    ours = [c for n, c in cs.items() if n in TARGETS]
    peers = [c for n, c in cs.items() if n not in TARGETS]
    if not ours or not peers:
        return "–"
    rounds = range(len(ours[0].rounds))
    per_round = sorted(
        min(c.rounds[r] for c in ours) / min(c.rounds[r] for c in peers) for r in rounds
    )
    return f"{statistics.median(per_round):.2f} [{per_round[0]:.2f}–{per_round[-1]:.2f}]"


def print_report(results, args) -> None:
    threads = os.environ.get("OPENBLAS_NUM_THREADS") or f"default ({os.cpu_count()} cores)"
    print(
        f"numpy {np.__version__}, Python {platform.python_version()}, threads: {threads}, "
        f"{args.rounds} rounds{' (quick)' if args.quick else ''}, clock: {args.clock}\n"
    )
    present = [n for n in ORDER if any(n in r["contenders"] for r in results)]
    ratios = [(a, b) for a, b in RATIOS if any(a in r["contenders"] for r in results)]
    ratios = [(a, b) for a, b in ratios if any(b in r["contenders"] for r in results)]
    print(
        "| network | "
        + " | ".join([f"{n} µs" for n in present] + [f"{a} / {b}" for a, b in ratios])
        + " | best target / best peer |"
    )
    print("|---|" + "---|" * (len(present) + len(ratios) + 1))
    for r in results:
        cs = r["contenders"]
        row = [fmt_us(cs[n].seconds) if n in cs else "–" for n in present]
        row += [ratio(cs, a, b) for a, b in ratios] + [best_ratio(cs)]
        print(f"| {r['net'].name} ({r['net'].dtype}) | " + " | ".join(row) + " |")
    for r in results:
        for problem in r["problems"]:
            print(f"\n**{r['net'].name}: {problem}**")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, help="threads for BLAS, PyTorch and XLA")
    ap.add_argument("--quick", action="store_true", help="few steps: a fast smoke run")
    ap.add_argument("--only", help="comma-separated networks: xor, " + ", ".join(WORKLOADS))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--compile", action="store_true", help="also time torch.compile")
    ap.add_argument(
        "--hlo", action="store_true", help="compare XLA's programs for the two JAX steps instead"
    )
    ap.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="wall: elapsed time; cpu: CPU time of the process (not the time spent "
        "waiting for a core on a shared machine; with one thread, the step's own time)",
    )
    ap.add_argument("--contenders", help="comma-separated contenders beside numpy, e.g. numba")
    args = ap.parse_args(argv)
    if args.threads and os.environ.get(CHILD_MARK) != str(args.threads):
        env = dict(os.environ, **{v: str(args.threads) for v in THREAD_VARS})
        env[CHILD_MARK] = str(args.threads)
        if args.threads == 1:
            env["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
        argv = sys.argv[1:] if argv is None else argv
        return subprocess.call(
            [sys.executable, "-m", "benchmarks.targets_speed", *argv], env=env, cwd=ROOT
        )
    if args.threads:  # XLA sizes its pools by the affinity mask, not by its flags alone
        from benchmarks.frameworks import pin

        pin(args.threads)
    try:
        import torch

        if args.threads or args.quick:  # a smoke run: one thread (a spinning pool is slow)
            torch.set_num_threads(args.threads or 1)
    except ImportError:
        pass
    try:
        import jax

        jax.config.update("jax_enable_x64", True)
    except ImportError:
        pass
    names = args.only.split(",") if args.only else ["xor", *WORKLOADS]
    unknown = [n for n in names if n != "xor" and n not in WORKLOADS]
    if unknown:
        ap.error(f"unknown network {', '.join(unknown)}")
    start = time.perf_counter()
    if args.hlo:
        with tempfile.TemporaryDirectory() as tmp:
            print_hlo(networks(names), Path(tmp))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        results = [run_network(n, Path(tmp), args) for n in networks(names)]
    print_report(results, args)
    print(f"\n({time.perf_counter() - start:.0f} s)")
    return 1 if any("differs" in p or "failed" in p for r in results for p in r["problems"]) else 0


if __name__ == "__main__":
    sys.exit(main())
