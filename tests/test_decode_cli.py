"""`xdrgen decode` on bytes made by the generated encoders: demo.x, and libvirt's
remote_protocol.x with constants from libvirt.h; truncated, oversized and
trailing input gets a located error and exit status 2, never a traceback."""

from __future__ import annotations

import re
import struct
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from conftest import LIBVIRT_HEADER, REPO_ROOT, require_shared
from xdrgen.build.loader import load_generated
from xdrgen.cli import main
from xdrgen.frontend.options import FrontendOptions

DEMO_X = REPO_ROOT / "protocols" / "demo.x"


@pytest.fixture(scope="module")
def demo() -> ModuleType:
    return load_generated(DEMO_X, FrontendOptions())


def make_item(demo: Any, **changes: Any) -> Any:
    fields: dict[str, Any] = dict(
        uuid=bytes(range(16)),
        name="torque wrench",
        kind=demo.demo_kind.DEMO_KIND_TOOL,
        quantity=0xFFFFFFFF,
        created=-86400,
        size_bytes=1 << 40,
        mode=0o644,
        active=True,
        dimensions=demo.demo_dimensions(0.5, 0.25, 1.75),
        tags=["tools", "metric"],
        description="A tool.",
        ratings=[5, 4, -1],
        also_kinds=[demo.demo_kind.DEMO_KIND_PART],
        counters=[1, 2, 3, 1 << 63],
        vendor="ACME",
        thumbnail=b"\x89PNG",
        sha256=b"\xab" * 32,
    )
    fields.update(changes)
    return demo.demo_item(**fields)


def decode(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(["decode", *argv])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return status, captured.out, captured.err


def test_decode_struct_tree_from_binary_file(
    demo: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    item = make_item(demo)
    data = demo.XDR_TYPES["demo_item"].encode(item)
    path = tmp_path / "item.bin"
    path.write_bytes(data)
    status, out, err = decode(capsys, "--x", str(DEMO_X), "demo_item", str(path))
    assert status == 0, err
    lines = out.splitlines()
    assert lines[0] == "demo_item"
    assert "  name: 'torque wrench'" in lines
    assert "  kind: DEMO_KIND_TOOL (1)" in lines
    assert "  quantity: 4294967295" in lines
    assert "  created: -86400" in lines
    assert "  uuid: 16 bytes 000102030405060708090a0b0c0d0e0f" in lines
    assert "  dimensions: demo_dimensions" in lines and "    weight_kg: 1.75" in lines
    assert "  tags: [2 items]" in lines and "    [1]: 'metric'" in lines
    assert "  also_kinds: [1 item]" in lines and "    [0]: DEMO_KIND_PART (0)" in lines
    assert "    [3]: 9223372036854775808" in lines


def test_decode_hex_union_from_stdin(
    demo: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    option = demo.demo_option("speed", demo.demo_setting(2, -(1 << 40)))
    text = (
        "# a demo_option\n"
        + " ".join(f"{b:02x}" for b in demo.XDR_TYPES["demo_option"].encode(option))
        + "\n"
    )
    import io

    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(text.encode())))
    status, out, err = decode(capsys, "--x", str(DEMO_X), "demo_option", "--hex", "-")
    assert status == 0, err
    assert out.splitlines() == [
        "demo_option",
        "  key: 'speed'",
        "  value: demo_setting",
        "    type: 2",
        f"    value: {-(1 << 40)}",
    ]


def test_truncated_input_names_type_and_offset(
    demo: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = demo.XDR_TYPES["demo_item"].encode(make_item(demo))
    path = tmp_path / "cut.bin"
    path.write_bytes(data[:-3])
    status, out, err = decode(capsys, "--x", str(DEMO_X), "demo_item", str(path))
    assert status == 2 and out == ""
    match = re.search(r"error: demo_item: (\S+): .* at byte offset (\d+)", err)
    assert match, err
    assert match.group(1) == "sha256"  # the last field is the one cut short
    assert int(match.group(2)) == len(data) - 32


def test_oversized_length_is_rejected_without_allocating(
    demo: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = bytearray(demo.XDR_TYPES["demo_option"].encode(demo.demo_option("k", demo.demo_setting(1, 7))))
    struct.pack_into(">I", data, 0, 0xFFFFFFF0)  # key<64>: declared length far beyond both limit and data
    path = tmp_path / "big.bin"
    path.write_bytes(bytes(data))
    status, out, err = decode(capsys, "--x", str(DEMO_X), "demo_option", str(path))
    assert status == 2
    assert "demo_option: key" in err and "at byte offset 0" in err


def test_trailing_bytes(demo: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = demo.XDR_TYPES["demo_count"].encode(7) + b"\0\0\0\1"
    path = tmp_path / "extra.bin"
    path.write_bytes(data)
    status, out, err = decode(capsys, "--x", str(DEMO_X), "demo_count", str(path))
    assert status == 2 and "4 bytes left over after the value at byte offset 4" in err
    status, out, err = decode(capsys, "--x", str(DEMO_X), "demo_count", "--allow-trailing", str(path))
    assert status == 0 and out == "7\n" and "4 trailing bytes from byte offset 4" in err


def test_bad_hex_and_unknown_type(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.hex"
    path.write_text("00 00\n00 0g\n")
    status, _, err = decode(capsys, "--x", str(DEMO_X), "demo_count", "--hex", str(path))
    assert status == 2 and f"{path}:2:5: 'g' is not a hex digit" in err
    path.write_text("00000007")
    status, _, err = decode(capsys, "--x", str(DEMO_X), "demo_cuont", "--hex", str(path))
    assert status == 2 and "no type 'demo_cuont' (did you mean demo_count" in err


def test_decode_libvirt_type_with_header_constants(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    remote_x = require_shared("libvirt/remote_protocol.x")
    if not LIBVIRT_HEADER.is_file():
        pytest.skip(f"{LIBVIRT_HEADER} not found (install Debian's libvirt-dev)")
    remote = load_generated(remote_x, FrontendOptions(constants_from=(LIBVIRT_HEADER,)))
    ret = remote.remote_domain_lookup_by_name_ret(remote.remote_nonnull_domain("guest-1", b"\x11" * 16, 42))
    path = tmp_path / "ret.bin"
    path.write_bytes(remote.XDR_TYPES["remote_domain_lookup_by_name_ret"].encode(ret))
    argv = ["--x", str(remote_x), "--constants-from", str(LIBVIRT_HEADER), "remote_domain_lookup_by_name_ret"]
    status, out, err = decode(capsys, *argv, str(path))
    assert status == 0, err
    assert out.splitlines() == [
        "remote_domain_lookup_by_name_ret",
        "  dom: remote_nonnull_domain",
        "    name: 'guest-1'",
        "    uuid: 16 bytes " + "11" * 16,
        "    id: 42",
    ]
    # Without the header, VIR_UUID_BUFLEN is unknown: a located .x error, not a traceback.
    status, out, err = decode(capsys, *argv[:2], argv[-1], str(path))
    assert status == 2 and "VIR_UUID_BUFLEN" in err and "remote_protocol.x:" in err
