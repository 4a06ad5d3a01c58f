"""Unread downloads never stall a connection (issue 11 item 8), against the real storage daemon.

The GENERATED clients, sync and asyncio, on the patterns that used to block
for ever: asking for the volume's size after opening its download, and
opening two downloads then reading them one after the other.  libvirt-python
runs the same patterns on the same daemon (its timings are printed, never
asserted).  Also the asyncio twins of upload_file / download_file (item 11).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import REPO_ROOT, require_shared
from peers.daemons import Daemon
from peers.fixtures import storage_daemon  # noqa: F401  (fixture)
from peers.libvirt_python_probe import libvirt_python_available
from xdrgen.runtime.virnet import aio
from xdrgen.runtime.virnet.errors import StreamOverflowError

sys.path.insert(0, str(REPO_ROOT / "examples"))
from libvirt_codegen import load_remote_protocol  # noqa: E402

MiB = 1 << 20
SIZE = 48 * MiB  # three times what a stream queues before it counts as full
WAIT = 60.0
POOL = "flow"


@pytest.fixture(scope="module")
def rp() -> Any:
    require_shared("libvirt/remote_protocol.x")
    return load_remote_protocol()


@pytest.fixture(scope="module")
def volumes(storage_daemon: Daemon, rp: Any) -> Iterator[tuple[Any, list[Any], list[str]]]:
    """A sync client and two volumes of SIZE random bytes, with their sha256."""
    c = rp.RemoteClient.connect_unix(storage_daemon.socket_path)
    c.connect_open(name=storage_daemon.uri)
    pool_dir = storage_daemon.extra["pool_dir"]
    pool = c.storage_pool_create_xml(f"<pool type='dir'><name>{POOL}</name><target><path>{pool_dir}</path></target></pool>").pool
    vols, sums = [], []
    for name in ("a", "b"):
        vol = c.storage_vol_create_xml(pool, f"<volume><name>{name}</name><capacity>{SIZE}</capacity>"
                                       "<target><format type='raw'/></target></volume>").vol
        data = os.urandom(SIZE)
        _, up = c.storage_vol_upload(vol, 0, SIZE)
        up.send(data)
        up.finish(WAIT)
        vols.append(vol)
        sums.append(hashlib.sha256(data).hexdigest())
    yield c, vols, sums
    c.close()


def sha(stream: Any) -> str:
    h = hashlib.sha256()
    for chunk in stream:
        h.update(chunk)
    stream.finish(WAIT)
    return h.hexdigest()


async def asha(stream: Any) -> str:
    h = hashlib.sha256()
    async for chunk in stream:
        h.update(chunk)
    await stream.finish()
    return h.hexdigest()


def test_sync_size_query_after_opening_a_download(volumes: tuple[Any, list[Any], list[str]]) -> None:
    c, vols, sums = volumes
    _, down = c.storage_vol_download(vols[0], 0, 0)
    time.sleep(0.2)  # let the daemon fill the socket and our queue past its limit
    assert c.storage_vol_get_info(vols[0], rpc_timeout=WAIT).capacity == SIZE
    assert sha(down) == sums[0]
    assert c.connection.stream_buffered_bytes == 0


def test_sync_two_downloads_read_one_after_the_other(volumes: tuple[Any, list[Any], list[str]]) -> None:
    c, vols, sums = volumes
    _, first = c.storage_vol_download(vols[0], 0, 0, rpc_timeout=WAIT)
    _, second = c.storage_vol_download(vols[1], 0, 0, rpc_timeout=WAIT)
    assert sha(first) == sums[0]
    assert sha(second) == sums[1]
    assert c.storage_vol_get_info(vols[1], rpc_timeout=WAIT).capacity == SIZE


def test_asyncio_size_query_and_two_downloads(storage_daemon: Daemon, rp: Any,
                                              volumes: tuple[Any, list[Any], list[str]]) -> None:
    _, vols, sums = volumes

    async def run() -> None:
        async with await rp.RemoteAsyncClient.connect_unix(storage_daemon.socket_path) as c:
            await c.connect_open(name=storage_daemon.uri)
            _, down = await c.storage_vol_download(vols[0], 0, 0)
            await asyncio.sleep(0.2)
            assert (await c.storage_vol_get_info(vols[0], rpc_timeout=WAIT)).capacity == SIZE
            assert await asha(down) == sums[0]
            _, first = await c.storage_vol_download(vols[0], 0, 0, rpc_timeout=WAIT)
            _, second = await c.storage_vol_download(vols[1], 0, 0, rpc_timeout=WAIT)
            assert await asyncio.wait_for(asha(first), WAIT) == sums[0]
            assert await asyncio.wait_for(asha(second), WAIT) == sums[1]
            assert c.connection.stream_buffered_bytes == 0

    asyncio.run(run())


def test_sync_unread_download_past_the_cap_is_aborted_and_the_connection_goes_on(
        storage_daemon: Daemon, rp: Any, volumes: tuple[Any, list[Any], list[str]]) -> None:
    _, vols, sums = volumes
    with rp.RemoteClient.connect_unix(storage_daemon.socket_path, stream_buffer_max=8 * MiB) as c:
        c.connect_open(name=storage_daemon.uri)
        _, first = c.storage_vol_download(vols[0], 0, 0, rpc_timeout=WAIT)
        _, second = c.storage_vol_download(vols[1], 0, 0, rpc_timeout=WAIT)
        assert sha(first) == sums[0]  # read while the second one piles up past 8 MiB
        with pytest.raises(StreamOverflowError, match="stream_buffer_max is 8388608"):
            sha(second)
        assert c.connection.stream_buffered_bytes == 0
        assert c.storage_vol_get_info(vols[1], rpc_timeout=WAIT).capacity == SIZE
        _, again = c.storage_vol_download(vols[1], 0, 0, rpc_timeout=WAIT)
        assert sha(again) == sums[1]


def test_libvirt_python_on_the_same_patterns(storage_daemon: Daemon, rp: Any,
                                             volumes: tuple[Any, list[Any], list[str]]) -> None:
    """The reference: libvirt's own client does both patterns; we print its times beside ours."""
    reason = libvirt_python_available()
    if reason is not None:
        if os.environ.get("XDRGEN_REQUIRE_PEERS") == "1":
            pytest.fail(reason + " and XDRGEN_REQUIRE_PEERS=1")
        pytest.skip(reason)
    import libvirt  # type: ignore[import-untyped]

    c, vols, sums = volumes
    conn = libvirt.open(f"storage+unix:///session?socket={storage_daemon.socket_path}")
    try:
        pool = conn.storagePoolLookupByName(POOL)
        vol_a, vol_b = pool.storageVolLookupByName("a"), pool.storageVolLookupByName("b")

        def drain(st: Any) -> str:
            h = hashlib.sha256()
            while data := st.recv(MiB):
                h.update(data)
            st.finish()
            return h.hexdigest()

        st = conn.newStream()
        vol_a.download(st, 0, 0)
        time.sleep(0.2)
        started = time.perf_counter()
        assert vol_a.info()[1] == SIZE
        theirs_query = time.perf_counter() - started
        assert drain(st) == sums[0]
        started = time.perf_counter()
        st_a, st_b = conn.newStream(), conn.newStream()
        vol_a.download(st_a, 0, 0)
        vol_b.download(st_b, 0, 0)
        assert (drain(st_a), drain(st_b)) == (sums[0], sums[1])
        theirs_two = time.perf_counter() - started
    finally:
        conn.close()

    _, down = c.storage_vol_download(vols[0], 0, 0)
    time.sleep(0.2)
    started = time.perf_counter()
    c.storage_vol_get_info(vols[0], rpc_timeout=WAIT)
    ours_query = time.perf_counter() - started
    assert sha(down) == sums[0]
    started = time.perf_counter()
    _, first = c.storage_vol_download(vols[0], 0, 0)
    _, second = c.storage_vol_download(vols[1], 0, 0)
    assert (sha(first), sha(second)) == (sums[0], sums[1])
    ours_two = time.perf_counter() - started
    print(f"\nsize query with a download open: libvirt-python {theirs_query * 1e3:.1f} ms, "
          f"xdrgen {ours_query * 1e3:.1f} ms; two {SIZE // MiB} MiB downloads read in turn: "
          f"libvirt-python {theirs_two:.2f} s, xdrgen {ours_two:.2f} s (a shared machine: noisy)")


def test_asyncio_upload_file_and_download_file(storage_daemon: Daemon, rp: Any, tmp_path: Path,
                                               volumes: tuple[Any, list[Any], list[str]]) -> None:
    """aio.upload_file / aio.download_file keep holes on sparse streams, like their sync twins."""
    c, _, _ = volumes
    pool = c.storage_pool_lookup_by_name(POOL).pool
    size = 16 * MiB
    src = tmp_path / "sparse.img"
    with open(src, "wb") as f:  # data 1 MiB | hole 7 MiB | data 1 MiB | hole 7 MiB
        f.write(os.urandom(MiB))
        f.seek(8 * MiB)
        f.write(os.urandom(MiB))
        f.truncate(size)
    vol = c.storage_vol_create_xml(pool, f"<volume><name>aio-sparse</name><capacity>{size}</capacity>"
                                   "<allocation>0</allocation><target><format type='raw'/></target></volume>").vol
    dst = tmp_path / "copy.img"

    async def run() -> tuple[int, int, list[int]]:
        async with await rp.RemoteAsyncClient.connect_unix(storage_daemon.socket_path) as ac:
            await ac.connect_open(name=storage_daemon.uri)
            _, up = await ac.storage_vol_upload(vol, 0, size, flags=1)  # VIR_STORAGE_VOL_UPLOAD_SPARSE_STREAM
            seen: list[int] = []
            sent = await aio.upload_file(up, src, progress=seen.append)
            await up.finish()
            _, down = await ac.storage_vol_download(vol, 0, 0, flags=1)
            got = await aio.download_file(down, dst)
            await down.finish()
            return sent, got, seen

    sent, got, seen = asyncio.run(run())
    assert sent == got == size and seen == sorted(seen) and seen[-1] == size
    on_disk = os.stat(Path(storage_daemon.extra["pool_dir"]) / "aio-sparse")
    assert on_disk.st_blocks * 512 <= 4 * MiB  # the daemon got holes, not zeros
    st = os.stat(dst)
    assert st.st_size == size and st.st_blocks * 512 <= 4 * MiB  # and we wrote holes back
    assert dst.read_bytes() == src.read_bytes()
