"""Soak: one asyncio connection to the real storage daemon under mixed load (issue 11).

1,000 concurrent calls from asyncio tasks and 4 streams interleaved with them
(a download and an upload run to the end, a download the client aborts, an
upload the daemon fails because it carries more than announced), every byte
checksummed, then the same connection must still carry calls and a stream.
Prints calls, bytes and time (figures only: nothing here is timed).
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
from xdrgen.runtime.virnet.errors import StreamError, StreamStateError

sys.path.insert(0, str(REPO_ROOT / "examples"))
from libvirt_codegen import load_remote_protocol  # noqa: E402

MiB = 1 << 20
SIZE = 24 * MiB
CALLS = 1000
SMALL = 8
ABORT_AFTER = 4 * MiB
WAIT = 120.0


@pytest.fixture(scope="module")
def rp() -> Any:
    require_shared("libvirt/remote_protocol.x")
    return load_remote_protocol()


@pytest.fixture(scope="module")
def prepared(storage_daemon: Daemon, rp: Any) -> Iterator[dict[str, Any]]:
    """Volumes made with a sync client: two download sources (random bytes), upload targets, small ones."""
    c = rp.RemoteClient.connect_unix(storage_daemon.socket_path)
    c.connect_open(name=storage_daemon.uri)
    pool_dir = storage_daemon.extra["pool_dir"]
    pool = c.storage_pool_create_xml(
        f"<pool type='dir'><name>soak</name><target><path>{pool_dir}</path></target></pool>").pool

    def volume(name: str, capacity: int) -> Any:
        return c.storage_vol_create_xml(pool, f"<volume><name>{name}</name><capacity>{capacity}</capacity>"
                                        "<allocation>0</allocation><target><format type='raw'/></target></volume>").vol

    sources = {}
    for name in ("down-whole", "down-aborted"):
        data = os.urandom(SIZE)
        vol = volume(name, SIZE)
        _, up = c.storage_vol_upload(vol, 0, SIZE)
        up.send(data)
        up.finish(WAIT)
        sources[name] = (vol, data)
    yield {
        "sources": sources,
        "upload": volume("up-whole", SIZE),
        "failing": volume("up-failing", MiB),
        "small": [volume(f"small-{i}", (i + 1) * MiB) for i in range(SMALL)],
        "pool_dir": Path(pool_dir),
    }
    c.close()


def test_soak_1000_calls_and_4_streams_on_one_connection(storage_daemon: Daemon, rp: Any,
                                                          prepared: dict[str, Any]) -> None:
    whole_vol, whole_data = prepared["sources"]["down-whole"]
    aborted_vol, aborted_data = prepared["sources"]["down-aborted"]
    upload_data = os.urandom(SIZE)
    small = prepared["small"]
    moved = {"down": 0, "up": 0}

    async def run() -> dict[str, Any]:
        async with await rp.RemoteAsyncClient.connect_unix(storage_daemon.socket_path) as c:
            await c.connect_open(name=storage_daemon.uri)
            flowing = asyncio.Event()
            streams_open = 4
            calls_done = 0
            during: list[bool] = []
            half_done = asyncio.Event()

            async def download_whole() -> str:
                nonlocal streams_open
                _, st = await c.storage_vol_download(whole_vol, 0, 0)
                h = hashlib.sha256()
                async for chunk in st:
                    h.update(chunk)
                    moved["down"] += len(chunk)
                    flowing.set()
                await st.finish()
                streams_open -= 1
                return h.hexdigest()

            async def upload_whole() -> None:
                nonlocal streams_open
                _, st = await c.storage_vol_upload(prepared["upload"], 0, SIZE)
                view = memoryview(upload_data)
                for start in range(0, SIZE, MiB):
                    await st.send(view[start : start + MiB])
                    moved["up"] += MiB
                await st.finish()
                streams_open -= 1

            async def download_then_abort() -> bytes:
                nonlocal streams_open
                _, st = await c.storage_vol_download(aborted_vol, 0, 0)
                got = bytearray()
                async for chunk in st:
                    got += chunk
                    if len(got) >= ABORT_AFTER:
                        break
                await st.abort()  # the client gives up in the middle
                with pytest.raises(StreamStateError):
                    await st.recv()
                moved["down"] += len(got)
                streams_open -= 1
                return bytes(got)

            async def upload_failing() -> Any:
                nonlocal streams_open
                await half_done.wait()  # the daemon fails this one in the middle of the calls
                _, st = await c.storage_vol_upload(prepared["failing"], 0, 1000)
                with pytest.raises(StreamError) as info:
                    await st.send(b"x" * 5000)  # more than the 1000 bytes announced
                    moved["up"] += 5000
                    await st.finish()
                streams_open -= 1
                return info.value

            async def call(i: int) -> None:
                nonlocal calls_done
                await flowing.wait()
                kind = i % 3
                if kind == 0:
                    info = await c.storage_vol_get_info(small[i % SMALL])
                    assert info.capacity == (i % SMALL + 1) * MiB
                elif kind == 1:
                    assert (await c.connect_get_lib_version()).lib_ver >= 9_000_000
                else:
                    path = (await c.storage_vol_get_path(small[i % SMALL])).name
                    assert path.endswith(f"/small-{i % SMALL}")
                during.append(streams_open > 0)
                calls_done += 1
                if calls_done == CALLS // 2:
                    half_done.set()

            started = time.perf_counter()
            results = await asyncio.gather(
                download_whole(), upload_whole(), download_then_abort(), upload_failing(),
                *(call(i) for i in range(CALLS)),
            )
            elapsed = time.perf_counter() - started
            # Afterwards the same connection still works: calls and a whole stream.
            assert (await c.storage_vol_get_info(small[0])).capacity == MiB
            _, again = await c.storage_vol_download(aborted_vol, 0, 0)
            h = hashlib.sha256()
            async for chunk in again:
                h.update(chunk)
            await again.finish()
            return {"whole": results[0], "prefix": results[2], "error": results[3], "during": during,
                    "again": h.hexdigest(), "elapsed": elapsed, "calls": calls_done}

    out = asyncio.run(asyncio.wait_for(run(), WAIT))
    assert out["calls"] == CALLS
    assert out["whole"] == hashlib.sha256(whole_data).hexdigest()
    prefix = out["prefix"]
    assert len(prefix) >= ABORT_AFTER and prefix == aborted_data[: len(prefix)]
    assert out["again"] == hashlib.sha256(aborted_data).hexdigest()
    on_disk = (prepared["pool_dir"] / "up-whole").read_bytes()
    assert hashlib.sha256(on_disk).hexdigest() == hashlib.sha256(upload_data).hexdigest()
    assert out["error"].code != 0 and out["error"].message
    assert sum(out["during"]) > 0  # calls were answered while streams were open
    total = moved["down"] + moved["up"]
    print(f"\nsoak: {out['calls']} calls, {total / MiB:.1f} MiB in 4 streams "
          f"({moved['down'] / MiB:.1f} down, {moved['up'] / MiB:.1f} up), {out['elapsed']:.2f} s on one connection "
          "(a shared machine: re-measure on a quiet one)")
