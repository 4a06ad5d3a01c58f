"""Pass 1: what every top-level, inline and program name stands for."""

from __future__ import annotations

from collections.abc import Callable

from xdrgen.frontend import syntax as syn
from xdrgen.frontend.resolution.state import ResolverState
from xdrgen.model import DeclKind


class NameCollector(ResolverState):
    """Fills the name tables from the syntax tree (before any value or type is resolved)."""

    def collect(self) -> None:
        for node in self.spec.definitions:
            if isinstance(node, syn.ConstNode):
                if self.define_name(node.name, node.pos, "constant"):
                    self.const_nodes[node.name] = node
            elif isinstance(node, syn.EnumNode):
                if self.define_name(node.name, node.pos, "type"):
                    self.type_nodes[node.name] = node
                self._collect_members(node.name, node.members)
            elif isinstance(node, (syn.StructNode, syn.UnionNode)):
                if self.define_name(node.name, node.pos, "type"):
                    self.type_nodes[node.name] = node
            elif isinstance(node, syn.TypedefNode):
                decl = node.declaration
                if self_alias(node):
                    continue  # C's 'typedef struct X X;': X already names the type
                if decl.name is None:
                    self.fail("'void' cannot be the body of a typedef", decl.pos)
                elif self.define_name(decl.name, decl.name_pos, "type"):
                    self.type_nodes[decl.name] = node
            elif isinstance(node, syn.ProgramNode):
                if self.define_name(node.name, node.pos, "program"):
                    self.const_nodes_program(node)
        # Inline enums define member constants too; find them anywhere.
        for node in self.spec.definitions:
            for inline in inline_enums(node):
                self._collect_members(None, inline.members)

    def const_nodes_program(self, node: syn.ProgramNode) -> None:
        # Program, version and procedure names are constants in rpcgen's output
        # (#defines), usable anywhere: rpcb_prot.x has 'const X = RPCBPROC_CALLIT;'
        # before its program.
        self.program_numbers.setdefault(node.name, node.number)
        for version in node.versions:
            self.define_name(version.name, version.pos, "version")
            self.program_numbers.setdefault(version.name, version.number)
            for proc in version.procedures:
                if proc.name in self.defined_at and proc.name in self.const_nodes:
                    continue
                # The same procedure name may appear in several versions.
                self.defined_at.setdefault(proc.name, proc.pos)
                self.program_numbers.setdefault(proc.name, proc.number)

    def _collect_members(
        self, enum_name: str | None, members: list[syn.EnumMemberNode]
    ) -> None:
        for member in members:
            if self.define_name(member.name, member.pos, "enum member"):
                self.enum_member_nodes[member.name] = (member, enum_name or "")


def self_alias(node: syn.TypedefNode) -> bool:
    decl = node.declaration
    return (
        decl.kind is DeclKind.PLAIN
        and isinstance(decl.type, syn.NameSpec)
        and decl.type.keyword is not None
        and decl.type.name == decl.name
    )


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


def inline_enums(node: object) -> list[syn.InlineEnum]:
    found: list[syn.InlineEnum] = []
    _walk_type_specs(
        node,
        lambda spec: found.append(spec) if isinstance(spec, syn.InlineEnum) else None,
    )
    return found


def all_enum_member_lists(node: object) -> list[list[syn.EnumMemberNode]]:
    lists = [e.members for e in inline_enums(node)]
    if isinstance(node, syn.EnumNode):
        lists.append(node.members)
    return lists
