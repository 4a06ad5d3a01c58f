"""``decode`` and ``decode_from`` report a truncated input the same way.

Some types have a specialised whole-value ``decode`` (one ``unpack`` of an
all-fixed struct, one copy of a lone opaque).  Whatever path runs, a cut input
must raise the same error: same class, same field path, same byte offset, same
message, for every type of demo.x, libvirt and guestfs and every cut point.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import pytest

from test_generate_helpers import DEMO_X, check_every_type, generated_module
from xdrgen.runtime.errors import XdrError, XdrTruncatedError

EXAMPLES = {"demo": 10, "remote_protocol": 2, "guestfs_protocol": 2}


def _error(call: Any) -> XdrError:
    with pytest.raises(XdrError) as info:
        call()
    return info.value


def check_cuts(codec: Any, value: Any) -> None:
    data = codec.encode(value)
    for cut in range(len(data)):
        short = data[:cut]
        whole = _error(lambda: codec.decode(short))
        part = _error(lambda: codec.decode_from(short, 0))
        assert isinstance(whole, XdrTruncatedError), (cut, str(whole))
        assert type(whole) is type(part), (cut, str(whole), str(part))
        assert (whole.path, whole.offset, str(whole)) == (
            part.path,
            part.offset,
            str(part),
        ), cut
        assert whole.offset is not None and whole.offset <= cut


def run_all_types(source: Path, examples: int) -> None:
    check_every_type(source, examples, check_cuts, "truncation check")


def test_demo_truncation_errors_agree() -> None:
    run_all_types(DEMO_X, EXAMPLES["demo"])


def test_libvirt_truncation_errors_agree(
    remote_protocol_x: Path, libvirt_header: Path
) -> None:
    run_all_types(remote_protocol_x, EXAMPLES["remote_protocol"])


def test_guestfs_truncation_errors_agree(guestfs_protocol_x: Path) -> None:
    run_all_types(guestfs_protocol_x, EXAMPLES["guestfs_protocol"])


def test_all_fixed_struct_cut_names_the_field(
    remote_protocol_x: Path, libvirt_header: Path
) -> None:
    remote = generated_module(remote_protocol_x)
    codec = remote.XDR_TYPES["remote_domain_get_info_ret"]
    data = struct.pack(">IQQIQ", 1, 2, 3, 4, 5)
    for call in (
        lambda: codec.decode(data[:31]),
        lambda: codec.decode_from(data[:31], 0),
    ):
        err = _error(call)
        assert isinstance(err, XdrTruncatedError)
        assert err.path == "cpuTime" and err.offset == 24, str(err)
        assert "unsigned hyper needs 8 bytes, 7 remain" in str(err)
