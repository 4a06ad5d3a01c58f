"""The sans-IO core's state machine: calls, out-of-order replies, streams, keepalive, fds."""

from __future__ import annotations

import struct

import pytest

from xdrgen.runtime.virnet import events as ev
from xdrgen.runtime.virnet.constants import (
    KEEPALIVE_PROC_PING,
    KEEPALIVE_PROC_PONG,
    KEEPALIVE_PROGRAM,
    REMOTE_PROGRAM,
    STREAM_CHUNK_MAX,
    MessageType,
    Status,
)
from xdrgen.runtime.virnet.core import FdCarrier, StreamDirection, VirNetCore
from xdrgen.runtime.virnet.errors import BadMessageError, LibvirtError, ProtocolError, StreamError, StreamStateError, encode_remote_error
from xdrgen.runtime.virnet.framing import FrameBuffer, encode_frame

T, S = MessageType, Status


def wire(core: VirNetCore) -> bytes:
    out = core.data_to_send()
    assert not any(isinstance(b, FdCarrier) for b in out)
    return b"".join(bytes(b) for b in out)  # type: ignore[arg-type]


def pair() -> tuple[VirNetCore, VirNetCore]:
    return VirNetCore(), VirNetCore(server=True)


def test_many_calls_replied_out_of_order() -> None:
    client, server = pair()
    serials = [client.send_call(4, struct.pack(">I", i)) for i in range(20)]
    calls = server.receive_data(wire(client))
    assert [c.serial for c in calls if isinstance(c, ev.IncomingCall)] == serials
    for call in reversed(calls):
        assert isinstance(call, ev.IncomingCall)
        server.send_reply(call.prog, call.vers, call.proc, call.serial, bytes(call.payload) * 2)
    replies = client.receive_data(wire(server))
    got = {r.serial: bytes(r.payload) for r in replies if isinstance(r, ev.Reply)}
    assert got == {s: struct.pack(">I", i) * 2 for i, s in enumerate(serials)}
    assert client.pending_calls == 0


def test_error_reply_raises_typed_error_event() -> None:
    client, server = pair()
    serial = client.send_call(23)
    server.receive_data(wire(client))
    server.send_error(REMOTE_PROGRAM, 1, 23, serial, LibvirtError(42, 12, "Domain not found"))
    (event,) = client.receive_data(wire(server))
    assert isinstance(event, ev.ReplyError) and isinstance(event.error, LibvirtError)
    assert event.error.code == 42 and event.error.message == "Domain not found" and event.error.proc == 23


def test_cancelled_call_drops_its_late_reply_and_timeouts_expire() -> None:
    client, server = pair()
    s1 = client.send_call(4, deadline=10.0)
    s2 = client.send_call(4, deadline=20.0)
    assert client.next_deadline() == 10.0
    assert [e.serial for e in client.expire(15.0) if isinstance(e, ev.CallTimedOut)] == [s1]
    assert client.cancel_call(s2)
    for c in server.receive_data(wire(client)):
        assert isinstance(c, ev.IncomingCall)
        server.send_reply(c.prog, c.vers, c.proc, c.serial)
    assert client.receive_data(wire(server)) == []
    # a second late reply for the same serial is no longer excused
    server.send_reply(REMOTE_PROGRAM, 1, 4, s1)
    with pytest.raises(ProtocolError):
        client.receive_data(wire(server))


def test_mismatched_procedure_in_reply_fails_only_that_call() -> None:
    # libvirt's client (virNetClientProgramCall): "Unexpected message proc"; the connection stays.
    client, server = pair()
    serial = client.send_call(4)
    server.send_reply(REMOTE_PROGRAM, 1, 5, serial)
    (event,) = client.receive_data(wire(server))
    assert isinstance(event, ev.ReplyError) and event.serial == serial
    assert isinstance(event.error, BadMessageError) and "names procedure 5" in str(event.error)
    again = client.send_call(4)
    server.send_reply(REMOTE_PROGRAM, 1, 4, again, b"ok!!")
    assert [type(e) for e in client.receive_data(wire(server))] == [ev.Reply]
    assert client.failed is None


def test_reply_with_status_continue_or_bad_remote_error_fails_only_that_call() -> None:
    client, server = pair()
    first, second, third = client.send_call(4), client.send_call(4), client.send_call(4)
    server._frame(REMOTE_PROGRAM, 1, 4, T.REPLY, first, S.CONTINUE)
    server._frame(REMOTE_PROGRAM, 1, 4, T.REPLY, second, S.ERROR, b"\0\0\0\x01")  # truncated remote_error
    server.send_reply(REMOTE_PROGRAM, 1, 4, third)
    events = client.receive_data(wire(server))
    assert [type(e) for e in events] == [ev.ReplyError, ev.ReplyError, ev.Reply]
    assert "unexpected message status 2" in str(events[0].error)  # type: ignore[union-attr]
    assert "truncated remote_error.domain" in str(events[1].error)  # type: ignore[union-attr]
    assert all(isinstance(e.error, BadMessageError) for e in events[:2])  # type: ignore[union-attr]


def test_reply_for_a_serial_nobody_waits_for_closes_as_libvirt_does() -> None:
    client, server = pair()
    server.send_reply(REMOTE_PROGRAM, 1, 4, 77)
    with pytest.raises(ProtocolError, match="serial 77"):
        client.receive_data(wire(server))


def test_stream_packets_for_no_stream_and_bad_events_are_ignored_by_the_client() -> None:
    client, server = pair()
    server._frame(REMOTE_PROGRAM, 1, 209, T.STREAM, 4242, S.CONTINUE, b"data")
    server._frame(REMOTE_PROGRAM, 1, 209, T.STREAM, 4243, S.ERROR, b"junk")
    server._frame(REMOTE_PROGRAM, 1, 209, T.STREAM_HOLE, 4244, S.CONTINUE, b"\0" * 12)
    server._frame(REMOTE_PROGRAM, 1, 107, T.MESSAGE, 0, S.ERROR)
    serial = client.send_call(4)
    server.send_reply(REMOTE_PROGRAM, 1, 4, serial)
    assert [type(e) for e in client.receive_data(wire(server))] == [ev.Reply]
    assert client.ignored_messages == 4 and client.failed is None


def test_remote_error_strings_that_are_not_utf8_are_kept_with_surrogateescape() -> None:
    client, server = pair()
    serial = client.send_call(4)
    payload = struct.pack(">iiII4siI", 42, 12, 1, 1, b"\xff", 2, 0)  # code, domain, message, level, no dom
    payload += struct.pack(">II4sIIiiI", 1, 2, b"\xfey", 0, 0, 0, 0, 0)  # str1, no str2/str3, int1, int2, no net
    server._frame(REMOTE_PROGRAM, 1, 4, T.REPLY, serial, S.ERROR, payload)
    (event,) = client.receive_data(wire(server))
    assert isinstance(event, ev.ReplyError) and isinstance(event.error, LibvirtError)
    assert (event.error.code, event.error.message, event.error.str1) == (42, "\udcff", "\udcfey")
    assert event.error.message is not None
    assert event.error.message.encode("utf-8", "surrogateescape") == b"\xff"


def test_keepalive_ping_is_answered_with_pong() -> None:
    client = VirNetCore()
    events = client.receive_data(encode_frame(KEEPALIVE_PROGRAM, 1, KEEPALIVE_PROC_PING, T.MESSAGE, 0, S.OK))
    assert isinstance(events[0], ev.KeepalivePing)
    fb = FrameBuffer()
    fb.feed(wire(client))
    frame = fb.next_frame()
    assert frame is not None
    h = frame[0]
    assert (h.prog, h.proc, h.type, h.status) == (KEEPALIVE_PROGRAM, KEEPALIVE_PROC_PONG, T.MESSAGE, S.OK)


def test_keepalive_with_payload_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="malformed keepalive"):
        VirNetCore().receive_data(encode_frame(KEEPALIVE_PROGRAM, 1, 1, T.MESSAGE, 0, S.OK, b"\0\0\0\0"))


def test_own_keepalive_pings_then_declares_peer_dead() -> None:
    client = VirNetCore()
    client.start_keepalive(5, 2, now=0.0)
    assert client.expire(4.0) == [] and client.output_bytes == 0
    assert client.expire(5.0) == [] and client.output_bytes == 28
    client.data_to_send()
    assert client.expire(10.0) == [] and client.output_bytes == 28  # second ping
    client.data_to_send()
    assert any(isinstance(e, ev.PeerDeadEvent) for e in client.expire(15.0))


def test_any_received_frame_resets_keepalive() -> None:
    client = VirNetCore()
    client.start_keepalive(5, 1, now=0.0)
    client.expire(5.0)  # ping sent
    client.receive_data(encode_frame(KEEPALIVE_PROGRAM, 1, KEEPALIVE_PROC_PONG, T.MESSAGE, 0, S.OK))
    assert client.expire(6.0) == []
    assert client.expire(10.0) == []  # only 4 s since the pong: no ping due yet beyond the first


def test_download_stream_life_cycle() -> None:
    client, server = pair()
    serial = client.send_call(209, stream=StreamDirection.RECEIVE)
    (call,) = server.receive_data(wire(client))
    assert isinstance(call, ev.IncomingCall)
    server.open_stream(serial, 209, direction=StreamDirection.SEND)
    server.send_reply(REMOTE_PROGRAM, 1, 209, serial)
    payload = bytes(range(256)) * 2048  # 512 KiB: three chunks
    assert server.send_stream_data(serial, payload) == 3
    server.send_stream_eof(serial)
    events = client.receive_data(wire(server))
    assert isinstance(events[0], ev.Reply)
    data = [e for e in events if isinstance(e, ev.StreamData)]
    assert [len(d.data) for d in data] == [STREAM_CHUNK_MAX, STREAM_CHUNK_MAX, len(payload) - 2 * STREAM_CHUNK_MAX]
    assert b"".join(d.data.tobytes() for d in data) == payload
    assert isinstance(events[-1], ev.StreamEnd)
    client.finish_stream(serial)
    (fin,) = server.receive_data(wire(client))
    assert isinstance(fin, ev.StreamFinished)  # the server core confirms it at once, as libvirtd does
    (done,) = client.receive_data(wire(server))
    assert isinstance(done, ev.StreamFinished) and not client.stream_is_open(serial)


def test_stream_send_does_not_copy_the_callers_buffer() -> None:
    client = VirNetCore()
    serial = client.send_call(208, stream=StreamDirection.SEND)
    client.data_to_send()
    data = bytearray(600000)
    client.send_stream_data(serial, data)
    out = client.data_to_send()
    views = [b for b in out if isinstance(b, memoryview)]
    assert len(views) == 3 and all(v.obj is data for v in views)
    assert all(isinstance(b, bytes) and len(b) == 28 for b in out[0::2])


def test_server_stream_error_and_client_abort() -> None:
    client, server = pair()
    s1 = client.send_call(208, stream=StreamDirection.SEND)
    s2 = client.send_call(209, stream=StreamDirection.RECEIVE)
    server.receive_data(wire(client))
    server.open_stream(s1, 208, direction=StreamDirection.RECEIVE)
    server.open_stream(s2, 209, direction=StreamDirection.SEND)
    server.send_reply(REMOTE_PROGRAM, 1, 208, s1)
    server.send_reply(REMOTE_PROGRAM, 1, 209, s2)
    server.send_stream_error(s1, LibvirtError(1, 18, "cannot write to stream"))
    events = client.receive_data(wire(server))
    failed = [e for e in events if isinstance(e, ev.StreamFailed)]
    assert len(failed) == 1 and isinstance(failed[0].error, StreamError)
    assert failed[0].error.message == "cannot write to stream"
    with pytest.raises(StreamStateError):
        client.send_stream_data(s1, b"x")
    client.abort_stream(s2)
    (aborted,) = server.receive_data(wire(client))
    assert isinstance(aborted, ev.StreamAborted)
    with pytest.raises(StreamStateError):
        server.send_stream_data(s2, b"late")
    # data the server sent before it saw the abort is dropped quietly
    in_flight = encode_frame(REMOTE_PROGRAM, 1, 209, T.STREAM, s2, S.CONTINUE, b"in flight")
    events = client.receive_data(in_flight + wire(server))
    assert [type(e) for e in events] == [ev.StreamAborted]


def test_hole_only_on_sparse_streams() -> None:
    client = VirNetCore()
    dense = client.send_call(209, stream=StreamDirection.RECEIVE)
    sparse = client.send_call(209, stream=StreamDirection.RECEIVE, sparse=True)
    hole = struct.pack(">qI", 1 << 20, 0)
    (e,) = client.receive_data(encode_frame(REMOTE_PROGRAM, 1, 209, T.STREAM_HOLE, sparse, S.CONTINUE, hole))
    assert isinstance(e, ev.StreamHole) and e.length == 1 << 20
    with pytest.raises(ProtocolError, match="not opened sparse"):
        client.receive_data(encode_frame(REMOTE_PROGRAM, 1, 209, T.STREAM_HOLE, dense, S.CONTINUE, hole))
    with pytest.raises(StreamStateError):
        VirNetCore().send_stream_hole(1, 10)


def test_hole_with_bad_payload_is_a_protocol_error() -> None:
    client = VirNetCore()
    s = client.send_call(209, stream=StreamDirection.RECEIVE, sparse=True)
    with pytest.raises(ProtocolError, match="payload of 4 bytes"):
        client.receive_data(encode_frame(REMOTE_PROGRAM, 1, 209, T.STREAM_HOLE, s, S.CONTINUE, b"\0" * 4))


def test_data_on_a_send_only_stream_is_a_protocol_error() -> None:
    client = VirNetCore()
    s = client.send_call(208, stream=StreamDirection.SEND)
    with pytest.raises(ProtocolError, match="only sends on"):
        client.receive_data(encode_frame(REMOTE_PROGRAM, 1, 208, T.STREAM, s, S.CONTINUE, b"data"))


def test_two_way_stream_carries_data_both_ways() -> None:
    client, server = pair()
    s = client.send_call(201, stream=StreamDirection.BOTH)
    server.receive_data(wire(client))
    server.open_stream(s, 201, direction=StreamDirection.BOTH)
    server.send_reply(REMOTE_PROGRAM, 1, 201, s)
    server.send_stream_data(s, b"login: ")
    client.receive_data(wire(server))
    client.send_stream_data(s, b"root\n")
    (data,) = server.receive_data(wire(client))
    assert isinstance(data, ev.StreamData) and data.data.tobytes() == b"root\n"


def test_call_with_fds_frames_count_and_carriers() -> None:
    client, server = pair()
    serial = client.send_call(350, b"\0\0\0\1", fds=[7, 8])
    out = client.data_to_send()
    assert [b.fd for b in out if isinstance(b, FdCarrier)] == [7, 8]
    raw = b"".join(bytes(b) for b in out if not isinstance(b, FdCarrier))
    assert struct.unpack_from(">i", raw, 16)[0] == MessageType.CALL_WITH_FDS
    assert raw[28:32] == b"\0\0\0\2"
    # the receiver waits for both carrier bytes and both fds (a transport hands the
    # fds of a read in before its bytes)
    assert server.receive_data(raw) == []
    assert server.fds_received([70, 80]) == []
    (call,) = server.receive_data(b"\0\0")
    assert isinstance(call, ev.IncomingCall) and call.fds == [70, 80] and call.payload.tobytes() == b"\0\0\0\1"
    assert call.serial == serial
    # carrier bytes that came without their fds: libvirtd drops the client
    lone = VirNetCore(server=True)
    assert lone.receive_data(raw) == []
    with pytest.raises(ProtocolError, match="2 fd carrier bytes arrived with only 0 fds"):
        lone.receive_data(b"\0\0")


def test_too_many_fds_is_a_protocol_error() -> None:
    server = VirNetCore(server=True)
    with pytest.raises(ProtocolError, match="33 fds"):
        server.receive_data(encode_frame(REMOTE_PROGRAM, 1, 350, T.CALL_WITH_FDS, 1, S.OK, struct.pack(">I", 33)))


def test_remote_error_payload_encoding_is_stable() -> None:
    # code, domain, message (present), level, dom (null), str1-3 (null), int1, int2, net (null)
    raw = encode_remote_error(LibvirtError(1, 2, "ab", 2))
    assert raw == struct.pack(">iiII", 1, 2, 1, 2) + b"ab\0\0" + struct.pack(">iIIIIiiI", 2, 0, 0, 0, 0, 0, 0, 0)
