"""`xdrgen dissect --framing guestfs` on a capture built with the encoders generated
from guestfs_protocol.x: launch and cancel words, calls, replies, errors,
progress messages and file-transfer chunks."""

from __future__ import annotations

import struct
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from conftest import require_shared
from xdrgen.build.loader import load_generated
from xdrgen.cli import main
from xdrgen.frontend.options import FrontendOptions
from xdrgen.wire import guestfs
from xdrgen.wire.errors import WireError

PROGRAM = 0x2000F5F5


@pytest.fixture(scope="module")
def guestfs_x() -> Path:
    return require_shared("guestfs/guestfs_protocol.x")


@pytest.fixture(scope="module")
def gfs(guestfs_x: Path) -> ModuleType:
    return load_generated(guestfs_x, FrontendOptions())


def message(
    proc: int, direction: int, serial: int, status: int, payload: bytes = b"", hint: int = 0, bitmask: int = 0
) -> bytes:
    body = struct.pack(">IIIIIQQI", PROGRAM, 4, proc, direction, serial, hint, bitmask, status) + payload
    return struct.pack(">I", len(body)) + body


def chunk(data: bytes, cancel: int = 0) -> bytes:
    body = struct.pack(">iI", cancel, len(data)) + data + b"\0" * (-len(data) % 4)
    return struct.pack(">I", len(body)) + body


def capture(gfs: Any) -> bytes:
    readlink = gfs.PROCEDURE_TABLES["GUESTFS"].by_name["READLINK"].number
    upload = gfs.PROCEDURE_TABLES["GUESTFS"].by_name["UPLOAD"].number
    types = gfs.XDR_TYPES
    return b"".join(
        [
            struct.pack(">I", 0xF5F55FF5),
            message(readlink, 0, 1, 0, types["guestfs_readlink_args"].encode(gfs.guestfs_readlink_args("/etc/localtime"))),
            message(readlink, 1, 1, 0, types["guestfs_readlink_ret"].encode(gfs.guestfs_readlink_ret("/usr/share/zoneinfo/UTC"))),
            message(readlink, 1, 2, 1, types["guestfs_message_error"].encode(gfs.guestfs_message_error("ENOENT", "readlink: /x: No such file"))),
            message(upload, 0, 3, 0, types["guestfs_upload_args"].encode(gfs.guestfs_upload_args("/tmp/f")), hint=8195),
            chunk(b"x" * 8192),
            chunk(b"abc"),
            struct.pack(">I", 0xFFFF5555) + struct.pack(">IIQQ", upload, 3, 8195, 8195),
            chunk(b""),
            message(upload, 1, 3, 0),
            struct.pack(">I", 0xFFFFEEEE),
        ]
    )  # fmt: skip


@pytest.fixture
def cached_load(gfs: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's generate-and-import step, done once per module (about a second each)."""
    monkeypatch.setattr("xdrgen.build.loader.load_generated", lambda source, options: gfs)


def dissect(
    capsys: pytest.CaptureFixture[str], guestfs_x: Path, data: bytes, tmp_path: Path
) -> tuple[int, str, str]:
    path = tmp_path / "capture.bin"
    path.write_bytes(data)
    status = main(["dissect", "--x", str(guestfs_x), "--framing", "guestfs", str(path)])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return status, captured.out, captured.err


def test_dissect_guestfs_session(
    gfs: Any, guestfs_x: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = capture(gfs)
    status, out, err = dissect(capsys, guestfs_x, data, tmp_path)
    assert status == 0, err
    lines = out.splitlines()
    headers = [line for line in lines if line.startswith("#")]
    assert len(headers) == 11
    assert headers[0] == "#1 @0 LAUNCH flag"
    assert headers[1].startswith(
        "#2 @4 CALL GUESTFS_PROC_READLINK (168) prog=0x2000F5F5 vers=4 serial=1 status=OK"
    )
    assert lines[2:4] == ["  args: guestfs_readlink_args", "    path: '/etc/localtime'"]
    assert "  ret: guestfs_readlink_ret" in lines and "    link: '/usr/share/zoneinfo/UTC'" in lines
    assert "status=ERROR" in headers[3]
    assert (
        "    errno_string: 'ENOENT'" in lines and "    error_message: 'readlink: /x: No such file'" in lines
    )
    assert " CALL GUESTFS_PROC_UPLOAD " in headers[4] and "progress_hint=8195" in headers[4]
    assert headers[5].endswith("CHUNK data size=8192") and headers[6].endswith("CHUNK data size=3")
    assert headers[7].endswith("PROGRESS GUESTFS_PROC_UPLOAD (66) serial=3 position=8195 total=8195")
    assert headers[8].endswith("CHUNK end of transfer size=0")
    assert " REPLY GUESTFS_PROC_UPLOAD (66) " in headers[9]
    assert headers[10] == f"#11 @{len(data) - 4} CANCEL flag"


def test_items_and_offsets(gfs: Any) -> None:
    data = capture(gfs)
    items = list(guestfs.read_items(data))
    assert [type(i).__name__ for i in items] == [
        "Flag", "Message", "Message", "Message", "Message", "Chunk", "Chunk", "Progress", "Chunk", "Message", "Flag"
    ]  # fmt: skip
    assert items[1].offset == 4
    assert isinstance(items[6], guestfs.Chunk) and items[6].size == 3


@pytest.mark.usefixtures("cached_load")
def test_truncated_and_oversized(
    gfs: Any, guestfs_x: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = capture(gfs)
    second = list(guestfs.read_items(data))[2].offset
    status, out, err = dissect(capsys, guestfs_x, data[: second + 20], tmp_path)
    assert status == 2 and out.count("\n#") == 1
    assert f"error: byte offset {second}: truncated guestfs message: length word says" in err
    assert "only 16 follow" in err
    status, out, err = dissect(capsys, guestfs_x, struct.pack(">I", 0x7FFFFFFF) + b"\0" * 64, tmp_path)
    assert status == 2 and "byte offset 0: guestfs length word 2147483647 exceeds the maximum 4194304" in err
    status, out, err = dissect(capsys, guestfs_x, struct.pack(">I", 0xFFFF5555) + b"\0" * 10, tmp_path)
    assert status == 2 and "byte offset 0: truncated guestfs progress message" in err


def test_frame_that_is_neither_message_nor_chunk() -> None:
    body = struct.pack(">iI", 0, 100) + b"\0" * 8  # a chunk claiming 100 bytes in an 8-byte frame
    with pytest.raises(WireError) as info:
        list(guestfs.read_items(struct.pack(">I", len(body)) + body))
    assert info.value.offset == 0 and "chunk data length 100 does not fill it" in str(info.value)


@pytest.mark.usefixtures("cached_load")
def test_bad_call_payload_names_offset(
    gfs: Any, guestfs_x: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    readlink = gfs.PROCEDURE_TABLES["GUESTFS"].by_name["READLINK"].number
    # A path string whose length word claims more bytes than the frame holds.
    bad = message(readlink, 0, 1, 0, struct.pack(">I", 1000) + b"/etc")
    status, out, err = dissect(capsys, guestfs_x, bad, tmp_path)
    assert status == 2
    assert err.startswith("error: byte offset 44: GUESTFS_PROC_READLINK call: guestfs_readlink_args: path")
