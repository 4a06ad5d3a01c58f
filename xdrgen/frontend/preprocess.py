"""The preprocessing stage: a small, exact cpp subset (or the system cpp) in front of the lexer.

The output keeps lines 1:1 with the source (directives and skipped lines become empty
lines) and uses cpp-style line markers ``# LINE "FILE" [FLAGS]`` whenever the mapping
changes, so every position the lexer reports is a real ``file:line:col``.
See docs/preprocessing.md for the supported subset and the defaults.

This module is the entry point; the work is done in ``xdrgen.frontend.preprocessing``
(one module per job), whose shared names are re-exported here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from xdrgen.diagnostics import error
from xdrgen.frontend.preprocessing.builtin import run_builtin
from xdrgen.frontend.preprocessing.cexpr import (
    CInt,
    IdentLookup,
    evaluate_c_expression,
    parse_int_literal,
)
from xdrgen.frontend.preprocessing.context import IDENT_RE
from xdrgen.frontend.preprocessing.ctokens import CExprError, Token, tokenize_c
from xdrgen.frontend.preprocessing.limits import (
    CPP_TIMEOUT_SECONDS,
    MAX_EXPANSION_TOKENS,
    MAX_EXPR_DEPTH,
    MAX_FILE_BYTES,
    MAX_INCLUDE_DEPTH,
    MAX_LITERAL_DIGITS,
    MAX_PREFILTER_NAMES,
)
from xdrgen.frontend.preprocessing.macros import MacroTable, expand_macros
from xdrgen.frontend.preprocessing.output import PreprocessedSource, quote_path
from xdrgen.frontend.preprocessing.system import run_system_cpp
from xdrgen.frontend.preprocessing.views import (
    DEFAULT_PREDEFINED,
    OTHER_VIEWS,
    RPCGEN_VIEWS,
)

__all__ = [
    "CPP_TIMEOUT_SECONDS",
    "DEFAULT_PREDEFINED",
    "MAX_EXPANSION_TOKENS",
    "MAX_EXPR_DEPTH",
    "MAX_FILE_BYTES",
    "MAX_INCLUDE_DEPTH",
    "MAX_LITERAL_DIGITS",
    "MAX_PREFILTER_NAMES",
    "OTHER_VIEWS",
    "RPCGEN_VIEWS",
    "CExprError",
    "CInt",
    "IdentLookup",
    "MacroTable",
    "PreprocessedSource",
    "Token",
    "evaluate_c_expression",
    "expand_macros",
    "parse_int_literal",
    "preprocess",
    "quote_path",
    "tokenize_c",
]


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
        if not IDENT_RE.fullmatch(name):
            raise error(f"cannot define '{name}': not an identifier")
    if system_cpp:
        return run_system_cpp(Path(path), display, symbols, tuple(include_dirs), text)
    return run_builtin(Path(path), display, symbols, include_dirs, text, other_views)
