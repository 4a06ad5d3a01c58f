"""What every rule class shares: the token list, per-parse state and small helpers."""

from __future__ import annotations

from typing import Any

from xdrgen.diagnostics import Diagnostic, Position, XdrgenError
from xdrgen.frontend.lexer import TOKENS, XdrLexer


class GrammarBase:
    """State and helpers of one parse; the rule classes build on it."""

    tokens = tuple(
        t for t in TOKENS if t != "PASSTHROUGH"
    )  # '%' lines stay in the lexer
    start = "specification"

    # Set per instance by XdrParser.
    lexer: XdrLexer
    parser: Any
    _spec_starts: dict[int, int]
    #: Offset of each top-level definition's final ';', by id of its node.
    _ends: dict[int, int]

    def pos(self, p: Any, n: int) -> Position:
        return self.lexer.state.source.position(p.lexpos(n))

    def doc(self, p: Any, n: int) -> str | None:
        return self.lexer.state.docs.get(p.lexpos(n))

    def error(self, message: str, pos: Position) -> XdrgenError:
        return XdrgenError(Diagnostic("error", message, pos))

    def _start(self, p: Any, n: int) -> int:
        """Offset where symbol ``n`` starts (PLY only tracks terminals' offsets)."""
        if p.slice[n].type == "type_specifier":
            return self._spec_starts[id(p[n])]
        offset: int = p.lexpos(n)
        return offset

    def _list(self, p: Any, item: Any) -> None:
        """A left-recursive list rule: ``item`` starts the list, or, in the recursive
        alternative (the rule's own symbol first), is appended to the list so far."""
        if p.slice[1].type == p.slice[0].type:
            p[1].append(item)
            p[0] = p[1]
        else:
            p[0] = [item]
