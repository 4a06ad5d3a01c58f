"""The state of one built-in preprocessor run: macros, output, include stack, views."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from xdrgen.frontend.preprocessing.ctokens import Token
from xdrgen.frontend.preprocessing.limits import MAX_PREFILTER_NAMES
from xdrgen.frontend.preprocessing.macros import MacroTable
from xdrgen.frontend.preprocessing.views import RPCGEN_VIEWS

IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass
class Context:
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
                self._macro_re = IDENT_RE
            else:
                alternatives = "|".join(sorted(names, key=len, reverse=True))
                self._macro_re = re.compile(r"\b(?:" + alternatives + r")\b")
        return self._macro_re
