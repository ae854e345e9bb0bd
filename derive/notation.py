"""Reading formulas as people write them: code, Unicode and LaTeX, into one expression form.

A small tokenizer and recursive-descent parser of ours turn a formula such as
``\\delta_3 = \\left[(X_3 - T) \\circ f_3'(X_2 W_3)\\right]``, ``δ3 = (X3 − T) ⊙ f3'(X2·W3)``
or ``delta3 = (X3 - T) * f3'(X2 @ W3)`` into the same Python-syntax expression
``(X3 - T) * _d_f3(X2 @ W3)``, which :mod:`derive.verify` then parses with
:mod:`ast` against the spec, like any equation.  Nothing here evaluates text.

Conventions: ``⊙ ∘ \\odot \\circ *`` are Hadamard products, ``· \\cdot @`` and
juxtaposition matrix products, ``ᵀ ^T ^{T} ^\\top .T`` transposes, ``f'(z)``,
``f_3^{\\prime}(z)``, ``\\sigma'(z)`` derivatives of functions (written
``_d_NAME(...)``).  Names drop backslashes, ``\\mathbf``-like wrappers and
subscript braces (``\\delta_{3}`` → ``delta3``, ``W_{3}`` → ``W3``,
``\\hat{Y}`` → ``Y_hat``); :func:`resolve` picks, among the spellings of a
name, the one the spec knows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, NoReturn, cast

from .errors import SpecError
from .rules import function_names

GREEK = {
    "α": "alpha",
    "β": "beta",
    "γ": "gamma",
    "δ": "delta",
    "ε": "epsilon",
    "η": "eta",
    "θ": "theta",
    "λ": "lambda",
    "μ": "mu",
    "σ": "sigma",
    "φ": "phi",
    "ϕ": "phi",
    "ψ": "psi",
    "ω": "omega",
    "Δ": "Delta",
    "Σ": "Sigma",
}
UNICODE = {
    "−": "-",
    "⊙": r" \odot ",
    "∘": r" \circ ",
    "·": r" \cdot ",
    "ᵀ": "^T",
    "′": "'",
    "²": "^2",
    "∂": r"\partial ",
    "×": r" \cdot ",
    "∇": r"\nabla ",
}
# name in a formula (lower case) → function: the reductions, then the rule table's names
FUNCTION_NAMES = {"sum": "sum", "mean": "mean", **function_names()}
WRAPPERS = {"mathbf", "mathrm", "boldsymbol", "bm", "mathit", "mathsf", "vec", "mathbb"}
SPACING = {
    ",",
    ";",
    "!",
    "quad",
    "qquad",
    " ",
    "displaystyle",
    "big",
    "Big",
    "bigg",
    "Bigg",
    "bf",
    "rm",
    "it",
    "boldmath",
}
HADAMARD = {"odot", "circ", "ast"}
COMPARISONS = {">": "gt", ">=": "ge", "<": "lt", "<=": "le"}
# NumPy/PyTorch functions read as the operations they are (derive.verify.reader maps them)
SYNONYMS = {
    *("dot", "matmul", "mm", "multiply", "mul", "divide", "div", "power", "pow", "square"),
    *("sqrt", "outer", "ones_like", "zeros_like", "maximum", "transpose", "where", "abs"),
    *("int64", "int32", "float64", "float32", "float", "int", "array", "asarray", "copy"),
    *("clone", "diag"),
}


TokenKind = Literal["name", "num", "cmd", "op"]
"""A token is a name, a number, a backslash command (``\\frac``) or an operator."""


@dataclass
class Token:
    """One token of a formula and its offset in the premapped text (for error columns)."""

    kind: TokenKind
    text: str
    pos: int


_NUMBER = r"(\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?)"
_OPS = r"(\*\*|[<>=!]=|\S)"
_TOKEN = re.compile(r"\\([A-Za-z]+|.)|([A-Za-z][A-Za-z0-9]*)|" + _NUMBER + "|" + _OPS)
# In code (no backslash): names are whole identifiers, underscores and Greek letters included
# (``delta_z3``, ``δX1_in``, ``keep_prob``), as ``derive grad`` prints them.
_CODE_TOKEN = re.compile(r"\\([A-Za-z]+|.)|([^\W\d]\w*)|" + _NUMBER + "|" + _OPS)
# Library prefixes people write before the functions the language knows.
MODULES = {"np", "numpy", "torch", "math", "F", "nn"}
# Limits on what a formula may ask for (issue 8: bounded work, no unbounded recursion).
MAX_DEPTH = 60
MAX_EXPONENT = 64


def is_code(text: str) -> bool:
    """Code or Unicode notation (no LaTeX command): names are whole identifiers."""
    return "\\" not in text


def premap(text: str, code: bool = False) -> str:
    """Unicode operators and Greek letters as their LaTeX equivalents (δ3 → \\delta_{3}).

    In code notation a Greek letter inside an identifier (``δu``, ``δX1_in``) stays part of it.
    """
    if code:
        out = []
        for n, ch in enumerate(text):
            near = text[n - 1 : n] + text[n + 1 : n + 2]
            if ch in GREEK and any(c.isalnum() or c == "_" for c in near):
                out.append(ch)
            elif ch in UNICODE:
                out.append(UNICODE[ch])
            elif ch in GREEK:
                out.append(f"\\{GREEK[ch]} ")
            else:
                out.append(ch)
        return "".join(out)
    text = re.sub(
        r"([{}])(\d+)".format("".join(GREEK)),
        lambda m: f"\\{GREEK[m.group(1)]}_{{{m.group(2)}}}",
        text,
    )
    text = re.sub(r"\\([A-Za-z]+?)(\d+)\b", r"\\\1_{\2}", text)
    out = []
    for ch in text:
        if ch in UNICODE:
            out.append(UNICODE[ch])
        elif ch in GREEK:
            out.append(f"\\{GREEK[ch]} ")
        else:
            out.append(ch)
    return "".join(out)


def tokenize(text: str, code: bool = False) -> list[Token]:
    """The tokens of a (premapped) formula; in code notation names are whole identifiers."""
    tokens = []
    for m in (_CODE_TOKEN if code else _TOKEN).finditer(text):
        cmd, name, num, op = m.groups()
        if cmd is not None:
            tokens.append(Token("cmd", cmd, m.start()))
        elif name is not None:
            tokens.append(Token("name", name, m.start()))
        elif num is not None:
            tokens.append(Token("num", num, m.start()))
        else:
            tokens.append(Token("op", op, m.start()))
    return tokens


class Names:
    """A formula's name with all its spellings: ``W_{3}`` → W3 or W_3."""

    def __init__(self, parts: list[str]):
        self.parts = parts

    def spellings(self) -> list[str]:
        """The parts run together (``W3``) and joined by ``_`` (``W_3``), without repeats."""
        joined = "".join(self.parts)
        under = "_".join(self.parts)
        return list(dict.fromkeys([joined, under]))


class FormulaParser:
    """Recursive descent over the tokens of one side of a formula, emitting Python syntax."""

    def __init__(self, text: str, known: set[str], functions: set[str], where: tuple[str, int]):
        self.source = text
        self.file, self.line = where
        bad = next((n for n, ch in enumerate(text) if "\ud800" <= ch <= "\udfff"), None)
        if bad is not None:  # a lone surrogate: not text any encoder can write
            raise SpecError(
                "the formula is not valid text (a lone surrogate)", where[0], where[1], bad + 1
            )
        self.code = is_code(text)
        self.tokens = tokenize(premap(text, self.code), self.code)
        self.i = 0
        self.depth = 0
        self.known = known
        self.functions = functions
        self.file, self.line = where

    # -- plumbing ------------------------------------------------------------------------------
    def peek(self, k: int = 0) -> Token | None:
        """The token ``k`` ahead of the current one, or None past the end."""
        j = self.i + k
        return self.tokens[j] if j < len(self.tokens) else None

    def next(self) -> Token:
        """Consume and return the current token; the end of the formula is an error."""
        tok = self.peek()
        if tok is None:
            self.fail("unexpected end of formula")
        self.i += 1
        return tok

    def at(self, kind: str, text: str | None = None, k: int = 0) -> bool:
        """Whether the token ``k`` ahead has this kind (and text, if given)."""
        tok = self.peek(k)
        return tok is not None and tok.kind == kind and (text is None or tok.text == text)

    def expect(self, kind: str, text: str):
        """Consume the current token, which must be exactly this one."""
        tok = self.next()
        if tok.kind != kind or tok.text != text:
            self.fail(f"expected {text!r}, got {tok.text!r}", tok)
        return tok

    def fail(self, message: str, tok: Token | None = None) -> NoReturn:
        """Raise a :class:`SpecError` at the token's column (the formula's end if none)."""
        col = (tok.pos if tok else len(self.source)) + 1
        raise SpecError(
            f"cannot read formula {_short(self.source.strip())!r}: {message}",
            self.file,
            self.line,
            min(col, len(self.source) + 1),
        )

    def skip_spacing(self):
        """Skip LaTeX spacing and size commands (``\\,``, ``\\quad``, ``\\big``)."""
        while self.at("cmd") and self.peek().text in SPACING:
            self.i += 1

    # -- grammar --------------------------------------------------------------------------------
    def parse(self) -> str:
        """The whole formula as a Python-syntax expression; trailing tokens are an error."""
        out = self.compare()
        self.skip_spacing()
        if self.peek() is not None and not (self.at("op", ".") and self.peek(1) is None):
            self.fail(f"unexpected {cast(Token, self.peek()).text!r}", self.peek())
        return out

    def compare(self) -> str:
        """A comparison ``A > 0`` (code): the indicator array of where it holds."""
        out = self.expr()
        tok = self.peek()
        if tok is not None and tok.kind == "op" and tok.text in COMPARISONS:
            self.i += 1
            out = f"_cmp_{COMPARISONS[tok.text]}({out}, {self.expr()})"
        return out

    def expr(self) -> str:
        """A sum: terms joined by ``+`` and ``-``."""
        out = self.term()
        while True:
            self.skip_spacing()
            if self.at("op", "+") or self.at("op", "-"):
                op = self.next().text
                out = f"{out} {op} {self.term()}"
            else:
                return out

    def term(self) -> str:
        """A product: factors joined by ``* @ /``, Hadamard and dot commands, or juxtaposition."""
        out = self.unary()
        while True:
            self.skip_spacing()
            tok = self.peek()
            if tok is None:
                return out
            if tok.kind == "op" and tok.text in ("*", "@", "/"):
                self.i += 1
                out = f"{out} {tok.text} {self.unary()}"
            elif tok.kind == "cmd" and tok.text in HADAMARD:
                self.i += 1
                out = f"{out} * {self.unary()}"
            elif tok.kind == "cmd" and tok.text in ("cdot", "times"):
                self.i += 1
                out = f"{out} @ {self.unary()}"
            elif self.starts_operand():
                # juxtaposition: a matrix product, or element-wise where shapes say so
                out = f"_jx({out}, {self.unary()})"
            else:
                return out

    def starts_operand(self) -> bool:
        """Whether the current token can begin a factor (so juxtaposition is a product)."""
        tok = self.peek()
        if tok is None:
            return False
        if tok.kind in ("name", "num"):
            return True
        if tok.kind == "op":
            return tok.text in ("(", "[", "{")
        return (
            tok.text not in ("right", "partial", "odot", "circ", "cdot", "times", "ast")
            and tok.text not in SPACING
        )

    def unary(self) -> str:
        """A signed factor; the nesting depth is bounded by ``MAX_DEPTH``."""
        self.skip_spacing()
        self.depth += 1
        if self.depth > MAX_DEPTH:
            self.fail(f"the formula is nested more than {MAX_DEPTH} deep", self.peek())
        try:
            if self.at("op", "-"):
                self.next()
                return f"-{self.unary()}"
            if self.at("op", "+"):
                self.next()
                return self.unary()
            return self.postfix(self.atom())
        finally:
            self.depth -= 1

    def postfix(self, out: str) -> str:
        """Transposes, powers and method calls after a factor."""
        while True:
            if self.at("op", "^"):
                self.next()
                sup = self.superscript()
                if sup == "T" and out == "1":  # 1ᵀ X: the column sums of X, as derive prints them
                    out = "_onesT"
                else:
                    out = f"({out}).T" if sup == "T" else f"({out}) ** ({sup})"
            elif self.at("op", "**"):
                self.next()
                sign = "-" if self.at("op", "-") and self.next() else ""
                out = f"({out}) ** ({sign}{self.atom()})"
            elif self.at("op", ".") and self.at("name", "T", 1):
                self.i += 2
                out = f"({out}).T"
            elif self.code and self.at("op", ".") and self.at("name", None, 1):
                out = self.method(out)
            elif self.code and self.at("op", "[") and self.subscript_follows():
                out = f"({out})[{self.index_items()}]"
            else:
                return out

    def subscript_follows(self) -> bool:
        """``x[range(N), y]``, ``v[:, None]``: an index in code (a comma or a colon inside),
        not a bracketed factor."""
        depth = 0
        for tok in self.tokens[self.i :]:
            if tok.kind == "op" and tok.text in "([{":
                depth += 1
            elif tok.kind == "op" and tok.text in ")]}":
                depth -= 1
                if depth == 0:
                    return False
            elif depth == 1 and tok.kind == "op" and tok.text in ",:":
                return True
        return False

    def index_items(self) -> str:
        """The items of ``[...]``: ``:``, ``None``/``np.newaxis``, ``range(N)``/
        ``np.arange(N)`` (one entry per row), or an expression."""
        self.expect("op", "[")
        items: list[str] = []
        while not self.at("op", "]"):
            if items:
                self.expect("op", ",")
            if self.at("op", ":"):
                self.next()
                items.append(":")
                continue
            tok = self.peek()
            if tok is not None and tok.kind == "name" and tok.text in MODULES:
                self.i += 2 if self.at("op", ".", 1) else 0  # np.newaxis, np.arange(N)
            tok = self.peek()
            word = tok.text if tok is not None and tok.kind == "name" else ""
            if word in ("None", "newaxis"):
                self.next()
                items.append("None")
            elif word in ("range", "arange") and self.at("op", "(", 1):
                self.i += 2
                items.append(f"range({self.compare()})")
                self.expect("op", ")")
            else:
                items.append(self.compare())
        self.expect("op", "]")
        return ", ".join(items)

    def method(self, obj: str) -> str:
        """``x.sum(axis=1)``, ``A.dot(B)``, ``x.shape[0]``: methods as functions of ``x``."""
        self.next()
        name = self.next().text
        if name == "shape" and self.at("op", "["):
            self.next()
            axis = self.compare()
            self.expect("op", "]")
            return f"_shape({obj}, {axis})"
        if not self.at("op", "("):
            self.fail(f"unsupported attribute .{name}: expected .T, .shape[k] or a method call")
        args = self.call_args()[1:-1]
        return f"_m_{name}({obj}{', ' + args if args else ''})"

    def superscript(self) -> str:
        """After ``^``: T (transpose), a power, or a prime (handled by the caller)."""
        if self.at("op", "{"):
            self.next()
            if self.at("name", "T") and self.at("op", "}", 1) or self.at("cmd", "top"):
                self.i += 1
                self.expect("op", "}")
                return "T"
            inner = self.expr()
            self.expect("op", "}")
            return inner
        tok = self.next()
        if tok.kind == "name" and tok.text == "T" or tok.kind == "cmd" and tok.text == "top":
            return "T"
        if tok.kind == "num":
            return tok.text
        if tok.kind == "op" and tok.text == "-" and self.at("num"):
            return "-" + self.next().text
        self.fail("expected T or a number after ^", tok)

    def group(self) -> str:
        """``{ … }`` contents as an expression."""
        self.expect("op", "{")
        inner = self.expr()
        self.expect("op", "}")
        return inner

    def atom(self) -> str:
        """A number, a bracketed group, a command or a name."""
        self.skip_spacing()
        tok = self.next()
        if tok.kind == "num":
            return tok.text
        if tok.kind == "op" and tok.text in "([{":
            close = {"(": ")", "[": "]", "{": "}"}[tok.text]
            inner = self.compare()
            self.skip_spacing()
            self.expect("op", close)
            if (
                tok.text == "{"
                and re.fullmatch(r"[A-Za-z_]\w*", inner)
                and (self.at("op", "_") or self.superscript_index([inner]))
            ):
                return self.named([inner])  # {\bf A}^{2}: a name with a layer index
            return f"({inner})"
        if tok.kind == "cmd":
            return self.command(tok)
        if tok.kind == "name":
            return self.named([tok.text])
        self.fail(f"unexpected {tok.text!r}", tok)

    def command(self, tok: Token) -> str:
        """A backslash command: ``\\left``, ``\\frac``, ``\\partial``, ``\\nabla``, a wrapper,
        ``\\hat``, ``\\text``, or a name (``\\sigma``)."""
        name = tok.text
        if name == "left":
            self.skip_spacing()
            opener = self.next()
            if opener.kind == "cmd" and opener.text in ("{", "lbrace"):
                opener = Token("op", "{", opener.pos)
            inner = self.expr()
            self.skip_spacing()
            self.expect("cmd", "right")
            self.next()  # the closing delimiter, whichever
            return f"({inner})"
        if name == "frac":
            if self.at("op", "{") and self.at("cmd", "partial", 1):
                return self.gradient_ref(braced=True)
            num = self.group()
            den = self.group()
            return f"(({num}) / ({den}))"
        if name == "partial":
            self.i -= 1
            return self.gradient_ref(braced=False)
        if name == "nabla" and not self.at("op", "_"):
            fname = self.function([self.next().text])  # ∇f: the vector of f'(z)
            if fname is None:
                self.fail("expected \\nabla_x L or \\nabla f (f a function)")
            return f"_gradf_{fname}"
        if name == "nabla":
            self.expect("op", "_")
            wrt, transposed = self.wrt_name()
            self.skip_spacing()
            self.atom()  # the loss
            return self.gradient_name(wrt, transposed)
        if name in WRAPPERS:
            return self.named(self.group_tokens())
        if name == "hat":
            words = self.hat_words()
            return self.named([words[0] + "_hat", *words[1:]])
        if name == "mathcal":
            return self.named(self.group_tokens())
        if name in ("text", "operatorname", "mathrm"):
            words = self.group_tokens()
            return self.named(["".join(words).lower()])
        if name in SPACING:
            return self.atom()
        return self.named([name])

    def wrt_name(self) -> tuple[str, bool]:
        """The quantity after ∂ or ∇_: a name, maybe transposed (``y^T``)."""
        words: list[str] = []
        transposed = False
        braced = self.at("op", "{")
        if braced:
            self.next()
        while self.peek() is not None and not (braced and self.at("op", "}")):
            if self.superscript_index(words):  # ∂L/∂B^o: a layer index
                self.next()
                if self.at("op", "{"):
                    words.extend(w for w in self.group_tokens() if w not in "()")
                else:
                    words.append(self.next().text)
                if not braced and not self.at("op", "_") and not self.at("op", "^"):
                    break
                continue
            tok = self.next()
            if tok.kind == "cmd" and tok.text in SPACING:
                continue
            if tok.kind == "op" and tok.text == "{":  # {\bf B}: a group inside the name
                self.i -= 1
                words.extend(self.group_tokens())
                if not self.at("op", "_") and not self.at("op", "^") and not braced:
                    break
                continue
            if tok.kind == "op" and tok.text == "^":
                if self.at("op", "{"):
                    self.group_tokens()
                else:
                    self.next()
                transposed = True
            elif tok.kind == "cmd" and tok.text in WRAPPERS | {"mathcal"}:
                words.extend(self.group_tokens())
            elif tok.kind == "cmd" and tok.text == "hat":
                inner = self.hat_words()
                words.append(inner[0] + "_hat")
            elif tok.text == "_":
                words.extend(self.group_tokens() if self.at("op", "{") else [self.next().text])
            elif tok.kind in ("name", "num", "cmd"):
                words.append(tok.text)
            else:
                self.i -= 1
                break
            if not braced and not self.at("op", "_") and not self.at("op", "^"):
                break
        if braced:
            self.expect("op", "}")
            while self.at("op", "_") or self.superscript_index(words):  # {\bf B}^o, {W}_3
                self.next()
                group = self.group_tokens() if self.at("op", "{") else [self.next().text]
                words.extend(w for w in group if w not in "()")
        return resolve(Names(words).spellings(), self.known), transposed

    def gradient_name(self, wrt: str, transposed: bool) -> str:
        """The gradient with respect to ``wrt``, as ``_g_wrt`` (transposed if asked)."""
        return f"(_g_{wrt}).T" if transposed else f"_g_{wrt}"

    def gradient_ref(self, braced: bool) -> str:
        """``\\frac{∂L}{∂y^T}`` or ``∂L/∂y`` inside a formula: the gradient w.r.t. y."""
        if braced:
            self.expect("op", "{")
            self.expect("cmd", "partial")
            self.wrt_name()  # the loss
            self.expect("op", "}")
            self.expect("op", "{")
            self.expect("cmd", "partial")
            wrt, transposed = self.wrt_name()
            self.expect("op", "}")
        else:
            self.expect("cmd", "partial")
            self.wrt_name()
            self.skip_spacing()
            self.expect("op", "/")
            self.expect("cmd", "partial")
            wrt, transposed = self.wrt_name()
        return self.gradient_name(wrt, transposed)

    def hat_words(self) -> list[str]:
        """The words under ``\\hat``: a group or one token, never nothing (``\\hat{}``)."""
        inner = self.group_tokens() if self.at("op", "{") else [self.next().text]
        if not inner:
            self.fail("\\hat needs a name under it")
        return inner

    def group_tokens(self) -> list[str]:
        """The raw words inside ``{ … }`` (for wrappers such as ``\\mathbf{X}``)."""
        self.expect("op", "{")
        words = []
        while not self.at("op", "}"):
            tok = self.next()
            if tok.kind == "cmd" and tok.text in SPACING:
                continue
            if tok.kind == "cmd" and tok.text in WRAPPERS:
                words.extend(self.group_tokens())
            elif tok.kind == "cmd" and tok.text == "hat":
                inner = self.hat_words()
                words.append(inner[0] + "_hat")
            elif tok.text != "_":
                words.append(tok.text)
        self.next()
        return words

    def named(self, parts: list[str]) -> str:
        """A name with subscripts, maybe a function call, maybe a derivative."""
        parts = list(parts)
        while self.code and parts[0] in MODULES and self.at("op", ".") and self.at("name", None, 1):
            self.next()  # np.dot, torch.sum, numpy.exp: the library prefix says nothing
            parts = [self.next().text]
        transposed = False
        while self.at("op", "_") or self.superscript_index(parts):
            if self.at("op", "_"):
                self.next()
                if self.at("op", "{"):
                    parts.extend(self.group_tokens())
                else:
                    parts.append(self.next().text)
            else:  # δ^{(2)}, W^{o}, z^{2}, W^{[2]}: a layer index written as a superscript
                self.next()
                if self.at("op", "{"):
                    group = self.group_tokens()
                    if "]" in group and group[-1] == "T":  # Ng's A^{[1]T}
                        group, transposed = group[:-1], True
                    parts.extend(w for w in group if w not in "()[]")
                else:
                    parts.append(self.next().text)
        prime = False
        while True:
            if self.at("op", "'"):
                self.next()
                prime = True
            elif self.at("op", "^") and (
                self.at("cmd", "prime", 1) or (self.at("op", "{", 1) and self.at("cmd", "prime", 2))
            ):
                self.next()
                if self.at("op", "{"):
                    self.next()
                    self.expect("cmd", "prime")
                    self.expect("op", "}")
                else:
                    self.next()
                prime = True
            elif prime and self.superscript_index(parts):  # \phi'^{o}(z): the layer's φ'
                self.next()
                if self.at("op", "{"):
                    parts.extend(w for w in self.group_tokens() if w not in "()")
                else:
                    parts.append(self.next().text)
            else:
                break
        candidates = Names(parts).spellings()
        fname = self.function(candidates)
        self.skip_spacing()
        is_call = fname is not None and (
            self.at("op", "(") or self.at("cmd", "left") or self.at("op", "[")
        )
        if is_call:
            arg = self.call_args() if self.at("op", "(") else self.atom()
            return f"{'_d_' if prime else ''}{fname}{arg}"
        if prime:
            self.fail(f"expected an argument after the derivative {candidates[0]}'")
        name = resolve(candidates, self.known)
        return f"({name}).T" if transposed else name

    def superscript_index(self, parts: list[str] | None = None) -> bool:
        """``^{(2)}``, ``^{o}``, ``^o``, or ``^{2}`` naming a known quantity: a layer index
        (not ``^T``, not a power of an unknown name, not a prime)."""
        if not self.at("op", "^"):
            return False
        braced = self.at("op", "{", 1)
        inner = self.peek(2 if braced else 1)
        if inner is None or (braced and not (self.at("op", "}", 3) or inner.text in "([")):
            return False
        if inner.kind == "op" and inner.text in "([":
            return braced
        if inner.kind == "name" and inner.text != "T":
            return True
        if inner.kind == "num" and parts is not None:
            return any(n in self.known for n in Names([*parts, inner.text]).spellings())
        return False

    def call_args(self) -> str:
        """``(expr, name=value, …)`` of a call in code notation."""
        self.expect("op", "(")
        args: list[str] = []
        while not self.at("op", ")"):
            if args:
                self.expect("op", ",")
            if self.at("op", ")"):
                break
            if self.at("name") and self.at("op", "=", 1):
                key = self.next().text
                self.next()
                sign = "-" if self.at("op", "-") and self.next() else ""
                value = self.next()
                if value.kind not in ("name", "num"):
                    self.fail(f"expected a value after {key}=", value)
                args.append(f"{key}={sign}{value.text}")
            else:
                args.append(self.compare())
        self.expect("op", ")")
        return "(" + ", ".join(args) + ")"

    def function(self, candidates: list[str]) -> str | None:
        """The function the first matching spelling names (spec, rule table, synonym), or None."""
        for c in candidates:
            if c in self.functions:
                return c
            if c.lower() in FUNCTION_NAMES:
                return FUNCTION_NAMES[c.lower()]
            if _plain(c).lower() in FUNCTION_NAMES:
                return FUNCTION_NAMES[_plain(c).lower()]
            if c in SYNONYMS or c.lower() == "diag":
                return "_f_" + c.lower()
        return None


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def resolve(candidates: list[str], known: set[str]) -> str:
    """The spelling the spec knows (Greek or plain); else the first spelling."""
    for c in candidates:
        for alt in (c, _greek(c), _plain(c)):
            if alt in known:
                return alt
    return candidates[0]


def _greek(name: str) -> str:
    for ch, word in GREEK.items():
        if name.startswith(word):
            return ch + name[len(word) :]
    return name


def _plain(name: str) -> str:
    return "".join(GREEK.get(ch, ch) for ch in name)


# ---------------------------------------------------------------------------
# statement heads


@dataclass
class Head:
    """What a statement's left-hand side says: a gradient (of ``loss`` w.r.t. ``name``) or a
    definition of ``name``."""

    kind: str  # "gradient" or "definition"
    name: str  # the defined name, or the quantity the gradient is taken with respect to
    loss: str | None = None
    transposed: bool = False  # ∇_{hᵀ} L: the gradient w.r.t. h, transposed


_CODE_GRAD = re.compile(r"^\s*d\s*([A-Za-z_]\w*)\s*/\s*d\s*([A-Za-z_]\w*)\s*$")


def read_head(text: str, known: set[str], where: tuple) -> Head:
    """The left-hand side of a statement: ``dE/dW3``, ``∂E/∂W3``, ``\\frac{∂E}{∂W_3}``,
    ``\\nabla_W L`` or a name being defined."""
    m = _CODE_GRAD.match(text)
    if m:
        return Head("gradient", resolve([m.group(2)], known), resolve([m.group(1)], known))
    p = FormulaParser(text, known, set(), where)
    toks = p.tokens
    kinds = [(t.kind, t.text) for t in toks]
    if ("cmd", "partial") in kinds:
        parts = _split_partials(p)
        if len(parts) == 2:
            loss, wrt = parts
            return Head("gradient", wrt, loss)
    if kinds and kinds[0] == ("cmd", "nabla"):
        p.i = 1
        p.expect("op", "_")
        transposed = False
        if p.at("op", "{"):
            p.next()
            words = []
            while not p.at("op", "}"):
                tok = p.next()
                if tok.text == "^":
                    if p.at("op", "{"):
                        p.group_tokens()
                    else:
                        p.next()
                    transposed = True
                elif tok.kind == "cmd" and tok.text in WRAPPERS:
                    words.extend(p.group_tokens())
                elif tok.text != "_":
                    words.append(tok.text)
            p.next()
        else:
            words = [p.next().text]
        wrt = resolve(Names(words).spellings(), known)
        loss = p.expr()
        return Head("gradient", wrt, loss, transposed)
    name = p.parse()
    if not name.isidentifier():
        p.fail("expected a name, dE/dW, ∂E/∂W or \\frac{\\partial E}{\\partial W} before '='")
    return Head("definition", name)


def _split_partials(p: FormulaParser) -> list[str]:
    """Names after each ∂ in a head like ``\\frac{\\partial E}{\\partial W_3}``."""
    names = []
    for n, tok in enumerate(p.tokens):
        if tok.kind == "cmd" and tok.text == "partial":
            p.i = n + 1
            p.skip_spacing()
            names.append(p.wrt_name()[0])
    return names


def split_statements(text: str) -> list[str]:
    """Statements of a claim: one a line, or separated by ``;``."""
    out: list[str] = []
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            continue
        line = line.split("  #", 1)[0]  # a trailing comment, as code writes it
        out.extend(s for s in line.split(";") if s.strip())
    return out


def split_equals(statement: str) -> list[str]:
    """``A = B = C`` → [A, B, C] (``=`` at the top level only)."""
    parts, depth, start = [], 0, 0
    for n, ch in enumerate(statement):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "=" and depth == 0 and statement[n - 1 : n] not in ("<", ">", "!", "="):
            parts.append(statement[start:n])
            start = n + 1
    parts.append(statement[start:])
    return parts
