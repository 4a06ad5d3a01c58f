"""RFC 4506 + RFC 5531 grammar (with rpcgen's extensions), parsed with PLY yacc.

The LALR tables are built once per process from the grammar and shared (they are
immutable); every parse gets its own :class:`XdrParser` instance holding all of
its state, so two parses never interfere.  PLY is told never to write
``parsetab.py`` or ``parser.out``.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import ply.yacc as yacc

from xdrgen.diagnostics import Diagnostic, Position, XdrgenError
from xdrgen.frontend.lexer import HUMAN_NAMES, TOKENS, XdrLexer
from xdrgen.frontend.syntax import (
    CaseNode,
    ConstNode,
    DeclarationNode,
    DefinitionNode,
    EnumMemberNode,
    EnumNode,
    InlineEnum,
    InlineStruct,
    InlineUnion,
    NameSpec,
    PrimitiveSpec,
    ProcedureNode,
    ProgramNode,
    Specification,
    StructNode,
    TypedefNode,
    TypeSpec,
    UnionBody,
    UnionNode,
    Value,
    VersionNode,
)
from xdrgen.model import DeclKind, Primitive

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


class _Grammar:
    """Grammar rules.  ``p_*`` docstrings are the productions (PLY's convention)."""

    tokens = tuple(t for t in TOKENS if t != "PASSTHROUGH")  # '%' lines stay in the lexer
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

    # ---------------------------------------------------------------- definitions

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
        self._definition(p, ProgramNode(p[2], p[7], p[4], self.pos(p, 2), self.doc(p, 1)))

    # ---------------------------------------------------------------- values

    def p_value_integer(self, p: Any) -> None:
        "value : INTEGER"
        text = p[1]
        pos = self.pos(p, 1)
        p[0] = Value(text, pos, number=parse_integer(text, pos))

    def p_value_ident(self, p: Any) -> None:
        "value : IDENT"
        p[0] = Value(p[1], self.pos(p, 1), name=p[1])

    # ---------------------------------------------------------------- enums

    def p_enum_body(self, p: Any) -> None:
        """enum_body : '{' enum_members '}'
        | '{' enum_members ',' '}'"""
        p[0] = p[2]

    def p_enum_members(self, p: Any) -> None:
        """enum_members : enum_member
        | enum_members ',' enum_member"""
        if len(p) == 2:
            p[0] = [p[1]]
        else:
            p[1].append(p[3])
            p[0] = p[1]

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
        if len(p) == 2:
            p[0] = [p[1]]
        else:
            p[1].append(p[2])
            p[0] = p[1]

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
        if len(p) == 2:
            p[0] = [p[1]]
        else:
            p[1].append(p[2])
            p[0] = p[1]

    def p_case_spec(self, p: Any) -> None:
        "case_spec : case_labels declaration ';'"
        labels: list[Value] = p[1]
        p[0] = CaseNode(labels, p[2], labels[0].pos)

    def p_case_labels(self, p: Any) -> None:
        """case_labels : CASE value ':'
        | case_labels CASE value ':'"""
        if len(p) == 4:
            p[0] = [p[2]]
        else:
            p[1].append(p[3])
            p[0] = p[1]

    def p_default_opt(self, p: Any) -> None:
        """default_opt : DEFAULT ':' declaration ';'
        | empty"""
        p[0] = (p[3], self.pos(p, 1)) if len(p) == 5 else None

    # ---------------------------------------------------------------- declarations

    def _start(self, p: Any, n: int) -> int:
        """Offset where symbol ``n`` starts (PLY only tracks terminals' offsets)."""
        if p.slice[n].type == "type_specifier":
            return self._spec_starts[id(p[n])]
        offset: int = p.lexpos(n)
        return offset

    def _spec(self, p: Any, node: Any) -> None:
        self._spec_starts[id(node)] = p.lexpos(1)
        p[0] = node

    def _decl(
        self, p: Any, type_: TypeSpec | None, kind: DeclKind, name_index: int, size: Value | None
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
            message = f"'{what}' cannot be optional data; declare '{what} {p[3]}<>' instead"
        elif len(p) == 3:
            hint = f"{what} {p[2]}<>" if what == "string" else f"{what} {p[2]}[N]' or '{what} {p[2]}<>"
            message = f"'{what}' needs a length: declare '{hint}'"
        else:
            message = f"'string' cannot be a fixed-length array; declare 'string {p[2]}<{p[4].text}>' instead"
        raise self.error(message, self.pos(p, 1))

    def p_value_opt(self, p: Any) -> None:
        """value_opt : value
        | empty"""
        p[0] = p[1]

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

    # ---------------------------------------------------------------- programs

    def p_version_list(self, p: Any) -> None:
        """version_list : version_def
        | version_list version_def"""
        if len(p) == 2:
            p[0] = [p[1]]
        else:
            p[1].append(p[2])
            p[0] = p[1]

    def p_version_def(self, p: Any) -> None:
        "version_def : VERSION IDENT '{' procedure_list '}' '=' value ';'"
        p[0] = VersionNode(p[2], p[7], p[4], self.pos(p, 2), self.doc(p, 1))

    def p_procedure_list(self, p: Any) -> None:
        """procedure_list : procedure_def
        | procedure_list procedure_def"""
        if len(p) == 2:
            p[0] = [p[1]]
        else:
            p[1].append(p[2])
            p[0] = p[1]

    def p_procedure_def(self, p: Any) -> None:
        "procedure_def : proc_type IDENT '(' proc_args ')' '=' value ';'"
        result, start = p[1]
        doc = self.lexer.state.docs.get(start)
        p[0] = ProcedureNode(p[2], p[7], p[4], result, self.pos(p, 2), doc)

    def _param(
        self, p: Any, kind: DeclKind, type_: TypeSpec | None, name: str | None, size: Value | None
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
        if len(p) == 2:
            p[0] = [p[1]]
        else:
            p[1].append(p[3])
            p[0] = p[1]

    def p_proc_arg(self, p: Any) -> None:
        """proc_arg : type_specifier arg_name"""
        p[0] = self._param(p, DeclKind.PLAIN, p[1], p[2], None)

    def p_proc_arg_optional(self, p: Any) -> None:
        """proc_arg : type_specifier '*' arg_name"""
        p[0] = self._param(p, DeclKind.OPTIONAL, p[1], p[3], None)

    def p_proc_arg_string(self, p: Any) -> None:
        """proc_arg : STRING arg_name
        | STRING arg_name '<' value_opt '>'"""
        p[0] = self._param(p, DeclKind.STRING, None, p[2], p[4] if len(p) == 6 else None)

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

    # ---------------------------------------------------------------- errors

    def error(self, message: str, pos: Position) -> XdrgenError:
        return XdrgenError(Diagnostic("error", message, pos))

    def p_error(self, tok: Any) -> None:
        raise syntax_error(self, tok)


def parse_integer(text: str, pos: Position) -> int:
    negative = text.startswith("-")
    digits = text[1:] if negative else text
    if digits[:2] in ("0x", "0X"):
        value = int(digits[2:], 16)
    elif len(digits) > 1 and digits.startswith("0"):
        if any(c in "89" for c in digits):
            raise XdrgenError(Diagnostic("error", f"invalid octal constant '{text}'", pos))
        value = int(digits, 8)
    else:
        value = int(digits, 10)
    return -value if negative else value


# ------------------------------------------------------------------ error messages


def _expected(parser: Any, state: int) -> list[str]:
    actions = parser.action.get(state, {})
    return sorted(k for k in actions if k != "error")


def _innermost(types: list[str]) -> str | None:
    """The construct the parser is inside: struct, arm, default, discriminant, typedef..."""
    best: tuple[int, str] | None = None

    def consider(index: int, kind: str) -> None:
        nonlocal best
        if index >= 0 and (best is None or index > best[0]):
            best = (index, kind)

    for i, t in enumerate(types):
        if t == "{" and i > 0 and (
            types[i - 1] == "STRUCT" or (i > 1 and types[i - 2] == "STRUCT" and types[i - 1] == "IDENT")
        ):
            consider(i, "struct member")
        elif t == "{" and i > 0 and (types[i - 1] == "ENUM" or (i > 1 and types[i - 2] == "ENUM")):
            consider(i, "enum member")
        elif t == "case_labels":
            consider(i, "union arm")
        elif t == "DEFAULT":
            consider(i, "union default arm")
        elif t == "SWITCH":
            consider(i, "union discriminant")
        elif t == "TYPEDEF":
            consider(i, "typedef")
        elif t == "CONST":
            consider(i, "constant")
        elif t == "procedure_list" or (t == "{" and i > 1 and types[i - 2] == "VERSION"):
            consider(i, "procedure")
        elif t == "version_list" or (t == "{" and i > 1 and types[i - 2] == "PROGRAM"):
            consider(i, "version")
        elif t == ")" and best is not None and best[1] == "union discriminant":
            best = None
    return best[1] if best else None


def _subject(symbols: list[Any]) -> str | None:
    """Name of the declaration or definition just read, if the stack ends with one."""
    if not symbols:
        return None
    last = symbols[-1]
    if last.type == "declaration":
        decl: DeclarationNode = last.value
        return decl.name or "void"
    if last.type == "enum_member":
        return str(last.value.name)
    for sym in reversed(symbols[-6:]):
        if sym.type == "IDENT":
            return str(sym.value)
        if sym.type in (";", "{", "}", "case_labels", "member_list"):
            return None
    return None


def _closes_definition(top: list[Any]) -> bool:
    """Whether the '}' ending ``top`` closes the first '{' of the top-level definition."""
    opener = _unclosed(top[:-1])
    first = next((sym for sym in top if sym.type == "{"), None)
    return opener is not None and opener[0] is first


def _unclosed(symbols: list[Any]) -> tuple[Any, str] | None:
    """The innermost '{' still open, and a description of what it belongs to."""
    depth = 0
    for i in range(len(symbols) - 1, -1, -1):
        t = symbols[i].type
        if t == "}":
            depth += 1
        elif t == "{":
            if depth:
                depth -= 1
                continue
            words = [s for s in symbols[max(0, i - 2) : i]]
            keyword = next((w.value for w in words if w.type in ("STRUCT", "UNION", "ENUM", "PROGRAM", "VERSION")), None)
            name = next((w.value for w in words if w.type == "IDENT"), None)
            if keyword is None and i >= 5 and symbols[i - 1].type == ")":
                keyword = "union"
                name = next((w.value for w in symbols[max(0, i - 6) : i] if w.type == "IDENT"), None)
            owner = f"{keyword} '{name}'" if keyword and name else (keyword or "a block")
            return symbols[i], owner
    return None


def syntax_error(grammar: _Grammar, tok: Any) -> XdrgenError:
    lexer = grammar.lexer
    parser = grammar.parser
    source = lexer.state.source
    expected = set(_expected(parser, parser.statestack[-1]))
    symbols = parser.symstack[1:]
    types = [s.type for s in symbols]
    context = _innermost(types)
    subject = _subject(symbols)
    # LALR merges states: drop terminators that cannot apply in this construct.
    if context == "union discriminant":
        expected.discard(";")
    elif context is not None:
        expected.discard(")")

    if tok is None:
        found = "end of file"
    elif tok.type == "IDENT":
        found = f"identifier '{tok.value}'"
    elif tok.type == "INTEGER":
        found = f"integer constant {tok.value}"
    elif tok.type in HUMAN_NAMES and tok.type.isupper():
        found = f"keyword '{tok.value}'"
    else:
        found = HUMAN_NAMES.get(tok.type, repr(tok.value))

    prev = lexer._prev if tok is None else lexer._before
    after_prev = (
        source.end_position(prev.lexpos, len(str(prev.value))) if prev is not None else None
    )
    pos = source.position(tok.lexpos) if tok is not None else source.position(len(lexer.text.rstrip()))

    top = symbols[1:] if types[:1] == ["definition_list"] else symbols
    top_types = types[len(types) - len(top) :]
    if (
        len(top_types) >= 3
        and top_types[0] in ("STRUCT", "UNION", "ENUM")
        and top_types[1] == "IDENT"
        and (top_types[-1] == "}" or (len(top_types) == 3 and top_types[2].endswith("_body")))
        and (len(top_types) == 3 or _closes_definition(top))
    ):
        kind = top_types[0].lower()
        message = f"expected ';' after the definition of {kind} '{top[1].value}', found {found}"
        return XdrgenError(Diagnostic("error", message, after_prev or pos))
    if tok is None:
        opener = _unclosed(symbols)
        if opener is not None:
            brace, owner = opener
            return XdrgenError(
                Diagnostic(
                    "error",
                    f"unexpected end of file: the '{{' of {owner} opened at "
                    f"{source.position(brace.lexpos)} is not closed",
                    after_prev or pos,
                )
            )

    terminator = {"union discriminant": ")", "enum member": "}"}.get(context or "", ";")
    if terminator in expected and subject is not None and context is not None and (
        tok is None or tok.type not in ("[", "<")
    ):
        role = context
        message = f"expected '{terminator}' after {role} '{subject}', found {found}"
        if terminator == "}" :
            message = f"expected ',' or '}}' after enum member '{subject}', found {found}"
        return XdrgenError(Diagnostic("error", message, after_prev or pos))

    names = sorted(HUMAN_NAMES.get(e, e) for e in expected)
    if len(names) == 1:
        wanted: str | None = names[0]
    elif names and len(names) <= 4:
        wanted = ", ".join(names[:-1]) + " or " + names[-1]
    else:
        wanted = None
    where = f" in {context} '{subject}'" if context and subject else (f" in {context}" if context else "")
    if wanted is not None:
        message = f"expected {wanted}{where}, found {found}"
        if tok is None and after_prev is not None:
            pos = after_prev
    else:
        message = f"unexpected {found}{where}"
    return XdrgenError(Diagnostic("error", message, pos))


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

    def _with_passthrough(self, definitions: list[DefinitionNode]) -> list[DefinitionNode]:
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
    bound = yacc.MiniProduction(prod.str, prod.name, prod.len, prod.func, prod.file, prod.line)
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
