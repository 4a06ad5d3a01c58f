"""C preprocessing tokens (shared by the preprocessor, the expression evaluator and
the C header reader)."""

from __future__ import annotations

import re
from typing import NamedTuple


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
