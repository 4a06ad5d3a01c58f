"""ONC RPC over a stream (RFC 5531): record marking, then ``rpc_msg`` headers.

A record is one or more fragments, each behind a word whose top bit marks the
last fragment and whose low 31 bits give its length.  The record's bytes are
reassembled; :meth:`Record.stream_offset` maps a record offset back to the
capture for error messages.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from xdrgen.wire.errors import WireError

#: Default ceiling on one reassembled record (the spec has none; captures need one).
RECORD_MAX: Final = 64 * 1024 * 1024
AUTH_BODY_MAX: Final = 400
_U32: Final = struct.Struct(">I")

REPLY_STAT_NAMES: Final = {0: "MSG_ACCEPTED", 1: "MSG_DENIED"}
ACCEPT_STAT_NAMES: Final = {
    0: "SUCCESS",
    1: "PROG_UNAVAIL",
    2: "PROG_MISMATCH",
    3: "PROC_UNAVAIL",
    4: "GARBAGE_ARGS",
    5: "SYSTEM_ERR",
}
REJECT_STAT_NAMES: Final = {0: "RPC_MISMATCH", 1: "AUTH_ERROR"}
AUTH_FLAVOR_NAMES: Final = {0: "AUTH_NONE", 1: "AUTH_SYS", 2: "AUTH_SHORT", 3: "AUTH_DH", 6: "RPCSEC_GSS"}


@dataclass(frozen=True, slots=True)
class Record:
    data: bytes
    #: (record offset, stream offset) where each fragment's bytes start.
    fragments: tuple[tuple[int, int], ...]

    @property
    def offset(self) -> int:
        """Stream offset of the first fragment's marker."""
        return self.fragments[0][1] - 4

    def stream_offset(self, position: int) -> int:
        for start, stream_start in reversed(self.fragments):
            if position >= start:
                return stream_start + (position - start)
        return self.offset  # pragma: no cover - fragments start at 0


def read_records(data: bytes | memoryview, max_record: int = RECORD_MAX) -> Iterator[Record]:
    offset = 0
    size = len(data)
    while offset < size:
        parts: list[bytes] = []
        fragments: list[tuple[int, int]] = []
        total = 0
        while True:
            if size - offset < 4:
                raise WireError(f"truncated record marker: {size - offset} bytes left", offset)
            (marker,) = _U32.unpack_from(data, offset)
            last = bool(marker & 0x80000000)
            length = marker & 0x7FFFFFFF
            if total + length > max_record:
                raise WireError(
                    f"record of more than {max_record} bytes (fragment of {length} after {total})", offset
                )
            if offset + 4 + length > size:
                raise WireError(
                    f"truncated fragment: marker says {length} bytes, only {size - offset - 4} follow", offset
                )
            fragments.append((total, offset + 4))
            parts.append(bytes(data[offset + 4 : offset + 4 + length]))
            total += length
            offset += 4 + length
            if last:
                break
        yield Record(b"".join(parts), tuple(fragments))


@dataclass(frozen=True, slots=True)
class OpaqueAuth:
    flavor: int
    length: int

    def __str__(self) -> str:
        name = AUTH_FLAVOR_NAMES.get(self.flavor, str(self.flavor))
        return f"{name} ({self.length} bytes)"


@dataclass(frozen=True, slots=True)
class Call:
    xid: int
    rpcvers: int
    prog: int
    vers: int
    proc: int
    cred: OpaqueAuth
    verf: OpaqueAuth
    #: Record offset where the arguments start.
    body_start: int


@dataclass(frozen=True, slots=True)
class Reply:
    xid: int
    reply_stat: int
    verf: OpaqueAuth | None
    accept_stat: int | None
    reject_stat: int | None
    #: (low, high) for PROG_MISMATCH and RPC_MISMATCH.
    mismatch: tuple[int, int] | None
    auth_stat: int | None
    #: Record offset where the results start (SUCCESS), else the end of the header.
    body_start: int


class _Reader:
    """Big-endian words out of one record, with stream offsets in errors."""

    def __init__(self, record: Record) -> None:
        self.record = record
        self.pos = 0

    def u32(self, what: str) -> int:
        data = self.record.data
        if self.pos + 4 > len(data):
            raise WireError(
                f"record ends inside the rpc_msg header ({what})", self.record.stream_offset(self.pos)
            )
        value: int = _U32.unpack_from(data, self.pos)[0]
        self.pos += 4
        return value

    def auth(self, what: str) -> OpaqueAuth:
        flavor = self.u32(f"{what} flavor")
        at = self.pos
        length = self.u32(f"{what} length")
        if length > AUTH_BODY_MAX:
            raise WireError(
                f"{what} body of {length} bytes exceeds {AUTH_BODY_MAX}", self.record.stream_offset(at)
            )
        padded = (length + 3) & ~3
        if self.pos + padded > len(self.record.data):
            raise WireError(f"record ends inside the {what} body", self.record.stream_offset(self.pos))
        self.pos += padded
        return OpaqueAuth(flavor, length)


def parse_message(record: Record) -> Call | Reply:
    reader = _Reader(record)
    xid = reader.u32("xid")
    at = reader.pos
    mtype = reader.u32("msg_type")
    if mtype == 0:
        at = reader.pos
        rpcvers = reader.u32("rpcvers")
        if rpcvers != 2:
            raise WireError(f"RPC version {rpcvers}, expected 2", record.stream_offset(at))
        prog = reader.u32("prog")
        vers = reader.u32("vers")
        proc = reader.u32("proc")
        cred = reader.auth("credential")
        verf = reader.auth("verifier")
        return Call(xid, rpcvers, prog, vers, proc, cred, verf, reader.pos)
    if mtype != 1:
        raise WireError(f"msg_type {mtype} is neither CALL (0) nor REPLY (1)", record.stream_offset(at))
    at = reader.pos
    reply_stat = reader.u32("reply_stat")
    if reply_stat == 0:
        verf = reader.auth("verifier")
        at = reader.pos
        accept_stat = reader.u32("accept_stat")
        if accept_stat not in ACCEPT_STAT_NAMES:
            raise WireError(f"unknown accept_stat {accept_stat}", record.stream_offset(at))
        mismatch = (reader.u32("low"), reader.u32("high")) if accept_stat == 2 else None
        return Reply(xid, reply_stat, verf, accept_stat, None, mismatch, None, reader.pos)
    if reply_stat == 1:
        at = reader.pos
        reject_stat = reader.u32("reject_stat")
        if reject_stat == 0:
            mismatch = (reader.u32("low"), reader.u32("high"))
            return Reply(xid, reply_stat, None, None, reject_stat, mismatch, None, reader.pos)
        if reject_stat == 1:
            auth_stat = reader.u32("auth_stat")
            return Reply(xid, reply_stat, None, None, reject_stat, None, auth_stat, reader.pos)
        raise WireError(f"unknown reject_stat {reject_stat}", record.stream_offset(at))
    raise WireError(f"unknown reply_stat {reply_stat}", record.stream_offset(at))
