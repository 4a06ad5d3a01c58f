"""The guestfs runtime against Debian's real guestfsd (root; see tests/peers/guestfsd.py)."""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

from conftest import require_shared
from peers.guestfsd import GuestfsDaemon, guestfsd  # noqa: F401  (fixture)
from xdrgen.build.loader import load_generated
from xdrgen.frontend.options import FrontendOptions
from xdrgen.runtime.guestfs import GuestfsCancelled, GuestfsError, Phase
from xdrgen.runtime.guestfs.events import ProgressNotice
from xdrgen.runtime.guestfs.sync import GuestfsConnection

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def gfs() -> ModuleType:
    """Codecs generated from the real guestfs_protocol.x (about a second)."""
    return load_generated(require_shared("guestfs/guestfs_protocol.x"), FrontendOptions())


@pytest.fixture
def conn(guestfsd: GuestfsDaemon) -> Iterator[GuestfsConnection]:  # noqa: F811
    connection = GuestfsConnection.connect(guestfsd.socket_path, timeout=30)
    try:
        yield connection
    except BaseException:
        print(guestfsd.diagnostics())
        raise
    finally:
        connection.close()


def echo(conn: GuestfsConnection, gfs: Any, *words: str) -> str:
    T = gfs.XDR_TYPES
    ret = conn.call(gfs.GUESTFS_PROC_ECHO_DAEMON, T["guestfs_echo_daemon_args"], gfs.guestfs_echo_daemon_args(list(words)), T["guestfs_echo_daemon_ret"])
    assert ret is not None
    return str(ret.output)


def upload(conn: GuestfsConnection, gfs: Any, path: str, source: Any, **kw: Any) -> None:
    conn.upload(gfs.GUESTFS_PROC_UPLOAD, gfs.XDR_TYPES["guestfs_upload_args"], gfs.guestfs_upload_args(path), source, **kw)


def download(conn: GuestfsConnection, gfs: Any, path: str, sink: Any, **kw: Any) -> int:
    return conn.download(gfs.GUESTFS_PROC_DOWNLOAD, gfs.XDR_TYPES["guestfs_download_args"], gfs.guestfs_download_args(path), sink, **kw)


def statns(conn: GuestfsConnection, gfs: Any, path: str) -> Any:
    T = gfs.XDR_TYPES
    ret = conn.call(gfs.GUESTFS_PROC_STATNS, T["guestfs_statns_args"], gfs.guestfs_statns_args(path), T["guestfs_statns_ret"])
    return ret.statbuf


def test_launch_handshake_and_echo(conn: GuestfsConnection, gfs: Any) -> None:
    assert conn.core.phase is Phase.IDLE
    assert conn.core.bytes_received == 4  # the launch flag, nothing else
    assert echo(conn, gfs, "hello", "daemon") == "hello daemon"


def test_failing_call_carries_the_daemons_message(conn: GuestfsConnection, gfs: Any) -> None:
    T = gfs.XDR_TYPES
    with pytest.raises(GuestfsError) as info:
        conn.call(gfs.GUESTFS_PROC_MKDIR, T["guestfs_mkdir_args"], gfs.guestfs_mkdir_args("/no/such"), None)
    assert "/no/such" in info.value.message and "No such file or directory" in info.value.message
    assert info.value.errno == "ENOENT" and info.value.errno_code == 2
    # The connection goes on: make the parent and see it is a directory.
    conn.call(gfs.GUESTFS_PROC_MKDIR, T["guestfs_mkdir_args"], gfs.guestfs_mkdir_args("/no"), None)
    assert statns(conn, gfs, "/no").st_mode & 0o170000 == 0o040000


def test_upload_then_download_8_mib(conn: GuestfsConnection, gfs: Any) -> None:
    data = os.urandom(8 * MIB + 4097)  # not a multiple of the chunk size: exercises padding
    upload(conn, gfs, "/big", io.BytesIO(data), progress_hint=len(data))
    assert statns(conn, gfs, "/big").st_size == len(data)
    digest = hashlib.sha256()
    assert download(conn, gfs, "/big", digest.update) == len(data)
    assert digest.digest() == hashlib.sha256(data).digest()


def test_upload_from_iterable_of_blocks(conn: GuestfsConnection, gfs: Any) -> None:
    blocks = [b"a" * 5, memoryview(b"b" * 20000), bytearray(b"c" * 3)]
    upload(conn, gfs, "/blocks", iter(blocks))
    out = bytearray()
    download(conn, gfs, "/blocks", out)
    assert out == b"a" * 5 + b"b" * 20000 + b"c" * 3


def test_daemon_cancels_upload_to_bad_path(conn: GuestfsConnection, gfs: Any) -> None:
    with pytest.raises(GuestfsError) as info:
        upload(conn, gfs, "/missing/dir/file", bytes(2 * MIB))
    assert info.value.errno == "ENOENT" and "/missing/dir/file" in info.value.message
    assert echo(conn, gfs, "still", "here") == "still here"


def test_upload_cancelled_by_us(conn: GuestfsConnection, gfs: Any) -> None:
    polls = 0

    def cancel() -> bool:
        nonlocal polls
        polls += 1
        return polls > 3  # after three blocks

    with pytest.raises(GuestfsCancelled):
        upload(conn, gfs, "/partial", bytes(4 * MIB), cancel=cancel)
    assert polls == 4
    assert echo(conn, gfs, "after", "cancel") == "after cancel"


def test_upload_source_failure_cancels_and_keeps_connection(conn: GuestfsConnection, gfs: Any) -> None:
    def broken() -> Iterator[bytes]:
        yield bytes(100000)
        raise OSError("disk on fire")

    with pytest.raises(OSError, match="disk on fire"):
        upload(conn, gfs, "/broken", broken())
    assert echo(conn, gfs, "ok") == "ok"


def test_download_cancelled_midway(conn: GuestfsConnection, gfs: Any) -> None:
    size = 32 * MIB
    upload(conn, gfs, "/huge", bytes(size))
    received = 0

    def sink(data: bytes) -> None:
        nonlocal received
        received += len(data)

    before = conn.core.bytes_received
    with pytest.raises(GuestfsCancelled):
        download(conn, gfs, "/huge", sink, cancel=lambda: received > 0)
    # The daemon stopped early: far less than the file crossed the socket.
    assert 0 < received < size
    assert conn.core.bytes_received - before < size // 2
    assert echo(conn, gfs, "usable") == "usable"
    digest = hashlib.sha256()
    assert download(conn, gfs, "/huge", digest.update) == size
    assert digest.digest() == hashlib.sha256(bytes(size)).digest()


def test_failing_sink_cancels_and_reraises(conn: GuestfsConnection, gfs: Any) -> None:
    upload(conn, gfs, "/f", bytes(3 * MIB))

    def sink(data: bytes) -> None:
        raise ValueError("sink full")

    with pytest.raises(ValueError, match="sink full"):
        download(conn, gfs, "/f", sink)
    assert echo(conn, gfs, "fine") == "fine"


def test_download_of_missing_file_and_stray_cancel_flag(conn: GuestfsConnection, gfs: Any) -> None:
    with pytest.raises(GuestfsError) as info:
        download(conn, gfs, "/nope", bytearray())
    assert info.value.errno == "ENOENT"
    # Cancel at once: the flag reaches the daemon before it fails the call, so
    # it sees a stray cancel flag between calls, which it must ignore.
    with pytest.raises(GuestfsError):
        download(conn, gfs, "/nope", bytearray(), cancel=lambda: True)
    assert echo(conn, gfs, "ignored") == "ignored"


def test_progress_messages(conn: GuestfsConnection, gfs: Any) -> None:
    """``debug progress 3`` works for 3 s; the daemon reports after 2 s, then at 100%."""
    T = gfs.XDR_TYPES
    notices: list[ProgressNotice] = []
    args = gfs.guestfs_debug_args("progress", ["3"])
    conn.call(gfs.GUESTFS_PROC_DEBUG, T["guestfs_debug_args"], args, T["guestfs_debug_ret"], progress=notices.append)
    assert notices, "the daemon sent no progress messages"
    assert all(n.proc == gfs.GUESTFS_PROC_DEBUG and n.serial == conn.core.serial for n in notices)
    assert all(0 <= n.position <= n.total for n in notices)
    assert notices[-1].position == notices[-1].total
