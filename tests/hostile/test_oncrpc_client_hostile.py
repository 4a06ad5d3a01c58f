"""Hostile servers against the generated ONC RPC clients (blocking and asyncio, TCP and UDP).

The server here is the attack itself: a socket that answers calls with what
each case needs (oversized record markers, garbage, replies for nobody, half
replies, byte-by-byte replies, results that do not decode).  Each case checks
that the client raises its typed error or ignores what it must, never hangs
past its timeout, and keeps memory bounded; calls on other connections are
not affected.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import pytest

from peers.oncrpc_fixtures import demo  # noqa: F401  (fixture)
from xdrgen.runtime.oncrpc import BadReply, ConnectionClosed, ProtocolError, RecordTooLarge, RpcTimeout
from xdrgen.runtime.oncrpc import message as m
from xdrgen.runtime.oncrpc.record import RecordReader, frame, marker

class Raw(bytes):
    """Bytes sent as they are (no record marking on TCP, one datagram on UDP)."""


class ThenClose(bytes):
    """Bytes sent as they are, after which the server closes the connection."""


#: What a hostile server sends for one call: (xid, call) -> messages (framed on TCP, one
#: datagram each on UDP), Raw / ThenClose bytes, or None to close at once.
Answer = Callable[[int, bytes], list[bytes] | bytes | None]


class HostileServer:
    """Accepts TCP connections; answers each call with ``answer``; one thread per connection."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.udp.settimeout(0.1)
        self.udp_port = self.udp.getsockname()[1]
        self._stop = False
        self.threads = [threading.Thread(target=self._accept, daemon=True), threading.Thread(target=self._udp, daemon=True)]
        for t in self.threads:
            t.start()

    def _accept(self) -> None:
        self.listener.settimeout(0.1)
        while not self._stop:
            try:
                conn, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        reader = RecordReader()
        conn.settimeout(0.1)
        with conn:
            while not self._stop:
                try:
                    data = conn.recv(65536)
                except socket.timeout:
                    continue
                except OSError:
                    return
                if not data:
                    return
                for record in reader.feed(data):
                    xid = struct.unpack_from(">I", record)[0]
                    out = self.answer(xid, bytes(record))
                    if out is None:
                        return
                    try:
                        conn.sendall(out if isinstance(out, bytes) else b"".join(frame(x) for x in out))
                    except OSError:
                        return
                    if isinstance(out, ThenClose):
                        return

    def _udp(self) -> None:
        while not self._stop:
            try:
                data, addr = self.udp.recvfrom(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            out = self.answer(struct.unpack_from(">I", data)[0], data)
            for datagram in [out] if isinstance(out, bytes) else out or []:
                self.udp.sendto(datagram, addr)

    def close(self) -> None:
        self._stop = True
        for t in self.threads:
            t.join(5)
        self.listener.close()
        self.udp.close()


@pytest.fixture
def hostile() -> Iterator[Callable[[Answer], HostileServer]]:
    servers: list[HostileServer] = []

    def make(answer: Answer) -> HostileServer:
        servers.append(HostileServer(answer))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


def ok(xid: int, results: bytes = b"") -> bytes:
    return m.success_head(xid) + results


def add_result(xid: int, call: bytes) -> bytes:
    a, b = struct.unpack_from(">qq", call, 40)
    return ok(xid, struct.pack(">q", a + b))


def test_oversized_record_marker_fails_the_connection_not_the_process(demo: ModuleType, hostile: Any) -> None:
    server = hostile(lambda xid, call: Raw(marker(0x7FFFFFFF) + bytes(100)))
    tracemalloc.start()
    try:
        with demo.DemoRpcProgram2Client.connect_tcp("127.0.0.1", server.port, max_record=1 << 20) as c:
            with pytest.raises(RecordTooLarge):
                c.demo_add(1, 2)
            with pytest.raises(RecordTooLarge):
                c.demo_add(1, 2)  # the connection stays failed, with its error
        assert tracemalloc.get_traced_memory()[1] < 1 << 20  # nothing sized by the marker
    finally:
        tracemalloc.stop()

    async def main() -> None:
        c = await demo.DemoRpcProgram2AsyncClient.connect_tcp("127.0.0.1", server.port, max_record=1 << 20)
        async with c:
            results = await asyncio.gather(*(c.demo_add(i, 1) for i in range(5)), return_exceptions=True)
            assert all(isinstance(r, ProtocolError) for r in results)

    asyncio.run(main())


def test_garbage_replies_fail_their_call_only(demo: ModuleType, hostile: Any) -> None:
    def answer(xid: int, call: bytes) -> list[bytes]:
        a = struct.unpack_from(">q", call, 40)[0]
        if a == 1:
            return [struct.pack(">I", xid) + b"\0\0\0\7garbage!"]  # not a reply
        if a == 2:
            return [ok(xid, b"\0\0\0")]  # results cut short
        if a == 3:
            return [ok(xid, bytes(12))]  # results with bytes over
        return [add_result(xid, call)]

    def answer_or_void(xid: int, call: bytes) -> list[bytes]:
        if struct.unpack_from(">I", call, 20)[0] == 0:
            return [ok(xid, b"\0\0\0\0")]  # NULL is void: results where there must be none
        return answer(xid, call)

    server = hostile(answer_or_void)
    for connect in (demo.DemoRpcProgram2Client.connect_tcp, demo.DemoRpcProgram2Client.connect_udp):
        port = server.port if connect.__name__ == "connect_tcp" else server.udp_port
        with connect("127.0.0.1", port, timeout=5) as c:
            for a in (1, 2, 3):
                with pytest.raises(BadReply) as info:
                    c.demo_add(a, 1)
                assert str(info.value)
            with pytest.raises(BadReply, match="result is void"):
                c.demo_null()
            from xdrgen.runtime.errors import XdrDecodeError

            with pytest.raises(XdrDecodeError):  # the same error, caught as an XDR error
                c.demo_add(2, 1)
            assert c.demo_add(5, 6) == 11  # the connection is still good


def test_replies_for_nobody_and_duplicates_are_ignored(demo: ModuleType, hostile: Any) -> None:
    def answer(xid: int, call: bytes) -> list[bytes]:
        # Replies for xids nobody waits for (far from the client's), the reply, and a duplicate.
        strays = [ok(xid ^ 0x80000000, b"\0" * 8), ok(xid ^ 0x40000000, b"x"), b"\0\0"]
        return [*strays, add_result(xid, call), add_result(xid, call)]

    server = hostile(answer)
    with demo.DemoRpcProgram2Client.connect_tcp("127.0.0.1", server.port) as c:
        assert [c.demo_add(i, 100) for i in range(20)] == [i + 100 for i in range(20)]

    async def main() -> None:
        c = await demo.DemoRpcProgram2AsyncClient.connect_tcp("127.0.0.1", server.port)
        async with c:
            assert await asyncio.gather(*(c.demo_add(i, 1) for i in range(50))) == [i + 1 for i in range(50)]

    asyncio.run(main())


def test_half_reply_then_close(demo: ModuleType, hostile: Any) -> None:
    state = {"n": 0}

    def answer(xid: int, call: bytes) -> bytes | None:
        state["n"] += 1
        return ThenClose(frame(add_result(xid, call))[:10]) if state["n"] % 2 else None

    server = hostile(answer)
    for _ in range(2):
        with demo.DemoRpcProgram2Client.connect_tcp("127.0.0.1", server.port, timeout=10) as c:
            started = time.monotonic()
            with pytest.raises(ConnectionClosed):
                c.demo_add(1, 2)
            assert time.monotonic() - started < 5  # noticed at once, not after the timeout


def test_silent_server_times_out(demo: ModuleType, hostile: Any) -> None:
    server = hostile(lambda xid, call: [])
    with demo.DemoRpcProgram2Client.connect_tcp("127.0.0.1", server.port, timeout=0.2) as c:
        with pytest.raises(RpcTimeout):
            c.demo_null()

    async def main() -> None:
        c = await demo.DemoRpcProgram2AsyncClient.connect_udp("127.0.0.1", server.udp_port, timeout=0.3, retransmit=0.1)
        async with c:
            with pytest.raises(RpcTimeout):
                await c.demo_null()
            assert c.connection.retransmissions >= 2

    asyncio.run(main())


def test_byte_by_byte_replies(demo: ModuleType, hostile: Any) -> None:
    def answer(xid: int, call: bytes) -> bytes:
        return Raw(frame(add_result(xid, call), 3))

    server = hostile(answer)
    # The hostile server sends whole replies; the client reads them through a relay that
    # passes one byte at a time.
    relay = socket.socket()
    relay.bind(("127.0.0.1", 0))
    relay.listen(1)

    def pump() -> None:
        client, _ = relay.accept()
        upstream = socket.create_connection(("127.0.0.1", server.port))
        client.settimeout(0.05)
        upstream.settimeout(0.05)
        with client, upstream:
            for _ in range(2000):
                try:
                    data = client.recv(65536)
                    if not data:
                        return
                    upstream.sendall(data)
                except socket.timeout:
                    pass
                try:
                    data = upstream.recv(65536)
                except socket.timeout:
                    continue
                for byte in data:
                    client.sendall(bytes([byte]))
                    time.sleep(0.0005)

    t = threading.Thread(target=pump, daemon=True)
    t.start()
    with demo.DemoRpcProgram2Client.connect_tcp("127.0.0.1", relay.getsockname()[1]) as c:
        assert [c.demo_add(i, 2) for i in range(5)] == [i + 2 for i in range(5)]
    t.join(10)
    relay.close()


def test_udp_garbage_and_oversized_datagrams_are_refused(demo: ModuleType, hostile: Any) -> None:
    def answer(xid: int, call: bytes) -> list[bytes]:
        a = struct.unpack_from(">q", call, 40)[0]
        if a == 1:
            return [ok(xid, bytes(9000))]  # larger than the client takes
        return [b"", b"\0", struct.pack(">I", xid ^ 0x80000000), add_result(xid, call)]

    server = hostile(answer)
    with demo.DemoRpcProgram2Client.connect_udp("127.0.0.1", server.udp_port, timeout=2) as c:
        from xdrgen.runtime.oncrpc import MessageTooLarge

        with pytest.raises(MessageTooLarge):
            c.demo_add(1, 1)
        assert c.demo_add(2, 2) == 4


def test_asyncio_timeouts_of_different_lengths(demo: ModuleType, hostile: Any) -> None:
    """A short timeout given after a long one still expires first (and a call answered in
    time is not expired by the timers of the others)."""
    server = hostile(lambda xid, call: [] if struct.unpack_from(">q", call, 40)[0] else [add_result(xid, call)])

    async def main() -> None:
        cls = demo.DemoRpcProgram2AsyncClient
        for c in (await cls.connect_tcp("127.0.0.1", server.port, timeout=2.0),
                  await cls.connect_udp("127.0.0.1", server.udp_port, timeout=2.0, retransmit=0.05)):
            async with c:
                loop = asyncio.get_running_loop()
                started = loop.time()

                async def timed(a: int, timeout: float | None) -> float:
                    with pytest.raises(RpcTimeout):
                        await c.demo_add(a, 1, rpc_timeout=timeout)
                    return loop.time() - started

                long_, default, short = await asyncio.gather(timed(1, 1.0), timed(1, None), timed(1, 0.2))
                assert 0.2 <= short < 0.9 <= long_ < 1.8 < default < 4
                assert await c.demo_add(0, 5) == 5
                assert c.connection.in_flight == 0

    asyncio.run(main())
