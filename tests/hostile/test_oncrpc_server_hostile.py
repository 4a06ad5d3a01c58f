"""Hostile clients against the generated ONC RPC server (demo.x, both versions, TCP and UDP).

Each case checks what happens to the hostile connection (a reply, or the
server closes it), that a well-behaved client keeps being served meanwhile,
that memory stays bounded (tracemalloc: the server runs in this process),
and that nothing is logged as an unhandled exception (tests/conftest.py fails
the test on asyncio's reports; the server's own error log is checked here).

What our server does where libtirpc's differs is documented in docs/oncrpc.md;
test_oncrpc_python_server.py compares both on crafted messages.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import random
import socket
import struct
import time
import tracemalloc
import weakref
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

from peers.oncrpc_fixtures import demo  # noqa: F401  (fixture)
from peers.pyserver import ServerThread, c_like_handlers
from peers.rawrpc import PROGRAM, RawStream, add_call, call_bytes, reply_outcome
from xdrgen.runtime.oncrpc import message as m
from xdrgen.runtime.oncrpc.record import frame, marker
from xdrgen.runtime.oncrpc.server import RpcServer

RECORD_MAX = 1 << 20
SEED = 20240611


class ErrorLog(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class Target:
    """The server under attack, and a well-behaved client of it."""

    def __init__(self, thread: ServerThread, server: RpcServer, slow: Any) -> None:
        self.thread = thread
        self.server = server
        self.slow = slow
        # Served on TCP and UDP (serve's default), so both ports are known.
        assert server.tcp_port is not None and server.udp_port is not None
        self.port = server.tcp_port
        self.udp_port = server.udp_port
        self._xid = 1000

    def healthy(self) -> None:
        """A fresh connection gets correct answers right away."""
        conn = RawStream(self.port)
        try:
            self._xid += 1
            conn.send_call(add_call(self._xid, 40, 2))
            (reply,) = conn.records(1, timeout=5)
            assert reply_outcome(reply) == (self._xid, "SUCCESS")
            assert struct.unpack(">q", reply[24:]) == (42,)
        finally:
            conn.close()

    def connections_drop_to(self, count: int, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while self.server.connections > count and time.monotonic() < deadline:
            time.sleep(0.01)
        assert self.server.connections <= count, f"{self.server.connections} connections still open"


@pytest.fixture(scope="module")
def target(demo: ModuleType) -> Iterator[Target]:
    v1, v2 = c_like_handlers(demo)

    class SlowV2(type(v2)):  # type: ignore[misc]
        started = 0
        cancelled = 0
        running = 0

        async def demo_lookup(self, name: str) -> Any:
            if name.startswith("slow"):
                SlowV2.started += 1
                SlowV2.running += 1
                try:
                    await asyncio.sleep(float(name[4:] or "30"))
                except asyncio.CancelledError:
                    SlowV2.cancelled += 1
                    raise
                finally:
                    SlowV2.running -= 1
            return await super().demo_lookup(name)

    slow = SlowV2()
    log = ErrorLog()
    logging.getLogger("xdrgen.oncrpc").addHandler(log)
    thread = ServerThread(
        lambda: demo.DemoRpcProgram2Server(slow).serve(
            also=[demo.DemoRpcProgram1Server(v1)], max_record=RECORD_MAX, max_in_flight=64
        )
    )
    server = thread.start()
    try:
        yield Target(thread, server, SlowV2)
    finally:
        thread.stop()
        logging.getLogger("xdrgen.oncrpc").removeHandler(log)
    assert not log.records, [r.getMessage() for r in log.records]


def test_oversized_fragment_lengths_cost_only_their_connection(target: Target) -> None:
    good = RawStream(target.port)
    try:
        refused = target.server.refused_connections
        for data in (
            marker(RECORD_MAX + 1),
            marker(0x7FFFFFFF),
            struct.pack(">I", 0xFFFFFFFF),
            marker(RECORD_MAX // 2, last=False) + bytes(RECORD_MAX // 2) + marker(RECORD_MAX // 2 + 1),
        ):
            bad = RawStream(target.port)
            bad.send(data)
            assert bad.closed_by_peer(), data[:8].hex()
            bad.close()
            good.send_call(add_call(1, 1, 1))
            assert reply_outcome(good.records(1)[0]) == (1, "SUCCESS")
        assert target.server.refused_connections == refused + 4
    finally:
        good.close()
    target.healthy()


@pytest.mark.parametrize(
    "record",
    [
        b"",
        b"\0\0\0\1",
        m.success_head(5) + b"\0" * 8,  # a REPLY sent to the server
        struct.pack(">IIIIIIII", 5, 0, 2, PROGRAM, 2, 1, 1, 401) + bytes(404),  # credential past 400 bytes
        struct.pack(">IIIIII", 5, 7, 2, PROGRAM, 2, 1) + bytes(16),  # msg_type 7
    ],
    ids=["empty", "one word", "a reply", "credential over 400", "bad msg_type"],
)
def test_garbage_records_close_only_that_connection(target: Target, record: bytes) -> None:
    bad = RawStream(target.port)
    bad.send(frame(record))
    assert bad.closed_by_peer()
    bad.close()
    target.healthy()


def random_bodies(rng: random.Random, count: int) -> Iterator[tuple[int, bytes]]:
    """(xid, call) pairs: valid headers, procedures of both versions and beyond, random arguments."""
    for xid in range(1, count + 1):
        vers = rng.choice([1, 2, 2, 3])
        proc = rng.choice([0, 1, 2, 3, 4, 5, 6, rng.randrange(1 << 32)])
        kind = rng.random()
        if kind < 0.3:
            args = rng.randbytes(rng.randrange(0, 64))
        elif kind < 0.6:
            # A plausible length word, then random bytes (strings, opaques, arrays).
            args = struct.pack(">I", rng.choice([0, 1, 6, 64, 65, 0x7FFFFFFF, 0xFFFFFFFF])) + rng.randbytes(rng.randrange(0, 80))
        else:
            args = rng.randbytes(4 * rng.randrange(0, 12))
        yield xid, call_bytes(xid, proc, args, vers=vers)


def test_seeded_random_bodies_are_all_answered(target: Target) -> None:
    rng = random.Random(SEED)
    calls = list(random_bodies(rng, 1200))
    conn = RawStream(target.port)
    try:
        for i in range(0, len(calls), 100):  # pipelined, 100 at a time
            batch = calls[i : i + 100]
            conn.send(b"".join(frame(c, rng.choice([0, 0, 7])) for _, c in batch))
            outcomes = dict(reply_outcome(r) for r in conn.records(len(batch)))
            assert set(outcomes) == {xid for xid, _ in batch}  # every call answered, once
            assert set(outcomes.values()) <= {"SUCCESS", "GarbageArgs", "ProcUnavail", "ProgMismatch"}
    finally:
        conn.close()
    target.healthy()


def test_seeded_random_bodies_over_udp(target: Target) -> None:
    rng = random.Random(SEED + 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("127.0.0.1", target.udp_port))
        s.settimeout(5)
        for xid, call in random_bodies(rng, 1000):
            s.send(call)
            reply = s.recv(65536)
            assert reply_outcome(reply)[0] == xid
        dropped = target.server.udp_dropped
        for data in (b"", b"\0\0\0\1", rng.randbytes(100), m.success_head(9), bytes(9000)):
            s.send(data)  # not a call, or larger than a datagram may be: dropped
        s.send(add_call(77, 1, 2))
        assert reply_outcome(s.recv(65536)) == (77, "SUCCESS")
        assert target.server.udp_dropped == dropped + 5


def test_half_records_and_slow_senders(target: Target) -> None:
    half = RawStream(target.port)
    half.send(frame(add_call(3, 1, 2))[:30])  # and then nothing
    slow = RawStream(target.port)
    data = frame(add_call(4, 20, 22), fragment_size=9)
    try:
        for i, byte in enumerate(data):
            slow.send(bytes([byte]))
            if i % 10 == 0:
                target.healthy()  # others are served while the slow sender trickles
            time.sleep(0.002)
        (reply,) = slow.records(1)
        assert reply_outcome(reply) == (4, "SUCCESS") and struct.unpack(">q", reply[24:]) == (42,)
        assert not half.closed_by_peer(timeout=0.2)  # a half record is only waited for
    finally:
        half.close()
        slow.close()
    target.connections_drop_to(0)


def test_disconnects_at_every_point_of_a_call(target: Target) -> None:
    slow_call = frame(call_bytes(2, 2, struct.pack(">I", 6) + b"slow10\0\0"), 5)
    stream = frame(add_call(1, 1, 2)) + slow_call + frame(add_call(3, 5, 6))
    slow_end = len(frame(add_call(1, 1, 2))) + len(slow_call)
    started, cancelled = target.slow.started, target.slow.cancelled
    for cut in range(len(stream) + 1):
        conn = RawStream(target.port)
        conn.send(stream[:cut])
        # Half the cuts end with FIN, half with RST (which may discard what the server
        # had not read yet).
        conn.close(reset=cut % 2 == 1)
    target.connections_drop_to(0)
    target.healthy()
    deadline = time.monotonic() + 5
    while target.slow.running and time.monotonic() < deadline:
        time.sleep(0.02)
    # Every slow call that started was cancelled when its client went away: none is left.
    assert target.slow.running == 0
    graceful_with_slow_call = len([cut for cut in range(slow_end, len(stream) + 1) if cut % 2 == 0])
    assert target.slow.started - started >= graceful_with_slow_call
    assert target.slow.cancelled - cancelled == target.slow.started - started


def test_two_hundred_idle_connections(target: Target) -> None:
    idle = [RawStream(target.port) for _ in range(200)]
    try:
        deadline = time.monotonic() + 10
        while target.server.connections < 200 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert target.server.connections >= 200
        target.healthy()
        for i, conn in enumerate(idle[::20]):  # the idle ones still work
            conn.send_call(add_call(i, i, 1))
            assert reply_outcome(conn.records(1)[0]) == (i, "SUCCESS")
    finally:
        for conn in idle:
            conn.close()
    target.connections_drop_to(0)


def test_memory_follows_bytes_received(target: Target) -> None:
    target.healthy()
    gc.collect()
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        conns = []
        for i in range(100):
            conn = RawStream(target.port)
            if i % 2:
                conn.send(marker(RECORD_MAX) + bytes(1000))  # declares 1 MiB, sends 1000 bytes
            else:
                conn.send(frame(add_call(i, 1, 1))[:20])
            conns.append(conn)
        target.healthy()
        deadline = time.monotonic() + 5
        while target.server.connections < 100 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.1)
        held = tracemalloc.get_traced_memory()[0] - baseline
        for conn in conns:
            conn.close()
        target.connections_drop_to(0)
        gc.collect()
        after = tracemalloc.get_traced_memory()[0] - baseline
    finally:
        tracemalloc.stop()
    # 50 MiB declared; what is held is the 50 kB received plus per-connection overhead.
    assert held < 4 << 20, held
    assert after < 512 << 10, after


def test_closed_connections_are_freed_without_the_cyclic_gc(target: Target) -> None:
    gc.collect()
    gc.disable()
    try:
        conns = [RawStream(target.port) for _ in range(20)]
        deadline = time.monotonic() + 5
        while target.server.connections < 20 and time.monotonic() < deadline:
            time.sleep(0.01)
        refs = [weakref.ref(c) for c in list(target.server._connections)]
        assert len(refs) >= 20
        for i, conn in enumerate(conns):
            if i % 2:
                conn.send_call(call_bytes(1, 2, struct.pack(">I", 6) + b"slow30\0\0"))  # a call in progress
            conn.close()
        target.connections_drop_to(0)
        target.thread.run(asyncio.sleep(0.05))
        assert [r for r in refs if r() is not None] == []
    finally:
        gc.enable()


def test_invalid_utf8_strings_travel_both_ways(demo: ModuleType) -> None:
    """Strings are bytes on the wire: names that are not UTF-8 reach the handler (as
    surrogate escapes) and come back in the reply byte for byte, over TCP and UDP."""
    from peers.rpcgen_peers import widget

    class Echo(demo.DemoRpcProgram2Handler):  # type: ignore[name-defined,misc]
        async def demo_lookup(self, name: str) -> Any:
            item = widget(demo)
            item.name = name
            return demo.demo_lookup_result(status=demo.DEMO_OK, value=item)

    raw_names = [b"\xff\xfe", b"caf\xc3", b"\xed\xa0\x80", b"ok\x00nul", bytes(range(128, 192))]

    async def main() -> None:
        server = await demo.DemoRpcProgram2Server(Echo()).serve()
        async with server:
            for connect, port in ((demo.DemoRpcProgram2AsyncClient.connect_tcp, server.tcp_port),
                                  (demo.DemoRpcProgram2AsyncClient.connect_udp, server.udp_port)):
                c = await connect("127.0.0.1", port)
                async with c:
                    for raw in raw_names:
                        name = raw.decode("utf-8", "surrogateescape")
                        result = await c.demo_lookup(name)
                        assert result.value.name.encode("utf-8", "surrogateescape") == raw

    asyncio.run(main())
