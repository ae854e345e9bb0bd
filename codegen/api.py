"""The Python face of ``derive train`` and ``derive test``: objects, not printed text.

>>> import codegen
>>> model = codegen.train("seed004", "xor", quiet=True)
>>> model.evaluate("xor")["accuracy"]
1.0
>>> sorted(model.params)
['W1', 'W2']
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .defaults import TRAIN_DEFAULTS

__all__ = ["train", "evaluate", "TRAIN_DEFAULTS"]


def train(
    spec: str | Path,
    data: str,
    *,
    epochs: int = TRAIN_DEFAULTS["epochs"],
    batch_size: int = TRAIN_DEFAULTS["batch_size"],
    lr: float = TRAIN_DEFAULTS["lr"],
    optimizer: str = TRAIN_DEFAULTS["optimizer"],
    val_fraction: float = TRAIN_DEFAULTS["val_fraction"],
    patience: int | None = TRAIN_DEFAULTS["patience"],
    weight_decay: float | None = TRAIN_DEFAULTS["weight_decay"],
    final_epochs: int = TRAIN_DEFAULTS["final_epochs"],
    restore_best: bool = TRAIN_DEFAULTS["restore_best"],
    dims: dict[str, int] | None = None,
    bind: dict[str, str] | None = None,
    consts: dict[str, float] | None = None,
    dtype: str = "float64",
    seed: int = 0,
    out: str | Path | None = None,
    plot: str | Path | None = None,
    quiet: bool = True,
):
    """Train a spec's generated module on a data source, as ``derive train`` does.

    Returns a :class:`codegen.train.Trained` (``params``, ``history``,
    ``note``, ``evaluate(data)``); ``out`` also saves the weights, ``plot``
    the learning curves; ``quiet=False`` shows the progress bar.

    >>> import codegen
    >>> m = codegen.train("seed003_sigmoid", "iris", seed=0)
    >>> m.evaluate("iris")["accuracy"] >= 0.95
    True
    """
    from .train import run_train

    args = argparse.Namespace(
        spec=str(spec),
        data=data,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        optimizer=optimizer,
        val_fraction=val_fraction,
        patience=patience,
        weight_decay=weight_decay,
        final_epochs=final_epochs,
        restore_best=restore_best,
        dim=[f"{k}={v}" for k, v in (dims or {}).items()],
        bind=[f"{k}={v}" for k, v in (bind or {}).items()],
        const=[f"{k}={v!r}" for k, v in (consts or {}).items()],
        dtype=dtype,
        seed=seed,
        out=str(out) if out else None,
        npy=False,
        plot=str(plot) if plot else None,
        quiet=quiet,
    )
    return run_train(args)


def evaluate(trained, data: str, seed: int | None = None) -> dict:
    """Loss, accuracy and confusion matrix of trained params on a data source's test part.

    ``trained`` is what :func:`train` returned.
    """
    return trained.evaluate(data, seed=seed)
