"""Rules for the top level: the specification, ``const``/``typedef``/``enum``/``struct``/
``union``/``program`` definitions, and values (integer literals and names)."""

from __future__ import annotations

from typing import Any

from xdrgen.diagnostics import Diagnostic, Position, XdrgenError
from xdrgen.frontend.grammar.base import GrammarBase
from xdrgen.frontend.syntax import (
    ConstNode,
    DefinitionNode,
    EnumNode,
    ProgramNode,
    StructNode,
    TypedefNode,
    UnionNode,
    Value,
)


class DefinitionRules(GrammarBase):
    """Top-level definitions and values."""

    def p_specification(self, p: Any) -> None:
        "specification : definition_list"
        p[0] = p[1]

    def p_definition_list(self, p: Any) -> None:
        """definition_list : definition_list definition
        | empty"""
        if len(p) == 2:
            p[0] = []
        else:
            p[1].append(p[2])
            p[0] = p[1]

    def p_empty(self, p: Any) -> None:
        "empty :"

    def _definition(self, p: Any, node: DefinitionNode) -> None:
        self._ends[id(node)] = p.lexpos(len(p) - 1)
        p[0] = node

    def p_definition_const(self, p: Any) -> None:
        "definition : CONST IDENT '=' value ';'"
        self._definition(p, ConstNode(p[2], p[4], self.pos(p, 2), self.doc(p, 1)))

    def p_definition_string_const(self, p: Any) -> None:
        "definition : CONST IDENT '=' STRING_LITERAL ';'"
        literal = p[4]
        value = Value(literal, self.pos(p, 4), string=literal[1:-1])
        self._definition(p, ConstNode(p[2], value, self.pos(p, 2), self.doc(p, 1)))

    def p_definition_typedef(self, p: Any) -> None:
        "definition : TYPEDEF declaration ';'"
        self._definition(p, TypedefNode(p[2], self.pos(p, 1), self.doc(p, 1)))

    def p_definition_enum(self, p: Any) -> None:
        "definition : ENUM IDENT enum_body ';'"
        self._definition(p, EnumNode(p[2], p[3], self.pos(p, 2), self.doc(p, 1)))

    def p_definition_struct(self, p: Any) -> None:
        "definition : STRUCT IDENT struct_body ';'"
        fields, trailing = p[3]
        node = StructNode(p[2], fields, self.pos(p, 2), self.doc(p, 1), trailing)
        self._definition(p, node)

    def p_definition_union(self, p: Any) -> None:
        "definition : UNION IDENT union_body ';'"
        self._definition(p, UnionNode(p[2], p[3], self.pos(p, 2), self.doc(p, 1)))

    def p_definition_program(self, p: Any) -> None:
        "definition : PROGRAM IDENT '{' version_list '}' '=' value ';'"
        self._definition(
            p, ProgramNode(p[2], p[7], p[4], self.pos(p, 2), self.doc(p, 1))
        )

    # ---------------------------------------------------------------- values

    def p_value_integer(self, p: Any) -> None:
        "value : INTEGER"
        text = p[1]
        pos = self.pos(p, 1)
        p[0] = Value(text, pos, number=parse_integer(text, pos))

    def p_value_ident(self, p: Any) -> None:
        "value : IDENT"
        p[0] = Value(p[1], self.pos(p, 1), name=p[1])

    def p_value_opt(self, p: Any) -> None:
        """value_opt : value
        | empty"""
        p[0] = p[1]


def parse_integer(text: str, pos: Position) -> int:
    negative = text.startswith("-")
    digits = text[1:] if negative else text
    if digits[:2] in ("0x", "0X"):
        value = int(digits[2:], 16)
    elif len(digits) > 1 and digits.startswith("0"):
        if any(c in "89" for c in digits):
            raise XdrgenError(
                Diagnostic("error", f"invalid octal constant '{text}'", pos)
            )
        value = int(digits, 8)
    else:
        value = int(digits, 10)
    return -value if negative else value
