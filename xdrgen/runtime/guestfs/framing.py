"""Bytes on the wire: length-prefixed messages, special words, headers and chunks.

Every message is a 4-byte big-endian length that does not count itself, then
that many bytes.  In place of a length the daemon may send a special word:
the launch flag (once, when ready), the cancel flag, or the progress flag
followed by a fixed 24-byte ``guestfs_progress``.  A message is either a
``guestfs_message_header`` plus payload, or (during file transfers) one XDR
``guestfs_chunk``; which one depends on the conversation, so the core decides.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

from xdrgen.runtime.guestfs.constants import (
    CANCEL_FLAG,
    DIRECTION_CALL,
    HEADER,
    LAUNCH_FLAG,
    MAX_CHUNK_SIZE,
    MESSAGE_MAX,
    PROGRAM,
    PROGRESS,
    PROGRESS_FLAG,
    PROTOCOL_VERSION,
    STATUS_OK,
    WORD,
)
from xdrgen.runtime.guestfs.errors import GuestfsProtocolError

Buffer = bytes | bytearray | memoryview
#: Buffers for one gathered write (``socket.sendmsg`` / ``writelines``), in order.
OutBuffers = list[bytes | memoryview]

#: Zero bytes that pad ``n`` data bytes to a multiple of 4, indexed by ``-n & 3``.
_PADDING: Final = (b"", b"\0", b"\0\0", b"\0\0\0")
#: Length word, ``cancel``, data length: the start of a framed chunk.
_CHUNK_PREFIX: Final = struct.Struct(">IiI")
#: ``cancel`` and data length at the start of a chunk message.
_CHUNK_WORDS: Final = struct.Struct(">iI")
#: The whole framed end-of-transfer chunk (length 8, cancel 0, no data).
END_CHUNK: Final = _CHUNK_PREFIX.pack(8, 0, 0)
#: The whole framed cancel chunk (length 8, cancel 1, no data).
CANCEL_CHUNK: Final = _CHUNK_PREFIX.pack(8, 1, 0)
CANCEL_WORD: Final = WORD.pack(CANCEL_FLAG)
LAUNCH_WORD: Final = WORD.pack(LAUNCH_FLAG)


@dataclass(frozen=True, slots=True)
class Header:
    """A decoded ``guestfs_message_header``."""

    prog: int
    vers: int
    proc: int
    direction: int
    serial: int
    progress_hint: int
    optargs_bitmask: int
    status: int


def encode_message(
    proc: int,
    serial: int,
    payload: Buffer = b"",
    *,
    direction: int = DIRECTION_CALL,
    status: int = STATUS_OK,
    progress_hint: int = 0,
    optargs_bitmask: int = 0,
) -> OutBuffers:
    """A framed message: length word + header in one buffer, then the payload (not copied)."""
    view = memoryview(payload).cast("B")
    length = HEADER.size + view.nbytes
    if length > MESSAGE_MAX:
        raise ValueError(f"message of {length} bytes exceeds GUESTFS_MESSAGE_MAX ({MESSAGE_MAX})")
    head = WORD.pack(length) + HEADER.pack(
        PROGRAM, PROTOCOL_VERSION, proc, direction, serial, progress_hint, optargs_bitmask, status
    )
    return [head, view] if view.nbytes else [head]


def encode_data_chunks(data: Buffer) -> OutBuffers:
    """Framed ``guestfs_chunk`` messages (cancel 0) carrying ``data``, at most 8192 bytes each.

    The data is sliced, not copied.  Empty data gives no chunks (an empty
    chunk would end the transfer: use END_CHUNK for that).
    """
    view = memoryview(data).cast("B")
    out: OutBuffers = []
    total = view.nbytes
    for start in range(0, total, MAX_CHUNK_SIZE):
        piece = view[start : start + MAX_CHUNK_SIZE]
        n = piece.nbytes
        pad = -n & 3
        out.append(_CHUNK_PREFIX.pack(8 + n + pad, 0, n))
        out.append(piece)
        if pad:
            out.append(_PADDING[pad])
    return out


def decode_header(payload: Buffer, offset: int) -> Header:
    """The header at the start of a message; ``offset`` locates the message for errors."""
    if len(payload) < HEADER.size:
        raise GuestfsProtocolError(
            f"message of {len(payload)} bytes is shorter than the {HEADER.size}-byte header", offset
        )
    return Header(*HEADER.unpack_from(payload, 0))


def decode_chunk(payload: bytes, offset: int) -> tuple[int, bytes]:
    """``(cancel, data)`` of a message that must be exactly one XDR ``guestfs_chunk``."""
    size = len(payload)
    if size < 8:
        raise GuestfsProtocolError(f"file chunk of {size} bytes is shorter than 8", offset)
    cancel, length = _CHUNK_WORDS.unpack_from(payload, 0)
    if length > MAX_CHUNK_SIZE:
        raise GuestfsProtocolError(
            f"file chunk data length {length} exceeds GUESTFS_MAX_CHUNK_SIZE ({MAX_CHUNK_SIZE})", offset + 4
        )
    end = 8 + length
    padded = end + (-length & 3)
    if padded != size:
        raise GuestfsProtocolError(
            f"file chunk message of {size} bytes does not hold exactly {length} data bytes", offset
        )
    if payload[end:padded].strip(b"\0"):
        raise GuestfsProtocolError("file chunk has non-zero padding", offset + end)
    if cancel not in (0, 1):
        raise GuestfsProtocolError(f"file chunk cancel field is {cancel}, expected 0 or 1", offset)
    return cancel, payload[8:end]


# ------------------------------------------------------------------ receiving


@dataclass(frozen=True, slots=True)
class Launch:
    """The daemon's launch flag: it is ready for calls."""

    offset: int


@dataclass(frozen=True, slots=True)
class Cancel:
    """The cancel flag (the daemon cancels an upload)."""

    offset: int


@dataclass(frozen=True, slots=True)
class Progress:
    """A ``guestfs_progress`` notification."""

    proc: int
    serial: int
    position: int
    total: int
    offset: int


@dataclass(frozen=True, slots=True)
class Message:
    """One length-framed message; its meaning depends on the conversation state."""

    payload: bytes
    offset: int


Record = Launch | Cancel | Progress | Message


class InputBuffer:
    """Splits the daemon's byte stream into records; memory bounded by MESSAGE_MAX.

    A length word above MESSAGE_MAX (and not a special word) is refused as soon
    as its 4 bytes arrive, before anything is buffered for it.
    """

    __slots__ = ("_buf", "_start", "_consumed")

    def __init__(self) -> None:
        self._buf = bytearray()
        self._start = 0
        #: Bytes dropped from the front of ``_buf`` (for stream offsets).
        self._consumed = 0

    @property
    def stream_offset(self) -> int:
        """Offset in the received stream of the next unparsed byte."""
        return self._consumed + self._start

    @property
    def buffered(self) -> int:
        return len(self._buf) - self._start

    def feed(self, data: Buffer) -> None:
        start = self._start
        if start and start >= len(self._buf) // 2:
            # Drop parsed bytes once they are at least half: amortised O(1) per byte.
            del self._buf[:start]
            self._consumed += start
            self._start = 0
        self._buf += data

    def next_record(self) -> Record | None:
        """The next complete record, or None when more bytes are needed."""
        buf = self._buf
        start = self._start
        avail = len(buf) - start
        if avail < 4:
            return None
        (word,) = WORD.unpack_from(buf, start)
        offset = self._consumed + start
        if word <= MESSAGE_MAX:
            if avail < 4 + word:
                return None
            self._start = start + 4 + word
            return Message(bytes(buf[start + 4 : start + 4 + word]), offset)
        if word == PROGRESS_FLAG:
            if avail < 4 + PROGRESS.size:
                return None
            self._start = start + 4 + PROGRESS.size
            proc, serial, position, total = PROGRESS.unpack_from(buf, start + 4)
            return Progress(proc, serial, position, total, offset)
        if word == LAUNCH_FLAG:
            self._start = start + 4
            return Launch(offset)
        if word == CANCEL_FLAG:
            self._start = start + 4
            return Cancel(offset)
        raise GuestfsProtocolError(
            f"length word {word:#x} exceeds GUESTFS_MESSAGE_MAX ({MESSAGE_MAX}) and is no special word",
            offset,
        )
