"""Suite-wide settings for running on every core (pytest-xdist: ``-n auto --dist loadfile``
in pyproject.toml's ``addopts``).

Each test file runs whole, in order, on one worker, as it would alone: module-scoped
fixtures (every target's generated modules) are built once, and the files whose tests
draw from one module-level random generator see the same numbers as in a serial run.

BLAS threads: each NumPy, PyTorch or OpenMP library would otherwise start one thread
per core in every worker, and the busy-waiting threads of one worker then slow the
other; with one thread per worker the workers share the cores out instead.  A setting
already in the environment is kept; a run without workers (``pytest -n 0``) keeps the
libraries' defaults.
"""

from __future__ import annotations

import os

THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def pytest_configure(config):
    # in the controller, before the workers start: they inherit its environment, as do
    # the interpreters that tests start
    if getattr(config.option, "numprocesses", None) and not hasattr(config, "workerinput"):
        for var in THREAD_VARS:
            os.environ.setdefault(var, "1")
