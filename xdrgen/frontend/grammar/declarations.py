"""Rules for declarations: ``type name``, arrays, optional data, opaque, string, void."""

from __future__ import annotations

from typing import Any

from xdrgen.frontend.grammar.base import GrammarBase
from xdrgen.frontend.syntax import (
    DeclarationNode,
    TypeSpec,
    Value,
)
from xdrgen.model import DeclKind
from xdrgen.model import DeclKind


class DeclarationRules(GrammarBase):
    """Declarations, as members, arms, discriminants and typedef bodies."""

    def _decl(
        self,
        p: Any,
        type_: TypeSpec | None,
        kind: DeclKind,
        name_index: int,
        size: Value | None,
    ) -> DeclarationNode:
        start = self._start(p, 1)
        return DeclarationNode(
            name=p[name_index],
            kind=kind,
            type=type_,
            size=size,
            pos=self.lexer.state.source.position(start),
            name_pos=self.pos(p, name_index),
            doc=self.lexer.state.docs.get(start),
        )

    def p_declaration_plain(self, p: Any) -> None:
        "declaration : type_specifier IDENT"
        p[0] = self._decl(p, p[1], DeclKind.PLAIN, 2, None)

    def p_declaration_fixed_array(self, p: Any) -> None:
        "declaration : type_specifier IDENT '[' value ']'"
        p[0] = self._decl(p, p[1], DeclKind.FIXED_ARRAY, 2, p[4])

    def p_declaration_var_array(self, p: Any) -> None:
        "declaration : type_specifier IDENT '<' value_opt '>'"
        p[0] = self._decl(p, p[1], DeclKind.VAR_ARRAY, 2, p[4])

    def p_declaration_optional(self, p: Any) -> None:
        "declaration : type_specifier '*' IDENT"
        p[0] = self._decl(p, p[1], DeclKind.OPTIONAL, 3, None)

    def p_declaration_fixed_opaque(self, p: Any) -> None:
        "declaration : OPAQUE IDENT '[' value ']'"
        p[0] = self._decl(p, None, DeclKind.FIXED_OPAQUE, 2, p[4])

    def p_declaration_var_opaque(self, p: Any) -> None:
        "declaration : OPAQUE IDENT '<' value_opt '>'"
        p[0] = self._decl(p, None, DeclKind.VAR_OPAQUE, 2, p[4])

    def p_declaration_string(self, p: Any) -> None:
        "declaration : STRING IDENT '<' value_opt '>'"
        p[0] = self._decl(p, None, DeclKind.STRING, 2, p[4])

    def p_declaration_void(self, p: Any) -> None:
        "declaration : VOID"
        pos = self.pos(p, 1)
        p[0] = DeclarationNode(None, DeclKind.VOID, None, None, pos, pos)

    def p_declaration_bad_void(self, p: Any) -> None:
        """declaration : VOID IDENT
        | VOID '*' IDENT"""
        name = p[len(p) - 1]
        raise self.error(
            f"'void' cannot declare '{name}': void is only allowed alone, as a union arm "
            "or as a procedure argument or result",
            self.pos(p, 1),
        )

    def p_declaration_bad_string(self, p: Any) -> None:
        """declaration : STRING IDENT '[' value ']'
        | STRING IDENT
        | OPAQUE IDENT
        | STRING '*' IDENT
        | OPAQUE '*' IDENT"""
        what = p[1]
        if p[2] == "*":
            message = (
                f"'{what}' cannot be optional data; declare '{what} {p[3]}<>' instead"
            )
        elif len(p) == 3:
            hint = (
                f"{what} {p[2]}<>"
                if what == "string"
                else f"{what} {p[2]}[N]' or '{what} {p[2]}<>"
            )
            message = f"'{what}' needs a length: declare '{hint}'"
        else:
            message = f"'string' cannot be a fixed-length array; declare 'string {p[2]}<{p[4].text}>' instead"
        raise self.error(message, self.pos(p, 1))
