"""Types: type references, structs, unions, typedefs and the declarations in them."""

from __future__ import annotations

from xdrgen.diagnostics import Position
from xdrgen.frontend import syntax as syn
from xdrgen.frontend.annotations import is_member_annotation, parse_member_annotations
from xdrgen.frontend.resolution.builtins import (
    DISCRIMINANT_PRIMITIVES,
    INT_RANGES,
    RPCGEN_OPAQUE_TYPES,
    TYPE_KEYWORDS,
    BUILTIN_TYPE_NAMES,
)
from xdrgen.frontend.resolution.constants import ConstantResolver
from xdrgen.frontend.resolution.state import did_you_mean
from xdrgen.frontend.rpclib import LIBRARY_TYPES, library_module
from xdrgen.frontend.rpclib import SOURCE as LIBRARY_SOURCE
from xdrgen.model import (
    UNBOUNDED,
    CaseLabel,
    Declaration,
    DeclKind,
    EnumDef,
    NamedType,
    PrimitiveType,
    StructDef,
    TypedefDef,
    TypeDefinition,
    TypeRef,
    UnionArm,
    UnionDef,
    resolve_typedefs,
)


class TypeResolver(ConstantResolver):
    """Resolves type definitions on demand (memoised; recursion via optional data is fine)."""

    def type_ref(
        self, spec: syn.TypeSpec, parent: str, member: str | None
    ) -> TypeRef | None:
        """The type a declaration in ``parent`` names (an inline body becomes a definition)."""
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
        definition = self.inline_definition(
            name, spec, spec.pos, None, nested_in=parent
        )
        self.types[name] = definition
        self.definitions.append(definition)
        return NamedType(name, definition)

    def inline_definition(
        self,
        name: str,
        spec: syn.InlineEnum | syn.InlineStruct | syn.InlineUnion,
        pos: Position,
        doc: str | None,
        *,
        nested_in: str | None = None,
    ) -> TypeDefinition:
        """The definition an ``enum``/``struct``/``union`` body written in place gives ``name``."""
        if isinstance(spec, syn.InlineEnum):
            return self.enum_def(name, spec.members, pos, doc, nested_in)
        if isinstance(spec, syn.InlineStruct):
            return self.struct(name, spec.fields, pos, doc, None, nested_in=nested_in)
        return self.union(name, spec.body, pos, doc, nested_in=nested_in)

    def named(
        self, name: str, pos: Position, keyword: str | None = None
    ) -> TypeRef | None:
        """A reference to the type called ``name``: own, imported, builtin or library."""
        definition = self.types.get(name)
        if definition is None and name in self.type_nodes:
            definition = self.define_type(self.type_nodes[name])
            if definition is None:
                return None
        if definition is not None:
            if keyword is not None:
                expected = {"struct": StructDef, "union": UnionDef, "enum": EnumDef}[
                    keyword
                ]
                if not isinstance(definition, (expected, TypedefDef)):
                    self.fail(f"'{keyword} {name}' names a different kind of type", pos)
            return NamedType(name, definition)
        for imported in self.imports:
            found = imported.model.types.get(name)
            if found is not None:
                return NamedType(name, found, imported)
        if name in BUILTIN_TYPE_NAMES:
            return PrimitiveType(BUILTIN_TYPE_NAMES[name], name)
        if name in RPCGEN_OPAQUE_TYPES:
            return NamedType(name, self._builtin_opaque(name))
        if name in LIBRARY_TYPES:
            library = next(
                (m for m in self.imports if m.source == LIBRARY_SOURCE), None
            )
            if library is None:
                library = library_module()
                self.imports.append(library)
            return NamedType(name, library.model.types[name], library)
        if name in self.const_nodes or name in self.enum_member_nodes:
            self.fail(f"'{name}' is a constant, not a type", pos)
            return None
        candidates = (
            list(self.type_nodes) + list(BUILTIN_TYPE_NAMES) + list(TYPE_KEYWORDS)
        )
        for imported in self.imports:
            candidates += list(imported.model.types)
        self.fail(f"undefined type '{name}'", pos, *did_you_mean(name, candidates))
        return None

    def _builtin_opaque(self, name: str) -> TypedefDef:
        """Types the RPC library defines in C and rpcgen files use undeclared."""
        existing = self.types.get(name)
        if isinstance(existing, TypedefDef):
            return existing
        kind, size, doc = RPCGEN_OPAQUE_TYPES[name]
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
            definition = self.enum_def(name, node.members, node.pos, node.doc)
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
            self.struct(
                name, node.fields, node.pos, node.doc, node.trailing, into=definition
            )
        elif isinstance(node, syn.UnionNode):
            definition = UnionDef(
                name, placeholder_decl(node.pos), [], None, node.pos, node.doc
            )
            self.types[name] = definition
            self.union(name, node.body, node.pos, node.doc, into=definition)
        else:
            decl_node = node.declaration
            definition = TypedefDef(
                name, placeholder_decl(node.pos), node.pos, node.doc
            )
            self.types[name] = definition
            if isinstance(
                decl_node.type, (syn.InlineStruct, syn.InlineUnion, syn.InlineEnum)
            ) and (decl_node.kind is DeclKind.PLAIN):
                # typedef struct { ... } name;  -> the struct itself carries the name.
                del self.types[name]
                definition = self.inline_definition(
                    name, decl_node.type, node.pos, node.doc
                )
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
        definition = into or UnionDef(
            name, placeholder_decl(pos), [], None, pos, doc, nested_in
        )
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
        elif not (
            isinstance(base, PrimitiveType)
            and base.primitive in DISCRIMINANT_PRIMITIVES
        ):
            shown = (
                base.primitive.value if isinstance(base, PrimitiveType) else base.name
            )
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
            definition.default = self.declaration(
                body.default, name, "union arm", member_name="default"
            )
        return definition

    def _case_value(
        self, label: syn.Value, enum_def: EnumDef | None, base: TypeRef, union: str
    ) -> int | None:
        if enum_def is not None:
            members = {m.name: m.value for m in enum_def.members}
            if label.name is not None:
                if label.name not in members:
                    if (
                        label.name in self.enum_member_nodes
                        or label.name in self.const_nodes
                        or (label.name in self.external)
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
                            *did_you_mean(label.name, members),
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
        low, high = INT_RANGES[base.primitive]
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
            size = self.size_value(node.size, f"'{node.name}'", fixed=True)
            if size is None:
                return None
        elif node.kind in (DeclKind.VAR_ARRAY, DeclKind.VAR_OPAQUE, DeclKind.STRING):
            if node.size is None:
                size = UNBOUNDED
            else:
                size = self.size_value(node.size, f"'{node.name}'", fixed=False)
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

    def size_value(self, value: syn.Value, owner: str, *, fixed: bool) -> int | None:
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


def placeholder_decl(pos: Position) -> Declaration:
    return Declaration(None, DeclKind.VOID, None, None, pos)
