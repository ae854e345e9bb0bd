"""The ``derive`` command: ``list``, ``grad`` (and the code generator and checker).

Every user error ends as ``file:line:col: error: …`` on stderr with exit
status 2; a failed proof exits with 1.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import load_network
from .derivation import derive
from .errors import DerivationError, SpecError
from .spec import bundled


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # usage errors: exit 2 without a traceback
        self.print_usage(sys.stderr)
        self.exit(2, f"derive: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="derive", description="Derive, prove and generate backpropagation.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    sub.add_parser("list", help="list the bundled example specs")

    g = sub.add_parser("grad", help="derive and print every delta and gradient of a spec")
    g.add_argument("spec", help="a .nn file or the name of a bundled spec (see `derive list`)")
    g.add_argument("--format", choices=["text", "latex", "markdown", "json"], default="text")
    g.add_argument(
        "--check", action="store_true", help="prove the forms three ways: symbolic, exact, numeric"
    )
    g.add_argument("--elementwise", action="store_true", help="also show the index forms")
    g.add_argument("--steps", action="store_true", help="show the chain rule step by step")
    g.add_argument("--seed", type=int, default=0, help="random seed of the numeric check")
    for plugin in _plugins():
        plugin(sub)
    return p


def _plugins():
    """Subcommands other packages register in the ``derive.commands`` entry-point group."""
    from importlib.metadata import entry_points

    return [ep.load() for ep in entry_points(group="derive.commands")]


def cmd_list(args) -> int:
    for name, path in bundled().items():
        first = next(
            (ln.lstrip("# ").strip() for ln in path.read_text().splitlines() if ln.startswith("#")),
            "",
        )
        print(f"{name:<18} {first}")
    return 0


def cmd_grad(args) -> int:
    from . import check, report

    d = derive(load_network(args.spec))
    proofs = check.run_all(d, seed=args.seed) if args.check else None
    if args.format == "json":
        print(report.as_json(d, proofs))
    elif args.format == "latex":
        print(report.as_latex(d))
    elif args.format == "markdown":
        print(report.as_markdown(d, proofs))
    else:
        print(report.as_text(d, elementwise=args.elementwise, steps=args.steps, proofs=proofs))
    return 0 if proofs is None or all(p.passed for p in proofs) else 1


COMMANDS = {"list": cmd_list, "grad": cmd_grad}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        handler = COMMANDS.get(args.command) or args.handler
        return handler(args)
    except SpecError as exc:
        print(exc, file=sys.stderr)
        return 2
    except DerivationError as exc:
        print(
            f"{getattr(args, 'spec', '<spec>')}:1:1: error: cannot derive this network: {exc}",
            file=sys.stderr,
        )
        return 2
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
