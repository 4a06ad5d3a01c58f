"""Record marking (RFC 5531 section 11): reassembly, fragmenting, the record cap, memory."""

from __future__ import annotations

import struct
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xdrgen.runtime.oncrpc.errors import ProtocolError, RecordTooLarge
from xdrgen.runtime.oncrpc.record import LAST_FRAGMENT, RecordReader, frame, marker


def fragments(payload: bytes, sizes: list[int]) -> bytes:
    """``payload`` as fragments of the given sizes (the rest in a last fragment)."""
    out, pos = [], 0
    for size in sizes:
        if pos + size >= len(payload):
            break
        out.append(struct.pack(">I", size) + payload[pos : pos + size])
        pos += size
    out.append(struct.pack(">I", LAST_FRAGMENT | (len(payload) - pos)) + payload[pos:])
    return b"".join(out)


def feed_in_chunks(reader: RecordReader, data: bytes, cuts: list[int], as_bytearray: bool = False) -> list[bytes]:
    out: list[bytes] = []
    pos = 0
    for cut in sorted(set(c % (len(data) + 1) for c in cuts)) + [len(data)]:
        chunk = data[pos:cut]
        if chunk or cut == len(data):
            out.extend(bytes(r) for r in reader.feed(bytearray(chunk) if as_bytearray else chunk))
        pos = max(pos, cut)
    return out


@settings(max_examples=300, derandomize=True, database=None, deadline=None)
@given(
    payloads=st.lists(st.binary(max_size=300), min_size=1, max_size=6),
    sizes=st.lists(st.integers(0, 40), max_size=12),
    cuts=st.lists(st.integers(0, 4000), max_size=30),
    as_bytearray=st.booleans(),
)
def test_any_fragmenting_and_any_chunking_gives_the_records_back(
    payloads: list[bytes], sizes: list[int], cuts: list[int], as_bytearray: bool
) -> None:
    stream = b"".join(fragments(p, sizes) for p in payloads)
    reader = RecordReader(max_record=1000)
    assert feed_in_chunks(reader, stream, cuts, as_bytearray) == payloads
    assert reader.idle and reader.buffered == 0


@settings(max_examples=100, derandomize=True, database=None, deadline=None)
@given(payload=st.binary(max_size=2000), size=st.integers(0, 300))
def test_frame_splits_into_fragments_of_the_size_asked(payload: bytes, size: int) -> None:
    data = frame(payload, size)
    reader = RecordReader()
    assert [bytes(r) for r in reader.feed(data)] == [payload]
    lengths = []
    pos = 0
    while pos < len(data):
        (word,) = struct.unpack_from(">I", data, pos)
        lengths.append((word & 0x7FFFFFFF, bool(word & LAST_FRAGMENT)))
        pos += 4 + (word & 0x7FFFFFFF)
    assert [last for _, last in lengths] == [False] * (len(lengths) - 1) + [True]
    if 0 < size < len(payload):
        assert all(n == size for n, _ in lengths[:-1]) and 0 < lengths[-1][0] <= size
    else:
        assert lengths == [(len(payload), True)]


def test_the_cap_is_checked_on_the_marker_before_anything_is_buffered() -> None:
    reader = RecordReader(max_record=100)
    with pytest.raises(RecordTooLarge) as info:
        reader.feed(marker(101))
    assert info.value.offset == 0 and reader.buffered == 0
    # Several fragments: refused at the marker that would take the record past the cap.
    reader = RecordReader(max_record=100)
    first = marker(60, last=False) + bytes(60)
    assert reader.feed(first) == []
    with pytest.raises(RecordTooLarge, match="after 60") as info:
        reader.feed(marker(41)[:2])
        reader.feed(marker(41)[2:])
    assert info.value.offset == 64
    assert RecordReader(max_record=100).feed(marker(100) + bytes(100)) == [bytes(100)]


def test_memory_follows_bytes_received_not_lengths_declared() -> None:
    readers = [RecordReader(max_record=1 << 30) for _ in range(50)]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for reader in readers:
            reader.feed(marker(1 << 29) + bytes(100))  # declares 512 MiB, sends 100 bytes
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert all(r.buffered == 100 for r in readers)
    assert grown < 50 * 4096  # a few hundred bytes per reader, not half a gigabyte


def test_a_flood_of_empty_fragments_is_refused() -> None:
    reader = RecordReader(max_fragments=10)
    with pytest.raises(ProtocolError, match="more than 10 fragments"):
        reader.feed(marker(0, last=False) * 11)


def test_records_handed_out_stay_valid() -> None:
    reader = RecordReader()
    data = bytearray(frame(b"abcd") + frame(b"efgh"))
    records = reader.feed(data)
    data[:] = bytes(len(data))  # the caller reuses its buffer
    assert [bytes(r) for r in records] == [b"abcd", b"efgh"]
    whole = frame(b"zero copy")
    (view,) = RecordReader().feed(whole)
    assert isinstance(view, memoryview) and view.readonly and bytes(view) == b"zero copy"


def test_marker_limits() -> None:
    with pytest.raises(ValueError):
        marker(1 << 31)
    assert marker(5) == struct.pack(">I", LAST_FRAGMENT | 5)
    assert frame(b"") == struct.pack(">I", LAST_FRAGMENT)
