"""The GENERATED client's volume streams against a real libvirtd storage driver (as nobody)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import REPO_ROOT, require_shared
from peers.daemons import Daemon
from peers.fixtures import storage_daemon  # noqa: F401  (fixture)
from xdrgen.runtime.virnet.errors import StreamError
from xdrgen.runtime.virnet.files import download_file, upload_file
from xdrgen.runtime.virnet.sync import Hole

sys.path.insert(0, str(REPO_ROOT / "examples"))
from libvirt_codegen import load_remote_protocol  # noqa: E402

MiB = 1 << 20
WAIT = 60.0
SPARSE_UPLOAD = 1  # VIR_STORAGE_VOL_UPLOAD_SPARSE_STREAM
SPARSE_DOWNLOAD = 1  # VIR_STORAGE_VOL_DOWNLOAD_SPARSE_STREAM
VIR_STORAGE_VOL_FILE = 0


@pytest.fixture(scope="module")
def rp() -> Any:
    require_shared("libvirt/remote_protocol.x")
    return load_remote_protocol()


@pytest.fixture(scope="module")
def session(storage_daemon: Daemon, rp: Any) -> Iterator[tuple[Any, Any]]:
    c = rp.RemoteClient.connect_unix(storage_daemon.socket_path)
    c.connect_open(name=storage_daemon.uri)
    xml = f"<pool type='dir'><name>xdrgen</name><target><path>{storage_daemon.extra['pool_dir']}</path></target></pool>"
    pool = c.storage_pool_create_xml(xml).pool
    yield c, pool
    c.close()


def create_volume(session: tuple[Any, Any], name: str, capacity: int) -> Any:
    client, pool = session
    xml = (f"<volume><name>{name}</name><capacity>{capacity}</capacity><allocation>0</allocation>"
           "<target><format type='raw'/></target></volume>")
    return client.storage_vol_create_xml(pool, xml).vol


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(MiB):
            h.update(chunk)
    return h.hexdigest()


def test_upload_and_download_64_mib(session: tuple[Any, Any], tmp_path: Path) -> None:
    client, _ = session
    size = 64 * MiB
    src = tmp_path / "src.img"
    with open(src, "wb") as f:
        for i in range(64):
            f.write(hashlib.sha256(str(i).encode()).digest() * (MiB // 32))
    vol = create_volume(session, "big", size)
    ret, up = client.storage_vol_upload(vol, offset=0, length=size)
    assert ret is None
    seen: list[int] = []
    assert upload_file(up, src, progress=seen.append) == size
    up.finish(WAIT)
    assert seen[-1] == size and seen == sorted(seen)
    assert client.storage_vol_get_info(vol).allocation >= size
    _, down = client.storage_vol_download(vol, offset=0, length=0)
    dst = tmp_path / "dst.img"
    assert download_file(down, dst) == size
    down.finish(WAIT)
    assert sha256_file(dst) == sha256_file(src)


def test_sparse_upload_and_download_keep_holes(session: tuple[Any, Any], tmp_path: Path, storage_daemon: Daemon) -> None:
    client, _ = session
    size = 16 * MiB
    src = tmp_path / "sparse.img"
    with open(src, "wb") as f:  # data 1 MiB | hole 7 MiB | data 1 MiB | hole 7 MiB
        f.write(b"A" * MiB)
        f.seek(8 * MiB)
        f.write(b"B" * MiB)
        f.truncate(size)
    vol = create_volume(session, "sparse", size)
    _, up = client.storage_vol_upload(vol, 0, size, flags=SPARSE_UPLOAD)
    assert up.sparse  # derived from the flag named by @sparseflag
    upload_file(up, src)
    up.finish(WAIT)
    on_disk = os.stat(Path(storage_daemon.extra["pool_dir"]) / "sparse")
    assert on_disk.st_size == size and on_disk.st_blocks * 512 <= 4 * MiB

    _, down = client.storage_vol_download(vol, 0, 0, flags=SPARSE_DOWNLOAD)
    assert down.sparse
    runs: list[tuple[str, int]] = []
    content = bytearray()
    for item in down:
        kind, n = ("hole", item.length) if isinstance(item, Hole) else ("data", len(item))
        if isinstance(item, memoryview):
            content += item
        if runs and runs[-1][0] == kind:
            runs[-1] = (kind, runs[-1][1] + n)
        else:
            runs.append((kind, n))
    down.finish(WAIT)
    assert runs == [("data", MiB), ("hole", 7 * MiB), ("data", MiB), ("hole", 7 * MiB)]
    assert content == b"A" * MiB + b"B" * MiB

    _, down = client.storage_vol_download(vol, 0, 0, flags=SPARSE_DOWNLOAD)
    dst = tmp_path / "copy.img"
    assert download_file(down, dst) == size
    down.finish(WAIT)
    st = os.stat(dst)
    assert st.st_size == size and st.st_blocks * 512 <= 4 * MiB
    assert sha256_file(dst) == sha256_file(src)


def test_abort_mid_download_leaves_connection_usable(session: tuple[Any, Any]) -> None:
    client, _ = session
    vol = create_volume(session, "abortme", 32 * MiB)
    _, down = client.storage_vol_download(vol, 0, 0)
    assert not down.sparse
    first = down.recv(WAIT)
    assert isinstance(first, memoryview) and len(first) > 0
    down.abort(WAIT)
    info = client.storage_vol_get_info(vol)
    assert (info.type, info.capacity) == (VIR_STORAGE_VOL_FILE, 32 * MiB)
    assert client.connect_get_lib_version().lib_ver >= 9000000


def test_uploading_more_than_announced_is_a_stream_error(session: tuple[Any, Any]) -> None:
    client, _ = session
    vol = create_volume(session, "short", MiB)
    _, up = client.storage_vol_upload(vol, 0, 1000)
    with pytest.raises(StreamError) as info:
        up.send(b"x" * 5000)
        up.finish(WAIT)
    assert info.value.code != 0 and info.value.message
    assert client.storage_vol_get_info(vol).capacity == MiB  # the connection still works


def test_200_concurrent_async_calls_while_a_stream_transfers(session: tuple[Any, Any], storage_daemon: Daemon,
                                                               rp: Any) -> None:
    sync_client, _ = session
    size = 32 * MiB
    big = create_volume(session, "async-big", size)
    pattern = hashlib.sha256(b"async").digest() * (MiB // 32)
    _, up = sync_client.storage_vol_upload(big, 0, size)
    for _ in range(size // MiB):
        up.send(pattern)
    up.finish(WAIT)
    # Volumes with distinct capacities: each reply must belong to its call.
    small = [create_volume(session, f"async-{i}", (i + 1) * MiB) for i in range(8)]
    expected_sha = hashlib.sha256(pattern * (size // MiB)).hexdigest()

    async def run() -> tuple[str, list[tuple[int, int]]]:
        client = await rp.RemoteAsyncClient.connect_unix(storage_daemon.socket_path)
        try:
            await client.connect_open(name=storage_daemon.uri)

            flowing = asyncio.Event()
            open_during: list[bool] = []

            async def download() -> str:
                _, stream = await client.storage_vol_download(big, 0, 0)
                h = hashlib.sha256()
                async for chunk in stream:
                    h.update(chunk)
                    flowing.set()
                await stream.finish()
                return h.hexdigest()

            async def info(i: int) -> tuple[int, int]:
                await flowing.wait()  # the calls start once the stream is moving
                vol = small[i % len(small)]
                got = await client.storage_vol_get_info(vol)
                open_during.append(not transfer.done())
                return i, got.capacity

            transfer = asyncio.ensure_future(download())
            replies = await asyncio.gather(*(info(i) for i in range(200)))
            assert any(open_during)  # replies arrived while the stream was still open
            return await transfer, list(replies)
        finally:
            await client.close()

    digest, replies = asyncio.run(run())
    assert digest == expected_sha
    assert len(replies) == 200
    assert all(capacity == (i % 8 + 1) * MiB for i, capacity in replies)
