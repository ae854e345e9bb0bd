"""Shared by the target tests: every spec to generate, random workloads, module loading."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

import derive
from codegen.targets import generate_target
from derive import ir

ROOT = Path(__file__).resolve().parents[1]
TEST_SPECS = ROOT / "tests" / "specs"
# generic functions bound to a mix of activations, so that most kernels run
BIND = {
    "seed000_generic": {"f": "tanh"},
    "seed003": {"f1": "sigmoid", "f2": "tanh", "f3": "softplus"},
    "generic": {"f": "tanh", "g": "sigmoid"},
}
# test specs no module can hold: they name an equation ``loss``, a function of every module
# (tests/test_targets_torch.py checks that such names are refused)
REFUSED = {"karpathy", "nnfs"}
# bundled specs the numpy target only can generate, so far (the others refuse them):
# rank 3 or layout (reshape, slices, einsum), index inputs ``index(V)``, masks ``bernoulli(p)``
TENSORS = {
    n
    for n in derive.bundled()
    if any(ir.is_tensor(eq.expr) for eq in derive.load_network(n).equations)
    or any(q.classes is not None or q.keep for q in derive.load_network(n).of_kind("input"))
}
# every other bundled spec (class labels included) and every other test spec: name -> source
SPECS = {name: name for name in derive.bundled() if name not in TENSORS} | {
    p.stem: str(p) for p in sorted(TEST_SPECS.glob("*.nn")) if p.stem not in REFUSED
}
# the specs with class labels (``target y[N] labels(C)``: x[range(N), y], p − onehot(y))
LABELS = {
    n
    for n, source in SPECS.items()
    if any(q.classes is not None for q in derive.load_network(source).of_kind("target"))
}
# specs of rank 3 or with layout (reshape, slices, einsum): the numpy target only, so far
# (codegen/targets refuses them in one line)
TENSORS = {
    n
    for n, source in SPECS.items()
    if any(ir.is_tensor(eq.expr) for eq in derive.load_network(source).equations)
}
SPECS = {n: source for n, source in SPECS.items() if n not in TENSORS}


def load_module(path: Path, name: str):
    """Import a generated module from ``path`` (its source was ``ast.parse``d already)."""
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def generate_all(target: str, directory: Path) -> dict:
    """Generate, write and import the ``target`` module of every spec; ruff checks them all."""
    paths = {}
    for name, source in SPECS.items():
        path = directory / f"{target}_{name}.py"
        path.write_text(generate_target(source, target, bind=BIND.get(name)), encoding="utf-8")
        paths[name] = path
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    config = str(ROOT / "pyproject.toml")
    files = [str(p) for p in paths.values()]
    check = subprocess.run([ruff, "check", "--config", config, *files], capture_output=True)
    assert check.returncode == 0, check.stdout.decode()
    fmt = subprocess.run(
        [ruff, "format", "--check", "--config", config, *files], capture_output=True
    )
    assert fmt.returncode == 0, fmt.stdout.decode()
    return {name: load_module(path, f"{target}_{name}") for name, path in paths.items()}


def workload(name: str, mod, seed: int = 0):
    """Random dims (2 to 4), params from the module's ``init_params`` as NumPy arrays
    plus noise (so zero biases matter), inputs, and targets that suit the loss:
    one-hot where the spec says so, integer class labels for ``labels`` targets, 0/1 for
    cross-entropy of a sigmoid, normal else."""
    rng = np.random.default_rng(seed)
    net = derive.load_network(SPECS[name])
    dims = {d: int(rng.integers(2, 5)) for d in mod.DIMS}
    params = {
        k: np.asarray(v.detach() if hasattr(v, "detach") else v, dtype=float)
        for k, v in mod.init_params(dims, seed=seed).items()
    }
    params = {k: v + rng.normal(scale=0.3, size=v.shape) for k, v in params.items()}
    data = {}
    for tname, shape in mod.TARGETS.items():
        s = tuple(int(d) if d.isdigit() else dims[d] for d in shape)
        axis = net.quantities[tname].onehot_axis
        classes = net.quantities[tname].classes
        if classes is not None:  # class labels: integers in [0, classes)
            data[tname] = rng.integers(0, dims.get(str(classes), 0) or int(classes), s)
        elif axis is not None:
            labels = rng.integers(0, s[axis], s[1 - axis])
            onehot = np.eye(s[axis])[labels]
            data[tname] = onehot if axis == 1 else onehot.T
        elif name.startswith("seed004"):
            data[tname] = rng.integers(0, 2, s).astype(float)
        else:
            data[tname] = rng.normal(size=s)
    for iname, shape in mod.INPUTS.items():
        data[iname] = rng.normal(size=tuple(int(d) if d.isdigit() else dims[d] for d in shape))
    return dims, params, data
