"""The syntax tree: what the parser read, names still unresolved, sizes still as written.

Every node keeps its source position.  ``xdrgen.frontend.resolve`` turns a
:class:`Specification` into the resolved :class:`xdrgen.model.XdrModule`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

from xdrgen.diagnostics import Position
from xdrgen.model import DeclKind, Primitive


@dataclass(slots=True)
class Value:
    """A constant in a size, enum value, case label or number: a literal or a name."""

    text: str
    pos: Position
    number: int | None = None  # set for literals
    name: str | None = None  # set for identifiers
    string: str | None = None  # set for string literals (only allowed in ``const``)


@dataclass(slots=True)
class PrimitiveSpec:
    primitive: Primitive
    pos: Position
    #: rpcgen spelling when it differs from RFC 4506 (``unsigned char``, ``long``).
    spelling: str | None = None


@dataclass(slots=True)
class NameSpec:
    """A type named by identifier; ``keyword`` is set for ``struct X``, ``union X``, ``enum X``."""

    name: str
    pos: Position
    keyword: str | None = None


@dataclass(slots=True)
class InlineEnum:
    members: list[EnumMemberNode]
    pos: Position


@dataclass(slots=True)
class InlineStruct:
    fields: list[DeclarationNode]
    pos: Position


@dataclass(slots=True)
class InlineUnion:
    body: UnionBody
    pos: Position


TypeSpec = Union[PrimitiveSpec, NameSpec, InlineEnum, InlineStruct, InlineUnion]


@dataclass(slots=True)
class DeclarationNode:
    name: str | None
    kind: DeclKind
    type: TypeSpec | None
    size: Value | None
    pos: Position  # where the declaration starts
    name_pos: Position
    doc: str | None = None
    #: A comment on the same line after the declaration's ';' (libvirt's member annotations).
    trailing: str | None = None


@dataclass(slots=True)
class EnumMemberNode:
    name: str
    value: Value | None  # None: previous value + 1 (rpcgen's extension)
    pos: Position
    doc: str | None = None
    #: The comment before the member as written, and where it starts (for annotations).
    raw_doc: str | None = None
    raw_doc_pos: Position | None = None


@dataclass(slots=True)
class ConstNode:
    name: str
    value: Value
    pos: Position
    doc: str | None = None


@dataclass(slots=True)
class EnumNode:
    name: str
    members: list[EnumMemberNode]
    pos: Position
    doc: str | None = None


@dataclass(slots=True)
class StructNode:
    name: str
    fields: list[DeclarationNode]
    pos: Position
    doc: str | None = None
    #: A comment on the same line after the opening brace.
    trailing: str | None = None


@dataclass(slots=True)
class CaseNode:
    labels: list[Value]
    declaration: DeclarationNode
    pos: Position


@dataclass(slots=True)
class UnionBody:
    discriminant: DeclarationNode
    cases: list[CaseNode]
    default: DeclarationNode | None
    default_pos: Position | None = None


@dataclass(slots=True)
class UnionNode:
    name: str
    body: UnionBody
    pos: Position
    doc: str | None = None


@dataclass(slots=True)
class TypedefNode:
    declaration: DeclarationNode
    pos: Position
    doc: str | None = None


@dataclass(slots=True)
class ProcedureNode:
    name: str
    number: Value
    #: Empty for void.  Each is a declaration as rpcgen reads one (get_prog_declaration):
    #: PLAIN ``T [name]``, OPTIONAL ``T *[name]`` or STRING ``string [name][<n>]``.
    args: list[DeclarationNode]
    result: DeclarationNode | None  # None for void; PLAIN, or STRING for ``string``
    pos: Position
    doc: str | None = None


@dataclass(slots=True)
class VersionNode:
    name: str
    number: Value
    procedures: list[ProcedureNode]
    pos: Position
    doc: str | None = None


@dataclass(slots=True)
class ProgramNode:
    name: str
    number: Value
    versions: list[VersionNode]
    pos: Position
    doc: str | None = None


@dataclass(slots=True)
class PassthroughNode:
    """A ``%`` line.  rpcgen takes one between any two tokens; the parser places it
    just before the definition it is in (or that follows it), where rpcgen's C has it."""

    text: str
    pos: Position
    #: Set when only rpcgen's other views (RPC_HDR...) see the line (see preprocess).
    other_views: tuple[str, ...] = ()


DefinitionNode = Union[
    ConstNode, EnumNode, StructNode, UnionNode, TypedefNode, ProgramNode, PassthroughNode
]


@dataclass(slots=True)
class Specification:
    file: str
    definitions: list[DefinitionNode] = field(default_factory=list)


def dump(node: object, indent: int = 0) -> str:
    """A stable, readable rendering of a syntax tree (used by golden tests)."""
    lines: list[str] = []
    _dump(node, indent, lines, None)
    return "\n".join(lines) + "\n"


def _dump(node: object, indent: int, out: list[str], label: str | None) -> None:
    pad = "  " * indent
    head = f"{label}: " if label else ""
    if isinstance(node, list):
        if not node:
            out.append(f"{pad}{head}[]")
            return
        out.append(f"{pad}{head}[")
        for item in node:
            _dump(item, indent + 1, out, None)
        out.append(f"{pad}]")
        return
    if isinstance(node, Position):
        out.append(f"{pad}{head}@{node.line}:{node.col}")
        return
    if isinstance(node, Value):
        out.append(f"{pad}{head}{node.text} @{node.pos.line}:{node.pos.col}")
        return
    if isinstance(node, (DeclKind, Primitive)):
        out.append(f"{pad}{head}{node.value}")
        return
    if hasattr(node, "__dataclass_fields__"):
        out.append(f"{pad}{head}{type(node).__name__}")
        for name in node.__dataclass_fields__:
            value = getattr(node, name)
            if value is None or value == () or name in ("name_pos",):
                continue
            if isinstance(value, Position):
                out.append(f"{pad}  {name}: @{value.line}:{value.col}")
            elif isinstance(value, (str, int)):
                out.append(f"{pad}  {name}: {value!r}")
            else:
                _dump(value, indent + 1, out, name)
        return
    out.append(f"{pad}{head}{node!r}")
