"""The resolver's state: name tables, results and diagnostics, shared by every layer."""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Mapping
from pathlib import Path

from xdrgen.diagnostics import Diagnostic, Position, XdrgenError
from xdrgen.frontend import syntax as syn
from xdrgen.frontend.cdefines import c_defines
from xdrgen.model import (
    ConstantDef,
    Definition,
    ImportedModule,
    TypeDefinition,
)


def did_you_mean(name: str, candidates: object) -> tuple[str, ...]:
    """A note naming the closest candidate, if one is close enough."""
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.75)  # type: ignore[call-overload]
    return (f"did you mean '{close[0]}'?",) if close else ()


class ResolverState:
    """What every resolution layer reads and fills."""

    def __init__(
        self,
        spec: syn.Specification,
        *,
        source: Path,
        source_text: bytes,
        external_constants: Mapping[str, int],
        imports: list[ImportedModule],
        inputs: list[Path],
    ) -> None:
        self.spec = spec
        self.source = source
        self.source_sha256 = hashlib.sha256(source_text).hexdigest()
        self.external = external_constants
        self.imports = list(imports)
        self.inputs = inputs
        self.errors: list[Diagnostic] = []
        self.warnings: list[Diagnostic] = []
        # Name tables, filled by NameCollector.collect.
        self.const_nodes: dict[str, syn.ConstNode] = {}
        self.enum_member_nodes: dict[str, tuple[syn.EnumMemberNode, str]] = {}
        self.type_nodes: dict[str, syn.DefinitionNode] = {}
        self.defined_at: dict[str, Position] = {}
        #: Program, version and procedure names: the numbers they stand for.
        self.program_numbers: dict[str, syn.Value] = {}
        # Results.
        self.const_values: dict[str, int] = {}
        self.constants: dict[str, ConstantDef] = {}
        self.enum_values: dict[str, int] = {}  # member name -> value (own enums)
        self.member_enum: dict[str, str] = {}  # member name -> enum name
        self.types: dict[str, TypeDefinition] = {}
        self.used_external: dict[str, int] = {}
        self._evaluating: set[str] = set()
        self.definitions: list[Definition] = []
        #: ``%#define NAME VALUE`` lines (any rpcgen view): C constants rpcgen's C sees.
        self.c_defines = c_defines(
            (n for n in spec.definitions if isinstance(n, syn.PassthroughNode)),
            self.warnings,
        )
        #: Names of <rpc/rpc.h> (RPC_H_CONSTANTS) the file used.
        self.used_rpc_h: dict[str, int] = {}

    # ------------------------------------------------------------------ helpers

    def fail(self, message: str, pos: Position | None, *notes: str) -> None:
        self.errors.append(Diagnostic("error", message, pos, tuple(notes)))

    def warn(self, message: str, pos: Position | None) -> None:
        self.warnings.append(Diagnostic("warning", message, pos))

    def check(self) -> None:
        if self.errors:
            raise XdrgenError(self.errors)

    def define_name(self, name: str, pos: Position, what: str) -> bool:
        previous = self.defined_at.get(name)
        if previous is not None:
            self.fail(
                f"duplicate definition of '{name}'",
                pos,
                f"'{name}' was first defined at {previous}",
            )
            return False
        for imported in self.imports:
            model = imported.model
            if name in model.types or name in model.constants:
                self.fail(
                    f"'{name}' is already defined in imported file {imported.source.name}",
                    pos,
                )
                return False
        self.defined_at[name] = pos
        return True
