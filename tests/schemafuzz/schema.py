"""A random schema as data: definitions that render to ``.x`` text.

The fuzzer keeps its own small tree rather than xdrgen's syntax tree, so the
thing under test never builds its own input, and the shrinker can drop
definitions, fields and arms and render again.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Union

_IDENT = re.compile(r"^[A-Za-z_]\w*$")


@dataclass(frozen=True)
class Size:
    """A length or maximum as written: ``12``, ``0x10``, ``S3_MAX``; ``""`` is ``<>``."""

    value: int | None  # None only for ``<>``
    text: str


@dataclass(frozen=True)
class Ref:
    """A type as written in a declaration: ``unsigned hyper``, ``u_char``, ``struct s3_t1``."""

    text: str
    #: The schema definition it names; None for a primitive.
    target: str | None = None


@dataclass(frozen=True)
class Decl:
    #: plain, fixed_array, var_array, optional, fixed_opaque, var_opaque, string, void
    kind: str
    name: str | None
    ref: Ref | None = None
    size: Size | None = None

    def render(self) -> str:
        kind, name, size = self.kind, self.name, self.size
        if kind == "void":
            return "void;"
        bound = size.text if size is not None else ""
        if kind == "fixed_opaque":
            return f"opaque {name}[{bound}];"
        if kind == "var_opaque":
            return f"opaque {name}<{bound}>;"
        if kind == "string":
            return f"string {name}<{bound}>;"
        assert self.ref is not None
        if kind == "plain":
            return f"{self.ref.text} {name};"
        if kind == "optional":
            return f"{self.ref.text} *{name};"
        if kind == "fixed_array":
            return f"{self.ref.text} {name}[{bound}];"
        assert kind == "var_array", kind
        return f"{self.ref.text} {name}<{bound}>;"

    def names_used(self) -> Iterator[str]:
        if self.ref is not None and self.ref.target is not None:
            yield self.ref.target
        if self.size is not None and _IDENT.match(self.size.text):
            yield self.size.text


@dataclass(frozen=True)
class Const:
    name: str
    value: int
    text: str

    def render(self) -> str:
        return f"const {self.name} = {self.text};"

    def names_used(self) -> Iterator[str]:
        if _IDENT.match(self.text):
            yield self.text


@dataclass(frozen=True)
class Member:
    name: str
    value: int
    text: str


@dataclass(frozen=True)
class Enum:
    name: str
    members: tuple[Member, ...]

    def render(self) -> str:
        body = ",\n".join(
            f"    {m.name} = {m.text}" if m.text else f"    {m.name}" for m in self.members
        )
        return f"enum {self.name} {{\n{body}\n}};"

    def names_used(self) -> Iterator[str]:
        for member in self.members:
            if _IDENT.match(member.text):
                yield member.text


@dataclass(frozen=True)
class Struct:
    name: str
    fields: tuple[Decl, ...]

    def render(self) -> str:
        body = "\n".join(f"    {f.render()}" for f in self.fields)
        return f"struct {self.name} {{\n{body}\n}};"

    def names_used(self) -> Iterator[str]:
        for f in self.fields:
            yield from f.names_used()


@dataclass(frozen=True)
class Label:
    value: int
    text: str


@dataclass(frozen=True)
class Arm:
    labels: tuple[Label, ...]
    decl: Decl


@dataclass(frozen=True)
class Union_:
    name: str
    disc: Decl
    arms: tuple[Arm, ...]
    #: None: no default arm; a void Decl: ``default: void;``.
    default: Decl | None

    def render(self) -> str:
        lines = [f"union {self.name} switch ({self.disc.render()[:-1]}) {{"]
        for arm in self.arms:
            lines += [f"case {label.text}:" for label in arm.labels]
            lines.append(f"    {arm.decl.render()}")
        if self.default is not None:
            lines += ["default:", f"    {self.default.render()}"]
        lines.append("};")
        return "\n".join(lines)

    def names_used(self) -> Iterator[str]:
        yield from self.disc.names_used()
        for arm in self.arms:
            yield from arm.decl.names_used()
            for label in arm.labels:
                if _IDENT.match(label.text) and label.text not in ("TRUE", "FALSE"):
                    yield label.text
        if self.default is not None:
            yield from self.default.names_used()


@dataclass(frozen=True)
class Typedef:
    name: str
    decl: Decl

    def render(self) -> str:
        return f"typedef {self.decl.render()}"

    def names_used(self) -> Iterator[str]:
        yield from self.decl.names_used()


@dataclass(frozen=True)
class Param:
    """A procedure argument or result as written: ``int``, ``s3 *p``, ``string nm<8>``."""

    text: str
    #: The schema type it names, if any.
    target: str | None = None
    #: The argument's name, when it has one.
    name: str = ""


@dataclass(frozen=True)
class Procedure:
    name: str
    number: int
    #: Empty: ``void``.
    args: tuple[Param, ...]
    #: None: ``void``.
    result: Param | None

    def render(self) -> str:
        args = ", ".join(a.text for a in self.args) or "void"
        result = self.result.text if self.result is not None else "void"
        return f"        {result} {self.name}({args}) = {self.number};"


@dataclass(frozen=True)
class Version:
    name: str
    number: int
    procedures: tuple[Procedure, ...]


@dataclass(frozen=True)
class Program:
    """An RFC 5531 program (rpcgen -N: procedures may take several arguments)."""

    name: str
    number: int
    versions: tuple[Version, ...]

    def render(self) -> str:
        lines = [f"program {self.name} {{"]
        for version in self.versions:
            lines.append(f"    version {version.name} {{")
            lines += [proc.render() for proc in version.procedures]
            lines.append(f"    }} = {version.number};")
        lines.append(f"}} = {hex(self.number)};")
        return "\n".join(lines)

    def names_used(self) -> Iterator[str]:
        for version in self.versions:
            for proc in version.procedures:
                for param in (*proc.args, proc.result):
                    if param is not None and param.target is not None:
                        yield param.target


Definition = Union[Const, Enum, Struct, Union_, Typedef, Program]


def names_defined(definition: Definition) -> list[str]:
    """Identifiers a definition introduces (its name, an enum's members, a program's
    versions and procedures)."""
    if isinstance(definition, Enum):
        return [definition.name, *(m.name for m in definition.members)]
    if isinstance(definition, Program):
        names = [definition.name]
        for version in definition.versions:
            names += [version.name, *(p.name for p in version.procedures)]
        return names
    return [definition.name]


@dataclass
class Schema:
    """One random schema: its seed, name prefix and definitions in source order."""

    seed: int
    prefix: str
    definitions: list[Definition] = field(default_factory=list)

    def render(self) -> str:
        head = f"/* schemafuzz seed {self.seed} */"
        return "\n\n".join([head, *(d.render() for d in self.definitions)]) + "\n"

    def type_names(self) -> list[str]:
        """Every type the schema defines (what rpcgen writes an xdr_ routine for)."""
        return [
            d.name for d in self.definitions if not isinstance(d, (Const, Program))
        ]

    def without(self, index: int) -> Schema:
        return Schema(
            self.seed,
            self.prefix,
            self.definitions[:index] + self.definitions[index + 1 :],
        )

    def with_definition(self, index: int, definition: Definition) -> Schema:
        definitions = list(self.definitions)
        definitions[index] = definition
        return Schema(self.seed, self.prefix, definitions)

    def dangling(self) -> set[str]:
        """Names used but defined nowhere in the schema (a shrink step went too far)."""
        defined = {"TRUE", "FALSE"}
        for d in self.definitions:
            defined.update(names_defined(d))
        used = {name for d in self.definitions for name in d.names_used()}
        return used - defined


def render_batch(schemas: list[Schema]) -> str:
    """Schemas with disjoint names, one after the other in one ``.x`` file."""
    return "\n".join(schema.render() for schema in schemas)


__all__ = [
    "Arm",
    "Const",
    "Decl",
    "Definition",
    "Enum",
    "Label",
    "Member",
    "Param",
    "Procedure",
    "Program",
    "Ref",
    "Schema",
    "Size",
    "Struct",
    "Typedef",
    "Union_",
    "Version",
    "names_defined",
    "render_batch",
    "replace",
]
