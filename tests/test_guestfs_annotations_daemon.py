"""protocols/annotations/guestfs-1.48.toml checked against the real guestfsd.

The daemon itself reveals part of what the annotation file states: refusing a
call whose ``optargs_bitmask`` has a bit it does not know, it first cancels the
upload of a FileIn procedure (the cancel flag), and it names "unknown option"
only for bits past the procedure's optional arguments.  Procedures whose
feature (btrfs, lvm2, ...) this guestfsd lacks refuse before that check; they
are left out.  FileOut procedures that need no disk run and must send chunks.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import pytest

from guestfs_clients import gfc  # noqa: F401  (fixture)
from peers.guestfsd import GuestfsDaemon, guestfsd  # noqa: F401  (fixture)
from xdrgen.runtime.guestfs.constants import HEADER
from xdrgen.runtime.guestfs.errors import decode_message_error
from xdrgen.runtime.guestfs.framing import CANCEL_CHUNK, Cancel, InputBuffer, Launch, Message, Record, decode_header, encode_message

UNKNOWN_BIT = "unknown option in optional arguments bitmask"
NO_OPTARGS = "optargs_bitmask field must be passed as 0"


@dataclass
class Refusal:
    cancelled_upload: bool
    message: str


class RawClient:
    """Just enough of the protocol to send one bad call and read the refusal."""

    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(20)
        self.sock.connect(path)
        self.input = InputBuffer()
        self.serial = 0
        assert isinstance(self.record(), Launch)

    def record(self) -> Record:
        while (item := self.input.next_record()) is None:
            data = self.sock.recv(65536)
            assert data, "the daemon closed the connection"
            self.input.feed(data)
        return item

    def refuse(self, proc: int, bitmask: int) -> Refusal:
        self.serial += 1
        self.sock.sendall(b"".join(encode_message(proc, self.serial, b"", optargs_bitmask=bitmask)))
        item = self.record()
        cancelled = isinstance(item, Cancel)
        if cancelled:
            self.sock.sendall(CANCEL_CHUNK)  # answer the daemon's cancel, as a client must
            item = self.record()
        assert isinstance(item, Message)
        header = decode_header(item.payload, 0)
        assert header.serial == self.serial and header.status == 1, f"procedure {proc} did not refuse"
        return Refusal(cancelled, decode_message_error(item.payload[HEADER.size :], 0).message)


@pytest.fixture
def raw(guestfsd: GuestfsDaemon) -> Iterator[RawClient]:  # noqa: F811
    client = RawClient(guestfsd.socket_path)
    yield client
    client.sock.close()


def annotated(gfc: ModuleType) -> dict[str, Any]:  # noqa: F811
    return {p.method_name: p for p in gfc.PROCEDURES.values()}


def test_filein_procedures_are_exactly_those_the_daemon_cancels(gfc: ModuleType, raw: RawClient) -> None:  # noqa: F811
    daemon_filein = {p.method_name for p in gfc.PROCEDURES.values() if raw.refuse(p.number, 1 << 63).cancelled_upload}
    annotated_filein = {name for name, p in annotated(gfc).items() if p.stream == "write"}
    assert daemon_filein == annotated_filein
    assert {"upload", "tar_in", "base64_in", "upload_offset"} <= annotated_filein


def test_optional_argument_counts_match_the_daemon(gfc: ModuleType, raw: RawClient) -> None:  # noqa: F811
    checked = 0
    for name, info in annotated(gfc).items():
        count = len(info.optargs)
        past = raw.refuse(info.number, 1 << count).message
        if past.startswith("feature '"):
            continue  # this guestfsd lacks the feature and refuses before looking at the bitmask
        checked += 1
        if count == 0:
            assert NO_OPTARGS in past, name
            continue
        assert UNKNOWN_BIT in past, f"{name}: the daemon knows more than {count} optional argument(s)"
        last = raw.refuse(info.number, 1 << (count - 1)).message
        assert UNKNOWN_BIT not in last and NO_OPTARGS not in last, f"{name}: fewer than {count} optional arguments"
        assert [o[1] for o in info.optargs] == list(range(count)), name
    assert checked > 350  # most procedures need no missing feature


def test_fileout_procedures_send_chunks_after_their_reply(gfc: ModuleType, guestfsd: GuestfsDaemon) -> None:  # noqa: F811
    with gfc.GuestfsClient.connect(guestfsd.socket_path, timeout=60) as g:
        g.mkdir("/d")
        g.internal_write("/d/f", b"some file contents\n" * 100)
        runs: dict[str, Callable[[bytearray], int]] = {
            "download": lambda sink: g.download("/d/f", sink),
            "download_offset": lambda sink: g.download_offset("/d/f", sink, 10, 100),
            "base64_out": lambda sink: g.base64_out("/d/f", sink),
            "checksums_out": lambda sink: g.checksums_out("md5", "/d", sink),
            "compress_out": lambda sink: g.compress_out("gzip", "/d/f", sink),
            "find0": lambda sink: g.find0("/d", sink),
            "ls0": lambda sink: g.ls0("/d", sink),
            "tar_out": lambda sink: g.tar_out("/d", sink),
            "tgz_out": lambda sink: g.tgz_out("/d", sink),
        }
        streams = annotated(gfc)
        for name, run in runs.items():
            assert streams[name].stream == "read", name
            out = bytearray()
            with pytest.warns(DeprecationWarning) if name == "tgz_out" else _nothing():
                assert run(out) == len(out) > 0, name
        assert g.echo_daemon(["all", "done"]) == "all done"


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None
