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
}
