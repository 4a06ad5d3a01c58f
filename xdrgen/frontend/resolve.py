"""Syntax tree -> resolved model: bind names, evaluate constants, check sizes and types.

All checks report ``file:line:col`` diagnostics.  Several independent errors are
collected and reported together; an error that makes later checks meaningless
stops resolution.

This module is the entry point (the driver); the layers it stands on are in
``xdrgen.frontend.resolution``.
"""

from __future__ import annotations

from xdrgen.frontend import syntax as syn
from xdrgen.frontend.cdefines import rpc_h_constants
from xdrgen.frontend.procedures import build_procedure_tables
from xdrgen.frontend.resolution.builtins import BUILTIN_CONSTANTS, BUILTIN_TYPE_NAMES
from xdrgen.frontend.resolution.names import self_alias
from xdrgen.frontend.resolution.programs import ProgramResolver
from xdrgen.frontend.resolution.recursion import check_recursion
from xdrgen.model import (
    Definition,
    Passthrough,
    ProgramDef,
    StringConstantDef,
    XdrModule,
)

__all__ = ["BUILTIN_CONSTANTS", "BUILTIN_TYPE_NAMES", "Resolver"]


class Resolver(ProgramResolver):
    """Resolves one parsed specification into an :class:`XdrModule`."""

    def resolve(self) -> XdrModule:
        """Both passes over the definitions, the checks, then the module."""
        self.collect()
        programs: list[ProgramDef] = []
        exported: list[tuple[int, str]] = []  # (index after its Passthrough, name)
        defined_by = {id(d.node): name for name, d in self.c_defines.items()}
        for node in self.spec.definitions:
            if isinstance(node, syn.PassthroughNode):
                self.definitions.append(
                    Passthrough(node.text, node.pos, node.other_views)
                )
                define = defined_by.get(id(node))
                if define is not None:
                    exported.append((len(self.definitions), define))
            elif isinstance(node, syn.ConstNode) and node.value.string is not None:
                self.definitions.append(
                    StringConstantDef(node.name, node.value.string, node.pos, node.doc)
                )
            elif isinstance(node, syn.ConstNode):
                self.evaluate_const(node)
                if node.name in self.constants:
                    self.definitions.append(self.constants[node.name])
            elif isinstance(node, syn.ProgramNode):
                program = self.program(node)
                if program is not None:
                    programs.append(program)
                    self.definitions.append(program)
            elif isinstance(node, syn.TypedefNode) and self_alias(node):
                continue
            else:
                definition = self.define_type(node)
                if definition is not None and definition not in self.definitions:
                    self.definitions.append(definition)
        check_recursion(self.types, self.fail)
        placed = [(index, self.c_define_constant(name)) for index, name in exported]
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
        module.procedure_tables = build_procedure_tables(
            module, self.spec, self.warnings
        )
        return module


def _order_nested(definitions: list[Definition]) -> list[Definition]:
    """Each inline definition just before the definition it is written in."""
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
