"""Types of the ONC RPC C library that .x files use undeclared and XDR cannot describe.

rpcgen's C calls the library's ``xdr_<type>`` for them.  The ones XDR can describe
(``netobj`` is ``opaque<1024>``, ``des_block`` is ``opaque[8]``) are ordinary typedefs
in the generated module; this module holds the rest, written by hand after the
library's code (libtirpc 1.3.3) and tested against it:

- ``netbuf`` (libtirpc's ``xdr_netbuf``, used by rpcb_prot.x): a ``maxlen`` word,
  then ``opaque buf<maxlen>``: the bound is the value of the field before it, and
  ``maxlen`` itself is at most ``RPC_MAXDATASIZE``.

Generated modules that use these types import this module, as they would a module
given with ``--import``: it has the same ``XDR_TYPES`` registry.
"""

from __future__ import annotations

import struct
from typing import Any

from xdrgen.runtime.codec import PAD, Buffer, Codec, XdrStruct
from xdrgen.runtime.errors import (
    XdrDecodeError,
    XdrEncodeError,
    XdrTruncatedError,
)

#: libtirpc's bound on ``netbuf.maxlen`` (rpc/rpc_com.h's RPC_MAXDATASIZE).
RPC_MAXDATASIZE = 9000

_WORDS = struct.Struct(">II")


class netbuf(XdrStruct):
    """A transport address as the RPC library sends it (``struct netbuf``)."""

    __slots__ = ("maxlen", "buf")

    #: Size of the buffer the address came from; at least ``len(buf)``, at most 9000.
    maxlen: int
    #: The address bytes.
    buf: bytes

    def __init__(self, maxlen: int, buf: bytes) -> None:
        self.maxlen = maxlen
        self.buf = buf


def _enc_netbuf(buffer: bytearray, value: netbuf) -> None:
    try:
        maxlen, data = value.maxlen, value.buf
    except AttributeError as exc:
        raise XdrEncodeError(f"wrong type of value ({exc})", type_name="netbuf") from None
    if not isinstance(data, (bytes, bytearray)):
        raise XdrEncodeError(
            f"buf must be bytes, not {type(data).__name__}", type_name="netbuf", path="buf"
        )
    if not isinstance(maxlen, int) or not 0 <= maxlen <= RPC_MAXDATASIZE:
        raise XdrEncodeError(
            f"maxlen {maxlen!r} is not an integer from 0 to {RPC_MAXDATASIZE}",
            type_name="netbuf",
            path="maxlen",
        )
    n = len(data)
    if n > maxlen:
        raise XdrEncodeError(
            f"opaque length {n} exceeds maxlen {maxlen}", type_name="netbuf", path="buf"
        )
    buffer += _WORDS.pack(maxlen, n)
    buffer += data
    buffer += PAD[n & 3]


def _dec_netbuf(data: Buffer, offset: int) -> tuple[netbuf, int]:
    try:
        maxlen, n = _WORDS.unpack_from(data, offset)
    except struct.error:
        cut = "maxlen" if len(data) - offset < 4 else "buf"
        raise XdrTruncatedError(
            "netbuf needs at least 8 bytes",
            type_name="netbuf",
            path=cut,
            offset=offset if cut == "maxlen" else offset + 4,
        ) from None
    if maxlen > RPC_MAXDATASIZE:
        raise XdrDecodeError(
            f"maxlen {maxlen} exceeds {RPC_MAXDATASIZE}",
            type_name="netbuf",
            path="maxlen",
            offset=offset,
        )
    if n > maxlen:
        raise XdrDecodeError(
            f"opaque length {n} exceeds maxlen {maxlen}",
            type_name="netbuf",
            path="buf",
            offset=offset + 4,
        )
    start = offset + 8
    end = start + ((n + 3) & -4)
    if end > len(data):
        raise XdrTruncatedError(
            f"opaque length {n} needs {end - start} bytes, {max(len(data) - start, 0)} remain",
            type_name="netbuf",
            path="buf",
            offset=offset + 4,
        )
    if data[start + n : end] != PAD[n & 3]:
        raise XdrDecodeError(
            "padding bytes are not zero", type_name="netbuf", path="buf", offset=start + n
        )
    return netbuf(maxlen, bytes(data[start : start + n])), end


XDR_TYPES: dict[str, Codec[Any]] = {
    "netbuf": Codec("netbuf", _enc_netbuf, _dec_netbuf),
}
