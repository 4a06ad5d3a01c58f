"""RPC-library types that XDR cannot describe, as the model sees them.

rpcb_prot.x uses ``struct netbuf`` without defining it: rpcgen's C calls the C
library's ``xdr_netbuf``, whose bound on the opaque part is the ``maxlen`` field
before it.  The model gives such a type a :class:`~xdrgen.model.StructDef` (for
its Python class and annotations) that lives in an :class:`ImportedModule` with
``package="xdrgen.runtime"``: generated code calls the hand-written codec in
:mod:`xdrgen.runtime.rpclib`, as it calls the codecs of a ``--import``'ed module.

(``netobj`` and ``des_block``, which XDR describes exactly, are plain builtin
typedefs: see ``resolution.builtins.RPCGEN_OPAQUE_TYPES``.)
"""

from __future__ import annotations

from pathlib import Path

from xdrgen.diagnostics import Position
from xdrgen.model import (
    UNBOUNDED,
    Declaration,
    DeclKind,
    ImportedModule,
    Primitive,
    PrimitiveType,
    StructDef,
    XdrModule,
)

SOURCE = Path("<rpc library>")
_POS = Position(str(SOURCE), 1, 1)


def _netbuf() -> StructDef:
    return StructDef(
        "netbuf",
        [
            Declaration("maxlen", DeclKind.PLAIN, PrimitiveType(Primitive.UINT), None, _POS),
            # The real bound is 'maxlen' (at most RPC_MAXDATASIZE): the runtime checks it.
            Declaration("buf", DeclKind.VAR_OPAQUE, None, UNBOUNDED, _POS),
        ],
        _POS,
        "A transport address as the RPC library sends it (libtirpc's xdr_netbuf).",
    )


#: Type names the runtime's rpclib module provides.
LIBRARY_TYPES = frozenset({"netbuf"})


def library_module() -> ImportedModule:
    """A fresh model of :mod:`xdrgen.runtime.rpclib` (one per resolved file)."""
    netbuf = _netbuf()
    model = XdrModule(
        source=SOURCE,
        source_sha256="",
        definitions=[netbuf],
        constants={},
        types={"netbuf": netbuf},
        programs=[],
        procedure_tables=[],
    )
    return ImportedModule(SOURCE, "rpclib", model, package="xdrgen.runtime")
