"""The training defaults, shared by ``derive train`` and :func:`codegen.train` (a leaf module)."""

from __future__ import annotations

from typing import Any

# what `derive train` does with no option but --data (benchmarks/train_defaults.py
# measures them against scikit-learn's MLPClassifier())
TRAIN_DEFAULTS: dict[str, Any] = {
    "epochs": 500,
    "batch_size": 32,
    "lr": 0.003,
    "optimizer": "adam",
    "val_fraction": 0.1,
    "patience": 50,
    # decoupled weight decay (AdamW's form): without it seed002's two sigmoid layers
    # grow their weights until the held-out loss rises (benchmarks/train_defaults.py);
    # None: ADAM_WEIGHT_DECAY with Adam, none with sgd or momentum (weight_decay_for)
    "weight_decay": None,
    # after early stopping, epochs on every example: the held-out tenth is used too
    "final_epochs": 10,
    # the validation loss says when to stop, not which params to keep: held-out
    # cross-entropy rises with confidence while accuracy still improves
    "restore_best": False,
}

# the default decay with Adam, whose steps are about lr whatever the gradient's scale; an
# SGD learning rate is on another scale (0.5 on iris: lr * 0.3 would take 15% a step)
ADAM_WEIGHT_DECAY = 0.3


def weight_decay_for(optimizer: str, given: float | None) -> float:
    """The decoupled weight decay to use: ``given``, or by default ADAM_WEIGHT_DECAY for
    Adam and 0 for the other optimisers."""
    if given is not None:
        return given
    return ADAM_WEIGHT_DECAY if optimizer == "adam" else 0.0
