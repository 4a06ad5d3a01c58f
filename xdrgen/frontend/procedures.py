"""Procedure tables: RFC 5531 programs and libvirt / libguestfs procedure enums, one shape.

libvirt and libguestfs declare procedures as ``enum <p>_procedure`` with members
``<P>_PROC_<NAME>``; the argument, result and event types are found by naming
convention (``<p>_<name>_args``, ``_ret``, ``_msg``; missing means void), and the
program and version numbers are the constants ``<P>_PROGRAM`` and
``<P>_PROTOCOL_VERSION``.
"""

from __future__ import annotations

import re

from xdrgen.diagnostics import Diagnostic
from xdrgen.frontend import syntax as syn
from xdrgen.frontend.annotations import parse_procedure_annotations
from xdrgen.model import (
    EnumDef,
    NamedType,
    Procedure,
    ProcedureTable,
    ProtocolStyle,
    TypeRef,
    XdrModule,
    plain_parameter,
)

_PROCEDURE_ENUM = re.compile(r"^([a-z][a-z0-9_]*)_procedure$")


def build_procedure_tables(
    module: XdrModule, spec: syn.Specification, warnings: list[Diagnostic]
) -> list[ProcedureTable]:
    tables: list[ProcedureTable] = []
    for program in module.programs:
        for version in program.versions:
            tables.append(
                ProcedureTable(
                    style=ProtocolStyle.ONCRPC,
                    name=program.name,
                    program=program.number,
                    version=version.number,
                    procedures=[
                        Procedure(
                            name=proc.name,
                            constant=proc.name,
                            number=proc.number,
                            args=list(proc.args),
                            result=proc.result,
                            event=None,
                            pos=proc.pos,
                            doc=proc.doc,
                        )
                        for proc in version.procedures
                    ],
                    pos=version.pos,
                    version_name=version.name,
                    program_constant=program.name,
                    version_constant=version.name,
                )
            )
    enum_nodes = {n.name: n for n in spec.definitions if isinstance(n, syn.EnumNode)}
    for definition in module.definitions:
        if not isinstance(definition, EnumDef) or definition.nested_in:
            continue
        match = _PROCEDURE_ENUM.match(definition.name)
        if match is None:
            continue
        table = _enum_table(module, definition, match.group(1), enum_nodes, warnings)
        if table is not None:
            tables.append(table)
    return tables


def _enum_table(
    module: XdrModule,
    definition: EnumDef,
    prefix: str,
    enum_nodes: dict[str, syn.EnumNode],
    warnings: list[Diagnostic],
) -> ProcedureTable | None:
    upper = prefix.upper()
    member_prefix = f"{upper}_PROC_"
    if not all(m.name.startswith(member_prefix) for m in definition.members):
        return None
    program_constant = f"{upper}_PROGRAM"
    version_constant = f"{upper}_PROTOCOL_VERSION"
    try:
        program = module.constant_value(program_constant)
        version = module.constant_value(version_constant)
    except KeyError:
        warnings.append(
            Diagnostic(
                "warning",
                f"'enum {definition.name}' looks like a procedure enum, but "
                f"'{program_constant}' or '{version_constant}' is not defined; "
                "no procedure table is generated for it",
                definition.pos,
            )
        )
        return None
    style = ProtocolStyle.GUESTFS if prefix == "guestfs" else ProtocolStyle.LIBVIRT
    node = enum_nodes.get(definition.name)
    raw_docs = {m.name: (m.raw_doc, m.raw_doc_pos) for m in node.members} if node else {}
    procedures: list[Procedure] = []
    for member in definition.members:
        name = member.name[len(member_prefix) :]
        base = f"{prefix}_{name.lower()}"
        args = _lookup(module, f"{base}_args")
        result = _lookup(module, f"{base}_ret")
        raw, raw_pos = raw_docs.get(member.name, (None, None))
        procedures.append(
            Procedure(
                name=name,
                constant=member.name,
                number=member.value,
                args=[plain_parameter(args, member.pos)] if args is not None else [],
                result=plain_parameter(result, member.pos) if result is not None else None,
                event=_lookup(module, f"{base}_msg") if style is ProtocolStyle.LIBVIRT else None,
                pos=member.pos,
                doc=member.doc,
                annotations=parse_procedure_annotations(raw, raw_pos or member.pos, warnings),
            )
        )
    return ProcedureTable(
        style=style,
        name=upper,
        program=program,
        version=version,
        procedures=procedures,
        pos=definition.pos,
        version_name=definition.name,
        program_constant=program_constant,
        version_constant=version_constant,
    )


def _lookup(module: XdrModule, name: str) -> TypeRef | None:
    definition = module.types.get(name)
    if definition is not None:
        return NamedType(name, definition)
    for imported in module.imports:
        found = imported.model.types.get(name)
        if found is not None:
            return NamedType(name, found, imported)
    return None
