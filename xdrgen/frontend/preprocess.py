"""The preprocessing stage: a small, exact cpp subset (or the system cpp) in front of the lexer.

The output keeps lines 1:1 with the source (directives and skipped lines become empty
lines) and uses cpp-style line markers ``# LINE "FILE" [FLAGS]`` whenever the mapping
changes, so every position the lexer reports is a real ``file:line:col``.
See docs/preprocessing.md for the supported subset and the defaults.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from xdrgen.diagnostics import Diagnostic, Position, XdrgenError, error

__all__ = [
    "DEFAULT_PREDEFINED",
    "OTHER_VIEWS",
    "RPCGEN_VIEWS",
    "PreprocessedSource",
    "preprocess",
]

#: The symbols rpcgen defines, one per C file it writes: the header, the XDR routines,
#: the server, the client stubs, the dispatch table.  Each is a "view" of the .x file.
RPCGEN_VIEWS = ("RPC_HDR", "RPC_XDR", "RPC_SVC", "RPC_CLNT", "RPC_TBL")

#: What xdrgen defines when ``predefined`` is not given: the view of rpcgen's XDR-routine
#: pass (``rpcgen -c``), i.e. exactly the declarations rpcgen writes marshallers for.
#: (``RPC_HDR`` blocks hold C for the header; nis.x's is not even valid rpcgen input.)
DEFAULT_PREDEFINED: Mapping[str, str] = {"RPC_XDR": "1"}

#: The other views, read (with the default ``predefined``) only for their ``%`` lines:
#: one Python module plays the part of every C file, so it needs their ``%#define``s.
OTHER_VIEWS = ("RPC_HDR", "RPC_SVC", "RPC_CLNT", "RPC_TBL")

#: Hostile-input bounds: nothing the preprocessor builds may grow without limit.
MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_INCLUDE_DEPTH = 200
MAX_EXPANSION_TOKENS = 100_000
MAX_EXPR_DEPTH = 256
MAX_LITERAL_DIGITS = 80
MAX_PREFILTER_NAMES = 64
CPP_TIMEOUT_SECONDS = 120


@dataclass(frozen=True)
class PreprocessedSource:
    #: What the lexer reads.
    text: str
    #: The path of the main file as given.
    main_file: str
    #: Every file read: the main file first, then each ``#include``'d file once.
    files: tuple[Path, ...]
    #: ``%`` lines that only other views see (0-based line index in ``text`` -> those
    #: views, in ``RPCGEN_VIEWS`` order).  Every other line belongs to the main view.
    other_view_lines: Mapping[int, tuple[str, ...]] = field(default_factory=dict)


# --------------------------------------------------------------------------------------
# C tokens and integer constant expressions (shared with cheaders.py)
# --------------------------------------------------------------------------------------


class Token(NamedTuple):
    kind: str  # "num", "id", "char", "str", "op", "other"
    text: str
    col: int  # 1-based column in the physical line the token came from
    space: bool = False  # preceded by whitespace (kept when expansions are spelled out)


_TOKEN_RE = re.compile(
    r"""
    (?P<ws>[ \t\f\v\r\n]+)
  | (?P<num>\.?[0-9](?:[eEpP][+-]|[0-9A-Za-z_.])*)
  | (?P<id>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<char>[LuU]?'(?:[^'\\\n]|\\.)*'?)
  | (?P<str>[LuU8]*"(?:[^"\\\n]|\\.)*"?)
  | (?P<op>\.\.\.|<<=|>>=|<<|>>|<=|>=|==|!=|&&|\|\||\#\#|->|\+\+|--|[-+*/%&|^~!<>?:=(),;{}\[\].\#])
  | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)


def tokenize_c(text: str, first_col: int = 1) -> list[Token]:
    """C preprocessing tokens of ``text`` (comments must already be removed)."""
    tokens: list[Token] = []
    space = False
    for match in _TOKEN_RE.finditer(text):
        kind = match.lastgroup
        if kind is None or kind == "ws":
            space = True
            continue
        tokens.append(Token(kind, match.group(), match.start() + first_col, space))
        space = False
    return tokens


class CExprError(Exception):
    """A C expression that cannot be evaluated; ``col`` points at the culprit."""

    def __init__(self, message: str, col: int) -> None:
        super().__init__(message)
        self.message = message
        self.col = col


class CInt(NamedTuple):
    """A C integer value with its type: width in bits and signedness."""

    value: int
    bits: int
    unsigned: bool


def _wrap(value: int, bits: int, unsigned: bool) -> CInt:
    value &= (1 << bits) - 1
    if not unsigned and value >> (bits - 1):
        value -= 1 << bits
    return CInt(value, bits, unsigned)


_INT_LITERAL_RE = re.compile(
    r"(0[xX][0-9a-fA-F]+|0[bB][01]+|0[0-7]*|[1-9][0-9]*)"
    r"((?:[uU](?:ll|LL|[lL])?)|(?:(?:ll|LL|[lL])[uU]?))?$"
)

# C11 6.4.4.1 candidate types per (suffix, decimal?) on LP64, as (bits, unsigned).
_INT: tuple[int, bool] = (32, False)
_UINT: tuple[int, bool] = (32, True)
_LONG: tuple[int, bool] = (64, False)
_ULONG: tuple[int, bool] = (64, True)


def parse_int_literal(token: Token, pp_mode: bool) -> CInt:
    match = _INT_LITERAL_RE.match(token.text)
    if match is None:
        raise CExprError(f"'{token.text}' is not an integer constant", token.col)
    digits, suffix = match.group(1), (match.group(2) or "").lower()
    if len(digits) > MAX_LITERAL_DIGITS:
        raise CExprError(
            f"integer constant '{token.text[:20]}...' is too large", token.col
        )
    if digits[:2] in ("0x", "0X"):
        value, decimal = int(digits[2:], 16), False
    elif digits[:2] in ("0b", "0B"):
        value, decimal = int(digits[2:], 2), False
    elif digits.startswith("0"):
        value, decimal = int(digits, 8), False
    else:
        value, decimal = int(digits), True
    if value >= 1 << 64:
        raise CExprError(f"integer constant '{token.text}' is too large", token.col)
    unsigned_suffix = "u" in suffix
    if pp_mode:  # #if arithmetic is done in intmax_t / uintmax_t
        return CInt(value, 64, unsigned_suffix or value >= 1 << 63)
    if unsigned_suffix:
        candidates = [_ULONG] if "l" in suffix else [_UINT, _ULONG]
    elif "l" in suffix:
        candidates = [_LONG] if decimal else [_LONG, _ULONG]
    else:
        candidates = [_INT, _LONG] if decimal else [_INT, _UINT, _LONG, _ULONG]
    for bits, unsigned in candidates:
        limit = 1 << (bits if unsigned else bits - 1)
        if value < limit:
            return CInt(value, bits, unsigned)
    return CInt(value, 64, True)  # gcc: "so large that it is unsigned"


_CHAR_ESCAPES = {
    "n": 10,
    "t": 9,
    "r": 13,
    "0": 0,
    "a": 7,
    "b": 8,
    "f": 12,
    "v": 11,
    "\\": 92,
    "'": 39,
    '"': 34,
    "?": 63,
}


def _char_value(token: Token) -> int:
    body = token.text[token.text.index("'") + 1 :]
    if not body.endswith("'") or len(body) < 2:
        raise CExprError("unterminated character constant", token.col)
    body = body[:-1]
    if len(body) == 1:
        return ord(body)
    if body.startswith("\\"):
        rest = body[1:]
        if rest in _CHAR_ESCAPES:
            return _CHAR_ESCAPES[rest]
        if re.fullmatch(r"[0-7]{1,3}", rest):
            return int(rest, 8) & 0xFF
        if re.fullmatch(r"x[0-9a-fA-F]{1,2}", rest):
            return int(rest[1:], 16)
    raise CExprError(f"unsupported character constant {token.text}", token.col)


# Type names a cast may use in header expressions, as (bits, unsigned).
_TYPEDEF_CASTS: dict[str, tuple[int, bool]] = {
    "int8_t": (8, False),
    "uint8_t": (8, True),
    "int16_t": (16, False),
    "uint16_t": (16, True),
    "int32_t": (32, False),
    "uint32_t": (32, True),
    "int64_t": (64, False),
    "uint64_t": (64, True),
    "size_t": (64, True),
    "ssize_t": (64, False),
    "intptr_t": (64, False),
    "uintptr_t": (64, True),
    "intmax_t": (64, False),
    "uintmax_t": (64, True),
    "u_int": (32, True),
    "u_long": (64, True),
    "u_short": (16, True),
    "u_char": (8, True),
    "u_int32_t": (32, True),
    "u_int64_t": (64, True),
    "bool_t": (32, False),
}
_TYPE_WORDS = frozenset({"unsigned", "signed", "int", "long", "short", "char", "const"})

_BINARY_PRECEDENCE = {
    "||": 1,
    "&&": 2,
    "|": 3,
    "^": 4,
    "&": 5,
    "==": 6,
    "!=": 6,
    "<": 7,
    "<=": 7,
    ">": 7,
    ">=": 7,
    "<<": 8,
    ">>": 8,
    "+": 9,
    "-": 9,
    "*": 10,
    "/": 10,
    "%": 10,
}

IdentLookup = Callable[[Token], CInt]


class _ExprParser:
    """Precedence climbing over tokens; ``live`` is False in unevaluated operands."""

    def __init__(
        self, tokens: Sequence[Token], lookup: IdentLookup, pp_mode: bool, end_col: int
    ):
        self.tokens = tokens
        self.index = 0
        self.lookup = lookup
        self.pp_mode = pp_mode
        self.int_bits = 64 if pp_mode else 32
        self.live = True
        self.depth = 0
        self.end_col = end_col

    def parse(self) -> CInt:
        if not self.tokens:
            raise CExprError("expected an expression", self.end_col)
        result = self.conditional()
        if self.index < len(self.tokens):
            token = self.tokens[self.index]
            raise CExprError(f"unexpected '{token.text}' in expression", token.col)
        return result

    def peek(self) -> Token | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self) -> Token:
        token = self.peek()
        if token is None:
            raise CExprError("expression ends too early", self.end_col)
        self.index += 1
        return token

    def expect(self, text: str) -> None:
        token = self.peek()
        if token is None or token.text != text:
            col = token.col if token is not None else self.end_col
            found = f"'{token.text}'" if token is not None else "end of expression"
            raise CExprError(f"expected '{text}', found {found}", col)
        self.index += 1

    def boolean(self, flag: bool) -> CInt:
        return CInt(int(flag), self.int_bits, False)

    def conditional(self) -> CInt:
        self.depth += 1
        if self.depth > MAX_EXPR_DEPTH:
            token = self.peek()
            raise CExprError(
                "expression nested too deeply", token.col if token else self.end_col
            )
        cond = self.binary(1)
        token = self.peek()
        if token is None or token.text != "?":
            self.depth -= 1
            return cond
        self.index += 1
        live, chosen = self.live, cond.value != 0
        self.live = live and chosen
        when_true = self.conditional()
        self.expect(":")
        self.live = live and not chosen
        when_false = self.conditional()
        self.live = live
        self.depth -= 1
        bits, unsigned = _common_type(when_true, when_false)
        picked = when_true if chosen else when_false
        return _wrap(picked.value, bits, unsigned)

    def binary(self, min_prec: int) -> CInt:
        left = self.unary()
        while True:
            token = self.peek()
            if token is None or token.kind != "op":
                return left
            prec = _BINARY_PRECEDENCE.get(token.text)
            if prec is None or prec < min_prec:
                return left
            self.index += 1
            if token.text in ("&&", "||"):
                live = self.live
                decided = (left.value == 0) if token.text == "&&" else (left.value != 0)
                self.live = live and not decided
                right = self.binary(prec + 1)
                self.live = live
                if token.text == "&&":
                    left = self.boolean(left.value != 0 and right.value != 0)
                else:
                    left = self.boolean(left.value != 0 or right.value != 0)
                continue
            right = self.binary(prec + 1)
            left = self.apply(token, left, right)

    def apply(self, op: Token, a: CInt, b: CInt) -> CInt:
        text = op.text
        if text in ("<<", ">>"):
            a = self.promote(a)
            count = b.value
            if count < 0 or count >= a.bits:
                if not self.live:
                    return a
                raise CExprError(f"shift count {count} is out of range", op.col)
            shifted = a.value << count if text == "<<" else a.value >> count
            return _wrap(shifted, a.bits, a.unsigned)
        bits, unsigned = _common_type(self.promote(a), self.promote(b))
        x = _wrap(a.value, bits, unsigned).value
        y = _wrap(b.value, bits, unsigned).value
        if text in ("/", "%"):
            if y == 0:
                if not self.live:
                    return CInt(0, bits, unsigned)
                raise CExprError("division by zero", op.col)
            quotient = (
                abs(x) // abs(y) * (1 if (x < 0) == (y < 0) else -1)
            )  # C truncates
            return _wrap(quotient if text == "/" else x - y * quotient, bits, unsigned)
        if text == "*":
            return _wrap(x * y, bits, unsigned)
        if text == "+":
            return _wrap(x + y, bits, unsigned)
        if text == "-":
            return _wrap(x - y, bits, unsigned)
        if text == "&":
            return _wrap(x & y, bits, unsigned)
        if text == "|":
            return _wrap(x | y, bits, unsigned)
        if text == "^":
            return _wrap(x ^ y, bits, unsigned)
        comparisons = {
            "==": x == y,
            "!=": x != y,
            "<": x < y,
            "<=": x <= y,
            ">": x > y,
            ">=": x >= y,
        }
        return self.boolean(comparisons[text])

    def promote(self, value: CInt) -> CInt:
        return value if value.bits >= 32 else _wrap(value.value, 32, False)

    def unary(self) -> CInt:
        token = self.take()
        if token.kind == "op":
            if token.text == "(":
                cast = None if self.pp_mode else self.cast_type()
                if cast is not None:
                    operand = self.unary()
                    return self.promote(_wrap(operand.value, *cast))
                self.depth += 1
                if self.depth > MAX_EXPR_DEPTH:
                    raise CExprError("expression nested too deeply", token.col)
                inner = self.conditional()
                self.depth -= 1
                self.expect(")")
                return inner
            if token.text in ("+", "-", "~", "!"):
                self.depth += 1
                if self.depth > MAX_EXPR_DEPTH:
                    raise CExprError("expression nested too deeply", token.col)
                operand = self.promote(self.unary())
                self.depth -= 1
                if token.text == "+":
                    return operand
                if token.text == "-":
                    return _wrap(-operand.value, operand.bits, operand.unsigned)
                if token.text == "~":
                    return _wrap(~operand.value, operand.bits, operand.unsigned)
                return self.boolean(operand.value == 0)
        if token.kind == "num":
            return parse_int_literal(token, self.pp_mode)
        if token.kind == "char":
            return CInt(_char_value(token), self.int_bits, False)
        if token.kind == "id":
            return self.lookup(token)
        raise CExprError(f"unexpected '{token.text}' in expression", token.col)

    def cast_type(self) -> tuple[int, bool] | None:
        """A ``(type)`` cast at the current position (after the '('), consumed if found."""
        start = self.index
        words: list[str] = []
        while (token := self.peek()) is not None and token.kind == "id":
            if token.text not in _TYPE_WORDS and not (
                not words and token.text in _TYPEDEF_CASTS
            ):
                break
            words.append(token.text)
            self.index += 1
        closing = self.peek()
        if not words or closing is None or closing.text != ")":
            self.index = start
            return None
        self.index += 1
        if words[0] in _TYPEDEF_CASTS:
            return _TYPEDEF_CASTS[words[0]]
        unsigned = "unsigned" in words
        if "char" in words:
            return 8, unsigned
        if "short" in words:
            return 16, unsigned
        if "long" in words:
            return 64, unsigned
        return 32, unsigned


def _common_type(a: CInt, b: CInt) -> tuple[int, bool]:
    """The usual arithmetic conversions for LP64 (both operands already promoted)."""
    if a.bits == b.bits:
        return a.bits, a.unsigned or b.unsigned
    wider = a if a.bits > b.bits else b
    return wider.bits, wider.unsigned


def evaluate_c_expression(
    tokens: Sequence[Token], lookup: IdentLookup, *, pp_mode: bool, end_col: int = 1
) -> CInt:
    """Evaluate macro-expanded tokens as a C integer constant expression.

    ``pp_mode`` selects ``#if`` semantics (everything in intmax_t, no casts); otherwise
    C types on LP64 and ``(type)`` casts. Raises ``CExprError``.
    """
    return _ExprParser(tokens, lookup, pp_mode, end_col).parse()


#: Object-like macros: name -> body tokens; None marks a function-like macro (only
#: ``defined`` can see it).
MacroTable = dict[str, list[Token] | None]


def expand_macros(
    tokens: Sequence[Token], macros: MacroTable, *, handle_defined: bool
) -> list[Token]:
    """Expand object-like macros (rescanning, never re-entering a macro being expanded).

    Expanded tokens take the column of the macro name they replace. With
    ``handle_defined``, ``defined NAME`` / ``defined(NAME)`` become 1 or 0 first.
    """
    budget = [MAX_EXPANSION_TOKENS]
    return _expand(tokens, macros, handle_defined, frozenset(), budget)


def _expand(
    tokens: Sequence[Token],
    macros: MacroTable,
    handle_defined: bool,
    active: frozenset[str],
    budget: list[int],
) -> list[Token]:
    out: list[Token] = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        index += 1
        if token.kind != "id":
            out.append(token)
            continue
        if handle_defined and token.text == "defined":
            name_index = index
            parenthesized = name_index < len(tokens) and tokens[name_index].text == "("
            if parenthesized:
                name_index += 1
            if name_index >= len(tokens) or tokens[name_index].kind != "id":
                raise CExprError(
                    "'defined' must be followed by a macro name", token.col
                )
            index = name_index + 1
            if parenthesized:
                if index >= len(tokens) or tokens[index].text != ")":
                    raise CExprError(
                        "missing ')' after 'defined(NAME'", tokens[name_index].col
                    )
                index += 1
            value = "1" if tokens[name_index].text in macros else "0"
            out.append(Token("num", value, token.col))
            continue
        body = macros.get(token.text)
        if body is None or token.text in active:
            out.append(token)
            continue
        budget[0] -= len(body)
        if budget[0] < 0:
            raise CExprError(
                f"expansion of macro '{token.text}' is too large", token.col
            )
        placed = [Token(t.kind, t.text, token.col, t.space) for t in body]
        if placed:
            placed[0] = placed[0]._replace(space=token.space)
        out.extend(
            _expand(placed, macros, handle_defined, active | {token.text}, budget)
        )
    return out


# --------------------------------------------------------------------------------------
# The built-in preprocessor
# --------------------------------------------------------------------------------------

_DIRECTIVE_START_RE = re.compile(r"^[ \t\f\v]*#", re.MULTILINE)
_IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Things in an ordinary line that matter for comments and macro substitution.
_LINE_SCAN_RE = re.compile(
    r"""/\*|//|"(?:[^"\\]|\\.)*"?|'(?:[^'\\]|\\.)*'?|\.?[0-9](?:[eEpP][+-]|[0-9A-Za-z_.])*"""
    r"""|[A-Za-z_][A-Za-z0-9_]*"""
)
_LINE_MARKER_RE = re.compile(
    r'^\s*([0-9]+)(?:\s+"((?:[^"\\]|\\.)*)")?((?:\s+[0-9]+)*)\s*$'
)
_IGNORED_DIRECTIVES = frozenset({"pragma", "ident", "sccs", "warning"})


def quote_path(name: str) -> str:
    """A file name as it appears between quotes in a line marker."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _unquote(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


@dataclass
class _Group:
    """One ``#if`` ... ``#endif`` group being read."""

    directive: str
    pos: Position
    parent_active: bool
    active: bool
    taken: bool
    seen_else: bool = False
    #: The same three facts for the other rpcgen views (sets of view symbols).
    parent_others: frozenset[str] = frozenset()
    others: frozenset[str] = frozenset()
    others_taken: frozenset[str] = frozenset()


@dataclass
class _Context:
    macros: MacroTable
    include_dirs: tuple[Path, ...]
    out: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    seen: set[Path] = field(default_factory=set)
    stack: list[tuple[Path, str]] = field(default_factory=list)  # (resolved, display)
    expansion_cache: dict[str, str] = field(default_factory=dict)
    #: Views read only for their ``%`` lines, and where those lines are in ``out``.
    other_views: frozenset[str] = frozenset()
    view_lines: dict[int, tuple[str, ...]] = field(default_factory=dict)
    _view_macros: dict[str, MacroTable] = field(default_factory=dict)
    _macro_re: re.Pattern[str] | None = None
    _macro_re_stale: bool = True

    def macros_changed(self) -> None:
        self.expansion_cache.clear()
        self._view_macros.clear()
        self._macro_re_stale = True

    def view_macros(self, view: str) -> MacroTable:
        """The macros as rpcgen's cpp run for ``view`` has them: that symbol alone."""
        table = self._view_macros.get(view)
        if table is None:
            table = {k: v for k, v in self.macros.items() if k not in RPCGEN_VIEWS}
            table[view] = [Token("num", "1", 1)]
            self._view_macros[view] = table
        return table

    @property
    def macro_re(self) -> re.Pattern[str] | None:
        """Finds lines that may need substitution; rebuilt lazily after a change."""
        if self._macro_re_stale:
            self._macro_re_stale = False
            names = [name for name, body in self.macros.items() if body is not None]
            if not names:
                self._macro_re = None
            elif (
                len(names) > MAX_PREFILTER_NAMES
            ):  # a huge alternation costs more than it saves
                self._macro_re = _IDENT_RE
            else:
                alternatives = "|".join(sorted(names, key=len, reverse=True))
                self._macro_re = re.compile(r"\b(?:" + alternatives + r")\b")
        return self._macro_re


def preprocess(
    path: Path,
    *,
    defines: Mapping[str, str] = {},
    include_dirs: Sequence[Path] = (),
    system_cpp: bool = False,
    text: str | None = None,
    predefined: Mapping[str, str] | None = None,
) -> PreprocessedSource:
    """Preprocess one .x file (or ``text`` standing for it) for the lexer.

    ``predefined`` (default ``DEFAULT_PREDEFINED``) is defined first, then ``defines``
    (the user's ``-D``). Raises ``XdrgenError`` for any problem, with its position.
    """
    display = str(path)
    other_views = frozenset(OTHER_VIEWS if predefined is None else ())
    symbols = dict(DEFAULT_PREDEFINED if predefined is None else predefined)
    symbols.update(defines)
    for name in symbols:
        if not _IDENT_RE.fullmatch(name):
            raise error(f"cannot define '{name}': not an identifier")
    if system_cpp:
        return _run_system_cpp(Path(path), display, symbols, tuple(include_dirs), text)
    if text is None:
        text = _read_source(Path(path), display, None)
    macros: MacroTable = {}
    for name, value in symbols.items():
        macros[name] = tokenize_c(value)
    context = _Context(
        macros, tuple(Path(d) for d in include_dirs), other_views=other_views
    )
    context.files.append(Path(path))
    resolved = _resolve(Path(path))
    context.seen.add(resolved)
    if _fast_path_applies(text, macros):
        body = text if text.endswith("\n") or not text else text + "\n"
        return PreprocessedSource(
            f"# 1 {quote_path(display)}\n{body}", display, (Path(path),)
        )
    context.macros_changed()
    context.out.append(f"# 1 {quote_path(display)}")
    context.stack.append((resolved, display))
    _process_file(context, text, display)
    return PreprocessedSource(
        "\n".join(context.out) + "\n",
        display,
        tuple(context.files),
        context.view_lines,
    )


def _fast_path_applies(text: str, macros: MacroTable) -> bool:
    """True when no line can be a directive and no macro name occurs at all."""
    if _DIRECTIVE_START_RE.search(text):
        return False
    return not any(name in text for name in macros)


def _resolve(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return path.absolute()


def _read_source(path: Path, display: str, where: Position | None) -> str:
    try:
        if not path.is_file():
            raise error(f"cannot read '{display}': not a regular file", where)
        if path.stat().st_size > MAX_FILE_BYTES:
            raise error(f"'{display}' is larger than {MAX_FILE_BYTES} bytes", where)
        data = path.read_bytes()
    except OSError as exc:
        raise error(f"cannot read '{display}': {exc.strerror or exc}", where) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise error(
            f"'{display}' is not valid UTF-8 (byte 0x{data[exc.start]:02x})",
            Position(display, line, col),
        ) from None


def _process_file(context: _Context, text: str, display: str) -> None:
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    out = context.out
    groups: list[_Group] = []
    in_comment = False
    file_name = display
    delta = 0  # logical line = physical index + 1 + delta (changed by line markers)
    index = 0
    count = len(lines)
    while index < count:
        line = lines[index]
        active = not groups or groups[-1].active
        others = groups[-1].others if groups else context.other_views
        if not in_comment:
            stripped = line.lstrip(" \t\f\v")
            if stripped.startswith("#"):
                col = len(line) - len(stripped) + 1
                pos = Position(file_name, index + 1 + delta, col)
                directive, consumed = _directive_text(lines, index, pos)
                result = _directive(context, directive, pos, groups, active, display)
                if isinstance(result, _LineMarker):
                    file_name = result.file if result.file is not None else file_name
                    delta = result.line - (index + consumed + 1)
                    out.append(f"# {result.line} {quote_path(file_name)}")
                elif isinstance(result, _Include):
                    _include(context, result, pos)
                    next_line = index + consumed + 1 + delta
                    out.append(f"# {next_line} {quote_path(file_name)} 2")
                else:
                    out.extend([""] * consumed)
                index += consumed
                continue
            if line.startswith("%"):  # rpcgen pass-through: column 1 only, verbatim
                if active or not others:
                    out.append(line if active else "")
                    index += 1
                else:
                    index = _other_view_passthrough(context, lines, index, others)
                continue
        if active:
            line, in_comment = _substitute_line(
                context, line, in_comment, file_name, index + 1 + delta
            )
            out.append(line)
        else:
            in_comment = _comment_state_after(line, in_comment)
            out.append("")
        index += 1
    if groups:
        group = groups[-1]
        raise error(f"#{group.directive} without matching #endif", group.pos)


def _other_view_passthrough(
    context: _Context, lines: Sequence[str], index: int, views: frozenset[str]
) -> int:
    """Copy a ``%`` line only other views see, with the lines a trailing backslash
    joins to it (as the lexer reads them); return the index of the next line."""
    shown = tuple(view for view in RPCGEN_VIEWS if view in views)
    while True:
        line = lines[index]
        context.view_lines[len(context.out)] = shown
        context.out.append(line)
        index += 1
        if not line.rstrip("\r").endswith("\\") or index >= len(lines):
            return index


class _LineMarker(NamedTuple):
    line: int
    file: str | None


class _Include(NamedTuple):
    path: Path
    display: str


def _directive_text(lines: Sequence[str], index: int, pos: Position) -> tuple[str, int]:
    """The logical directive line: comments blanked (same width on the first line),
    backslash-newlines joined. Returns it with the number of physical lines used."""
    pieces: list[str] = []
    row = index
    line = lines[row].rstrip("\r")
    k = 0
    in_comment = False
    comment_start = pos
    while True:
        if k >= len(line):
            if not in_comment:
                break
            row += 1
            if row >= len(lines):
                raise error("unterminated comment", comment_start)
            line = lines[row].rstrip("\r")
            k = 0
            pieces.append(" ")
            continue
        if in_comment:
            end = line.find("*/", k)
            stop = len(line) if end < 0 else end + 2
            pieces.append(" " * (stop - k))
            k = stop
            in_comment = end < 0
            continue
        char = line[k]
        if char == "/" and line.startswith("/*", k):
            in_comment = True
            comment_start = Position(pos.file, pos.line + row - index, k + 1)
            pieces.append("  ")
            k += 2
        elif char == "/" and line.startswith("//", k):
            break
        elif char == "\\" and not line[k + 1 :].strip():
            row += 1
            if row >= len(lines):
                break
            line = lines[row].rstrip("\r")
            k = 0
        elif char in "\"'":
            end = k + 1
            while end < len(line) and line[end] != char:
                end += 2 if line[end] == "\\" else 1
            pieces.append(line[k : end + 1])
            k = end + 1
        else:
            pieces.append(char)
            k += 1
    return "".join(pieces), row - index + 1


def _directive(
    context: _Context,
    text: str,
    pos: Position,
    groups: list[_Group],
    active: bool,
    display: str,
) -> _LineMarker | _Include | None:
    """Act on one directive; ``text`` starts with '#' at column ``pos.col``."""
    hash_index = pos.col - 1
    rest_start = hash_index + 1
    while rest_start < len(text) and text[rest_start] in " \t\f\v":
        rest_start += 1
    name_match = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|[0-9]+").match(text, rest_start)
    if name_match is None:
        if text[rest_start:].strip() and active:
            raise error(
                f"invalid preprocessing directive '{text[hash_index:].strip()}'", pos
            )
        return None  # the null directive
    name = name_match.group()
    body_start = name_match.end()
    body = text[body_start:]
    body_col = body_start + 1

    if name in ("if", "ifdef", "ifndef"):
        parent_others = groups[-1].others if groups else context.other_views
        others = _view_conditions(context, parent_others, name, body, body_col, pos)
        if not active:
            groups.append(
                _Group(name, pos, False, False, True, False, parent_others, others, others)
            )
            return None
        flag = _test(context.macros, name, body, body_col, pos)
        groups.append(
            _Group(name, pos, True, flag, flag, False, parent_others, others, others)
        )
        return None
    if name in ("elif", "else", "endif"):
        if not groups:
            raise error(f"#{name} without #if", pos)
        group = groups[-1]
        if name == "endif":
            groups.pop()
            return None
        if group.seen_else:
            raise error(
                f"#{name} after #else",
                pos,
                f"the #{group.directive} group began at {group.pos}",
            )
        if name == "else":
            group.seen_else = True
            group.active = group.parent_active and not group.taken
            group.taken = True
            group.others = group.parent_others - group.others_taken
            group.others_taken = group.parent_others
            return None
        if group.parent_active and not group.taken:
            group.active = _condition(context.macros, body, body_col, pos)
            group.taken = group.active
        else:
            group.active = False
        group.others = _view_conditions(
            context, group.parent_others - group.others_taken, "if", body, body_col, pos
        )
        group.others_taken |= group.others
        return None
    if not active:
        return None  # other directives in skipped groups are not even looked at
    if name.isdigit() or name == "line":
        return _line_marker(name, body, body_col, pos)
    if name == "define":
        _define(context, body, body_col, pos)
        return None
    if name == "undef":
        context.macros.pop(_ifdef_name(body, body_col, name, pos), None)
        context.macros_changed()
        return None
    if name == "include":
        return _include_target(context, body, body_col, pos, display)
    if name == "error":
        message = body.strip()
        raise error(f"#error {message}" if message else "#error", pos)
    if name in _IGNORED_DIRECTIVES:
        return None
    raise error(
        f"unsupported preprocessing directive '#{name}'",
        pos,
        "the built-in preprocessor supports #define (object-like), #undef, #if/#ifdef/"
        "#ifndef/#elif/#else/#endif, #include, #line, #error, #pragma and #ident; "
        "use --cpp for the system preprocessor",
    )


def _ifdef_name(body: str, body_col: int, directive: str, pos: Position) -> str:
    tokens = tokenize_c(body, body_col)
    if not tokens or tokens[0].kind != "id":
        col = tokens[0].col if tokens else body_col
        raise error(
            f"#{directive} expects a macro name", Position(pos.file, pos.line, col)
        )
    return tokens[0].text


def _test(
    macros: MacroTable, directive: str, body: str, body_col: int, pos: Position
) -> bool:
    """Whether an ``#if``/``#elif`` (``directive`` "if"), ``#ifdef`` or ``#ifndef`` holds."""
    if directive == "if":
        return _condition(macros, body, body_col, pos)
    flag = _ifdef_name(body, body_col, directive, pos) in macros
    return flag if directive == "ifdef" else not flag


def _view_conditions(
    context: _Context,
    views: frozenset[str],
    directive: str,
    body: str,
    body_col: int,
    pos: Position,
) -> frozenset[str]:
    """The views among ``views`` in which the condition holds.  These views are read
    only for their ``%`` lines, so a condition they cannot evaluate just fails."""
    held = []
    for view in views:
        try:
            if _test(context.view_macros(view), directive, body, body_col, pos):
                held.append(view)
        except XdrgenError:
            pass
    return frozenset(held)


def _condition(macros: MacroTable, body: str, body_col: int, pos: Position) -> bool:
    tokens = tokenize_c(body, body_col)
    end_col = body_col + len(body.rstrip())

    def zero(token: Token) -> CInt:  # an identifier left after expansion is 0, as in C
        return CInt(0, 64, False)

    try:
        expanded = expand_macros(tokens, macros, handle_defined=True)
        return (
            evaluate_c_expression(expanded, zero, pp_mode=True, end_col=end_col).value
            != 0
        )
    except CExprError as exc:
        raise error(
            f"in #if expression: {exc.message}", Position(pos.file, pos.line, exc.col)
        ) from None


def _define(context: _Context, body: str, body_col: int, pos: Position) -> None:
    match = re.compile(r"[ \t\f\v]*([A-Za-z_][A-Za-z0-9_]*)").match(body)
    if match is None:
        col = body_col + len(body) - len(body.lstrip())
        raise error("#define expects a macro name", Position(pos.file, pos.line, col))
    name = match.group(1)
    name_col = body_col + match.start(1)
    if name == "defined":
        raise error(
            "'defined' cannot be used as a macro name",
            Position(pos.file, pos.line, name_col),
        )
    after = body[match.end() :]
    if after.startswith("("):
        raise error(
            f"function-like macro '{name}' is not supported by the built-in preprocessor",
            Position(pos.file, pos.line, name_col),
            "use --cpp to run the system preprocessor",
        )
    context.macros[name] = tokenize_c(after, body_col + match.end())
    context.macros_changed()


def _line_marker(name: str, body: str, body_col: int, pos: Position) -> _LineMarker:
    spec = body if name == "line" else name + body
    match = _LINE_MARKER_RE.match(spec)
    if match is None:
        raise error(
            f"malformed line marker '#{(name + body).strip() if name != 'line' else 'line' + body}'",
            pos,
        )
    number = int(match.group(1))
    if number > 1 << 31:
        raise error(f"line number {number} is out of range", pos)
    file = _unquote(match.group(2)) if match.group(2) is not None else None
    return _LineMarker(number, file)


def _include_target(
    context: _Context, body: str, body_col: int, pos: Position, display: str
) -> _Include:
    spec = body.strip()
    if spec and spec[0] not in '"<':
        try:
            expanded = expand_macros(
                tokenize_c(body, body_col), context.macros, handle_defined=False
            )
        except CExprError as exc:
            raise error(exc.message, Position(pos.file, pos.line, exc.col)) from None
        spec = "".join(t.text for t in expanded).strip()
    quoted = re.fullmatch(r'"([^"]+)"', spec)
    angled = re.fullmatch(r"<([^>]+)>", spec)
    if quoted is None and angled is None:
        raise error('#include expects "FILE" or <FILE>', pos)
    name = quoted.group(1) if quoted is not None else angled.group(1) if angled else ""
    candidates: list[Path] = []
    if quoted is not None:
        candidates.append(Path(display).parent / name)
    candidates.extend(directory / name for directory in context.include_dirs)
    for candidate in candidates:
        if candidate.is_file():
            return _Include(candidate, str(candidate))
    searched = ", ".join(str(c.parent) for c in candidates) or "no -I directories given"
    raise error(f"cannot find include file '{name}'", pos, f"searched: {searched}")


def _include(context: _Context, target: _Include, pos: Position) -> None:
    resolved = _resolve(target.path)
    if any(resolved == entry for entry, _ in context.stack):
        chain = " -> ".join(d for _, d in context.stack) + f" -> {target.display}"
        raise error(
            f"#include cycle: '{target.display}' is already being read", pos, chain
        )
    if len(context.stack) >= MAX_INCLUDE_DEPTH:
        raise error(f"#include nested more than {MAX_INCLUDE_DEPTH} levels deep", pos)
    text = _read_source(target.path, target.display, pos)
    if resolved not in context.seen:
        context.seen.add(resolved)
        context.files.append(target.path)
    context.out.append(f"# 1 {quote_path(target.display)} 1")
    context.stack.append((resolved, target.display))
    _process_file(context, text, target.display)
    context.stack.pop()


def _comment_state_after(line: str, in_comment: bool) -> bool:
    """Whether a /* comment is still open at the end of ``line``."""
    k = 0
    if in_comment:
        end = line.find("*/")
        if end < 0:
            return True
        k = end + 2
    if "/" not in line[k:]:
        return False
    for match in _LINE_SCAN_RE.finditer(line, k):
        token = match.group()
        if token == "//":
            return False
        if token == "/*":
            end = line.find("*/", match.end())
            if end < 0:
                return True
            return _comment_state_after(line[end + 2 :], False)
    return False


def _substitute_line(
    context: _Context, line: str, in_comment: bool, file_name: str, line_number: int
) -> tuple[str, bool]:
    """Replace macros outside comments and quotes; track the comment state."""
    start = 0
    if in_comment:
        end = line.find("*/")
        if end < 0:
            return line, True
        start = end + 2
    macro_re = context.macro_re
    rest = line[start:]
    has_macro = macro_re is not None and macro_re.search(rest) is not None
    if not has_macro:
        return line, ("/" in rest and _comment_state_after(rest, False))
    pieces = [line[:start]]
    k = start
    still_open = False
    for match in _LINE_SCAN_RE.finditer(line, start):
        if match.start() < k:
            continue
        token = match.group()
        if token == "//":
            break
        if token == "/*":
            end = line.find("*/", match.end())
            if end < 0:
                still_open = True
                break
            pieces.append(line[k : end + 2])
            k = end + 2
            continue
        body = context.macros.get(token)
        if body is None or not (token[0].isalpha() or token[0] == "_"):
            continue
        pieces.append(line[k : match.start()])
        pieces.append(
            _expansion_text(
                context, token, Position(file_name, line_number, match.start() + 1)
            )
        )
        k = match.end()
    pieces.append(line[k:])
    return "".join(pieces), still_open


def _expansion_text(context: _Context, name: str, where: Position) -> str:
    cached = context.expansion_cache.get(name)
    if cached is None:
        try:
            tokens = expand_macros(
                [Token("id", name, 1)], context.macros, handle_defined=False
            )
        except CExprError as exc:
            raise error(exc.message, where) from None
        cached = "".join(
            (" " if t.space and i else "") + t.text for i, t in enumerate(tokens)
        )
        context.expansion_cache[name] = cached
    return cached


# --------------------------------------------------------------------------------------
# The system preprocessor
# --------------------------------------------------------------------------------------

_CPP_MARKER_RE = re.compile(r'^# ([0-9]+) "((?:[^"\\]|\\.)*)"((?: [0-9]+)*)\s*$')
_CPP_ERROR_RE = re.compile(
    r"^(.+?):([0-9]+):([0-9]+): (?:fatal )?error: (.*)$", re.MULTILINE
)


def _run_system_cpp(
    path: Path,
    display: str,
    symbols: Mapping[str, str],
    include_dirs: tuple[Path, ...],
    text: str | None,
) -> PreprocessedSource:
    """Run ``cpp -C`` as rpcgen does, then keep only what comes from the .x files."""
    cpp = shutil.which("cpp")
    if cpp is None:
        raise error(
            "the system C preprocessor 'cpp' was not found on PATH (needed by --cpp)"
        )
    command = [cpp, "-C"]
    command += [f"-D{name}={value}" for name, value in symbols.items()]
    command += [f"-I{directory}" for directory in include_dirs]
    if text is None:
        if not path.is_file():
            raise error(f"cannot read '{display}': not a regular file")
        command.append(str(path))
        cpp_name = str(path)
    else:
        # Quoted includes from stdin are looked up in the cwd, then beside the file.
        command += ["-iquote", str(path.parent), "-"]
        cpp_name = "<stdin>"
    try:
        completed = subprocess.run(
            command,
            input=text if text is not None else None,
            stdin=None if text is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=CPP_TIMEOUT_SECONDS,
        )
    except subprocess.TimeoutExpired:
        raise error(
            f"cpp did not finish within {CPP_TIMEOUT_SECONDS} s on '{display}'"
        ) from None
    except OSError as exc:
        raise error(f"cannot run cpp: {exc}") from None
    if completed.returncode != 0:
        raise _cpp_failure(completed.stderr, cpp_name, display)
    out_text, files = _filter_cpp_output(completed.stdout, cpp_name, display)
    return PreprocessedSource(
        out_text, display, (path, *[f for f in files if f != path])
    )


def _cpp_failure(stderr: str, cpp_name: str, display: str) -> XdrgenError:
    first = _CPP_ERROR_RE.search(stderr)
    note = "cpp said:\n" + stderr.rstrip()
    if first is None:
        return XdrgenError(Diagnostic("error", "cpp failed", None, (note,)))
    file = display if first.group(1) == cpp_name else first.group(1)
    pos = Position(file, int(first.group(2)), int(first.group(3)))
    return XdrgenError(Diagnostic("error", f"cpp: {first.group(4)}", pos, (note,)))


def _filter_cpp_output(
    output: str, cpp_name: str, display: str
) -> tuple[str, list[Path]]:
    """Drop what cpp adds from <built-in>, <command-line> and its implicit system
    includes (their comments would survive -C); rename the main file to ``display``."""
    out = [f"# 1 {quote_path(display)}"]
    files: list[Path] = []
    stack: list[str] = [cpp_name]
    keeping = False
    for line in output.split("\n"):
        match = _CPP_MARKER_RE.match(line) if line.startswith("# ") else None
        if match is None:
            if keeping:
                out.append(line)
            continue
        name = _unquote(match.group(2))
        flags = match.group(3).split()
        if "1" in flags:
            stack.append(name)
        elif "2" in flags:
            while len(stack) > 1 and stack[-1] != name:
                stack.pop()
            stack[-1] = name
        else:
            stack[-1] = name
        keeping = stack[0] == cpp_name
        if not keeping:
            continue
        if "1" in flags and "3" not in flags and not name.startswith("<"):
            files.append(Path(name))
        shown = display if name == cpp_name else name
        tail = " " + " ".join(flags) if flags else ""
        # Blank lines and markers just before a marker carry no information.
        while len(out) > 1 and (out[-1] == "" or out[-1].startswith("# ")):
            out.pop()
        marker = f"# {match.group(1)} {quote_path(shown)}{tail}"
        if len(out) > 1 or marker != out[0]:
            out.append(marker)
    while out and out[-1] == "":
        out.pop()
    return "\n".join(out) + "\n", _unique(files)


def _unique(paths: Iterable[Path]) -> list[Path]:
    seen: set[Path] = set()
    result = []
    for path in paths:
        if path not in seen:
            seen.add(path)
            result.append(path)
    return result
