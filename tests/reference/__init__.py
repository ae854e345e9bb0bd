"""Hand-written NumPy reference implementations of the seed networks.

One standalone module per spec in ``derive/specs`` (seed000, seed000_generic, seed002,
seed003, seed003_sigmoid, seed004, seed004_deep).  They import nothing from ``derive`` or
``codegen`` and serve as independent truth for tests of generated code.  Each module
exposes ``forward(params, data)``, ``loss(params, data)``, ``gradients(params, data)`` and
``sgd_step(params, grads, lr)``; the generic-activation modules (seed000_generic, seed003)
take the activation functions and their derivatives as keyword arguments (default tanh).
"""

MODULES = (
    "seed000",
    "seed000_generic",
    "seed002",
    "seed003",
    "seed003_sigmoid",
    "seed004",
    "seed004_deep",
)
