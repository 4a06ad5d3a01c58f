"""The resolved model: every name bound, every constant evaluated, every size checked.

This is the contract between the front end (``xdrgen.frontend``) and the code
generator (``xdrgen.generator``).  Nothing here refers to syntax any more: sizes
are integers, type names point at their definitions, and procedures from RFC 5531
``program`` blocks and from libvirt / libguestfs procedure enums all end up in
one :class:`ProcedureTable` shape.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

from xdrgen.diagnostics import Diagnostic, Position

#: Largest length a variable-length item can declare (an XDR length is a u32).
UNBOUNDED = 0xFFFFFFFF


class Primitive(enum.Enum):
    """XDR's built-in scalar types, by their RFC 4506 spelling."""

    INT = "int"
    UINT = "unsigned int"
    HYPER = "hyper"
    UHYPER = "unsigned hyper"
    FLOAT = "float"
    DOUBLE = "double"
    QUADRUPLE = "quadruple"
    BOOL = "bool"


@dataclass(eq=False, slots=True)
class PrimitiveType:
    primitive: Primitive
    #: The spelling in the source when it was an rpcgen alias (``u_int``, ``int64_t``...).
    spelling: str | None = None


@dataclass(eq=False, slots=True)
class NamedType:
    """A reference to a definition by name (an enum, struct, union or typedef)."""

    name: str
    definition: TypeDefinition
    #: Set when the definition comes from another ``.x`` given with ``--import``.
    imported_from: ImportedModule | None = None


TypeRef = Union[PrimitiveType, NamedType]


class DeclKind(enum.Enum):
    PLAIN = "plain"  # T x;
    FIXED_ARRAY = "fixed_array"  # T x[n];
    VAR_ARRAY = "var_array"  # T x<n>; / T x<>;
    OPTIONAL = "optional"  # T *x;
    FIXED_OPAQUE = "fixed_opaque"  # opaque x[n];
    VAR_OPAQUE = "var_opaque"  # opaque x<n>; / opaque x<>;
    STRING = "string"  # string x<n>; / string x<>;
    VOID = "void"  # void;


@dataclass(frozen=True, slots=True)
class AllocSpec:
    """libvirt's ``alloc@<offset>@<type>@<count offset>`` member comment."""

    offset: int
    ctype: str
    count_offset: int


@dataclass(frozen=True, slots=True)
class MemberAnnotations:
    """libvirt's member comments, parsed; all empty for ordinary files."""

    insert: int | None = None
    call_by_reference: bool = False
    alloc: AllocSpec | None = None


@dataclass(eq=False, slots=True)
class Declaration:
    """One RFC 4506 declaration: a struct field, a union arm, a typedef body, or a
    procedure's argument or result (:data:`Parameter`)."""

    #: None for VOID, and for a procedure argument or result written without a name.
    name: str | None
    kind: DeclKind
    #: Element type; None for opaque, string and void.
    type: TypeRef | None
    #: Fixed length (FIXED_*), or maximum (VAR_*, STRING; UNBOUNDED when ``<>``); None otherwise.
    size: int | None
    pos: Position
    #: The size as written (a constant name or a literal), for documentation.
    size_text: str | None = None
    doc: str | None = None
    annotations: MemberAnnotations = MemberAnnotations()

    @property
    def bounded(self) -> bool:
        return self.size is not None and self.size != UNBOUNDED


@dataclass(eq=False, slots=True)
class ConstantDef:
    name: str
    value: int
    pos: Position
    doc: str | None = None
    #: The right-hand side as written (``0x20008086``, ``OTHER_CONST``, ``-1``).
    text: str = ""
    #: Defined by a ``%#define NAME VALUE`` pass-through line (C for rpcgen's output,
    #: in any of its views) rather than by ``const``.
    c_define: bool = False


@dataclass(eq=False, slots=True)
class StringConstantDef:
    """``const NAME = "text";`` (an rpcgen extension used by some rpcsvc files)."""

    name: str
    value: str
    pos: Position
    doc: str | None = None


@dataclass(eq=False, slots=True)
class EnumMember:
    name: str
    value: int
    pos: Position
    doc: str | None = None
    text: str = ""


@dataclass(eq=False, slots=True)
class EnumDef:
    name: str
    members: list[EnumMember]
    pos: Position
    doc: str | None = None
    #: Name of the enclosing definition when this was written inline in a declaration.
    nested_in: str | None = None


@dataclass(eq=False, slots=True)
class StructDef:
    name: str
    fields: list[Declaration]
    pos: Position
    doc: str | None = None
    nested_in: str | None = None
    annotations: MemberAnnotations = MemberAnnotations()


@dataclass(eq=False, slots=True)
class CaseLabel:
    value: int
    #: The label as written when it was a name (an enum member or constant).
    name: str | None
    pos: Position


@dataclass(eq=False, slots=True)
class UnionArm:
    labels: list[CaseLabel]
    declaration: Declaration  # kind VOID for a void arm


@dataclass(eq=False, slots=True)
class UnionDef:
    name: str
    #: PLAIN declaration of int, unsigned int, bool, an enum, or a typedef of one of those.
    discriminant: Declaration
    arms: list[UnionArm]
    #: None: no default arm (unknown discriminants are errors). A VOID declaration: ``default: void;``.
    default: Declaration | None
    pos: Position
    doc: str | None = None
    nested_in: str | None = None


@dataclass(eq=False, slots=True)
class TypedefDef:
    name: str
    declaration: Declaration
    pos: Position
    doc: str | None = None


TypeDefinition = Union[EnumDef, StructDef, UnionDef, TypedefDef]

#: What a procedure takes or returns: a :class:`Declaration` whose ``kind`` is
#:
#: - ``PLAIN``: a type (``type``), the only form RFC 5531 has and the only one
#:   libvirt / libguestfs procedure tables use;
#: - ``STRING``: ``string`` (``size`` UNBOUNDED: rpcgen's ``xdr_wrapstring``), or
#:   ``string<n>`` among several arguments (rpcgen -N);
#: - ``OPTIONAL``: ``T *name`` among several arguments (rpcgen -N): optional data.
#:
#: ``name`` is the argument's name when the .x gives one (``void F(int count)``),
#: else None.  A lone argument is always sent as rpcgen sends it: ``T *`` as plain
#: ``T`` and ``string<n>`` without its bound (the resolver warns).  Several arguments
#: go on the wire one after the other.
Parameter = Declaration


def plain_parameter(ref: TypeRef, pos: Position) -> Parameter:
    """The :data:`Parameter` for a plain type (RFC 5531's only form)."""
    return Declaration(None, DeclKind.PLAIN, ref, None, pos)


@dataclass(eq=False, slots=True)
class ProcedureDef:
    """A procedure of an RFC 5531 ``program`` version.

    Arguments and result are :class:`Declaration` s (see :data:`Parameter`).
    """

    name: str
    number: int
    #: Arguments in order; empty for ``void``.
    args: list[Parameter]
    result: Parameter | None  # None for void
    pos: Position
    doc: str | None = None


@dataclass(eq=False, slots=True)
class VersionDef:
    name: str
    number: int
    procedures: list[ProcedureDef]
    pos: Position
    doc: str | None = None


@dataclass(eq=False, slots=True)
class ProgramDef:
    name: str
    number: int
    versions: list[VersionDef]
    pos: Position
    doc: str | None = None


@dataclass(eq=False, slots=True)
class Passthrough:
    """A ``%`` line: C text for rpcgen's output, kept with its position.

    rpcgen takes such a line between any two tokens, also inside a struct, union,
    enum or program, and prints it before the definition it is in.  The model does
    the same: ``XdrModule.definitions`` lists it just before that definition.
    """

    text: str
    pos: Position
    #: Empty for a line of the RPC_XDR view (what xdrgen reads).  Otherwise the rpcgen
    #: views whose conditional blocks hold the line (``("RPC_HDR",)``): xdrgen keeps such
    #: lines for their ``%#define`` constants only (docs/preprocessing.md).
    other_views: tuple[str, ...] = ()


Definition = Union[
    ConstantDef, StringConstantDef, EnumDef, StructDef, UnionDef, TypedefDef, ProgramDef, Passthrough
]


# --------------------------------------------------------------------------
# Procedure tables: one shape for RFC 5531 programs and procedure enums.


class ProtocolStyle(enum.Enum):
    ONCRPC = "oncrpc"  # RFC 5531 program/version/procedure blocks
    LIBVIRT = "libvirt"  # enum <x>_procedure + <x>_<name>_args/_ret/_msg
    GUESTFS = "guestfs"  # enum guestfs_procedure + guestfs_<name>_args/_ret


@dataclass(frozen=True, slots=True)
class AclRule:
    """``@acl: object:permission[:flag]`` or ``object:permission::param:value``."""

    object: str
    permission: str
    flag: str | None = None
    param: str | None = None
    value: str | None = None


@dataclass(frozen=True, slots=True)
class OptionalArgument:
    """A field of a procedure's argument struct that is optional, flagged by one bit.

    libguestfs sends every field but sets bit ``bit`` of the header's
    ``optargs_bitmask`` only for the optional arguments the caller gave.
    """

    field: str
    bit: int


@dataclass(frozen=True, slots=True)
class Deprecation:
    """A procedure that should no longer be used."""

    #: The procedure to use instead (its method name), if there is one.
    replacement: str | None = None
    #: Free text for documentation and the warning.
    note: str | None = None


@dataclass(frozen=True, slots=True)
class ProcedureAnnotations:
    """Procedure annotations, validated: libvirt's ``/** @name: value */`` comments
    and the keys of a procedure-annotation file (``--annotations``)."""

    generate: str | None = None  # both | server | client | none
    priority: str | None = None  # high | low
    acl: tuple[AclRule, ...] = ()
    aclfilter: tuple[AclRule, ...] = ()
    #: 1-based argument that is the stream the client reads (libguestfs: FileOut).
    readstream: int | None = None
    #: 1-based argument that is the stream the client writes (libguestfs: FileIn).
    #: Both set (to the same argument): a two-way stream.
    writestream: int | None = None
    sparseflag: str | None = None
    optargs: tuple[OptionalArgument, ...] = ()
    deprecated: Deprecation | None = None

    @property
    def stream(self) -> str | None:
        """'read' (daemon to client), 'write' (client to daemon), 'both' or None."""
        if self.readstream is not None:
            return "both" if self.writestream is not None else "read"
        if self.writestream is not None:
            return "write"
        return None

    @property
    def stream_arg(self) -> int | None:
        """The 1-based argument that is the stream, if any."""
        return self.readstream if self.readstream is not None else self.writestream

    @property
    def optargs_mask(self) -> int:
        """Every bit an optional argument of this procedure may set."""
        mask = 0
        for optarg in self.optargs:
            mask |= 1 << optarg.bit
        return mask


@dataclass(eq=False, slots=True)
class Procedure:
    #: Upper-case name without the program prefix: ``CONNECT_OPEN``, ``NULLPROC``.
    name: str
    #: The constant naming the number: ``REMOTE_PROC_CONNECT_OPEN`` (an RFC name for programs).
    constant: str
    number: int
    #: Arguments in order (see :data:`Parameter`); empty means void.  libvirt and
    #: guestfs have at most one, always PLAIN.
    args: list[Parameter]
    result: Parameter | None
    #: libvirt's ``<x>_<name>_msg`` (the body of an event MESSAGE), if defined.
    event: TypeRef | None
    pos: Position
    doc: str | None = None
    annotations: ProcedureAnnotations = ProcedureAnnotations()

    @property
    def method_name(self) -> str:
        """snake_case name for generated methods: ``connect_open``."""
        return self.name.lower()


@dataclass(eq=False, slots=True)
class ProcedureTable:
    style: ProtocolStyle
    #: Program (or enum prefix) name: ``REMOTE``, ``GUESTFS``, ``DEMO_PROG``.
    name: str
    program: int
    version: int
    procedures: list[Procedure]
    pos: Position
    #: Name of the version (RFC 5531) or of the procedure enum (libvirt, guestfs).
    version_name: str = ""
    program_constant: str | None = None
    version_constant: str | None = None


@dataclass(eq=False, slots=True)
class ImportedModule:
    """Another ``.x`` whose definitions this one uses (``--import``), or the runtime's
    module of RPC-library types XDR cannot describe (``netbuf``: ``package`` is set)."""

    source: Path
    module_name: str
    model: XdrModule
    #: Where the generated module imports it from: None for a sibling module (``from .
    #: import name``), ``"xdrgen.runtime"`` for :mod:`xdrgen.runtime.rpclib`.
    package: str | None = None


@dataclass(eq=False, slots=True)
class XdrModule:
    """Everything the generator needs to know about one ``.x`` file."""

    source: Path
    source_sha256: str
    #: Definitions of this file in source order.  Nested inline definitions, and ``%``
    #: lines written inside a definition, come just before the definition that contains
    #: them; the constant of a ``%#define`` line comes just after its Passthrough.
    definitions: list[Definition]
    #: ``const`` definitions and ``%#define`` constants (``ConstantDef.c_define``).
    constants: dict[str, ConstantDef]
    types: dict[str, TypeDefinition]
    programs: list[ProgramDef]
    procedure_tables: list[ProcedureTable]
    imports: list[ImportedModule] = field(default_factory=list)
    #: External constants (``-D``, ``--constants-from``) that this file actually used.
    external_constants: dict[str, int] = field(default_factory=dict)
    #: Names from ``<rpc/rpc.h>`` (the RFC 5531 auth flavors) that this file used and
    #: does not define itself; the generated module defines them too.
    builtin_constants: dict[str, ConstantDef] = field(default_factory=dict)
    #: Every file read to build this model: the source, its includes, the C headers.
    inputs: list[Path] = field(default_factory=list)
    warnings: list[Diagnostic] = field(default_factory=list)

    def constant_value(self, name: str) -> int:
        if name in self.constants:
            return self.constants[name].value
        if name in self.external_constants:
            return self.external_constants[name]
        if name in self.builtin_constants:
            return self.builtin_constants[name].value
        for imported in self.imports:
            try:
                return imported.model.constant_value(name)
            except KeyError:
                pass
        raise KeyError(name)


def resolve_typedefs(ref: TypeRef) -> TypeRef:
    """Follow PLAIN typedefs (``typedef T name;``) down to a primitive or a non-typedef."""
    while isinstance(ref, NamedType) and isinstance(ref.definition, TypedefDef):
        decl = ref.definition.declaration
        if decl.kind is not DeclKind.PLAIN or decl.type is None:
            return ref
        ref = decl.type
    return ref
