"""The rpcgen reference harness itself: it must report what rpcgen's C really does.

These tests need rpcgen, gcc and libtirpc but not the generator, and pin the
libtirpc behaviours the differential tests rely on (trailing bytes ignored,
padding unchecked, NUL truncation, hostile lengths refused without taking the
machine down).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from conftest import REPO_ROOT, require_shared
from reference.harness import require_reference
from reference.rpcgen_ref import (
    Reference,
    build_reference,
    rpcgen_type_names,
    sanitize_x,
)
from xdr_values import Encodings, Scanner, mutations

DEMO_X = REPO_ROOT / "protocols" / "demo.x"


def word(value: int) -> bytes:
    return struct.pack(">I", value & 0xFFFFFFFF)


@pytest.fixture(scope="module")
def demo_ref() -> Iterator[Reference]:
    require_reference()
    with build_reference(DEMO_X, rpcgen_flags=["-N"]) as reference:
        yield reference


def test_sanitize_blanks_only_missing_includes(tmp_path: Path) -> None:
    (tmp_path / "present.h").write_text("")
    text = '%#include "present.h"\n%#include "internal.h"\n% #include <config.h>\nconst A = 1;\n'
    result = sanitize_x(text, [tmp_path])
    assert result.splitlines() == ['%#include "present.h"', "", "", "const A = 1;"]


def test_type_names_come_from_rpcgen_header() -> None:
    header = (
        "extern  bool_t xdr_foo (XDR *, foo*);\n"
        "extern  bool_t xdr_bar (XDR *, bar);\n"
        "extern bool_t xdr_foo ();\n"
    )
    assert rpcgen_type_names(header) == ["foo", "bar"]


def test_roundtrip_reports_decode_consumed_and_reencoding(demo_ref: Reference) -> None:
    result = demo_ref.roundtrip("demo_name", word(3) + b"abc\0" + b"tail")
    assert result.decoded and result.consumed == 8
    assert result.reencoded == word(3) + b"abc\0"
    truncated = demo_ref.roundtrip("demo_name", word(3) + b"ab")
    assert not truncated.decoded and truncated.reencoded is None


def test_hostile_lengths_fail_inside_the_helper(demo_ref: Reference) -> None:
    # demo_blob is opaque<>: libtirpc allocates the declared length before reading.
    for length in (0xFFFFFFFF, 0xFFFFFFFC, 0x7FFFFFFF, 0x40000000):
        result = demo_ref.roundtrip("demo_blob", word(length) + b"abcd")
        assert not result.decoded
    # The helper is still alive and right afterwards.
    assert (
        demo_ref.roundtrip("demo_blob", word(1) + b"z\0\0\0").reencoded
        == word(1) + b"z\0\0\0"
    )


def test_every_demo_type_is_in_the_table(demo_ref: Reference) -> None:
    from xdrgen.frontend import load

    model = load(DEMO_X)
    assert set(model.types) <= set(demo_ref.type_names)


def test_bench_times_a_c_loop(demo_ref: Reference) -> None:
    result = demo_ref.bench("demo_count", word(5), 1000)
    assert result.iterations == 1000
    assert result.decode_encode_ns > 0 and result.decode_ns > 0 and result.encode_ns > 0


def test_unknown_type_is_a_clear_error(demo_ref: Reference) -> None:
    from reference.rpcgen_ref import ReferenceError

    with pytest.raises(ReferenceError, match="no_such_type"):
        demo_ref.roundtrip("no_such_type", b"")


@pytest.mark.parametrize(
    "relative", ["libvirt/remote_protocol.x", "guestfs/guestfs_protocol.x"]
)
def test_scanner_matches_rpcgen_on_upstream_files(relative: str) -> None:
    """The input classifier used by the damaged-input tests agrees with rpcgen (no generator)."""
    require_reference()
    from xdrgen.frontend import FrontendOptions, load

    x_file = require_shared(relative)
    headers = (Path("/usr/include/libvirt/libvirt.h"),) if "libvirt" in relative else ()
    model = load(x_file, FrontendOptions(constants_from=headers))
    encodings = Encodings(model)
    scanner = Scanner(model)
    with build_reference(x_file) as reference:
        # A sample of types keeps this fast; the differential suite covers all of them.
        for type_name in sorted(model.types)[::7]:

            @settings(
                max_examples=4,
                derandomize=True,
                database=None,
                deadline=None,
                suppress_health_check=list(HealthCheck),
            )
            @given(mutations(encodings.of(type_name)))
            def agree(data: bytes) -> None:
                theirs = reference.roundtrip(type_name, data)
                scan = scanner.scan(type_name, data)
                assert scan.accepted == theirs.decoded, (type_name, data.hex())
                if scan.accepted:
                    assert scan.consumed == theirs.consumed, (type_name, data.hex())

            agree()
