"""decode(encode(v)) == v for every type of demo.x, libvirt and guestfs.

Values come from hypothesis strategies derived from the model (bounded per type
to keep the run fast).  Each value is also decoded from bytearray and
memoryview, at an offset with trailing bytes through ``decode_from``, and
re-encoded to the same bytes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from test_generate_helpers import DEMO_X, check_every_type, generated_module

EXAMPLES = {"demo": 40, "remote_protocol": 4, "guestfs_protocol": 4}


def check_roundtrip(codec: Any, value: Any) -> None:
    data = codec.encode(value)
    assert isinstance(data, bytes)
    assert len(data) % 4 == 0
    decoded = codec.decode(data)
    assert decoded == value
    assert codec.encode(decoded) == data
    assert codec.decode(memoryview(bytearray(data))) == value
    buf = bytearray(b"\xaa" * 8)
    codec.encode_into(buf, value)
    assert bytes(buf[8:]) == data
    framed = b"\x01\x02\x03\x04" + data + b"\xff" * 4
    again, end = codec.decode_from(framed, 4)
    assert again == value and end == 4 + len(data)


def run_all_types(source: Path, examples: int) -> None:
    check_every_type(
        source, examples, check_roundtrip, "round trip", require_registry=True
    )


def test_demo_roundtrip_every_type() -> None:
    run_all_types(DEMO_X, EXAMPLES["demo"])


def test_libvirt_roundtrip_every_type(
    remote_protocol_x: Path, libvirt_header: Path
) -> None:
    run_all_types(remote_protocol_x, EXAMPLES["remote_protocol"])


def test_guestfs_roundtrip_every_type(guestfs_protocol_x: Path) -> None:
    run_all_types(guestfs_protocol_x, EXAMPLES["guestfs_protocol"])


@settings(max_examples=60, deadline=None, database=None)
@given(st.binary(max_size=40))
def test_strings_roundtrip_any_bytes_losslessly(raw: bytes) -> None:
    demo = generated_module(DEMO_X)
    codec = demo.XDR_TYPES["demo_text"]
    text = raw.decode("utf-8", "surrogateescape")
    data = codec.encode(text)
    assert data[4 : 4 + len(raw)] == raw
    assert codec.decode(data) == text


def test_linked_list_of_100000_nodes_roundtrips_without_recursion() -> None:
    demo = generated_module(DEMO_X)
    codec = demo.XDR_TYPES["demo_item_node"]
    item = demo.demo_item(
        uuid=bytes(16),
        name="n",
        kind=demo.DEMO_KIND_PART,
        quantity=1,
        created=-1,
        size_bytes=2,
        mode=3,
        active=True,
        dimensions=None,
        tags=[],
        description="",
        ratings=[1, 2, 3],
        also_kinds=[],
        counters=[0, 0, 0, 0],
        vendor="",
        thumbnail=b"",
        sha256=bytes(32),
        **_extra_item_fields(demo),
    )
    head = None
    for _ in range(100_000):
        head = demo.demo_item_node(item=item, next=head)
    data = codec.encode(head)
    back = codec.decode(data)
    count = 0
    node = back
    while node is not None:
        count += 1
        node = node.next
    assert count == 100_000
    assert codec.encode(back) == data


def _extra_item_fields(demo: Any) -> dict[str, Any]:
    """Fields of demo_item beyond the ones the test names (demo.x may grow)."""
    known = {
        "uuid",
        "name",
        "kind",
        "quantity",
        "created",
        "size_bytes",
        "mode",
        "active",
        "dimensions",
        "tags",
        "description",
        "ratings",
        "also_kinds",
        "counters",
        "vendor",
        "thumbnail",
        "sha256",
    }
    extra: dict[str, Any] = {}
    for slot in demo.demo_item.__slots__:
        if slot not in known:
            pytest.skip(f"demo_item grew a field {slot!r} this test does not fill")
    return extra
