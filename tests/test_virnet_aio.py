"""The asyncio transport against real libvirtd instances."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from peers.daemons import Daemon
from peers.fixtures import libvirtd, storage_daemon  # noqa: F401  (fixtures)
from peers.xdrmini import Reader, Writer, procedure_numbers
from xdrgen.runtime.virnet import events as ev
from xdrgen.runtime.virnet.aio import AsyncConnection
from xdrgen.runtime.virnet.constants import FEATURE_PROGRAM_KEEPALIVE
from xdrgen.runtime.virnet.core import StreamDirection
from xdrgen.runtime.virnet.errors import LibvirtError, NotSupportedError

SCREENSHOT = Path("/usr/share/libvirt/test-screenshot.png")
MiB = 1 << 20
WAIT = 60.0


@pytest.fixture(scope="module")
def procs() -> dict[str, int]:
    from conftest import require_shared

    return procedure_numbers(require_shared("libvirt/remote_protocol.x"))


async def open_conn(daemon: Daemon, procs: dict[str, int]) -> AsyncConnection:
    conn = await AsyncConnection.connect_unix(daemon.socket_path)
    await conn.call(procs["REMOTE_PROC_CONNECT_OPEN"], Writer().opt_string(daemon.uri).uint(0).bytes())
    return conn


def test_calls_errors_and_screenshot(libvirtd: Daemon, procs: dict[str, int]) -> None:
    async def main() -> None:
        conn = await open_conn(libvirtd, procs)
        assert Reader(await conn.call(procs["REMOTE_PROC_CONNECT_GET_VERSION"])).uhyper() == 2
        with pytest.raises(LibvirtError, match="Domain not found"):
            await conn.call(procs["REMOTE_PROC_DOMAIN_LOOKUP_BY_NAME"], Writer().string("nope").bytes())
        with pytest.raises(NotSupportedError):
            await conn.call(9999)
        dom = (await conn.call(procs["REMOTE_PROC_DOMAIN_LOOKUP_BY_NAME"], Writer().string("test").bytes())).tobytes()
        ret, stream = await conn.call_stream(procs["REMOTE_PROC_DOMAIN_SCREENSHOT"], dom + Writer().uint(0).uint(0).bytes(),
                                             direction=StreamDirection.RECEIVE)
        assert Reader(ret).opt_string() == "image/png"
        data = bytearray()
        async for chunk in stream:
            assert isinstance(chunk, memoryview)
            data += chunk
        await stream.finish()
        assert bytes(data) == SCREENSHOT.read_bytes()
        await conn.close()

    asyncio.run(asyncio.wait_for(main(), WAIT))


def test_events_iterator_and_keepalive(libvirtd: Daemon, procs: dict[str, int]) -> None:
    async def main() -> None:
        conn = await open_conn(libvirtd, procs)
        assert await conn.supports_feature(FEATURE_PROGRAM_KEEPALIVE)
        reg = await conn.call(procs["REMOTE_PROC_CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY"], Writer().int(0).uint(0).bytes())
        callback_id = Reader(reg).int()
        dom = (await conn.call(procs["REMOTE_PROC_DOMAIN_LOOKUP_BY_NAME"], Writer().string("test").bytes())).tobytes()
        received: list[tuple[int, int]] = []

        async def collect() -> None:
            async for e in conn.events():
                r = Reader(e.payload)
                cb = r.int()
                r.string(), r.opaque_fixed(16), r.int()
                received.append((cb, r.int()))
                if len(received) == 2:
                    return

        collector = asyncio.create_task(collect())
        await asyncio.sleep(0)
        await conn.call(procs["REMOTE_PROC_DOMAIN_SUSPEND"], dom)
        await conn.call(procs["REMOTE_PROC_DOMAIN_RESUME"], dom)
        await asyncio.wait_for(collector, WAIT)
        assert received == [(callback_id, 3), (callback_id, 4)]
        # the daemon (keepalive_interval = 1) pings while we sit idle; we answer
        while conn.pings_answered < 2:
            await asyncio.sleep(0.1)
        assert conn.error is None
        await conn.close()

    asyncio.run(asyncio.wait_for(main(), WAIT))


def test_200_concurrent_calls_while_a_stream_transfers(storage_daemon: Daemon, procs: dict[str, int]) -> None:
    async def main() -> None:
        conn = await open_conn(storage_daemon, procs)
        xml = f"<pool type='dir'><name>aio</name><target><path>{storage_daemon.extra['pool_dir']}</path></target></pool>"
        pool = (await conn.call(procs["REMOTE_PROC_STORAGE_POOL_CREATE_XML"], Writer().string(xml).uint(0).bytes())).tobytes()
        size = 32 * MiB
        vol_xml = f"<volume><name>aio-big</name><capacity>{size}</capacity><target><format type='raw'/></target></volume>"
        vol = (await conn.call(procs["REMOTE_PROC_STORAGE_VOL_CREATE_XML"], pool + Writer().string(vol_xml).uint(0).bytes())).tobytes()
        payload = bytes(range(256)) * (size // 256)
        args = Writer().uhyper(0).uhyper(size).uint(0).bytes()
        _, up = await conn.call_stream(procs["REMOTE_PROC_STORAGE_VOL_UPLOAD"], vol + args, direction=StreamDirection.SEND)
        await up.send(payload)
        await up.finish()

        _, down = await conn.call_stream(procs["REMOTE_PROC_STORAGE_VOL_DOWNLOAD"], vol + Writer().uhyper(0).uhyper(0).uint(0).bytes(),
                                         direction=StreamDirection.RECEIVE)

        async def lookup_missing(i: int) -> str:
            try:
                await conn.call(procs["REMOTE_PROC_STORAGE_VOL_LOOKUP_BY_NAME"], pool + Writer().string(f"missing-{i}").bytes())
            except LibvirtError as exc:
                return str(exc)
            raise AssertionError("lookup of a missing volume succeeded")

        async def read_all() -> str:
            h = hashlib.sha256()
            async for chunk in down:
                assert isinstance(chunk, memoryview)
                h.update(chunk)
            await down.finish()
            return h.hexdigest()

        results = await asyncio.gather(read_all(), *(lookup_missing(i) for i in range(200)))
        assert results[0] == hashlib.sha256(payload).hexdigest()
        for i, message in enumerate(results[1:]):
            assert f"'missing-{i}'" in message, message
        await conn.close()

    asyncio.run(asyncio.wait_for(main(), WAIT))


def test_events_iterator_is_bounded_and_drops_the_oldest(libvirtd: Daemon, procs: dict[str, int]) -> None:
    # An iterator 2 events behind keeps the newest 2; the rest are counted as dropped.
    def detail(e: ev.EventMessage) -> int:
        r = Reader(e.payload)
        r.int()
        r.string()
        r.opaque_fixed(16)
        r.int()
        return r.int()

    async def main() -> None:
        conn = await AsyncConnection.connect_unix(libvirtd.socket_path, events_queue=2)
        await conn.call(procs["REMOTE_PROC_CONNECT_OPEN"], Writer().opt_string(libvirtd.uri).uint(0).bytes())
        await conn.call(procs["REMOTE_PROC_CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY"], Writer().int(0).uint(0).bytes())
        dom = (await conn.call(procs["REMOTE_PROC_DOMAIN_LOOKUP_BY_NAME"], Writer().string("test").bytes())).tobytes()
        events = conn.events()
        first = asyncio.ensure_future(events.__anext__())
        await asyncio.sleep(0)  # the iterator is now registered and waiting
        for _ in range(3):
            await conn.call(procs["REMOTE_PROC_DOMAIN_SUSPEND"], dom)
            await conn.call(procs["REMOTE_PROC_DOMAIN_RESUME"], dom)
        while conn.events_dropped < 3:  # 6 events: 1 taken by `first`, 2 kept
            await asyncio.sleep(0.01)
        assert detail(await first) == 3  # SUSPENDED
        assert [detail(await events.__anext__()) for _ in range(2)] == [3, 4]  # the newest two
        assert conn.events_dropped == 3
        await conn.close()

    asyncio.run(asyncio.wait_for(main(), WAIT))
