"""Rules for programs, versions and procedures (RFC 5531, with rpcgen -N arguments)."""

from __future__ import annotations

from typing import Any

from xdrgen.frontend.grammar.base import GrammarBase
from xdrgen.frontend.syntax import (
    DeclarationNode,
    ProcedureNode,
    TypeSpec,
    Value,
    VersionNode,
)
from xdrgen.model import DeclKind
from xdrgen.model import DeclKind


class ProgramRules(GrammarBase):
    """Program, version and procedure definitions."""

    # ---------------------------------------------------------------- programs

    def p_version_list(self, p: Any) -> None:
        """version_list : version_def
        | version_list version_def"""
        self._list(p, p[len(p) - 1])

    def p_version_def(self, p: Any) -> None:
        "version_def : VERSION IDENT '{' procedure_list '}' '=' value ';'"
        p[0] = VersionNode(p[2], p[7], p[4], self.pos(p, 2), self.doc(p, 1))

    def p_procedure_list(self, p: Any) -> None:
        """procedure_list : procedure_def
        | procedure_list procedure_def"""
        self._list(p, p[len(p) - 1])

    def p_procedure_def(self, p: Any) -> None:
        "procedure_def : proc_type IDENT '(' proc_args ')' '=' value ';'"
        result, start = p[1]
        doc = self.lexer.state.docs.get(start)
        p[0] = ProcedureNode(p[2], p[7], p[4], result, self.pos(p, 2), doc)

    def _param(
        self,
        p: Any,
        kind: DeclKind,
        type_: TypeSpec | None,
        name: str | None,
        size: Value | None,
    ) -> DeclarationNode:
        """A procedure argument or result: what rpcgen's get_prog_declaration reads."""
        pos = self.lexer.state.source.position(self._start(p, 1))
        return DeclarationNode(name, kind, type_, size, pos, pos)

    def p_proc_type(self, p: Any) -> None:
        """proc_type : type_specifier
        | STRING
        | VOID"""
        if p[1] == "void":
            p[0] = (None, p.lexpos(1))
        elif p[1] == "string":  # rpcgen: a string result is string<> (xdr_wrapstring)
            p[0] = (self._param(p, DeclKind.STRING, None, None, None), p.lexpos(1))
        else:
            p[0] = (self._param(p, DeclKind.PLAIN, p[1], None, None), self._start(p, 1))

    def p_proc_type_opaque(self, p: Any) -> None:
        "proc_type : OPAQUE"
        raise self.error(
            "a procedure result cannot be opaque data: declare a typedef and use its name "
            "(rpcgen: 'illegal result type')",
            self.pos(p, 1),
        )

    def p_proc_args(self, p: Any) -> None:
        """proc_args : VOID
        | arg_list"""
        p[0] = [] if p[1] == "void" else p[1]

    def p_arg_list(self, p: Any) -> None:
        """arg_list : proc_arg
        | arg_list ',' proc_arg"""
        self._list(p, p[len(p) - 1])

    def p_proc_arg(self, p: Any) -> None:
        """proc_arg : type_specifier arg_name"""
        p[0] = self._param(p, DeclKind.PLAIN, p[1], p[2], None)

    def p_proc_arg_optional(self, p: Any) -> None:
        """proc_arg : type_specifier '*' arg_name"""
        p[0] = self._param(p, DeclKind.OPTIONAL, p[1], p[3], None)

    def p_proc_arg_string(self, p: Any) -> None:
        """proc_arg : STRING arg_name
        | STRING arg_name '<' value_opt '>'"""
        p[0] = self._param(
            p, DeclKind.STRING, None, p[2], p[4] if len(p) == 6 else None
        )

    def p_proc_arg_bad(self, p: Any) -> None:
        """proc_arg : type_specifier arg_name '<' value_opt '>'
        | type_specifier arg_name '[' value ']'
        | OPAQUE arg_name '<' value_opt '>'
        | OPAQUE arg_name '[' value ']'
        | OPAQUE arg_name"""
        what = "opaque data" if p[1] == "opaque" else "an array"
        raise self.error(
            f"a procedure argument cannot be {what}: declare a typedef and use its name "
            "(rpcgen: 'arrays cannot be declared as arguments to procedures')",
            self.lexer.state.source.position(self._start(p, 1)),
        )

    def p_arg_name(self, p: Any) -> None:
        """arg_name : IDENT
        | empty"""
        p[0] = p[1]
