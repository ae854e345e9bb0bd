"""``derive gen``: the code generator's subcommand, registered through an entry point.

``derive`` finds subcommands in the ``derive.commands`` entry-point group, so
the command line reaches the code generator without ``derive`` importing
``codegen``.
"""

from __future__ import annotations

import sys

from derive.errors import SpecError

from . import DTYPES, generate, write_atomic


def parse_bindings(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        name, sep, fn = item.partition("=")
        if not sep or not name.isidentifier() or not fn.isidentifier():
            raise SpecError(
                f"--bind expects NAME=FUNCTION (e.g. f=tanh), got {item!r}", "<options>", 1, 1
            )
        out[name] = fn
    return out


def run_gen(args) -> int:
    source = generate(args.spec, dtype=args.dtype, bind=parse_bindings(args.bind))
    if args.output in (None, "-"):
        sys.stdout.write(source)
    else:
        write_atomic(args.output, source)
        print(f"wrote {args.output}", file=sys.stderr)
    return 0


def register(subparsers) -> None:
    """Add ``gen`` to the ``derive`` command line."""
    g = subparsers.add_parser("gen", help="generate a standalone NumPy training module")
    g.add_argument("spec", help="a .nn file or the name of a bundled spec")
    g.add_argument("-o", "--output", help="file to write (default: standard output)")
    g.add_argument("--dtype", choices=DTYPES, default="float64")
    g.add_argument(
        "--bind",
        action="append",
        default=[],
        metavar="NAME=FUNCTION",
        help="bind a generic function, e.g. --bind f=tanh (repeatable)",
    )
    g.set_defaults(handler=run_gen)
