"""``derive gen``: the code generator's subcommand, registered through an entry point.

``derive`` finds subcommands in the ``derive.commands`` entry-point group, so
the command line reaches the code generator without ``derive`` importing
``codegen``.
"""

from __future__ import annotations

import argparse
import sys

from . import DTYPES, parse_bindings, parse_consts, write_atomic
from .defaults import TRAIN_DEFAULTS


def _const_option(p) -> None:
    p.add_argument(
        "--const",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="the value of a const (required for a const without a default; repeatable)",
    )


def run_gen(args) -> int:
    """``derive gen SPEC``: write the generated module (``-`` reads the spec from stdin)."""
    from derive.cli import read_stdin

    from .targets import generate_target

    source = generate_target(
        read_stdin() if args.spec == "-" else args.spec,
        args.target,
        dtype=args.dtype,
        bind=parse_bindings(args.bind),
        consts=parse_consts(args.const),
    )
    if args.output in (None, "-"):
        sys.stdout.write(source)
    else:
        write_atomic(args.output, source)
        print(f"wrote {args.output}", file=sys.stderr)
    return 0


def _train(args) -> int:
    if not args.quiet and sys.stderr.isatty():  # at once, for a person waiting: deriving
        # and generating the module take seconds before the first epoch
        print(f"deriving {args.spec} and generating its module…", file=sys.stderr, flush=True)
    from .sequences import run_train_loop

    if run_train_loop(args):  # a spec with a loop over time: codegen.sequences
        return 0
    from .train import run_train

    run_train(args)
    return 0


def _test(args) -> int:
    from .train import run_test

    run_test(args)
    return 0


def register(subparsers) -> None:
    """Add ``gen``, ``train`` and ``test`` to the ``derive`` command line."""
    _register_gen(subparsers)
    for name, helptext, options in (
        ("train", "train a spec's generated module on a data set", _train_options),
        ("test", "evaluate trained weights on a data set's test part", _test_options),
    ):
        p = subparsers.add_parser(name, help=helptext)
        _common_options(p)
        options(p)


def _common_options(p) -> None:
    """The options ``train`` and ``test`` share: spec, data, dtype, bindings, seed, consts."""
    p.add_argument("spec", help="a .nn file or the name of a bundled spec")
    p.add_argument(
        "--data",
        required=True,
        metavar="SOURCE",
        help="iris, digits, xor, seed000, mnist:DIR, FILE.npz or FILE.csv",
    )
    p.add_argument("--dtype", choices=DTYPES, default="float64", help="floating-point type")
    p.add_argument(
        "--bind",
        action="append",
        default=[],
        metavar="NAME=FUNCTION",
        help="bind a generic function, e.g. --bind f=tanh (repeatable)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the split, init and shuffles")
    _const_option(p)


def _weight_decay(text: str) -> float | None:
    """``--weight-decay``: a number, or ``auto`` (None: the optimiser's default)."""
    if text == "auto":
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a number or auto") from None


def _train_options(train) -> None:
    """``derive train``'s own options: the training defaults, outputs, plot, dims."""
    d = TRAIN_DEFAULTS
    train.add_argument("--epochs", type=int, default=d["epochs"], help="most epochs")
    train.add_argument("--batch-size", type=int, default=d["batch_size"], help="mini-batch size")
    train.add_argument("--lr", type=float, default=d["lr"], help="learning rate")
    train.add_argument(
        "--optimizer", choices=["sgd", "momentum", "adam"], default=d["optimizer"], help="optimiser"
    )
    train.add_argument(
        "--val-fraction",
        type=float,
        default=d["val_fraction"],
        help="share of the training part held out for validation and early stopping",
    )
    train.add_argument(
        "--patience",
        type=int,
        default=d["patience"],
        help="stop when the validation loss has not improved for N epochs "
        "(early stopping needs a validation part: --val-fraction 0 trains every epoch)",
    )
    train.add_argument(
        "--weight-decay",
        type=_weight_decay,
        default="auto" if d["weight_decay"] is None else d["weight_decay"],
        metavar="WD",
        help="decoupled weight decay: after every step each weight matrix is multiplied "
        "by 1 - lr * WD (biases are left alone; 0: none; auto: 0.3 with adam, "
        "0 with sgd and momentum)",
    )
    train.add_argument(
        "--final-epochs",
        type=int,
        default=d["final_epochs"],
        help="after early stopping, this many epochs on every training example, "
        "the held-out ones included (0: none)",
    )
    train.add_argument(
        "--restore-best",
        action=argparse.BooleanOptionalAction,
        default=d["restore_best"],
        help="on early stopping, keep the params of the epoch with the lowest validation "
        "loss (--no-restore-best: the last ones)",
    )
    train.add_argument("--out", default="weights.npz", help="weights file (.npz)")
    train.add_argument("--npy", action="store_true", help="also save one .npy per array")
    train.add_argument(
        "--plot", metavar="FILE", help="write the learning curves (.png, .svg or .pdf; matplotlib)"
    )
    train.add_argument("--quiet", action="store_true", help="no progress bar, no messages")
    train.add_argument(
        "--dim",
        action="append",
        default=[],
        metavar="NAME=SIZE",
        help="size of a hidden dimension the data does not fix (default size 100)",
    )
    train.set_defaults(handler=_train)


def _test_options(test) -> None:
    """``derive test``'s own options: the weights and the output format."""
    test.add_argument("--weights", required=True, help="weights saved by derive train")
    test.add_argument("--format", choices=["text", "json"], default="text", help="output format")
    test.set_defaults(handler=_test)


def _register_gen(subparsers) -> None:
    g = subparsers.add_parser(
        "gen", help="generate a standalone training module (NumPy, PyTorch, JAX or Numba)"
    )
    g.add_argument("spec", help="a .nn file or the name of a bundled spec")
    g.add_argument("-o", "--output", help="file to write (default: standard output)")
    g.add_argument("--dtype", choices=DTYPES, default="float64", help="floating-point type")
    g.add_argument(
        "--target",
        choices=("numpy", "torch", "jax", "numba"),
        default="numpy",
        help="what the module runs on (default numpy); see README, Other targets",
    )
    g.add_argument(
        "--bind",
        action="append",
        default=[],
        metavar="NAME=FUNCTION",
        help="bind a generic function, e.g. --bind f=tanh (repeatable)",
    )
    _const_option(g)
    g.set_defaults(handler=run_gen)
