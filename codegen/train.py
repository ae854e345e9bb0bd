"""``derive train`` and ``derive test``: a spec, a data source, a trained and evaluated model.

Training generates the spec's module (:func:`codegen.generate`), loads it,
binds the data set to the spec's input and target (transposed for a
column-layout spec, labels one-hot encoded where the target is ``onehot``),
standardises the features on the training part, and runs the module's own
``train`` with a progress line per epoch.  The weights and the
standardisation are saved together, atomically (``.npz``; with ``--npy`` one
``.npy`` per array, as seed002 does).  Testing reloads both and reports the
loss, the accuracy and the confusion matrix.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import tempfile
from pathlib import Path
from types import ModuleType

import numpy as np

import derive
from derive.errors import SpecError

from . import data as datasets
from . import generate, parse_bindings

DEFAULT_WIDTH = 32  # a hidden dimension no option and no data set fixes


def module_for(spec: str, dtype: str = "float64", bind: dict | None = None) -> ModuleType:
    """Generate the spec's module into a temporary file and import it."""
    source = generate(spec, dtype=dtype, bind=bind)
    fd, path = tempfile.mkstemp(suffix=".py", prefix="derive_module_")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(source)
    spec_obj = importlib.util.spec_from_file_location(Path(path).stem, path)
    assert spec_obj is not None and spec_obj.loader is not None  # a .py path always has both
    module = importlib.util.module_from_spec(spec_obj)
    spec_obj.loader.exec_module(module)
    os.unlink(path)
    return module


def _one(names: dict, what: str, spec: str) -> str:
    if len(names) != 1:
        raise SpecError(
            f"derive train needs exactly one {what} in the spec, found "
            f"{len(names)}: {', '.join(names) or 'none'}",
            spec,
            1,
            1,
        )
    return next(iter(names))


def bind(mod: ModuleType, net, ds: datasets.Dataset, spec: str) -> tuple[dict, dict]:
    """The module's ``data`` dict for a data set, and the dims the data fixes."""
    x_name = _one(mod.INPUTS, "input", spec)
    t_name = _one(mod.TARGETS, "target", spec)
    x_axis = mod.BATCH_AXES[x_name]
    t_axis = mod.BATCH_AXES[t_name]
    target = net.quantities[t_name]
    if ds.n_classes is not None:
        onehot = target.onehot_axis is not None or len(target.shape) == 2 and ds.n_classes > 2
        if onehot:
            datasets.check_labels(ds, ds.n_classes, spec)
            t = datasets.one_hot(ds.targets, ds.n_classes)
        else:  # binary labels for a sigmoid output
            t = ds.targets.reshape(-1, 1).astype(float)
    else:
        t = ds.targets.reshape(len(ds.targets), -1)
    x = ds.features
    data = {x_name: x if x_axis == 0 else x.T, t_name: t if t_axis == 0 else t.T}
    dims: dict[str, int] = {}
    for name, arr in data.items():
        shape = mod.INPUTS.get(name) or mod.TARGETS[name]
        for dim, size in zip(shape, arr.shape, strict=True):
            if not dim.isdigit():
                if dims.get(dim, size) != size:
                    raise SpecError(
                        f"the data gives dimension {dim} two sizes: {dims[dim]} and {size}",
                        spec,
                        1,
                        1,
                    )
                dims[dim] = size
            elif int(dim) != size:
                raise SpecError(
                    f"{name} has a fixed dimension {dim} but the data has {size}", spec, 1, 1
                )
    return data, dims


def classes(mod: ModuleType, params: dict, data: dict):
    """(true class, predicted class, number of classes) of every example, from one
    prediction; None when the target is not classes (a regression)."""
    t_name = next(iter(mod.TARGETS))
    t = np.asarray(data[t_name])
    axis = 1 - mod.BATCH_AXES[t_name] if t.ndim == 2 else 0
    out = np.asarray(mod.predict(params, data))
    if t.ndim == 2 and t.shape[axis] > 1:
        return np.argmax(t, axis=axis), np.argmax(out, axis=axis), t.shape[axis]
    if set(np.unique(t)) <= {0.0, 1.0}:  # one sigmoid output: 0/1
        return (t > 0.5).astype(int).ravel(), (out > 0.5).astype(int).ravel(), 2
    return None


def confusion(truth: np.ndarray, guess: np.ndarray, k: int) -> list[list[int]]:
    """Counts of (true class, predicted class)."""
    matrix = np.zeros((k, k), dtype=int)
    np.add.at(matrix, (truth, guess), 1)
    return matrix.tolist()


# ---------------------------------------------------------------------------


def _progress(epochs: int):
    def show(epoch: int, history: dict) -> None:
        stream = sys.stderr
        done = epoch + 1
        bar = "#" * (20 * done // epochs) + "." * (20 - 20 * done // epochs)
        parts = [f"epoch {done:>4}/{epochs} [{bar}]", f"loss {history['loss'][-1]:.5g}"]
        if history["val_loss"]:
            parts.append(f"val_loss {history['val_loss'][-1]:.5g}")
        if history.get("val_accuracy") and history["val_accuracy"][-1] is not None:
            parts.append(f"val_acc {100 * history['val_accuracy'][-1]:.1f}%")
        end = "\r" if stream.isatty() and done < epochs else "\n"
        print("  ".join(parts), end=end, file=stream, flush=True)

    return show


def save_weights(path: str, params: dict, extra: dict, npy: bool) -> None:
    """Params and the feature standardisation, atomically (temporary file, then rename)."""
    arrays = {**params, **{f"__{k}__": v for k, v in extra.items()}}
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if npy:  # one .npy per array beside the .npz, as seed002 saves its weights
        folder = target.with_suffix("")
        folder.mkdir(parents=True, exist_ok=True)
        for name, value in arrays.items():
            fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
            with os.fdopen(fd, "wb") as f:
                np.save(f, value)
            os.replace(tmp, folder / f"{name.strip('_')}.npy")


def load_weights(path: str, mod: ModuleType) -> tuple[dict, dict]:
    """The params saved by ``derive train`` (``.npz``), checked against the module's."""
    try:
        with np.load(path) as f:
            missing = [p for p in mod.PARAMS if p not in f]
            if missing:
                raise SpecError(
                    f"the weights lack {', '.join(missing)}: were they trained for this spec?",
                    path,
                    1,
                    1,
                )
            params = {p: f[p].astype(mod.DTYPE) for p in mod.PARAMS}
            extra = {k.strip("_"): f[k] for k in f.files if k.startswith("__")}
    except (OSError, ValueError) as exc:
        raise SpecError(f"cannot read weights: {exc}", path, 1, 1) from None
    return params, extra


def _plot(path: str, history: dict) -> None:
    try:
        import matplotlib
    except ImportError:
        raise SpecError("--plot needs matplotlib: pip install -e '.[plot]'", path, 1, 1) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    epochs = np.arange(1, len(history["loss"]) + 1)
    ax.plot(epochs, history["loss"], label="training loss")
    if history["val_loss"]:
        ax.plot(epochs, history["val_loss"], label="validation loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    handles = ax.get_lines()
    if history.get("val_accuracy") and history["val_accuracy"][0] is not None:
        acc = ax.twinx()
        acc.plot(epochs, history["val_accuracy"], color="tab:green", label="validation accuracy")
        acc.set_ylabel("validation accuracy")
        acc.set_ylim(0, 1)
        handles = [*handles, *acc.get_lines()]
    ax.legend(handles=handles, loc="center right")
    fig.tight_layout()
    tmp = Path(path).with_suffix(".tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, path)


def _standardisation(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of each feature on the training part (a constant: 1)."""
    mean = features.mean(axis=0)
    std = features.std(axis=0)
    return mean, np.where(std > 0, std, 1.0)


def _dims_option(items: list[str]) -> dict[str, int]:
    out = {}
    for item in items:
        name, _, size = item.partition("=")
        if not name.isidentifier() or not size.isdigit() or int(size) < 1:
            raise SpecError(f"--dim expects NAME=SIZE, got {item!r}", "<options>", 1, 1)
        out[name] = int(size)
    return out


def run_train(args) -> dict:
    """``derive train``: train a spec's generated module on a data set and save the weights."""
    net = derive.load_network(args.spec)
    mod = module_for(args.spec, args.dtype, parse_bindings(args.bind))
    ds = datasets.load(args.data, part="train", seed=args.seed)
    mean, std = _standardisation(ds.features)
    ds = datasets.Dataset(ds.name, (ds.features - mean) / std, ds.targets, ds.n_classes)
    data, dims = bind(mod, net, ds, args.data)
    dims = {**{d: DEFAULT_WIDTH for d in mod.DIMS}, **dims, **_dims_option(args.dim)}
    params = mod.init_params(dims, seed=args.seed)
    history = mod.train(
        params,
        data,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        optimizer=args.optimizer,
        val_fraction=args.val_fraction,
        patience=args.patience,
        seed=args.seed,
        callback=_progress(args.epochs),
    )
    save_weights(args.out, params, {"mean": mean, "std": std}, args.npy)
    print(f"weights: {args.out}", file=sys.stderr)
    if args.plot:
        _plot(args.plot, history)
        print(f"learning curve: {args.plot}", file=sys.stderr)
    return history


def run_test(args) -> dict:
    """``derive test``: evaluate saved weights on a data set's test part."""
    net = derive.load_network(args.spec)
    mod = module_for(args.spec, args.dtype, parse_bindings(args.bind))
    params, extra = load_weights(args.weights, mod)
    ds = datasets.load(args.data, part="test", seed=args.seed)
    if "mean" in extra:
        ds = datasets.Dataset(
            ds.name, (ds.features - extra["mean"]) / extra["std"], ds.targets, ds.n_classes
        )
    data, _ = bind(mod, net, ds, args.data)
    found = classes(mod, params, data)
    report = {
        "loss": mod.loss(params, data),
        "accuracy": float(np.mean(found[0] == found[1])) if found else None,
        "confusion": confusion(*found) if found else None,
        "examples": len(ds.targets),
    }
    if args.format == "json":
        print(json.dumps(report))
    else:
        print(f"test loss {report['loss']:.6g} on {report['examples']} examples")
        if report["accuracy"] is not None:
            print(f"accuracy  {100 * report['accuracy']:.2f}%")
        if report["confusion"] is not None:
            print("confusion (rows: true class, columns: predicted)")
            for row in report["confusion"]:
                print("  " + " ".join(f"{v:>5}" for v in row))
    return report
