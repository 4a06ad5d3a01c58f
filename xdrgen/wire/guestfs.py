"""libguestfs framing: a length word that does not count itself, then either a
message (``guestfs_message_header`` + payload) or a file-transfer chunk
(``guestfs_chunk``); special words in place of a length: launch, cancel, progress."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from xdrgen.runtime.guestfs.constants import (
    CANCEL_FLAG,
    HEADER,
    LAUNCH_FLAG,
    MESSAGE_MAX,
    PROGRAM,
    PROGRESS,
    PROGRESS_FLAG,
)
from xdrgen.runtime.guestfs.constants import WORD as _U32
from xdrgen.wire.errors import WireError

__all__ = ["CANCEL_FLAG", "HEADER", "LAUNCH_FLAG", "MESSAGE_MAX", "PROGRAM", "PROGRESS", "PROGRESS_FLAG"]
_CHUNK_HEAD: Final = struct.Struct(">iI")

DIRECTION_NAMES: Final = {0: "CALL", 1: "REPLY"}
STATUS_NAMES: Final = {0: "OK", 1: "ERROR"}


@dataclass(frozen=True, slots=True)
class Message:
    offset: int
    prog: int
    vers: int
    proc: int
    direction: int
    serial: int
    progress_hint: int
    optargs_bitmask: int
    status: int
    payload_start: int
    end: int


@dataclass(frozen=True, slots=True)
class Chunk:
    offset: int
    cancel: int
    size: int


@dataclass(frozen=True, slots=True)
class Flag:
    """The launch or cancel word."""

    offset: int
    name: str


@dataclass(frozen=True, slots=True)
class Progress:
    offset: int
    proc: int
    serial: int
    position: int
    total: int


Item = Message | Chunk | Flag | Progress


def read_items(data: bytes | memoryview, max_length: int = MESSAGE_MAX) -> Iterator[Item]:
    """Every item in ``data``, in order; raises :class:`WireError` at the first bad one."""
    offset = 0
    size = len(data)
    while offset < size:
        if size - offset < 4:
            raise WireError(f"truncated guestfs length word: {size - offset} bytes left", offset)
        (word,) = _U32.unpack_from(data, offset)
        if word == LAUNCH_FLAG:
            yield Flag(offset, "LAUNCH")
            offset += 4
            continue
        if word == CANCEL_FLAG:
            yield Flag(offset, "CANCEL")
            offset += 4
            continue
        if word == PROGRESS_FLAG:
            if size - offset < 4 + PROGRESS.size:
                raise WireError("truncated guestfs progress message (needs 28 bytes)", offset)
            proc, serial, position, total = PROGRESS.unpack_from(data, offset + 4)
            yield Progress(offset, proc, serial, position, total)
            offset += 4 + PROGRESS.size
            continue
        if word > max_length:
            raise WireError(f"guestfs length word {word} exceeds the maximum {max_length}", offset)
        start = offset + 4
        end = start + word
        if end > size:
            raise WireError(
                f"truncated guestfs message: length word says {word} bytes, only {size - start} follow",
                offset,
            )
        if word >= HEADER.size and _U32.unpack_from(data, start)[0] == PROGRAM:
            prog, vers, proc, direction, serial, hint, bitmask, status = HEADER.unpack_from(data, start)
            if direction not in DIRECTION_NAMES:
                raise WireError(f"unknown guestfs message direction {direction}", start + 12)
            if status not in STATUS_NAMES:
                raise WireError(f"unknown guestfs message status {status}", start + 36)
            yield Message(
                offset, prog, vers, proc, direction, serial, hint, bitmask, status, start + HEADER.size, end
            )
        else:
            yield _chunk(data, offset, start, end)
        offset = end


def _chunk(data: bytes | memoryview, offset: int, start: int, end: int) -> Chunk:
    """A ``guestfs_chunk {int cancel; opaque data<>}`` filling the whole frame."""
    if end - start < _CHUNK_HEAD.size:
        raise WireError(
            f"guestfs frame of {end - start} bytes is neither a message (program 0x{PROGRAM:08X}) nor a chunk",
            offset,
        )
    cancel, length = _CHUNK_HEAD.unpack_from(data, start)
    padded = (length + 3) & ~3
    if start + _CHUNK_HEAD.size + padded != end:
        raise WireError(
            f"guestfs frame of {end - start} bytes is neither a message (program 0x{PROGRAM:08X}) nor a "
            f"chunk (chunk data length {length} does not fill it)",
            offset,
        )
    return Chunk(offset, cancel, length)
