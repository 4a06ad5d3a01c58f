"""Record marking for stream transports (RFC 5531, section 11), sans-IO.

A record is one or more fragments; each fragment is a 4-byte marker (top bit:
last fragment; low 31 bits: length) followed by that many bytes.

:class:`RecordReader` reassembles records from received bytes.  Memory follows
the bytes received, never the lengths declared: a fragment's bytes are copied
into the record being assembled as they arrive, and a marker that would take
the record past ``max_record`` is refused as soon as its 4 bytes are in,
before anything of it is buffered.  Nothing but a partial marker (at most 3
bytes) and the record being assembled is ever held.
"""

from __future__ import annotations

import struct
from typing import Final

from xdrgen.runtime.codec import Buffer
from xdrgen.runtime.oncrpc.errors import ProtocolError, RecordTooLarge

LAST_FRAGMENT: Final = 0x80000000
FRAGMENT_MAX: Final = 0x7FFFFFFF
#: Default cap on one reassembled record (configurable per connection).
DEFAULT_RECORD_MAX: Final = 16 << 20
_MARKER: Final = struct.Struct(">I")


class RecordReader:
    """Bytes in (``feed``), complete records out; see the module docstring."""

    __slots__ = ("max_record", "_partial_marker", "_record", "_remaining", "_last", "_offset", "max_fragments",
                 "_fragments")

    def __init__(self, max_record: int = DEFAULT_RECORD_MAX, max_fragments: int = 1 << 16) -> None:
        if max_record < 1:
            raise ValueError("max_record must be positive")
        self.max_record = max_record
        #: Most fragments one record may have (empty fragments cost nothing else).
        self.max_fragments = max_fragments
        self._partial_marker = b""
        #: The record being assembled (fragments seen so far), or None between records.
        self._record: bytearray | None = None
        #: Bytes of the current fragment still to come; -1 while reading a marker.
        self._remaining = -1
        self._last = False
        self._fragments = 0
        #: Stream offset of the next byte to be fed (for error messages).
        self._offset = 0

    @property
    def buffered(self) -> int:
        """Bytes held: the partial marker and the record being assembled."""
        return len(self._partial_marker) + (len(self._record) if self._record is not None else 0)

    @property
    def idle(self) -> bool:
        """True between records (nothing partial is held)."""
        return self._remaining < 0 and not self._partial_marker and self._record is None

    def feed(self, data: Buffer) -> list[Buffer]:
        """Feed received bytes; returns the records they complete, in order.

        A record is a read-only view of ``data`` (when it arrived whole in one
        ``bytes`` feed) or a bytearray that is the caller's to keep.  Raises
        RecordTooLarge / ProtocolError; the stream is then unusable.
        """
        immutable = isinstance(data, bytes)
        n = len(data)
        if immutable and self._remaining < 0 and not self._partial_marker and n >= 4:
            # The common case: exactly one whole single-fragment record.
            (word,) = _MARKER.unpack_from(data, 0)
            if word & LAST_FRAGMENT and (word & FRAGMENT_MAX) == n - 4 and self._record is None:
                if n - 4 > self.max_record:
                    raise RecordTooLarge(f"record of {n - 4} bytes exceeds the {self.max_record}-byte record cap", self._offset)
                self._offset += n
                return [memoryview(data)[4:]]
        view = memoryview(data)
        if view.ndim != 1 or view.itemsize != 1:
            view = view.cast("B")
        records: list[Buffer] = []
        n = len(view)
        pos = 0
        if self._partial_marker:
            need = 4 - len(self._partial_marker)
            if n < need:
                self._partial_marker += bytes(view)
                self._offset += n
                return records
            head = self._partial_marker + bytes(view[:need])
            self._partial_marker = b""
            self._start_fragment(_MARKER.unpack(head)[0], self._offset - (4 - need))
            pos = need
        while True:
            remaining = self._remaining
            if remaining < 0:
                left = n - pos
                if left < 4:
                    if left:
                        self._partial_marker = bytes(view[pos:])
                    break
                (marker,) = _MARKER.unpack_from(view, pos)
                self._start_fragment(marker, self._offset + pos)
                pos += 4
                remaining = self._remaining
            take = n - pos
            if take > remaining:
                take = remaining
            record = self._record
            if record is None and take == remaining and self._last:
                # The whole record is one fragment, all here: hand out a view (or a copy).
                chunk = view[pos : pos + take]
                records.append(chunk.toreadonly() if immutable else bytearray(chunk))
            else:
                if record is None:
                    record = self._record = bytearray()
                record += view[pos : pos + take]
                if take == remaining and self._last:
                    records.append(record)
                    self._record = None
            pos += take
            if take == remaining:
                self._remaining = -1
                if self._last:
                    self._fragments = 0
            else:
                self._remaining = remaining - take
                break
        self._offset += n
        return records

    def _start_fragment(self, marker: int, offset: int) -> None:
        length = marker & FRAGMENT_MAX
        self._last = bool(marker & LAST_FRAGMENT)
        held = len(self._record) if self._record is not None else 0
        if held + length > self.max_record:
            raise RecordTooLarge(
                f"record fragment of {length} bytes after {held} would exceed the {self.max_record}-byte record cap",
                offset,
            )
        self._fragments += 1
        if self._fragments > self.max_fragments:
            raise ProtocolError(f"record of more than {self.max_fragments} fragments", offset)
        self._remaining = length


def frame(payload: Buffer, fragment_size: int = 0) -> bytes:
    """``payload`` as one record: one fragment, or fragments of ``fragment_size`` bytes."""
    n = len(payload)
    if n > FRAGMENT_MAX and not (0 < fragment_size <= FRAGMENT_MAX):
        raise ValueError(f"a record of {n} bytes needs several fragments")
    if fragment_size <= 0 or fragment_size >= n:
        return _MARKER.pack(LAST_FRAGMENT | n) + bytes(payload)
    view = memoryview(payload)
    parts: list[bytes | memoryview] = []
    for start in range(0, n, fragment_size):
        end = min(start + fragment_size, n)
        parts.append(_MARKER.pack((LAST_FRAGMENT if end == n else 0) | (end - start)))
        parts.append(view[start:end])
    return b"".join(parts)


def marker(length: int, last: bool = True) -> bytes:
    """One fragment marker."""
    if not 0 <= length <= FRAGMENT_MAX:
        raise ValueError(f"fragment length {length} out of range")
    return _MARKER.pack((LAST_FRAGMENT if last else 0) | length)


__all__ = ["RecordReader", "frame", "marker", "LAST_FRAGMENT", "FRAGMENT_MAX", "DEFAULT_RECORD_MAX"]
