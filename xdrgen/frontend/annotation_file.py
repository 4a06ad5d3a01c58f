"""Procedure-annotation files: facts about a .x kept beside it, in TOML.

Some protocols keep facts their ``.x`` does not say in another place (libguestfs:
which procedures carry a file upload or download, which argument fields are
optional and flagged in the header's bitmask).  An annotation file attaches
them to the procedures and struct fields of a ``.x`` without editing it::

    [procedures.tar_out]
    stream = "out"              # "in" (client to daemon), "out", or "both"
    stream-arg = 2              # the stream is the call's 2nd argument
    optargs = ["compress", "numericowner"]   # bits 0 and 1 of the bitmask
    deprecated-by = "tar_out_opts"

Every key is checked against the model: an unknown procedure, field or key is
an error that names the TOML file, line and column.  The file's annotations
merge with those written in the ``.x`` (libvirt's comments); the same key
with two different values is an error.  docs/annotations.md has the format.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from xdrgen.diagnostics import Diagnostic, Position, XdrgenError, display_path
from xdrgen.frontend.annotations import GENERATE_VALUES, PRIORITY_VALUES, is_flag_name, parse_acl_rule
from xdrgen.frontend.tomlpos import KeyPath, TomlPositions, scan
from xdrgen.model import (
    AclRule,
    DeclKind,
    AllocSpec,
    Declaration,
    Deprecation,
    MemberAnnotations,
    NamedType,
    OptionalArgument,
    Procedure,
    ProcedureAnnotations,
    ProcedureTable,
    ProtocolStyle,
    StructDef,
    XdrModule,
)

_TOP_KEYS = ("procedures", "types")
_PROCEDURE_KEYS = (
    "stream", "stream-arg", "readstream", "writestream", "optargs", "deprecated", "deprecated-by",
    "generate", "priority", "acl", "aclfilter", "sparseflag",
)
_TYPE_KEYS = ("fields",)
_FIELD_KEYS = ("insert", "call-by-reference", "alloc")
_ALLOC_KEYS = ("offset", "type", "count-offset")
_STREAM_VALUES = ("in", "out", "both")
_DECODE_POSITION = re.compile(r"\(at (?:line (\d+), column (\d+)|end of document)\)")
#: Bits of ``optargs_bitmask`` (an unsigned hyper).
_BITMASK_BITS = 64


def apply_annotation_files(module: XdrModule, paths: tuple[Path, ...] | list[Path]) -> None:
    """Merge each file's annotations into ``module`` (in order); record them as inputs.

    Raises XdrgenError with every problem found in a file, each located in it.
    """
    origins: dict[tuple[int, str], str] = {}
    for path in paths:
        document, positions = read_toml(Path(path))
        _Merger(module, document, positions, origins).run()
        module.inputs.append(Path(path))


def read_toml(path: Path) -> tuple[dict[str, Any], TomlPositions]:
    """The parsed document and the positions of its keys; TOML errors are located."""
    shown = display_path(str(path))
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise XdrgenError(Diagnostic("error", f"{shown}: not UTF-8 text (byte offset {exc.start})")) from None
    except OSError as exc:
        raise XdrgenError(Diagnostic("error", f"{shown}: {exc.strerror}")) from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        match = _DECODE_POSITION.search(message)
        pos: Position | None = None
        if match and match.group(1):
            pos = Position(str(path), int(match.group(1)), int(match.group(2)))
        elif match:  # the end of the document: after its last character
            lines = text.split("\n")
            pos = Position(str(path), len(lines), len(lines[-1]) + 1)
        problem = _DECODE_POSITION.sub("", message).strip()
        raise XdrgenError(Diagnostic("error", f"not valid TOML: {problem}", pos)) from None
    return document, scan(text, str(path))


@dataclass
class _Field:
    """One key of a procedure table: its value and where it is."""

    value: Any
    path: KeyPath


class _Merger:
    def __init__(
        self,
        module: XdrModule,
        document: dict[str, Any],
        positions: TomlPositions,
        origins: dict[tuple[int, str], str],
    ) -> None:
        self.module = module
        self.document = document
        self.positions = positions
        self.origins = origins
        self.errors: list[Diagnostic] = []
        self.source_name = module.source.name
        self.procedures: dict[str, list[tuple[ProcedureTable, Procedure]]] = {}
        for table in module.procedure_tables:
            for proc in table.procedures:
                for key in {proc.method_name, proc.name, proc.constant}:
                    self.procedures.setdefault(key, []).append((table, proc))

    def lookup(self, name: str) -> list[tuple[ProcedureTable, Procedure]]:
        """Procedures called ``name`` (method name, NAME or constant), in every table."""
        return self.procedures.get(name) or self.procedures.get(name.lower()) or []

    # --------------------------------------------------------------- errors

    def error(self, message: str, path: KeyPath, *, at_value: bool = False, notes: tuple[str, ...] = ()) -> None:
        pos = self.positions.value(path) if at_value else self.positions.key(path)
        self.errors.append(Diagnostic("error", message, pos, notes))

    def unknown_keys(self, table: dict[str, Any], allowed: tuple[str, ...], path: KeyPath, what: str) -> None:
        for key in table:
            if key not in allowed:
                self.error(
                    f"unknown key '{key}' in {what}",
                    path + (key,),
                    notes=(f"allowed keys: {', '.join(allowed)}",),
                )

    def table(self, value: Any, path: KeyPath, what: str) -> dict[str, Any] | None:
        if isinstance(value, dict):
            return value
        self.error(f"{what} must be a table", path, at_value=True)
        return None

    # ------------------------------------------------------------- document

    def run(self) -> None:
        self.unknown_keys(self.document, _TOP_KEYS, (), "an annotation file")
        procedures = self.table(self.document.get("procedures", {}), ("procedures",), "'procedures'")
        for name, entry in (procedures or {}).items():
            body = self.table(entry, ("procedures", name), f"procedure '{name}'")
            if body is not None:
                self.procedure(name, body)
        types = self.table(self.document.get("types", {}), ("types",), "'types'")
        for name, entry in (types or {}).items():
            body = self.table(entry, ("types", name), f"type '{name}'")
            if body is not None:
                self.struct(name, body)
        if self.errors:
            raise XdrgenError(self.errors)

    # ---------------------------------------------------------- procedures

    def procedure(self, name: str, body: dict[str, Any]) -> None:
        path: KeyPath = ("procedures", name)
        matches = self.lookup(name)
        if not matches:
            close = difflib.get_close_matches(name.lower(), [k for k in self.procedures if k.islower()], n=1)
            notes = (f"did you mean '{close[0]}'?",) if close else ()
            self.error(f"unknown procedure '{name}': {self.source_name} has no procedure of that name", path, notes=notes)
            return
        self.unknown_keys(body, _PROCEDURE_KEYS, path, f"procedure '{name}'")
        keys = {k: _Field(v, path + (k,)) for k, v in body.items() if k in _PROCEDURE_KEYS}
        for table, proc in matches:
            updates = self.procedure_updates(table, proc, keys)
            if updates is not None:
                self.merge_procedure(proc, updates, keys)

    def procedure_updates(
        self, table: ProcedureTable, proc: Procedure, keys: dict[str, _Field]
    ) -> dict[str, tuple[Any, str]] | None:
        """New values of ProcedureAnnotations fields, each with the TOML key that set it."""
        errors = len(self.errors)
        updates: dict[str, tuple[Any, str]] = {}
        struct = _args_struct(proc)
        optargs = self.optargs(proc, struct, keys.get("optargs"))
        if optargs:
            updates["optargs"] = (optargs, "optargs")
        self.stream(table, proc, struct, len(optargs), keys, updates)
        self.deprecation(table, proc, keys, updates)
        for key in ("generate", "priority"):
            if key in keys:
                choices = GENERATE_VALUES if key == "generate" else PRIORITY_VALUES
                value = keys[key].value
                if value not in choices:
                    self.error(f"'{key}' must be one of {', '.join(choices)}", keys[key].path, at_value=True)
                else:
                    updates[key] = (value, key)
        for key in ("acl", "aclfilter"):
            if key in keys:
                rules = self.acl_rules(keys[key])
                if rules is not None:
                    updates[key] = (rules, key)
        if "sparseflag" in keys:
            value = keys["sparseflag"].value
            if not isinstance(value, str) or not is_flag_name(value):
                self.error("'sparseflag' must name a flag (a C identifier)", keys["sparseflag"].path, at_value=True)
            else:
                updates["sparseflag"] = (value, "sparseflag")
        return updates if len(self.errors) == errors else None

    def optargs(
        self, proc: Procedure, struct: StructDef | None, entry: _Field | None
    ) -> tuple[OptionalArgument, ...]:
        if entry is None:
            return ()
        value = entry.value
        if isinstance(value, list):
            items = [(name, bit, entry.path + (bit,)) for bit, name in enumerate(value)]
        elif isinstance(value, dict):
            items = [(name, bit, entry.path + (name,)) for name, bit in value.items()]
        else:
            self.error("'optargs' must be a list of field names (bits 0, 1, ... in order) or a table field = bit",
                       entry.path, at_value=True)
            return ()
        if struct is None:
            self.error(f"procedure '{proc.method_name}' has no argument struct, so no optional arguments",
                       entry.path)
            return ()
        names = [f.name for f in struct.fields]
        seen_bits: dict[int, str] = {}
        seen_fields: set[str] = set()
        result: list[OptionalArgument] = []
        for name, bit, path in items:
            at_value = isinstance(value, list)
            if not isinstance(name, str):
                self.error("an optional argument is named by a string", path, at_value=True)
                continue
            if name not in names:
                close = difflib.get_close_matches(name, [n for n in names if n], n=1)
                self.error(
                    f"unknown field '{name}': {struct.name} has no such field",
                    path,
                    at_value=at_value,
                    notes=(f"did you mean '{close[0]}'?",) if close else (f"fields: {', '.join(n for n in names if n)}",),
                )
                continue
            if isinstance(bit, bool) or not isinstance(bit, int) or not 0 <= bit < _BITMASK_BITS:
                self.error(f"the bit of '{name}' must be an integer from 0 to {_BITMASK_BITS - 1}", path, at_value=True)
                continue
            if name in seen_fields:
                self.error(f"field '{name}' is listed twice", path, at_value=at_value)
                continue
            if bit in seen_bits:
                self.error(f"bit {bit} is already given to '{seen_bits[bit]}'", path, at_value=True)
                continue
            seen_fields.add(name)
            seen_bits[bit] = name
            result.append(OptionalArgument(name, bit))
        return tuple(sorted(result, key=lambda o: o.bit))

    def stream(
        self,
        table: ProcedureTable,
        proc: Procedure,
        struct: StructDef | None,
        optional: int,
        keys: dict[str, _Field],
        updates: dict[str, tuple[Any, str]],
    ) -> None:
        current = proc.annotations
        given = [k for k in ("stream", "readstream", "writestream") if k in keys]
        if "stream" in keys and len(given) > 1:
            self.error("give 'stream' (with 'stream-arg') or libvirt's 'readstream'/'writestream', not both",
                       keys[given[1]].path)
            return
        if "stream-arg" in keys and "stream" not in keys:
            self.error("'stream-arg' needs 'stream'", keys["stream-arg"].path)
            return
        required = (len(struct.fields) - optional) if struct is not None else len(proc.args)
        for key in ("readstream", "writestream"):
            if key in keys:
                number = self.argument_number(keys[key], table, required)
                if number is not None:
                    updates[key] = (number, key)
        if "stream" not in keys:
            return
        direction = keys["stream"].value
        if direction not in _STREAM_VALUES:
            self.error(f"'stream' must be one of {', '.join(_STREAM_VALUES)}", keys["stream"].path, at_value=True)
            return
        if direction == "both" and table.style is ProtocolStyle.GUESTFS:
            self.error("guestfs transfers go one way: 'stream' must be \"in\" or \"out\"", keys["stream"].path,
                       at_value=True)
            return
        wanted = {"in": "write", "out": "read", "both": "both"}[direction]
        if "stream-arg" in keys:
            number = self.argument_number(keys["stream-arg"], table, required)
            if number is None:
                return
        elif current.stream == wanted and current.stream_arg is not None:
            number = current.stream_arg  # the .x already says which argument
        else:
            number = required + 1  # after the other arguments
        if direction in ("out", "both"):
            updates["readstream"] = (number, "stream")
        if direction in ("in", "both"):
            updates["writestream"] = (number, "stream")

    def argument_number(self, entry: _Field, table: ProcedureTable, required: int) -> int | None:
        value = entry.value
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            self.error("expected a 1-based argument number", entry.path, at_value=True)
            return None
        if table.style is ProtocolStyle.GUESTFS and value > required + 1:
            self.error(
                f"argument {value} does not exist: the call has {required} argument(s) besides the stream",
                entry.path,
                at_value=True,
            )
            return None
        return value

    def deprecation(
        self, table: ProcedureTable, proc: Procedure, keys: dict[str, _Field], updates: dict[str, tuple[Any, str]]
    ) -> None:
        note: str | None = None
        replacement: str | None = None
        if "deprecated" in keys:
            value = keys["deprecated"].value
            if value is False:
                return
            if value is not True and not (isinstance(value, str) and value):
                self.error("'deprecated' must be true or a note (a string)", keys["deprecated"].path, at_value=True)
                return
            note = value if isinstance(value, str) else None
        if "deprecated-by" in keys:
            entry = keys["deprecated-by"]
            target = entry.value
            found = [p for t, p in self.lookup(target) if t is table] if isinstance(target, str) else []
            if not found:
                self.error(f"'deprecated-by' must name another procedure of {table.name}", entry.path, at_value=True)
                return
            replacement = found[0].method_name
        if "deprecated" in keys or "deprecated-by" in keys:
            key = "deprecated" if "deprecated" in keys else "deprecated-by"
            updates["deprecated"] = (Deprecation(replacement, note), key)

    def acl_rules(self, entry: _Field) -> tuple[AclRule, ...] | None:
        value = entry.value
        texts = [value] if isinstance(value, str) else value
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            self.error("an ACL is a string or a list of strings", entry.path, at_value=True)
            return None
        rules: list[AclRule] = []
        for index, text in enumerate(texts):
            try:
                rule = parse_acl_rule(text)
            except ValueError as exc:
                where = entry.path + (index,) if isinstance(value, list) else entry.path
                self.error(str(exc), where, at_value=True)
                return None
            if rule is not None:
                rules.append(rule)
        return tuple(rules)

    def merge_procedure(self, proc: Procedure, updates: dict[str, tuple[Any, str]], keys: dict[str, _Field]) -> None:
        current = proc.annotations
        new_values: dict[str, Any] = {}
        for name, (value, key) in updates.items():
            old = getattr(current, name)
            if self.conflicts(proc, name, old, value, keys[key].path):
                return
            new_values[name] = value
        merged = replace(current, **new_values)
        if current.stream is not None and merged.stream != current.stream:
            self.error(
                f"stream direction '{merged.stream}' conflicts with '{current.stream}'",
                keys["stream"].path if "stream" in keys else next(iter(keys.values())).path,
                notes=(f"'{current.stream}' comes from {self.origin(proc, 'readstream', 'writestream')}",),
            )
            return
        for name, (_, key) in updates.items():
            self.origins[(id(proc), name)] = f"{display_path(str(self.positions.file))}:{self.positions.key(keys[key].path).line}"
        proc.annotations = merged

    def origin(self, proc: Procedure, *names: str) -> str:
        for name in names:
            found = self.origins.get((id(proc), name))
            if found is not None:
                return found
        return f"the annotation in {display_path(proc.pos.file)}:{proc.pos.line}"

    def conflicts(self, proc: Procedure, name: str, old: Any, new: Any, path: KeyPath) -> bool:
        default = _PROCEDURE_DEFAULTS[name]
        if old == default or old == new:
            return False
        self.error(
            f"'{path[-1]}' conflicts with what {self.source_name} already says for '{proc.method_name}'",
            path,
            at_value=True,
            notes=(f"{_describe(name, old)} comes from {self.origin(proc, name)}; this file says {_describe(name, new)}",),
        )
        return True

    # --------------------------------------------------------------- types

    def struct(self, name: str, body: dict[str, Any]) -> None:
        path: KeyPath = ("types", name)
        definition = self.module.types.get(name)
        if not isinstance(definition, StructDef):
            what = "is not a struct" if definition is not None else "has no type of that name"
            self.error(f"unknown struct '{name}': {self.source_name} {what}", path)
            return
        self.unknown_keys(body, _TYPE_KEYS, path, f"struct '{name}'")
        field_tables = self.table(body.get("fields", {}), path + ("fields",), "'fields'")
        by_name = {f.name: f for f in definition.fields if f.name}
        for field_name, entry in (field_tables or {}).items():
            field_path = path + ("fields", field_name)
            decl = by_name.get(field_name)
            if decl is None:
                self.error(f"unknown field '{field_name}': {name} has no such field", field_path)
                continue
            values = self.table(entry, field_path, f"field '{field_name}'")
            if values is not None:
                self.field(decl, values, field_path)

    def field(self, decl: Declaration, values: dict[str, Any], path: KeyPath) -> None:
        self.unknown_keys(values, _FIELD_KEYS, path, f"field '{decl.name}'")
        new: dict[str, Any] = {}
        if "insert" in values:
            value = values["insert"]
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                self.error("'insert' must be an argument position (an integer from 0)", path + ("insert",), at_value=True)
            else:
                new["insert"] = value
        if "call-by-reference" in values:
            value = values["call-by-reference"]
            if not isinstance(value, bool):
                self.error("'call-by-reference' must be true or false", path + ("call-by-reference",), at_value=True)
            else:
                new["call_by_reference"] = value
        if "alloc" in values:
            alloc = self.alloc(values["alloc"], path + ("alloc",))
            if alloc is not None:
                new["alloc"] = alloc
        current = decl.annotations
        defaults = MemberAnnotations()
        for name, value in new.items():
            old = getattr(current, name)
            if old != getattr(defaults, name) and old != value:
                key = name.replace("_", "-")
                self.error(
                    f"'{key}' conflicts with the member comment in {self.source_name}",
                    path + (key,),
                    at_value=True,
                    notes=(f"the .x says {old!r} at {display_path(decl.pos.file)}:{decl.pos.line}",),
                )
                return
        decl.annotations = replace(current, **new)

    def alloc(self, value: Any, path: KeyPath) -> AllocSpec | None:
        table = self.table(value, path, "'alloc'")
        if table is None:
            return None
        self.unknown_keys(table, _ALLOC_KEYS, path, "'alloc'")
        offset, ctype, count = table.get("offset"), table.get("type"), table.get("count-offset")
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in (offset, count)) or not (
            isinstance(ctype, str) and ctype
        ):
            self.error("'alloc' needs offset and count-offset (integers from 0) and type (a C type)", path,
                       at_value=True)
            return None
        assert isinstance(offset, int) and isinstance(count, int) and isinstance(ctype, str)
        return AllocSpec(offset, ctype, count)


_PROCEDURE_DEFAULTS: dict[str, Any] = {f.name: getattr(ProcedureAnnotations(), f.name) for f in fields(ProcedureAnnotations)}


def _describe(name: str, value: Any) -> str:
    if name == "optargs":
        return "optargs [" + ", ".join(f"{o.field}={o.bit}" for o in value) + "]"
    if name in ("acl", "aclfilter"):
        return f"{name} {len(value)} rule(s)"
    return f"{name} {value!r}"


def _args_struct(proc: Procedure) -> StructDef | None:
    """The procedure's single argument when it is a struct (libvirt, guestfs)."""
    if len(proc.args) != 1:
        return None
    param = proc.args[0]
    if param.kind is not DeclKind.PLAIN:
        return None
    ref = param.type
    return ref.definition if isinstance(ref, NamedType) and isinstance(ref.definition, StructDef) else None


__all__ = ["apply_annotation_files", "read_toml"]
