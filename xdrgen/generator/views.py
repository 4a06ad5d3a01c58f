"""Declarations seen through their typedefs: what the marshallers actually handle.

A :class:`View` is a declaration with every typedef expanded down to a primitive,
an enum, a struct, a union, or a length-carrying shape (opaque, string, arrays,
optional data).  Marshallers are generated from views, so a field of type
``remote_nonnull_string`` compiles to the same inline string code as
``string x<REMOTE_STRING_MAX>``.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdrgen.model import (
    DeclKind,
    EnumDef,
    NamedType,
    Primitive,
    PrimitiveType,
    StructDef,
    TypedefDef,
    TypeRef,
    UnionDef,
    UNBOUNDED,
)


@dataclass(frozen=True, eq=False)
class View:
    #: prim, enum, struct, union, fixed_opaque, var_opaque, string, fixed_array,
    #: var_array, optional, void
    kind: str
    primitive: Primitive | None = None
    spelling: str | None = None
    named: NamedType | None = None
    #: Fixed length or maximum (UNBOUNDED for ``<>``).
    size: int = 0
    element: View | None = None

    @property
    def definition(self) -> EnumDef | StructDef | UnionDef:
        assert self.named is not None
        d = self.named.definition
        assert isinstance(d, (EnumDef, StructDef, UnionDef))
        return d

    @property
    def bounded(self) -> bool:
        return self.size != UNBOUNDED


_KIND_BY_DECL = {
    DeclKind.FIXED_OPAQUE: "fixed_opaque",
    DeclKind.VAR_OPAQUE: "var_opaque",
    DeclKind.STRING: "string",
}


def view_of(kind: DeclKind, ref: TypeRef | None, size: int | None) -> View:
    """The view of a declaration ``kind ref name[size]``."""
    if kind is DeclKind.VOID:
        return View("void")
    if kind in _KIND_BY_DECL:
        assert size is not None
        return View(_KIND_BY_DECL[kind], size=size)
    assert ref is not None
    if kind is DeclKind.PLAIN:
        return view_of_type(ref)
    element = view_of_type(ref)
    if kind is DeclKind.OPTIONAL:
        if element.kind == "optional":
            # Optional data of optional data (``T *x`` with ``typedef U *T``): None
            # could not tell "absent" from "present, holding an absent U".  RFC 4506
            # puts ``T *x`` on the wire as ``T x<1>``: it is a list of at most one.
            return View("var_array", size=1, element=element)
        return View("optional", element=element)
    assert size is not None
    return View(
        "fixed_array" if kind is DeclKind.FIXED_ARRAY else "var_array",
        size=size,
        element=element,
    )


#: rpcgen's typedef names for C types narrower than 4 bytes, by the C type they
#: stand for: the marshallers check the C type's range (issue 10, defect D3).
_NARROW_ALIASES = {"u_char": "unsigned char", "u_short": "unsigned short"}


def view_of_type(ref: TypeRef) -> View:
    if isinstance(ref, PrimitiveType):
        spelling = _NARROW_ALIASES.get(ref.spelling or "", ref.spelling)
        return View("prim", primitive=ref.primitive, spelling=spelling)
    definition = ref.definition
    if isinstance(definition, TypedefDef):
        decl = definition.declaration
        return view_of(decl.kind, decl.type, decl.size)
    if isinstance(definition, EnumDef):
        return View("enum", named=ref)
    if isinstance(definition, StructDef):
        return View("struct", named=ref)
    return View("union", named=ref)


def min_size(view: View, _active: frozenset[str] = frozenset()) -> int:
    """Fewest bytes any encoding of ``view`` takes (bounds hostile array lengths)."""
    k = view.kind
    if k == "prim":
        return {
            Primitive.HYPER: 8,
            Primitive.UHYPER: 8,
            Primitive.DOUBLE: 8,
            Primitive.QUADRUPLE: 16,
        }.get(
            view.primitive, 4  # type: ignore[arg-type]
        )
    if k in ("enum", "var_opaque", "string", "var_array", "optional"):
        return 4
    if k == "void":
        return 0
    if k == "fixed_opaque":
        return (view.size + 3) & ~3
    if k == "fixed_array":
        assert view.element is not None
        return view.size * min_size(view.element, _active)
    name = view.definition.name
    if name in _active:
        return 0
    active = _active | {name}
    d = view.definition
    if isinstance(d, StructDef):
        return sum(min_size(view_of(f.kind, f.type, f.size), active) for f in d.fields)
    assert isinstance(d, UnionDef)
    arms = [
        view_of(a.declaration.kind, a.declaration.type, a.declaration.size)
        for a in d.arms
    ]
    if d.default is not None:
        arms.append(view_of(d.default.kind, d.default.type, d.default.size))
    return 4 + min((min_size(a, active) for a in arms), default=0)


def referenced_types(view: View) -> list[NamedType]:
    """Struct/union names a view reaches directly (through arrays and optionals)."""
    while view.element is not None:
        view = view.element
    if view.kind in ("struct", "union") and view.named is not None:
        return [view.named]
    return []


def recursive_types(types: dict[str, StructDef | UnionDef]) -> set[str]:
    """Names of structs/unions that can contain themselves (cycles in the type graph)."""
    graph: dict[str, set[str]] = {}
    for name, d in types.items():
        decls = (
            d.fields
            if isinstance(d, StructDef)
            else [a.declaration for a in d.arms]
            + ([d.default] if d.default is not None else [])
        )
        edges: set[str] = set()
        for decl in decls:
            for ref in referenced_types(view_of(decl.kind, decl.type, decl.size)):
                if ref.imported_from is None:
                    edges.add(ref.name)
        graph[name] = edges
    # Tarjan-free approach: a node is recursive when it reaches itself.
    result: set[str] = set()
    for start in graph:
        stack = list(graph[start])
        seen: set[str] = set()
        while stack:
            node = stack.pop()
            if node == start:
                result.add(start)
                break
            if node in seen:
                continue
            seen.add(node)
            stack.extend(graph.get(node, ()))
    return result
