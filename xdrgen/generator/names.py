"""How .x names become Python names (documented in docs/generated-api.md).

Type and constant names keep their .x spelling (rpcgen's C names).  A name that
is a Python keyword, or a field that would clash with a name the generated code
needs (``self`` in ``__init__``, ``value`` next to a union's discriminant), gets
a trailing underscore.  Everything the generated code adds for itself starts with
an underscore, except ``XDR_TYPES``, ``PROCEDURE_TABLES`` and ``PROCEDURES``.
"""

from __future__ import annotations

import keyword

#: Public names every generated module defines itself.
GENERATED_PUBLIC = frozenset({"XDR_TYPES", "PROCEDURE_TABLES", "PROCEDURES"})


def py_name(name: str) -> str:
    """A module-level name (type, constant, enum member) as Python spells it."""
    if keyword.iskeyword(name) or name in GENERATED_PUBLIC:
        return name + "_"
    return name


def field_name(name: str) -> str:
    """A struct field or union discriminant as an attribute / keyword argument."""
    if keyword.iskeyword(name) or name == "self":
        return name + "_"
    return name


def union_disc_name(name: str) -> str:
    """A union's discriminant attribute; ``value`` is taken by the arm's value."""
    attr = field_name(name)
    return "value_" if attr == "value" else attr


def module_name_for(stem: str) -> str:
    """Default module name for ``stem.x``: the stem, made a valid identifier."""
    text = "".join(c if c.isalnum() or c == "_" else "_" for c in stem)
    if not text or text[0].isdigit():
        text = "_" + text
    return text + "_" if keyword.iskeyword(text) else text
