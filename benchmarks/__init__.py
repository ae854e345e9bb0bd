"""Benchmarks: one script per question, shared helpers in modules of their own.

Run each from the repository root as a module (nothing edits the import path)::

    python -m benchmarks.step_speed         # one training step: generated vs careful NumPy
    python -m benchmarks.frameworks         # generated vs careful NumPy, PyTorch and JAX
    python -m benchmarks.derivation_speed   # how derivation time grows with depth
    python -m benchmarks.careful            # self-check of the hand-written steps

Every script takes ``--quick``: a smoke run of a few seconds, which
``tests/test_benchmarks.py`` runs so the scripts cannot rot.  Shared code:
:mod:`benchmarks.careful` (the workloads and the careful hand-written steps)
and :mod:`benchmarks.harness` (contenders, timing rounds, checks).  A new
question is a new ``benchmarks/NAME.py`` with ``main(argv=None) -> int``,
a ``--quick`` flag and an entry in the test's list; results go to README.md.
"""
