"""Each deliberate difference from rpcgen's C (docs/compatibility.md), proven on real bytes.

Every test feeds the same input to rpcgen's C (built by tests/reference) and to
the generated module, and asserts what each does: rpcgen's behaviour is checked
too, so a change in libtirpc or in our generator shows up here.
"""

from __future__ import annotations

import struct

import pytest

from reference.harness import ProtocolUnderTest, session_protocol
from xdr_values import Encodings

U32 = struct.Struct(">I")


def word(value: int) -> bytes:
    return U32.pack(value & 0xFFFFFFFF)


def xdr_string(data: bytes) -> bytes:
    return word(len(data)) + data + bytes(-len(data) % 4)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> ProtocolUnderTest:
    return session_protocol("demo", tmp_path_factory)


@pytest.fixture(scope="module")
def libvirt(tmp_path_factory: pytest.TempPathFactory) -> ProtocolUnderTest:
    return session_protocol("libvirt", tmp_path_factory)


def rejected(protocol: ProtocolUnderTest, type_name: str, data: bytes) -> object:
    """Assert our strict decode raises a decode error carrying an offset; return it."""
    from xdrgen.runtime.errors import XdrDecodeError

    with pytest.raises(XdrDecodeError) as info:
        protocol.codec(type_name).decode(data)
    assert info.value.offset is not None
    assert info.value.type_name == type_name
    return info.value


# -- 1. trailing bytes -------------------------------------------------------------


def test_trailing_bytes_rpcgen_ignores_them_strict_decode_rejects(
    demo: ProtocolUnderTest,
) -> None:
    from xdrgen.runtime.errors import XdrTrailingDataError

    data = word(7) + word(9)
    theirs = demo.reference.roundtrip("demo_count", data)
    assert theirs.decoded and theirs.consumed == 4 and theirs.reencoded == word(7)

    error = rejected(demo, "demo_count", data)
    assert isinstance(error, XdrTrailingDataError) and error.offset == 4
    # decode_from is the non-strict entry point: it reports where the value ends.
    value, end = demo.codec("demo_count").decode_from(data, 0)
    assert end == theirs.consumed
    assert demo.codec("demo_count").encode(value) == theirs.reencoded


# -- 2. padding --------------------------------------------------------------------


def test_nonzero_padding_rpcgen_skips_it_we_reject(demo: ProtocolUnderTest) -> None:
    data = word(3) + b"abcX"
    theirs = demo.reference.roundtrip("demo_name", data)
    assert theirs.decoded and theirs.reencoded == word(3) + b"abc\0"

    error = rejected(demo, "demo_name", data)
    assert error.offset == 7  # type: ignore[attr-defined]
    assert demo.codec("demo_name").decode(theirs.reencoded) is not None


def test_nonzero_padding_inside_struct_reported_with_path_and_offset(
    demo: ProtocolUnderTest,
) -> None:
    # demo_item starts with demo_uuid (16 bytes), then demo_name: the error for
    # its padding must say where (field path and byte offset).
    encodings = Encodings(demo.model)
    item = bytearray(encodings.minimal("demo_item"))
    name_at = 16
    item[name_at : name_at + 4] = word(1)
    valid = bytes(item[: name_at + 4]) + b"n\0\0\0" + bytes(item[name_at + 4 + 0 :])
    # minimal() had an empty name (4 bytes); the one above has 1 byte + 3 padding.
    assert demo.reference.roundtrip("demo_item", valid).reencoded == valid
    assert (
        demo.codec("demo_item").encode(demo.codec("demo_item").decode(valid)) == valid
    )
    damaged = bytearray(valid)
    damaged[name_at + 4 + 2] = 0x55
    theirs = demo.reference.roundtrip("demo_item", bytes(damaged))
    assert theirs.reencoded == valid
    error = rejected(demo, "demo_item", bytes(damaged))
    assert error.offset == name_at + 4 + 1  # type: ignore[attr-defined]
    assert "name" in error.path  # type: ignore[attr-defined]


# -- 3. bool -----------------------------------------------------------------------


def test_bool_other_than_0_or_1_rpcgen_reads_true_we_reject(
    demo: ProtocolUnderTest,
) -> None:
    data = word(5) + word(2)  # demo_setting, case 5: bool b
    theirs = demo.reference.roundtrip("demo_setting", data)
    assert theirs.decoded and theirs.reencoded == word(5) + word(1)
    error = rejected(demo, "demo_setting", data)
    assert error.offset == 4  # type: ignore[attr-defined]


def test_bool_discriminant_other_than_0_or_1_rejected(demo: ProtocolUnderTest) -> None:
    data = word(2) + xdr_string(b"x")  # demo_maybe_name switch (bool present)
    theirs = demo.reference.roundtrip("demo_maybe_name", data)
    assert theirs.decoded and theirs.reencoded == word(1) + xdr_string(b"x")
    error = rejected(demo, "demo_maybe_name", data)
    assert error.offset == 0  # type: ignore[attr-defined]


# -- 4. optional-data flag -----------------------------------------------------------


def test_optional_flag_other_than_0_or_1_rpcgen_reads_present_we_reject(
    demo: ProtocolUnderTest,
) -> None:
    item = Encodings(demo.model).minimal("demo_item")
    data = item + word(7) + item + word(0)  # demo_item_node: next flag 7
    theirs = demo.reference.roundtrip("demo_item_node", data)
    assert theirs.decoded and theirs.reencoded == item + word(1) + item + word(0)
    error = rejected(demo, "demo_item_node", data)
    assert error.offset == len(item)  # type: ignore[attr-defined]


# -- 5. enum membership --------------------------------------------------------------


def test_enum_value_not_a_member_rpcgen_keeps_it_we_reject(
    demo: ProtocolUnderTest,
) -> None:
    data = word(5)  # demo_kind has 0, 1, 0x10, 8, -1
    theirs = demo.reference.roundtrip("demo_kind", data)
    assert theirs.decoded and theirs.reencoded == data
    rejected(demo, "demo_kind", data)


def test_enum_discriminant_not_a_member_rejected_even_with_default_arm(
    demo: ProtocolUnderTest,
) -> None:
    data = word(5) + xdr_string(b"note")  # demo_value: default arm is demo_text
    theirs = demo.reference.roundtrip("demo_value", data)
    assert theirs.decoded and theirs.reencoded == data
    error = rejected(demo, "demo_value", data)
    assert error.offset == 0  # type: ignore[attr-defined]
    # A member that no case names does take the default arm, on both sides.
    member = word(0xFFFFFFFF) + xdr_string(b"note")  # DEMO_KIND_UNKNOWN = -1
    assert demo.reference.roundtrip("demo_value", member).reencoded == member
    assert (
        demo.codec("demo_value").encode(demo.codec("demo_value").decode(member))
        == member
    )


# -- 6. strings with NUL -------------------------------------------------------------


def test_string_with_nul_rpcgen_truncates_we_keep_every_byte(
    demo: ProtocolUnderTest,
) -> None:
    data = xdr_string(b"a\0c")
    theirs = demo.reference.roundtrip("demo_name", data)
    assert theirs.decoded and theirs.reencoded == xdr_string(b"a")
    codec = demo.codec("demo_name")
    assert codec.encode(codec.decode(data)) == data


def test_string_bytes_that_are_not_utf8_round_trip(demo: ProtocolUnderTest) -> None:
    data = xdr_string(b"\xff\xfe caf\xc3")
    theirs = demo.reference.roundtrip("demo_name", data)
    assert theirs.reencoded == data
    codec = demo.codec("demo_name")
    assert codec.encode(codec.decode(data)) == data


# -- 7. rpcgen's narrow C integers -----------------------------------------------------


def test_unsigned_char_out_of_range_rpcgen_truncates_we_reject(
    libvirt: ProtocolUnderTest,
) -> None:
    # remote_domain_get_info_ret { unsigned char state; unsigned hyper maxMem; ... }
    rest = struct.pack(">QQIQ", 1, 2, 3, 4)
    data = word(0x101) + rest
    theirs = libvirt.reference.roundtrip("remote_domain_get_info_ret", data)
    assert theirs.decoded and theirs.reencoded == word(1) + rest
    error = rejected(libvirt, "remote_domain_get_info_ret", data)
    assert error.offset == 0  # type: ignore[attr-defined]


# -- 8. float signalling NaN -----------------------------------------------------------


def test_float_signalling_nan_is_never_silently_changed(
    demo: ProtocolUnderTest,
) -> None:
    """rpcgen copies float bits as an integer.  CPython's float32 <-> double
    conversion quiets a signalling NaN, so a naive struct('>f') round trip turns
    0x7f800001 into 0x7fc00001.  Either keep every bit or refuse the input with a
    typed error: a value that decodes must re-encode to the bytes received."""
    from xdrgen.runtime.errors import XdrDecodeError

    codec = demo.codec("demo_dimensions")
    for bits in (0x7F800001, 0xFF800001, 0x7FBFFFFF):
        data = word(bits) + word(0) + bytes(8)  # demo_dimensions {float; float; double}
        theirs = demo.reference.roundtrip("demo_dimensions", data)
        assert theirs.decoded and theirs.reencoded == data
        try:
            value = codec.decode(data)
        except XdrDecodeError as error:
            assert error.offset == 0
        else:
            reencoded = codec.encode(value)
            assert (
                reencoded == data
            ), f"float {bits:#x} silently became {reencoded[:4].hex()}"


def test_double_nan_payloads_round_trip(demo: ProtocolUnderTest) -> None:
    for bits in (0x7FF0000000000001, 0xFFF8000000000123, 0x7FF4000000000000):
        data = bytes(8) + struct.pack(">Q", bits)
        assert demo.reference.roundtrip("demo_dimensions", data).reencoded == data
        codec = demo.codec("demo_dimensions")
        assert codec.encode(codec.decode(data)) == data


# -- not a difference: deep optional chains ---------------------------------------------


def test_deep_optional_chain_round_trips_on_both_sides(demo: ProtocolUnderTest) -> None:
    """A linked list through optional data, deeper than Python's recursion limit
    (rpcgen's C recurses; the generated code must not hit RecursionError)."""
    from xdrgen.runtime.errors import XdrDepthError

    item = Encodings(demo.model).minimal("demo_item")
    length = 5000  # deeper than Python's recursion limit, shallow for C
    data = (item + word(1)) * (length - 1) + item + word(0)
    theirs = demo.reference.roundtrip("demo_item_node", data)
    assert theirs.decoded and theirs.reencoded == data
    codec = demo.codec("demo_item_node")
    try:
        value = codec.decode(data)
    except XdrDepthError as error:  # allowed: a typed, located refusal
        assert error.offset is not None
    else:
        assert codec.encode(value) == data


# -- 9. arrays of elements of no bytes ------------------------------------------------


@pytest.fixture(scope="module")
def zero_size(tmp_path_factory: pytest.TempPathFactory) -> ProtocolUnderTest:
    from pathlib import Path

    from reference.harness import load_protocol, require_reference

    require_reference()
    x_file = Path(__file__).with_name("xfiles") / "fuzz_zero_size_elements.x"
    return load_protocol("zero_size", x_file, tmp_path_factory.mktemp("zero_size"))


def test_more_elements_of_no_bytes_than_input_bytes_rpcgen_takes_them_we_refuse(
    zero_size: ProtocolUnderTest,
) -> None:
    from xdrgen.runtime.errors import XdrDecodeError

    from reference.rules import EMPTY_ELEMENTS_ASKED_UP_TO

    for count in (9, 0x10000, EMPTY_ELEMENTS_ASKED_UP_TO, 0xFFFFFFFF):
        data = word(count) + word(7)
        if count <= EMPTY_ELEMENTS_ASKED_UP_TO:
            # rpcgen's C: elements of 0 bytes each, any count, the same bytes back.
            # (It calls the element routine per element: 2**32 - 1 takes minutes.)
            theirs = zero_size.reference.roundtrip("holder", data)
            assert theirs.decoded and theirs.reencoded == data
        with pytest.raises(XdrDecodeError) as info:
            zero_size.codec("holder").decode(data)
        assert info.value.path == "items" and "no bytes" in str(info.value)
    # Up to the input's length they are taken, and kept.
    data = word(8) + word(7)
    value = zero_size.codec("holder").decode(data)
    assert value.items == [[]] * 8
    assert zero_size.reference.roundtrip("holder", data).reencoded == data
    # Every decoded value encodes back to its bytes (D22: a count the decoder takes
    # from a longer input was refused by the encoder), also inside a longer input.
    for count in (4, 5, 8):
        data = word(count) + word(7)
        assert zero_size.codec("holder").encode(zero_size.codec("holder").decode(data)) == data
    # Encoding writes any count, as rpcgen does; our decoder refuses the bytes of
    # more such elements than they have bytes (difference 9).
    value.items = [[]] * 9
    data = zero_size.codec("holder").encode(value)
    assert data == word(9) + word(7)
    assert zero_size.reference.roundtrip("holder", data).reencoded == data
    with pytest.raises(XdrDecodeError):
        zero_size.codec("holder").decode(data)
