"""Fuzzing the spec reader: mutated bundled specs end in SpecError or a derivation.

Thousands of mutations of every bundled spec (characters, tokens, lines,
deep nesting, long chains, huge numbers, Unicode oddities) are parsed, each
under a deadline; a sample of the ones that parse is derived, and a sample
is run through the whole ``derive grad`` command.  Anything but our own
error type, a result, or exit status 0/1/2 fails, and so does an input
that does not finish in time (a hang).  The seed is fixed, so a failure
names its input and reproduces.
"""

from __future__ import annotations

import contextlib
import random
import signal
from pathlib import Path

import pytest

from derive import SpecError, parse
from derive.cli import main
from derive.derivation import derive
from derive.errors import DerivationError

ROOT = Path(__file__).resolve().parent.parent
SEEDS = sorted((ROOT / "derive" / "specs").glob("*.nn")) + sorted(
    (ROOT / "tests" / "specs").glob("*.nn")
)
ODD = [
    "\u2028",
    "\u2029",
    "\x85",
    "\x0c",
    "\x0b",
    "\ud800",
    "\x00",
    "\u00a0",
    "\u00b5",
    "\u03bc",
    "\ufb01",
    "\U0001d465",
    "\uff4e\uff50",
    "é",
    "δ",
    "\t",
    "\r",
    "\r\n",
    "#",
    "\\",
    '"""',
    "\ufeff",
    "\u202e",
]
TOKENS = [
    "1e999",
    "-1e999",
    "9" * 40,
    "10**10",
    "2**10**10",
    "0",
    "-1",
    "0.0",
    "nan",
    "inf",
    "1e-300",
    "(0)",
    "/ 0",
    "** -0.5",
    "** 10000",
    "** (1/3)",
    "log(-1)",
    "sum(",
    "mean(",
    ")",
    "(",
    "[",
    "]",
    ",",
    "=",
    "@",
    ".T",
    "softmax(",
    "relu(",
    "axis=5",
    "keepdims=True",
    "lambda x: x",
    "__import__('os')",
    "x[0]",
    "'s'",
    "None",
    "True",
    "onehot(axis=7)",
    "[10**9, 3]",
    "[1000000000, 3]",
    "[0]",
    "const lam = nan",
    "func f",
    "param",
    "input",
    "target",
    "delta_x",
    "_t",
    "np",
]
TIMEOUT = 20  # seconds per input: far above any honest input, so only a hang trips it


class Hang(Exception):
    """An input did not finish within its deadline."""


@contextlib.contextmanager
def deadline(seconds: float, what: str):
    def ring(signum, frame):
        raise Hang(f"no answer within {seconds} s for {what!r}")

    old = signal.signal(signal.SIGALRM, ring)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def mutate(text: str, rng: random.Random) -> str:
    """One to three random edits of a spec."""
    for _ in range(rng.randint(1, 3)):
        text = rng.choice(MUTATIONS)(text, rng)
    return text


def _at(text: str, rng: random.Random) -> int:
    return rng.randrange(len(text) + 1)


def _delete(text, rng):
    i = _at(text, rng)
    return text[:i] + text[i + rng.randint(1, 4) :]


def _insert_odd(text, rng):
    i = _at(text, rng)
    return text[:i] + rng.choice(ODD) + text[i:]


def _insert_char(text, rng):
    i = _at(text, rng)
    return text[:i] + chr(rng.randint(32, 126)) + text[i:]


def _token(text, rng):
    i = _at(text, rng)
    return text[:i] + " " + rng.choice(TOKENS) + " " + text[i:]


def _replace_token(text, rng):
    words = text.split(" ")
    words[rng.randrange(len(words))] = rng.choice(TOKENS)
    return " ".join(words)


def _lines(text, rng):
    lines = text.split("\n")
    i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
    op = rng.randrange(3)
    if op == 0:
        lines.insert(j, lines[i])
    elif op == 1:
        del lines[i]
    else:
        lines[i], lines[j] = lines[j], lines[i]
    return "\n".join(lines)


def _nest(text, rng):
    """Deep parentheses around a name, or a long chain of terms, on the last equation."""
    lines = text.rstrip("\n").split("\n")
    last = lines[-1]
    name, eq, rhs = last.partition("=")
    n = rng.choice([5, 31, 33, 60, 250, 1000])
    rhs = "(" * n + rhs + ")" * n if rng.random() < 0.5 else rhs + " + 0" * n
    lines[-1] = name + eq + rhs
    return "\n".join(lines)


def _comment_line(text, rng):
    """A comment holding a line break Python's splitlines knows, and code after it."""
    sep = rng.choice(["\u2028", "\x0c", "\x85", "\x1e"])
    return text.rstrip("\n") + f"\n# note{sep}L2 = 1 / 0\n"


MUTATIONS = [
    _delete,
    _insert_odd,
    _insert_char,
    _token,
    _replace_token,
    _lines,
    _nest,
    _comment_line,
]


def _mutants(n: int, seed: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    texts = [(p.name, p.read_text(encoding="utf-8")) for p in SEEDS]
    return [(name, mutate(text, rng)) for name, text in (rng.choice(texts) for _ in range(n))]


def test_thousands_of_mutated_specs_end_in_spec_error_or_a_network():
    parsed, refused = [], 0
    for name, text in _mutants(3000, seed=8):
        try:
            with deadline(TIMEOUT, text):
                net = parse(text, file=name)
        except SpecError as err:
            assert err.line >= 1 and err.col >= 1 and err.message
            assert "\n" not in str(err)
            refused += 1
        else:
            parsed.append((text, net))
    # the mutations are not all harmless and not all fatal
    assert refused > 1000 and len(parsed) > 100
    # derive a sample of the networks that parse, the changed ones first
    originals = {p.read_text(encoding="utf-8") for p in SEEDS}
    sample = [net for text, net in parsed if text not in originals]
    random.Random(1).shuffle(sample)
    seen: set[str] = set()
    derived = 0
    for net in sample:
        key = "\n".join(f"{eq.name}={eq.expr}" for eq in net.equations)
        if key in seen:
            continue
        seen.add(key)
        with deadline(TIMEOUT, net.source), contextlib.suppress(DerivationError):
            derive(net)
        derived += 1
        if derived == 12:
            break
    assert derived == 12


def test_mutated_specs_through_the_whole_command(tmp_path, capsys):
    codes = []
    for n, (_, text) in enumerate(_mutants(40, seed=12)):
        path = tmp_path / f"m{n}.nn"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        with deadline(TIMEOUT, text):
            code = main(["grad", str(path)])
        out = capsys.readouterr()
        assert code in (0, 1, 2), out.err
        assert "Traceback" not in out.err and "internal error" not in out.err
        if code == 2:
            assert len(out.err.strip().splitlines()) == 1, out.err
        codes.append(code)
    assert 0 in codes and 2 in codes


@pytest.mark.parametrize("n", [60, 250, 1000])
def test_deep_nesting_and_long_chains_are_refused_by_name(n):
    head = "input x[B, n]\nparam W[n, n]\nz = x @ W\n"
    for body in ("(" * n + "z" + ")" * n, "+".join(["z"] * n), "-" * n + "z"):
        with pytest.raises(SpecError) as info, deadline(TIMEOUT, body):
            parse(head + f"L = sum({body})", file="deep.nn")
        assert info.value.line == 4
        assert any(w in info.value.message for w in ("nested", "too long", "too deeply"))
