"""`xdrgen dissect --framing oncrpc` (RFC 5531 record marking) on calls and replies
of demo.x's program, built with its generated encoders."""

from __future__ import annotations

import struct
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from conftest import REPO_ROOT
from xdrgen.build.loader import load_generated
from xdrgen.cli import main
from xdrgen.frontend.options import FrontendOptions
from xdrgen.wire import oncrpc
from xdrgen.wire.errors import WireError

DEMO_X = REPO_ROOT / "protocols" / "demo.x"
PROGRAM = 0x20005EED


@pytest.fixture(scope="module")
def demo() -> ModuleType:
    return load_generated(DEMO_X, FrontendOptions())


def record(body: bytes, split: int | None = None) -> bytes:
    """One record, in two fragments when ``split`` is given."""
    if split is None:
        return struct.pack(">I", 0x80000000 | len(body)) + body
    first, rest = body[:split], body[split:]
    return struct.pack(">I", len(first)) + first + struct.pack(">I", 0x80000000 | len(rest)) + rest


def call(xid: int, vers: int, proc: int, args: bytes, cred: bytes = b"") -> bytes:
    head = struct.pack(">IIIIII", xid, 0, 2, PROGRAM, vers, proc)
    auth = struct.pack(">II", 1 if cred else 0, len(cred)) + cred + b"\0" * (-len(cred) % 4)
    return head + auth + struct.pack(">II", 0, 0) + args


def reply(xid: int, accept_stat: int, results: bytes = b"") -> bytes:
    return struct.pack(">IIIIII", xid, 1, 0, 0, 0, accept_stat) + results


def capture(demo: Any) -> bytes:
    hyper = demo.PROCEDURE_TABLES["DEMO_RPC_PROGRAM_2"].procedures[1].result
    name = demo.XDR_TYPES["demo_name"]
    lookup_result = demo.XDR_TYPES["demo_lookup_result"]
    sys_cred = struct.pack(">I", 1700000000) + b"\0\0\0\4host" + struct.pack(">III", 0, 0, 0)
    return b"".join(
        [
            record(call(0x10, 2, 1, hyper.encode(-5) + hyper.encode(1 << 40), sys_cred), split=30),
            record(call(0x11, 1, 2, name.encode("bolt"))),
            record(reply(0x10, 0, hyper.encode((1 << 40) - 5))),
            record(
                reply(
                    0x11,
                    0,
                    lookup_result.encode(demo.demo_lookup_result(demo.demo_status.DEMO_ERR_NOT_FOUND)),
                )
            ),
            record(reply(0x99, 2) + struct.pack(">II", 1, 2)),
        ]
    )


def dissect(capsys: pytest.CaptureFixture[str], data: bytes, tmp_path: Path) -> tuple[int, str, str]:
    path = tmp_path / "capture.bin"
    path.write_bytes(data)
    status = main(["dissect", "--x", str(DEMO_X), "--framing", "oncrpc", str(path)])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return status, captured.out, captured.err


def test_dissect_calls_and_replies(demo: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = dissect(capsys, capture(demo), tmp_path)
    assert status == 0, err
    lines = out.splitlines()
    assert lines[0].startswith(
        "#1 @0 CALL DEMO_ADD (1) xid=0x00000010 prog=0x20005EED vers=2 cred=AUTH_SYS (24 bytes) verf=AUTH_NONE (0 bytes)"
    )
    assert lines[0].endswith("fragments=2")
    assert lines[1:3] == ["  args[0]: -5", "  args[1]: 1099511627776"]
    assert lines[3].startswith("#2 @") and "CALL DEMO_LOOKUP (2) xid=0x00000011" in lines[3]
    assert lines[4] == "  args: 'bolt'"
    assert "REPLY DEMO_ADD (1) xid=0x00000010 MSG_ACCEPTED SUCCESS" in lines[5]
    assert lines[6] == "  results: 1099511627771"
    assert "REPLY DEMO_LOOKUP (2) xid=0x00000011" in lines[7]
    assert lines[8:11] == [
        "  results: demo_lookup_result",
        "    status: DEMO_ERR_NOT_FOUND (-100)",
        "    value: None",
    ]
    assert "REPLY xid=0x00000099 MSG_ACCEPTED PROG_MISMATCH" in lines[11] and "low=1 high=2" in lines[11]


def test_fragment_offsets_map_back_to_the_stream(demo: Any) -> None:
    data = capture(demo)
    first = next(oncrpc.read_records(data))
    assert first.fragments == ((0, 4), (30, 38))
    assert first.stream_offset(29) == 33 and first.stream_offset(30) == 38


def test_errors(demo: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = capture(demo)
    status, out, err = dissect(capsys, data[:20], tmp_path)
    assert status == 2 and "byte offset 0: truncated fragment: marker says 30 bytes, only 16 follow" in err
    status, out, err = dissect(capsys, struct.pack(">I", 0xFFFFFFFF) + b"\0" * 16, tmp_path)
    assert status == 2 and "byte offset 0: record of more than 67108864 bytes" in err
    status, out, err = dissect(capsys, record(call(1, 7, 0, b"")), tmp_path)
    assert status == 2 and "byte offset 16: unknown program 0x20005EED version 7" in err
    # DEMO_LOOKUP's demo_name<64> with a length of 65, in the second fragment.
    bad = call(3, 1, 2, struct.pack(">I", 65) + b"a" * 68)
    status, out, err = dissect(capsys, record(bad, split=20), tmp_path)
    assert status == 2
    assert err.startswith("error: byte offset 48: DEMO_LOOKUP call: demo_name")


def test_header_errors() -> None:
    rec = next(oncrpc.read_records(record(struct.pack(">II", 1, 5))))
    with pytest.raises(WireError) as info:
        oncrpc.parse_message(rec)
    assert str(info.value) == "byte offset 8: msg_type 5 is neither CALL (0) nor REPLY (1)"
    rec = next(
        oncrpc.read_records(
            record(struct.pack(">IIIIII", 1, 0, 2, PROGRAM, 1, 0) + struct.pack(">II", 0, 500))
        )
    )
    with pytest.raises(WireError, match="credential body of 500 bytes exceeds 400"):
        oncrpc.parse_message(rec)
