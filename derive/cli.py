"""The ``derive`` command: ``list``, ``grad`` (and the code generator and checker).

Exit status, the contract every subcommand keeps:

* 0: done (and every proof asked for passed);
* 1: a proof or a claim failed;
* 2: bad input: one line ``file:line:col: error: …`` (``<options>: error: …``
  for a bad option) on stderr;
* 3: a bug in derive: one line ``internal error: …``; ``--debug`` or
  ``DERIVE_DEBUG=1`` shows the traceback;
* 130: interrupted (Ctrl-C), one line.

Nothing ever ends in a traceback.  SymPy is imported only once a command
runs, so Ctrl-C during start-up is answered like any other.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Sequence

from .errors import DerivationError, SpecError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # usage errors: one line, exit 2, no traceback
        self.exit(2, f"<options>: error: {message} (see 'derive --help')\n")


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

    return [ep.load() for ep in entry_points(group="derive.commands")]


def cmd_list(args) -> int:
    from .spec import bundled

    for name, path in bundled().items():
        first = next(
            (ln.lstrip("# ").strip() for ln in path.read_text().splitlines() if ln.startswith("#")),
            "",
        )
        print(f"{name:<18} {first}")
    return 0


def cmd_grad(args) -> int:
    from . import check, load_network, report
    from .derivation import derive

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


def cmd_verify(args) -> int:
    import json
    from pathlib import Path

    from . import load_network
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
        net = load_network(args.spec)
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
    for exc in errors:  # statements that could not be read: bad input, after the others
        print(exc, file=sys.stderr)
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
    """Run the command line; returns the exit status (see the module docstring)."""
    _tolerant_streams()
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("DERIVE_DEBUG", "") not in ("", "0")
    argv = [a for a in argv if a != "--debug"]
    args = None
    try:
        args = build_parser().parse_args(argv)
        handler = COMMANDS.get(args.command) or args.handler
        return handler(args)
    except SpecError as exc:
        print(exc, file=sys.stderr)
        return 2
    except DerivationError as exc:
        spec = getattr(args, "spec", None) or "<spec>"
        print(f"{spec}:1:1: error: cannot derive this network: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        _quiet_stdout()
        return 0
    except KeyboardInterrupt:
        print("derive: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the one place that turns a bug into a line
        return _internal_error(exc, debug)


def _internal_error(exc: BaseException, debug: bool) -> int:
    """One line for a bug of ours (exit 3); the traceback only when asked for."""
    if debug:
        import traceback

        traceback.print_exception(exc)
    first = (str(exc).splitlines() or [""])[0][:300]
    print(
        f"internal error: {type(exc).__name__}: {first} "
        "(a bug in derive; rerun with --debug or DERIVE_DEBUG=1 for the traceback)",
        file=sys.stderr,
    )
    return 3


def _tolerant_streams() -> None:
    """Never fail on output a terminal cannot show (cp1252, ascii): escape it instead."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            # a closed or detached stream: nothing to fix
            with contextlib.suppress(ValueError, OSError):
                reconfigure(errors="backslashreplace")


def _quiet_stdout() -> None:
    """After a closed pipe, point stdout at devnull so the exit flush cannot fail."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def _run() -> None:
    """Entry point of ``python -m derive.cli``: Ctrl-C while starting up is one line too."""
    try:
        code = main()
    except KeyboardInterrupt:
        print("derive: interrupted", file=sys.stderr)
        code = 130
    sys.exit(code)


if __name__ == "__main__":
    _run()
