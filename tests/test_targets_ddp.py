"""Data-parallel training of a ``--target torch`` module: two processes (``gloo``,
``DistributedDataParallel``) follow the same loss curve as one process with the
same global batch.

The bundled spec ``seed002`` averages its loss over the batch, so the mean of
the two ranks' gradients (what DDP's all-reduce computes) is the gradient of
the whole batch: the curves agree to rounding.
"""

from __future__ import annotations

import os
import socket
import sys

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from codegen.targets import generate_target
from tests.targets_helpers import load_module

STEPS, LR, BATCH, WORLD = 12, 0.5, 16, 2
DIMS = {"B": BATCH, "n_in": 5, "n_h1": 6, "n_h2": 4, "n_out": 3}


def make_data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((BATCH, DIMS["n_in"]))
    T = np.eye(DIMS["n_out"])[rng.integers(0, DIMS["n_out"], BATCH)]
    return {"X": torch.tensor(X), "T": torch.tensor(T)}


def train(model, data, step_loss):
    """Plain SGD; ``step_loss(local_loss)`` gives the global loss of each step."""
    optimiser = torch.optim.SGD(model.parameters(), lr=LR)
    curve = []
    for _ in range(STEPS):
        optimiser.zero_grad()
        value = model(data)
        value.backward()
        optimiser.step()
        curve.append(step_loss(value.detach()))
    return curve


def worker(rank: int, path: str, address: str, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=address, rank=rank, world_size=WORLD)
    try:
        mod = load_module(path, "ddp_seed002")
        model = torch.nn.parallel.DistributedDataParallel(mod.Model(DIMS, seed=0))
        half = BATCH // WORLD
        data = {k: v[rank * half : (rank + 1) * half] for k, v in make_data().items()}

        def global_loss(local):
            dist.all_reduce(local)  # the mean of equal halves' means: the whole batch's
            return local.item() / WORLD

        curve = train(model, data, global_loss)
        if rank == 0:
            params = {k: v.detach().numpy() for k, v in model.module.param_dict().items()}
            np.savez(out, curve=np.array(curve), **params)
        dist.barrier()  # neither rank tears gloo down while the other still talks to it
    finally:
        dist.destroy_process_group()
    # Leave without C++ static destructors: under load gloo's threads can still be
    # joinable at interpreter exit, and std::terminate then aborts a finished worker.
    # The results are on disk and checked by the parent.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def test_two_processes_follow_the_one_process_curve(tmp_path):
    path = tmp_path / "ddp_seed002.py"
    path.write_text(generate_target("seed002", "torch"), encoding="utf-8")
    out = tmp_path / "ddp.npz"
    with socket.socket() as s:  # a free port on this machine for the rendezvous
        s.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{s.getsockname()[1]}"
    mp.spawn(worker, args=(str(path), address, str(out)), nprocs=WORLD)

    mod = load_module(path, "one_seed002")
    model = mod.Model(DIMS, seed=0)
    curve = train(model, make_data(), lambda value: value.item())
    with np.load(out) as ddp:
        np.testing.assert_allclose(ddp["curve"], curve, rtol=1e-12, atol=0)
        for key, value in model.param_dict().items():
            np.testing.assert_allclose(ddp[key], value.detach().numpy(), rtol=1e-10, atol=1e-13)
    assert curve[-1] < 0.8 * curve[0]  # it trains
