"""A struct or array field followed by a union encodes (issue 10, defect 1).

The encoder fused a union with the field before it as if that field were a
string; values decoded from rpcgen's bytes could not be sent back.  Both
directions are compared with rpcgen's C for the file that reproduced it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reference.harness import ProtocolUnderTest, load_protocol, require_reference

X_FILE = Path(__file__).with_name("xfiles") / "union_after_named.x"


@pytest.fixture(scope="module")
def protocol(tmp_path_factory: pytest.TempPathFactory) -> ProtocolUnderTest:
    require_reference()
    return load_protocol("union_after_named", X_FILE, tmp_path_factory.mktemp("uan"))


def _values(m: Any) -> list[tuple[str, Any]]:
    return [
        ("lookup_ok", m.lookup_ok(m.fh(b"ab"), m.attr(True, 5))),
        ("lookup_ok", m.lookup_ok(m.fh(b""), m.attr(False))),
        ("lookup_ok", m.lookup_ok(m.fh(b"x" * 64), m.attr(True, 2**64 - 1))),
        ("holder", m.holder([m.pair(1, 2)], m.u(1, 7))),
        ("holder", m.holder([], m.u(9))),
        ("holder", m.holder([m.pair(-128, 127)] * 43, m.u(-5))),
    ]


def test_values_round_trip_and_match_rpcgen(protocol: ProtocolUnderTest) -> None:
    m = protocol.generated
    for type_name, value in _values(m):
        codec = protocol.codec(type_name)
        data = codec.encode(value)
        assert codec.decode(data) == value
        theirs = protocol.reference.roundtrip(type_name, data)
        assert theirs.decoded and theirs.consumed == len(data), (type_name, value)
        assert theirs.reencoded == data, (type_name, data.hex())


def test_expected_bytes(protocol: ProtocolUnderTest) -> None:
    m = protocol.generated
    lookup = protocol.codec("lookup_ok").encode(m.lookup_ok(m.fh(b"ab"), m.attr(True, 5)))
    assert lookup.hex() == "00000002" "61620000" "00000001" "0000000000000005"
    holder = protocol.codec("holder").encode(m.holder([m.pair(1, 2)], m.u(1, 7)))
    assert holder.hex() == "00000001" "00000001" "00000002" "00000001" "00000007"
