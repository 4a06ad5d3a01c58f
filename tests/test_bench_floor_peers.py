"""The benchmark's floor peers build what the generated code builds, and the
checked floor refuses what the generated code refuses.

bench/bench_marshal.py compares the generated code against these peers; if they
did less work (a missing check) or different work (other bytes or values), the
comparison would be meaningless.
"""

from __future__ import annotations

import os
import random
import struct
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest

from test_generate_helpers import generated_module
from xdrgen.runtime.errors import XdrError

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.append(str(BENCH))

with warnings.catch_warnings():
    # bench_marshal's xdrlib peer imports xdrlib (PyPI standard-xdrlib), which
    # warns on import; the floors and the inputs used here have nothing to do with it.
    warnings.simplefilter("ignore", DeprecationWarning)
    from bench_marshal import workloads  # noqa: E402
from marshal_peers.floor_peer import make_checked_floor, make_floor  # noqa: E402


@pytest.fixture
def remote(remote_protocol_x: Path, libvirt_header: Path) -> Any:
    return generated_module(remote_protocol_x)


def _inputs() -> dict[str, bytes]:
    return {w.type_name: w.data for w in workloads() if w.key in ("W1", "W2", "W3")}


def test_floors_build_the_same_values_and_bytes(remote: Any) -> None:
    for floors in (make_floor(remote), make_checked_floor(remote)):
        assert set(floors) == set(_inputs())
        for type_name, data in _inputs().items():
            encode, decode = floors[type_name]
            ours = remote.XDR_TYPES[type_name].decode(data)
            assert decode(data) == ours, type_name
            assert encode(ours) == data, type_name


def _mutants(data: bytes, rng: random.Random) -> list[bytes]:
    """Truncations, a trailing byte, and single-byte changes at random places."""
    out = [data[:cut] for cut in rng.sample(range(len(data)), min(len(data), 60))]
    out.append(data + b"\0")
    for position in rng.sample(range(len(data)), min(len(data), 400)):
        for byte in (0x00, 0x01, 0x80, 0xFF):
            if byte != data[position]:
                out.append(data[:position] + bytes([byte]) + data[position + 1 :])
    return out


def test_checked_floor_rejects_what_the_generated_code_rejects(remote: Any) -> None:
    """Same accept/reject decision on mutated inputs (the floor's reasons are bare)."""
    floors = make_checked_floor(remote)
    rng = random.Random(11)
    rejected = 0
    for type_name, data in _inputs().items():
        codec = remote.XDR_TYPES[type_name]
        _, decode = floors[type_name]
        for mutant in _mutants(data, rng):
            try:
                expected = codec.decode(mutant)
            except XdrError:
                expected = None
            try:
                got = decode(mutant)
            except (struct.error, ValueError, KeyError, IndexError):
                got = None  # a bare refusal: the floor works out no reason
            if expected is None:
                rejected += 1
                assert got is None, (type_name, mutant.hex())
            elif got is not None:
                assert got == expected, (type_name, mutant.hex())
            else:
                # Only invalid UTF-8 may differ: the generated code keeps such
                # bytes (surrogateescape); the floor's plain decode() refuses them.
                with pytest.raises(UnicodeDecodeError):
                    decode_strict_utf8(expected)
    assert rejected > 500


def decode_strict_utf8(value: Any) -> None:
    """Raise UnicodeDecodeError if any str in ``value`` holds escaped bytes."""
    for name in getattr(value, "__slots__", ()):
        decode_strict_utf8(getattr(value, name))
    if isinstance(value, list):
        for item in value:
            decode_strict_utf8(item)
    if isinstance(value, str):
        value.encode("utf-8", "surrogateescape").decode("utf-8")


def test_msgspec_peer_carries_the_same_data(remote: Any) -> None:
    """bench_marshal's msgspec peer (issue 14) converts each workload's value whole:
    every field survives its round trip, so msgspec times the same data."""
    try:
        import msgspec  # noqa: F401
    except ImportError:
        message = "msgspec not installed (pip install -e '.[bench]')"
        if os.environ.get("XDRGEN_REQUIRE_PEERS") == "1":
            pytest.fail(message + " and XDRGEN_REQUIRE_PEERS=1")
        pytest.skip(message)
    from marshal_peers.msgspec_peer import make_msgspec_op

    for work in workloads():
        value = remote.XDR_TYPES[work.type_name].decode(work.data)
        encode, theirs, decode, data = make_msgspec_op(work.type_name, value)
        assert decode(encode(theirs)) == theirs
        fields = theirs.__struct_fields__
        for name in fields:
            mine = getattr(value, name)
            other = getattr(theirs, name)
            if isinstance(mine, list):
                assert len(mine) == len(other) > 0, (work.key, name)
            else:
                assert mine == other, (work.key, name)
