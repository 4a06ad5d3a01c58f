"""Delta debugging for a failing schema: drop what the failure does not need.

``shrink(schema, still_fails)`` tries, in rounds until nothing changes: removing
whole definitions, struct fields, union arms and the default arm, enum members
and stacked case labels, and simplifying declarations to ``int``.  A candidate is
kept when it still names nothing undefined and ``still_fails`` says the failure
is still there.  Each probe builds rpcgen's C and a generated module, so the
number of probes is bounded by ``budget`` (seconds).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from schemafuzz.schema import (
    Arm,
    Decl,
    Definition,
    Enum,
    Ref,
    Schema,
    Struct,
    Typedef,
    Union_,
)

_INT = Ref("int")


def _simpler_decls(decl: Decl) -> Iterator[Decl]:
    if decl.kind != "plain" or decl.ref != _INT:
        if decl.kind != "void" and decl.name is not None:
            yield Decl("plain", decl.name, _INT)
    if decl.kind in ("fixed_array", "var_array", "optional") and decl.ref is not None:
        yield Decl("plain", decl.name, decl.ref)


def _variants(definition: Definition) -> Iterator[Definition]:
    """Smaller versions of one definition, most aggressive first."""
    if isinstance(definition, Struct):
        fields = definition.fields
        for index in range(len(fields)):
            if len(fields) > 1:
                yield Struct(definition.name, fields[:index] + fields[index + 1 :])
        for index, field in enumerate(fields):
            for simpler in _simpler_decls(field):
                yield Struct(
                    definition.name, fields[:index] + (simpler,) + fields[index + 1 :]
                )
    elif isinstance(definition, Union_):
        arms = definition.arms
        if definition.default is not None and arms:
            yield Union_(definition.name, definition.disc, arms, None)
        for index in range(len(arms)):
            if len(arms) > 1:  # rpcgen (and RFC 4506) want at least one case
                yield Union_(
                    definition.name,
                    definition.disc,
                    arms[:index] + arms[index + 1 :],
                    definition.default,
                )
        for index, arm in enumerate(arms):
            if len(arm.labels) > 1:
                fewer = Arm(arm.labels[:1], arm.decl)
                yield Union_(
                    definition.name,
                    definition.disc,
                    arms[:index] + (fewer,) + arms[index + 1 :],
                    definition.default,
                )
            for simpler in _simpler_decls(arm.decl):
                yield Union_(
                    definition.name,
                    definition.disc,
                    arms[:index] + (Arm(arm.labels, simpler),) + arms[index + 1 :],
                    definition.default,
                )
        if definition.default is not None:
            for simpler in _simpler_decls(definition.default):
                yield Union_(definition.name, definition.disc, arms, simpler)
        if definition.disc.ref != _INT:
            yield Union_(definition.name, Decl("plain", definition.disc.name, _INT), arms, definition.default)
    elif isinstance(definition, Enum):
        members = definition.members
        for index in range(len(members)):
            if len(members) > 1:
                yield Enum(definition.name, members[:index] + members[index + 1 :])
    elif isinstance(definition, Typedef):
        for simpler in _simpler_decls(definition.decl):
            yield Typedef(definition.name, simpler)


def shrink(
    schema: Schema,
    still_fails: Callable[[Schema], bool],
    *,
    budget: float = 300.0,
) -> tuple[Schema, int]:
    """The smallest schema found that still fails, and the number of probes run."""
    deadline = time.monotonic() + budget
    probes = 0

    def attempt(candidate: Schema) -> bool:
        nonlocal probes
        if candidate.dangling() or not candidate.type_names():
            return False
        if time.monotonic() > deadline:
            return False
        probes += 1
        return still_fails(candidate)

    changed = True
    while changed and time.monotonic() < deadline:
        changed = False
        # Whole definitions, last first (later ones use earlier ones).
        index = len(schema.definitions) - 1
        while index >= 0:
            candidate = schema.without(index)
            if attempt(candidate):
                schema, changed = candidate, True
            index -= 1
        # Parts of the definitions that are left.
        for index in range(len(schema.definitions)):
            for variant in _variants(schema.definitions[index]):
                candidate = schema.with_definition(index, variant)
                if attempt(candidate):
                    schema, changed = candidate, True
                    break
    return schema, probes
