"""The marshalling plan's node types: what encode and decode of one type both do.

A plan is a small tree of frozen dataclasses made once per type by
:mod:`xdrgen.generator.plan.planner` from the resolved model.  Both Python
emitters (:mod:`xdrgen.generator.marshal`) walk the same tree, so every fusion
and inlining decision is made once; where one direction has a shape of its own
(the decoder reading ahead across array elements, the encoder packing a union
arm with its discriminant) a node says so in a field named for that direction.

Values are addressed by Python attribute (``Field.attr``) and reported in
errors by their .x name (``Field.name``).  :func:`to_data` turns a plan into
plain tuples, dicts, ints and strings (docs/marshalling-plan.md describes every
node), the input a compiled engine would run.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TypeAlias

#: ``Scalar.kind`` values: XDR's fixed-size items, by the C type rpcgen uses.
SCALAR_KINDS = (
    "int",
    "uint",
    "char",
    "short",
    "uchar",
    "ushort",
    "hyper",
    "uhyper",
    "float",
    "double",
    "bool",
    "quadruple",
    "enum",
    "fixed_opaque",
)


@dataclass(frozen=True)
class TypeName:
    """A named type: its .x name and, for ``--import``, the other module's name."""

    name: str
    module: str | None = None


@dataclass(frozen=True)
class Scalar:
    """A fixed-size value: one item of a fused run."""

    kind: str
    #: Bytes on the wire (a fixed opaque's length rounded up to 4).
    size: int
    #: The enum, for kind ``enum``.
    enum: TypeName | None = None
    #: The declared length, for kind ``fixed_opaque``.
    length: int = 0


@dataclass(frozen=True)
class Void:
    """Nothing on the wire (a void union arm)."""


@dataclass(frozen=True)
class Bytes:
    """A length word, then that many bytes and zero padding."""

    #: A ``string`` (UTF-8 text) rather than a variable ``opaque``.
    text: bool
    #: The declared maximum, or None for ``<>``.
    bound: int | None


@dataclass(frozen=True)
class Optional:
    """``T *x``: a bool word, then the element when it is TRUE."""

    element: Node


@dataclass(frozen=True)
class Array:
    """``T x[n]`` or ``T x<n>`` (a length word first)."""

    element: Node
    variable: bool
    #: The element count of a fixed array; the maximum (None for ``<>``) of a
    #: variable one.
    length: int | None
    #: Fewest bytes one element takes: a declared count larger than the bytes
    #: left divided by this is refused before anything is allocated.
    min_element_size: int
    #: Plain numbers (struct code ``i I q Q d``): all elements in one call.
    bulk: str | None
    #: Decode only: the elements are inlined structs whose blank instances are
    #: made in one C loop, then filled in (encoding has nothing to make).
    decode_prebuilt: bool
    #: Decode only: each element is one string group; its unpack also reads
    #: the next element's length word (encoding knows every length already).
    decode_lookahead: bool


@dataclass(frozen=True)
class Call:
    """A struct or union marshalled by its own function (not inlined)."""

    type: TypeName


@dataclass(frozen=True)
class Field:
    """A value held in an attribute of the value around it."""

    #: The .x name, used in error paths ("" for a void arm).
    name: str
    #: The Python attribute.
    attr: str
    node: Node


@dataclass(frozen=True)
class Run:
    """Consecutive fixed-size fields: one ``pack`` / ``unpack_from``.

    With ``union``, the union field right after the run is inlined and its
    discriminant joins the run (its arms follow, per arm).
    """

    fields: tuple[Field, ...]
    union: Field | None = None


@dataclass(frozen=True)
class Group:
    """A string or variable opaque, the fixed fields after it and maybe the
    discriminant of an inlined union after those: one call whose format
    depends on the length."""

    head: Field
    tail: tuple[Field, ...]
    union: Field | None
    #: Encode only: the head is written alone (it may be any bytes-like object,
    #: which a struct format cannot take) and the rest packs as a :class:`Run`.
    encode_head_apart: bool


@dataclass(frozen=True)
class Alone:
    """A field marshalled by itself."""

    field: Field


Segment: TypeAlias = Run | Group | Alone


@dataclass(frozen=True)
class Struct:
    """An inlined struct: its fields, in segments."""

    type: TypeName
    body: tuple[Segment, ...]


@dataclass(frozen=True)
class Arm:
    """One union arm (``labels`` empty for the default arm)."""

    labels: tuple[int, ...]
    field: Field
    #: Encode only: the arm's fixed-size value is packed in the same call as
    #: the discriminant (decoding must read the discriminant first).
    encode_with_discriminant: bool


@dataclass(frozen=True)
class Union:
    """An inlined union: the discriminant, then the arm it selects."""

    type: TypeName
    discriminant: Field
    arms: tuple[Arm, ...]
    #: None: any other discriminant value is refused.
    default: Arm | None


Node: TypeAlias = Scalar | Void | Bytes | Optional | Array | Call | Struct | Union


@dataclass(frozen=True)
class StructPlan:
    """A struct type's functions: its fields, in segments."""

    type: TypeName
    body: tuple[Segment, ...]
    #: Directions with a whole-value shortcut (``encode``/``decode`` functions
    #: that skip the offset bookkeeping): a struct that is one run, or one
    #: variable opaque.
    shortcuts: tuple[str, ...] = ()


@dataclass(frozen=True)
class ListPlan:
    """A struct whose last field is optional data of itself (a linked list):
    loops, not recursion, however long the list."""

    type: TypeName
    #: Every field but the link.
    body: tuple[Segment, ...]
    link: Field


@dataclass(frozen=True)
class UnionPlan:
    type: TypeName
    union: Union


@dataclass(frozen=True)
class ValuePlan:
    """An enum or typedef: the value itself."""

    type: TypeName
    node: Node
    shortcuts: tuple[str, ...] = ()


TypePlan: TypeAlias = StructPlan | ListPlan | UnionPlan | ValuePlan

PlanData: TypeAlias = (
    None | bool | int | str | tuple["PlanData", ...] | dict[str, "PlanData"]
)


def to_data(node: object) -> PlanData:
    """``node`` as plain data: a dict per node (its class name under ``"class"``),
    tuples, ints, strings, bools and None; a :class:`TypeName` becomes
    ``"module.name"`` (or ``"name"``)."""
    if isinstance(node, TypeName):
        return node.name if node.module is None else f"{node.module}.{node.name}"
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        out: dict[str, PlanData] = {"class": type(node).__name__}
        for f in dataclasses.fields(node):
            out[f.name] = to_data(getattr(node, f.name))
        return out
    if isinstance(node, tuple):
        return tuple(to_data(item) for item in node)
    assert node is None or isinstance(node, (bool, int, str)), node
    return node
