"""libvirt framing: a big-endian length word that counts itself, a 24-byte header
(prog, vers, proc, type, serial, status), then the payload."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from xdrgen.runtime.virnet.constants import HEADER_SIZE, KEEPALIVE_PROGRAM, LEN_SIZE, MESSAGE_MAX
from xdrgen.wire.errors import WireError

__all__ = ["HEADER_SIZE", "KEEPALIVE_PROGRAM", "LEN_SIZE", "MESSAGE_MAX"]

_PREFIX: Final = struct.Struct(">IIIiiII")

TYPE_NAMES: Final = {
    0: "CALL",
    1: "REPLY",
    2: "MESSAGE",
    3: "STREAM",
    4: "CALL_WITH_FDS",
    5: "REPLY_WITH_FDS",
    6: "STREAM_HOLE",
}
STATUS_NAMES: Final = {0: "OK", 1: "ERROR", 2: "CONTINUE"}
KEEPALIVE_PROCS: Final = {1: "PING", 2: "PONG"}


@dataclass(frozen=True, slots=True)
class LibvirtFrame:
    #: Offset of the length word in the stream.
    offset: int
    length: int
    prog: int
    vers: int
    proc: int
    type: int
    serial: int
    status: int

    @property
    def payload_start(self) -> int:
        return self.offset + LEN_SIZE + HEADER_SIZE

    @property
    def end(self) -> int:
        return self.offset + self.length


def read_frames(data: bytes | memoryview, max_length: int = MESSAGE_MAX + LEN_SIZE) -> Iterator[LibvirtFrame]:
    """Every frame in ``data``, in order; raises :class:`WireError` at the first bad one."""
    offset = 0
    size = len(data)
    while offset < size:
        if size - offset < LEN_SIZE + HEADER_SIZE:
            raise WireError(
                f"truncated libvirt frame: {size - offset} bytes left, a frame needs at least "
                f"{LEN_SIZE + HEADER_SIZE}",
                offset,
            )
        length, prog, vers, proc, mtype, serial, status = _PREFIX.unpack_from(data, offset)
        if length < LEN_SIZE + HEADER_SIZE:
            raise WireError(f"libvirt length word {length} is smaller than the 28-byte minimum", offset)
        if length > max_length:
            raise WireError(f"libvirt length word {length} exceeds the maximum {max_length}", offset)
        if offset + length > size:
            raise WireError(
                f"truncated libvirt frame: length word says {length} bytes, only {size - offset} remain",
                offset,
            )
        if mtype not in TYPE_NAMES:
            raise WireError(f"unknown libvirt message type {mtype}", offset + 16)
        if status not in STATUS_NAMES:
            raise WireError(f"unknown libvirt message status {status}", offset + 24)
        yield LibvirtFrame(offset, length, prog, vers, proc, mtype, serial, status)
        offset += length
