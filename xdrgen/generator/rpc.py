"""Client stubs and server skeletons for libvirt-style procedure tables.

Called by the module renderer after the procedure tables; each returned string
is one top-level section of the generated module.  For every libvirt table it
renders (templates in ``templates/rpc/``):

- ``<T>Client`` and ``<T>AsyncClient`` from one macro (``aio`` switch): one
  method per procedure taking the ``_args`` fields, a ``<method>_with(args)``
  twin taking the args object, ``on_<event>`` callbacks routed by procedure
  number and ``callbackID``; the asyncio flavour adds ``<event>_events()``
  async iterators;
- ``<T>Handler`` (one coroutine per procedure, default: libvirt's
  "unsupported" error), ``<T>StreamCall`` and ``<T>Server`` with a dispatch
  table number -> (handler method, args decoder, ret encoder, stream kind).

Codec references are bound once at import time to short module names
(``_<T>_A<n>`` args encoder, ``_<T>_R<n>`` ret decoder, ...), so a call costs
one object construction, one encode and one decode.  ONC-RPC and guestfs
tables get no stubs here (their transports live elsewhere).
"""

from __future__ import annotations

import keyword
from dataclasses import dataclass, field
from pathlib import Path

import jinja2

from xdrgen.generator.layout import bracketed
from xdrgen.generator.libvirt_api import LibvirtApi, unsupported_answer
from xdrgen.generator.names import camel, field_name
from xdrgen.generator.stubs import ModuleNames, StubEmitter, fit
from xdrgen.generator.views import view_of
from xdrgen.model import (
    DeclKind,
    NamedType,
    Parameter,
    PrimitiveType,
    Procedure,
    ProcedureTable,
    ProtocolStyle,
    StructDef,
    TypedefDef,
    TypeRef,
    XdrModule,
)

#: libvirt's RPC program number for remote_protocol.x (the runtime's default program).
REMOTE_PROGRAM = 0x20008086
#: Names the generated classes define themselves; procedure methods must not take them.
_CLIENT_RESERVED = frozenset({"close", "connection", "connect_unix", "connect_tcp", "bad_events"})
_HANDLER_RESERVED = frozenset({"connection"})
#: Keyword-only options of every client method (fields with these names would clash).
_OPTIONS = ("rpc_timeout", "two_way")


@dataclass
class Param:
    name: str
    annotation: str
    default: str | None = None

    def text(self) -> str:
        if self.default is None:
            return f"{self.name}: {self.annotation}"
        return f"{self.name}: {self.annotation} = {self.default}"


@dataclass
class ProcView:
    """What the templates need to know about one procedure."""

    number: int
    name: str
    constant: str
    method: str
    #: The public API libvirtd names when the function is unsupported, and its error domain.
    api_name: str
    api_domain: int
    #: Class / type expression of the single argument, or None (void).
    args_type: str | None
    #: Parameters taking the argument's fields (a lone ``arg`` for non-structs).
    params: list[Param]
    #: Whether the argument is a struct (then ``params`` are its fields).
    args_struct: bool
    ret_type: str | None
    #: 'read' (server to client), 'write' (client to server) or None.
    stream: str | None
    #: How the client decides the stream is sparse: a Python expression or None.
    sparse_expr: str | None
    #: Sparse streams need a ``sparse`` option because the flag value is unknown.
    sparse_option: bool
    event_type: str | None
    event_has_callback_id: bool
    doc: str
    prefix: str = ""
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def is_event(self) -> bool:
        return self.event_type is not None and self.args_type is None and self.ret_type is None

    @property
    def call_args(self) -> str:
        return ", ".join(p.name for p in self.params)


class RpcRenderer(StubEmitter):
    style = ProtocolStyle.LIBVIRT
    folder = "rpc"
    template_name = "r"

    def __init__(self, env: jinja2.Environment, module: XdrModule, renderer: ModuleNames) -> None:
        super().__init__(env, module, renderer)
        self._header_constants: dict[str, int] | None = None
        self._api: LibvirtApi | None = None
        self._api_loaded = False

    # ------------------------------------------------------------ type helpers

    def type_expr(self, kind: DeclKind, ref: TypeRef | None, size: int | None) -> str:
        return self.renderer.type_expr(kind, ref, size)

    def ref_expr(self, ref: TypeRef) -> str:
        return self.type_expr(DeclKind.PLAIN, ref, None)

    def param_expr(self, param: Parameter) -> str:
        return self.type_expr(param.kind, param.type, param.size)

    def param_codec_expr(self, param: Parameter) -> str:
        return self.renderer.param_codec_expr(param)

    def codec_expr(self, ref: TypeRef) -> str:
        return self.renderer.codec_expr(ref)

    @staticmethod
    def is_optional(kind: DeclKind, ref: TypeRef | None) -> bool:
        """``T *x`` directly or through typedefs (``remote_string``): None is a value.

        Optional data of optional data is a list instead (see ``views.view_of``).
        """
        if kind not in (DeclKind.PLAIN, DeclKind.OPTIONAL) or ref is None:
            return False
        return view_of(kind, ref, None).kind == "optional"

    @staticmethod
    def is_integer(kind: DeclKind, ref: TypeRef | None) -> bool:
        while kind is DeclKind.PLAIN and isinstance(ref, NamedType) and isinstance(ref.definition, TypedefDef):
            kind, ref = ref.definition.declaration.kind, ref.definition.declaration.type
        return kind is DeclKind.PLAIN and isinstance(ref, PrimitiveType) and ref.primitive.value in (
            "int", "unsigned int", "hyper", "unsigned hyper"
        )

    def constant(self, name: str) -> int | None:
        """A constant by name: the .x, the externals it used, then its C headers."""
        try:
            return self.module.constant_value(name)
        except KeyError:
            pass
        if self._header_constants is None:
            self._header_constants = {}
            headers = [p for p in self.module.inputs if Path(p).suffix == ".h"]
            if headers:
                from xdrgen.frontend.cheaders import read_constants

                try:
                    self._header_constants = dict(read_constants(headers).values)
                except Exception:  # a header we cannot read only costs the derived flag
                    self._header_constants = {}
        return self._header_constants.get(name)

    def libvirt_api(self) -> LibvirtApi | None:
        """libvirt's API descriptions given with ``--libvirt-api`` (recorded as inputs), if any."""
        if not self._api_loaded:
            files = [Path(p) for p in self.module.inputs if Path(p).suffix == ".xml"]
            self._api = LibvirtApi.load(files) if files else None
            self._api_loaded = True
        return self._api

    # ------------------------------------------------------------ procedures

    def proc_view(self, table: ProcedureTable, proc: Procedure, prefix: str) -> ProcView:
        params: list[Param] = []
        args_type: str | None = None
        args_struct = False
        flags_param: str | None = None
        if proc.args:
            param = proc.args[0]
            args_type = self.param_expr(param)
            ref = param.type if param.kind is DeclKind.PLAIN else None
            definition = ref.definition if isinstance(ref, NamedType) else None
            if isinstance(definition, StructDef):
                args_struct = True
                for f in definition.fields:
                    assert f.name is not None
                    params.append(Param(field_name(f.name), self.type_expr(f.kind, f.type, f.size)))
                # Trailing flags (0) and optional (None) fields may be left out.
                for p, f in reversed(list(zip(params, definition.fields))):
                    if f.name == "flags" and self.is_integer(f.kind, f.type):
                        p.default = "0"
                        flags_param = p.name
                    elif self.is_optional(f.kind, f.type):
                        p.default = "None"
                    else:
                        break
                if flags_param is None and any(f.name == "flags" for f in definition.fields):
                    flags_param = "flags"
            else:
                params.append(Param("arg", args_type))
        for p in params:
            if p.name in _OPTIONS:
                p.name += "_"
        stream = proc.annotations.stream
        sparse_expr: str | None = None
        sparse_option = False
        if stream is not None and proc.annotations.sparseflag:
            value = self.constant(proc.annotations.sparseflag)
            if value is not None and flags_param is not None:
                sparse_expr = f"bool({flags_param} & {value})"
            else:
                sparse_option = True
        event_type: str | None = None
        has_cid = False
        if proc.event is not None:
            event_type = self.ref_expr(proc.event)
            ev_def = proc.event.definition if isinstance(proc.event, NamedType) else None
            has_cid = isinstance(ev_def, StructDef) and any(
                f.name == "callbackID" and self.is_integer(f.kind, f.type) for f in ev_def.fields
            )
        method = proc.method_name
        if keyword.iskeyword(method) or method in _CLIENT_RESERVED or method in _HANDLER_RESERVED:
            method += "_"
        doc = f"{proc.constant} ({proc.number})."
        unsupported = unsupported_answer(proc.name, self.libvirt_api())
        return ProcView(
            number=proc.number,
            name=proc.name,
            constant=proc.constant,
            method=method,
            api_name=unsupported.name,
            api_domain=unsupported.error_domain,
            args_type=args_type,
            params=params,
            args_struct=args_struct,
            ret_type=self.param_expr(proc.result) if proc.result is not None else None,
            stream=stream,
            sparse_expr=sparse_expr,
            sparse_option=sparse_option,
            event_type=event_type,
            event_has_callback_id=has_cid,
            doc=doc,
            prefix=prefix,
        )

    # ------------------------------------------------------------ code shapes

    def client_signature(self, p: ProcView, aio: bool, *, with_args: bool = False) -> list[str]:
        head = f"{'async ' if aio else ''}def {p.method}{'_with' if with_args else ''}("
        items = ["self"]
        if with_args:
            items.append(f"args: {p.args_type}")
        else:
            items.extend(q.text() for q in p.params)
        items.append("*")
        items.append("rpc_timeout: float | None = None")
        if p.stream is not None:
            items.append("two_way: bool = False")
            if p.sparse_option:
                items.append("sparse: bool = False")
        stream_cls = "_AsyncStream" if aio else "_Stream"
        if p.stream is not None:
            ret = f"tuple[{p.ret_type or 'None'}, {stream_cls}]"
        else:
            ret = p.ret_type or "None"
        return fit(bracketed(4, head, items, f") -> {ret}:", is_def=True), 4)

    def client_body(self, p: ProcView, aio: bool, *, with_args: bool = False) -> list[str]:
        awaiting = "await " if aio else ""
        lines: list[str] = []
        if p.args_type is not None and not with_args:
            # The field-taking method builds the args and hands them to its ``_with`` twin.
            if p.args_struct:
                lines += bracketed(8, f"args = {p.args_type}(", [q.name for q in p.params], ")")
            else:
                lines.append("        args = arg")
            forwarded = ["args", "rpc_timeout=rpc_timeout"]
            if p.stream is not None:
                forwarded.append("two_way=two_way")
                if p.sparse_option:
                    forwarded.append("sparse=sparse")
            return lines + bracketed(8, f"return {awaiting}self.{p.method}_with(", forwarded, ")")
        payload = f"{p.prefix}_A{p.number}(args)" if p.args_type is not None else None
        items = [str(p.number)]
        if payload is not None:
            items.append(payload)
        if p.stream is not None:
            direction = {"read": "RECEIVE", "write": "SEND", "both": "BOTH"}[p.stream]
            items.append(f"direction=_virnet.BOTH if two_way else _virnet.{direction}")
            if p.sparse_expr is not None:
                expr = p.sparse_expr
                if p.args_type is not None:
                    expr = expr.replace("bool(", "bool(args.", 1)
                items.append(f"sparse={expr}")
            elif p.sparse_option:
                items.append("sparse=sparse")
        if p.extra.get("prog"):
            items.append(f"prog={p.extra['prog']}")
        items.append("timeout=rpc_timeout")
        # A reply that does not decode raises PayloadDecodeError (a VirNetError): _virnet.decoded.
        if p.stream is not None:
            lines.extend(bracketed(8, f"ret, stream = {awaiting}self._conn.call_stream(", items, ")"))
            if p.ret_type is not None:
                items = [f"{p.prefix}_R{p.number}", "ret", str(p.number), "stream"]
                lines.extend(bracketed(8, "return _virnet.decoded(", items, "), stream"))
            else:
                lines.append("        return None, stream")
            return lines
        if p.ret_type is not None:
            lines.extend(bracketed(8, f"ret = {awaiting}self._conn.call(", items, ")"))
            lines.append(f"        return _virnet.decoded({p.prefix}_R{p.number}, ret, {p.number})")
        else:
            lines.extend(bracketed(8, f"{awaiting}self._conn.call(", items, ")"))
        return lines

    def handler_signature(self, p: ProcView, tname: str) -> list[str]:
        items = ["self"]
        if p.stream is not None:
            items.append(f"call: {tname}StreamCall[{p.ret_type or 'None'}]")
        if p.args_type is not None:
            items.append(f"args: {p.args_type}")
        ret = "None" if p.stream is not None else (p.ret_type or "None")
        return fit(bracketed(4, f"async def {p.method}(", items, f") -> {ret}:", is_def=True), 4)

    def event_signature(self, p: ProcView) -> list[str]:
        items = ["self", f"handler: _Callable[[{p.event_type}], None]"]
        if p.event_has_callback_id:
            items.append("callback_id: int | None = None")
        return fit(bracketed(4, f"def on_{p.method}(", items, ") -> _Unsubscribe:", is_def=True), 4)

    def events_iter_signature(self, p: ProcView) -> list[str]:
        items = ["self"]
        if p.event_has_callback_id:
            items.append("callback_id: int | None = None")
        tail = f") -> _AsyncIterator[{p.event_type}]:"
        return fit(bracketed(4, f"def {p.method}_events(", items, tail, is_def=True), 4)

    def emit_signature(self, p: ProcView) -> list[str]:
        items = ["self", f"msg: {p.event_type}"]
        return fit(bracketed(4, f"def emit_{p.method}(", items, ") -> None:", is_def=True), 4)

    def dispatch_entry(self, number: int, method: str, dec: str, enc: str, kind: int) -> list[str]:
        return bracketed(4, f"{number}: (", [f'"{method}"', dec, enc, str(kind)], "),", literal=True)

    def line(self, indent: int, text: str) -> str:
        """One statement from the templates, split as black would."""
        return "\n".join(fit([" " * indent + text], indent))

    # ------------------------------------------------------------ sections

    def table_sections(self, table: ProcedureTable) -> list[str]:
        tname = camel(table.name)
        prefix = f"_{table.name}"
        procs = [self.proc_view(table, p, prefix) for p in table.procedures]
        prog_expr = None if table.program == REMOTE_PROGRAM else f"{prefix}_PROGRAM"
        for p in procs:
            if prog_expr is not None:
                p.extra["prog"] = prog_expr
        calls = [p for p in procs if not p.is_event]
        events = [p for p in procs if p.event_type is not None]
        bindings: list[str] = [
            f"{prefix}_PROGRAM = 0x{table.program:X}",
            f"{prefix}_VERSION = {table.version}",
        ]
        by_number = {p.number: p for p in table.procedures}
        for p in procs:
            proc = by_number[p.number]
            if p.args_type is not None:
                codec = self.param_codec_expr(proc.args[0])
                bindings += self.binding(f"{prefix}_A{p.number}", f"_Callable[[{p.args_type}], bytes]", f"{codec}.encode")
                bindings += self.binding(f"{prefix}_AD{p.number}", f"_Callable[[_Buffer], {p.args_type}]", f"{codec}.decode")
            if p.ret_type is not None:
                assert proc.result is not None
                codec = self.param_codec_expr(proc.result)
                bindings += self.binding(f"{prefix}_R{p.number}", f"_Callable[[_Buffer], {p.ret_type}]", f"{codec}.decode")
                bindings += self.binding(f"{prefix}_RE{p.number}", f"_Callable[[{p.ret_type}], bytes]", f"{codec}.encode")
            if p.event_type is not None:
                assert proc.event is not None
                codec = self.codec_expr(proc.event)
                bindings += self.binding(f"{prefix}_M{p.number}", f"_Callable[[_Buffer], {p.event_type}]", f"{codec}.decode")
                bindings += self.binding(f"{prefix}_ME{p.number}", f"_Callable[[{p.event_type}], bytes]", f"{codec}.encode")
        ctx = dict(table=table, tname=tname, prefix=prefix, procs=procs, calls=calls, events=events)
        return [
            "\n".join(bindings),
            self.render("events.py.j2", **ctx),
            self.render("client.py.j2", aio=False, **ctx),
            self.render("client.py.j2", aio=True, **ctx),
            self.render("server.py.j2", **ctx),
        ]
