"""Directive lines: reading one (comments, continuations), then acting on it."""

from __future__ import annotations

import re
from collections.abc import Sequence

from xdrgen.diagnostics import Position, error
from xdrgen.frontend.preprocessing.conditionals import (
    CONDITIONAL_DIRECTIVES,
    Group,
    conditional_directive,
    ifdef_name,
)
from xdrgen.frontend.preprocessing.context import Context
from xdrgen.frontend.preprocessing.ctokens import tokenize_c
from xdrgen.frontend.preprocessing.includes import Include, include_target
from xdrgen.frontend.preprocessing.output import LineMarker, parse_line_marker

_IGNORED_DIRECTIVES = frozenset({"pragma", "ident", "sccs", "warning"})


def directive_text(lines: Sequence[str], index: int, pos: Position) -> tuple[str, int]:
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


def run_directive(
    context: Context,
    text: str,
    pos: Position,
    groups: list[Group],
    active: bool,
    display: str,
) -> LineMarker | Include | None:
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

    if name in CONDITIONAL_DIRECTIVES:
        conditional_directive(context, name, body, body_col, pos, groups, active)
        return None
    if not active:
        return None  # other directives in skipped groups are not even looked at
    if name.isdigit() or name == "line":
        return parse_line_marker(name, body, body_col, pos)
    if name == "define":
        _define(context, body, body_col, pos)
        return None
    if name == "undef":
        context.macros.pop(ifdef_name(body, body_col, name, pos), None)
        context.macros_changed()
        return None
    if name == "include":
        return include_target(context, body, body_col, pos, display)
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


def _define(context: Context, body: str, body_col: int, pos: Position) -> None:
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
