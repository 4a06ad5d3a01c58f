"""The sans-IO guestfs core, driven with hand-built daemon bytes (no peer)."""

from __future__ import annotations

import struct

import pytest

from xdrgen.runtime.guestfs import events as ev
from xdrgen.runtime.guestfs.core import GuestfsCore, Phase
from xdrgen.runtime.guestfs.errors import GuestfsProtocolError, GuestfsStateError

PROG = 0x2000F5F5
LAUNCH = struct.pack(">I", 0xF5F55FF5)
CANCEL = struct.pack(">I", 0xFFFFEEEE)


def framed(body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + body


def reply(proc: int, serial: int, payload: bytes = b"", *, status: int = 0, direction: int = 1,
          prog: int = PROG, vers: int = 4) -> bytes:
    return framed(struct.pack(">IIiiIQQi", prog, vers, proc, direction, serial, 0, 0, status) + payload)


def error_body(errno: str, message: str) -> bytes:
    def s(text: str) -> bytes:
        raw = text.encode()
        return struct.pack(">I", len(raw)) + raw + b"\0" * (-len(raw) & 3)
    return s(errno) + s(message)


def chunk(data: bytes, cancel: int = 0) -> bytes:
    return framed(struct.pack(">iI", cancel, len(data)) + data + b"\0" * (-len(data) & 3))


def progress(proc: int, serial: int, position: int, total: int) -> bytes:
    return struct.pack(">I", 0xFFFF5555) + struct.pack(">iIQQ", proc, serial, position, total)


def sent(core: GuestfsCore) -> bytes:
    return b"".join(bytes(b) for b in core.data_to_send())


def launched() -> GuestfsCore:
    core = GuestfsCore()
    assert core.receive_data(LAUNCH) == [ev.Launched()]
    return core


def test_launch_required_first() -> None:
    core = GuestfsCore()
    with pytest.raises(GuestfsStateError):
        core.send_call(195)
    with pytest.raises(GuestfsProtocolError, match="unexpected message while awaiting the launch flag") as info:
        core.receive_data(reply(195, 1))
    assert info.value.offset == 0
    assert core.phase is Phase.FAILED
    with pytest.raises(GuestfsProtocolError):
        core.send_call(195)


def test_second_launch_flag_is_an_error() -> None:
    core = launched()
    with pytest.raises(GuestfsProtocolError, match="launch flag after the launch") as info:
        core.receive_data(LAUNCH)
    assert info.value.offset == 4


def test_plain_call_and_reply() -> None:
    core = launched()
    serial = core.send_call(195, b"\0\0\0\0", optargs_bitmask=3)
    wire = sent(core)
    assert wire == framed(struct.pack(">IIiiIQQi", PROG, 4, 195, 0, serial, 0, 3, 0) + b"\0\0\0\0")
    with pytest.raises(GuestfsStateError, match="while awaiting a reply"):
        core.send_call(1)
    events = core.receive_data(progress(195, serial, 1, 2) + progress(195, serial + 5, 1, 2) + reply(195, serial, b"\0\0\0\1"))
    # Payload offset: launch word, two progress records, the length word, the header.
    assert events == [ev.ProgressNotice(195, serial, 1, 2), ev.Reply(serial, 195, b"\0\0\0\1", 4 + 2 * 28 + 4 + 40)]
    assert core.phase is Phase.IDLE
    assert core.receive_data(CANCEL) == []  # a late cancel flag is ignored
    assert core.send_call(195) == serial + 1


def test_error_reply() -> None:
    core = launched()
    serial = core.send_call(32)
    [event] = core.receive_data(reply(32, serial, error_body("ENOENT", "/a/b: No such file or directory"), status=1))
    assert isinstance(event, ev.ErrorReply)
    assert (event.error.message, event.error.errno) == ("/a/b: No such file or directory", "ENOENT")
    assert core.phase is Phase.IDLE


@pytest.mark.parametrize(
    ("message", "problem"),
    [
        (reply(195, 99), "reply for serial 99 procedure 195, but the call in flight is serial 1 procedure 195"),
        (reply(196, 1), "procedure 196"),
        (reply(195, 1, direction=0), "direction 0, expected REPLY"),
        (reply(195, 1, prog=0x20008086), "program 0x20008086"),
        (reply(195, 1, vers=3), "version 3"),
        (reply(195, 1, status=2), "reply status 2"),
        (framed(b"\0" * 12), "shorter than the 40-byte header"),
        (reply(195, 1, struct.pack(">I", 20) + b"ENOENT", status=1), "errno_string: input ends early"),
        (struct.pack(">I", 0x7FFFFFFF), "exceeds GUESTFS_MESSAGE_MAX"),
    ],
    ids=["serial", "proc", "direction", "program", "version", "status", "short", "bad-error", "huge"],
)
def test_hostile_replies(message: bytes, problem: str) -> None:
    core = launched()
    core.send_call(195)
    with pytest.raises(GuestfsProtocolError, match=problem) as info:
        core.receive_data(message)
    # The message starts after the launch word; the error body after its header.
    assert info.value.offset == (48 if "errno" in problem else 4)
    assert core.failed is info.value


def test_upload_sequence() -> None:
    core = launched()
    data = bytes(range(256)) * 40  # 10240 bytes: two chunks
    serial = core.send_call(66, b"", file_in=True, progress_hint=len(data))
    head = sent(core)
    assert head == framed(struct.pack(">IIiiIQQi", PROG, 4, 66, 0, serial, len(data), 0, 0))
    assert core.send_data(data) is True
    core.end_upload()
    assert sent(core) == (
        framed(struct.pack(">iI", 0, 8192) + data[:8192])
        + framed(struct.pack(">iI", 0, 2048) + data[8192:])
        + framed(struct.pack(">iI", 0, 0))
    )
    assert core.phase is Phase.AWAIT_REPLY
    assert core.receive_data(reply(66, serial)) == [ev.Reply(serial, 66, b"", 48)]


def test_upload_cancelled_by_daemon() -> None:
    core = launched()
    serial = core.send_call(66, b"", file_in=True)
    sent(core)
    assert core.send_data(b"abc")
    sent(core)
    assert core.receive_data(CANCEL) == [ev.UploadCancelledByDaemon(serial)]
    assert sent(core) == framed(struct.pack(">iI", 1, 0))  # answered with a cancel chunk
    assert core.send_data(b"more") is False  # dropped, nothing queued
    core.end_upload()  # no-op after a daemon cancel: must not send an end chunk too
    assert sent(core) == b""
    [event] = core.receive_data(reply(66, serial, error_body("ENOENT", "/x: No such file"), status=1))
    assert isinstance(event, ev.ErrorReply) and event.error.message == "/x: No such file"


def test_upload_cancelled_by_us() -> None:
    core = launched()
    serial = core.send_call(66, b"", file_in=True)
    core.send_data(b"abc")
    core.cancel_upload()
    assert sent(core).endswith(framed(struct.pack(">iI", 1, 0)))
    with pytest.raises(GuestfsStateError):
        core.send_data(b"x")
    events = core.receive_data(reply(66, serial, error_body("", "file upload cancelled"), status=1))
    assert events == [ev.TransferCancelled(serial, by_daemon=False)]
    assert core.phase is Phase.IDLE


def test_download_sequence_with_progress() -> None:
    core = launched()
    serial = core.send_call(67, b"", file_out=True)
    sent(core)
    stream = reply(67, serial) + chunk(b"hello") + progress(67, serial, 5, 9) + chunk(b"abcd") + chunk(b"")
    events = []
    for i in range(len(stream)):
        events += core.receive_data(stream[i : i + 1])
    assert events == [
        ev.Reply(serial, 67, b"", 48),
        ev.DownloadData(serial, b"hello"),
        ev.ProgressNotice(67, serial, 5, 9),
        ev.DownloadData(serial, b"abcd"),
        ev.DownloadEnd(serial),
    ]
    assert core.phase is Phase.IDLE and core.buffered_input == 0


def test_download_error_reply_has_no_chunks() -> None:
    core = launched()
    serial = core.send_call(67, b"", file_out=True)
    [event] = core.receive_data(reply(67, serial, error_body("ENOENT", "/nope"), status=1))
    assert isinstance(event, ev.ErrorReply)
    assert core.phase is Phase.IDLE
    with pytest.raises(GuestfsProtocolError, match="unexpected message while idle"):
        core.receive_data(chunk(b"stray"))


def test_download_cancelled_by_us_discards_until_final_chunk() -> None:
    core = launched()
    serial = core.send_call(67, b"", file_out=True)
    sent(core)
    assert core.receive_data(reply(67, serial) + chunk(b"one")) == [ev.Reply(serial, 67, b"", 48), ev.DownloadData(serial, b"one")]
    core.cancel_download()
    core.cancel_download()  # idempotent: one flag on the wire
    assert sent(core) == CANCEL
    assert core.receive_data(chunk(b"two") + chunk(b"three")) == []
    assert core.receive_data(chunk(b"", cancel=1)) == [ev.TransferCancelled(serial, by_daemon=False)]
    assert core.phase is Phase.IDLE


def test_download_cancelled_by_daemon() -> None:
    core = launched()
    serial = core.send_call(67, b"", file_out=True)
    events = core.receive_data(reply(67, serial) + chunk(b"x") + chunk(b"", cancel=1))
    assert events[-1] == ev.TransferCancelled(serial, by_daemon=True)


@pytest.mark.parametrize(
    ("body", "problem", "where"),
    [
        (struct.pack(">iI", 1, 1) + b"x\0\0\0", "cancel chunk carries data", 0),
        (struct.pack(">iI", 0, 9000) + bytes(9000), "exceeds GUESTFS_MAX_CHUNK_SIZE", 4),  # the length field
        (struct.pack(">iI", 7, 0), "cancel field is 7", 0),
        (b"\0\0", "shorter than 8", 0),
    ],
    ids=["cancel-with-data", "oversized", "bad-cancel", "short"],
)
def test_hostile_chunks_fail_the_core(body: bytes, problem: str, where: int) -> None:
    core = launched()
    serial = core.send_call(67, b"", file_out=True)
    core.receive_data(reply(67, serial))
    with pytest.raises(GuestfsProtocolError, match=problem) as info:
        core.receive_data(framed(body))
    assert info.value.offset == 4 + 44 + where
    assert core.phase is Phase.FAILED


def test_state_misuse() -> None:
    core = launched()
    with pytest.raises(GuestfsStateError):
        core.send_data(b"x")
    with pytest.raises(GuestfsStateError):
        core.end_upload()
    with pytest.raises(GuestfsStateError):
        core.cancel_download()
    with pytest.raises(ValueError):
        core.send_call(1, file_in=True, file_out=True)


def test_connection_lost_fails_later_use() -> None:
    core = launched()
    core.connection_lost()
    with pytest.raises(Exception, match="closed by the daemon"):
        core.send_call(1)
