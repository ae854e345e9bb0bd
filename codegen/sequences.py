"""Sequence data and training for specs with a loop over time (``derive train char_rnn``).

The task ships with the package: next-character prediction on the word list
``codegen/words.txt`` (the makemore data).  The words are joined into one
stream, each ended by ``.``; a batch is ``B`` windows of ``T + 1``
characters at random offsets, one-hot: ``x[T, B, 27]`` the characters,
``y[T, B, 27]`` the next ones.  70 % of the words (a fixed random choice)
train, the rest test (a word never straddles the split).  The loss to beat is the
uniform guess, ``ln 27 ≈ 3.30`` nats a character.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from derive.errors import SpecError

from .data import TEST_FRACTION, WORDS_ALPHABET, WORDS_FILE

UNIFORM = math.log(len(WORDS_ALPHABET))  # nats a character of a uniform guess
SIZES = {"T": 16, "H": 32}  # the default sequence length and state width


def word_stream(path: Path = WORDS_FILE) -> tuple[np.ndarray, np.ndarray]:
    """The train and test character streams (indices into ``.a…z``)."""
    index = {ch: n for n, ch in enumerate(WORDS_ALPHABET)}
    words = [
        w.strip()
        for w in path.read_text(encoding="utf-8").splitlines()
        if w.strip() and not w.startswith("#") and set(w.strip()) <= set(WORDS_ALPHABET[1:])
    ]
    np.random.default_rng(0).shuffle(words)  # the list is sorted: split a random order
    cut = int(len(words) * (1 - TEST_FRACTION))

    def stream(part: list[str]) -> np.ndarray:
        return np.asarray([index[ch] for w in part for ch in "." + w], dtype=np.int64)

    return stream(words[:cut]), stream(words[cut:])


def batch(stream: np.ndarray, steps: int, size: int, rng, dtype=np.float64) -> dict:
    """``size`` random windows of ``steps + 1`` characters as one-hot ``x`` and ``y``."""
    starts = rng.integers(0, len(stream) - steps - 1, size=size)
    idx = stream[starts[None, :] + np.arange(steps + 1)[:, None]]  # (steps + 1, size)
    eye = np.eye(len(WORDS_ALPHABET), dtype=dtype)
    return {"x": eye[idx[:-1]], "y": eye[idx[1:]]}


@dataclass
class Trained:
    """What :func:`train` returns: params, the training losses, the test loss."""

    params: dict
    history: list[float] = field(default_factory=list)
    test_loss: float = float("nan")
    uniform: float = UNIFORM


def train(
    spec: str,
    steps: int = 150,
    batch_size: int = 32,
    lr: float = 0.01,
    sizes: dict[str, int] | None = None,
    seed: int = 0,
    dtype: str = "float64",
) -> Trained:
    """Train the spec's generated module with Adam on the word stream; test on held-out words.

    The spec reads one-hot characters ``x[T, B, V]`` and next characters
    ``y[T, B, V]`` (the bundled ``char_rnn`` and ``char_lstm`` do).
    """
    from .recurrent import generate
    from .train import load_source

    mod = load_source(generate(spec, dtype=dtype), "derive_recurrent")
    if set(mod.INPUTS) != {"x", "y"}:
        raise SpecError(
            "derive train --data words needs a spec with input x[T, B, V] and target "
            f"y[T, B, V]; this one has {', '.join(mod.INPUTS)}",
            spec,
            1,
            1,
        )
    dims = {**SIZES, **(sizes or {}), "B": batch_size, "V": len(WORDS_ALPHABET)}
    rng = np.random.default_rng(seed)
    params = mod.init_params(dims, seed)
    train_stream, test_stream = word_stream()
    state: dict = {}
    out = Trained(params)
    for _ in range(steps):
        loss, grads = mod.loss_and_gradients(
            params, batch(train_stream, dims["T"], batch_size, rng)
        )
        out.history.append(loss)
        mod.adam_step(params, grads, state, lr=lr)
    test_rng = np.random.default_rng(seed + 1)
    losses = [
        mod.loss_and_gradients(params, batch(test_stream, dims["T"], batch_size, test_rng))[0]
        for _ in range(8)
    ]
    out.test_loss = float(np.mean(losses))
    return out


def run_train_loop(args) -> bool:
    """``derive train SPEC --data words`` for a spec with a loop (False: not one)."""
    import derive
    from derive.cli import read_stdin

    spec = read_stdin() if args.spec == "-" else args.spec
    net = derive.load_network(spec)
    if net.loop is None:
        return False
    if args.data != "words":
        raise SpecError(
            f"a spec with a loop over time trains on --data words, not {args.data!r}",
            net.file,
            *net.loop.pos,
        )
    sizes = {}
    for item in args.dim:
        name, _, value = item.partition("=")
        if name not in ("T", "H") or not value.isdigit() or int(value) < 1:
            raise SpecError(f"--dim expects T=N or H=N here, got {item!r}", "<options>", 1, 1)
        sizes[name] = int(value)
    m = train(
        spec,
        steps=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        sizes=sizes,
        seed=args.seed,
        dtype=args.dtype,
    )
    if args.out:
        from . import output

        output.write_atomic(args.out, lambda f: np.savez(f, **m.params))
    if not args.quiet:
        first, last = np.mean(m.history[:10]), np.mean(m.history[-10:])
        print(
            f"{net.name}: {len(m.history)} Adam steps, train loss {first:.3f} → {last:.3f}; "
            f"test loss {m.test_loss:.3f} nats/char (uniform {m.uniform:.3f})"
        )
    return True
