"""Object-like macro expansion over C tokens (with cpp's ``defined``)."""

from __future__ import annotations

from collections.abc import Sequence

from xdrgen.frontend.preprocessing.ctokens import CExprError, Token
from xdrgen.frontend.preprocessing.limits import MAX_EXPANSION_TOKENS

#: Object-like macros: name -> body tokens; None marks a function-like macro (only
#: ``defined`` can see it).
MacroTable = dict[str, list[Token] | None]


def expand_macros(
    tokens: Sequence[Token], macros: MacroTable, *, handle_defined: bool
) -> list[Token]:
    """Expand object-like macros (rescanning, never re-entering a macro being expanded).

    Expanded tokens take the column of the macro name they replace. With
    ``handle_defined``, ``defined NAME`` / ``defined(NAME)`` become 1 or 0 first.
    """
    budget = [MAX_EXPANSION_TOKENS]
    return _expand(tokens, macros, handle_defined, frozenset(), budget)


def _expand(
    tokens: Sequence[Token],
    macros: MacroTable,
    handle_defined: bool,
    active: frozenset[str],
    budget: list[int],
) -> list[Token]:
    out: list[Token] = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        index += 1
        if token.kind != "id":
            out.append(token)
            continue
        if handle_defined and token.text == "defined":
            name_index = index
            parenthesized = name_index < len(tokens) and tokens[name_index].text == "("
            if parenthesized:
                name_index += 1
            if name_index >= len(tokens) or tokens[name_index].kind != "id":
                raise CExprError(
                    "'defined' must be followed by a macro name", token.col
                )
            index = name_index + 1
            if parenthesized:
                if index >= len(tokens) or tokens[index].text != ")":
                    raise CExprError(
                        "missing ')' after 'defined(NAME'", tokens[name_index].col
                    )
                index += 1
            value = "1" if tokens[name_index].text in macros else "0"
            out.append(Token("num", value, token.col))
            continue
        body = macros.get(token.text)
        if body is None or token.text in active:
            out.append(token)
            continue
        budget[0] -= len(body)
        if budget[0] < 0:
            raise CExprError(
                f"expansion of macro '{token.text}' is too large", token.col
            )
        placed = [Token(t.kind, t.text, token.col, t.space) for t in body]
        if placed:
            placed[0] = placed[0]._replace(space=token.space)
        out.extend(
            _expand(placed, macros, handle_defined, active | {token.text}, budget)
        )
    return out
