"""Typed clients for guestfs-style procedure tables (libguestfs's daemon protocol).

For every guestfs table the module gets ``<T>Client`` (blocking, on
``xdrgen.runtime.guestfs.sync.GuestfsConnection``) and ``<T>AsyncClient``
(asyncio, on ``xdrgen.runtime.guestfs.aio.AsyncGuestfsConnection``), rendered
from ``templates/guestfs/``.  One method per procedure:

- the ``_args`` fields are parameters; fields an annotation file lists as
  optional arguments become keyword-only parameters (default None = not given)
  that set their bit of ``optargs_bitmask``;
- FileIn procedures (stream "in") take a source, FileOut procedures (stream
  "out") a sink, at the argument position the annotation gives; the asyncio
  client adds ``<method>_iter`` yielding the download block by block;
- a ``_ret`` struct with one field is unwrapped (libguestfs returns that value).

The transports are imported only when a client connects: a module imported
just to marshal loads neither asyncio, threading nor the guestfs runtime.
"""

from __future__ import annotations

import keyword
import textwrap
from dataclasses import dataclass, field

import jinja2

from xdrgen.diagnostics import Diagnostic, XdrgenError
from xdrgen.generator.layout import bracketed, docstring, string_literal
from xdrgen.generator.names import camel, field_name
from xdrgen.generator.stubs import ModuleNames, StubEmitter
from xdrgen.model import (
    DeclKind,
    Declaration,
    EnumDef,
    NamedType,
    Primitive,
    PrimitiveType,
    Procedure,
    Parameter,
    ProcedureTable,
    ProtocolStyle,
    StructDef,
    TypedefDef,
    TypeRef,
    XdrModule,
)

#: Names the client classes define; a procedure method with one of them gets a ``_``.
_RESERVED_METHODS = frozenset({"close", "connect", "connection"})
#: Keyword-only options of the methods; a field with one of these names gets a ``_``.
_OPTIONS = frozenset({"progress", "progress_hint", "cancel", "self", "mask", "args", "ret"})


@dataclass
class Param:
    name: str
    annotation: str
    #: Expression giving the XDR field its value when the caller left it out.
    zero: str | None = None
    bit: int | None = None

    def text(self) -> str:
        if self.bit is None:
            return f"{self.name}: {self.annotation}"
        return f"{self.name}: {self.annotation} | None = None"


@dataclass
class ProcView:
    number: int
    constant: str
    method: str
    #: Positional parameters in call order; the file parameter is one of them.
    params: list[Param]
    optional: list[Param]
    #: Constructor of the ``_args`` struct and the parameters it takes, or None (void).
    args_type: str | None
    args_fields: list[str]
    #: 'in' (FileIn), 'out' (FileOut) or None.
    stream: str | None
    file_param: str | None
    ret_type: str | None
    #: Attribute of a one-field ``_ret`` struct that the method returns.
    ret_field: str | None
    deprecated: tuple[str, str | None] | None
    doc: list[str] = field(default_factory=list)


class GuestfsRenderer(StubEmitter):
    style = ProtocolStyle.GUESTFS
    folder = "guestfs"
    template_name = "g"

    # ------------------------------------------------------------ types

    def type_expr(self, decl: Declaration) -> str:
        return self.renderer.type_expr(decl.kind, decl.type, decl.size)

    def ref_expr(self, ref: NamedType | PrimitiveType) -> str:
        return self.renderer.type_expr(DeclKind.PLAIN, ref, None)

    def codec_expr(self, ref: NamedType | PrimitiveType) -> str:
        return self.renderer.codec_expr(ref)

    def zero(self, decl: Declaration, proc: Procedure) -> str:
        """The value a left-out optional argument is sent as (XDR needs every field)."""
        kind, ref, size = decl.kind, decl.type, decl.size
        for _ in range(64):  # typedef chains
            if kind is DeclKind.PLAIN and isinstance(ref, NamedType) and isinstance(ref.definition, TypedefDef):
                inner = ref.definition.declaration
                kind, ref, size = inner.kind, inner.type, inner.size
            else:
                break
        if kind is DeclKind.STRING:
            return '""'
        if kind is DeclKind.VAR_ARRAY:
            return "[]"
        if kind is DeclKind.VAR_OPAQUE:
            return 'b""'
        if kind is DeclKind.FIXED_OPAQUE:
            return f"bytes({size})"
        if kind is DeclKind.OPTIONAL:
            return "None"
        if kind is DeclKind.PLAIN and isinstance(ref, PrimitiveType):
            if ref.primitive is Primitive.BOOL:
                return "False"
            if ref.primitive in (Primitive.FLOAT, Primitive.DOUBLE, Primitive.QUADRUPLE):
                return "0.0"
            return "0"
        if kind is DeclKind.PLAIN and isinstance(ref, NamedType) and isinstance(ref.definition, EnumDef):
            members = ref.definition.members
            chosen = next((m for m in members if m.value == 0), members[0])
            return f"{self.ref_expr(ref)}.{chosen.name}"
        raise XdrgenError(
            Diagnostic(
                "error",
                f"optional argument '{decl.name}' of '{proc.method_name}' has a type with no empty value "
                "(only scalars, enums, strings, opaques, arrays and optionals can be left out)",
                decl.pos,
            )
        )

    # ------------------------------------------------------------ procedures

    def proc_view(self, table: ProcedureTable, proc: Procedure, prefix: str) -> ProcView:
        ann = proc.annotations
        optional_bits = {o.field: o.bit for o in ann.optargs}
        params: list[Param] = []
        optional: list[Param] = []
        args_type: str | None = None
        args_fields: list[str] = []
        if proc.args:
            ref = plain_type(proc.args[0])
            args_type = self.ref_expr(ref)
            struct = ref.definition if isinstance(ref, NamedType) else None
            if isinstance(struct, StructDef):
                for decl in struct.fields:
                    assert decl.name is not None
                    name = field_name(decl.name)
                    name = name + "_" if name in _OPTIONS else name
                    param = Param(name, self.type_expr(decl))
                    if decl.name in optional_bits:
                        param.bit = optional_bits[decl.name]
                        param.zero = self.zero(decl, proc)
                        optional.append(param)
                    else:
                        params.append(param)
                    args_fields.append(name)
            else:
                params.append(Param("arg", args_type))
                args_fields.append("arg")
        stream = {"write": "in", "read": "out"}.get(ann.stream or "")
        if ann.stream == "both":
            raise XdrgenError(
                Diagnostic("error", f"'{proc.method_name}': guestfs transfers go one way", proc.pos)
            )
        file_param: str | None = None
        if stream is not None:
            file_param = "source" if stream == "in" else "sink"
            taken = {p.name for p in params + optional}
            while file_param in taken:
                file_param += "_"
            position = ann.stream_arg or len(params) + 1
            if position > len(params) + 1:
                raise XdrgenError(
                    Diagnostic(
                        "error",
                        f"'{proc.method_name}': the stream is argument {position}, "
                        f"but the call has only {len(params)} other argument(s)",
                        proc.pos,
                    )
                )
            annotation = "_UploadSource" if stream == "in" else "_DownloadSink"
            params.insert(position - 1, Param(file_param, annotation))
        ret_type: str | None = None
        ret_field: str | None = None
        if proc.result is not None:
            if stream == "out":
                raise XdrgenError(
                    Diagnostic(
                        "error",
                        f"'{proc.method_name}' sends a file after its reply, so it cannot also return a value",
                        proc.pos,
                    )
                )
            result = plain_type(proc.result)
            definition = result.definition if isinstance(result, NamedType) else None
            if isinstance(definition, StructDef) and len(definition.fields) == 1 and definition.fields[0].name:
                only = definition.fields[0]
                ret_field = field_name(str(only.name))
                ret_type = self.type_expr(only)
            else:
                ret_type = self.ref_expr(result)
        method = proc.method_name
        if keyword.iskeyword(method) or method in _RESERVED_METHODS:
            method += "_"
        deprecated = None
        if ann.deprecated is not None:
            deprecated = (ann.deprecated.replacement or "", ann.deprecated.note)
        view = ProcView(
            number=proc.number,
            constant=proc.constant,
            method=method,
            params=params,
            optional=optional,
            args_type=args_type,
            args_fields=args_fields,
            stream=stream,
            file_param=file_param,
            ret_type=ret_type,
            ret_field=ret_field,
            deprecated=deprecated,
        )
        view.doc = self.doc_text(proc, view)
        return view

    def doc_text(self, proc: Procedure, p: ProcView) -> list[str]:
        lines = [f"{p.constant} ({p.number})."]
        if proc.doc:
            lines += ["", *proc.doc.strip().splitlines()]
        if p.stream == "in":
            lines += ["", f"FileIn: ``{p.file_param}`` (bytes, a path, a binary file or an iterable of blocks)",
                      "is sent to the daemon after the call; ``progress_hint`` (its size, for the",
                      "daemon's progress messages) is found for bytes, paths and files."]
        elif p.stream == "out":
            lines += ["", f"FileOut: the daemon's file goes to ``{p.file_param}`` (a path, a bytearray, a binary",
                      "file or a callable); returns the number of bytes received."]
        if p.optional:
            listed = ", ".join(f"{o.name} (bit {o.bit})" for o in p.optional)
            lines += ["", *textwrap.wrap(f"Optional arguments: {listed}.", 76)]
        if p.deprecated is not None:
            instead, note = p.deprecated
            text = f"Deprecated: use {instead}." if instead else "Deprecated."
            lines += ["", text + (f" {note}" if note else "")]
        return lines

    # ------------------------------------------------------------ code shapes

    def signature(self, p: ProcView, aio: bool, *, iterate: bool = False) -> list[str]:
        items = ["self"]
        items += [q.text() for q in p.params if not (iterate and q.name == p.file_param)]
        keyword_only = [q.text() for q in p.optional]
        if p.stream == "in":
            keyword_only.append("progress_hint: int = 0")
        if p.stream is not None:
            keyword_only.append("progress: _Progress | None = None")
            keyword_only.append("cancel: _Cancel | None = None")
        if keyword_only:
            items += ["*", *keyword_only]
        if iterate:
            head, ret = f"def {p.method}_iter(", "_AsyncIterator[memoryview]"
        else:
            head = f"{'async ' if aio else ''}def {p.method}("
            ret = "int" if p.stream == "out" else (p.ret_type or "None")
        if aio and p.stream == "in" and not iterate:
            items = [i.replace("_UploadSource", "_AsyncUploadSource") for i in items]
        return bracketed(4, head, items, f") -> {ret}:", is_def=True)

    def body(self, p: ProcView, prefix: str, aio: bool, *, iterate: bool = False) -> list[str]:
        pad = " " * 8
        lines: list[str] = []
        if p.deprecated is not None:
            instead = string_literal(p.deprecated[0]) if p.deprecated[0] else "None"
            lines.append(f"{pad}_deprecated({string_literal(p.method)}, {instead})")
        if p.optional:
            lines.append(f"{pad}mask = 0")
            for q in p.optional:
                lines += [
                    f"{pad}if {q.name} is None:",
                    f"{pad}    {q.name} = {q.zero}",
                    f"{pad}else:",
                    f"{pad}    mask |= 0x{1 << (q.bit or 0):X}",
                ]
        if p.args_type is not None:
            lines += bracketed(8, f"args = {p.args_type}(", p.args_fields, ")")
        codec = f"{prefix}_A{p.number}" if p.args_type is not None else "None"
        args = "args" if p.args_type is not None else "None"
        ret_codec = f"{prefix}_R{p.number}" if p.ret_type is not None else "None"
        options = []
        if p.optional:
            options.append("optargs_bitmask=mask")
        if p.stream == "in" and not iterate:
            options.append("progress_hint=progress_hint")
        if p.stream is not None:
            options += ["progress=progress", "cancel=cancel"]
        awaiting = "await " if aio else ""
        if iterate:
            items = [str(p.number), codec, args, *options]
            lines += bracketed(8, "return self._conn.download_iter(", items, ")")
        elif p.stream == "out":
            items = [str(p.number), codec, args, str(p.file_param), *options]
            lines += bracketed(8, f"return {awaiting}self._conn.download(", items, ")")
        else:
            verb = "upload" if p.stream == "in" else "call"
            items = [str(p.number), codec, args]
            if p.stream == "in":
                items.append(str(p.file_param))
            items += [ret_codec, *options]
            target = "ret = " if p.ret_type is not None else ""
            lines += bracketed(8, f"{target}{awaiting}self._conn.{verb}(", items, ")")
            if p.ret_type is not None:
                lines.append(f"{pad}return ret.{p.ret_field}" if p.ret_field else f"{pad}return ret")
        return lines

    def method(self, p: ProcView, prefix: str, aio: bool, *, iterate: bool = False) -> str:
        doc = list(p.doc)
        if iterate:
            doc = [f"{p.constant} ({p.number}), yielding the daemon's file block by block.", "",
                   "The call is sent when iteration starts; leaving the loop early cancels",
                   "the transfer once the iterator is closed."]
        lines = self.signature(p, aio, iterate=iterate)
        lines += docstring(8, "\n".join(doc))
        lines += self.body(p, prefix, aio, iterate=iterate)
        return "\n".join(lines)

    # ------------------------------------------------------------ sections

    def table_sections(self, table: ProcedureTable) -> list[str]:
        tname = camel(table.name)
        prefix = f"_{table.name}"
        procs = [self.proc_view(table, p, prefix) for p in table.procedures]
        methods = {p.method for p in procs}
        for p in procs:
            if p.stream == "out" and f"{p.method}_iter" in methods:
                raise XdrgenError(
                    Diagnostic("error", f"'{p.method}_iter' is both a procedure and the iterator of '{p.method}'")
                )
        bindings: list[str] = []
        by_number = {p.number: p for p in table.procedures}
        for p in procs:
            proc = by_number[p.number]
            if p.args_type is not None:
                codec = self.codec_expr(plain_type(proc.args[0]))
                bindings += self.binding(f"{prefix}_A{p.number}", f"_Codec[{p.args_type}]", codec)
            if proc.result is not None:
                result = plain_type(proc.result)
                codec = self.codec_expr(result)
                bindings += self.binding(f"{prefix}_R{p.number}", f"_Codec[{self.ref_expr(result)}]", codec)
        ctx = dict(table=table, tname=tname, prefix=prefix, procs=procs)
        return [
            "\n".join(bindings),
            self.render("client.py.j2", aio=False, **ctx),
            self.render("client.py.j2", aio=True, **ctx),
        ]



def plain_type(param: Parameter) -> TypeRef:
    """The type of a guestfs procedure's argument or result: procedure enums name
    their ``_args`` / ``_ret`` structs, so it is always a plain named type."""
    assert param.kind is DeclKind.PLAIN and param.type is not None, param
    return param.type
