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

# only light imports here: `derive --help` must not load SymPy or NumPy
from . import __version__
from .errors import DerivationError, SpecError


class _Parser(argparse.ArgumentParser):
    """Usage errors: one line, exit 2, no traceback; every --help shows the defaults."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", argparse.ArgumentDefaultsHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        self.exit(2, f"<options>: error: {message} (see 'derive --help')\n")


def build_parser() -> argparse.ArgumentParser:
    """The ``derive`` argument parser, with every plugin's subcommands."""
    p = _Parser(prog="derive", description="Derive, prove and generate backpropagation.")
    p.add_argument("--version", action="version", version=f"derive {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    sub.add_parser("list", help="list the bundled example specs")
    _add_grad(sub)
    _add_verify(sub)
    for plugin in _plugins():
        plugin(sub)
    return p


def _add_grad(sub) -> None:
    """The ``derive grad`` subcommand and its options."""
    g = sub.add_parser("grad", help="derive and print every delta and gradient of a spec")
    g.add_argument(
        "spec", help="a .nn file, a bundled spec's name (see `derive list`) or - (standard input)"
    )
    g.add_argument(
        "--format",
        choices=["text", "latex", "markdown", "json", "html"],
        default="text",
        help="output format (html: a standalone page with MathML)",
    )
    g.add_argument(
        "-o", "--output", metavar="FILE", help="write to FILE (atomically) instead of stdout"
    )
    g.add_argument(
        "--standalone", action="store_true", help="latex: a complete document, not a fragment"
    )
    g.add_argument(
        "--check", action="store_true", help="prove the forms three ways: symbolic, exact, numeric"
    )
    g.add_argument("--elementwise", action="store_true", help="also show the index forms")
    g.add_argument("--steps", action="store_true", help="show the chain rule step by step")
    g.add_argument("--seed", type=int, default=0, help="random seed of the numeric check")


def _add_verify(sub) -> None:
    """The ``derive verify`` subcommand and its options."""
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
    v.add_argument(
        "--format", choices=["text", "json", "html"], default="text", help="output format"
    )
    v.add_argument(
        "-o", "--output", metavar="FILE", help="write to FILE (atomically) instead of stdout"
    )
    v.add_argument("--function", metavar="NAME", help="the function of a .py file to check")
    v.add_argument(
        "--map",
        action="extend",
        nargs="+",
        default=[],
        metavar="NAME=SPEC_NAME[,SPEC_NAME...]",
        help="bind a code name to spec names (weights=W1,W2,W3); repeatable",
    )
    v.add_argument(
        "--no-names",
        action="store_true",
        help="do not read dW, grad_W, W_grad, dL_dW, delta_W as gradient statements",
    )


def _plugins():
    """Subcommands other packages register in the ``derive.commands`` entry-point group."""
    from importlib.metadata import entry_points

    # one plugin per target even when an old install of the same code left its own entry
    # point behind (the distribution was renamed from "derive" to "derive-backprop")
    unique = {ep.value: ep for ep in entry_points(group="derive.commands")}
    return [ep.load() for ep in unique.values()]


def cmd_list(args) -> int:
    """``derive list``: the bundled specs and their first comment line."""
    from .loops import bundled as bundled_loops
    from .spec import bundled

    for name, path in {**bundled(), **bundled_loops()}.items():
        first = next(
            (ln.lstrip("# ").strip() for ln in path.read_text().splitlines() if ln.startswith("#")),
            "",
        )
        print(f"{name:<18} {first}")
    return 0


def read_stdin() -> str:
    """The spec text on standard input (for the spec argument ``-``)."""
    try:
        return sys.stdin.buffer.read().decode("utf-8")
    except UnicodeDecodeError:
        raise SpecError("standard input is not UTF-8 text", "<stdin>", 1, 1) from None


def read_network(spec: str):
    """The network of a spec argument: a path, a bundled name, or ``-`` for standard input."""
    from .api import load_network
    from .spec import parse

    if spec == "-":
        return parse(read_stdin(), file="<stdin>", name="stdin")
    return load_network(spec)


def cmd_grad(args) -> int:
    """``derive grad``: print (and with ``--check`` prove) every delta and gradient."""
    from . import check, report
    from .derivation import derive
    from .term import colour_marks, use_colour

    net = read_network(args.spec)
    if net.loop is not None:  # a spec with a loop over time (derive.recurrence)
        return _grad_loop(net, args)
    d = derive(net)
    proofs = check.run_all(d, seed=args.seed) if args.check else None
    if args.format == "json":
        out = report.as_json(d, proofs)
    elif args.format == "latex":
        out = report.as_latex(d, standalone=args.standalone, proofs=proofs, steps=args.steps)
    elif args.format == "markdown":
        out = report.as_markdown(d, proofs)
    elif args.format == "html":
        out = report.as_html(d, steps=args.steps, proofs=proofs, standalone=True)
    else:
        out = report.as_text(d, elementwise=args.elementwise, steps=args.steps, proofs=proofs)
        if not args.output:
            out = colour_marks(out, use_colour(sys.stdout))
    _emit(out, args.output)
    return 0 if proofs is None or all(p.passed for p in proofs) else 1


def _grad_loop(net, args) -> int:
    """``derive grad`` of a recurrence: text, LaTeX, JSON (Markdown and HTML as text)."""
    from .loops import derive as derive_loop

    rec = derive_loop(net)
    proofs = rec.check(seed=args.seed) if args.check else None
    if args.format == "json":
        out = rec.json()
    elif args.format == "latex":
        out = rec.latex(standalone=args.standalone)
    elif args.format == "markdown":
        out = "```\n" + rec.text() + "\n```"
    elif args.format == "html":
        from .html import page

        out = page(net.name, "<pre>" + html_escape(rec.text()) + "</pre>")
    else:
        out = rec.text(steps=args.steps, elementwise=args.elementwise)
    _emit(out, args.output)
    return 0 if proofs is None or all(p.passed for p in proofs) else 1


def html_escape(s: str) -> str:
    """Text for inside an HTML element (names in a spec are identifiers, file names are not)."""
    import html

    return html.escape(s)


def _emit(text: str, output: str | None) -> None:
    """Print, or write to ``output`` atomically (a temporary file, then a rename)."""
    if not output or output == "-":
        print(text)
        return
    from .html import write_atomic

    try:
        write_atomic(output, text if text.endswith("\n") else text + "\n")
    except OSError as exc:
        raise SpecError(f"cannot write: {exc.strerror or exc}", output, 1, 1) from None
    print(f"wrote {output}", file=sys.stderr)


def cmd_verify(args) -> int:
    """``derive verify``: judge gradient claims against a spec, or scalar identities."""
    import json

    from .term import use_colour, verdict_text
    from .verify import verify_identity

    results = [verify_identity(t) for t in args.identity]
    errors: list = []
    if args.spec is not None:
        found, errors = _verify_spec(args)
        if not found and not errors:
            raise SpecError(
                "nothing was checked: no statement is a gradient statement (dL/dW = ...) or "
                "names a gradient (dW, grad_W, dL_dW, delta_W)",
                args.claims or "<claim>",
                1,
                1,
            )
        results += found
    elif not results:
        raise SpecError("give a spec and claims, or --identity TEXT", "<options>", 1, 1)
    if args.format == "json":
        _emit(json.dumps([r.as_dict() for r in results], indent=2, ensure_ascii=False), args.output)
    elif args.format == "html":
        from . import html

        title = f"verify {args.spec or ''}".strip()
        body = html.verdicts_body(results, errors, title=title, source=args.claims or "")
        _emit(html.page(title, body), args.output)
    else:
        colour = not args.output and use_colour(sys.stdout)
        first = next((r for r in results if r.verdict != "correct" and r.line), None)
        text = "\n".join(verdict_text(r, colour, first is r) for r in results)
        _emit(text, args.output)
    for error in errors:  # statements that could not be read: bad input, after the others
        print(error, file=sys.stderr)
    if errors:
        return 2
    return 0 if all(r.verdict == "correct" for r in results) else 1


def _maps(items: list[str]) -> dict[str, list[str]]:
    out = {}
    for item in items:
        for part in item.split():
            name, eq, value = part.partition("=")
            names = [v for v in value.split(",") if v]
            if not eq or not name.isidentifier() or not names:
                raise SpecError(f"--map expects NAME=SPEC_NAME[,...], got {part!r}", "<options>")
            out[name] = names
    return out


def _verify_spec(args):
    """Verdicts for a claim set (--claim flags and a claims file) or a backward function."""
    from pathlib import Path

    from .verify import verify_set
    from .verify.function import verify_function

    net = read_network(args.spec)
    from .recurrence import refuse_loop

    refuse_loop(net)
    texts = [("<claim>", t) for t in args.claim]
    if args.claims:
        path = Path(args.claims)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeError) as exc:
            raise SpecError(f"cannot read claims: {exc}", args.claims, 1, 1) from None
        if path.suffix == ".py":
            found = verify_function(
                net, text, args.claims, args.function, _maps(args.map), not args.no_names
            )
            return found, []
        texts.append((args.claims, text))
    if not texts:
        raise SpecError("nothing to verify: give a claims file or --claim TEXT", "<options>", 1, 1)
    return verify_set(net, texts, not args.no_names)


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
        line, col = exc.pos or (1, 1)
        print(f"{spec}:{line}:{col}: error: cannot derive this network: {exc}", file=sys.stderr)
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
