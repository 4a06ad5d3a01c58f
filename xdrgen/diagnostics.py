"""Diagnostics for .x sources: positions, rendering with a caret, and the error type."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class Position:
    """A place in a source file; ``line`` and ``col`` are 1-based."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


@dataclass(frozen=True, slots=True)
class Diagnostic:
    severity: Severity
    message: str
    pos: Position | None = None
    notes: tuple[str, ...] = ()

    def render(self, sources: "SourceCache | None" = None) -> str:
        """``file:line:col: severity: message``, then the source line and a caret."""
        where = f"{self.pos}: " if self.pos is not None else ""
        lines = [f"{where}{self.severity}: {self.message}"]
        if self.pos is not None:
            text = (sources or _DEFAULT_CACHE).line(self.pos.file, self.pos.line)
            if text is not None:
                expanded = text.expandtabs(8)
                # The caret goes under the column, counted in the tab-expanded line.
                prefix = text[: max(self.pos.col - 1, 0)].expandtabs(8)
                lines.append(f"    {expanded}")
                lines.append("    " + " " * len(prefix) + "^")
        lines.extend(f"  note: {note}" for note in self.notes)
        return "\n".join(lines)


@dataclass
class SourceCache:
    """Reads source lines for rendering; in-memory sources can be registered."""

    _texts: dict[str, list[str]] = field(default_factory=dict)

    def register(self, name: str, text: str) -> None:
        self._texts[name] = text.splitlines()

    def line(self, name: str, number: int) -> str | None:
        lines = self._texts.get(name)
        if lines is None:
            try:
                with open(name, encoding="utf-8", errors="replace") as handle:
                    lines = handle.read().splitlines()
            except OSError:
                return None
            self._texts[name] = lines
        if 1 <= number <= len(lines):
            return lines[number - 1]
        return None


_DEFAULT_CACHE = SourceCache()


class XdrgenError(Exception):
    """One or more error diagnostics; ``str()`` renders them all."""

    def __init__(self, diagnostics: list[Diagnostic] | Diagnostic) -> None:
        if isinstance(diagnostics, Diagnostic):
            diagnostics = [diagnostics]
        self.diagnostics = diagnostics
        super().__init__(self.render())

    def render(self, sources: SourceCache | None = None) -> str:
        return "\n".join(d.render(sources) for d in self.diagnostics)


def error(message: str, pos: Position | None = None, *notes: str) -> XdrgenError:
    return XdrgenError(Diagnostic("error", message, pos, tuple(notes)))


def display_path(path: str) -> str:
    """A path as the user most likely wants to see it: relative when below the cwd."""
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return path
    return path if rel.startswith("..") else rel
