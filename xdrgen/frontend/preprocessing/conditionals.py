"""Conditional groups: ``#if``/``#ifdef``/``#ifndef``/``#elif``/``#else``/``#endif``,
in the view being read and in rpcgen's other views (for their ``%`` lines)."""

from __future__ import annotations

from dataclasses import dataclass

from xdrgen.diagnostics import Position, XdrgenError, error
from xdrgen.frontend.preprocessing.cexpr import (
    evaluate_c_expression,
    identifier_is_zero,
)
from xdrgen.frontend.preprocessing.context import Context
from xdrgen.frontend.preprocessing.ctokens import CExprError, tokenize_c
from xdrgen.frontend.preprocessing.macros import MacroTable, expand_macros

CONDITIONAL_DIRECTIVES = frozenset({"if", "ifdef", "ifndef", "elif", "else", "endif"})


@dataclass
class Group:
    """One ``#if`` ... ``#endif`` group being read."""

    directive: str
    pos: Position
    parent_active: bool
    active: bool
    taken: bool
    seen_else: bool = False
    #: The same three facts for the other rpcgen views (sets of view symbols).
    parent_others: frozenset[str] = frozenset()
    others: frozenset[str] = frozenset()
    others_taken: frozenset[str] = frozenset()


def conditional_directive(
    context: Context,
    name: str,
    body: str,
    body_col: int,
    pos: Position,
    groups: list[Group],
    active: bool,
) -> None:
    """Open, switch or close a conditional group (``name`` in CONDITIONAL_DIRECTIVES)."""
    if name in ("if", "ifdef", "ifndef"):
        parent_others = groups[-1].others if groups else context.other_views
        others = _view_conditions(context, parent_others, name, body, body_col, pos)
        if not active:
            groups.append(
                Group(
                    name, pos, False, False, True, False, parent_others, others, others
                )
            )
            return
        flag = _test(context.macros, name, body, body_col, pos)
        groups.append(
            Group(name, pos, True, flag, flag, False, parent_others, others, others)
        )
        return
    # elif, else, endif
    if not groups:
        raise error(f"#{name} without #if", pos)
    group = groups[-1]
    if name == "endif":
        groups.pop()
        return
    if group.seen_else:
        raise error(
            f"#{name} after #else",
            pos,
            f"the #{group.directive} group began at {group.pos}",
        )
    if name == "else":
        group.seen_else = True
        group.active = group.parent_active and not group.taken
        group.taken = True
        group.others = group.parent_others - group.others_taken
        group.others_taken = group.parent_others
        return
    if group.parent_active and not group.taken:
        group.active = _condition(context.macros, body, body_col, pos)
        group.taken = group.active
    else:
        group.active = False
    group.others = _view_conditions(
        context, group.parent_others - group.others_taken, "if", body, body_col, pos
    )
    group.others_taken |= group.others


def ifdef_name(body: str, body_col: int, directive: str, pos: Position) -> str:
    tokens = tokenize_c(body, body_col)
    if not tokens or tokens[0].kind != "id":
        col = tokens[0].col if tokens else body_col
        raise error(
            f"#{directive} expects a macro name", Position(pos.file, pos.line, col)
        )
    return tokens[0].text


def _test(
    macros: MacroTable, directive: str, body: str, body_col: int, pos: Position
) -> bool:
    """Whether an ``#if``/``#elif`` (``directive`` "if"), ``#ifdef`` or ``#ifndef`` holds."""
    if directive == "if":
        return _condition(macros, body, body_col, pos)
    flag = ifdef_name(body, body_col, directive, pos) in macros
    return flag if directive == "ifdef" else not flag


def _view_conditions(
    context: Context,
    views: frozenset[str],
    directive: str,
    body: str,
    body_col: int,
    pos: Position,
) -> frozenset[str]:
    """The views among ``views`` in which the condition holds.  These views are read
    only for their ``%`` lines, so a condition they cannot evaluate just fails."""
    held = []
    for view in views:
        try:
            if _test(context.view_macros(view), directive, body, body_col, pos):
                held.append(view)
        except XdrgenError:
            pass
    return frozenset(held)


def _condition(macros: MacroTable, body: str, body_col: int, pos: Position) -> bool:
    tokens = tokenize_c(body, body_col)
    end_col = body_col + len(body.rstrip())
    try:
        expanded = expand_macros(tokens, macros, handle_defined=True)
        value = evaluate_c_expression(
            expanded, identifier_is_zero, pp_mode=True, end_col=end_col
        )
        return value.value != 0
    except CExprError as exc:
        raise error(
            f"in #if expression: {exc.message}", Position(pos.file, pos.line, exc.col)
        ) from None
