"""`xdrgen dissect --framing libvirt` on a capture built with the encoders generated
from libvirt's remote_protocol.x (constants from libvirt.h)."""

from __future__ import annotations

import struct
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from conftest import LIBVIRT_HEADER, require_shared
from xdrgen.build.loader import load_generated
from xdrgen.cli import main
from xdrgen.frontend.options import FrontendOptions
from xdrgen.wire import libvirt
from xdrgen.wire.errors import WireError

REMOTE_PROGRAM = 0x20008086
KEEPALIVE = 0x6B656570


@pytest.fixture(scope="module")
def remote_x() -> Path:
    path = require_shared("libvirt/remote_protocol.x")
    if not LIBVIRT_HEADER.is_file():
        pytest.skip(f"{LIBVIRT_HEADER} not found (install Debian's libvirt-dev)")
    return path


@pytest.fixture(scope="module")
def remote(remote_x: Path) -> ModuleType:
    return load_generated(remote_x, FrontendOptions(constants_from=(LIBVIRT_HEADER,)))


def frame(
    proc: int, mtype: int, serial: int, status: int, payload: bytes = b"", prog: int = REMOTE_PROGRAM
) -> bytes:
    return struct.pack(">IIIiiII", 28 + len(payload), prog, 1, proc, mtype, serial, status) + payload


def encode(remote: Any, name: str, value: Any) -> bytes:
    data: bytes = remote.XDR_TYPES[name].encode(value)
    return data


def number(remote: Any, name: str) -> int:
    value: int = remote.PROCEDURE_TABLES["REMOTE"].by_name[name].number
    return value


def capture(remote: Any) -> bytes:
    dom = remote.remote_nonnull_domain("guest-1", b"\x22" * 16, 7)
    lookup = number(remote, "DOMAIN_LOOKUP_BY_NAME")
    lifecycle = number(remote, "DOMAIN_EVENT_LIFECYCLE")
    error = remote.remote_error(42, 10, "Domain not found", 2, None, "guest-2", None, None, 0, 0, None)
    return b"".join(
        [
            frame(1, 0, 1, 0, encode(remote, "remote_connect_open_args", remote.remote_connect_open_args("qemu:///system", 0))),
            frame(1, 1, 1, 0),
            frame(lookup, 0, 2, 0, encode(remote, "remote_domain_lookup_by_name_args", remote.remote_domain_lookup_by_name_args("guest-1"))),
            frame(lookup, 1, 2, 0, encode(remote, "remote_domain_lookup_by_name_ret", remote.remote_domain_lookup_by_name_ret(dom))),
            frame(lookup, 1, 3, 1, encode(remote, "remote_error", error)),
            frame(lifecycle, 2, 0, 0, encode(remote, "remote_domain_event_lifecycle_msg", remote.remote_domain_event_lifecycle_msg(dom, 5, 1))),
            frame(209, 3, 4, 2, b"\xee" * 1000),
            frame(209, 6, 4, 2, struct.pack(">qI", 1 << 20, 0)),
            frame(209, 3, 4, 2),
            frame(1, 2, 0, 0, prog=KEEPALIVE),
        ]
    )  # fmt: skip


@pytest.fixture
def cached_load(remote: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's generate-and-import step, done once per module (about a second each)."""
    monkeypatch.setattr("xdrgen.build.loader.load_generated", lambda source, options: remote)


def dissect(
    capsys: pytest.CaptureFixture[str], remote_x: Path, data: bytes, tmp_path: Path
) -> tuple[int, str, str]:
    path = tmp_path / "capture.bin"
    path.write_bytes(data)
    status = main(
        [
            "dissect",
            "--x",
            str(remote_x),
            "--constants-from",
            str(LIBVIRT_HEADER),
            "--framing",
            "libvirt",
            str(path),
        ]
    )
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return status, captured.out, captured.err


def test_dissect_calls_replies_events_streams(
    remote: Any, remote_x: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = capture(remote)
    status, out, err = dissect(capsys, remote_x, data, tmp_path)
    assert status == 0, err
    lines = out.splitlines()
    headers = [line for line in lines if line.startswith("#")]
    assert len(headers) == 10
    assert headers[0] == (
        "#1 @0 CALL REMOTE_PROC_CONNECT_OPEN (1) prog=0x20008086 vers=1 serial=1 status=OK "
        f"length={28 + len(encode(remote, 'remote_connect_open_args', remote.remote_connect_open_args('qemu:///system', 0)))}"
    )
    assert lines[1:4] == ["  args: remote_connect_open_args", "    name: 'qemu:///system'", "    flags: 0"]
    assert headers[1].startswith("#2 @") and " REPLY REMOTE_PROC_CONNECT_OPEN (1) " in headers[1]
    assert lines[lines.index(headers[1]) + 1] == "  ret: void"
    assert " CALL REMOTE_PROC_DOMAIN_LOOKUP_BY_NAME " in headers[2]
    assert "    name: 'guest-1'" in lines
    assert "  ret: remote_domain_lookup_by_name_ret" in lines and "      id: 7" in lines
    assert "status=ERROR" in headers[4]
    after_error = lines[lines.index(headers[4]) + 1 :]
    assert after_error[:4] == [
        "  error: remote_error",
        "    code: 42",
        "    domain: 10",
        "    message: 'Domain not found'",
    ]
    assert " MESSAGE REMOTE_PROC_DOMAIN_EVENT_LIFECYCLE " in headers[5]
    assert "  msg: remote_domain_event_lifecycle_msg" in lines and "    event: 5" in lines
    assert " STREAM REMOTE_PROC_STORAGE_VOL_DOWNLOAD (209) " in headers[6] and "status=CONTINUE" in headers[6]
    assert "  data: 1000 bytes" in lines
    assert "  hole: length=1048576 flags=0" in lines
    assert "  data: end of stream (empty CONTINUE)" in lines
    assert headers[9].startswith(f"#10 @{len(data) - 28} MESSAGE KEEPALIVE PING prog=0x6B656570")


def test_read_frames_offsets(remote: Any) -> None:
    data = capture(remote)
    frames = list(libvirt.read_frames(data))
    assert [f.serial for f in frames] == [1, 1, 2, 2, 3, 0, 4, 4, 4, 0]
    assert frames[0].offset == 0 and frames[-1].end == len(data)
    assert all(a.end == b.offset for a, b in zip(frames, frames[1:]))


@pytest.mark.usefixtures("cached_load")
def test_truncated_capture(
    remote: Any, remote_x: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = capture(remote)
    last = list(libvirt.read_frames(data))[-2].offset  # the empty STREAM frame before the keepalive
    status, out, err = dissect(capsys, remote_x, data[: last + 10], tmp_path)
    assert status == 2
    assert out.count("\n#") == 7  # the complete frames are still printed
    assert (
        err
        == f"error: byte offset {last}: truncated libvirt frame: 10 bytes left, a frame needs at least 28\n"
    )
    ret = list(libvirt.read_frames(data))[3]  # the lookup reply: a frame with a payload
    status, out, err = dissect(capsys, remote_x, data[: ret.offset + 40], tmp_path)
    assert status == 2 and out.count("\n#") == 2
    assert err == (
        f"error: byte offset {ret.offset}: truncated libvirt frame: length word says {ret.length} bytes, only 40 remain\n"
    )


@pytest.mark.usefixtures("cached_load")
def test_oversized_and_undersized_length_words(
    remote: Any, remote_x: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = frame(1, 1, 1, 0)
    big = struct.pack(">I", 0x7FFFFFFF) + good[4:]
    status, out, err = dissect(capsys, remote_x, good + big, tmp_path)
    assert (
        status == 2 and "byte offset 28: libvirt length word 2147483647 exceeds the maximum 33554436" in err
    )
    small = struct.pack(">I", 12) + good[4:]
    status, out, err = dissect(capsys, remote_x, small, tmp_path)
    assert status == 2 and "byte offset 0: libvirt length word 12 is smaller than the 28-byte minimum" in err


@pytest.mark.usefixtures("cached_load")
def test_unknown_program_and_bad_payload(
    remote: Any, remote_x: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = dissect(capsys, remote_x, frame(1, 0, 1, 0, prog=0x12345678), tmp_path)
    assert status == 2
    assert (
        "byte offset 4: unknown program 0x12345678 version 1 (the .x defines REMOTE 0x20008086 version 1)"
        in err
    )
    # connect_open args whose optional-name word is 7: neither absent (0) nor present (1).
    bad = frame(1, 0, 1, 0, struct.pack(">II", 7, 0))
    status, out, err = dissect(capsys, remote_x, frame(1, 1, 1, 0) + bad, tmp_path)
    assert status == 2
    assert err.startswith(
        "error: byte offset 56: REMOTE_PROC_CONNECT_OPEN call: remote_connect_open_args: name"
    )
    # A payload longer than its type is reported where the extra bytes start.
    extra = frame(
        1,
        0,
        1,
        0,
        encode(remote, "remote_connect_open_args", remote.remote_connect_open_args(None, 0)) + b"\0" * 4,
    )
    status, out, err = dissect(capsys, remote_x, extra, tmp_path)
    assert (
        status == 2
        and "byte offset 36: REMOTE_PROC_CONNECT_OPEN call: 4 bytes left over after remote_connect_open_args"
        in err
    )


def test_unknown_message_type_is_a_wire_error() -> None:
    with pytest.raises(WireError) as info:
        list(libvirt.read_frames(frame(1, 9, 1, 0)))
    assert str(info.value) == "byte offset 16: unknown libvirt message type 9"
