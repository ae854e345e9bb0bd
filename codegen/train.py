"""``derive train`` and ``derive test``: a spec, a data source, a trained and evaluated model.

Training generates the spec's module (:func:`codegen.generate`), runs it from
memory (no file; :func:`load_source`), checks the options (:func:`check_train_options`),
binds the data set to the spec's input and target (transposed for a
column-layout spec, labels one-hot encoded where the target is ``onehot``),
standardises the features on the training part, and runs the module's own
``train`` with a progress line per epoch.  The weights and the
standardisation are saved together, atomically (``.npz``; with ``--npy`` one
``.npy`` per array, as seed002 does); a loss that is not finite stops
training and leaves the old weights.  Testing reloads both, checks the weights
against the spec, and reports the loss with the accuracy and the confusion
matrix (classes) or MSE, MAE and R² (a regression).
"""

from __future__ import annotations

import json
import linecache
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

import derive
from derive.errors import SpecError

from . import data as datasets
from . import generate, output, parse_bindings, parse_consts
from .defaults import weight_decay_for

DEFAULT_WIDTH = 100  # a hidden dimension no option and no data set fixes (MLPClassifier()'s)


def module_for(
    spec: str, dtype: str = "float64", bind: dict | None = None, consts: dict | None = None
) -> ModuleType:
    """Generate the spec's module and run it in memory (no file is written)."""
    return load_source(generate(spec, dtype=dtype, bind=bind, consts=consts))


def load_source(source: str, name: str = "derive_generated") -> ModuleType:
    """A module object running ``source``, compiled from memory.

    The source comes from :func:`codegen.generate`, which has already parsed
    it with :func:`ast.parse`; it is registered with :mod:`linecache` so a
    traceback inside it still shows its lines.
    """
    filename = f"<{name}>"
    code = compile(source, filename, "exec")
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    module = ModuleType(name)
    exec(code, module.__dict__)  # noqa: S102 - our generated code, checked with ast.parse
    return module


def _images(x: np.ndarray, shape: list, name: str, spec: str) -> np.ndarray:
    """Flat features as the spec's input of rank 3 or 4 (``X[N, 1, 8, 8]``: images in C
    order, as the 8×8 digits are stored); at most one of its sizes may be a name."""
    if len(shape) <= 2 or x.ndim != 2:
        return x
    fixed = [int(d) for d in shape[1:] if d.isdigit()]
    known = int(np.prod(fixed))
    free = len(shape) - 1 - len(fixed)
    if free > 1 or x.shape[1] % known or (free == 0 and known != x.shape[1]):
        raise SpecError(
            f"{name}[{', '.join(shape)}] does not hold {x.shape[1]} features per example: "
            "give its sizes as numbers (X[N, 1, 8, 8] for the 8x8 digits)",
            spec,
            1,
            1,
        )
    return x.reshape(len(x), *[int(d) if d.isdigit() else -1 for d in shape[1:]])


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
    _check_target_kind(target, t_name, ds, spec)
    t = _target_array(target, t_axis, ds, spec)
    x = _images(ds.features, mod.INPUTS[x_name], x_name, spec) if x_axis == 0 else ds.features
    data = {x_name: x if x_axis == 0 else x.T, t_name: t if t_axis == 0 else t.T}
    dims = _data_dims(mod, data, spec)
    if target.classes is not None and ds.n_classes is not None:  # the data set's classes
        n = str(target.classes)
        if n.isdigit() and int(n) != ds.n_classes:
            raise SpecError(
                f"{t_name} has {n} classes but {ds.name} has {ds.n_classes}", spec, 1, 1
            )
        if not n.isdigit():
            dims[n] = ds.n_classes
    if net.quantities[x_name].classes is not None:
        _bind_indices(net, x_name, data[x_name], dims, spec)
    return data, dims


def _indices_in(mod: ModuleType, net) -> bool:
    """Whether the spec's input holds integer indices (``index(V)``), not values."""
    return any(net.quantities[name].classes is not None for name in mod.INPUTS)


def _bind_indices(net, name: str, x: np.ndarray, dims: dict[str, int], source: str) -> None:
    """Check an ``index(V)`` input's data (whole numbers below V) and fix V from it if free."""
    q = net.quantities[name]
    if x.size and (np.any(x != np.round(x)) or x.min() < 0):
        raise SpecError(
            f"the spec's input {name} holds indices (index({q.classes})), but {source}'s "
            "features are not whole numbers from 0",
            source,
            1,
            1,
        )
    rows, top = str(q.classes), int(x.max()) + 1 if x.size else 1
    if not rows.isdigit():
        dims.setdefault(rows, top)
    if top > dims.get(rows, int(rows) if rows.isdigit() else top):
        raise SpecError(
            f"{source} has index {top - 1} but {name} indexes a table of {dims.get(rows, rows)} "
            "rows",
            source,
            1,
            1,
        )


def _check_target_kind(target, t_name: str, ds: datasets.Dataset, spec: str) -> None:
    """SpecError when the spec's target wants class labels and the data set has values."""
    if target.classes is not None and ds.n_classes is None:
        raise SpecError(
            f"the spec's target {t_name} holds class labels, but {ds.name} has value "
            "targets, not whole-number labels",
            spec,
            1,
            1,
        )
    if target.onehot_axis is not None and ds.n_classes is None:
        values = np.asarray(ds.targets)
        if values.size and np.all(values == np.round(values)) and values.min() >= 0:
            what = (
                f"whole numbers up to {values.max():.0f} (class labels must be below "
                f"{datasets.MAX_CLASSES}; values this large are read as values)"
            )
        else:
            what = "value targets, not whole-number labels"
        raise SpecError(
            f"the spec's target {t_name} is onehot (class labels), but {ds.name} has {what}",
            spec,
            1,
            1,
        )


def _target_array(target, t_axis: int, ds: datasets.Dataset, spec: str) -> np.ndarray:
    """The data set's targets as the spec's target wants them (examples as rows):
    labels, one-hot rows, 0/1 for one sigmoid output, or values."""
    # a target with one column and no onehot is a value: whole numbers (ages, counts)
    # stay numbers there; only 0/1 labels for a sigmoid output are checked as labels
    single = len(target.shape) == 2 and target.shape[1 - t_axis] == 1
    if ds.n_classes is not None and ds.n_classes > 2 and target.onehot_axis is None and single:
        ds = datasets.Dataset(
            ds.name, ds.features, np.asarray(ds.targets, np.float64).reshape(-1, 1), None
        )
    if target.classes is not None:  # the labels as they are: one integer per example
        assert ds.n_classes is not None  # refused by _check_target_kind
        datasets.check_labels(ds, ds.n_classes, spec)
        return ds.targets.astype(np.int64)
    if ds.n_classes is None:
        return ds.targets.reshape(len(ds.targets), -1)
    if target.onehot_axis is not None or len(target.shape) == 2 and ds.n_classes > 2:
        datasets.check_labels(ds, ds.n_classes, spec)
        return datasets.one_hot(ds.targets, ds.n_classes)
    datasets.check_labels(ds, 2, spec)  # binary labels for a sigmoid output
    return ds.targets.reshape(-1, 1).astype(float)


def _data_dims(mod: ModuleType, data: dict, spec: str) -> dict[str, int]:
    """The size the data gives each named dimension of the input and target (a fixed
    size that disagrees, or one name with two sizes: SpecError)."""
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
    return dims


def classes(mod: ModuleType, params: dict, data: dict):
    """(true class, predicted class, number of classes) of every example, from one
    prediction; None when the target is not classes (a regression)."""
    t_name = next(iter(mod.TARGETS))
    t = np.asarray(data[t_name])
    axis = 1 - mod.BATCH_AXES[t_name] if t.ndim == 2 else 0
    out = np.asarray(mod.predict(params, data))
    if t.ndim == 1 and np.issubdtype(t.dtype, np.integer):  # a labels target
        n = out.shape[1]
        return t, np.argmax(out, axis=1), n
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
        self.epochs, self.quiet, self.desc = epochs, quiet, desc
        self.bar: Any = None  # a tqdm bar once the first epoch ends

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
        """End the progress display."""
        if self.bar is not None:
            self.bar.close()


def kept_epoch(history: dict, restore_best: bool = True) -> int:
    """The index of the epoch whose params train() kept on early stopping: the first
    lowest validation loss (``restore_best``) or the last epoch."""
    val = history["val_loss"]
    return int(np.argmin(val)) if restore_best else len(val) - 1


def stopping_note(
    history: dict, epochs: int, patience: int | None, restore_best: bool = True
) -> str | None:
    """One line on early stopping: when it stopped, which epoch's params were kept and why."""
    val = history["val_loss"]
    if not val or patience is None:
        return None
    best, kept_at = int(np.argmin(val)), kept_epoch(history, restore_best)
    acc = history.get("val_accuracy") or []
    acc_text = (
        f", val acc {100 * acc[kept_at]:.1f}%"
        if len(acc) > kept_at and acc[kept_at] is not None
        else ""
    )
    if restore_best:
        kept = f"kept the params of epoch {best + 1} (lowest val loss {val[best]:.4g}{acc_text})"
    else:
        kept = (
            f"kept the last params, epoch {kept_at + 1} (val loss {val[kept_at]:.4g}{acc_text}; "
            f"lowest {val[best]:.4g} at epoch {best + 1})"
        )
    final = len(history.get("final_loss") or [])
    if final:  # train() went on from the kept params with the held-out examples too
        kept += f", then {final} epoch{'s' * (final != 1)} on every training example"
    if len(val) < epochs:
        return (
            f"early stopping at epoch {len(val)}/{epochs}: the validation loss did not improve "
            f"for {patience} epochs; {kept}"
        )
    return f"trained all {epochs} epochs; {kept}"


def save_weights(path: str, params: dict, extra: dict, npy: bool) -> None:
    """Params and the feature standardisation, atomically (:mod:`codegen.output`).

    The ``.npz`` is replaced first; with ``npy``, the directory of one
    ``.npy`` per array beside it is then replaced as a whole set.
    """
    arrays = {**params, **{f"__{k}__": v for k, v in extra.items()}}
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    output.write_atomic(target, lambda f: np.savez(f, **arrays))
    if npy:  # one .npy per array beside the .npz, as seed002 saves its weights

        def fill(folder: Path) -> None:
            for name, value in arrays.items():
                np.save(folder / f"{name.strip('_')}.npy", value)

        output.replace_directory(target.with_suffix(""), fill)


def load_weights(path: str, mod: ModuleType) -> tuple[dict, dict]:
    """Params and standardisation saved by :func:`save_weights`, checked against the spec's
    param names (:func:`check_weights` checks their shapes once the data fixes the dims)."""
    arrays = datasets.read_npz(path)
    missing = [p for p in mod.PARAMS if p not in arrays]
    unknown = [k for k in arrays if not k.startswith("__") and k not in mod.PARAMS]
    if missing or unknown:
        parts = []
        if missing:
            parts.append(f"lack {', '.join(missing)}")
        if unknown:
            parts.append(f"hold {', '.join(unknown)}, which the spec does not declare")
        raise SpecError(
            f"the weights {' and '.join(parts)}: were they trained for this spec?", path, 1, 1
        )
    for name, value in arrays.items():
        if value.dtype.kind not in "biuf":
            raise SpecError(f"the weights' {name} is not numeric ({value.dtype})", path, 1, 1)
        if not np.all(np.isfinite(value)):
            raise SpecError(f"the weights' {name} holds NaN or infinite values", path, 1, 1)
    params = {p: arrays[p].astype(mod.DTYPE) for p in mod.PARAMS}
    extra = {k.strip("_"): v for k, v in arrays.items() if k.startswith("__")}
    return params, extra


def check_weights(params: dict, dims: dict, mod: ModuleType, path: str) -> None:
    """SpecError unless every param has its declared shape, with one size per dimension
    (those the data fixes included); a dimension inside arithmetic (``W1[T * E, H]``) is
    checked through the module's ``param_shapes`` once the bare dimensions are known."""
    sizes = dict(dims)
    for name, shape in mod.PARAMS.items():
        value = params[name]
        ok = value.ndim == len(shape)
        for dim, size in zip(shape, value.shape, strict=False):
            if dim.isdigit():
                ok = ok and int(dim) == size
            elif dim.isidentifier():
                ok = ok and sizes.setdefault(dim, size) == size
        if not ok:
            _wrong_shape(name, value, shape, sizes, path)
    shapes = getattr(mod, "param_shapes", None)
    if shapes is None:
        return
    try:
        want = shapes(sizes)
    except KeyError:  # a dimension only inside arithmetic: nothing to compare with
        return
    for name, shape in want.items():
        if tuple(params[name].shape) != tuple(shape):
            _wrong_shape(name, params[name], mod.PARAMS[name], sizes, path)


def _wrong_shape(name: str, value, shape: tuple, sizes: dict, path: str) -> None:
    known = ", ".join(f"{d} = {sizes[d]}" for d in shape if d in sizes)
    raise SpecError(
        f"the weights' {name} has shape {tuple(value.shape)} but the spec declares "
        f"{name}[{', '.join(shape)}]{f' with {known}' if known else ''}: were they trained "
        "for this spec and data?",
        path,
        1,
        1,
    )


PLOT_FORMATS = ("png", "svg", "pdf")


def _plot(path: str, history: dict, title: str = "", restore_best: bool = True) -> None:
    """Learning curves for a report: a title (spec and data), type that reads at a glance,
    the legend below the axes (clear of the curves); PNG, SVG or PDF by the suffix."""
    fmt = _plot_format(path)
    plt = _pyplot(path)
    with plt.rc_context(PLOT_STYLE):
        fig, ax = plt.subplots(figsize=(7.5, 5.0), dpi=120)
        handles = _loss_curves(ax, history, restore_best)
        if history.get("val_accuracy") and history["val_accuracy"][0] is not None:
            handles += _accuracy_curve(ax, history)
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
        try:
            output.write_atomic(path, lambda f: fig.savefig(f, format=fmt))
        finally:
            plt.close(fig)


PLOT_STYLE = {
    "font.size": 12,
    "axes.titlesize": 14,
    "axes.labelsize": 13,
    "legend.fontsize": 11,
    "lines.linewidth": 2.0,
    "svg.fonttype": "none",  # text stays text in an SVG
}


def _plot_format(path: str) -> str:
    """The image type the suffix of ``path`` names (none: PNG); SpecError for another."""
    fmt = Path(path).suffix.lower().lstrip(".") or "png"
    if fmt not in PLOT_FORMATS:
        raise SpecError(
            f"--plot: unknown image type .{fmt}; expected {', '.join(PLOT_FORMATS)}", path, 1, 1
        )
    return fmt


def _pyplot(path: str):
    """``matplotlib.pyplot`` drawing off-screen (Agg); SpecError when it is not installed."""
    try:
        import matplotlib
    except ImportError:
        raise SpecError("--plot needs matplotlib: pip install -e '.[plot]'", path, 1, 1) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _loss_curves(ax, history: dict, restore_best: bool = True) -> list:
    """Training and validation loss (log scale) and the epoch whose params were kept."""
    epochs = np.arange(1, len(history["loss"]) + 1)
    ax.plot(epochs, history["loss"], color="tab:blue", label="training loss")
    if history["val_loss"]:
        ax.plot(epochs, history["val_loss"], color="tab:orange", label="validation loss")
        ax.axvline(
            kept_epoch(history, restore_best) + 1,
            color="0.5",
            linestyle=":",
            linewidth=1.5,
            label="kept params",
        )
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    ax.grid(True, which="major", alpha=0.3)
    return list(ax.get_lines())


def _accuracy_curve(ax, history: dict) -> list:
    """Validation accuracy in % on a second y axis (0 to 100)."""
    epochs = np.arange(1, len(history["val_accuracy"]) + 1)
    acc = ax.twinx()
    acc.plot(
        epochs,
        100 * np.asarray(history["val_accuracy"], dtype=float),
        color="tab:green",
        label="validation accuracy",
    )
    acc.set_ylabel("validation accuracy (%)")
    acc.set_ylim(0, 100)
    return list(acc.get_lines())


def _standardisation(features: np.ndarray, source: str) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of each feature on the training part (a constant: 1)."""
    with np.errstate(over="ignore", invalid="ignore"):
        mean = features.mean(axis=0)
        std = features.std(axis=0)
    bad = np.flatnonzero(~(np.isfinite(mean) & np.isfinite(std)))
    if bad.size:
        col = int(bad[0])
        biggest = float(np.max(np.abs(features[:, col])))
        raise SpecError(
            f"feature {col} is too large to standardise (|value| up to {biggest:.3g}); "
            "rescale the data",
            source,
            1,
            1,
        )
    return mean, np.where(std > 0, std, 1.0)


MAX_DIM = 65_536  # the largest size --dim accepts
MAX_PARAM_ENTRIES = 50_000_000  # all params together: 400 MB in float64
MAX_EPOCHS = 1_000_000


def _dims_option(items: list[str], mod: ModuleType, fixed: dict[str, int]) -> dict[str, int]:
    """``--dim NAME=SIZE`` options: hidden dimensions of the spec, sizes 1..MAX_DIM."""
    hidden = [d for d in mod.DIMS if d not in fixed]
    out = {}
    for item in items:
        name, _, size = item.partition("=")
        if not name.isidentifier() or not size.isdigit() or len(size) > 12:
            raise SpecError(f"--dim expects NAME=SIZE, got {item!r}", "<options>", 1, 1)
        if name not in mod.DIMS:
            raise SpecError(
                f"--dim {item}: the spec has no dimension {name!r} "
                f"(its hidden dimensions: {', '.join(hidden) or 'none'})",
                "<options>",
                1,
                1,
            )
        if name in fixed and fixed[name] != int(size):
            raise SpecError(
                f"--dim {item}: the data fixes {name} = {fixed[name]} "
                f"(hidden dimensions: {', '.join(hidden) or 'none'})",
                "<options>",
                1,
                1,
            )
        if not 1 <= int(size) <= MAX_DIM:
            raise SpecError(
                f"--dim {item}: a size must be between 1 and {MAX_DIM}", "<options>", 1, 1
            )
        out[name] = int(size)
    return out


def _check_param_count(mod: ModuleType, dims: dict[str, int]) -> None:
    """SpecError for sizes that give more param entries than the limit; the module's own
    ``param_shapes`` works out dim arithmetic such as ``E*T``."""
    total = sum(math.prod(shape) for shape in mod.param_shapes(dims).values())
    if total > MAX_PARAM_ENTRIES:
        raise SpecError(
            f"these sizes give {total:,} param entries, over the limit of "
            f"{MAX_PARAM_ENTRIES:,}; choose smaller --dim sizes",
            "<options>",
            1,
            1,
        )


def check_train_options(args) -> None:
    """SpecError (``<options>``) for a training option outside its range."""

    def bad(option: str, value, expected: str) -> SpecError:
        return SpecError(f"{option} {value}: expected {expected}", "<options>", 1, 1)

    if not 1 <= args.epochs <= MAX_EPOCHS:
        raise bad("--epochs", args.epochs, f"a whole number from 1 to {MAX_EPOCHS:,}")
    if args.batch_size < 1:
        raise bad("--batch-size", args.batch_size, "a whole number of at least 1")
    if not (math.isfinite(args.lr) and args.lr > 0):
        raise bad("--lr", args.lr, "a finite number above 0")
    if not 0 <= args.val_fraction < 1:  # also refuses NaN
        raise bad("--val-fraction", args.val_fraction, "a number from 0 up to (not including) 1")
    if args.patience is not None and args.patience < 1:
        raise bad("--patience", args.patience, "a whole number of at least 1")
    decay = weight_decay_for(args.optimizer, args.weight_decay)
    if args.weight_decay is None and args.lr * decay >= 1:
        raise bad(
            "--lr",
            args.lr,
            f"below {1 / decay:.3g} with {args.optimizer}'s weight decay {decay} "
            "(lr * WD must be below 1; --weight-decay 0 for none)",
        )
    if not (math.isfinite(decay) and 0 <= args.lr * decay < 1):
        raise bad("--weight-decay", decay, "a number from 0 with lr * WD below 1")
    if not 0 <= args.final_epochs <= MAX_EPOCHS:
        raise bad("--final-epochs", args.final_epochs, f"a whole number from 0 to {MAX_EPOCHS:,}")
    check_seed(args)


def check_seed(args) -> None:
    """``--seed`` must be a whole number NumPy's generators accept."""
    if not 0 <= args.seed < 2**63:
        raise SpecError(f"--seed {args.seed}: expected a whole number from 0", "<options>", 1, 1)


def _consts_given(mod: ModuleType, net, spec: str) -> None:
    """SpecError at the first const with neither a default nor a --const value."""
    from .names import position

    for name, value in mod.CONSTS.items():
        if value is None:
            line, col = position(net, name)
            raise SpecError(
                f"const {name} has no default: give its value with --const {name}=VALUE",
                net.file,
                line,
                col,
            )


class Diverged(Exception):
    """Training produced a loss that is not a finite number, or one that exploded."""


DIVERGENCE_FACTOR = 1e6  # a loss this many times the initial one (at least 1) has exploded


def _stop_on_divergence(callback, initial: float = math.nan):
    """``callback``, then a stop when the epoch's training or validation loss diverged.

    Diverged means not finite, or larger in magnitude than ``DIVERGENCE_FACTOR``
    times ``max(1, |initial|)``, where ``initial`` is the loss of the initial
    params: a step too large for the network can overshoot into a loss that
    stays finite (``--lr 1e10`` on seed000 reaches 1e49 under a ReLU) and
    would otherwise be saved as a result.  A non-finite ``initial`` checks
    finiteness only.
    """
    bound = DIVERGENCE_FACTOR * max(1.0, abs(initial)) if math.isfinite(initial) else math.inf

    def check(epoch: int, history: dict) -> None:
        callback(epoch, history)
        for key in ("loss", "val_loss"):
            if not history[key]:
                continue
            what, value = (
                ("training loss" if key == "loss" else "validation loss"),
                history[key][-1],
            )
            if not math.isfinite(value):
                raise Diverged(f"the {what} is {value} after epoch {epoch + 1}")
            if abs(value) > bound:
                raise Diverged(
                    f"the {what} is {value:.3g} after epoch {epoch + 1}, more than "
                    f"{DIVERGENCE_FACTOR:.0e} times the initial {initial:.3g}".replace("e+0", "e")
                )

    return check


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
    restore_best: bool = True

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
        val, accs = self.history.get("val_loss") or [], self.history.get("val_accuracy") or []
        if not val or not accs:
            return f"<Trained {self.spec} on {self.data}: {epochs} epochs>"
        # the epoch whose params were kept: with early stopping (a note) and restore_best
        # the first lowest validation loss, as the module's train() restores it; else the last
        best = kept_epoch(self.history, self.restore_best) if self.note else len(val) - 1
        acc = f", val acc {100 * accs[best]:.1f}%" if accs[best] is not None else ""
        return f"<Trained {self.spec} on {self.data}: {epochs} epochs, kept epoch {best + 1}{acc}>"


def run_train(args) -> Trained:
    """``derive train``: train a spec's generated module on a data set and save the weights."""
    check_train_options(args)
    net, mod = _training_module(args)
    ds, mean, std = _training_part(args.data, args.seed, _indices_in(mod, net))
    data, fixed = bind(mod, net, ds, args.data)
    dims = {**{d: DEFAULT_WIDTH for d in mod.DIMS}, **fixed, **_dims_option(args.dim, mod, fixed)}
    _check_param_count(mod, dims)
    params = mod.init_params(dims, seed=args.seed)
    quiet = getattr(args, "quiet", False)
    val_fraction, patience = _validation_plan(args, len(ds.targets), quiet)
    progress = Progress(args.epochs, quiet=quiet, desc=f"{net.name} on {args.data}")
    try:
        with np.errstate(all="ignore"):  # a diverging run is reported below, not warned about
            history = mod.train(
                params,
                data,
                val_fraction=val_fraction,
                patience=patience,
                callback=_stop_on_divergence(progress, float(mod.loss(params, data))),
                **_schedule(args),
            )
    except Diverged as exc:
        progress.close()
        raise SpecError(
            f"training diverged: {exc}; {args.out} was left as it was (try a smaller --lr)",
            "<options>",
            1,
            1,
        ) from None
    if not all(np.all(np.isfinite(p)) for p in params.values()):
        raise SpecError(
            f"training diverged: the params are not finite; {args.out} was left as it was "
            "(try a smaller --lr)",
            "<options>",
            1,
            1,
        )
    progress.close()
    note = stopping_note(history, args.epochs, patience, args.restore_best)
    _finish(args, net, params, history, {"mean": mean, "std": std}, note, quiet)
    return Trained(
        args.spec,
        args.data,
        params,
        history,
        mean,
        std,
        mod,
        note,
        dims,
        args.seed,
        args.restore_best,
    )


def _schedule(args) -> dict:
    """The options of the module's ``train()`` that come straight from ``args``."""
    return {
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "optimizer": args.optimizer,
        "seed": args.seed,
        "weight_decay": weight_decay_for(args.optimizer, args.weight_decay),
        "final_epochs": args.final_epochs,
        "restore_best": args.restore_best,
    }


def _training_module(args) -> tuple[Any, ModuleType]:
    """The parsed spec and its generated module, every const given, and the output paths
    checked now (a device or a directory), not after training."""
    net = derive.load_network(args.spec)
    mod = module_for(args.spec, args.dtype, parse_bindings(args.bind), parse_consts(args.const))
    _consts_given(mod, net, args.spec)
    for path in (args.out, args.plot):
        if path and Path(path).parent.is_dir():
            output.destination(path)
    return net, mod


def _training_part(
    source: str, seed: int, indices: bool = False
) -> tuple[datasets.Dataset, np.ndarray, np.ndarray]:
    """The training part of ``source`` with its features standardised, and the mean and
    deviation used (saved with the weights, applied again by ``derive test``).  Integer
    indices into a table (``indices``) are used as they are."""
    ds = datasets.load(source, part="train", seed=seed)
    mean, std = _standardisation(ds.features, source)
    if indices:
        mean, std = np.zeros_like(mean), np.ones_like(std)
    ds = datasets.Dataset(ds.name, (ds.features - mean) / std, ds.targets, ds.n_classes)
    return ds, mean, std


def _validation_plan(args, n_examples: int, quiet: bool) -> tuple[float, int | None]:
    """``--val-fraction`` and ``--patience``, or (0, None) with one line saying so when the
    held-out part would have fewer than MIN_VALIDATION examples."""
    if args.val_fraction and round(args.val_fraction * n_examples) < MIN_VALIDATION:
        if not quiet:
            print(
                f"{n_examples} training examples: too few to hold out a validation part; "
                "training on all of them without early stopping",
                file=sys.stderr,
            )
        return 0.0, None
    return args.val_fraction, args.patience


def _finish(args, net, params: dict, history: dict, extra: dict, note, quiet: bool) -> None:
    """The early-stopping line, the weights (``--out``) and the learning curves (``--plot``)."""
    if note and not quiet:
        print(note, file=sys.stderr)
    if args.out:
        save_weights(args.out, params, extra, args.npy)
        if not quiet:
            print(f"weights: {args.out}", file=sys.stderr)
    if args.plot:
        _plot(args.plot, history, f"{net.name} on {args.data}", args.restore_best)
        if not quiet:
            print(f"learning curve: {args.plot}", file=sys.stderr)


def regression_metrics(mod: ModuleType, params: dict, data: dict) -> dict:
    """Mean squared error, mean absolute error and R² of the prediction (R² None, with a
    reason, when the targets do not vary)."""
    t_name = next(iter(mod.TARGETS))
    t = np.asarray(data[t_name], dtype=np.float64)
    out = np.asarray(mod.predict(params, data), dtype=np.float64).reshape(t.shape)
    axis = mod.BATCH_AXES[t_name]
    with np.errstate(all="ignore"):
        residual = out - t
        spread = float(np.sum((t - t.mean(axis=axis, keepdims=True)) ** 2))
        sse = float(np.sum(residual**2))
        metrics: dict[str, float | str | None] = {
            "mse": float(np.mean(residual**2)),
            "mae": float(np.mean(np.abs(residual))),
            "r2": 1.0 - sse / spread if spread > 0 else None,
        }
    if spread <= 0:
        metrics["r2_reason"] = "the targets do not vary: R² is undefined"
    return metrics


def _json_safe(report: dict) -> dict:
    """``report`` with every NaN or infinity replaced by null and the reason under "notes"."""
    notes = dict(report.get("notes", {}))
    out = {}
    for key, value in report.items():
        if isinstance(value, float) and not math.isfinite(value):
            notes[key] = f"not a finite number ({value})"
            value = None
        out[key] = value
    if notes:
        out["notes"] = notes
    return out


def evaluation(
    net, mod: ModuleType, params: dict, extra: dict, source: str, seed: int, where: str = "<params>"
) -> dict:
    """Loss with accuracy and confusion (classes) or MSE, MAE and R² on ``source``'s test part."""
    ds = datasets.load(source, part="test", seed=seed)
    if "mean" in extra:
        mean, std = extra.get("mean"), extra.get("std")
        if mean is None or std is None or mean.shape != (ds.n_features,) or std.shape != mean.shape:
            raise SpecError(
                f"the weights' standardisation is for {getattr(mean, 'size', 0)} features, "
                f"the data has {ds.n_features}: were they trained on this data?",
                where,
                1,
                1,
            )
        ds = datasets.Dataset(ds.name, (ds.features - mean) / std, ds.targets, ds.n_classes)
    data, dims = bind(mod, net, ds, source)
    check_weights(params, dims, mod, where)
    with np.errstate(all="ignore"):
        t = np.asarray(data[next(iter(mod.TARGETS))])
        binary = t.size and set(np.unique(t)) <= {0.0, 1.0} and min(t.shape) == 1
        found = classes(mod, params, data) if ds.is_labelled or binary else None
        report = {
            "loss": mod.loss(params, data),
            "accuracy": float(np.mean(found[0] == found[1])) if found else None,
            "confusion": confusion(*found) if found else None,
            "examples": len(ds.targets),
        }
        if not found:
            report.update(regression_metrics(mod, params, data))
    return report


def run_test(args) -> dict:
    """``derive test``: evaluate saved weights on a data set's test part."""
    check_seed(args)
    net = derive.load_network(args.spec)
    mod = module_for(args.spec, args.dtype, parse_bindings(args.bind), parse_consts(args.const))
    _consts_given(mod, net, args.spec)
    params, extra = load_weights(args.weights, mod)
    report = evaluation(net, mod, params, extra, args.data, args.seed, args.weights)
    if args.format == "json":
        print(json.dumps(_json_safe(report), allow_nan=False))
    else:
        print(f"test loss {report['loss']:.6g} on {report['examples']} examples")
        if report["accuracy"] is not None:
            print(f"accuracy  {100 * report['accuracy']:.2f}%")
        if report["confusion"] is not None:
            print("confusion (rows: true class, columns: predicted)")
            for row in report["confusion"]:
                print("  " + " ".join(f"{v:>5}" for v in row))
        if "mse" in report:
            r2 = (
                "undefined (the targets do not vary)"
                if report["r2"] is None
                else f"{report['r2']:.4f}"
            )
            print(f"mse {report['mse']:.6g}  mae {report['mae']:.6g}  r2 {r2}")
    return report
