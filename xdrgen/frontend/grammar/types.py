"""Rules for type specifiers and the bodies of enums, structs and unions."""

from __future__ import annotations

from typing import Any

from xdrgen.frontend.grammar.base import GrammarBase
from xdrgen.frontend.syntax import (
    CaseNode,
    DeclarationNode,
    EnumMemberNode,
    InlineEnum,
    InlineStruct,
    InlineUnion,
    NameSpec,
    PrimitiveSpec,
    UnionBody,
    Value,
)
from xdrgen.model import Primitive
from xdrgen.model import Primitive

_PRIMITIVE_KEYWORDS = {
    "INT": (Primitive.INT, None),
    "HYPER": (Primitive.HYPER, None),
    "FLOAT": (Primitive.FLOAT, None),
    "DOUBLE": (Primitive.DOUBLE, None),
    "QUADRUPLE": (Primitive.QUADRUPLE, None),
    "BOOL": (Primitive.BOOL, None),
    "CHAR": (Primitive.INT, "char"),
    "SHORT": (Primitive.INT, "short"),
    "LONG": (Primitive.INT, "long"),
}
_UNSIGNED_KEYWORDS = {
    "INT": (Primitive.UINT, None),
    "HYPER": (Primitive.UHYPER, None),
    "CHAR": (Primitive.UINT, "unsigned char"),
    "SHORT": (Primitive.UINT, "unsigned short"),
    "LONG": (Primitive.UINT, "unsigned long"),
}


class TypeRules(GrammarBase):
    """Type specifiers (primitive, named, inline) and enum, struct and union bodies."""

    # ---------------------------------------------------------------- enums

    def p_enum_body(self, p: Any) -> None:
        """enum_body : '{' enum_members '}'
        | '{' enum_members ',' '}'"""
        p[0] = p[2]

    def p_enum_members(self, p: Any) -> None:
        """enum_members : enum_member
        | enum_members ',' enum_member"""
        self._list(p, p[len(p) - 1])

    def p_enum_member(self, p: Any) -> None:
        """enum_member : IDENT '=' value
        | IDENT"""
        offset = p.lexpos(1)
        state = self.lexer.state
        raw = state.raw_docs.get(offset)
        p[0] = EnumMemberNode(
            p[1],
            p[3] if len(p) == 4 else None,
            self.pos(p, 1),
            state.docs.get(offset),
            raw[0] if raw else None,
            state.source.position(raw[1]) if raw else None,
        )

    # ---------------------------------------------------------------- structs

    def p_struct_body(self, p: Any) -> None:
        "struct_body : '{' member_list '}'"
        p[0] = (p[2], self.lexer.state.trailing.get(p.lexpos(1)))

    def p_member_list(self, p: Any) -> None:
        """member_list : member
        | member_list member"""
        self._list(p, p[len(p) - 1])

    def p_member(self, p: Any) -> None:
        "member : declaration ';'"
        decl: DeclarationNode = p[1]
        decl.trailing = self.lexer.state.trailing.get(p.lexpos(2))
        p[0] = decl

    # ---------------------------------------------------------------- unions

    def p_union_body(self, p: Any) -> None:
        "union_body : SWITCH '(' declaration ')' '{' case_list default_opt '}'"
        default, default_pos = p[7] if p[7] is not None else (None, None)
        p[0] = UnionBody(p[3], p[6], default, default_pos)

    def p_case_list(self, p: Any) -> None:
        """case_list : case_spec
        | case_list case_spec"""
        self._list(p, p[len(p) - 1])

    def p_case_spec(self, p: Any) -> None:
        "case_spec : case_labels declaration ';'"
        labels: list[Value] = p[1]
        p[0] = CaseNode(labels, p[2], labels[0].pos)

    def p_case_labels(self, p: Any) -> None:
        """case_labels : CASE value ':'
        | case_labels CASE value ':'"""
        self._list(p, p[len(p) - 2])

    def p_default_opt(self, p: Any) -> None:
        """default_opt : DEFAULT ':' declaration ';'
        | empty"""
        p[0] = (p[3], self.pos(p, 1)) if len(p) == 5 else None

    def _spec(self, p: Any, node: Any) -> None:
        self._spec_starts[id(node)] = p.lexpos(1)
        p[0] = node

    # ---------------------------------------------------------------- type specifiers

    def p_type_specifier_primitive(self, p: Any) -> None:
        """type_specifier : INT
        | HYPER
        | FLOAT
        | DOUBLE
        | QUADRUPLE
        | BOOL
        | CHAR
        | SHORT
        | LONG"""
        primitive, spelling = _PRIMITIVE_KEYWORDS[p.slice[1].type]
        self._spec(p, PrimitiveSpec(primitive, self.pos(p, 1), spelling))

    def p_type_specifier_unsigned(self, p: Any) -> None:
        """type_specifier : UNSIGNED INT
        | UNSIGNED HYPER
        | UNSIGNED CHAR
        | UNSIGNED SHORT
        | UNSIGNED LONG"""
        primitive, spelling = _UNSIGNED_KEYWORDS[p.slice[2].type]
        self._spec(p, PrimitiveSpec(primitive, self.pos(p, 1), spelling))

    def p_type_specifier_bare_unsigned(self, p: Any) -> None:
        "type_specifier : UNSIGNED"
        self._spec(p, PrimitiveSpec(Primitive.UINT, self.pos(p, 1), "unsigned"))

    def p_type_specifier_name(self, p: Any) -> None:
        "type_specifier : IDENT"
        self._spec(p, NameSpec(p[1], self.pos(p, 1)))

    def p_type_specifier_keyword_name(self, p: Any) -> None:
        """type_specifier : STRUCT IDENT
        | UNION IDENT
        | ENUM IDENT"""
        self._spec(p, NameSpec(p[2], self.pos(p, 2), keyword=p[1]))

    def p_type_specifier_inline_enum(self, p: Any) -> None:
        "type_specifier : ENUM enum_body"
        self._spec(p, InlineEnum(p[2], self.pos(p, 1)))

    def p_type_specifier_inline_struct(self, p: Any) -> None:
        "type_specifier : STRUCT struct_body"
        self._spec(p, InlineStruct(p[2][0], self.pos(p, 1)))

    def p_type_specifier_inline_union(self, p: Any) -> None:
        "type_specifier : UNION union_body"
        self._spec(p, InlineUnion(p[2], self.pos(p, 1)))
