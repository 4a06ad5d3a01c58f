"""RFC 4506 + RFC 5531 grammar (with rpcgen's extensions), parsed with PLY yacc.

The LALR tables are built once per process from the grammar and shared (they are
immutable); every parse gets its own :class:`XdrParser` instance holding all of
its state, so two parses never interfere.  PLY is told never to write
``parsetab.py`` or ``parser.out``.

The rules are in ``xdrgen.frontend.grammar``, one class per construct; this module
combines them, builds the tables and parses.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import ply.yacc as yacc

from xdrgen.frontend.grammar.declarations import DeclarationRules
from xdrgen.frontend.grammar.definitions import DefinitionRules, parse_integer
from xdrgen.frontend.grammar.errors import syntax_error
from xdrgen.frontend.grammar.programs import ProgramRules
from xdrgen.frontend.grammar.types import TypeRules
from xdrgen.frontend.lexer import XdrLexer
from xdrgen.frontend.syntax import DefinitionNode, Specification

__all__ = ["XdrParser", "parse", "parse_integer", "syntax_error"]


class _Grammar(DefinitionRules, TypeRules, DeclarationRules, ProgramRules):
    """The whole grammar: every rule class's ``p_*`` methods, seen by PLY as one."""

    def p_error(self, tok: Any) -> None:
        raise syntax_error(self, tok)


# ------------------------------------------------------------------ table cache

_TABLE_LOCK = threading.Lock()
_TABLES: Any = None  # a template LRParser: its tables are immutable once built


class _NullLogger:
    def debug(self, *args: Any, **kwargs: Any) -> None:
        pass

    warning = info = error = critical = debug


def _tables() -> Any:
    global _TABLES
    with _TABLE_LOCK:
        if _TABLES is None:
            # Building the LALR tables takes ~20 ms, so nothing is cached on disk: the
            # table module name is one that never exists, and writing is off.
            builder = yacc.yacc(
                module=_Grammar(),
                tabmodule="xdrgen_frontend_tables_never_written",
                write_tables=False,
                debug=False,
                errorlog=_NullLogger(),
                optimize=False,
            )
            _TABLES = builder
        return _TABLES


class XdrParser(_Grammar):
    """Parses one preprocessed text into a :class:`Specification`."""

    def __init__(
        self,
        text: str,
        main_file: str,
        other_view_lines: Mapping[int, tuple[str, ...]] | None = None,
    ) -> None:
        self.lexer = XdrLexer(text, main_file, other_view_lines)
        self._spec_starts: dict[int, int] = {}
        self._ends: dict[int, int] = {}
        template = _tables()
        parser = yacc.LRParser.__new__(yacc.LRParser)
        parser.productions = [_bind(prod, self) for prod in template.productions]
        parser.action = template.action
        parser.goto = template.goto
        parser.errorfunc = self.p_error
        parser.set_defaulted_states()
        parser.errorok = True
        self.parser = parser

    def parse(self, file: str) -> Specification:
        definitions: list[DefinitionNode] = self.parser.parse(lexer=self.lexer)
        return Specification(file, self._with_passthrough(definitions))

    def _with_passthrough(
        self, definitions: list[DefinitionNode]
    ) -> list[DefinitionNode]:
        """Each ``%`` line just before the first definition that ends after it: where
        rpcgen, which prints it as it reads it, puts it in its C output."""
        lines = self.lexer.state.passthrough
        if not lines:
            return definitions
        merged: list[DefinitionNode] = []
        k = 0
        for definition in definitions:
            end = self._ends[id(definition)]
            while k < len(lines) and lines[k][0] < end:
                merged.append(lines[k][1])
                k += 1
            merged.append(definition)
        merged.extend(node for _, node in lines[k:])
        return merged


def _bind(prod: Any, instance: object) -> Any:
    """A copy of a PLY production whose action is the method of ``instance``."""
    bound = yacc.MiniProduction(
        prod.str, prod.name, prod.len, prod.func, prod.file, prod.line
    )
    if prod.func:
        bound.callable = getattr(instance, prod.func)
    return bound


def parse(
    text: str,
    main_file: str,
    other_view_lines: Mapping[int, tuple[str, ...]] | None = None,
) -> tuple[Specification, XdrLexer]:
    """``other_view_lines``: PreprocessedSource.other_view_lines, to tag those ``%`` lines."""
    parser = XdrParser(text, main_file, other_view_lines)
    return parser.parse(main_file), parser.lexer
