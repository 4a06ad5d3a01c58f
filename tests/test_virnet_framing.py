"""Framing and the sans-IO core fed hostile bytes: typed errors, bounded buffers."""

from __future__ import annotations

import struct

import pytest

from xdrgen.runtime.virnet import events as ev
from xdrgen.runtime.virnet.constants import FRAME_MAX, REMOTE_PROGRAM, MessageType, Status
from xdrgen.runtime.virnet.core import VirNetCore
from xdrgen.runtime.virnet.errors import BadMessageError, LibvirtError, NotSupportedError, ProtocolError, decode_remote_error, encode_remote_error
from xdrgen.runtime.virnet.framing import FrameBuffer, encode_frame

T, S = MessageType, Status


def frame(mtype: int, status: int, serial: int = 1, proc: int = 4, payload: bytes = b"", prog: int = REMOTE_PROGRAM) -> bytes:
    return encode_frame(prog, 1, proc, mtype, serial, status, payload)


def client_with_call(proc: int = 4) -> tuple[VirNetCore, int]:
    core = VirNetCore()
    serial = core.send_call(proc)
    core.data_to_send()
    return core, serial


def test_reply_split_byte_by_byte_is_reassembled() -> None:
    core, serial = client_with_call()
    data = frame(T.REPLY, S.OK, serial, payload=struct.pack(">Q", 2))
    events: list[ev.Event] = []
    for i in range(len(data)):
        events += core.receive_data(data[i : i + 1])
    assert len(events) == 1 and isinstance(events[0], ev.Reply)
    assert events[0].payload.tobytes() == struct.pack(">Q", 2)


@pytest.mark.parametrize("length", [0, 4, 27])
def test_short_length_word_is_a_protocol_error(length: int) -> None:
    core, _ = client_with_call()
    with pytest.raises(ProtocolError, match="shorter than the 28-byte minimum"):
        core.receive_data(struct.pack(">I", length))
    assert core.failed is not None


def test_oversized_length_is_refused_before_the_body_arrives() -> None:
    buf = FrameBuffer(initial_size=4096)
    buf.feed(struct.pack(">I", FRAME_MAX + 1))
    with pytest.raises(ProtocolError, match="exceeds the libvirt maximum") as info:
        buf.next_frame()
    assert info.value.offset == 0


def test_largest_legal_length_is_accepted_and_buffer_grows_only_to_it() -> None:
    buf = FrameBuffer(initial_size=4096)
    buf.feed(struct.pack(">IIIiiII", FRAME_MAX, REMOTE_PROGRAM, 1, 4, T.REPLY, 1, S.OK))
    assert buf.next_frame() is None
    view = buf.get_buffer()
    # room for exactly the rest of the frame (plus nothing unbounded)
    assert len(view) <= FRAME_MAX
    view.release()


@pytest.mark.parametrize(
    ("mtype", "status", "message"),
    [(7, 0, "unknown message type 7"), (99, 0, "unknown message type")],
)
def test_bad_type_is_refused_at_the_header(mtype: int, status: int, message: str) -> None:
    core, _ = client_with_call()
    # header only: refused before any payload arrives
    data = struct.pack(">IIIiiII", 1000, REMOTE_PROGRAM, 1, 4, mtype, 1, status)
    with pytest.raises(ProtocolError, match=message):
        core.receive_data(data)


def test_reply_with_an_unknown_status_fails_only_its_call() -> None:
    # libvirt's client: "Unexpected message status 3"; the connection stays.
    core, serial = client_with_call()
    (event,) = core.receive_data(frame(T.REPLY, 3, serial))
    assert isinstance(event, ev.ReplyError) and "unexpected message status 3" in str(event.error)
    assert core.failed is None


def test_stream_packet_with_an_unknown_status_is_a_protocol_error() -> None:
    core, _ = client_with_call()
    with pytest.raises(ProtocolError, match="unknown message status 3"):
        core.receive_data(frame(T.STREAM, 3, 99))


def test_unknown_program_is_a_protocol_error() -> None:
    core, serial = client_with_call()
    with pytest.raises(ProtocolError, match="unexpected program 0x12345678"):
        core.receive_data(frame(T.REPLY, S.OK, serial, prog=0x12345678))


def test_wrong_program_version_is_a_protocol_error() -> None:
    core, serial = client_with_call()
    with pytest.raises(ProtocolError, match="version 7"):
        core.receive_data(encode_frame(REMOTE_PROGRAM, 7, 4, T.REPLY, serial, S.OK))


def test_reply_without_call_is_a_protocol_error_with_offset() -> None:
    core, serial = client_with_call()
    good = frame(T.REPLY, S.OK, serial)
    with pytest.raises(ProtocolError, match="serial 42, which has no call waiting") as info:
        core.receive_data(good + frame(T.REPLY, S.OK, 42))
    assert info.value.offset == len(good)


def test_call_sent_to_a_client_is_a_protocol_error() -> None:
    core, _ = client_with_call()
    with pytest.raises(ProtocolError, match="not valid towards the client"):
        core.receive_data(frame(T.CALL, S.OK, 5))


def test_failed_core_refuses_further_use() -> None:
    core, _ = client_with_call()
    with pytest.raises(ProtocolError):
        core.receive_data(b"\xff" * 64)
    with pytest.raises(ProtocolError):
        core.send_call(4)
    assert core.receive_data(b"") == []


def test_truncated_frame_waits_without_error_and_buffers_boundedly() -> None:
    core, serial = client_with_call()
    data = frame(T.REPLY, S.OK, serial, payload=b"\0" * 100)
    assert core.receive_data(data[:-1]) == []
    events = core.receive_data(data[-1:])
    assert isinstance(events[0], ev.Reply)


def test_garbage_fuzz_never_escapes_as_anything_but_protocol_error() -> None:
    import random

    rng = random.Random(1234)
    for _ in range(300):
        core, _ = client_with_call()
        blob = bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 200)))
        try:
            core.receive_data(blob)
        except ProtocolError:
            pass


def test_payload_views_stay_valid_after_buffer_reuse() -> None:
    core = VirNetCore(buffer_size=256)
    serials = [core.send_call(4) for _ in range(50)]
    kept = []
    for i, serial in enumerate(serials):
        events = core.receive_data(frame(T.REPLY, S.OK, serial, payload=bytes([i]) * 40))
        kept.append((i, events[0]))
    for i, event in kept:
        assert isinstance(event, ev.Reply)
        assert event.payload.tobytes() == bytes([i]) * 40


def test_recycled_storage_never_overwrites_a_live_view() -> None:
    # Receive straight into the buffer (as recv_into does), keep some payload
    # views and drop the others: storage whose views are all gone is reused,
    # and no kept view ever sees its bytes change.
    fb = FrameBuffer(1 << 17)
    wire = b"".join(frame(T.STREAM, S.CONTINUE, 7, payload=bytes([i % 251]) * (300 + i % 700)) for i in range(2000))
    kept: list[tuple[int, memoryview]] = []
    pos = i = 0
    while pos < len(wire):
        view = fb.get_buffer()
        n = min(len(view), 50000, len(wire) - pos)
        view[:n] = wire[pos : pos + n]
        del view
        fb.buffer_updated(n)
        pos += n
        while (got := fb.next_frame()) is not None:
            _, payload, _ = got
            if i % 5 == 0:
                kept.append((i, payload))
            i += 1
            del payload, got
    assert i == 2000
    for k, payload in kept:
        assert payload.tobytes() == bytes([k % 251]) * (300 + k % 700)
    assert len(fb._spares) <= 4


def test_remote_error_roundtrip_and_unsupported_mapping() -> None:
    err = LibvirtError(42, 12, "Domain not found", 2, "a", None, "c", 7, -1)
    decoded = decode_remote_error(encode_remote_error(err))
    assert (decoded.code, decoded.domain, decoded.message, decoded.level) == (42, 12, "Domain not found", 2)
    assert (decoded.str1, decoded.str2, decoded.str3, decoded.int1, decoded.int2) == ("a", None, "c", 7, -1)
    assert not isinstance(decoded, NotSupportedError)
    assert isinstance(decode_remote_error(encode_remote_error(LibvirtError(3, 13, "no"))), NotSupportedError)
    assert isinstance(decode_remote_error(encode_remote_error(LibvirtError(39, 7, "unknown procedure: 9"))), NotSupportedError)


def test_truncated_remote_error_names_the_field() -> None:
    raw = encode_remote_error(LibvirtError(1, 2, "message text"))
    with pytest.raises(BadMessageError, match=r"remote_error\.message"):
        decode_remote_error(raw[:12])


def test_reply_error_with_hostile_remote_error_fails_only_that_call() -> None:
    # libvirt's client fails the call ("Unable to decode message payload") and keeps the connection.
    core, serial = client_with_call()
    bad = struct.pack(">iiII", 1, 2, 1, 0xFFFFFFF0)  # message length far beyond the limit
    (event,) = core.receive_data(frame(T.REPLY, S.ERROR, serial, payload=bad))
    assert isinstance(event, ev.ReplyError) and isinstance(event.error, BadMessageError)
    assert "exceeds" in str(event.error) and core.failed is None
