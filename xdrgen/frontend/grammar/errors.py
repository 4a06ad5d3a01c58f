"""Syntax errors that say what was expected, in which construct, and where."""

from __future__ import annotations

from typing import Any

from xdrgen.diagnostics import Diagnostic, XdrgenError
from xdrgen.frontend.grammar.base import GrammarBase
from xdrgen.frontend.lexer import HUMAN_NAMES
from xdrgen.frontend.syntax import DeclarationNode


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
        if (
            t == "{"
            and i > 0
            and (
                types[i - 1] == "STRUCT"
                or (i > 1 and types[i - 2] == "STRUCT" and types[i - 1] == "IDENT")
            )
        ):
            consider(i, "struct member")
        elif (
            t == "{"
            and i > 0
            and (types[i - 1] == "ENUM" or (i > 1 and types[i - 2] == "ENUM"))
        ):
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
        elif t == "procedure_list" or (
            t == "{" and i > 1 and types[i - 2] == "VERSION"
        ):
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
            keyword = next(
                (
                    w.value
                    for w in words
                    if w.type in ("STRUCT", "UNION", "ENUM", "PROGRAM", "VERSION")
                ),
                None,
            )
            name = next((w.value for w in words if w.type == "IDENT"), None)
            if keyword is None and i >= 5 and symbols[i - 1].type == ")":
                keyword = "union"
                name = next(
                    (w.value for w in symbols[max(0, i - 6) : i] if w.type == "IDENT"),
                    None,
                )
            owner = (
                f"{keyword} '{name}'" if keyword and name else (keyword or "a block")
            )
            return symbols[i], owner
    return None


def syntax_error(grammar: GrammarBase, tok: Any) -> XdrgenError:
    """The error for an unexpected token (``tok`` None at the end of the input)."""
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
        source.end_position(prev.lexpos, len(str(prev.value)))
        if prev is not None
        else None
    )
    pos = (
        source.position(tok.lexpos)
        if tok is not None
        else source.position(len(lexer.text.rstrip()))
    )

    top = symbols[1:] if types[:1] == ["definition_list"] else symbols
    top_types = types[len(types) - len(top) :]
    if (
        len(top_types) >= 3
        and top_types[0] in ("STRUCT", "UNION", "ENUM")
        and top_types[1] == "IDENT"
        and (
            top_types[-1] == "}"
            or (len(top_types) == 3 and top_types[2].endswith("_body"))
        )
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
    if (
        terminator in expected
        and subject is not None
        and context is not None
        and (tok is None or tok.type not in ("[", "<"))
    ):
        role = context
        message = f"expected '{terminator}' after {role} '{subject}', found {found}"
        if terminator == "}":
            message = (
                f"expected ',' or '}}' after enum member '{subject}', found {found}"
            )
        return XdrgenError(Diagnostic("error", message, after_prev or pos))

    names = sorted(HUMAN_NAMES.get(e, e) for e in expected)
    if len(names) == 1:
        wanted: str | None = names[0]
    elif names and len(names) <= 4:
        wanted = ", ".join(names[:-1]) + " or " + names[-1]
    else:
        wanted = None
    where = (
        f" in {context} '{subject}'"
        if context and subject
        else (f" in {context}" if context else "")
    )
    if wanted is not None:
        message = f"expected {wanted}{where}, found {found}"
        if tok is None and after_prev is not None:
            pos = after_prev
    else:
        message = f"unexpected {found}{where}"
    return XdrgenError(Diagnostic("error", message, pos))
