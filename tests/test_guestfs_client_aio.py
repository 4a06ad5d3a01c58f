"""The generated asyncio client (GuestfsAsyncClient) against Debian's real guestfsd."""

from __future__ import annotations

import asyncio
import errno
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from guestfs_clients import MIB, calls_on_wire, gfc, random_file  # noqa: F401  (fixture)
from peers.guestfsd import GuestfsDaemon, big_guestfsd, guestfsd  # noqa: F401  (fixtures)
from peers.relay import RecordingRelay
from xdrgen.runtime.guestfs import GuestfsCancelled, GuestfsConnectionClosed, GuestfsError
from xdrgen.runtime.guestfs.aio import HIGH_WATER
from xdrgen.runtime.guestfs.events import ProgressNotice

Session = Callable[[Any], Awaitable[None]]


def run(gfc: ModuleType, path: str, session: Session) -> None:  # noqa: F811
    async def main() -> None:
        async with await gfc.GuestfsAsyncClient.connect(path, timeout=60) as g:
            await session(g)

    asyncio.run(main())


def test_echo_ping_and_files(gfc: ModuleType, guestfsd: GuestfsDaemon) -> None:  # noqa: F811
    async def session(g: Any) -> None:
        assert await g.echo_daemon(["hello", "daemon"]) == "hello daemon"
        assert await g.ping_daemon() is None
        await g.mkdir_p("/a/b/c")
        await g.touch("/a/b/c/empty")
        await g.internal_write("/a/b/c/f", b"hello\nworld\n")
        assert await g.pread("/a/b/c/f", 5, 6) == b"world"
        assert await g.head("/a/b/c/f") == ["hello", "world"]
        cat = bytearray()
        assert await g.download("/a/b/c/f", cat) == 12 and cat == b"hello\nworld\n"
        names = b"".join([bytes(b) async for b in g.ls0_iter("/a/b/c")])  # FileOut as an async iterator
        assert sorted(names.split(b"\0")[:-1]) == [b"empty", b"f"]
        entries = {d.name: d.ftyp for d in await g.readdir("/a/b/c")}
        assert entries == {".": ord("d"), "..": ord("d"), "empty": ord("r"), "f": ord("r")}
        assert (await g.statns("/a/b/c/f")).st_size == 12

    run(gfc, guestfsd.socket_path, session)


def test_eexist_carries_errno(gfc: ModuleType, guestfsd: GuestfsDaemon) -> None:  # noqa: F811
    async def session(g: Any) -> None:
        await g.mkdir("/d")
        with pytest.raises(GuestfsError) as info:
            await g.mkdir("/d")
        assert info.value.errno == "EEXIST" and info.value.errno_code == errno.EEXIST
        assert await g.echo_daemon(["still", "usable"]) == "still usable"

    run(gfc, guestfsd.socket_path, session)


def test_optional_arguments_set_the_bitmask(gfc: ModuleType, guestfsd: GuestfsDaemon) -> None:  # noqa: F811
    async def session(g: Any) -> None:
        await g.internal_write("/words", b"abc\nABC\nxyz\n")
        assert await g.grep("abc", "/words", insensitive=True) == ["abc", "ABC"]
        await g.mkdir("/dir")
        await g.internal_write("/dir/x", b"x" * 1000)
        tgz = bytearray()
        await g.tar_out("/dir", tgz, compress="gzip", numericowner=True)  # bits 0 and 1
        assert tgz[:2] == b"\x1f\x8b"  # gzip magic: the optional argument reached the daemon

    with RecordingRelay(guestfsd.socket_path) as relay:
        run(gfc, relay.path, session)
        calls = calls_on_wire(relay.snapshot())
    masks = {c.proc: c.optargs_bitmask for c in calls}
    assert masks[gfc.GUESTFS_PROC_GREP] == 0x4
    assert masks[gfc.GUESTFS_PROC_TAR_OUT] == 0x3
    assert masks[gfc.GUESTFS_PROC_MKDIR] == 0


def test_64_mib_upload_and_download(gfc: ModuleType, big_guestfsd: GuestfsDaemon, tmp_path: Path) -> None:  # noqa: F811
    source = tmp_path / "source"
    random_file(str(source), 64 * MIB)
    expected = hashlib.sha256(source.read_bytes()).hexdigest()

    async def blocks() -> AsyncIterator[bytes]:
        with open(source, "rb") as handle:
            while block := handle.read(MIB):
                yield block

    async def session(g: Any) -> None:
        await g.upload(str(source), "/big")  # from a path
        await g.upload(blocks(), "/big2")  # from an async iterator
        assert (await g.statns("/big2")).st_size == 64 * MIB
        copy = tmp_path / "copy"
        assert await g.download("/big", str(copy)) == 64 * MIB
        assert hashlib.sha256(copy.read_bytes()).hexdigest() == expected
        digest = hashlib.sha256()
        largest = 0
        async for view in g.download_iter("/big2"):  # memoryviews, never more than HIGH_WATER queued
            assert isinstance(view, memoryview)
            largest = max(largest, len(view))
            digest.update(view)
        assert digest.hexdigest() == expected and 0 < largest <= HIGH_WATER

    run(gfc, big_guestfsd.socket_path, session)


def test_client_cancels_upload(gfc: ModuleType, guestfsd: GuestfsDaemon) -> None:  # noqa: F811
    async def session(g: Any) -> None:
        stop = asyncio.Event()
        sent = 0

        async def blocks() -> AsyncIterator[bytes]:
            nonlocal sent
            while True:
                if sent >= 2 * MIB:
                    stop.set()
                sent += 256 * 1024
                yield bytes(256 * 1024)

        with pytest.raises(GuestfsCancelled):
            await g.upload(blocks(), "/partial", cancel=stop)
        assert 2 * MIB <= sent <= 3 * MIB
        assert await g.echo_daemon(["after", "cancel"]) == "after cancel"

    run(gfc, guestfsd.socket_path, session)


def test_daemon_cancels_upload(gfc: ModuleType, guestfsd: GuestfsDaemon) -> None:  # noqa: F811
    async def session(g: Any) -> None:
        with pytest.raises(GuestfsError) as info:
            await g.upload(bytes(4 * MIB), "/no/such/dir/file")
        assert info.value.errno == "ENOENT"
        assert await g.echo_daemon(["daemon", "cancelled"]) == "daemon cancelled"

    run(gfc, guestfsd.socket_path, session)


def test_client_cancels_download(gfc: ModuleType, guestfsd: GuestfsDaemon) -> None:  # noqa: F811
    async def session(g: Any) -> None:
        await g.upload(bytes(32 * MIB), "/huge")
        received = 0

        def sink(data: bytes) -> None:
            nonlocal received
            received += len(data)

        with pytest.raises(GuestfsCancelled):
            await g.download("/huge", sink, cancel=lambda: received >= MIB)
        assert MIB <= received < 16 * MIB
        assert await g.echo_daemon(["download", "cancelled"]) == "download cancelled"
        # Leaving an iterator early cancels the rest of the transfer.
        taken = 0
        async with aclosing(g.download_iter("/huge")) as blocks:
            async for view in blocks:
                taken += len(view)
                if taken >= MIB:
                    break
        assert MIB <= taken < 32 * MIB
        assert await g.echo_daemon(["iterator", "closed"]) == "iterator closed"
        assert await g.download("/huge", bytearray()) == 32 * MIB

    run(gfc, guestfsd.socket_path, session)


def test_progress_during_long_transfers(gfc: ModuleType, guestfsd: GuestfsDaemon) -> None:  # noqa: F811
    """The daemon reports progress once a call has run 2 s: throttle both directions to ~4 s
    (the daemon runs up to HIGH_WATER plus the socket buffers ahead of a slow reader)."""
    size = 8 * MIB

    async def session(g: Any) -> None:
        ups: list[ProgressNotice] = []

        async def slow_blocks() -> AsyncIterator[bytes]:
            for _ in range(size // (256 * 1024)):
                await asyncio.sleep(3 / (size // (256 * 1024)))
                yield bytes(256 * 1024)

        await g.upload(slow_blocks(), "/slow", progress_hint=size, progress=ups.append)
        assert ups and all(0 <= n.position <= n.total == size for n in ups)
        downs: list[ProgressNotice] = []
        received = 0
        async for view in g.download_iter("/slow", progress=downs.append):
            received += len(view)
            await asyncio.sleep(4 / (size // 8192))
        assert received == size
        assert downs and all(0 <= n.position <= n.total == size for n in downs)

    run(gfc, guestfsd.socket_path, session)


def test_task_cancelled_mid_call_closes_the_connection(gfc: ModuleType, guestfsd: GuestfsDaemon) -> None:  # noqa: F811
    """Cancelling the task (not ``cancel=``) leaves the conversation out of step: closed, not hung."""

    async def session(g: Any) -> None:
        task = asyncio.create_task(g.debug("sh", ["sleep 5"]))
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        with pytest.raises(GuestfsConnectionClosed):
            await g.echo_daemon(["closed"])

    run(gfc, guestfsd.socket_path, session)
