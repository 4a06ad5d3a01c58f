"""libvirt's wire format by hand: frames, headers and remote_error, independent of xdrgen.runtime.

Facts of the protocol (virnetprotocol.x): a frame is a 4-byte length (counting
itself), a 24-byte header (prog, vers, proc, type, serial, status) and the
payload.  ``remote_error`` is decoded to raw bytes so tests can compare exactly
what a peer sent, including invalid UTF-8.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

REMOTE_PROGRAM: Final = 0x20008086
KEEPALIVE_PROGRAM: Final = 0x6B656570
PREFIX: Final = struct.Struct(">IIIiiII")
PREFIX_SIZE: Final = 28
MESSAGE_MAX: Final = 33554432
#: The largest legal value of the length word (it counts itself).
FRAME_MAX: Final = MESSAGE_MAX + 4

CALL, REPLY, MESSAGE, STREAM, CALL_WITH_FDS, REPLY_WITH_FDS, STREAM_HOLE = range(7)
OK, ERROR, CONTINUE = range(3)


def frame(proc: int, payload: bytes = b"", *, serial: int = 1, prog: int = REMOTE_PROGRAM, vers: int = 1,
          mtype: int = CALL, status: int = OK, length: int | None = None) -> bytes:
    """One frame; ``length`` overrides the length word (to lie about it)."""
    real = PREFIX_SIZE + len(payload)
    return PREFIX.pack(real if length is None else length, prog, vers, proc, mtype, serial, status) + payload


def xdr_uint(v: int) -> bytes:
    return struct.pack(">I", v)


def xdr_int(v: int) -> bytes:
    return struct.pack(">i", v)


def xdr_opaque(raw: bytes) -> bytes:
    """Variable-length opaque / string: length, bytes, zero padding."""
    return xdr_uint(len(raw)) + raw + b"\0" * (-len(raw) % 4)


def xdr_opt_string(raw: bytes | None) -> bytes:
    return xdr_uint(0) if raw is None else xdr_uint(1) + xdr_opaque(raw)


@dataclass(frozen=True)
class Frame:
    prog: int
    vers: int
    proc: int
    type: int
    serial: int
    status: int
    payload: bytes


def split_frames(data: bytes) -> tuple[list[Frame], bytes]:
    """Complete frames in ``data`` and the incomplete rest."""
    out: list[Frame] = []
    pos = 0
    while len(data) - pos >= PREFIX_SIZE:
        length, prog, vers, proc, mtype, serial, status = PREFIX.unpack_from(data, pos)
        if length < PREFIX_SIZE or len(data) - pos < length:
            break
        out.append(Frame(prog, vers, proc, mtype, serial, status, bytes(data[pos + PREFIX_SIZE : pos + length])))
        pos += length
    return out, bytes(data[pos:])


@dataclass(frozen=True)
class RawError:
    """remote_error with strings as raw bytes (None when absent)."""

    code: int
    domain: int
    message: bytes | None
    level: int
    str1: bytes | None
    str2: bytes | None
    str3: bytes | None
    int1: int
    int2: int


class _Cursor:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def int32(self) -> int:
        (v,) = struct.unpack_from(">i", self.data, self.pos)
        self.pos += 4
        return int(v)

    def uint32(self) -> int:
        (v,) = struct.unpack_from(">I", self.data, self.pos)
        self.pos += 4
        return int(v)

    def opaque(self, n: int | None = None) -> bytes:
        if n is None:
            n = self.uint32()
        raw = self.data[self.pos : self.pos + n]
        if len(raw) != n:
            raise ValueError("truncated opaque")
        self.pos += n + (-n % 4)
        return raw

    def opt(self) -> bytes | None:
        return self.opaque() if self.uint32() else None


def parse_error(payload: bytes) -> RawError:
    c = _Cursor(payload)
    code, domain = c.int32(), c.int32()
    message = c.opt()
    level = c.int32()
    if c.uint32():  # dom
        c.opaque()
        c.opaque(16)
        c.int32()
    str1, str2, str3 = c.opt(), c.opt(), c.opt()
    int1, int2 = c.int32(), c.int32()
    if c.uint32():  # net
        c.opaque()
        c.opaque(16)
    if c.pos != len(payload):
        raise ValueError(f"{len(payload) - c.pos} bytes after remote_error")
    return RawError(code, domain, message, level, str1, str2, str3, int1, int2)
