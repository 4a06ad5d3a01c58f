"""Macro substitution in ordinary lines, outside comments and quotes; comment tracking."""

from __future__ import annotations

import re

from xdrgen.diagnostics import Position, error
from xdrgen.frontend.preprocessing.context import Context
from xdrgen.frontend.preprocessing.ctokens import CExprError, Token
from xdrgen.frontend.preprocessing.macros import expand_macros

# Things in an ordinary line that matter for comments and macro substitution.
_LINE_SCAN_RE = re.compile(
    r"""/\*|//|"(?:[^"\\]|\\.)*"?|'(?:[^'\\]|\\.)*'?|\.?[0-9](?:[eEpP][+-]|[0-9A-Za-z_.])*"""
    r"""|[A-Za-z_][A-Za-z0-9_]*"""
)


def comment_state_after(line: str, in_comment: bool) -> bool:
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
            return comment_state_after(line[end + 2 :], False)
    return False


def substitute_line(
    context: Context, line: str, in_comment: bool, file_name: str, line_number: int
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
        return line, ("/" in rest and comment_state_after(rest, False))
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


def _expansion_text(context: Context, name: str, where: Position) -> str:
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
