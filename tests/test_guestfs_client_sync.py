"""The generated blocking client (GuestfsClient) against Debian's real guestfsd."""

from __future__ import annotations

import errno
import hashlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from guestfs_clients import MIB, calls_on_wire, gfc, random_file  # noqa: F401  (fixture)
from peers.guestfsd import GuestfsDaemon, big_guestfsd, guestfsd  # noqa: F401  (fixtures)
from peers.relay import RecordingRelay
from xdrgen.runtime.guestfs import GuestfsCancelled, GuestfsError
from xdrgen.runtime.guestfs.events import ProgressNotice
from xdrgen.runtime.guestfs.transfer import CancelToken


@pytest.fixture
def g(gfc: ModuleType, guestfsd: GuestfsDaemon) -> Iterator[Any]:  # noqa: F811
    with gfc.GuestfsClient.connect(guestfsd.socket_path, timeout=60) as client:
        yield client


def test_echo_ping_and_files(g: Any) -> None:
    """libguestfs 1.48's write and cat are library calls over the daemon's internal_write and
    download (and pread, head): those are the procedures the protocol has."""
    assert g.echo_daemon(["hello", "daemon"]) == "hello daemon"
    assert g.ping_daemon() is None
    g.mkdir_p("/a/b/c")
    g.touch("/a/b/c/empty")
    g.internal_write("/a/b/c/f", b"hello\nworld\n")
    assert g.pread("/a/b/c/f", 5, 6) == b"world"
    assert g.head("/a/b/c/f") == ["hello", "world"]
    cat = bytearray()
    assert g.download("/a/b/c/f", cat) == 12 and cat == b"hello\nworld\n"
    names = bytearray()
    assert g.ls0("/a/b/c", names) == len(names)  # FileOut: NUL-terminated names
    assert sorted(names.split(b"\0")[:-1]) == [b"empty", b"f"]
    entries = {d.name: d.ftyp for d in g.readdir("/a/b/c")}
    assert entries == {".": ord("d"), "..": ord("d"), "empty": ord("r"), "f": ord("r")}
    st = g.statns("/a/b/c/f")
    assert st.st_size == 12 and st.st_mode & 0o170000 == 0o100000
    assert g.statns("/a/b/c/empty").st_size == 0


def test_eexist_carries_errno(g: Any) -> None:
    g.mkdir("/d")
    with pytest.raises(GuestfsError) as info:
        g.mkdir("/d")
    assert info.value.errno == "EEXIST" and info.value.errno_code == errno.EEXIST
    assert "/d" in info.value.message
    assert g.echo_daemon(["still", "usable"]) == "still usable"


def test_optional_arguments_set_the_bitmask(gfc: ModuleType, guestfsd: GuestfsDaemon) -> None:  # noqa: F811
    with RecordingRelay(guestfsd.socket_path) as relay, gfc.GuestfsClient.connect(relay.path, timeout=60) as g:
        g.internal_write("/words", b"abc\nABC\nxyz\n")
        assert g.grep("abc", "/words") == ["abc"]
        assert g.grep("abc", "/words", insensitive=True) == ["abc", "ABC"]  # bit 2
        g.internal_write("/target", b"t")
        g.ln_s("/target", "/link")
        assert g.is_file("/link") is False
        assert g.is_file("/link", followsymlinks=True) is True  # bit 0
        assert g.is_file("/link", followsymlinks=False) is False  # given, so its bit is set too
        calls = calls_on_wire(relay.snapshot())
    procs: dict[int, list[int]] = {gfc.GUESTFS_PROC_GREP: [], gfc.GUESTFS_PROC_IS_FILE: []}
    for call in calls:
        if call.proc in procs:
            procs[call.proc].append(call.optargs_bitmask)
    assert procs[gfc.GUESTFS_PROC_GREP] == [0, 0x4]
    assert procs[gfc.GUESTFS_PROC_IS_FILE] == [0, 0x1, 0x1]
    assert all(c.optargs_bitmask == 0 for c in calls if c.proc not in procs)


def test_64_mib_upload_and_download(gfc: ModuleType, big_guestfsd: GuestfsDaemon, tmp_path: Path) -> None:  # noqa: F811
    source, copy = tmp_path / "source", tmp_path / "copy"
    random_file(str(source), 64 * MIB)
    with gfc.GuestfsClient.connect(big_guestfsd.socket_path, timeout=60) as g:
        g.upload(str(source), "/big")  # FileIn from a path
        assert g.statns("/big").st_size == 64 * MIB
        assert g.download("/big", str(copy)) == 64 * MIB  # FileOut to a path
        digest = hashlib.sha256()
        with open(source, "rb") as handle:  # FileIn from a file object, FileOut to a callable
            g.upload(handle, "/big2")
        assert g.download("/big2", digest.update) == 64 * MIB
    expected = hashlib.sha256(source.read_bytes()).hexdigest()
    assert hashlib.sha256(copy.read_bytes()).hexdigest() == expected
    assert digest.hexdigest() == expected


def test_client_cancels_upload(g: Any) -> None:
    token = CancelToken()
    sent = 0

    def blocks() -> Iterator[bytes]:
        nonlocal sent
        while True:
            if sent >= 2 * MIB:
                token.cancel()
            sent += 256 * 1024
            yield bytes(256 * 1024)

    with pytest.raises(GuestfsCancelled):
        g.upload(blocks(), "/partial", cancel=token)
    assert 2 * MIB <= sent <= 3 * MIB
    assert g.echo_daemon(["after", "cancel"]) == "after cancel"


def test_daemon_cancels_upload(g: Any) -> None:
    with pytest.raises(GuestfsError) as info:
        g.upload(bytes(4 * MIB), "/no/such/dir/file")
    assert info.value.errno == "ENOENT"
    assert g.echo_daemon(["daemon", "cancelled"]) == "daemon cancelled"


def test_client_cancels_download(g: Any) -> None:
    g.upload(bytes(32 * MIB), "/huge")
    stop = threading.Event()
    received = 0

    def sink(data: bytes) -> None:
        nonlocal received
        received += len(data)
        if received >= MIB:
            stop.set()

    with pytest.raises(GuestfsCancelled):
        g.download("/huge", sink, cancel=stop)
    assert MIB <= received < 16 * MIB  # the daemon stopped early
    assert g.echo_daemon(["download", "cancelled"]) == "download cancelled"
    assert g.download("/huge", bytearray()) == 32 * MIB


def test_progress_during_long_transfers(g: Any) -> None:
    """The daemon reports progress once a call has run 2 s: throttle both directions to ~3 s."""
    size = 3 * MIB
    ups: list[ProgressNotice] = []

    def slow_blocks() -> Iterator[bytes]:
        for _ in range(size // (64 * 1024)):
            time.sleep(3 / (size // (64 * 1024)))
            yield bytes(64 * 1024)

    g.upload(slow_blocks(), "/slow", progress_hint=size, progress=ups.append)
    assert ups, "no progress messages during a 3 s upload"
    assert all(0 <= n.position <= n.total == size for n in ups)
    downs: list[ProgressNotice] = []
    pace = 3 / (size // 8192)

    def slow_sink(data: bytes) -> None:
        time.sleep(pace)

    assert g.download("/slow", slow_sink, progress=downs.append) == size
    assert downs, "no progress messages during a 3 s download"
    assert all(0 <= n.position <= n.total == size for n in downs)
    assert [n.position for n in downs] == sorted(n.position for n in downs)


def test_deprecated_procedure_warns(g: Any) -> None:
    g.mkdir("/tgz")
    with pytest.warns(DeprecationWarning, match="tgz_out is deprecated; use tar_out instead"):
        g.tgz_out("/tgz", bytearray())
