"""Which constructs a set of schemas contains, against a checklist.

The CI test asserts that its fixed seeds draw everything on ``CHECKLIST``, so a
change to the generator cannot quietly stop testing a construct.
"""

from __future__ import annotations

import builtins
import keyword
from collections import Counter

from schemafuzz.generate import PRIMITIVES, PROCEDURE_NAME_POOL
from schemafuzz.schema import (
    Decl,
    Definition,
    Enum,
    Program,
    Schema,
    Struct,
    Typedef,
    Union_,
)

#: Shapes a declaration can have, as the checklist names them.
SHAPES = ("prim", "enum", "struct", "union", "fixed_array", "var_array", "optional",
          "fixed_opaque", "var_opaque", "string")
#: What follows a string or opaque in a struct (the encoder fuses them).
FOLLOWERS = ("prim", "enum", "struct", "union", "fixed_array", "var_array", "optional")


def _checklist() -> frozenset[str]:
    items: set[str] = set()
    for shape in SHAPES:
        for position in ("first", "middle", "last", "only"):
            items.add(f"field {shape} {position}")
        items.add(f"arm {shape}")
        items.add(f"typedef {shape}")
    for lead in ("string", "var_opaque", "fixed_opaque"):
        for follower in FOLLOWERS:
            items.add(f"{lead} then {follower}")
    for spelling in PRIMITIVES:
        for kind in ("plain", "fixed_array", "var_array", "optional"):
            items.add(f"{kind} of {spelling}")
    for kind in ("fixed_array", "var_array", "optional"):
        for target in ("enum", "struct", "union", "typedef"):
            items.add(f"{kind} of {target}")
    for disc in ("int", "uint", "bool", "enum", "typedef"):
        items.add(f"switch on {disc}")
    items |= {
        "stacked labels", "void arm", "no default", "default void", "default arm",
        "negative label", "label above 2^31", "constant label",
        "typedef chain", "self-recursive optional", "tree", "mutual recursion",
        "bound <>", "bound 2^32-1", "bound <0>", "length [0]", "constant bound",
        "struct keyword reference",
        "enum keyword reference", "negative enum value", "implicit enum value",
        "enum alias", "hex literal", "octal literal",
        "keyword type name", "builtin type name", "keyword field name",
        "builtin field name", "field named like a type", "keyword enum member",
        "long struct", "struct in union arm", "union in struct",
        "array of union", "optional union",
        # Paths of the marshallers (xdrgen/generator/marshal.py): iterative linked
        # lists, look-ahead decoding of arrays of string-led structs, inlining depth.
        "linked list", "array of string-led struct", "nested 3 deep",
        # Program blocks (rpcgen -N): the ONC RPC stubs and procedure tables.
        "program", "two versions", "void procedure", "multi-argument procedure",
        "string argument", "optional argument", "named argument", "string result",
        "procedure named like a client method",
    }
    return frozenset(items)


CHECKLIST = _checklist()
_BUILTIN_NAMES = frozenset(dir(builtins))


class Coverage:
    def __init__(self) -> None:
        self.seen: Counter[str] = Counter()

    def missing(self) -> list[str]:
        return sorted(CHECKLIST - set(self.seen))

    def add(self, schema: Schema) -> None:
        defs = {d.name: d for d in schema.definitions}
        for d in schema.definitions:
            self._definition(d, defs)

    # -- helpers ---------------------------------------------------------------

    def _shape(self, decl: Decl, defs: dict[str, Definition]) -> str:
        """The checklist shape of a declaration (typedefs of plain types seen through)."""
        if decl.kind != "plain":
            return decl.kind
        return self._target_kind(decl, defs, through_typedefs=True)

    def _target_kind(
        self, decl: Decl, defs: dict[str, Definition], *, through_typedefs: bool
    ) -> str:
        ref = decl.ref
        assert ref is not None
        seen: set[str] = set()
        while ref.target is not None and ref.target not in seen:
            seen.add(ref.target)
            target = defs.get(ref.target)
            if isinstance(target, Enum):
                return "enum"
            if isinstance(target, Struct):
                return "struct"
            if isinstance(target, Union_):
                return "union"
            if isinstance(target, Typedef):
                if not through_typedefs:
                    return "typedef"
                if target.decl.kind != "plain":
                    return target.decl.kind
                assert target.decl.ref is not None
                ref = target.decl.ref
                continue
            return "struct"  # a forward reference to a pending struct
        return "prim"

    def _decl(self, decl: Decl, defs: dict[str, Definition], owner: str) -> None:
        see = self.seen
        if decl.kind == "void":
            return
        if decl.ref is not None:
            spelling = decl.ref.text
            if decl.ref.target is None:
                see[f"{decl.kind} of {spelling}"] += 1
            else:
                if decl.kind != "plain":
                    kind = self._target_kind(decl, defs, through_typedefs=False)
                    see[f"{decl.kind} of {kind}"] += 1
                if spelling.startswith("struct "):
                    see["struct keyword reference"] += 1
                if spelling.startswith("enum "):
                    see["enum keyword reference"] += 1
                if decl.kind == "optional" and decl.ref.target == owner:
                    see["self-recursive optional"] += 1
                order = list(defs)
                if (
                    decl.kind == "optional"
                    and owner in defs
                    and decl.ref.target in defs
                    and order.index(decl.ref.target) > order.index(owner)
                ):
                    see["mutual recursion"] += 1  # a struct defined later
        if decl.size is not None:
            text = decl.size.text
            if text == "":
                see["bound <>"] += 1
            elif decl.size.value == 2**32 - 1:
                see["bound 2^32-1"] += 1
            elif decl.size.value == 0:
                fixed = decl.kind in ("fixed_array", "fixed_opaque")
                see["length [0]" if fixed else "bound <0>"] += 1
            if text[:1].isalpha() or text[:1] == "_":
                see["constant bound"] += 1
            self._literal(text)
        if decl.name is not None:
            if keyword.iskeyword(decl.name):
                see["keyword field name"] += 1
            elif decl.name in _BUILTIN_NAMES:
                see["builtin field name"] += 1
            if decl.name in defs:
                see["field named like a type"] += 1

    def _depth(self, d: Definition, defs: dict[str, Definition], seen: frozenset[str]) -> int:
        """How many structs/unions deep a definition nests through plain fields and arms."""
        if d.name in seen or not isinstance(d, (Struct, Union_)):
            return 0
        decls = d.fields if isinstance(d, Struct) else tuple(a.decl for a in d.arms)
        inner = [
            self._depth(defs[decl.ref.target], defs, seen | {d.name})
            for decl in decls
            if decl.kind == "plain" and decl.ref is not None and decl.ref.target in defs
        ]
        return 1 + max(inner, default=0)

    def _literal(self, text: str) -> None:
        if text.startswith(("0x", "-0x")):
            self.seen["hex literal"] += 1
        elif len(text) > 1 and text.startswith("0") and text.isdigit():
            self.seen["octal literal"] += 1

    def _type_name(self, name: str) -> None:
        if keyword.iskeyword(name):
            self.seen["keyword type name"] += 1
        elif name in _BUILTIN_NAMES:
            self.seen["builtin type name"] += 1

    def _definition(self, d: Definition, defs: dict[str, Definition]) -> None:
        see = self.seen
        if isinstance(d, Struct):
            self._type_name(d.name)
            count = len(d.fields)
            if count > 8:
                see["long struct"] += 1
            for index, decl in enumerate(d.fields):
                shape = self._shape(decl, defs)
                if count == 1:
                    position = "only"
                elif index == 0:
                    position = "first"
                elif index == count - 1:
                    position = "last"
                else:
                    position = "middle"
                see[f"field {shape} {position}"] += 1
                if shape == "union":
                    see["union in struct"] += 1
                self._decl(decl, defs, d.name)
                if index + 1 < count and shape in ("string", "var_opaque", "fixed_opaque"):
                    follower = self._shape(d.fields[index + 1], defs)
                    see[f"{shape} then {follower}"] += 1
                if shape in ("var_array", "fixed_array") and decl.ref is not None:
                    if self._target_kind(decl, defs, through_typedefs=True) == "union":
                        see["array of union"] += 1
                if shape == "optional" and decl.ref is not None:
                    if self._target_kind(decl, defs, through_typedefs=True) == "union":
                        see["optional union"] += 1
            selfrefs = [
                f for f in d.fields if f.kind == "optional" and f.ref is not None
                and f.ref.target == d.name
            ]
            if len(selfrefs) >= 2:
                see["tree"] += 1
            if d.fields[-1] in selfrefs:
                see["linked list"] += 1
            for decl in d.fields:
                if decl.kind == "var_array" and decl.ref is not None:
                    element = defs.get(decl.ref.target or "")
                    if isinstance(element, Struct) and element.fields[0].kind == "string":
                        see["array of string-led struct"] += 1
            if self._depth(d, defs, frozenset()) >= 3:
                see["nested 3 deep"] += 1
        elif isinstance(d, Union_):
            self._type_name(d.name)
            disc = d.disc
            assert disc.ref is not None
            if disc.ref.target is None:
                kind = {"int": "int", "bool": "bool"}.get(disc.ref.text, "uint")
            else:
                target = defs.get(disc.ref.target)
                kind = "enum" if isinstance(target, Enum) else "typedef"
            see[f"switch on {kind}"] += 1
            see["no default" if d.default is None else (
                "default void" if d.default.kind == "void" else "default arm")] += 1
            for arm in d.arms:
                if len(arm.labels) > 1:
                    see["stacked labels"] += 1
                if arm.decl.kind == "void":
                    see["void arm"] += 1
                else:
                    shape = self._shape(arm.decl, defs)
                    see[f"arm {shape}"] += 1
                    if shape == "struct":
                        see["struct in union arm"] += 1
                for label in arm.labels:
                    if label.value < 0:
                        see["negative label"] += 1
                    if label.value >= 2**31:
                        see["label above 2^31"] += 1
                    if label.text[:1].isalpha() and label.text not in ("TRUE", "FALSE"):
                        see["constant label"] += 1
                    self._literal(label.text)
                self._decl(arm.decl, defs, d.name)
            if d.default is not None:
                if d.default.kind != "void":
                    see[f"arm {self._shape(d.default, defs)}"] += 1
                self._decl(d.default, defs, d.name)
        elif isinstance(d, Typedef):
            self._type_name(d.name)
            see[f"typedef {self._shape(d.decl, defs)}"] += 1
            if d.decl.ref is not None and isinstance(defs.get(d.decl.ref.target or ""), Typedef):
                see["typedef chain"] += 1
            self._decl(d.decl, defs, d.name)
        elif isinstance(d, Program):
            see["program"] += 1
            if len(d.versions) > 1:
                see["two versions"] += 1
            for version in d.versions:
                for proc in version.procedures:
                    if not proc.args and proc.result is None:
                        see["void procedure"] += 1
                    if len(proc.args) > 1:
                        see["multi-argument procedure"] += 1
                    if proc.name in PROCEDURE_NAME_POOL:
                        see["procedure named like a client method"] += 1
                    if proc.result is not None and proc.result.text == "string":
                        see["string result"] += 1
                    for arg in proc.args:
                        if arg.text.startswith("string"):
                            see["string argument"] += 1
                        elif "*" in arg.text:
                            see["optional argument"] += 1
                        if arg.name:
                            see["named argument"] += 1
        elif isinstance(d, Enum):
            self._type_name(d.name)
            for member in d.members:
                if member.value < 0:
                    see["negative enum value"] += 1
                if member.text == "":
                    see["implicit enum value"] += 1
                elif member.text[:1].isalpha() or member.text[:1] == "_":
                    see["enum alias"] += 1
                if keyword.iskeyword(member.name):
                    see["keyword enum member"] += 1
                self._literal(member.text)
