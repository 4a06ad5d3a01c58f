"""Syntax tree -> resolved model: bind names, evaluate constants, check sizes and types.

All checks report ``file:line:col`` diagnostics.  Several independent errors are
collected and reported together; an error that makes later checks meaningless
stops resolution.
"""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Callable, Mapping
from pathlib import Path

from xdrgen.diagnostics import Diagnostic, Position, XdrgenError
from xdrgen.frontend import syntax as syn
from xdrgen.frontend.annotations import is_member_annotation, parse_member_annotations
from xdrgen.frontend.cdefines import (
    RPC_H_CONSTANTS,
    RPC_H_POSITION,
    CDefineEvaluator,
    c_defines,
    rpc_h_constants,
)
from xdrgen.frontend.procedures import build_procedure_tables
from xdrgen.frontend.rpclib import LIBRARY_TYPES, library_module
from xdrgen.frontend.rpclib import SOURCE as LIBRARY_SOURCE
from xdrgen.model import (
    UNBOUNDED,
    CaseLabel,
    ConstantDef,
    Declaration,
    DeclKind,
    Definition,
    EnumDef,
    EnumMember,
    ImportedModule,
    NamedType,
    Passthrough,
    Primitive,
    PrimitiveType,
    ProcedureDef,
    ProgramDef,
    StringConstantDef,
    StructDef,
    TypedefDef,
    TypeDefinition,
    TypeRef,
    UnionArm,
    UnionDef,
    VersionDef,
    XdrModule,
    resolve_typedefs,
)

#: rpcgen's extra type names (used undeclared by real files), unless the file defines them.
BUILTIN_TYPE_NAMES: dict[str, Primitive] = {
    "int32_t": Primitive.INT,
    "uint32_t": Primitive.UINT,
    "int64_t": Primitive.HYPER,
    "uint64_t": Primitive.UHYPER,
    "u_int": Primitive.UINT,
    "u_long": Primitive.UINT,
    "u_short": Primitive.UINT,
    "u_char": Primitive.UINT,
    "bool_t": Primitive.BOOL,
    "quad_t": Primitive.HYPER,
    "u_quad_t": Primitive.UHYPER,
    "u_int32_t": Primitive.UINT,
    "u_int64_t": Primitive.UHYPER,
    # libtirpc's rpc/types.h (u_int32_t); its own rpcb_prot.x uses them undeclared.
    "rpcprog_t": Primitive.UINT,
    "rpcvers_t": Primitive.UINT,
    "rpcproc_t": Primitive.UINT,
}

#: Types of the RPC library (rpc/xdr.h, rpc/auth.h) that rpcsvc files use undeclared.
_RPCGEN_OPAQUE_TYPES: dict[str, tuple[DeclKind, int, str]] = {
    "netobj": (DeclKind.VAR_OPAQUE, 1024, "The RPC library's counted byte string (opaque<1024>)."),
    "des_block": (DeclKind.FIXED_OPAQUE, 8, "The RPC library's 8-byte DES block (opaque[8])."),
}

#: Constants every file may use (C's TRUE/FALSE, as rpcgen output relies on them).
BUILTIN_CONSTANTS: dict[str, int] = {"TRUE": 1, "FALSE": 0}

_TYPE_KEYWORDS = ("int", "unsigned", "hyper", "float", "double", "quadruple", "bool", "string", "opaque")

_DISCRIMINANT_PRIMITIVES = (Primitive.INT, Primitive.UINT, Primitive.BOOL)

_INT_RANGES: dict[Primitive, tuple[int, int]] = {
    Primitive.INT: (-(2**31), 2**31 - 1),
    Primitive.UINT: (0, 2**32 - 1),
    Primitive.BOOL: (0, 1),
}


def _did_you_mean(name: str, candidates: object) -> tuple[str, ...]:
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.75)  # type: ignore[call-overload]
    return (f"did you mean '{close[0]}'?",) if close else ()


class Resolver:
    def __init__(
        self,
        spec: syn.Specification,
        *,
        source: Path,
        source_text: bytes,
        external_constants: Mapping[str, int],
        imports: list[ImportedModule],
        inputs: list[Path],
    ) -> None:
        self.spec = spec
        self.source = source
        self.source_sha256 = hashlib.sha256(source_text).hexdigest()
        self.external = external_constants
        self.imports = list(imports)
        self.inputs = inputs
        self.errors: list[Diagnostic] = []
        self.warnings: list[Diagnostic] = []
        # Name tables, filled by _collect.
        self.const_nodes: dict[str, syn.ConstNode] = {}
        self.enum_member_nodes: dict[str, tuple[syn.EnumMemberNode, str]] = {}
        self.type_nodes: dict[str, syn.DefinitionNode] = {}
        self.defined_at: dict[str, Position] = {}
        #: Program, version and procedure names: the numbers they stand for.
        self.program_numbers: dict[str, syn.Value] = {}
        # Results.
        self.const_values: dict[str, int] = {}
        self.constants: dict[str, ConstantDef] = {}
        self.enum_values: dict[str, int] = {}  # member name -> value (own enums)
        self.member_enum: dict[str, str] = {}  # member name -> enum name
        self.types: dict[str, TypeDefinition] = {}
        self.used_external: dict[str, int] = {}
        self._evaluating: set[str] = set()
        self.definitions: list[Definition] = []
        #: ``%#define NAME VALUE`` lines (any rpcgen view): C constants rpcgen's C sees.
        self.c_defines = c_defines(
            (n for n in spec.definitions if isinstance(n, syn.PassthroughNode)), self.warnings
        )
        self.c_evaluator = CDefineEvaluator(self.c_defines, self._c_lookup)
        #: Names of <rpc/rpc.h> (RPC_H_CONSTANTS) the file used.
        self.used_rpc_h: dict[str, int] = {}

    # ------------------------------------------------------------------ helpers

    def fail(self, message: str, pos: Position | None, *notes: str) -> None:
        self.errors.append(Diagnostic("error", message, pos, tuple(notes)))

    def check(self) -> None:
        if self.errors:
            raise XdrgenError(self.errors)

    def _define(self, name: str, pos: Position, what: str) -> bool:
        previous = self.defined_at.get(name)
        if previous is not None:
            self.fail(
                f"duplicate definition of '{name}'",
                pos,
                f"'{name}' was first defined at {previous}",
            )
            return False
        for imported in self.imports:
            model = imported.model
            if name in model.types or name in model.constants:
                self.fail(
                    f"'{name}' is already defined in imported file {imported.source.name}", pos
                )
                return False
        self.defined_at[name] = pos
        return True

    # ------------------------------------------------------------------ pass 1: names

    def collect(self) -> None:
        for node in self.spec.definitions:
            if isinstance(node, syn.ConstNode):
                if self._define(node.name, node.pos, "constant"):
                    self.const_nodes[node.name] = node
            elif isinstance(node, syn.EnumNode):
                if self._define(node.name, node.pos, "type"):
                    self.type_nodes[node.name] = node
                self._collect_members(node.name, node.members)
            elif isinstance(node, (syn.StructNode, syn.UnionNode)):
                if self._define(node.name, node.pos, "type"):
                    self.type_nodes[node.name] = node
            elif isinstance(node, syn.TypedefNode):
                decl = node.declaration
                if _self_alias(node):
                    continue  # C's 'typedef struct X X;': X already names the type
                if decl.name is None:
                    self.fail("'void' cannot be the body of a typedef", decl.pos)
                elif self._define(decl.name, decl.name_pos, "type"):
                    self.type_nodes[decl.name] = node
            elif isinstance(node, syn.ProgramNode):
                if self._define(node.name, node.pos, "program"):
                    self.const_nodes_program(node)
        # Inline enums define member constants too; find them anywhere.
        for node in self.spec.definitions:
            for inline in _inline_enums(node):
                self._collect_members(None, inline.members)

    def const_nodes_program(self, node: syn.ProgramNode) -> None:
        # Program, version and procedure names are constants in rpcgen's output
        # (#defines), usable anywhere: rpcb_prot.x has 'const X = RPCBPROC_CALLIT;'
        # before its program.
        self.program_numbers.setdefault(node.name, node.number)
        for version in node.versions:
            self._define(version.name, version.pos, "version")
            self.program_numbers.setdefault(version.name, version.number)
            for proc in version.procedures:
                if proc.name in self.defined_at and proc.name in self.const_nodes:
                    continue
                # The same procedure name may appear in several versions.
                self.defined_at.setdefault(proc.name, proc.pos)
                self.program_numbers.setdefault(proc.name, proc.number)

    def _collect_members(self, enum_name: str | None, members: list[syn.EnumMemberNode]) -> None:
        for member in members:
            if self._define(member.name, member.pos, "enum member"):
                self.enum_member_nodes[member.name] = (member, enum_name or "")

    # ------------------------------------------------------------------ constants

    def value_of(self, value: syn.Value, context: str) -> int | None:
        """Integer value of a literal or a constant name; None after reporting an error."""
        if value.number is not None:
            return value.number
        assert value.name is not None
        return self.constant(value.name, value.pos, context)

    def constant(self, name: str, pos: Position, context: str) -> int | None:
        if name in self.const_values:
            return self.const_values[name]
        if name in self.enum_values:
            return self.enum_values[name]
        node = self.const_nodes.get(name)
        if node is not None:
            return self._evaluate_const(node)
        member = self.enum_member_nodes.get(name)
        if member is not None:
            self._evaluate_enum_members(member[0])
            return self.enum_values.get(name)
        number = self.program_numbers.get(name)
        if number is not None:
            if name in self._evaluating:
                self.fail(f"the number of '{name}' is defined in terms of itself", number.pos)
                return None
            self._evaluating.add(name)
            try:
                return self.value_of(number, f"the number of '{name}'")
            finally:
                self._evaluating.discard(name)
        for imported in self.imports:
            try:
                return imported.model.constant_value(name)
            except KeyError:
                pass
        if name in self.external:
            self.used_external[name] = self.external[name]
            return self.external[name]
        define = self.c_defines.get(name)
        if define is not None:
            value = self.c_evaluator.value(name)
            if value is None:
                self.fail(
                    f"{context}: '{name}' is defined by '%#define {name} {define.text}' "
                    f"at {define.node.pos}, which is not an integer constant expression "
                    "xdrgen can evaluate",
                    pos,
                )
            return value
        if name in BUILTIN_CONSTANTS:
            return BUILTIN_CONSTANTS[name]
        if name in RPC_H_CONSTANTS:
            self.used_rpc_h[name] = RPC_H_CONSTANTS[name]
            return RPC_H_CONSTANTS[name]
        if name in self.type_nodes or name in BUILTIN_TYPE_NAMES:
            self.fail(f"{context}: '{name}' is a type, not an integer constant", pos)
            return None
        known = list(self.const_nodes) + list(self.enum_member_nodes) + list(self.external)
        self.fail(
            f"undefined constant '{name}' in {context}",
            pos,
            *(
                _did_you_mean(name, known)
                or (
                    "constants from C headers can be given with -D NAME=VALUE or "
                    "--constants-from HEADER",
                )
            ),
        )
        return None

    def _c_lookup(self, name: str) -> int | None:
        """A name in a ``%#define`` body, as rpcgen's C sees it; None if unknown.

        Quiet: what goes wrong here is reported again where the name is defined."""
        errors, warnings = len(self.errors), len(self.warnings)
        value = self.constant(name, RPC_H_POSITION, "")
        del self.errors[errors:]
        del self.warnings[warnings:]
        return value

    def _evaluate_const(self, node: syn.ConstNode) -> int | None:
        if node.value.string is not None:
            self.fail(f"constant '{node.name}' is a string, not an integer", node.value.pos)
            return None
        if node.name in self._evaluating:
            self.fail(f"constant '{node.name}' is defined in terms of itself", node.pos)
            return None
        self._evaluating.add(node.name)
        try:
            value = self.value_of(node.value, f"the value of constant '{node.name}'")
        finally:
            self._evaluating.discard(node.name)
        if value is not None:
            self.const_values[node.name] = value
            self.constants[node.name] = ConstantDef(
                node.name, value, node.pos, node.doc, node.value.text
            )
        return value

    def _evaluate_enum_members(self, start: syn.EnumMemberNode) -> None:
        """Evaluate the enum that owns ``start`` (implicit values depend on order)."""
        for node in self.spec.definitions:
            for members in _all_enum_member_lists(node):
                if any(m is start for m in members):
                    self._evaluate_member_list(members)
                    return

    def _evaluate_member_list(self, members: list[syn.EnumMemberNode]) -> list[EnumMember]:
        result: list[EnumMember] = []
        previous: int | None = None
        seen: dict[int, str] = {}
        for member in members:
            if member.name in self.enum_values:
                value: int | None = self.enum_values[member.name]
            elif member.value is None:
                value = 0 if previous is None else previous + 1
            else:
                if member.name in self._evaluating:
                    self.fail(f"enum member '{member.name}' is defined in terms of itself", member.pos)
                    return result
                self._evaluating.add(member.name)
                try:
                    value = self.value_of(member.value, f"the value of enum member '{member.name}'")
                finally:
                    self._evaluating.discard(member.name)
            if value is None:
                return result
            if not -(2**31) <= value <= 2**31 - 1:
                self.fail(
                    f"enum member '{member.name}' = {value} does not fit in a 32-bit signed int",
                    member.pos,
                )
            self.enum_values[member.name] = value
            result.append(
                EnumMember(
                    member.name,
                    value,
                    member.pos,
                    member.doc,
                    member.value.text if member.value else "",
                )
            )
            previous = value
        for member_def, node in zip(result, members):
            if member_def.value in seen:
                # C and rpcgen accept aliases (rpcsvc's nis_object.x has them): warn only.
                self.warnings.append(
                    Diagnostic(
                        "warning",
                        f"duplicate enum value {member_def.value}: '{member_def.name}' is an "
                        f"alias of '{seen[member_def.value]}'",
                        node.pos,
                    )
                )
            else:
                seen[member_def.value] = member_def.name
        return result

    # ------------------------------------------------------------------ types

    def type_ref(self, spec: syn.TypeSpec, parent: str, member: str | None) -> TypeRef | None:
        if isinstance(spec, syn.PrimitiveSpec):
            return PrimitiveType(spec.primitive, spec.spelling)
        if isinstance(spec, syn.NameSpec):
            return self.named(spec.name, spec.pos, spec.keyword)
        # Inline definition: give it a name derived from where it is written.
        name = f"{parent}_{member}" if member else f"{parent}_body"
        if name in self.defined_at:
            self.fail(
                f"inline definition would be named '{name}', which is already defined",
                spec.pos,
            )
            return None
        self.defined_at[name] = spec.pos
        definition: TypeDefinition
        if isinstance(spec, syn.InlineEnum):
            members = self._evaluate_member_list(spec.members)
            for m in members:
                self.member_enum[m.name] = name
            definition = EnumDef(name, members, spec.pos, nested_in=parent)
        elif isinstance(spec, syn.InlineStruct):
            definition = self.struct(name, spec.fields, spec.pos, None, None, nested_in=parent)
        else:
            definition = self.union(name, spec.body, spec.pos, None, nested_in=parent)
        self.types[name] = definition
        self.definitions.append(definition)
        return NamedType(name, definition)

    def named(self, name: str, pos: Position, keyword: str | None = None) -> TypeRef | None:
        definition = self.types.get(name)
        if definition is None and name in self.type_nodes:
            definition = self.define_type(self.type_nodes[name])
            if definition is None:
                return None
        if definition is not None:
            if keyword is not None:
                expected = {"struct": StructDef, "union": UnionDef, "enum": EnumDef}[keyword]
                if not isinstance(definition, (expected, TypedefDef)):
                    self.fail(f"'{keyword} {name}' names a different kind of type", pos)
            return NamedType(name, definition)
        for imported in self.imports:
            found = imported.model.types.get(name)
            if found is not None:
                return NamedType(name, found, imported)
        if name in BUILTIN_TYPE_NAMES:
            return PrimitiveType(BUILTIN_TYPE_NAMES[name], name)
        if name in _RPCGEN_OPAQUE_TYPES:
            return NamedType(name, self._builtin_opaque(name))
        if name in LIBRARY_TYPES:
            library = next((m for m in self.imports if m.source == LIBRARY_SOURCE), None)
            if library is None:
                library = library_module()
                self.imports.append(library)
            return NamedType(name, library.model.types[name], library)
        if name in self.const_nodes or name in self.enum_member_nodes:
            self.fail(f"'{name}' is a constant, not a type", pos)
            return None
        candidates = list(self.type_nodes) + list(BUILTIN_TYPE_NAMES) + list(_TYPE_KEYWORDS)
        for imported in self.imports:
            candidates += list(imported.model.types)
        self.fail(f"undefined type '{name}'", pos, *_did_you_mean(name, candidates))
        return None

    def _builtin_opaque(self, name: str) -> TypedefDef:
        """Types the RPC library defines in C and rpcgen files use undeclared."""
        existing = self.types.get(name)
        if isinstance(existing, TypedefDef):
            return existing
        kind, size, doc = _RPCGEN_OPAQUE_TYPES[name]
        builtin = Position("<rpcgen builtin>", 1, 1)
        definition = TypedefDef(
            name,
            Declaration(name, kind, None, size, builtin, size_text=str(size)),
            builtin,
            doc,
        )
        self.types[name] = definition
        self.definitions.append(definition)
        return definition

    def define_type(self, node: syn.DefinitionNode) -> TypeDefinition | None:
        """Resolve a top-level type definition (memoised; recursion via optional data is fine)."""
        if isinstance(node, syn.EnumNode):
            name = node.name
        elif isinstance(node, (syn.StructNode, syn.UnionNode)):
            name = node.name
        elif isinstance(node, syn.TypedefNode):
            assert node.declaration.name is not None
            name = node.declaration.name
        else:  # pragma: no cover - only type nodes are registered
            return None
        if name in self.types:
            return self.types[name]
        definition: TypeDefinition
        if isinstance(node, syn.EnumNode):
            members = self._evaluate_member_list(node.members)
            for m in members:
                self.member_enum[m.name] = name
            definition = EnumDef(name, members, node.pos, node.doc)
            self.types[name] = definition
        elif isinstance(node, syn.StructNode):
            definition = StructDef(
                name,
                [],
                node.pos,
                node.doc,
                annotations=parse_member_annotations(node.trailing),
            )
            self.types[name] = definition  # registered first: self-reference via '*'
            self.struct(name, node.fields, node.pos, node.doc, node.trailing, into=definition)
        elif isinstance(node, syn.UnionNode):
            definition = UnionDef(name, _placeholder_decl(node.pos), [], None, node.pos, node.doc)
            self.types[name] = definition
            self.union(name, node.body, node.pos, node.doc, into=definition)
        else:
            decl_node = node.declaration
            definition = TypedefDef(name, _placeholder_decl(node.pos), node.pos, node.doc)
            self.types[name] = definition
            if isinstance(decl_node.type, (syn.InlineStruct, syn.InlineUnion, syn.InlineEnum)) and (
                decl_node.kind is DeclKind.PLAIN
            ):
                # typedef struct { ... } name;  -> the struct itself carries the name.
                del self.types[name]
                if isinstance(decl_node.type, syn.InlineStruct):
                    definition = self.struct(name, decl_node.type.fields, node.pos, node.doc, None)
                elif isinstance(decl_node.type, syn.InlineUnion):
                    definition = self.union(name, decl_node.type.body, node.pos, node.doc)
                else:
                    members = self._evaluate_member_list(decl_node.type.members)
                    for m in members:
                        self.member_enum[m.name] = name
                    definition = EnumDef(name, members, node.pos, node.doc)
                self.types[name] = definition
            else:
                decl = self.declaration(decl_node, name, "typedef")
                if decl is not None:
                    definition.declaration = decl
        return definition

    def struct(
        self,
        name: str,
        fields: list[syn.DeclarationNode],
        pos: Position,
        doc: str | None,
        trailing: str | None,
        *,
        nested_in: str | None = None,
        into: StructDef | None = None,
    ) -> StructDef:
        definition = into or StructDef(
            name, [], pos, doc, nested_in, parse_member_annotations(trailing)
        )
        seen: dict[str, Position] = {}
        for field_node in fields:
            if field_node.kind is DeclKind.VOID:
                self.fail(
                    f"'void' is not allowed as a member of struct '{name}' "
                    "(only as a union arm or a procedure argument or result)",
                    field_node.pos,
                )
                continue
            assert field_node.name is not None
            if field_node.name in seen:
                self.fail(
                    f"duplicate member '{field_node.name}' in struct '{name}'",
                    field_node.name_pos,
                    f"first declared at {seen[field_node.name]}",
                )
                continue
            seen[field_node.name] = field_node.name_pos
            decl = self.declaration(field_node, name, "struct member")
            if decl is not None:
                definition.fields.append(decl)
        if not fields:
            self.fail(f"struct '{name}' has no members", pos)
        return definition

    def union(
        self,
        name: str,
        body: syn.UnionBody,
        pos: Position,
        doc: str | None,
        *,
        nested_in: str | None = None,
        into: UnionDef | None = None,
    ) -> UnionDef:
        definition = into or UnionDef(name, _placeholder_decl(pos), [], None, pos, doc, nested_in)
        disc_node = body.discriminant
        if disc_node.kind is not DeclKind.PLAIN or disc_node.type is None:
            self.fail(
                f"invalid discriminant for union '{name}': it must be a plain int, "
                "unsigned int, bool or enum declaration",
                disc_node.pos,
            )
            return definition
        disc = self.declaration(disc_node, name, "discriminant")
        if disc is None or disc.type is None:
            return definition
        definition.discriminant = disc
        base = resolve_typedefs(disc.type)
        enum_def: EnumDef | None = None
        if isinstance(base, NamedType) and isinstance(base.definition, EnumDef):
            enum_def = base.definition
        elif not (isinstance(base, PrimitiveType) and base.primitive in _DISCRIMINANT_PRIMITIVES):
            shown = base.primitive.value if isinstance(base, PrimitiveType) else base.name
            self.fail(
                f"invalid discriminant type '{shown}' for union '{name}': it must be int, "
                "unsigned int, bool or an enum",
                disc_node.type.pos if disc_node.type is not None else disc_node.pos,
            )
            return definition
        seen: dict[int, Position] = {}
        for case in body.cases:
            labels: list[CaseLabel] = []
            for label in case.labels:
                value = self._case_value(label, enum_def, base, name)
                if value is None:
                    continue
                if value in seen:
                    self.fail(
                        f"duplicate case label {label.text} in union '{name}'",
                        label.pos,
                        f"the same value ({value}) is already used at {seen[value]}",
                    )
                    continue
                seen[value] = label.pos
                labels.append(CaseLabel(value, label.name, label.pos))
            arm = case.declaration
            arm_name = arm.name or f"case_{case.labels[0].text}"
            decl = self.declaration(arm, name, "union arm", member_name=arm_name)
            if decl is not None and labels:
                definition.arms.append(UnionArm(labels, decl))
        if body.default is not None:
            definition.default = self.declaration(body.default, name, "union arm", member_name="default")
        return definition

    def _case_value(
        self, label: syn.Value, enum_def: EnumDef | None, base: TypeRef, union: str
    ) -> int | None:
        if enum_def is not None:
            members = {m.name: m.value for m in enum_def.members}
            if label.name is not None:
                if label.name not in members:
                    if label.name in self.enum_member_nodes or label.name in self.const_nodes or (
                        label.name in self.external
                    ):
                        self.fail(
                            f"case label '{label.name}' is not a member of enum "
                            f"'{enum_def.name}' (the type of the discriminant of union '{union}')",
                            label.pos,
                        )
                    else:
                        self.fail(
                            f"undefined case label '{label.name}' in union '{union}'",
                            label.pos,
                            *_did_you_mean(label.name, members),
                        )
                    return None
                return members[label.name]
            assert label.number is not None
            if label.number not in members.values():
                self.fail(
                    f"case label {label.text} is not a value of enum '{enum_def.name}' "
                    f"(the type of the discriminant of union '{union}')",
                    label.pos,
                )
                return None
            return label.number
        value = self.value_of(label, f"a case label of union '{union}'")
        if value is None:
            return None
        assert isinstance(base, PrimitiveType)
        low, high = _INT_RANGES[base.primitive]
        if not low <= value <= high:
            self.fail(
                f"case label {label.text} = {value} is out of range for a "
                f"'{base.primitive.value}' discriminant",
                label.pos,
            )
            return None
        return value

    def declaration(
        self,
        node: syn.DeclarationNode,
        parent: str,
        role: str,
        *,
        member_name: str | None = None,
    ) -> Declaration | None:
        doc = node.doc
        annotations = parse_member_annotations(node.trailing)
        if node.trailing and not doc and not is_member_annotation(node.trailing):
            doc = node.trailing
        if node.kind is DeclKind.VOID:
            if role not in ("union arm",):
                self.fail(f"'void' is not allowed as a {role}", node.pos)
                return None
            return Declaration(None, DeclKind.VOID, None, None, node.pos, doc=doc)
        type_ref: TypeRef | None = None
        if node.type is not None:
            type_ref = self.type_ref(node.type, parent, member_name or node.name)
            if type_ref is None:
                return None
        size: int | None = None
        if node.kind in (DeclKind.FIXED_ARRAY, DeclKind.FIXED_OPAQUE):
            assert node.size is not None
            size = self._size(node.size, f"'{node.name}'", fixed=True)
            if size is None:
                return None
        elif node.kind in (DeclKind.VAR_ARRAY, DeclKind.VAR_OPAQUE, DeclKind.STRING):
            if node.size is None:
                size = UNBOUNDED
            else:
                size = self._size(node.size, f"'{node.name}'", fixed=False)
                if size is None:
                    return None
        return Declaration(
            node.name,
            node.kind,
            type_ref,
            size,
            node.pos,
            size_text=node.size.text if node.size is not None else None,
            doc=doc,
            annotations=annotations,
        )

    def _size(self, value: syn.Value, owner: str, *, fixed: bool) -> int | None:
        """A length or maximum: 0 .. 2**32-1 (rpcgen takes 0: nothing on the wire)."""
        what = f"the {'length' if fixed else 'maximum length'} of {owner}"
        size = self.value_of(value, what)
        if size is None:
            return None
        if size < 0:
            self.fail(
                f"{what} is negative: {size}"
                + (f" ({value.text})" if value.name else ""),
                value.pos,
            )
            return None
        if size > UNBOUNDED:
            self.fail(f"{what} ({size}) does not fit in 32 bits", value.pos)
            return None
        return size

    # ------------------------------------------------------------------ programs

    def program(self, node: syn.ProgramNode) -> ProgramDef | None:
        number = self.value_of(node.number, f"the number of program '{node.name}'")
        versions: list[VersionDef] = []
        seen_versions: dict[int, Position] = {}
        for version in node.versions:
            vnum = self.value_of(version.number, f"the number of version '{version.name}'")
            if vnum is None:
                continue
            if vnum in seen_versions:
                self.fail(
                    f"duplicate version number {vnum} in program '{node.name}'",
                    version.number.pos,
                )
            seen_versions[vnum] = version.pos
            procs: list[ProcedureDef] = []
            seen_procs: dict[int, str] = {}
            for proc in version.procedures:
                pnum = self.value_of(proc.number, f"the number of procedure '{proc.name}'")
                if pnum is None:
                    continue
                if pnum in seen_procs:
                    self.fail(
                        f"duplicate procedure number {pnum} in version '{version.name}' "
                        f"('{proc.name}' and '{seen_procs[pnum]}')",
                        proc.number.pos,
                    )
                seen_procs[pnum] = proc.name
                single = len(proc.args) == 1
                args = [
                    self.procedure_param(a, proc.name, f"arg{i + 1}", single=single)
                    for i, a in enumerate(proc.args)
                ]
                result = (
                    self.procedure_param(proc.result, proc.name, "result", single=True)
                    if proc.result
                    else None
                )
                if any(a is None for a in args) or (proc.result is not None and result is None):
                    continue
                procs.append(
                    ProcedureDef(proc.name, pnum, [a for a in args if a is not None], result, proc.pos, proc.doc)
                )
                self.const_values.setdefault(proc.name, pnum)
            versions.append(VersionDef(version.name, vnum, procs, version.pos, version.doc))
            self.const_values[version.name] = vnum
        if number is None:
            return None
        self.const_values[node.name] = number
        return ProgramDef(node.name, number, versions, node.pos, node.doc)

    def procedure_param(
        self, node: syn.DeclarationNode, proc: str, role: str, *, single: bool
    ) -> Declaration | None:
        """A procedure argument or result, as rpcgen puts it on the wire.

        rpcgen takes ``T``, ``T *`` and ``string``/``string<n>`` (never opaque or
        arrays).  A lone argument goes through ``xdr_T`` / ``xdr_wrapstring`` whatever
        the ``*`` or the bound says; with several arguments (rpcgen -N) each is a
        member of a struct, so ``T *`` is optional data and the bound holds.
        """
        type_ref: TypeRef | None = None
        if node.type is not None:
            type_ref = self.type_ref(node.type, proc, role)
            if type_ref is None:
                return None
        what = f"the {role} of procedure '{proc}'" if role == "result" else (
            f"argument {role[3:]} of procedure '{proc}'"
        )
        kind, size = node.kind, None
        if kind is DeclKind.STRING:
            size = UNBOUNDED if node.size is None else self._size(node.size, what, fixed=False)
            if size is None:
                return None
            if single and size != UNBOUNDED:
                self.warnings.append(
                    Diagnostic(
                        "warning",
                        f"the bound <{node.size.text if node.size else ''}> of {what} is not "
                        "checked: rpcgen sends and takes a lone string argument with "
                        "xdr_wrapstring (any length), and so does xdrgen",
                        node.pos,
                    )
                )
                size = UNBOUNDED
        elif kind is DeclKind.OPTIONAL and single:
            self.warnings.append(
                Diagnostic(
                    "warning",
                    f"the '*' of {what} is ignored: rpcgen sends a lone argument as plain "
                    "data (optional data needs several arguments, rpcgen -N), and so does xdrgen",
                    node.pos,
                )
            )
            kind = DeclKind.PLAIN
        return Declaration(
            node.name,
            kind,
            type_ref,
            size,
            node.pos,
            size_text=node.size.text if node.size is not None else None,
        )

    def _c_define_constant(self, name: str) -> ConstantDef | None:
        """The module constant a ``%#define`` gives: an integer the file leaves to it."""
        define = self.c_defines[name]
        if name in self.defined_at or any(
            name in imported.model.constants or name in imported.model.types
            for imported in self.imports
        ):
            # rpcb_prot.x repeats its consts as %#defines: only a different value matters.
            own = self._c_lookup(name)
            if own is None or own != self.c_evaluator.value(name):
                self.warnings.append(
                    Diagnostic(
                        "warning",
                        f"'%#define {name} {define.text}' is ignored: the .x defines "
                        f"'{name}' itself" + (f" (= {own})" if own is not None else ""),
                        define.node.pos,
                    )
                )
            return None
        if name in self.external:
            return None  # -D and --constants-from values win, as they do everywhere
        value = self.c_evaluator.value(name)
        if value is None:
            return None  # C only (a type, a string, an expression of C names): no constant
        constant = ConstantDef(name, value, define.node.pos, None, define.text, c_define=True)
        self.constants[name] = constant
        return constant

    # ------------------------------------------------------------------ recursion

    def check_recursion(self) -> None:
        """A type may contain itself only through optional data (or a variable array)."""
        state: dict[str, int] = {}  # 1 visiting, 2 done

        def edges(definition: TypeDefinition) -> list[tuple[str, Position]]:
            decls: list[Declaration] = []
            if isinstance(definition, StructDef):
                decls = definition.fields
            elif isinstance(definition, UnionDef):
                decls = [arm.declaration for arm in definition.arms]
                if definition.default is not None:
                    decls.append(definition.default)
            elif isinstance(definition, TypedefDef):
                decls = [definition.declaration]
            out = []
            for decl in decls:
                if decl.kind in (DeclKind.PLAIN, DeclKind.FIXED_ARRAY) and isinstance(
                    decl.type, NamedType
                ) and decl.type.imported_from is None:
                    out.append((decl.type.name, decl.pos))
            return out

        def visit(name: str, path: list[str]) -> None:
            state[name] = 1
            definition = self.types[name]
            for target, pos in edges(definition):
                if state.get(target) == 1:
                    cycle = path[path.index(target) :] + [target] if target in path else [name, target]
                    self.fail(
                        f"type '{target}' contains itself without optional data "
                        f"({' -> '.join(cycle)}); use '*' to make the recursion optional",
                        pos,
                    )
                elif state.get(target) is None and target in self.types:
                    visit(target, path + [target])
            state[name] = 2

        for name in list(self.types):
            if name not in state:
                visit(name, [name])

    # ------------------------------------------------------------------ driver

    def resolve(self) -> XdrModule:
        self.collect()
        programs: list[ProgramDef] = []
        exported: list[tuple[int, str]] = []  # (index after its Passthrough, name)
        defined_by = {id(d.node): name for name, d in self.c_defines.items()}
        for node in self.spec.definitions:
            if isinstance(node, syn.PassthroughNode):
                self.definitions.append(Passthrough(node.text, node.pos, node.other_views))
                define = defined_by.get(id(node))
                if define is not None:
                    exported.append((len(self.definitions), define))
            elif isinstance(node, syn.ConstNode) and node.value.string is not None:
                self.definitions.append(
                    StringConstantDef(node.name, node.value.string, node.pos, node.doc)
                )
            elif isinstance(node, syn.ConstNode):
                self._evaluate_const(node)
                if node.name in self.constants:
                    self.definitions.append(self.constants[node.name])
            elif isinstance(node, syn.ProgramNode):
                program = self.program(node)
                if program is not None:
                    programs.append(program)
                    self.definitions.append(program)
            elif isinstance(node, syn.TypedefNode) and _self_alias(node):
                continue
            else:
                definition = self.define_type(node)
                if definition is not None and definition not in self.definitions:
                    self.definitions.append(definition)
        self.check_recursion()
        placed = [(index, self._c_define_constant(name)) for index, name in exported]
        for index, constant in reversed(placed):
            if constant is not None:
                self.definitions.insert(index, constant)
        self.check()
        # Top-level definitions keep source order; inline ones were appended when
        # first resolved, which may be after their container: move them before it.
        ordered = _order_nested(self.definitions)
        module = XdrModule(
            source=self.source,
            source_sha256=self.source_sha256,
            definitions=ordered,
            constants=self.constants,
            types=self.types,
            programs=programs,
            procedure_tables=[],
            imports=self.imports,
            external_constants=dict(sorted(self.used_external.items())),
            builtin_constants=rpc_h_constants(self.used_rpc_h),
            inputs=self.inputs,
            warnings=self.warnings,
        )
        module.procedure_tables = build_procedure_tables(module, self.spec, self.warnings)
        return module


def _self_alias(node: syn.TypedefNode) -> bool:
    decl = node.declaration
    return (
        decl.kind is DeclKind.PLAIN
        and isinstance(decl.type, syn.NameSpec)
        and decl.type.keyword is not None
        and decl.type.name == decl.name
    )


def _placeholder_decl(pos: Position) -> Declaration:
    return Declaration(None, DeclKind.VOID, None, None, pos)


def _order_nested(definitions: list[Definition]) -> list[Definition]:
    by_parent: dict[str, list[Definition]] = {}
    top: list[Definition] = []
    for definition in definitions:
        parent = getattr(definition, "nested_in", None)
        if parent:
            by_parent.setdefault(parent, []).append(definition)
        else:
            top.append(definition)
    out: list[Definition] = []

    def emit(definition: Definition) -> None:
        name = getattr(definition, "name", None)
        for child in by_parent.pop(name, []) if isinstance(name, str) else []:
            emit(child)
        out.append(definition)

    for definition in top:
        emit(definition)
    for rest in by_parent.values():
        out.extend(rest)
    return out


def _walk_type_specs(node: object, visit: Callable[[object], None]) -> None:
    """Call ``visit`` on every inline definition nested anywhere in ``node``."""
    decls: list[syn.DeclarationNode] = []
    if isinstance(node, syn.StructNode):
        decls = node.fields
    elif isinstance(node, syn.UnionNode):
        decls = _union_decls(node.body)
    elif isinstance(node, syn.TypedefNode):
        decls = [node.declaration]
    for decl in decls:
        spec = decl.type
        if isinstance(spec, (syn.InlineEnum, syn.InlineStruct, syn.InlineUnion)):
            visit(spec)
            if isinstance(spec, syn.InlineStruct):
                _walk_type_specs(syn.StructNode("", spec.fields, spec.pos), visit)
            elif isinstance(spec, syn.InlineUnion):
                _walk_type_specs(syn.UnionNode("", spec.body, spec.pos), visit)


def _union_decls(body: syn.UnionBody) -> list[syn.DeclarationNode]:
    decls = [body.discriminant] + [case.declaration for case in body.cases]
    if body.default is not None:
        decls.append(body.default)
    return decls


def _inline_enums(node: object) -> list[syn.InlineEnum]:
    found: list[syn.InlineEnum] = []
    _walk_type_specs(node, lambda spec: found.append(spec) if isinstance(spec, syn.InlineEnum) else None)
    return found


def _all_enum_member_lists(node: object) -> list[list[syn.EnumMemberNode]]:
    lists = [e.members for e in _inline_enums(node)]
    if isinstance(node, syn.EnumNode):
        lists.append(node.members)
    return lists
