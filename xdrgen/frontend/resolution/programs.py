"""Programs, versions and procedures (RFC 5531), and their arguments and results."""

from __future__ import annotations

from xdrgen.diagnostics import Position
from xdrgen.frontend import syntax as syn
from xdrgen.frontend.resolution.types import TypeResolver
from xdrgen.model import (
    UNBOUNDED,
    Declaration,
    DeclKind,
    ProcedureDef,
    ProgramDef,
    TypeRef,
    VersionDef,
)


class ProgramResolver(TypeResolver):
    """Resolves program definitions (their names are constants too)."""

    def program(self, node: syn.ProgramNode) -> ProgramDef | None:
        number = self.value_of(node.number, f"the number of program '{node.name}'")
        versions: list[VersionDef] = []
        seen_versions: dict[int, Position] = {}
        for version in node.versions:
            vnum = self.value_of(
                version.number, f"the number of version '{version.name}'"
            )
            if vnum is None:
                continue
            if vnum in seen_versions:
                self.fail(
                    f"duplicate version number {vnum} in program '{node.name}'",
                    version.number.pos,
                )
            seen_versions[vnum] = version.pos
            procs: list[ProcedureDef] = []
            seen_procs: dict[int, str] = {}
            for proc in version.procedures:
                pnum = self.value_of(
                    proc.number, f"the number of procedure '{proc.name}'"
                )
                if pnum is None:
                    continue
                if pnum in seen_procs:
                    self.fail(
                        f"duplicate procedure number {pnum} in version '{version.name}' "
                        f"('{proc.name}' and '{seen_procs[pnum]}')",
                        proc.number.pos,
                    )
                seen_procs[pnum] = proc.name
                single = len(proc.args) == 1
                args = [
                    self.procedure_param(a, proc.name, f"arg{i + 1}", single=single)
                    for i, a in enumerate(proc.args)
                ]
                result = (
                    self.procedure_param(proc.result, proc.name, "result", single=True)
                    if proc.result
                    else None
                )
                if any(a is None for a in args) or (
                    proc.result is not None and result is None
                ):
                    continue
                procs.append(
                    ProcedureDef(
                        proc.name,
                        pnum,
                        [a for a in args if a is not None],
                        result,
                        proc.pos,
                        proc.doc,
                    )
                )
                self.const_values.setdefault(proc.name, pnum)
            versions.append(
                VersionDef(version.name, vnum, procs, version.pos, version.doc)
            )
            self.const_values[version.name] = vnum
        if number is None:
            return None
        self.const_values[node.name] = number
        return ProgramDef(node.name, number, versions, node.pos, node.doc)

    def procedure_param(
        self, node: syn.DeclarationNode, proc: str, role: str, *, single: bool
    ) -> Declaration | None:
        """A procedure argument or result, as rpcgen puts it on the wire.

        rpcgen takes ``T``, ``T *`` and ``string``/``string<n>`` (never opaque or
        arrays).  A lone argument goes through ``xdr_T`` / ``xdr_wrapstring`` whatever
        the ``*`` or the bound says; with several arguments (rpcgen -N) each is a
        member of a struct, so ``T *`` is optional data and the bound holds.
        """
        type_ref: TypeRef | None = None
        if node.type is not None:
            type_ref = self.type_ref(node.type, proc, role)
            if type_ref is None:
                return None
        what = (
            f"the {role} of procedure '{proc}'"
            if role == "result"
            else (f"argument {role[3:]} of procedure '{proc}'")
        )
        kind, size = node.kind, None
        if kind is DeclKind.STRING:
            size = (
                UNBOUNDED
                if node.size is None
                else self.size_value(node.size, what, fixed=False)
            )
            if size is None:
                return None
            if single and size != UNBOUNDED:
                self.warn(
                    f"the bound <{node.size.text if node.size else ''}> of {what} is not "
                    "checked: rpcgen sends and takes a lone string argument with "
                    "xdr_wrapstring (any length), and so does xdrgen",
                    node.pos,
                )
                size = UNBOUNDED
        elif kind is DeclKind.OPTIONAL and single:
            self.warn(
                f"the '*' of {what} is ignored: rpcgen sends a lone argument as plain "
                "data (optional data needs several arguments, rpcgen -N), and so does xdrgen",
                node.pos,
            )
            kind = DeclKind.PLAIN
        return Declaration(
            node.name,
            kind,
            type_ref,
            size,
            node.pos,
            size_text=node.size.text if node.size is not None else None,
        )
