"""Generated modules: in sync with the generator, equal to the hand-written references,
right by finite differences, trainable, stable at extreme inputs, ruff-clean."""

from __future__ import annotations

import importlib
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import codegen
import derive
from codegen.bundled import BINDINGS, OUT, modules
from derive import SpecError
from tests.helpers import finite_differences, rel_error
from tests.test_unbundled import CASES, SPECS

BUNDLED = list(derive.bundled())


def load_module(path: Path, name: str | None = None):
    spec = importlib.util.spec_from_file_location(name or path.stem, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def module_from_source(source: str, tmp_path: Path, name: str):
    path = tmp_path / f"{name}.py"
    path.write_text(source)
    return load_module(path, name)


@pytest.fixture(scope="module")
def generated():
    return {name: load_module(OUT / f"{name}.py", f"generated_{name}") for name in BUNDLED}


def test_generated_modules_are_in_sync_with_the_generator():
    for filename, source in modules().items():
        committed = (OUT / filename).read_text()
        assert committed == source, f"generated/{filename} is stale: python -m codegen.bundled"


def test_generated_code_is_ruff_clean():
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    files = [str(OUT / f"{n}.py") for n in BUNDLED]
    check = subprocess.run([ruff, "check", *files], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout
    fmt = subprocess.run([ruff, "format", "--check", *files], capture_output=True, text=True)
    assert fmt.returncode == 0, fmt.stdout


# --- against the hand-written references ------------------------------------------------------


def workload(name: str, mod, seed: int = 0):
    rng = np.random.default_rng(seed)
    sizes = {"B": 6, "n": 6}
    dims = {d: sizes.get(d, int(rng.integers(2, 6))) for d in mod.DIMS}
    params = mod.init_params(dims, seed=seed)
    for p in params.values():  # non-zero biases, so they matter
        p += rng.normal(scale=0.1, size=p.shape)
    data = {}
    net = derive.load_network(name)
    dims = {**dims, **{str(n): n for n in range(1, 65)}}  # literal sizes (X[N, 1, 8, 8])
    for tname, shape in mod.TARGETS.items():
        s = tuple(dims[d] for d in shape)
        classes = net.quantities[tname].classes
        if classes is not None:  # integer class labels
            data[tname] = rng.integers(0, dims[str(classes)], s)
        elif name == "seed002":
            data[tname] = np.eye(s[1])[rng.integers(0, s[1], s[0])]
        elif name.startswith("seed004"):
            data[tname] = rng.integers(0, 2, s).astype(float)
        else:
            data[tname] = rng.normal(size=s)
    for iname, shape in mod.INPUTS.items():
        s, classes = tuple(dims[d] for d in shape), net.quantities[iname].classes
        if classes is not None:  # an index input: rows of a table (makemore's characters)
            data[iname] = rng.integers(0, dims[str(classes)], s)
        else:
            data[iname] = rng.normal(size=s)
    return params, data


REF_FUNCS = {
    "seed000_generic": {
        "f": lambda z: np.maximum(z, 0),
        "f_prime": lambda z: (z > 0).astype(float),
    },
    "seed003": {
        k: v
        for i in (1, 2, 3)
        for k, v in (
            (f"f{i}", lambda z: 1 / (1 + np.exp(-z))),
            (f"f{i}_prime", lambda z: np.exp(-z) / (1 + np.exp(-z)) ** 2),
        )
    },
}


@pytest.mark.parametrize("name", BUNDLED)
def test_forward_loss_gradients_and_step_match_the_reference(name, generated):
    mod = generated[name]
    ref = importlib.import_module(f"tests.reference.{name}")
    funcs = REF_FUNCS.get(name, {})
    params, data = workload(name, mod)
    fwd, want = mod.forward(params, data), ref.forward(params, data, **funcs)
    for q, value in want.items():
        np.testing.assert_allclose(fwd[q], value, rtol=1e-10, atol=1e-12, err_msg=q)
    assert mod.loss(params, data) == pytest.approx(ref.loss(params, data, **funcs), rel=1e-10)
    got, want = mod.gradients(params, data), ref.gradients(params, data, **funcs)
    for p in params:
        np.testing.assert_allclose(got[p], want[p], rtol=1e-10, atol=1e-12, err_msg=p)
    ours = {k: v.copy() for k, v in params.items()}
    theirs = {k: v.copy() for k, v in params.items()}
    mod.sgd_step(ours, mod.gradients(ours, data), 0.05)
    ref.sgd_step(theirs, ref.gradients(theirs, data, **funcs), 0.05)
    for p in params:
        np.testing.assert_allclose(ours[p], theirs[p], rtol=1e-10, atol=1e-12, err_msg=p)


@pytest.mark.parametrize("name", BUNDLED)
def test_training_lowers_the_loss(name, generated):
    mod = generated[name]
    params, data = workload(name, mod, seed=1)
    before = mod.loss(params, data)
    history = mod.train(params, data, epochs=30, batch_size=4, lr=0.02, seed=0)
    assert history["loss"][-1] < before


# --- networks no table knows -----------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(CASES))
def test_unbundled_modules_match_finite_differences(name, tmp_path):
    data, params, loss = CASES[name]
    funcs = {k: v for k, v in data.items() if callable(v)}
    bind = {"f": "tanh", "g": "sigmoid"} if funcs else None
    mod = module_from_source(codegen.generate(SPECS / f"{name}.nn", bind=bind), tmp_path, name)
    data = {k: v for k, v in data.items() if not callable(v)}
    if bind:  # the test's own loss with the bound functions

        def loss(p, d):  # noqa: ARG001
            h = np.tanh(d["x"] @ p["W"] + p["b"])
            return np.mean((1 / (1 + np.exp(-(h @ p["V"]))) - d["t"]) ** 2)

    params = {k: v.copy() for k, v in params.items()}
    got = mod.gradients(params, data)
    want = finite_differences(lambda: loss(params, data), params)
    for p in params:
        assert got[p].shape == params[p].shape
        assert rel_error(got[p], want[p]) < 1e-6, p
    before = mod.loss(params, data)
    mod.train(params, data, epochs=20, batch_size=5, lr=0.01, seed=0)
    assert mod.loss(params, data) < before


# --- numerics --------------------------------------------------------------------------------


def test_extreme_logits_give_finite_loss_and_gradients(generated):
    for name in ("seed002", "seed004", "seed004_deep", "seed003_sigmoid"):
        mod = generated[name]
        params, data = workload(name, mod)
        for p in params.values():
            p *= 1000.0  # pre-activations of order 1000: sigmoid and softmax saturate
        fwd = mod.forward(params, data)
        assert np.isfinite(fwd[mod.LOSS]), name
        for p, g in mod.gradients(params, data).items():
            assert np.all(np.isfinite(g)), (name, p)


def test_bce_is_finite_when_predictions_are_exactly_0_or_1(generated):
    mod = generated["seed004"]
    params, data = workload("seed004", mod)
    params["W2"][:] = 1e4 * np.sign(params["W2"])
    y_hat = mod.forward(params, data)["Y_hat"]
    assert np.any((y_hat == 0) | (y_hat == 1))  # saturated in float64
    data["Y"] = 1.0 - (y_hat > 0.5)  # every prediction exactly wrong
    assert np.isfinite(mod.loss(params, data))
    assert all(np.all(np.isfinite(g)) for g in mod.gradients(params, data).values())


def test_float32_module_computes_in_float32(tmp_path):
    mod = module_from_source(codegen.generate("seed002", dtype="float32"), tmp_path, "s2_f32")
    params, data = workload("seed002", mod)
    assert all(p.dtype == np.float32 for p in params.values())
    grads = mod.gradients(params, data)
    assert all(g.dtype == np.float32 for g in grads.values())


# --- weights on disk -------------------------------------------------------------------------


def test_save_and_load_round_trip(generated, tmp_path):
    mod = generated["seed000"]
    params, _ = workload("seed000", mod)
    mod.save(tmp_path / "w.npz", params)
    back = mod.load(tmp_path / "w.npz")
    for p in params:
        np.testing.assert_array_equal(back[p], params[p])


def test_save_is_atomic(generated, tmp_path, monkeypatch):
    mod = generated["seed000"]
    params, _ = workload("seed000", mod)
    path = tmp_path / "w.npz"
    mod.save(path, params)
    before = path.read_bytes()

    def boom(*args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        mod.save(path, {k: v + 1 for k, v in params.items()})
    assert path.read_bytes() == before  # the old weights are intact
    assert [p.name for p in tmp_path.iterdir()] == ["w.npz"]  # no temporary left


# --- the command -----------------------------------------------------------------------------


def test_gen_needs_bindings_for_generic_functions():
    with pytest.raises(SpecError, match="must be bound"):
        codegen.generate("seed003")
    with pytest.raises(SpecError, match="unknown function 'nope'"):
        codegen.generate("seed000_generic", bind={"f": "nope"})


def test_gen_command_writes_a_module(tmp_path, capsys):
    from derive.cli import main

    out = tmp_path / "m.py"
    assert main(["gen", "seed000_generic", "--bind", "f=tanh", "-o", str(out)]) == 0
    mod = load_module(out)
    assert "delta_h * (1 - (h**2))" in out.read_text()
    assert set(mod.PARAMS) == {"W", "S"}


def test_bundled_bindings_are_for_generic_specs():
    for name, bind in BINDINGS.items():
        assert set(bind) == set(derive.load_network(name).funcs)


# --- the fused step --------------------------------------------------------------------------


@pytest.mark.parametrize("name", BUNDLED)
def test_fused_train_step_equals_gradients_then_sgd(name, generated):
    mod = generated[name]
    params, data = workload(name, mod, seed=2)
    ours = {k: v.copy() for k, v in params.items()}
    ws: dict = {}
    for _ in range(3):  # the workspace is reused across steps
        want_loss = mod.loss(params, data)
        mod.sgd_step(params, mod.gradients(params, data), 0.05)
        assert mod.train_step(ours, data, 0.05, ws) == pytest.approx(want_loss, rel=1e-12)
    for p in params:
        np.testing.assert_allclose(ours[p], params[p], rtol=1e-12, atol=1e-14, err_msg=p)


@pytest.mark.parametrize("name", sorted(CASES))
def test_fused_step_on_unbundled_networks(name, tmp_path):
    data, params, _ = CASES[name]
    bind = {"f": "tanh", "g": "sigmoid"} if any(callable(v) for v in data.values()) else None
    mod = module_from_source(codegen.generate(SPECS / f"{name}.nn", bind=bind), tmp_path, name)
    data = {k: v for k, v in data.items() if not callable(v)}
    want = {k: v.copy() for k, v in params.items()}
    ours = {k: v.copy() for k, v in params.items()}
    mod.sgd_step(want, mod.gradients(want, data), 0.01)
    mod.train_step(ours, data, 0.01, {})
    for p in params:
        np.testing.assert_allclose(ours[p], want[p], rtol=1e-12, atol=1e-14, err_msg=p)


# --- training options ------------------------------------------------------------------------


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_each_optimizer_lowers_the_loss(optimizer, generated):
    mod = generated["seed002"]
    params, data = workload("seed002", mod, seed=3)
    before = mod.loss(params, data)
    lr = {"sgd": 0.5, "momentum": 0.1, "adam": 0.01}[optimizer]
    mod.train(params, data, epochs=100, batch_size=3, lr=lr, optimizer=optimizer)
    assert mod.loss(params, data) < 0.9 * before


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the lr is chosen to diverge
def test_validation_split_and_early_stopping_keep_the_best_params(generated):
    mod = generated["seed000"]
    rng = np.random.default_rng(0)
    dims = {"B": 40, "n_x": 5, "n_h": 4, "n_y": 2}
    params = mod.init_params(dims, seed=0)
    data = {"x": rng.normal(size=(40, 5)), "t": rng.normal(size=(40, 2))}
    seen = []
    history = mod.train(
        params,
        data,
        epochs=200,
        batch_size=8,
        lr=0.2,
        val_fraction=0.25,
        patience=3,
        seed=0,
        callback=lambda e, h: seen.append(e),
    )
    assert len(history["val_loss"]) == len(seen) < 200  # stopped early (diverging lr)
    best = min(history["val_loss"])
    n_val = 10
    order = np.random.default_rng(0).permutation(40)
    val = mod.take(data, order[:n_val])
    assert mod.loss(params, val) == pytest.approx(best, rel=1e-9)


@pytest.mark.parametrize("name", ["seed002", "seed004_deep"])
def test_bound_step_keeps_working_across_calls(name, generated):
    mod = generated[name]
    params, data = workload(name, mod, seed=4)
    ours = {k: v.copy() for k, v in params.items()}
    step = mod.bind_step(ours, data)
    for _ in range(4):
        want_loss = mod.loss(params, data)
        mod.sgd_step(params, mod.gradients(params, data), 0.03)
        assert step(0.03) == pytest.approx(want_loss, rel=1e-12)
    for p in params:
        np.testing.assert_allclose(ours[p], params[p], rtol=1e-12, atol=1e-14, err_msg=p)
