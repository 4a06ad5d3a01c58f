"""Procedure tables of generated modules: plain data for the RPC runtime."""

from __future__ import annotations

from typing import Any

from xdrgen.runtime.codec import Codec


class ProcedureInfo:
    """One procedure: its number, names, codecs and (libvirt) annotations."""

    __slots__ = (
        "number",
        "name",
        "constant",
        "method_name",
        "args",
        "result",
        "event",
        "generate",
        "priority",
        "acl",
        "aclfilter",
        "readstream",
        "writestream",
        "sparseflag",
        "optargs",
        "deprecated",
        "replaced_by",
    )

    def __init__(
        self,
        number: int,
        name: str,
        constant: str,
        method_name: str,
        args: tuple[Codec[Any], ...] = (),
        result: Codec[Any] | None = None,
        event: Codec[Any] | None = None,
        *,
        generate: str | None = None,
        priority: str | None = None,
        acl: tuple[str, ...] = (),
        aclfilter: tuple[str, ...] = (),
        readstream: int | None = None,
        writestream: int | None = None,
        sparseflag: str | None = None,
        optargs: tuple[tuple[str, int], ...] = (),
        deprecated: bool = False,
        replaced_by: str | None = None,
    ) -> None:
        #: Procedure number on the wire.
        self.number = number
        #: Upper-case name without the program prefix (``CONNECT_OPEN``).
        self.name = name
        #: Constant naming the number (``REMOTE_PROC_CONNECT_OPEN``).
        self.constant = constant
        #: snake_case name for stubs (``connect_open``).
        self.method_name = method_name
        #: Argument codecs in order; empty for void.
        self.args = args
        #: Result codec; None for void.
        self.result = result
        #: libvirt: codec of the ``_msg`` body of an event with this number.
        self.event = event
        self.generate = generate
        self.priority = priority
        #: ``@acl`` rules as written (``domain:read``, ``domain:write:VIR_...``).
        self.acl = acl
        self.aclfilter = aclfilter
        #: 1-based argument index that is a stream read by the client, or None.
        self.readstream = readstream
        self.writestream = writestream
        self.sparseflag = sparseflag
        #: Optional-argument fields and their bits of guestfs's ``optargs_bitmask``.
        self.optargs = optargs
        #: The procedure should no longer be used (``replaced_by`` names the successor).
        self.deprecated = deprecated
        self.replaced_by = replaced_by

    @property
    def arg(self) -> Codec[Any] | None:
        """The single argument codec (libvirt, guestfs), or None for void."""
        if not self.args:
            return None
        if len(self.args) > 1:
            raise ValueError(f"procedure {self.name} takes {len(self.args)} arguments")
        return self.args[0]

    @property
    def stream(self) -> str | None:
        """'read' (daemon to client), 'write' (client to daemon), 'both' or None."""
        if self.readstream is not None:
            return "both" if self.writestream is not None else "read"
        if self.writestream is not None:
            return "write"
        return None

    def __repr__(self) -> str:
        return f"<ProcedureInfo {self.number} {self.name}>"


class ProcedureTable:
    """All procedures of one program version (or libvirt/guestfs procedure enum)."""

    __slots__ = ("name", "style", "program", "version", "procedures", "by_name")

    def __init__(
        self,
        name: str,
        style: str,
        program: int,
        version: int,
        procedures: tuple[ProcedureInfo, ...],
    ) -> None:
        self.name = name
        #: 'oncrpc', 'libvirt' or 'guestfs'.
        self.style = style
        self.program = program
        self.version = version
        #: Procedure number -> info.
        self.procedures: dict[int, ProcedureInfo] = {p.number: p for p in procedures}
        #: Upper-case procedure name -> info.
        self.by_name: dict[str, ProcedureInfo] = {p.name: p for p in procedures}

    def __repr__(self) -> str:
        return f"<ProcedureTable {self.name} program={self.program:#x} version={self.version}>"
