"""Validation in generated marshallers: every check, with exact path and offset.

Encoding checks declared maxima, fixed lengths, integer ranges, enum membership
and union discriminants; decoding checks lengths against the maximum and the
bytes remaining before allocating, bool and optional flags, enum membership,
discriminants, zero padding, truncation and trailing bytes.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from test_generate_helpers import DEMO_X, generated_module
from xdrgen.generator import generate_file
from xdrgen.runtime.errors import (
    XdrDecodeError,
    XdrDepthError,
    XdrEncodeError,
    XdrError,
    XdrTrailingDataError,
    XdrTruncatedError,
)


@pytest.fixture(scope="module")
def demo() -> Any:
    return generated_module(DEMO_X)


def make_item(demo: Any, **changes: Any) -> Any:
    fields: dict[str, Any] = dict(
        uuid=bytes(range(16)),
        name="widget",
        kind=demo.DEMO_KIND_TOOL,
        quantity=7,
        created=-5,
        size_bytes=2**40,
        mode=0o644,
        active=True,
        dimensions=demo.demo_dimensions(width_m=1.5, height_m=2.0, weight_kg=3.25),
        tags=["a", "bb"],
        description="desc",
        ratings=[1, 2, 3],
        also_kinds=[demo.DEMO_KIND_PART],
        counters=[1, 2, 3, 4],
        vendor="acme",
        thumbnail=b"\x01\x02\x03",
        sha256=bytes(32),
    )
    fields.update(changes)
    return demo.demo_item(**fields)


def list_ret(demo: Any, items: list[Any]) -> Any:
    return demo.demo_item_list_ret(items=items, total=len(items))


def encode_error(codec: Any, value: Any) -> XdrEncodeError:
    with pytest.raises(XdrEncodeError) as info:
        codec.encode(value)
    return info.value


def decode_error(
    codec: Any, data: bytes, cls: type[XdrError] = XdrDecodeError
) -> XdrError:
    with pytest.raises(cls) as info:
        codec.decode(data)
    return info.value


# --------------------------------------------------------------------------- encode


def test_encode_string_over_maximum_names_the_element(demo: Any) -> None:
    codec = demo.XDR_TYPES["demo_item_list_ret"]
    value = list_ret(demo, [make_item(demo), make_item(demo, name="x" * 65)])
    err = encode_error(codec, value)
    assert err.type_name == "demo_item_list_ret"
    assert err.path == "items[1].name"
    assert (
        str(err)
        == "demo_item_list_ret: items[1].name: string length 65 exceeds maximum 64"
    )


def test_encode_checks_fixed_opaque_length(demo: Any) -> None:
    err = encode_error(demo.XDR_TYPES["demo_item"], make_item(demo, uuid=b"short"))
    assert err.path == "uuid"
    assert "exactly 16 bytes, got 5" in str(err)


def test_encode_checks_integer_ranges(demo: Any) -> None:
    err = encode_error(demo.XDR_TYPES["demo_item"], make_item(demo, quantity=2**32))
    assert err.path == "quantity"
    assert "value 4294967296 out of range for unsigned int" in str(err)
    err = encode_error(demo.XDR_TYPES["demo_item"], make_item(demo, created=2**63))
    assert err.path == "created"
    err = encode_error(
        demo.XDR_TYPES["demo_item"], make_item(demo, counters=[1, 2, -3, 4])
    )
    assert err.path == "counters[2]"


def test_encode_checks_small_int_spellings(remote: Any) -> None:
    codec = remote.XDR_TYPES["remote_domain_get_info_ret"]
    ok = remote.remote_domain_get_info_ret(
        state=255, maxMem=1, memory=2, nrVirtCpu=65535, cpuTime=3
    )
    assert codec.decode(codec.encode(ok)) == ok
    bad = remote.remote_domain_get_info_ret(
        state=256, maxMem=1, memory=2, nrVirtCpu=1, cpuTime=3
    )
    err = encode_error(codec, bad)
    assert err.path == "state" and "out of range for unsigned char" in str(err)
    bad.state, bad.nrVirtCpu = 1, 65536
    err = encode_error(codec, bad)
    assert err.path == "nrVirtCpu" and "unsigned short" in str(err)


def test_encode_checks_enum_membership(demo: Any) -> None:
    err = encode_error(demo.XDR_TYPES["demo_item"], make_item(demo, kind=5))
    assert err.path == "kind"
    assert "5 is not a member of enum demo_kind" in str(err)
    err = encode_error(demo.XDR_TYPES["demo_kind"], 3)
    assert err.type_name == "demo_kind"


def test_encode_checks_bool(demo: Any) -> None:
    err = encode_error(demo.XDR_TYPES["demo_item"], make_item(demo, active=2))
    assert err.path == "active" and "bool" in str(err)


def test_encode_checks_fixed_and_bounded_arrays(demo: Any) -> None:
    err = encode_error(demo.XDR_TYPES["demo_item"], make_item(demo, ratings=[1, 2]))
    assert err.path == "ratings" and "differs from the fixed length 3" in str(err)
    err = encode_error(
        demo.XDR_TYPES["demo_item"],
        make_item(demo, also_kinds=[demo.DEMO_KIND_PART] * 3),
    )
    assert err.path == "also_kinds" and "array length 3 exceeds maximum 2" in str(err)


def test_encode_rejects_unknown_discriminant_without_default(demo: Any) -> None:
    err = encode_error(
        demo.XDR_TYPES["demo_setting"], demo.demo_setting(type=7, value=1)
    )
    assert err.type_name == "demo_setting"
    assert "discriminant 7 selects no arm" in str(err)
    option = demo.demo_option(key="k", value=demo.demo_setting(type=9, value=None))
    err = encode_error(demo.XDR_TYPES["demo_option"], option)
    assert err.path == "value.type"


def test_encode_default_arm_still_checks_the_discriminant_type(demo: Any) -> None:
    codec = demo.XDR_TYPES["demo_limit"]
    assert codec.decode(codec.encode(demo.demo_limit(revision=9))) == demo.demo_limit(
        revision=9
    )
    err = encode_error(codec, demo.demo_limit(revision=-1))
    assert "out of range for unsigned int" in str(err)


def test_encode_wrong_python_type_is_an_xdr_error(demo: Any) -> None:
    err = encode_error(demo.XDR_TYPES["demo_item"], make_item(demo, name=b"bytes"))
    assert err.path == "name"
    err = encode_error(demo.XDR_TYPES["demo_item"], make_item(demo, tags=None))
    assert err.path == "tags"


# --------------------------------------------------------------------------- decode


def test_decode_string_over_maximum_reports_path_and_offset(demo: Any) -> None:
    codec = demo.XDR_TYPES["demo_item_list_ret"]
    first = demo.XDR_TYPES["demo_item"].encode(make_item(demo))
    good = codec.encode(list_ret(demo, [make_item(demo), make_item(demo)]))
    name_at = 4 + len(first) + 16  # count, item 0, item 1's uuid
    assert good[name_at : name_at + 4] == struct.pack(">I", 6)
    bad = good[:name_at] + struct.pack(">I", 70000) + good[name_at + 4 :]
    err = decode_error(codec, bad)
    assert err.path == "items[1].name"
    assert err.offset == name_at
    assert str(err) == (
        f"demo_item_list_ret: items[1].name: string length 70000 exceeds maximum 64 at byte offset {name_at}"
    )


def test_decode_huge_lengths_fail_fast_without_allocating(demo: Any) -> None:
    cases = {
        "demo_blob": struct.pack(">I", 0xFFFFFFFF),
        "demo_text": struct.pack(">I", 0xFFFFFFF0) + b"abcd",
        "demo_kinds": struct.pack(">I", 0xFFFFFFFF) + bytes(8),
        "demo_item_set_value_args": bytes(16)
        + struct.pack(">iI", 0, 5)
        + struct.pack(">I", 0x7FFFFFFF),
    }
    for name, data in cases.items():
        started = time.process_time()
        err = decode_error(demo.XDR_TYPES[name], data, XdrTruncatedError)
        assert "remain" in str(err), name
        # Not a timing assertion on speed: 4 GiB would be allocated otherwise.
        assert time.process_time() - started < 5


def test_decode_rejects_bool_other_than_0_or_1(demo: Any) -> None:
    codec = demo.XDR_TYPES["demo_item"]
    good = codec.encode(make_item(demo))
    at = (
        16 + 4 + 8 + 4 + 4 + 8 + 8 + 4
    )  # uuid, name "widget", kind, quantity, created, size, mode
    assert good[at : at + 4] == b"\0\0\0\1"
    err = decode_error(codec, good[:at] + b"\0\0\0\2" + good[at + 4 :])
    assert err.path == "active" and err.offset == at
    assert "bool must be 0 or 1, got 2" in str(err)


def test_decode_rejects_enum_non_members(demo: Any) -> None:
    err = decode_error(demo.XDR_TYPES["demo_kind"], struct.pack(">i", 2))
    assert "2 is not a member of enum demo_kind" in str(err) and err.offset == 0
    err = decode_error(demo.XDR_TYPES["demo_kinds"], struct.pack(">Iii", 2, 0, 3))
    assert err.path == "[1]" and err.offset == 8


def test_decode_rejects_unknown_discriminant_without_default(demo: Any) -> None:
    err = decode_error(demo.XDR_TYPES["demo_setting"], struct.pack(">ii", 6, 0))
    assert "discriminant 6 selects no arm" in str(err) and err.offset == 0


def test_decode_rejects_bad_optional_flag(demo: Any) -> None:
    codec = demo.XDR_TYPES["demo_item_ptr"]
    err = decode_error(codec, struct.pack(">I", 2))
    assert "optional-data flag must be 0 or 1, got 2" in str(err)


def test_decode_rejects_nonzero_padding(demo: Any) -> None:
    """Deliberately stricter than rpcgen + libtirpc (see docs/generated-api.md)."""
    codec = demo.XDR_TYPES["demo_text"]
    assert codec.decode(b"\0\0\0\1a\0\0\0") == "a"
    err = decode_error(codec, b"\0\0\0\1a\1\2\3")
    assert "padding bytes are not zero" in str(err) and err.offset == 5
    err = decode_error(demo.XDR_TYPES["demo_blob"], b"\0\0\0\3abc\x80")
    assert "padding" in str(err)


def test_libtirpc_accepts_what_we_reject(tmp_path: Path) -> None:
    """Pins the documented differences: libtirpc ignores padding and maps bool 2 to TRUE."""
    gcc = shutil.which("gcc")
    if gcc is None or not Path("/usr/include/tirpc/rpc/rpc.h").exists():
        pytest.skip("gcc or libtirpc-dev not installed")
    source = tmp_path / "pad.c"
    source.write_text(
        "#include <rpc/rpc.h>\n#include <stdio.h>\n"
        "int main(void) {\n"
        "  char buf[] = {0,0,0,1, 'a', 1, 2, 3, 0,0,0,2};\n"
        "  XDR x; char *s = NULL; bool_t b = 0;\n"
        "  xdrmem_create(&x, buf, sizeof buf, XDR_DECODE);\n"
        "  int ok1 = xdr_string(&x, &s, 10);\n"
        "  int ok2 = xdr_bool(&x, &b);\n"
        '  printf("%d %d %d\\n", ok1, ok2, (int)b);\n'
        "  return 0;\n}\n"
    )
    exe = tmp_path / "pad"
    subprocess.run(
        [gcc, "-I/usr/include/tirpc", str(source), "-ltirpc", "-o", str(exe)],
        check=True,
    )
    out = subprocess.run(
        [str(exe)], check=True, capture_output=True, text=True
    ).stdout.split()
    assert out == ["1", "1", "1"]


def test_decode_every_truncation_is_a_truncated_error(demo: Any) -> None:
    codec = demo.XDR_TYPES["demo_item_list_ret"]
    data = codec.encode(
        list_ret(demo, [make_item(demo), make_item(demo, dimensions=None)])
    )
    for cut in range(len(data)):
        with pytest.raises(XdrDecodeError) as info:
            codec.decode(data[:cut])
        assert isinstance(info.value, XdrTruncatedError), (cut, info.value)
        assert info.value.offset is not None and info.value.offset <= cut


def test_decode_is_strict_about_trailing_bytes(demo: Any) -> None:
    codec = demo.XDR_TYPES["demo_item_list_ret"]
    data = codec.encode(list_ret(demo, []))
    err = decode_error(codec, data + b"\0\0\0\0", XdrTrailingDataError)
    assert err.offset == len(data)
    value, end = codec.decode_from(data + b"\0\0\0\0", 0)
    assert end == len(data)


def test_fixed_size_fast_path_checks_size(remote: Any) -> None:
    codec = remote.XDR_TYPES["remote_domain_get_info_ret"]
    data = codec.encode(
        remote.remote_domain_get_info_ret(
            state=1, maxMem=1, memory=2, nrVirtCpu=1, cpuTime=3
        )
    )
    decode_error(codec, data[:-1], XdrTruncatedError)
    decode_error(codec, data + b"\0" * 4, XdrTrailingDataError)
    err = decode_error(codec, struct.pack(">I", 256) + data[4:])
    assert err.path == "state" and err.offset == 0


@settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
@given(data=st.data())
def test_mutated_bytes_raise_only_xdr_errors(data: st.DataObject) -> None:
    demo = generated_module(DEMO_X)
    name = data.draw(
        st.sampled_from(
            ["demo_item_list_ret", "demo_item_set_value_args", "demo_value"]
        )
    )
    codec = demo.XDR_TYPES[name]
    raw = bytearray(data.draw(st.binary(min_size=0, max_size=300)))
    try:
        value = codec.decode(bytes(raw))
    except XdrError:
        return
    assert codec.decode(codec.encode(value)) == value


# --------------------------------------------------------------------------- depth


def test_non_tail_recursion_depth_is_bounded(tmp_path: Path) -> None:
    source = tmp_path / "tree.x"
    source.write_text("struct tree { tree *left; int value; tree *right; };\n")
    result = generate_file(source, tmp_path, use_cache=False)
    sys.path.insert(0, str(tmp_path))
    try:
        import tree  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(tmp_path))
    codec = tree.XDR_TYPES["tree"]
    leaf = tree.tree(left=None, value=1, right=None)
    assert (
        codec.decode(codec.encode(tree.tree(left=leaf, value=2, right=leaf))).left
        == leaf
    )
    hostile = b"\0\0\0\1" * 200_000 + b"\0\0\0\0" + b"\0\0\0\0" + b"\0\0\0\0"
    err = decode_error(codec, hostile, XdrDepthError)
    assert "nests deeper" in str(err)
    assert result.output.name == "tree.py"


@pytest.fixture
def remote(remote_protocol_x: Path, libvirt_header: Path) -> Any:
    return generated_module(remote_protocol_x)


def test_libvirt_error_message_shape(remote: Any) -> None:
    codec = remote.XDR_TYPES["remote_connect_list_all_domains_ret"]
    doms = [
        remote.remote_nonnull_domain(name=f"d{i}", uuid=bytes(16), id=i)
        for i in range(3)
    ]
    data = bytearray(
        codec.encode(remote.remote_connect_list_all_domains_ret(domains=doms, ret=3))
    )
    # domains[2].name starts after the count and two 4+4+16+4-byte domains.
    at = 4 + 2 * 28
    data[at : at + 4] = struct.pack(">I", remote.REMOTE_STRING_MAX + 1)
    err = decode_error(codec, bytes(data))
    assert str(err) == (
        "remote_connect_list_all_domains_ret: domains[2].name: string length "
        f"{remote.REMOTE_STRING_MAX + 1} exceeds maximum {remote.REMOTE_STRING_MAX} at byte offset {at}"
    )


def test_float32_nan_bits_survive_a_round_trip(demo: Any) -> None:
    """Signalling and payload-carrying float32 NaNs re-encode bit for bit."""
    codec = demo.XDR_TYPES["demo_dimensions"]
    for bits in (0x7F800001, 0xFF800001, 0x7FBFFFFF, 0x7FC00001, 0xFFC00000):
        data = struct.pack(">II", bits, bits) + struct.pack(">d", 1.5)
        value = codec.decode(data)
        assert value.width_m != value.width_m  # still a NaN
        assert codec.encode(value) == data
        buffer = bytearray(b"head")
        codec.encode_into(buffer, value)
        assert bytes(buffer) == b"head" + data


def test_lone_opaque_fast_decode_matches_the_general_decoder(remote: Any) -> None:
    """``decode`` of a struct that is one opaque has its own code: same errors."""
    from xdrgen.runtime.codec import _make_decode

    codec = remote.XDR_TYPES["remote_domain_block_peek_ret"]
    general = _make_decode(codec.name, codec.decode_from)
    good = struct.pack(">I", 5) + b"abcde\0\0\0"
    cases = [
        good,
        good[:-1],
        good + b"\0\0\0\0",
        good[:3],
        b"",
        good[:6] + b"\1" + good[7:],
        struct.pack(">I", 0xFFFFFFFF) + good[4:],
        struct.pack(">I", 4194305) + bytes(8),
    ]
    for data in cases:
        outcomes: list[tuple[object, ...]] = []
        for decode in (codec.decode, general):
            try:
                outcomes.append(("ok", decode(memoryview(data)).buffer))
            except XdrError as error:
                outcomes.append((type(error).__name__, str(error), error.offset))
        assert outcomes[0] == outcomes[1], data


def test_string_group_errors_name_the_failing_item(remote: Any) -> None:
    """A string decoded in one call with the fields after it still reports which
    item failed: the string's padding, or the typed-param discriminant after it."""
    codec = remote.XDR_TYPES["remote_typed_param"]
    name = struct.pack(">I", 3) + b"abc"
    with pytest.raises(XdrDecodeError) as bad_pad:
        codec.decode(name + b"\1" + struct.pack(">ii", 1, 7))
    assert (bad_pad.value.path, bad_pad.value.offset) == ("field", 7)
    with pytest.raises(XdrDecodeError) as bad_disc:
        codec.decode(name + b"\0" + struct.pack(">ii", 99, 7))
    assert (bad_disc.value.path, bad_disc.value.offset) == ("value.type", 8)
    with pytest.raises(XdrTruncatedError) as short:
        codec.decode(name + b"\0" + b"\0\0")
    assert short.value.path == "value.type"
    with pytest.raises(XdrEncodeError) as enc:
        codec.encode(
            remote.remote_typed_param("x", remote.remote_typed_param_value(99, 0))
        )
    assert enc.value.path == "value.type"


@pytest.mark.parametrize("field", ["kind", "active"])
def test_float_for_enum_or_bool_is_refused_where_an_int_is_not(
    demo: Any, field: str
) -> None:
    # 1.0 hashes like 1, so a table lookup alone would take it for a member.
    codec = demo.XDR_TYPES["demo_item"]
    assert codec.encode(make_item(demo, **{field: 1})) == codec.encode(
        make_item(demo, **{field: True if field == "active" else demo.DEMO_KIND_TOOL})
    )
    with pytest.raises(XdrEncodeError, match=field):
        codec.encode(make_item(demo, **{field: 1.0}))


def test_float_enum_alone_is_refused(demo: Any) -> None:
    with pytest.raises(XdrEncodeError):
        demo.XDR_TYPES["demo_kind"].encode(1.0)
