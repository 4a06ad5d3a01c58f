"""Clients, handler base classes and servers for RFC 5531 ``program`` blocks.

Called by the module renderer after the procedure tables.  For every ONC RPC
table (one program version) it renders, from ``templates/oncrpc/``:

- ``<P><V>Client`` and ``<P><V>AsyncClient`` (``P``: the program name in
  CamelCase, ``V``: the version number), one method per procedure, named after
  it in lower case, taking the arguments positionally (``arg``, or ``arg1``...
  for several, as rpcgen -N does) and returning the decoded result;
- ``<P><V>Handler``: one coroutine per procedure (NULL excepted), and
  ``<P><V>Server``, which serves a handler on TCP and UDP.

Generated modules must stay cheap to import: these sections import nothing
at module level but typing names; the runtime (``xdrgen.runtime.oncrpc``,
asyncio, threading) is bound to ``xdrgen.runtime.lazy`` stand-ins and imported
when a client or a server first uses it.  Codec methods are bound once at import time to short module names
(``_<P>_<V>_A<n>`` argument encoder, ``_AD<n>`` argument decoder, ``_R<n>``
result decoder, ``_RE<n>`` result encoder), so a call costs one encode and one
decode.  The sections are formatted with black (they are small).
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass

import jinja2

from xdrgen.generator.names import camel
from xdrgen.generator.stubs import ModuleNames, StubEmitter
from xdrgen.model import (
    Parameter,
    Procedure,
    ProcedureTable,
    ProtocolStyle,
    XdrModule,
)

#: Names the generated client classes define themselves.
_CLIENT_RESERVED = frozenset(
    {"close", "connection", "connect_tcp", "connect_udp", "connect_unix", "create", "program", "version"}
)
_HANDLER_RESERVED = frozenset({"program", "version"})
#: Names the generated server classes define.
_SERVER_NAMES = frozenset({"handler", "service", "serve", "program", "version"})
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def class_stem(table: ProcedureTable) -> str:
    """``<Program><version>``: the stem of every class of one program version."""
    return f"{camel(table.name)}{table.version}"


@dataclass
class OncProc:
    """What the templates need about one procedure."""

    number: int
    constant: str
    method: str
    #: Python annotations of the arguments, in order (empty: void).
    arg_types: list[str]
    #: Parameter names: ``arg`` or ``arg1``..``argN``.
    params: list[str]
    ret_type: str | None
    #: Procedure 0 taking and returning void: answered by the server itself.
    is_null: bool
    #: Codec expressions (``XDR_TYPES["x"]``), parallel to arg_types; the result's.
    arg_codecs: list[str]
    ret_codec: str | None

    @property
    def signature(self) -> str:
        return ", ".join(f"{p}: {t}" for p, t in zip(self.params, self.arg_types))

    @property
    def call_args(self) -> str:
        return ", ".join(self.params)


class OncRenderer(StubEmitter):
    style = ProtocolStyle.ONCRPC
    folder = "oncrpc"
    template_name = "o"

    def type_expr(self, param: Parameter) -> str:
        """The Python type of a procedure argument or result (a plain type, a
        ``string<n>`` or optional data: see model.Parameter)."""
        return self.renderer.type_expr(param.kind, param.type, param.size)

    def codec_expr(self, param: Parameter) -> str:
        return self.renderer.param_codec_expr(param)

    def proc(self, proc: Procedure) -> OncProc:
        method = proc.method_name
        if keyword.iskeyword(method) or method in _CLIENT_RESERVED or method in _HANDLER_RESERVED:
            method += "_"
        arg_types = [self.type_expr(a) for a in proc.args]
        params = ["arg"] if len(arg_types) == 1 else [f"arg{i}" for i in range(1, len(arg_types) + 1)]
        return OncProc(
            number=proc.number,
            constant=proc.constant,
            method=method,
            arg_types=arg_types,
            params=params,
            ret_type=self.type_expr(proc.result) if proc.result is not None else None,
            is_null=proc.number == 0 and not proc.args and proc.result is None,
            arg_codecs=[self.codec_expr(a) for a in proc.args],
            ret_codec=self.codec_expr(proc.result) if proc.result is not None else None,
        )

    @staticmethod
    def unshadow(procs: list[OncProc]) -> dict[str, str]:
        """Aliases for the type names a method of the generated classes would shadow.

        In a class body an annotation resolves to the class's own attribute
        first: ``def sm_unmon(...) -> sm_stat`` inside a class that also has a
        method ``sm_stat`` names the method.  Such types are written through a
        module-level alias ``_OncT_<name>`` instead (names, builtins alike).
        """
        defined = {p.method for p in procs} | _CLIENT_RESERVED | _SERVER_NAMES
        used = {m for p in procs for t in [*p.arg_types, p.ret_type or ""] for m in _NAME.findall(t)}
        aliases = {name: f"_OncT_{name}" for name in sorted(used & defined)}
        for p in procs:
            p.arg_types = [_NAME.sub(lambda m: aliases.get(m.group(), m.group()), t) for t in p.arg_types]
            if p.ret_type is not None:
                p.ret_type = _NAME.sub(lambda m: aliases.get(m.group(), m.group()), p.ret_type)
        return aliases

    def table_sections(self, table: ProcedureTable) -> list[str]:
        """The codecs, the clients and the handler and server of one program version,
        each formatted by black (the templates leave the line splitting to it)."""
        import black
        from black.mode import TargetVersion

        procs = [self.proc(p) for p in table.procedures]
        ctx = {
            "table": table,
            "stem": class_stem(table),
            "prefix": f"_{table.name}_{table.version}",
            "aliases": self.unshadow(procs),
            "procs": procs,
        }
        # The target version is fixed: black would guess it from this fragment alone.
        mode = black.Mode(target_versions={TargetVersion.PY311})
        texts = [
            self.render("codecs.py.j2", **ctx),
            self.render("client.py.j2", aio=False, **ctx) + "\n\n\n" + self.render("client.py.j2", aio=True, **ctx),
            self.render("server.py.j2", **ctx),
        ]
        return [black.format_str(text, mode=mode).rstrip("\n") for text in texts]


__all__ = ["OncRenderer", "class_stem", "camel"]
