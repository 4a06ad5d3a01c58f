"""``#include``: finding the file, reading it safely, refusing cycles and deep nesting."""

from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

from xdrgen.diagnostics import Position, error
from xdrgen.frontend.preprocessing.context import Context
from xdrgen.frontend.preprocessing.ctokens import CExprError, tokenize_c
from xdrgen.frontend.preprocessing.limits import MAX_FILE_BYTES, MAX_INCLUDE_DEPTH
from xdrgen.frontend.preprocessing.macros import expand_macros
from xdrgen.frontend.preprocessing.output import quote_path


class Include(NamedTuple):
    path: Path
    display: str


def resolve_path(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return path.absolute()


def read_source(path: Path, display: str, where: Position | None) -> str:
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


def include_target(
    context: Context, body: str, body_col: int, pos: Position, display: str
) -> Include:
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
            return Include(candidate, str(candidate))
    searched = ", ".join(str(c.parent) for c in candidates) or "no -I directories given"
    raise error(f"cannot find include file '{name}'", pos, f"searched: {searched}")


def enter_include(context: Context, target: Include, pos: Position) -> str:
    """Check and read an included file, mark its start in the output and push it on
    the include stack; returns its text (the caller reads it, then pops the stack)."""
    resolved = resolve_path(target.path)
    if any(resolved == entry for entry, _ in context.stack):
        chain = " -> ".join(d for _, d in context.stack) + f" -> {target.display}"
        raise error(
            f"#include cycle: '{target.display}' is already being read", pos, chain
        )
    if len(context.stack) >= MAX_INCLUDE_DEPTH:
        raise error(f"#include nested more than {MAX_INCLUDE_DEPTH} levels deep", pos)
    text = read_source(target.path, target.display, pos)
    if resolved not in context.seen:
        context.seen.add(resolved)
        context.files.append(target.path)
    context.out.append(f"# 1 {quote_path(target.display)} 1")
    context.stack.append((resolved, target.display))
    return text
