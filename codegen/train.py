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
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import numpy as np

import derive
from derive.errors import SpecError

from . import data as datasets
from . import generate

DEFAULT_WIDTH = 32  # a hidden dimension no option and no data set fixes


def module_for(spec: str, dtype: str = "float64", bind: dict | None = None) -> ModuleType:
    """Generate the spec's module into a temporary file and import it."""
    source = generate(spec, dtype=dtype, bind=bind)
    fd, path = tempfile.mkstemp(suffix=".py", prefix="derive_module_")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(source)
    spec_obj = importlib.util.spec_from_file_location(Path(path).stem, path)
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
    dims = {}
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


class Progress:
    """A ``tqdm`` bar on stderr: epochs, elapsed, ETA, rate, loss, validation loss and accuracy.

    ``quiet`` shows nothing.  Where stderr is not a terminal tqdm still
    writes its lines (a log keeps the final state).
    """

    def __init__(self, epochs: int, quiet: bool = False, desc: str = "training"):
        self.epochs, self.quiet, self.desc, self.bar = epochs, quiet, desc, None

    def __call__(self, epoch: int, history: dict) -> None:
        if self.quiet:
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(
                total=self.epochs,
                desc=self.desc,
                unit="epoch",
                file=sys.stderr,
                dynamic_ncols=True,
                leave=True,
                mininterval=0.2,
            )
        info = {"loss": f"{history['loss'][-1]:.4g}"}
        if history["val_loss"]:
            info["val_loss"] = f"{history['val_loss'][-1]:.4g}"
        if history.get("val_accuracy") and history["val_accuracy"][-1] is not None:
            info["val_acc"] = f"{100 * history['val_accuracy'][-1]:.1f}%"
        self.bar.set_postfix(info, refresh=False)
        self.bar.update(epoch + 1 - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def stopping_note(history: dict, epochs: int, patience: int | None) -> str | None:
    """One line on early stopping: when it stopped, which epoch's params were kept and why."""
    val = history["val_loss"]
    if not val or patience is None:
        return None
    best = int(np.argmin(val))  # the first minimum: the epoch whose params train() kept
    acc = history.get("val_accuracy") or []
    acc_text = (
        f", val acc {100 * acc[best]:.1f}%" if len(acc) > best and acc[best] is not None else ""
    )
    kept = f"kept the params of epoch {best + 1} (lowest val loss {val[best]:.4g}{acc_text})"
    if len(val) < epochs:
        return (
            f"early stopping at epoch {len(val)}/{epochs}: the validation loss did not improve "
            f"for {patience} epochs; {kept}"
        )
    return f"trained all {epochs} epochs; {kept}"


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


PLOT_FORMATS = ("png", "svg", "pdf")


def _plot(path: str, history: dict, title: str = "") -> None:
    """Learning curves for a report: a title (spec and data), type that reads at a glance,
    the legend below the axes (clear of the curves); PNG, SVG or PDF by the suffix."""
    fmt = Path(path).suffix.lower().lstrip(".") or "png"
    if fmt not in PLOT_FORMATS:
        raise SpecError(
            f"--plot: unknown image type .{fmt}; expected {', '.join(PLOT_FORMATS)}", path, 1, 1
        )
    try:
        import matplotlib
    except ImportError:
        raise SpecError("--plot needs matplotlib: pip install -e '.[plot]'", path, 1, 1) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with plt.rc_context(
        {
            "font.size": 12,
            "axes.titlesize": 14,
            "axes.labelsize": 13,
            "legend.fontsize": 11,
            "lines.linewidth": 2.0,
            "svg.fonttype": "none",  # text stays text in an SVG
        }
    ):
        fig, ax = plt.subplots(figsize=(7.5, 5.0), dpi=120)
        epochs = np.arange(1, len(history["loss"]) + 1)
        ax.plot(epochs, history["loss"], color="tab:blue", label="training loss")
        if history["val_loss"]:
            ax.plot(epochs, history["val_loss"], color="tab:orange", label="validation loss")
            best = int(np.argmin(history["val_loss"]))
            ax.axvline(best + 1, color="0.5", linestyle=":", linewidth=1.5, label="kept params")
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        ax.set_yscale("log")
        ax.grid(True, which="major", alpha=0.3)
        handles = list(ax.get_lines())
        if history.get("val_accuracy") and history["val_accuracy"][0] is not None:
            acc = ax.twinx()
            acc.plot(
                epochs,
                100 * np.asarray(history["val_accuracy"], dtype=float),
                color="tab:green",
                label="validation accuracy",
            )
            acc.set_ylabel("validation accuracy (%)")
            acc.set_ylim(0, 100)
            handles += acc.get_lines()
        if title:
            ax.set_title(title)
        # below the axes, so it never hides a curve
        fig.legend(
            handles=handles,
            loc="lower center",
            ncol=min(len(handles), 4),
            frameon=False,
            bbox_to_anchor=(0.5, 0.0),
        )
        fig.tight_layout(rect=(0, 0.08, 1, 1))
        target = Path(path)
        fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=f".tmp.{fmt}")
        os.close(fd)
        try:
            fig.savefig(tmp, format=fmt)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        finally:
            plt.close(fig)


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


MIN_VALIDATION = 10  # fewer held-out examples than this measure nothing: train on all


@dataclass
class Trained:
    """What ``derive train`` produces: the params, the history and how to use them.

    ``params`` (name → array), ``history`` (per-epoch ``loss``, ``val_loss``,
    ``val_accuracy``), ``mean``/``std`` (the feature standardisation of the
    training part), ``module`` (the generated module), ``note`` (the early
    stopping line), ``spec`` and ``data`` (the sources).
    """

    spec: str
    data: str
    params: dict
    history: dict
    mean: np.ndarray
    std: np.ndarray
    module: ModuleType = field(repr=False)
    note: str | None = None
    dims: dict = field(default_factory=dict)
    seed: int = 0

    def evaluate(self, data: str, seed: int | None = None) -> dict:
        """``loss``, ``accuracy``, ``confusion`` and ``examples`` on the test part of ``data``
        (the split of ``seed``, by default the one training used)."""
        net = derive.load_network(self.spec)
        extra = {"mean": self.mean, "std": self.std}
        return evaluation(
            net, self.module, self.params, extra, data, self.seed if seed is None else seed
        )

    def __repr__(self) -> str:
        epochs = len(self.history["loss"])
        last = self.history["val_accuracy"][-1] if self.history.get("val_accuracy") else None
        acc = f", val acc {100 * last:.1f}%" if last is not None else ""
        return f"<Trained {self.spec} on {self.data}: {epochs} epochs{acc}>"


def run_train(args) -> Trained:
    from .cli import parse_bindings

    net = derive.load_network(args.spec)
    mod = module_for(args.spec, args.dtype, parse_bindings(args.bind))
    ds = datasets.load(args.data, part="train", seed=args.seed)
    mean, std = _standardisation(ds.features)
    ds = datasets.Dataset(ds.name, (ds.features - mean) / std, ds.targets, ds.n_classes)
    data, dims = bind(mod, net, ds, args.data)
    dims = {**{d: DEFAULT_WIDTH for d in mod.DIMS}, **dims, **_dims_option(args.dim)}
    params = mod.init_params(dims, seed=args.seed)
    quiet = getattr(args, "quiet", False)
    val_fraction, patience = args.val_fraction, args.patience
    if val_fraction and round(val_fraction * len(ds.targets)) < MIN_VALIDATION:
        val_fraction, patience = 0.0, None
        if not quiet:
            print(
                f"{len(ds.targets)} training examples: too few to hold out a validation part; "
                "training on all of them without early stopping",
                file=sys.stderr,
            )
    progress = Progress(args.epochs, quiet=quiet, desc=f"{net.name} on {args.data}")
    try:
        history = mod.train(
            params,
            data,
            epochs=args.epochs,
            batch_size=args.batch_size,
            lr=args.lr,
            optimizer=args.optimizer,
            val_fraction=val_fraction,
            patience=patience if patience and patience > 0 else None,
            seed=args.seed,
            callback=progress,
        )
    finally:
        progress.close()
    note = stopping_note(history, args.epochs, patience if patience and patience > 0 else None)
    if note and not quiet:
        print(note, file=sys.stderr)
    if args.out:
        save_weights(args.out, params, {"mean": mean, "std": std}, args.npy)
        if not quiet:
            print(f"weights: {args.out}", file=sys.stderr)
    if args.plot:
        _plot(args.plot, history, title=f"{net.name} on {args.data}")
        if not quiet:
            print(f"learning curve: {args.plot}", file=sys.stderr)
    return Trained(args.spec, args.data, params, history, mean, std, mod, note, dims, args.seed)


def evaluation(net, mod: ModuleType, params: dict, extra: dict, source: str, seed: int) -> dict:
    """Loss, accuracy, confusion matrix and number of examples on ``source``'s test part."""
    ds = datasets.load(source, part="test", seed=seed)
    if "mean" in extra:
        ds = datasets.Dataset(
            ds.name, (ds.features - extra["mean"]) / extra["std"], ds.targets, ds.n_classes
        )
    data, _ = bind(mod, net, ds, source)
    found = classes(mod, params, data)
    return {
        "loss": mod.loss(params, data),
        "accuracy": float(np.mean(found[0] == found[1])) if found else None,
        "confusion": confusion(*found) if found else None,
        "examples": len(ds.targets),
    }


def run_test(args) -> dict:
    from .cli import parse_bindings

    net = derive.load_network(args.spec)
    mod = module_for(args.spec, args.dtype, parse_bindings(args.bind))
    params, extra = load_weights(args.weights, mod)
    report = evaluation(net, mod, params, extra, args.data, args.seed)
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
