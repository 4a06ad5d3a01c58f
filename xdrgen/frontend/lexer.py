"""Tokens of the XDR / RPC language, with PLY; comments are kept as doc text.

Positions are computed lazily from a token's offset (``lexpos``) through a
:class:`SourceMap`, which also honours cpp line markers, so the lexer does no
per-token line bookkeeping.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import ply.lex as lex

from xdrgen.diagnostics import Diagnostic, Position, XdrgenError
from xdrgen.frontend.syntax import PassthroughNode

KEYWORDS: dict[str, str] = {
    word: word.upper()
    for word in (
        "bool case const default double quadruple enum float hyper int opaque string "
        "struct switch typedef union unsigned void program version char short long"
    ).split()
}

TOKENS: tuple[str, ...] = ("IDENT", "INTEGER", "STRING_LITERAL", "PASSTHROUGH", *sorted(set(KEYWORDS.values())))

LITERALS = "{}[]<>()=;:,*"

#: How tokens are named in messages.
HUMAN_NAMES: dict[str, str] = {
    "IDENT": "identifier",
    "INTEGER": "integer constant",
    "STRING_LITERAL": "string literal",
    "PASSTHROUGH": "'%' pass-through line",
    "$end": "end of file",
    **{kind: f"'{word}'" for word, kind in KEYWORDS.items()},
    **{ch: f"'{ch}'" for ch in LITERALS},
}

_MARKER = re.compile(r'^[ \t]*\#[ \t]*(?:line[ \t]+)?(\d+)[ \t]+"((?:[^"\\]|\\.)*)"', re.MULTILINE)
_BLANK_LINE = re.compile(r"\n[ \t\r\f]*\n")


class SourceMap:
    """Maps offsets in the preprocessed text to file, line and column."""

    def __init__(self, text: str, main_file: str) -> None:
        self.text = text
        self.line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
        # (index of the first line the marker governs, file, that line's number)
        self.markers: list[tuple[int, str, int]] = [(0, main_file, 1)]
        for match in _MARKER.finditer(text):
            line_index = bisect.bisect_right(self.line_starts, match.start())  # 1-based index
            file = re.sub(r"\\(.)", r"\1", match.group(2))  # cpp escapes '"' and '\\'
            self.markers.append((line_index, file, int(match.group(1))))
        self._marker_lines = [m[0] for m in self.markers]

    def position(self, offset: int) -> Position:
        line_index = bisect.bisect_right(self.line_starts, offset) - 1  # 0-based
        col = offset - self.line_starts[line_index] + 1
        k = bisect.bisect_right(self._marker_lines, line_index) - 1
        first_line, file, number = self.markers[k]
        return Position(file, number + line_index - first_line, col)

    def end_position(self, offset: int, length: int) -> Position:
        """Position just after a token (for 'expected ... after ...' messages)."""
        return self.position(offset + length)


def clean_comment(text: str) -> str:
    """Comment text without delimiters and the leading ``*`` column, dedented."""
    if text.startswith("//"):
        return text[2:].strip()
    body = text[2:-2]
    if body.startswith("*"):
        body = body[1:]
    lines = body.splitlines()
    cleaned: list[str] = []
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("*"):
            stripped = stripped[1:]
            if stripped.startswith(" "):
                stripped = stripped[1:]
        cleaned.append(stripped.rstrip())
    while cleaned and not cleaned[0]:
        cleaned.pop(0)
    while cleaned and not cleaned[-1]:
        cleaned.pop()
    return "\n".join(cleaned)


@dataclass
class Comment:
    text: str
    start: int
    end: int


@dataclass
class LexState:
    source: SourceMap
    #: Doc comment text by the offset of the token that follows it.
    docs: dict[int, str] = field(default_factory=dict)
    #: Raw comment text (delimiters kept) and its start offset, by offset of the
    #: token that follows it.
    raw_docs: dict[int, tuple[str, int]] = field(default_factory=dict)
    #: Comments on the same line after a token, by that token's offset.
    trailing: dict[int, str] = field(default_factory=dict)
    #: ``%`` lines in order, with their offsets.  They are not grammar tokens: like
    #: rpcgen's scanner, the lexer takes them between any two tokens.
    passthrough: list[tuple[int, PassthroughNode]] = field(default_factory=list)


class XdrLexer:
    """One lexer per parse: all state lives on the instance."""

    tokens = TOKENS
    literals = LITERALS
    t_ignore = " \t\r\f\n"

    def __init__(
        self,
        text: str,
        main_file: str,
        other_view_lines: Mapping[int, tuple[str, ...]] | None = None,
    ) -> None:
        self.state = LexState(SourceMap(text, main_file))
        self.text = text
        self._other_view_lines = other_view_lines or {}
        self._pending: Comment | None = None
        self._prev: Any = None
        #: The token before ``_prev`` (``_prev`` is the parser's lookahead on an error).
        self._before: Any = None
        self._lexer = lex.lex(module=self, reflags=int(re.VERBOSE | re.MULTILINE), optimize=False)
        self._lexer.input(text)

    # --- token rules (function rules match in definition order) -----------------

    def t_COMMENT(self, t: Any) -> None:
        r"/\*[^*]*\*+(?:[^/*][^*]*\*+)*/|//[^\n]*"
        self._note_comment(t.value, t.lexpos)

    def t_UNTERMINATED(self, t: Any) -> None:
        r"/\*"
        raise self.error("unterminated comment", t.lexpos)

    def t_LINEMARKER(self, t: Any) -> None:
        r"^[ \t]*\#[^\n]*"
        if not _MARKER.match(t.value):
            raise self.error(
                "unexpected preprocessor directive (run the preprocessor first)", t.lexpos
            )

    def t_PASSTHROUGH(self, t: Any) -> Any:
        r"^%(?:\\\n|[^\n])*"
        # A backslash at the end of a '%' line continues it, as cpp joins such lines.
        t.value = t.value[1:]
        return t

    def t_STRING_LITERAL(self, t: Any) -> Any:
        r'"(?:[^"\\\n]|\\.)*"'
        return t

    def t_INTEGER(self, t: Any) -> Any:
        r"-?(?:0[xX][0-9a-fA-F]+|[0-9]+)(?![A-Za-z0-9_])"
        return t

    def t_IDENT(self, t: Any) -> Any:
        r"[A-Za-z_][A-Za-z0-9_]*"
        t.type = KEYWORDS.get(t.value, "IDENT")
        return t

    def t_error(self, t: Any) -> None:
        char = t.value[0]
        if char == "-" or char.isdigit():
            match = re.match(r"-?[0-9A-Za-z_]*", t.value)
            word = match.group(0) if match else char
            raise self.error(f"invalid integer constant '{word}'", t.lexpos)
        shown = repr(char) if char.isprintable() else f"0x{ord(char):02x}"
        raise self.error(f"stray character {shown} in program", t.lexpos)

    # --- comment attachment -------------------------------------------------------

    def _note_comment(self, text: str, start: int) -> None:
        prev = self._prev
        if prev is not None and prev.type in (";", "{", ",") and "\n" not in self.text[
            prev.lexpos : start
        ]:
            # Same line after ';', '{' or ',': it annotates what came before.
            self.state.trailing[prev.lexpos] = clean_comment(text)
            return
        self._pending = Comment(text, start, start + len(text))

    def token(self) -> Any:
        """The next grammar token; ``%`` lines go to ``state.passthrough`` instead."""
        while True:
            tok = self.raw_token()
            if tok is None or tok.type != "PASSTHROUGH":
                return tok
            source = self.state.source
            line_index = bisect.bisect_right(source.line_starts, tok.lexpos) - 1
            node = PassthroughNode(
                tok.value,
                source.position(tok.lexpos),
                self._other_view_lines.get(line_index, ()),
            )
            self.state.passthrough.append((tok.lexpos, node))

    def raw_token(self) -> Any:
        """The next token, ``%`` lines included (as PASSTHROUGH)."""
        tok = self._lexer.token()
        if tok is None:
            return None
        pending = self._pending
        if pending is not None:
            self._pending = None
            if not _BLANK_LINE.search(self.text, pending.end, tok.lexpos):
                self.state.docs[tok.lexpos] = clean_comment(pending.text)
                self.state.raw_docs[tok.lexpos] = (pending.text, pending.start)
        if tok.type != "PASSTHROUGH":  # a '%' line is never what an error follows
            self._before = self._prev
            self._prev = tok
        return tok

    def input(self, text: str) -> None:  # PLY's parser calls this only if given input
        raise NotImplementedError

    def error(self, message: str, offset: int) -> XdrgenError:
        return XdrgenError(Diagnostic("error", message, self.state.source.position(offset)))


def tokenize(text: str, main_file: str) -> list[tuple[str, str, Position]]:
    """All tokens as (type, value, position): for tests and debugging."""
    lexer = XdrLexer(text, main_file)
    out: list[tuple[str, str, Position]] = []
    while (tok := lexer.raw_token()) is not None:
        out.append((tok.type, tok.value, lexer.state.source.position(tok.lexpos)))
    return out
