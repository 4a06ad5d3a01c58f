"""Framing of the libguestfs daemon protocol, checked against hand-built bytes."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xdrgen.runtime.guestfs.errors import GuestfsProtocolError, decode_message_error, encode_message_error
from xdrgen.runtime.guestfs.framing import (
    Cancel,
    InputBuffer,
    Launch,
    Message,
    Progress,
    decode_chunk,
    decode_header,
    encode_data_chunks,
    encode_message,
)

PROG = 0x2000F5F5


def joined(buffers: list[bytes | memoryview]) -> bytes:
    return b"".join(bytes(b) for b in buffers)


def test_call_message_layout() -> None:
    wire = joined(encode_message(195, 7, b"\0\0\0\1", progress_hint=1 << 40, optargs_bitmask=5))
    expected_header = struct.pack(">IIiiIQQi", PROG, 4, 195, 0, 7, 1 << 40, 5, 0)
    assert wire == struct.pack(">I", 44) + expected_header + b"\0\0\0\1"


def test_message_too_large_is_refused() -> None:
    with pytest.raises(ValueError, match="GUESTFS_MESSAGE_MAX"):
        encode_message(1, 1, bytes(4 * 1024 * 1024 - 40 + 1))
    encode_message(1, 1, bytes(4 * 1024 * 1024 - 40))  # exactly the maximum is fine


def test_data_chunks_split_at_8192_and_pad() -> None:
    data = bytes(range(256)) * 33 + b"xyz"  # 8451 bytes: one full chunk and 259 bytes
    wire = joined(encode_data_chunks(data))
    first = struct.pack(">IiI", 8 + 8192, 0, 8192) + data[:8192]
    second = struct.pack(">IiI", 8 + 260, 0, 259) + data[8192:] + b"\0"
    assert wire == first + second
    assert encode_data_chunks(b"") == []


def test_input_buffer_records_and_offsets() -> None:
    chunk_body = struct.pack(">iI", 0, 3) + b"abc\0"
    stream = (
        struct.pack(">I", 0xF5F55FF5)
        + struct.pack(">I", 0xFFFF5555) + struct.pack(">iIQQ", 195, 9, 10, 20)
        + struct.pack(">I", len(chunk_body)) + chunk_body
        + struct.pack(">I", 0xFFFFEEEE)
    )
    buf = InputBuffer()
    records = []
    for i in range(len(stream)):  # byte by byte: every split point
        buf.feed(stream[i : i + 1])
        while (r := buf.next_record()) is not None:
            records.append(r)
    assert records == [
        Launch(0),
        Progress(195, 9, 10, 20, 4),
        Message(chunk_body, 32),
        Cancel(32 + 4 + len(chunk_body)),
    ]
    assert buf.buffered == 0


def test_oversized_length_refused_before_buffering() -> None:
    buf = InputBuffer()
    buf.feed(b"\0" * 8 + struct.pack(">I", 4 * 1024 * 1024 + 1))
    assert buf.next_record() == Message(b"", 0)
    assert buf.next_record() == Message(b"", 4)
    with pytest.raises(GuestfsProtocolError) as info:
        buf.next_record()
    assert info.value.offset == 8
    assert "exceeds GUESTFS_MESSAGE_MAX" in str(info.value)


def test_header_too_short() -> None:
    with pytest.raises(GuestfsProtocolError, match="shorter than the 40-byte header") as info:
        decode_header(bytes(39), 123)
    assert info.value.offset == 123


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"\0\0\0\0", "shorter than 8"),
        (struct.pack(">iI", 0, 8193) + bytes(8196), "exceeds GUESTFS_MAX_CHUNK_SIZE"),
        (struct.pack(">iI", 0, 3) + b"abc", "does not hold exactly 3"),
        (struct.pack(">iI", 0, 3) + b"abc\0\0\0\0\0", "does not hold exactly 3"),
        (struct.pack(">iI", 0, 3) + b"abc\1", "non-zero padding"),
        (struct.pack(">iI", 2, 0), "cancel field is 2"),
    ],
)
def test_hostile_chunks(body: bytes, problem: str) -> None:
    with pytest.raises(GuestfsProtocolError, match=problem):
        decode_chunk(body, 50)


def test_chunk_decodes() -> None:
    assert decode_chunk(struct.pack(">iI", 0, 5) + b"hello\0\0\0", 0) == (0, b"hello")
    assert decode_chunk(struct.pack(">iI", 1, 0), 0) == (1, b"")


def test_message_error_roundtrip_and_hostile() -> None:
    wire = struct.pack(">I", 6) + b"ENOENT\0\0" + struct.pack(">I", 5) + b"gone!\0\0\0"
    assert encode_message_error("gone!", "ENOENT") == wire
    err = decode_message_error(wire, 0)
    assert (err.message, err.errno, err.errno_code) == ("gone!", "ENOENT", 2)
    with pytest.raises(GuestfsProtocolError, match="errno_string: length 33 exceeds maximum 32") as info:
        decode_message_error(struct.pack(">I", 33) + bytes(36) + struct.pack(">I", 0), 100)
    assert info.value.offset == 100
    with pytest.raises(GuestfsProtocolError, match="error_message: input ends early") as info:
        decode_message_error(struct.pack(">I", 0) + struct.pack(">I", 0x100) + b"abcd", 100)
    assert info.value.offset == 104
    with pytest.raises(GuestfsProtocolError, match="trailing"):
        decode_message_error(wire + b"\0\0\0\0", 0)


@given(st.binary(max_size=300), st.lists(st.integers(1, 64), max_size=20))
def test_arbitrary_bytes_never_escape_as_other_errors(data: bytes, cuts: list[int]) -> None:
    """Whatever arrives, in whatever pieces: records or GuestfsProtocolError, nothing else."""
    buf = InputBuffer()
    pos = 0
    for cut in cuts + [len(data)]:
        buf.feed(data[pos : pos + cut])
        pos += cut
        try:
            while (r := buf.next_record()) is not None:
                if isinstance(r, Message):
                    try:
                        decode_chunk(r.payload, r.offset)
                    except GuestfsProtocolError:
                        pass
        except GuestfsProtocolError as exc:
            assert exc.offset is not None and 0 <= exc.offset < len(data)
            return
