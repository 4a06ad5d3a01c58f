"""The built-in preprocessor: reads a file line by line, keeping lines 1:1 with the source."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from xdrgen.diagnostics import Position, error
from xdrgen.frontend.preprocessing.context import Context
from xdrgen.frontend.preprocessing.conditionals import Group
from xdrgen.frontend.preprocessing.ctokens import tokenize_c
from xdrgen.frontend.preprocessing.directives import directive_text, run_directive
from xdrgen.frontend.preprocessing.includes import (
    enter_include,
    read_source,
    resolve_path,
)
from xdrgen.frontend.preprocessing.macros import MacroTable
from xdrgen.frontend.preprocessing.includes import Include
from xdrgen.frontend.preprocessing.output import (
    LineMarker,
    PreprocessedSource,
    quote_path,
)
from xdrgen.frontend.preprocessing.substitute import (
    comment_state_after,
    substitute_line,
)
from xdrgen.frontend.preprocessing.views import RPCGEN_VIEWS

_DIRECTIVE_START_RE = re.compile(r"^[ \t\f\v]*#", re.MULTILINE)


def run_builtin(
    path: Path,
    display: str,
    symbols: Mapping[str, str],
    include_dirs: Sequence[Path],
    text: str | None,
    other_views: frozenset[str],
) -> PreprocessedSource:
    """Preprocess ``path`` (or ``text`` standing for it) with ``symbols`` defined."""
    if text is None:
        text = read_source(Path(path), display, None)
    macros: MacroTable = {}
    for name, value in symbols.items():
        macros[name] = tokenize_c(value)
    context = Context(
        macros, tuple(Path(d) for d in include_dirs), other_views=other_views
    )
    context.files.append(Path(path))
    resolved = resolve_path(Path(path))
    context.seen.add(resolved)
    if _fast_path_applies(text, macros):
        body = text if text.endswith("\n") or not text else text + "\n"
        return PreprocessedSource(
            f"# 1 {quote_path(display)}\n{body}", display, (Path(path),)
        )
    context.macros_changed()
    context.out.append(f"# 1 {quote_path(display)}")
    context.stack.append((resolved, display))
    process_file(context, text, display)
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


def process_file(context: Context, text: str, display: str) -> None:
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    out = context.out
    groups: list[Group] = []
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
                directive, consumed = directive_text(lines, index, pos)
                result = run_directive(context, directive, pos, groups, active, display)
                if isinstance(result, LineMarker):
                    file_name = result.file if result.file is not None else file_name
                    delta = result.line - (index + consumed + 1)
                    out.append(f"# {result.line} {quote_path(file_name)}")
                elif isinstance(result, Include):
                    included = enter_include(context, result, pos)
                    process_file(context, included, result.display)
                    context.stack.pop()
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
            line, in_comment = substitute_line(
                context, line, in_comment, file_name, index + 1 + delta
            )
            out.append(line)
        else:
            in_comment = comment_state_after(line, in_comment)
            out.append("")
        index += 1
    if groups:
        group = groups[-1]
        raise error(f"#{group.directive} without matching #endif", group.pos)


def _other_view_passthrough(
    context: Context, lines: Sequence[str], index: int, views: frozenset[str]
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
