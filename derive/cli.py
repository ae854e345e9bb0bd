"""The ``derive`` command: ``list``, ``grad`` (and the code generator and checker).

Every user error ends as ``file:line:col: error: …`` on stderr with exit
status 2; a failed proof exits with 1.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import __version__, load_network
from .derivation import derive
from .errors import DerivationError, SpecError
from .ir import Network
from .spec import bundled, parse


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # usage errors: exit 2 without a traceback
        self.print_usage(sys.stderr)
        self.exit(2, f"derive: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """The ``derive`` argument parser, with every plugin's subcommands."""
    p = _Parser(prog="derive", description="Derive, prove and generate backpropagation.")
    p.add_argument("--version", action="version", version=f"derive {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    sub.add_parser("list", help="list the bundled example specs")

    g = sub.add_parser("grad", help="derive and print every delta and gradient of a spec")
    g.add_argument(
        "spec", help="a .nn file, a bundled spec's name (see `derive list`) or - (standard input)"
    )
    g.add_argument("--format", choices=["text", "latex", "markdown", "json"], default="text")
    g.add_argument(
        "--check", action="store_true", help="prove the forms three ways: symbolic, exact, numeric"
    )
    g.add_argument("--elementwise", action="store_true", help="also show the index forms")
    g.add_argument("--steps", action="store_true", help="show the chain rule step by step")
    g.add_argument("--seed", type=int, default=0, help="random seed of the numeric check")
    v = sub.add_parser("verify", help="check gradient formulas as textbooks print them")
    v.add_argument("spec", nargs="?", help="a .nn file or a bundled spec name")
    v.add_argument("claims", nargs="?", help="a file of statements (code, Unicode or LaTeX)")
    v.add_argument(
        "--claim",
        action="append",
        default=[],
        metavar="TEXT",
        help="a statement or several separated by ';' (repeatable)",
    )
    v.add_argument(
        "--identity",
        action="append",
        default=[],
        metavar="TEXT",
        help='a scalar identity such as "sigmoid\'(z) = sigmoid(z)*(1 - sigmoid(z))"',
    )
    v.add_argument("--format", choices=["text", "json"], default="text")
    for plugin in _plugins():
        plugin(sub)
    return p


def _plugins():
    """Subcommands other packages register in the ``derive.commands`` entry-point group."""
    from importlib.metadata import entry_points

    # one plugin per target even when an old install of the same code left its own entry
    # point behind (the distribution was renamed from "derive" to "derive-backprop")
    unique = {ep.value: ep for ep in entry_points(group="derive.commands")}
    return [ep.load() for ep in unique.values()]


def read_stdin() -> str:
    """The spec text on standard input (for the spec argument ``-``)."""
    try:
        return sys.stdin.buffer.read().decode("utf-8")
    except UnicodeDecodeError:
        raise SpecError("standard input is not UTF-8 text", "<stdin>", 1, 1) from None


def read_network(spec: str) -> Network:
    """The network of a spec argument: a path, a bundled name, or ``-`` for standard input."""
    if spec == "-":
        return parse(read_stdin(), file="<stdin>", name="stdin")
    return load_network(spec)


def cmd_list(args) -> int:
    """``derive list``: the bundled specs and their first comment line."""
    for name, path in bundled().items():
        first = next(
            (ln.lstrip("# ").strip() for ln in path.read_text().splitlines() if ln.startswith("#")),
            "",
        )
        print(f"{name:<18} {first}")
    return 0


def cmd_grad(args) -> int:
    """``derive grad``: print (and with ``--check`` prove) every delta and gradient."""
    from . import check, report

    d = derive(read_network(args.spec))
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


def cmd_verify(args) -> int:
    """``derive verify``: judge gradient claims against a spec, or scalar identities."""
    import json
    from pathlib import Path

    from .errors import SpecError
    from .verify import verify_all, verify_identity

    results = [verify_identity(t) for t in args.identity]
    if args.spec is not None:
        texts = list(args.claim)
        file = "<claim>"
        if args.claims:
            path = Path(args.claims)
            try:
                texts.append(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError) as exc:
                raise SpecError(f"cannot read claims: {exc}", args.claims, 1, 1) from None
            file = args.claims
        if not texts:
            raise SpecError(
                "nothing to verify: give a claims file or --claim TEXT", "<options>", 1, 1
            )
        net = read_network(args.spec)
        errors = []
        for text in texts:
            found, unreadable = verify_all(net, text, file)
            results += found
            errors += unreadable
    elif not results:
        raise SpecError("give a spec and claims, or --identity TEXT", "<options>", 1, 1)
    else:
        errors = []
    if args.format == "json":
        print(json.dumps([r.as_dict() for r in results], indent=2, ensure_ascii=False))
    else:
        for r in results:
            print(_verdict_text(r))
    for error in errors:  # statements that could not be read: bad input, after the others
        print(error, file=sys.stderr)
    if errors:
        return 2
    return 0 if all(r.verdict == "correct" for r in results) else 1


def _verdict_text(r) -> str:
    mark = {"correct": "✓", "incorrect": "✗", "ill-formed": "✗"}[r.verdict]
    out = [f"{mark} {r.verdict:<10} {r.text}", f"    read as: {r.normalized}", f"    {r.reason}"]
    if r.diagnosis:
        out.append(f"    diagnosis: {r.diagnosis}")
    if r.counterexample and "entry" in r.counterexample:
        c = r.counterexample
        sizes = ", ".join(f"{k}={v}" for k, v in c["sizes"].items())
        out.append(
            f"    counterexample: random values (seed {c['seed']}) with {sizes}: at entry "
            f"{tuple(c['entry'])} the formula gives {c['formula']:.6g}, the gradient is "
            f"{c['gradient']:.6g}"
        )
    elif r.counterexample and "z" in r.counterexample:
        out.append(
            f"    counterexample: at z = {r.counterexample['z']} the sides differ by "
            f"{r.counterexample['difference']:.6g}"
        )
    if r.expected and r.verdict != "correct":
        out.append(f"    correct form: {r.expected}")
    return "\n".join(out)


COMMANDS = {"list": cmd_list, "grad": cmd_grad, "verify": cmd_verify}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``derive`` command; user errors exit 2 with one line, no traceback."""
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
