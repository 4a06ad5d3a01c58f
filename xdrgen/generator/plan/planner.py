"""Resolved model -> marshalling plan: every fusion and inlining decision, made once.

For each type the :class:`Planner` decides, from the declarations seen through
their typedefs (:mod:`xdrgen.generator.views`):

- which structs and unions are inlined where they are used (small,
  non-recursive, defined in this module, at most ``INLINE_MAX_DEPTH`` deep);
- how a struct's fields split into segments: runs of fixed-size fields (at
  most ``RUN_MAX_ITEMS``), string groups (a string or variable opaque and up to
  ``GROUP_MAX_ITEMS`` fixed fields after it), fields marshalled alone, and which
  inlined union's discriminant joins the run or group before it;
- for arrays: whether the elements are plain numbers (one call for all), and
  the decoder's shapes (blank elements made in one C loop, reading the next
  element's length word ahead);
- for union arms: whether the encoder packs the arm with the discriminant;
- which whole-value shortcuts a type gets.

The planner touches no Python names of the generated module: the emitters do
(:mod:`xdrgen.generator.marshal`).
"""

from __future__ import annotations

from xdrgen.generator.names import field_name, union_disc_name
from xdrgen.generator.plan.nodes import (
    Alone,
    Arm,
    Array,
    Bytes,
    Call,
    Field,
    Group,
    ListPlan,
    Node,
    Optional,
    Run,
    Scalar,
    Segment,
    Struct,
    StructPlan,
    TypeName,
    TypePlan,
    Union,
    UnionPlan,
    ValuePlan,
    Void,
)
from xdrgen.generator.views import (
    View,
    min_size,
    recursive_types,
    view_of,
    view_of_type,
)
from xdrgen.model import (
    Declaration,
    EnumDef,
    NamedType,
    Primitive,
    StructDef,
    TypedefDef,
    UnionDef,
    XdrModule,
)

#: Struct fields / union arms beyond which a type is called, not inlined.
INLINE_MAX_ITEMS = 8
#: How deep inlining nests inside one function.
INLINE_MAX_DEPTH = 2
#: Longest fused run (keeps unpack targets on one line).
RUN_MAX_ITEMS = 12
#: Most fixed items fused after a string (keeps the unpack targets on one line).
GROUP_MAX_ITEMS = 8
#: Arrays of "string then fixed fields" structs read each element's length word
#: with the element before it (``Array.decode_lookahead``); tests turn it off to
#: compare with item-by-item decoding.
ARRAY_LOOKAHEAD = True

#: Scalar kinds of arrays packed and unpacked in one call, and their struct code.
#: Not float: its NaNs need the per-item path (their exact bits); not char,
#: short and their unsigned forms: they are range-checked per item.
BULK_CODES = {"int": "i", "uint": "I", "hyper": "q", "uhyper": "Q", "double": "d"}

_SIZED = {
    Primitive.HYPER: ("hyper", 8),
    Primitive.UHYPER: ("uhyper", 8),
    Primitive.FLOAT: ("float", 4),
    Primitive.DOUBLE: ("double", 8),
    Primitive.BOOL: ("bool", 4),
    Primitive.QUADRUPLE: ("quadruple", 16),
}
_NARROW = {
    "char": "char",
    "short": "short",
    "unsigned char": "uchar",
    "unsigned short": "ushort",
}


def type_name(named: NamedType) -> TypeName:
    module = named.imported_from.module_name if named.imported_from else None
    return TypeName(named.name, module)


def scalar_of(view: View) -> Scalar | None:
    """The fixed-size item ``view`` is, or None."""
    if view.kind == "prim":
        p = view.primitive
        if p in (Primitive.INT, Primitive.UINT):
            plain = "int" if p is Primitive.INT else "uint"
            return Scalar(_NARROW.get(view.spelling or "", plain), 4)
        assert p is not None
        kind, size = _SIZED[p]
        return Scalar(kind, size)
    if view.kind == "enum":
        assert view.named is not None
        return Scalar("enum", 4, enum=type_name(view.named))
    if view.kind == "fixed_opaque":
        return Scalar("fixed_opaque", (view.size + 3) & ~3, length=view.size)
    return None


def _declaration_view(decl: Declaration) -> View:
    return view_of(decl.kind, decl.type, decl.size)


class Planner:
    """Plans for the types of one module (``recursive``: its self-containing types)."""

    def __init__(self, recursive: set[str]) -> None:
        self.recursive = recursive
        #: Inlined structs and unions, by (name, depth, fused): plans are immutable,
        #: so every use shares one (libvirt inlines some types hundreds of times).
        self.inlines: dict[tuple[str, int, bool], Struct | Union] = {}

    @classmethod
    def for_module(cls, module: XdrModule) -> Planner:
        aggregates = {
            name: d
            for name, d in module.types.items()
            if isinstance(d, (StructDef, UnionDef))
        }
        return cls(recursive_types(aggregates))

    # ------------------------------------------------------------------ types

    def type_plan(self, d: EnumDef | StructDef | UnionDef | TypedefDef) -> TypePlan:
        named = NamedType(d.name, d)
        name = type_name(named)
        if isinstance(d, StructDef):
            link = self.list_link(d)
            if link is not None:
                return ListPlan(name, self.body(d.fields[:-1], 0), link)
            body = self.body(d.fields, 0)
            return StructPlan(name, body, self.struct_shortcuts(body))
        if isinstance(d, UnionDef):
            return UnionPlan(name, self.union(named, 0, fused=False))
        if isinstance(d, TypedefDef):
            view = _declaration_view(d.declaration)
        else:
            view = view_of_type(named)
        plan = self.value_plan(name, view)
        if isinstance(plan.node, Bytes) and not plan.node.text:
            # No decode shortcut: the generic one already returns the bytes object.
            return ValuePlan(name, plan.node, ("encode",))
        return plan

    def value_plan(self, name: TypeName, view: View) -> ValuePlan:
        """A value of ``view`` marshalled by functions of its own (a typedef's, or a
        procedure parameter's that names no type), as one inlining level."""
        return ValuePlan(name, self.node(view, 1))

    def list_link(self, d: StructDef) -> Field | None:
        """The last field when it is optional data of the struct itself."""
        if not d.fields:
            return None
        last = d.fields[-1]
        view = _declaration_view(last)
        element = view.element
        if (
            view.kind == "optional"
            and element is not None
            and element.kind == "struct"
            and element.named is not None
            and element.named.name == d.name
            and element.named.imported_from is None
        ):
            assert last.name is not None
            node = Optional(Call(type_name(element.named)))
            return Field(last.name, field_name(last.name), node)
        return None

    @staticmethod
    def struct_shortcuts(body: tuple[Segment, ...]) -> tuple[str, ...]:
        """A struct that is one run, or one variable opaque, also gets
        whole-value ``encode``/``decode`` functions."""
        if len(body) != 1:
            return ()
        only = body[0]
        if isinstance(only, Run) and only.union is None:
            return ("encode", "decode")
        if isinstance(only, Alone):
            node = only.field.node
            if isinstance(node, Bytes) and not node.text:
                return ("encode", "decode")
        return ()

    # ------------------------------------------------------------------ values

    def inlinable(self, view: View) -> bool:
        if view.named is None or view.named.imported_from is not None:
            return False
        d = view.definition
        if d.name in self.recursive:
            return False
        if isinstance(d, StructDef):
            return len(d.fields) <= INLINE_MAX_ITEMS
        if isinstance(d, UnionDef):
            return len(d.arms) <= INLINE_MAX_ITEMS
        return False

    def inlined(self, view: View, depth: int) -> bool:
        """Whether struct/union ``view``, used ``depth`` levels deep, is inlined."""
        return depth < INLINE_MAX_DEPTH and self.inlinable(view)

    def node(self, view: View, depth: int) -> Node:
        """How a value of ``view`` is marshalled, ``depth`` inlinings deep."""
        scalar = scalar_of(view)
        if scalar is not None:
            return scalar
        k = view.kind
        if k == "void":
            return Void()
        if k in ("string", "var_opaque"):
            return Bytes(k == "string", view.size if view.bounded else None)
        if k == "optional":
            assert view.element is not None
            return Optional(self.node(view.element, depth))
        if k in ("fixed_array", "var_array"):
            return self.array(view, depth)
        assert view.named is not None
        if not self.inlined(view, depth):
            return Call(type_name(view.named))
        return self.inline(view.named, depth + 1, fused=False)

    def inline(self, named: NamedType, depth: int, *, fused: bool) -> Struct | Union:
        """Struct or union ``named`` inlined, its contents ``depth`` deep."""
        key = (named.name, depth, fused)
        plan = self.inlines.get(key)
        if plan is None:
            d = named.definition
            if isinstance(d, StructDef):
                plan = Struct(type_name(named), self.body(d.fields, depth))
            else:
                plan = self.union(named, depth, fused=fused)
            self.inlines[key] = plan
        return plan

    def array(self, view: View, depth: int) -> Array:
        assert view.element is not None
        variable = view.kind == "var_array"
        element = self.node(view.element, depth)
        least = min_size(view.element)
        bulk = BULK_CODES.get(element.kind) if isinstance(element, Scalar) else None
        # Blank elements in one C loop need the count checked against the bytes
        # left first (``least``), so no more objects than the input could hold.
        prebuilt = variable and least > 0 and isinstance(element, Struct)
        lookahead = False
        if prebuilt and ARRAY_LOOKAHEAD:
            assert isinstance(element, Struct)
            body = element.body
            lookahead = (
                len(body) == 1
                and isinstance(body[0], Group)
                and body[0].union is None
                and 0 < len(body[0].tail) < GROUP_MAX_ITEMS
            )
        return Array(
            element,
            variable,
            view.size if view.bounded or not variable else None,
            least,
            bulk,
            prebuilt,
            lookahead,
        )

    # ------------------------------------------------------------------ structs

    def field(self, decl: Declaration, depth: int) -> Field:
        assert decl.name is not None
        node = self.node(_declaration_view(decl), depth)
        return Field(decl.name, field_name(decl.name), node)

    def fused_union(self, decl: Declaration, depth: int) -> Field | None:
        """The union field ``decl`` as an inlined union whose discriminant can
        join the run or group before it, or None."""
        view = _declaration_view(decl)
        if view.kind != "union" or not self.inlined(view, depth):
            return None
        assert view.named is not None and decl.name is not None
        union = self.inline(view.named, depth + 1, fused=True)
        return Field(decl.name, field_name(decl.name), union)

    def body(self, fields: list[Declaration], depth: int) -> tuple[Segment, ...]:
        """A struct's fields (``depth`` inlinings deep) in segments."""
        planned = [self.field(f, depth) for f in fields]
        segments: list[Segment] = []
        run: list[Field] = []

        def fixed_after(start: int) -> list[Field]:
            """The fixed-size fields from ``start`` that can join a group."""
            out: list[Field] = []
            for f in planned[start:]:
                if not isinstance(f.node, Scalar) or len(out) >= GROUP_MAX_ITEMS:
                    break
                out.append(f)
            return out

        i = 0
        while i < len(fields):
            field = planned[i]
            if isinstance(field.node, Scalar):
                run.append(field)
                if len(run) >= RUN_MAX_ITEMS:
                    segments.append(Run(tuple(run)))
                    run = []
                i += 1
                continue
            union = self.fused_union(fields[i], depth)
            if union is not None:
                # The run (maybe empty) packs with the discriminant.
                segments.append(Run(tuple(run), union))
                run = []
                i += 1
                continue
            if run:
                segments.append(Run(tuple(run)))
                run = []
            if isinstance(field.node, Bytes):
                tail = fixed_after(i + 1)
                after = i + 1 + len(tail)
                if after < len(fields) and len(tail) < GROUP_MAX_ITEMS:
                    union = self.fused_union(fields[after], depth)
                if tail or union is not None:
                    apart = not field.node.text
                    segments.append(Group(field, tuple(tail), union, apart))
                    i = after + (union is not None)
                    continue
            segments.append(Alone(field))
            i += 1
        if run:
            segments.append(Run(tuple(run)))
        return tuple(segments)

    # ------------------------------------------------------------------ unions

    def union(self, named: NamedType, depth: int, *, fused: bool) -> Union:
        """Union ``named`` with its arms ``depth`` inlinings deep; ``fused``: its
        discriminant packs with the fields before it."""
        d = named.definition
        assert isinstance(d, UnionDef)
        disc = d.discriminant
        disc_node = scalar_of(_declaration_view(disc))
        assert disc_node is not None and disc.name is not None
        discriminant = Field(disc.name, union_disc_name(disc.name), disc_node)

        def arm(labels: tuple[int, ...], decl: Declaration) -> Arm:
            node = self.node(_declaration_view(decl), depth)
            # The encoder knows the arm before it writes the discriminant; a
            # default arm's discriminant is packed with its own check unless the
            # union is fused (then its run checks it).
            together = isinstance(node, Scalar) and (bool(labels) or fused)
            return Arm(labels, Field(decl.name or "", "value", node), together)

        arms = tuple(
            arm(tuple(label.value for label in a.labels), a.declaration) for a in d.arms
        )
        default = arm((), d.default) if d.default is not None else None
        return Union(type_name(named), discriminant, arms, default)


def plan_module(module: XdrModule) -> dict[str, TypePlan]:
    """The plan of every type of ``module``, by .x name, in definition order."""
    planner = Planner.for_module(module)
    return {
        name: planner.type_plan(d)
        for name, d in module.types.items()
        if isinstance(d, (EnumDef, StructDef, UnionDef, TypedefDef))
    }


def plan_value(view: View) -> Node:
    """``view`` as a node without inlining (enough to name its Python type)."""
    return Planner(set()).node(view, INLINE_MAX_DEPTH)
