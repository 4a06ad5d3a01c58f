"""The preprocessor's output and its line mapping: cpp-style line markers
``# LINE "FILE" [FLAGS]`` keep every position the lexer reports a real ``file:line:col``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from xdrgen.diagnostics import Position, error


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


_LINE_MARKER_RE = re.compile(
    r'^\s*([0-9]+)(?:\s+"((?:[^"\\]|\\.)*)")?((?:\s+[0-9]+)*)\s*$'
)


def quote_path(name: str) -> str:
    """A file name as it appears between quotes in a line marker."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def unquote(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


class LineMarker(NamedTuple):
    line: int
    file: str | None


def parse_line_marker(name: str, body: str, body_col: int, pos: Position) -> LineMarker:
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
    file = unquote(match.group(2)) if match.group(2) is not None else None
    return LineMarker(number, file)
