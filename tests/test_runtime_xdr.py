"""The runtime pieces generated code relies on: codecs, errors, procedure tables."""

from __future__ import annotations

import pickle
import struct

import pytest

from test_generate_helpers import DEMO_X, generated_module
from xdrgen.runtime.codec import PRIMITIVE_CODECS, VOID, Codec
from xdrgen.runtime.errors import (
    XdrDecodeError,
    XdrEncodeError,
    XdrError,
    XdrTruncatedError,
)
from xdrgen.runtime.procedures import ProcedureInfo, ProcedureTable


def test_primitive_codecs_match_the_rfc_layouts() -> None:
    assert PRIMITIVE_CODECS["int"].encode(-2) == struct.pack(">i", -2)
    assert PRIMITIVE_CODECS["unsigned hyper"].encode(2**64 - 1) == b"\xff" * 8
    assert PRIMITIVE_CODECS["double"].decode(struct.pack(">d", 0.25)) == 0.25
    assert PRIMITIVE_CODECS["bool"].encode(True) == b"\0\0\0\1"
    with pytest.raises(XdrDecodeError):
        PRIMITIVE_CODECS["bool"].decode(b"\0\0\0\2")
    with pytest.raises(XdrEncodeError):
        PRIMITIVE_CODECS["int"].encode(2**31)
    with pytest.raises(XdrTruncatedError):
        PRIMITIVE_CODECS["hyper"].decode(b"\0" * 7)
    assert VOID.encode(None) == b"" and VOID.decode(b"") is None


def test_error_message_and_pickling() -> None:
    err = XdrDecodeError(
        "string length 9 exceeds maximum 8", type_name="t", path="a[1].b", offset=12
    )
    assert str(err) == "t: a[1].b: string length 9 exceeds maximum 8 at byte offset 12"
    assert isinstance(err, ValueError) and isinstance(err, XdrError)
    again = pickle.loads(pickle.dumps(err))
    assert type(again) is XdrDecodeError and str(again) == str(err)
    inner = XdrEncodeError("bad", type_name="inner", path="x")
    inner.within("outer", "items[3]")
    assert (inner.type_name, inner.path) == ("outer", "items[3].x")
    top = XdrEncodeError("bad", type_name="inner", path="[2]")
    assert top.within("outer", "list").path == "list[2]"


def test_codec_contract_from_plain_functions() -> None:
    def enc(buf: bytearray, v: int) -> None:
        buf += struct.pack(">I", v)

    def dec(data: bytes | bytearray | memoryview, off: int) -> tuple[int, int]:
        return struct.unpack_from(">I", data, off)[0], off + 4

    codec: Codec[int] = Codec("u", enc, dec)
    assert codec.name == "u" and codec.encode(5) == b"\0\0\0\5"
    assert codec.decode(b"\0\0\0\5") == 5
    with pytest.raises(XdrDecodeError, match="4 trailing bytes"):
        codec.decode(b"\0" * 8)


def test_generated_procedure_tables() -> None:
    demo = generated_module(DEMO_X)
    tables = demo.PROCEDURE_TABLES
    assert all(isinstance(t, ProcedureTable) for t in tables.values())
    libvirt_style = [t for t in tables.values() if t.style == "libvirt"]
    assert libvirt_style, tables
    table = libvirt_style[0]
    create = table.by_name["ITEM_CREATE"]
    assert isinstance(create, ProcedureInfo)
    assert (
        create.constant == "DEMO_PROC_ITEM_CREATE"
        and create.number == demo.DEMO_PROC_ITEM_CREATE
    )
    assert create.arg is demo.XDR_TYPES["demo_item_create_args"]
    assert create.result is demo.XDR_TYPES["demo_item_create_ret"]
    assert "item:write" in create.acl
    version = table.by_name["CONNECT_GET_VERSION"]
    assert version.priority == "high" and version.arg is None
    assert table.procedures[version.number] is version
