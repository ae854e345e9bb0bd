"""Generated NumPy training code against careful NumPy, PyTorch (CPU, eager) and JAX (jit).

Two measurements, in one process, side by side:

1. **One training step** (forward, loss, backward, SGD update) on each workload of
   :data:`careful.WORKLOADS` (specs in ``benchmarks/specs``; same sizes, dtypes,
   data and initial params for every contender):

   * generated:  the spec's module from ``codegen.generate``, its fused
     ``train_step(params, data, lr, ws)`` (see ``step_speed.py``);
   * careful NumPy:  the hand-written in-place step of ``careful.py``;
   * PyTorch:  eager autograd, ``loss.backward()`` then ``p.sub_(p.grad, alpha=lr)``
     under ``torch.no_grad()`` and ``p.grad = None`` (what ``optimizer.zero_grad()``
     does); layers as ``torch.addmm`` where there is a bias, softmax + cross-entropy
     as ``F.cross_entropy`` with the one-hot rows as probabilities; the tensors
     share memory with NumPy arrays (``torch.from_numpy``);
   * JAX:  ``jax.jit`` of ``params -> params - lr * grad(loss)(params)`` with the
     params donated, ``block_until_ready`` after every step (float64 needs
     ``jax_enable_x64``, which is switched on; float32 arrays stay float32).

   Before timing, one step of every contender from the same params is compared
   with the careful step (norm-wise relative difference per param, at most 1e-9
   in float64 and 1e-4 in float32); a mismatch stops the run with exit status 1.
   Timing reuses ``step_speed.py``'s rounds: in each round every contender is
   warmed up, then timed for the same number of steps in alternating blocks of
   20, each opened by an untimed step after a pause of ``--settle`` seconds
   (0.1 by default: the previous library's idle threads stop spinning, which
   otherwise slowed the next contender by 5-15 % with two threads); a time is
   the median over rounds of the per-round median step, a ratio the median
   over rounds of the per-round ratio.

2. **Time to 96 % test accuracy on digits** (scikit-learn's 8×8 digits, split by
   ``codegen.data.load("digits", part=..., seed=0)``, features standardised
   with the train part's mean and std): the bundled spec ``seed002``
   (64→64→32→10, sigmoid, softmax, mean cross-entropy, biases), Adam with lr
   0.005 and batches of 32, the same initial params (the generated
   ``init_params``, seed 0) and the same batches in the same order as the
   generated ``train(..., seed=0)`` (its first permutation, then one seeded
   permutation per epoch) for

   * generated ``train``:  the module's own ``train(..., optimizer="adam")``, the
     test accuracy measured in its ``callback`` after every epoch (training
     stops from the callback); ``train`` also computes the loss on the whole
     training part after every epoch, which counts;
   * generated ``gradients`` + ``adam_step``:  the same loop written out;
   * PyTorch:  ``torch.optim.Adam`` (same betas and eps), eager autograd;
   * JAX:  one jitted step (batch gather, ``jax.grad``, Adam with bias
     correction, as ``adam_step`` writes it), params and moments donated.

   The clock stops for the test evaluation after every epoch (each framework
   evaluates in its own terms: the module's ``accuracy``, a ``torch.no_grad``
   forward pass, a jitted JAX forward pass); it reports the training wall time
   and epochs until the test accuracy first reaches 96 %.  Every framework
   first runs one untimed epoch from a copy of the params (JAX compiles its
   step for both batch sizes there); the table gives that warm-up's time
   separately.  Each run starts after 0.3 s of quiet, so that no idle BLAS or
   OpenMP thread of the previous framework is still spinning (OpenBLAS's
   workers spin for up to about 0.1 s after a call, and a PyTorch epoch run
   right after a NumPy product was 3-4 times slower with two threads on two
   cores).  Seconds are the median over ``--repeats`` runs, taken in turn.
   The float64 trajectories agree across frameworks to rounding, so the
   epochs agree; the per-epoch test accuracies and the final params
   are compared and the largest relative difference is printed.

Run from the repository root (PyTorch and JAX are optional: a missing one is
skipped with a note; install them for this benchmark only, ``pip install
torch==2.13.0 jax jaxlib``).  ``--threads N`` re-runs the script in a subprocess
with ``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS`` and ``MKL_NUM_THREADS`` set to
N, ``torch.set_num_threads(N)``, for N = 1 the XLA flags
``--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1``, and every
thread pinned to N CPUs (XLA keeps a second core busy otherwise)::

    python -m benchmarks.frameworks              # default threads (all cores)
    python -m benchmarks.frameworks --threads 1  # re-runs itself: one thread, pinned to one CPU
    python -m benchmarks.frameworks --quick --only iris,seed000
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.careful import WORKLOADS, Workload, rel_diff
from benchmarks.harness import (
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
    load_generated,
    ratio,
    run_round,
    step_count,
)

ROOT = Path(__file__).resolve().parents[1]
CHILD_MARK = "FRAMEWORKS_THREADS"
XLA_ONE_THREAD = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
TOLERANCE = {"float64": 1e-9, "float32": 1e-4}

# the peers, imported by :func:`import_peers` once the thread settings are in place
torch = None
jax = None
jnp = None
NOTES: list[str] = []


def pin(threads: int) -> None:
    """Run every thread of this process on the first ``threads`` allowed CPUs.

    XLA's CPU client ignores the thread flags for much of its work (with
    ``XLA_FLAGS`` set for one thread JAX still kept two cores busy on ``wide``);
    the affinity mask is what it sizes its thread pools by.  Threads started
    later (PyTorch's, XLA's) inherit the mask."""
    if not hasattr(os, "sched_setaffinity"):
        NOTES.append("no os.sched_setaffinity here: threads are not pinned to CPUs")
        return
    cpus = sorted(os.sched_getaffinity(0))[:threads]
    for tid in os.listdir("/proc/self/task"):
        with contextlib.suppress(OSError):
            os.sched_setaffinity(int(tid), cpus)


def import_peers(threads: int | None) -> None:
    """Import PyTorch and JAX if they are installed (a note says when one is not)."""
    global torch, jax, jnp
    try:
        import torch as _torch
    except ImportError as exc:
        NOTES.append(f"PyTorch is not importable ({exc}): its columns are skipped.")
    else:
        torch = _torch
        if threads:
            torch.set_num_threads(threads)
            with contextlib.suppress(RuntimeError):  # only before the first parallel work
                torch.set_num_interop_threads(threads)
    try:
        import jax as _jax
        import jax.numpy as _jnp
    except ImportError as exc:
        NOTES.append(f"JAX is not importable ({exc}): its columns are skipped.")
    else:
        jax, jnp = _jax, _jnp
        jax.config.update("jax_enable_x64", True)  # float64 workloads; float32 stays float32


def peer_versions() -> str:
    parts = []
    if torch is not None:
        parts.append(f"torch {torch.__version__} ({torch.get_num_threads()} threads)")
    if jax is not None:
        flags = os.environ.get("XLA_FLAGS")
        parts.append(f"jax {jax.__version__}" + (f" (XLA_FLAGS={flags})" if flags else ""))
    return ", ".join(parts) or "no peers"


# --- contenders whose params live outside NumPy --------------------------------------------


class LiveParams(Mapping):
    """The current params of a peer as NumPy arrays (read on every access)."""

    def __init__(self, read: Callable[[], dict]):
        self._read = read

    def __getitem__(self, key):
        return np.asarray(self._read()[key])

    def __iter__(self):
        return iter(self._read())

    def __len__(self):
        return len(self._read())


@dataclass
class PeerContender(Contender):
    """A contender that resets itself (its params are not NumPy arrays it owns)."""

    on_reset: Callable[[], None] | None = None

    def reset(self):
        if self.on_reset is None:
            super().reset()
        else:
            self.on_reset()


# --- one SGD step in PyTorch and JAX -------------------------------------------------------


def torch_forward_loss(w: Workload, P: dict, x, t):
    """The workload's loss in PyTorch, layer by layer as the spec writes it."""
    F = torch.nn.functional
    a, n = x, len(w.weights)
    for i, name in enumerate(w.weights):
        z = torch.addmm(P[w.biases[i]], a, P[name]) if w.biases else a @ P[name]
        kind = w.output if i == n - 1 else w.hidden
        if kind == "relu":
            a = torch.relu(z)
        elif kind == "sigmoid":
            a = torch.sigmoid(z)
        else:  # linear, or softmax (folded into the loss)
            a = z
    if w.loss == "ce_mean":
        return F.cross_entropy(a, t)  # t as class probabilities: -sum(t log softmax) / B
    r = a - t
    return (r * r).sum() if w.loss == "sse" else 0.5 * (r * r).sum()


def torch_contender(w: Workload, params: dict, data: dict, lr: float) -> PeerContender:
    """PyTorch eager SGD on tensors sharing memory with ``params`` (NumPy arrays)."""
    P = {k: torch.from_numpy(v).requires_grad_() for k, v in params.items()}
    x, t = torch.from_numpy(data[w.input]), torch.from_numpy(data[w.target])
    tensors = list(P.values())

    def step():
        loss = torch_forward_loss(w, P, x, t)
        loss.backward()
        with torch.no_grad():
            for p in tensors:
                p.sub_(p.grad, alpha=lr)
                p.grad = None

    return PeerContender("PyTorch", step, params)


def jax_forward_loss(w: Workload):
    """The workload's loss as a function ``(params, x, t)`` for JAX."""

    def loss(P, x, t):
        a, n = x, len(w.weights)
        for i, name in enumerate(w.weights):
            z = a @ P[name] + P[w.biases[i]] if w.biases else a @ P[name]
            kind = w.output if i == n - 1 else w.hidden
            if kind == "relu":
                a = jax.nn.relu(z)
            elif kind == "sigmoid":
                a = jax.nn.sigmoid(z)
            else:
                a = z
        if w.loss == "ce_mean":
            return -jnp.sum(t * jax.nn.log_softmax(a, axis=1)) / x.shape[0]
        r = a - t
        return jnp.sum(r * r) if w.loss == "sse" else 0.5 * jnp.sum(r * r)

    return loss


class JaxState:
    """Params on the JAX device and a jitted step that replaces them."""

    def __init__(self, initial: dict, step_fn, args):
        self.initial = {k: v.copy() for k, v in initial.items()}
        self.step_fn, self.args = step_fn, args
        self.P = None
        self.reset()

    def reset(self):
        self.P = {k: jnp.array(v) for k, v in self.initial.items()}

    def step(self):
        self.P = self.step_fn(self.P, *self.args)
        jax.block_until_ready(self.P)


def jax_contender(w: Workload, params: dict, data: dict, lr: float) -> PeerContender:
    loss = jax_forward_loss(w)

    def sgd(P, x, t):
        g = jax.grad(loss)(P, x, t)
        return jax.tree.map(lambda p, d: p - lr * d, P, g)

    args = (jnp.asarray(data[w.input]), jnp.asarray(data[w.target]))
    state = JaxState(params, jax.jit(sgd, donate_argnums=0), args)
    return PeerContender("JAX", state.step, LiveParams(lambda: state.P), on_reset=state.reset)


# --- part 1: one step ----------------------------------------------------------------------


class CheckFailed(RuntimeError):
    pass


def settle(contenders, seconds: float) -> None:
    """Make every contender pause ``seconds`` before its first step after another
    contender's: in ``run_round`` that is the untimed step that opens each block,
    so the pause is never timed.  Idle worker threads of the previous contender's
    library (OpenBLAS spins up to about 0.1 s after a call, OpenMP and XLA pools
    spin too) otherwise compete with the next contender for the two cores."""
    last = [None]

    def wrap(c):
        step = c.step

        def settled():
            if last[0] is not c:
                last[0] = c
                time.sleep(seconds)
            step()

        return settled

    if seconds > 0:
        for c in contenders:
            c.step = wrap(c)


def run_workload(w: Workload, directory: Path, args) -> dict:
    """Every contender's timings for one workload (after the correctness check)."""
    data = w.make_data(seed=0)
    mod = load_generated(w, directory)
    params = mod.init_params(dims_for(mod, w), seed=0)
    own = copy_params(params)
    careful = Contender("careful NumPy", careful_step(w, own, data, w.lr), own)
    others = []
    own = copy_params(params)
    others.append(Contender("generated", fused_step(mod, own, data, w.lr), own))
    if torch is not None:
        others.append(torch_contender(w, copy_params(params), data, w.lr))
    if jax is not None:
        others.append(jax_contender(w, copy_params(params), data, w.lr))

    problems: list[str] = []
    ran = check_against(others, careful, TOLERANCE[w.dtype], problems)
    if problems:
        raise CheckFailed(f"{w.name}: " + "; ".join(problems))
    contenders = [ran[0], careful, *ran[1:]]
    settle(contenders, args.settle)

    steps = step_count(careful, args.quick)
    warmup = 2 if args.quick else 5
    loads = []
    for r in range(args.rounds):
        shift = r % len(contenders)
        before = CpuSnapshot.now()
        run_round(contenders[shift:] + contenders[:shift], steps, warmup)
        loads.append(CpuSnapshot.now().others_since(before))
    finite: list[str] = []
    check_finite(contenders, finite)
    return {
        "workload": w,
        "contenders": {c.name: c for c in contenders},
        "steps": steps,
        "others": loads,
        "problems": finite,
    }


def print_step_table(results, args) -> None:
    threads = os.environ.get("OPENBLAS_NUM_THREADS") or f"default ({os.cpu_count()} cores)"
    if args.threads and hasattr(os, "sched_getaffinity"):
        threads += f" (pinned to CPU {', '.join(map(str, sorted(os.sched_getaffinity(0))))})"
    print(
        f"## One training step\n\nnumpy {np.__version__} ({blas_name()}), {peer_versions()}, "
        f"Python {platform.python_version()}, threads: {threads}, {args.rounds} rounds, "
        f"settle {args.settle:g} s"
        f"{' (quick)' if args.quick else ''}\n"
    )
    names = ["generated", "careful NumPy", "PyTorch", "JAX"]
    head = ["workload"] + [f"{n} µs" for n in names]
    head += [f"generated / {n}" for n in ("careful", "PyTorch", "JAX")]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in results:
        cs, w = r["contenders"], r["workload"]
        row = [f"{w.name} ({describe(w)})"]
        row += [fmt_us(cs[n].seconds) if n in cs else "–" for n in names]
        row += [ratio(cs["generated"], cs.get(n)) for n in names[1:]]
        print("| " + " | ".join(row) + " |")
    print(
        "\nTimes: median over rounds of each round's median step; ratios: median over rounds "
        "of the per-round ratio (below 1: the generated step is faster).  Every contender "
        "matched careful NumPy after one step (rel diff ≤ 1e-9 float64, ≤ 1e-4 float32)."
    )
    print("\nPer-round medians (µs):")
    for r in results:
        rounds = "; ".join(
            f"{c.name} " + ", ".join(fmt_us(s) for s in c.rounds) for c in r["contenders"].values()
        )
        load = ", ".join(f"{x[0]:.2f}+{x[1]:.2f}" if x else "–" for x in r["others"])
        print(
            f"- {r['workload'].name} ({r['steps']} steps/round): {rounds}; "
            f"other processes + steal (cores): {load}"
        )
    busy = max((x[0] + x[1] for r in results for x in r["others"] if x), default=0.0)
    if busy > 0.5:
        print(
            f"\n**Warning: other processes or the hypervisor used up to {busy:.2f} of "
            f"{os.cpu_count()} cores during some rounds; those rounds are unreliable.**"
        )
    for r in results:
        for problem in r["problems"]:
            print(f"\n**{r['workload'].name}: {problem}**")


# --- part 2: time to 96 % on digits --------------------------------------------------------

TARGET_ACCURACY = 0.96
DIGITS_LR = 0.005
DIGITS_BATCH = 32
DIGITS_WIDTHS = {"n_h1": 64, "n_h2": 32}
SETTLE = 0.3  # seconds of quiet before each run: idle BLAS / OpenMP threads stop spinning


@dataclass
class Digits:
    mod: object  # the generated seed002 module
    train: dict  # {"X", "T"} of the train part, standardised
    test: dict
    params: dict  # initial params (init_params, seed 0)
    max_epochs: int


def load_digits(dtype: str, max_epochs: int) -> Digits:
    from codegen import data as datasets
    from codegen.train import module_for

    mod = module_for(str(ROOT / "derive" / "specs" / "seed002.nn"), dtype=dtype)
    train, test = datasets.standardise(
        datasets.load("digits", part="train", seed=0), datasets.load("digits", part="test", seed=0)
    )

    def arrays(ds):
        t = datasets.one_hot(ds.targets, ds.n_classes)
        return {"X": ds.features.astype(dtype), "T": t.astype(dtype)}

    tr, te = arrays(train), arrays(test)
    dims = {
        "B": tr["X"].shape[0],
        "n_in": tr["X"].shape[1],
        "n_out": tr["T"].shape[1],
        **DIGITS_WIDTHS,
    }
    return Digits(mod, tr, te, mod.init_params(dims, seed=0), max_epochs)


def batch_orders(n: int, seed: int = 0):
    """The generated ``train``'s order: a first permutation (the train/validation split;
    no validation here) taken once, then one permutation per epoch, both seeded.
    Yields, per epoch, the row indices of the original data in batch order."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    while True:
        yield order[rng.permutation(n)]


class Clock:
    """Training wall time, with the test evaluations left out."""

    def __init__(self):
        self.start = time.perf_counter()
        self.paused = 0.0

    def evaluate(self, fn):
        t0 = time.perf_counter()
        value = fn()
        self.paused += time.perf_counter() - t0
        return value

    def elapsed(self, now: float) -> float:
        return now - self.start - self.paused


@dataclass
class Run:
    epochs: int | None  # epochs to the target accuracy (None: not reached)
    seconds: float  # training wall time until then (or until max_epochs)
    accuracies: list
    params: dict  # NumPy copies of the final params


class StopTraining(Exception):  # noqa: N818 - a signal, not an error
    pass


def generated_train_run(d: Digits, epochs: int, target: float) -> Run:
    """The generated module's ``train``; the callback tests and stops it."""
    mod, params = d.mod, copy_params(d.params)
    accs, done = [], {}

    def callback(epoch, history):
        now = time.perf_counter()
        accs.append(clock.evaluate(lambda: mod.accuracy(params, d.test)))
        if accs[-1] >= target:
            done["at"] = now
            raise StopTraining

    clock = Clock()
    try:
        mod.train(
            params,
            d.train,
            epochs=epochs,
            batch_size=DIGITS_BATCH,
            lr=DIGITS_LR,
            optimizer="adam",
            seed=0,
            callback=callback,
        )
        end = time.perf_counter()
    except StopTraining:
        end = done["at"]
    reached = len(accs) if done else None
    return Run(reached, clock.elapsed(end), accs, copy_params(params))


@dataclass
class Runner:
    """A training loop in one framework: fresh state, one epoch over given rows,
    test accuracy (in the same framework), the params as NumPy arrays."""

    init: Callable[[], dict]
    train_epoch: Callable[[dict, np.ndarray], None]
    accuracy: Callable[[dict], float]
    numpy_params: Callable[[dict], dict]


def loop_run(d: Digits, epochs: int, target: float, runner: Runner) -> Run:
    """Epoch after epoch of ``runner.train_epoch``, tested after each."""
    accs, state = [], runner.init()
    orders = batch_orders(d.train["X"].shape[0])
    numpy_params = runner.numpy_params
    clock = Clock()
    for _ in range(epochs):
        runner.train_epoch(state, next(orders))
        now = time.perf_counter()
        accs.append(clock.evaluate(lambda: runner.accuracy(state)))
        if accs[-1] >= target:
            return Run(len(accs), clock.elapsed(now), accs, copy_params(numpy_params(state)))
    return Run(None, clock.elapsed(now), accs, copy_params(numpy_params(state)))


def numpy_runner(d: Digits):
    mod, X, T = d.mod, d.train["X"], d.train["T"]

    def init():
        return {"params": copy_params(d.params), "adam": {}}

    def train_epoch(state, rows):
        for s in range(0, len(rows), DIGITS_BATCH):
            idx = rows[s : s + DIGITS_BATCH]
            batch = {"X": X[idx], "T": T[idx]}
            mod.adam_step(
                state["params"], mod.gradients(state["params"], batch), DIGITS_LR, state["adam"]
            )

    return Runner(
        init,
        train_epoch,
        lambda state: mod.accuracy(state["params"], d.test),
        lambda state: state["params"],
    )


def torch_runner(d: Digits):
    F = torch.nn.functional
    X, T = torch.from_numpy(d.train["X"]), torch.from_numpy(d.train["T"])

    def init():
        P = {k: torch.tensor(v, requires_grad=True) for k, v in d.params.items()}
        return {
            "P": P,
            "opt": torch.optim.Adam(P.values(), lr=DIGITS_LR, betas=(0.9, 0.999), eps=1e-8),
        }

    def train_epoch(state, rows):
        P, opt = state["P"], state["opt"]
        rows = torch.from_numpy(rows)
        for s in range(0, len(rows), DIGITS_BATCH):
            idx = rows[s : s + DIGITS_BATCH]
            xb, tb = X[idx], T[idx]
            a1 = torch.sigmoid(torch.addmm(P["b1"], xb, P["W1"]))
            a2 = torch.sigmoid(torch.addmm(P["b2"], a1, P["W2"]))
            loss = F.cross_entropy(torch.addmm(P["b3"], a2, P["W3"]), tb)
            opt.zero_grad()
            loss.backward()
            opt.step()

    X_test = torch.from_numpy(d.test["X"])
    labels = torch.from_numpy(d.test["T"]).argmax(dim=1)

    def accuracy(state):
        P = state["P"]
        with torch.no_grad():
            a1 = torch.sigmoid(torch.addmm(P["b1"], X_test, P["W1"]))
            a2 = torch.sigmoid(torch.addmm(P["b2"], a1, P["W2"]))
            z3 = torch.addmm(P["b3"], a2, P["W3"])
        return float((z3.argmax(dim=1) == labels).double().mean())

    def numpy_params(state):
        return {k: p.detach().numpy() for k, p in state["P"].items()}

    return Runner(init, train_epoch, accuracy, numpy_params)


def jax_runner(d: Digits):
    b1, b2, eps, lr = 0.9, 0.999, 1e-8, DIGITS_LR
    X, T = jnp.asarray(d.train["X"]), jnp.asarray(d.train["T"])

    def loss(P, xb, tb):
        a1 = jax.nn.sigmoid(xb @ P["W1"] + P["b1"])
        a2 = jax.nn.sigmoid(a1 @ P["W2"] + P["b2"])
        z3 = a2 @ P["W3"] + P["b3"]
        return -jnp.sum(tb * jax.nn.log_softmax(z3, axis=1)) / xb.shape[0]

    def adam(P, m, v, t, idx):
        g = jax.grad(loss)(P, X[idx], T[idx])
        t = t + 1
        m = jax.tree.map(lambda m, g: b1 * m + (1 - b1) * g, m, g)
        v = jax.tree.map(lambda v, g: b2 * v + (1 - b2) * g * g, v, g)
        c1, c2 = 1 - b1**t, 1 - b2**t
        P = jax.tree.map(lambda p, m, v: p - lr * (m / c1) / (jnp.sqrt(v / c2) + eps), P, m, v)
        return P, m, v, t

    step = jax.jit(adam, donate_argnums=(0, 1, 2))

    def init():  # fresh buffers for each (they are donated)
        def zeros():
            return {k: jnp.zeros(v.shape, v.dtype) for k, v in d.params.items()}

        return {
            "P": {k: jnp.array(v) for k, v in d.params.items()},
            "m": zeros(),
            "v": zeros(),
            "t": jnp.asarray(0, d.mod.DTYPE),
        }

    def train_epoch(state, rows):
        P, m, v, t = state["P"], state["m"], state["v"], state["t"]
        rows = jnp.asarray(rows)
        for s in range(0, len(rows), DIGITS_BATCH):
            P, m, v, t = step(P, m, v, t, rows[s : s + DIGITS_BATCH])
        jax.block_until_ready(P)
        state.update(P=P, m=m, v=v, t=t)

    X_test, labels = jnp.asarray(d.test["X"]), jnp.asarray(d.test["T"].argmax(axis=1))

    @jax.jit
    def correct(P):
        a1 = jax.nn.sigmoid(X_test @ P["W1"] + P["b1"])
        a2 = jax.nn.sigmoid(a1 @ P["W2"] + P["b2"])
        return jnp.mean((a2 @ P["W3"] + P["b3"]).argmax(axis=1) == labels)

    def numpy_params(state):
        return {k: np.asarray(p) for k, p in state["P"].items()}

    return Runner(init, train_epoch, lambda state: float(correct(state["P"])), numpy_params)


def time_to_accuracy(args) -> int:
    d = load_digits(args.digits_dtype, 2 if args.quick else 100)
    runners = {"generated train": None, "generated gradients + adam_step": numpy_runner(d)}
    if torch is not None:
        runners["PyTorch"] = torch_runner(d)
    if jax is not None:
        runners["JAX"] = jax_runner(d)

    def run(name, epochs, target):
        if runners[name] is None:
            return generated_train_run(d, epochs, target)
        return loop_run(d, epochs, target, runners[name])

    quiet = 0.0 if args.quick else SETTLE  # a smoke run times nothing worth a pause
    warm = {}
    for name in runners:  # one untimed epoch from the same params (JAX compiles here)
        time.sleep(quiet)
        t0 = time.perf_counter()
        run(name, 1, 2.0)
        warm[name] = time.perf_counter() - t0
    runs = {name: [] for name in runners}
    repeats = 1 if args.quick else args.repeats
    for r in range(repeats):
        names = list(runners)
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            time.sleep(quiet)
            runs[name].append(run(name, d.max_epochs, TARGET_ACCURACY))

    n_train, n_test = d.train["X"].shape[0], d.test["X"].shape[0]
    print(
        f"\n## Time to {TARGET_ACCURACY:.0%} test accuracy on digits\n\n"
        f"seed002 64→{DIGITS_WIDTHS['n_h1']}→{DIGITS_WIDTHS['n_h2']}→10 sigmoid, softmax CE "
        f"mean, {args.digits_dtype}; {n_train} train / {n_test} test examples, standardised; "
        f"Adam lr {DIGITS_LR}, batch {DIGITS_BATCH}; median of {repeats} runs\n"
    )
    print(
        f"| framework | epochs to {TARGET_ACCURACY:.0%} | seconds to {TARGET_ACCURACY:.0%} "
        "| ms per epoch | warm-up epoch s (not counted) |"
    )
    print("|---|---|---|---|---|")
    status = 0
    for name, rs in runs.items():
        epochs = {r.epochs for r in rs}
        seconds = statistics.median(r.seconds for r in rs)
        count = rs[0].epochs or len(rs[0].accuracies)
        shown = str(rs[0].epochs) if rs[0].epochs else f"not reached in {d.max_epochs}"
        if len(epochs) > 1:
            shown += f" (runs differ: {sorted(epochs, key=str)})"
        print(
            f"| {name} | {shown} | {seconds:.3f} | {seconds / count * 1e3:.1f} | {warm[name]:.3f} |"
        )
    ref_name = "generated gradients + adam_step"
    reference = runs[ref_name][0]

    def correct(run):  # test examples right per epoch (exact, unlike the float accuracies)
        return [round(a * n_test) for a in run.accuracies]

    print(
        f"\nTest accuracy per epoch ({ref_name}): "
        + ", ".join(f"{a:.3f}" for a in reference.accuracies)
    )
    tol = 1e-6 if args.digits_dtype == "float64" else 1e-2
    for name, rs in runs.items():
        if name == ref_name:
            continue
        r = rs[0]
        same = correct(r) == correct(reference)
        diff = max(rel_diff(r.params[k], reference.params[k]) for k in reference.params)
        if diff > tol and args.digits_dtype == "float64":
            status = 1
        print(
            f"- {name} vs {ref_name}: per-epoch test accuracies "
            + ("identical" if same else "differ: " + ", ".join(f"{a:.3f}" for a in r.accuracies))
            + f"; final params rel diff {diff:.1e}"
            + ("" if diff <= tol else f"  **more than {tol:g}**")
        )
    return status


# --- main ----------------------------------------------------------------------------------


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--threads",
        type=int,
        help="threads for BLAS, PyTorch and XLA (re-runs in a subprocess with the environment set)",
    )
    ap.add_argument("--quick", action="store_true", help="few steps and runs: a smoke run")
    ap.add_argument("--only", help="comma-separated workloads: " + ", ".join(WORKLOADS))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument(
        "--settle",
        type=float,
        default=0.1,
        help="seconds of pause (untimed) before each block of steps of another contender",
    )
    ap.add_argument("--repeats", type=int, default=5, help="digits training runs per framework")
    ap.add_argument("--digits-dtype", choices=("float64", "float32"), default="float64")
    ap.add_argument("--skip-steps", action="store_true", help="only the digits part")
    ap.add_argument("--skip-digits", action="store_true", help="only the step part")
    args = ap.parse_args(argv)
    if args.quick:  # a smoke run of a few seconds (tests/test_benchmarks.py runs it)
        args.only = args.only or SMALLEST
        args.rounds = 1
        args.settle = 0.0  # no pauses: nothing it times is reported as a measurement

    if args.threads and os.environ.get(CHILD_MARK) != str(args.threads):
        env = dict(os.environ, **{v: str(args.threads) for v in THREAD_VARS})
        env[CHILD_MARK] = str(args.threads)
        if args.threads == 1:
            env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " " + XLA_ONE_THREAD).strip()
        argv = sys.argv[1:] if argv is None else argv
        return subprocess.call(
            [sys.executable, "-m", "benchmarks.frameworks", *argv], env=env, cwd=ROOT
        )

    if args.threads:
        pin(args.threads)
    names = args.only.split(",") if args.only else list(WORKLOADS)
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown:
        ap.error(f"unknown workload {', '.join(unknown)}; known: {', '.join(WORKLOADS)}")
    # a smoke run keeps PyTorch on one thread: on a busy machine its spinning pool made
    # each tiny backward 60 ms (quick mode checks results, not speed)
    import_peers(args.threads or (1 if args.quick else None))
    for note in NOTES:
        print(f"**Note: {note}**\n")
    status = 0
    if not args.skip_steps:
        try:
            with tempfile.TemporaryDirectory() as tmp:
                results = [run_workload(WORKLOADS[n], Path(tmp), args) for n in names]
        except CheckFailed as exc:
            print(f"**CORRECTNESS CHECK FAILED, nothing timed: {exc}**", file=sys.stderr)
            return 1
        print_step_table(results, args)
        status |= any(r["problems"] for r in results)
    if not args.skip_digits:
        status |= time_to_accuracy(args)
    return int(status)


if __name__ == "__main__":
    sys.exit(main())
