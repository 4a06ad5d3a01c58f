"""Frames on the wire: length word, 24-byte header, payload; and the receive buffer.

The receive buffer hands payloads out as read-only memoryviews into itself.  It
never writes over bytes a caller may still see: before reusing its storage it
checks that no view is alive (a bytearray with live exports refuses to resize),
and otherwise moves to a fresh bytearray, leaving the old one to the views.  So a
payload view stays valid for as long as the caller keeps it.
"""

from __future__ import annotations

import struct
from typing import Final, NamedTuple

from xdrgen.runtime.virnet.constants import (
    FRAME_MAX,
    HEADER_SIZE,
    LEN_SIZE,
    PREFIX_SIZE,
    MessageType,
)
from xdrgen.runtime.virnet.errors import ProtocolError

#: Length word + header, packed in one go (the header's proc is signed).
PREFIX: Final = struct.Struct(">IIIiiII")
_LENGTH: Final = struct.Struct(">I")
_HEADER: Final = struct.Struct(">IIiiII")
_TYPES: Final = frozenset(int(t) for t in MessageType)
#: Old receive storages kept for reuse.
_SPARES: Final = 4
#: First room offered to a read, and the storage an idle connection keeps.
START_SIZE: Final = 16384


class Header(NamedTuple):
    """The six words after the length (a tuple: built once per frame, cheaply)."""

    prog: int
    vers: int
    proc: int
    type: int
    serial: int
    status: int


def pack_prefix(length: int, prog: int, vers: int, proc: int, mtype: int, serial: int, status: int) -> bytes:
    """The 28 bytes that start a frame whose total length (prefix included) is ``length``."""
    return PREFIX.pack(length, prog, vers, proc, mtype, serial, status)


def encode_frame(prog: int, vers: int, proc: int, mtype: int, serial: int, status: int, payload: bytes = b"") -> bytes:
    """A whole frame in one bytes object (for small messages)."""
    length = PREFIX_SIZE + len(payload)
    if length > FRAME_MAX:
        raise ValueError(f"message of {length} bytes exceeds the libvirt maximum {FRAME_MAX}")
    return PREFIX.pack(length, prog, vers, proc, mtype, serial, status) + payload


class FrameBuffer:
    """Receive buffer with a read offset; yields (header, payload view, offset) per frame.

    Use either ``feed(data)`` (copies once, e.g. from asyncio ``data_received``)
    or ``get_buffer()`` + ``buffer_updated(n)`` to let the socket write straight
    into it (``recv_into`` / asyncio ``BufferedProtocol``).

    Memory follows the bytes received, never the length a peer declares: a
    length word outside [28, FRAME_MAX] is refused as soon as its 4 bytes
    arrive, and room for a large frame grows with what has arrived of it
    (doubling), or straight to the size of a frame the peer already sent in
    full.  Reads of small frames start at ``START_SIZE`` and grow, while reads
    keep filling the room offered, up to ``initial_size``.  Storage is made
    on the first read, not before, and ``trim()`` gives it back when the
    connection goes idle.  With ``check_header`` the message type
    are checked as soon as the header arrives (the client role: an unknown
    type ends the connection); the server role decides about them itself.
    """

    __slots__ = (
        "_buf", "_start", "_end", "_consumed", "_checked", "_write_view", "_read_max", "_read_ahead",
        "_proven", "_spares", "_check_header", "_offered",
    )

    def __init__(self, initial_size: int = 1 << 20, *, check_header: bool = True) -> None:
        #: Most read-ahead beyond the current frame.
        self._read_max = max(initial_size, START_SIZE)
        self._read_ahead = START_SIZE
        #: Largest frame the peer has sent in full since the last trim.
        self._proven = 0
        self._buf = bytearray()
        self._start = 0
        self._end = 0
        #: Bytes of the stream consumed before ``_buf`` started (for error offsets).
        self._consumed = 0
        #: Set once the frame at ``_start`` has had its length and header checked.
        self._checked = False
        self._write_view: memoryview | None = None
        #: Size of the room last handed out by ``get_buffer``.
        self._offered = 0
        #: Earlier storages, reused once no view into them is left (saves
        #: allocating and faulting in fresh memory per buffer of stream data).
        self._spares: list[bytearray] = []
        self._check_header = check_header

    @property
    def stream_offset(self) -> int:
        """Byte offset in the received stream of the next unparsed frame."""
        return self._consumed + self._start

    @property
    def buffered(self) -> int:
        return self._end - self._start

    @property
    def capacity(self) -> int:
        """Bytes of storage held (the current buffer and its spares)."""
        return len(self._buf) + sum(len(s) for s in self._spares)

    @staticmethod
    def _views_alive(buf: bytearray) -> bool:
        try:
            buf.append(0)  # a bytearray with live exports refuses to resize
        except BufferError:
            return True
        del buf[-1]
        return False

    def _fresh(self, wanted: int) -> bytearray:
        """Storage of at least ``wanted`` bytes that no view points into."""
        for i, spare in enumerate(self._spares):
            if len(spare) >= wanted and not self._views_alive(spare):
                return self._spares.pop(i)
        # Rounded up so that storages of similar sizes can replace each other.
        return bytearray(-(-wanted // START_SIZE) * START_SIZE)

    def _make_room(self, need: int, at_least: int | None = None) -> None:
        """Ensure free bytes after ``_end``: ``need``, or ``at_least`` when that fits without new storage.

        Never disturbs live views.
        """
        pending = self._end - self._start
        size = len(self._buf)
        enough = need if at_least is None else at_least
        if size - self._end >= enough:
            return
        wanted = pending + need
        if pending + enough <= size and not self._views_alive(self._buf):
            # Slide the unparsed tail to the front; same length, no resize.
            self._buf[0:pending] = self._buf[self._start : self._end]
        else:
            # Views into the old storage stay valid: they keep it alive.  It
            # becomes a spare (a few, of read-ahead size at most) to reuse
            # once they are gone; storage outgrown by a frame is let go.
            fresh = self._fresh(wanted)
            fresh[0:pending] = self._buf[self._start : self._end]
            if START_SIZE <= size <= self._read_max and self._views_alive(self._buf):
                self._spares.append(self._buf)
                if len(self._spares) > _SPARES:
                    del self._spares[0]
            self._buf = fresh
        self._consumed += self._start
        self._start = 0
        self._end = pending

    def _release_write_view(self) -> None:
        if self._write_view is not None:
            self._write_view.release()
            self._write_view = None

    def get_buffer(self, sizehint: int = -1) -> memoryview:
        """A writable view of free space to receive into; call ``buffer_updated`` next."""
        self._release_write_view()
        want = self._wanted_bytes()
        if sizehint > want:
            want = min(sizehint, self._read_max)
        # Half the wanted room is worth a read; only less than that makes new storage.
        self._make_room(want, max(want // 2, 1))
        self._write_view = memoryview(self._buf)[self._end :]
        self._offered = len(self._buf) - self._end
        return self._write_view

    def buffer_updated(self, nbytes: int) -> None:
        offered, self._offered = self._offered, 0
        self._release_write_view()
        if nbytes < 0 or self._end + nbytes > len(self._buf):
            raise ValueError("buffer_updated beyond the buffer handed out")
        self._end += nbytes
        if nbytes == offered and self._read_ahead < self._read_max:
            # The read filled all the room: more is waiting, read more at once.
            self._read_ahead = min(self._read_ahead * 2, self._read_max)

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        n = len(data)
        self._release_write_view()
        self._make_room(n)
        self._buf[self._end : self._end + n] = data
        self._end += n

    def discard(self, n: int) -> None:
        """Drop ``n`` buffered bytes (the fd carrier bytes after a *_WITH_FDS frame)."""
        if n > self._end - self._start:
            raise ValueError("discard beyond the buffered bytes")
        self._start += n

    def trim(self) -> None:
        """Give storage back when nothing is buffered (the connection went idle).

        Views handed out stay valid: they keep their storage alive themselves.
        """
        if self._end != self._start or self._write_view is not None:
            return
        self._spares.clear()
        self._consumed += self._start
        self._start = self._end = 0
        if len(self._buf) > START_SIZE:
            self._buf = bytearray()
        self._read_ahead = START_SIZE
        self._proven = 0

    def _wanted_bytes(self) -> int:
        """How much room to offer the next read.

        Within a frame: the rest of it, but no more than what has arrived of
        it so far (so room doubles as bytes arrive) unless the peer already
        sent a frame that large.  Between frames: the read-ahead.
        """
        avail = self._end - self._start
        if avail >= LEN_SIZE:
            length: int = _LENGTH.unpack_from(self._buf, self._start)[0]
            if PREFIX_SIZE <= length <= FRAME_MAX and length > avail:
                grant = max(avail, min(self._proven, length))
                return max(min(length - avail, grant), self._read_ahead)
        return self._read_ahead

    def next_frame(self) -> tuple[Header, memoryview, int] | None:
        """The next complete frame, or None when more bytes are needed.

        Raises ProtocolError for a bad length word (and, with ``check_header``,
        an unknown message type), checked before the body arrives.  The payload
        view is read-only and stays valid while referenced.
        """
        start = self._start
        avail = self._end - start
        if avail < LEN_SIZE:
            return None
        buf = self._buf
        (length,) = _LENGTH.unpack_from(buf, start)
        fields: tuple[int, int, int, int, int, int] | None = None
        if not self._checked:
            if length < PREFIX_SIZE:
                raise ProtocolError(f"frame length {length} is shorter than the {PREFIX_SIZE}-byte minimum", self.stream_offset)
            if length > FRAME_MAX:
                raise ProtocolError(f"frame length {length} exceeds the libvirt maximum {FRAME_MAX}", self.stream_offset)
            if avail < PREFIX_SIZE:
                return None
            fields = _HEADER.unpack_from(buf, start + LEN_SIZE)
            if self._check_header:
                mtype = fields[3]
                if mtype not in _TYPES:
                    raise ProtocolError(f"unknown message type {mtype}", self.stream_offset)
                # Statuses are the core's to judge: libvirt's client fails only the
                # call whose REPLY has an unknown status.
            self._checked = True
        if avail < length:
            return None
        if fields is None:  # checked on an earlier call, when the body was still missing
            fields = _HEADER.unpack_from(buf, start + LEN_SIZE)
            if length > self._proven:  # a frame that spanned reads arrived in full
                self._proven = length
        offset = self._consumed + start
        payload = memoryview(buf)[start + PREFIX_SIZE : start + length].toreadonly()
        self._start = start + length
        self._checked = False
        return Header._make(fields), payload, offset


__all__ = ["Header", "FrameBuffer", "START_SIZE", "PREFIX", "pack_prefix", "encode_frame", "HEADER_SIZE"]
