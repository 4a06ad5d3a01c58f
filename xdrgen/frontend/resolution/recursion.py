"""A type may contain itself only through optional data (or a variable array)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from xdrgen.diagnostics import Position
from xdrgen.model import (
    Declaration,
    DeclKind,
    NamedType,
    StructDef,
    TypedefDef,
    TypeDefinition,
    UnionDef,
)


def check_recursion(
    types: Mapping[str, TypeDefinition], fail: Callable[[str, Position], None]
) -> None:
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
            if (
                decl.kind in (DeclKind.PLAIN, DeclKind.FIXED_ARRAY)
                and isinstance(decl.type, NamedType)
                and decl.type.imported_from is None
            ):
                out.append((decl.type.name, decl.pos))
        return out

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        definition = types[name]
        for target, pos in edges(definition):
            if state.get(target) == 1:
                cycle = (
                    path[path.index(target) :] + [target]
                    if target in path
                    else [name, target]
                )
                fail(
                    f"type '{target}' contains itself without optional data "
                    f"({' -> '.join(cycle)}); use '*' to make the recursion optional",
                    pos,
                )
            elif state.get(target) is None and target in types:
                visit(target, path + [target])
        state[name] = 2

    for name in list(types):
        if name not in state:
            visit(name, [name])
