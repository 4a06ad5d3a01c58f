"""Names the RPC library and rpcgen give every .x file without a definition in it."""

from __future__ import annotations

from xdrgen.model import DeclKind, Primitive

#: rpcgen's extra type names (used undeclared by real files), unless the file defines them.
BUILTIN_TYPE_NAMES: dict[str, Primitive] = {
    "int32_t": Primitive.INT,
    "uint32_t": Primitive.UINT,
    "int64_t": Primitive.HYPER,
    "uint64_t": Primitive.UHYPER,
    "u_int": Primitive.UINT,
    "u_long": Primitive.UINT,
    "u_short": Primitive.UINT,
    "u_char": Primitive.UINT,
    "bool_t": Primitive.BOOL,
    "quad_t": Primitive.HYPER,
    "u_quad_t": Primitive.UHYPER,
    "u_int32_t": Primitive.UINT,
    "u_int64_t": Primitive.UHYPER,
    # libtirpc's rpc/types.h (u_int32_t); its own rpcb_prot.x uses them undeclared.
    "rpcprog_t": Primitive.UINT,
    "rpcvers_t": Primitive.UINT,
    "rpcproc_t": Primitive.UINT,
}

#: Types of the RPC library (rpc/xdr.h, rpc/auth.h) that rpcsvc files use undeclared.
RPCGEN_OPAQUE_TYPES: dict[str, tuple[DeclKind, int, str]] = {
    "netobj": (
        DeclKind.VAR_OPAQUE,
        1024,
        "The RPC library's counted byte string (opaque<1024>).",
    ),
    "des_block": (
        DeclKind.FIXED_OPAQUE,
        8,
        "The RPC library's 8-byte DES block (opaque[8]).",
    ),
}

#: Constants every file may use (C's TRUE/FALSE, as rpcgen output relies on them).
BUILTIN_CONSTANTS: dict[str, int] = {"TRUE": 1, "FALSE": 0}

TYPE_KEYWORDS = (
    "int",
    "unsigned",
    "hyper",
    "float",
    "double",
    "quadruple",
    "bool",
    "string",
    "opaque",
)

DISCRIMINANT_PRIMITIVES = (Primitive.INT, Primitive.UINT, Primitive.BOOL)

INT_RANGES: dict[Primitive, tuple[int, int]] = {
    Primitive.INT: (-(2**31), 2**31 - 1),
    Primitive.UINT: (0, 2**32 - 1),
    Primitive.BOOL: (0, 1),
}
