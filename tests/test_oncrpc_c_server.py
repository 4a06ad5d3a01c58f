"""The generated ONC RPC clients against rpcgen's C server for demo.x (libtirpc).

Every procedure of both versions over TCP and UDP, blocking and asyncio; each
failure outcome as its typed exception; AUTH_SYS credentials exactly as the C
server received them; UDP retransmission and duplicate replies through a lossy
relay in front of the real server; 1,000 concurrent calls on one connection
in fragmented records.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from types import ModuleType
from typing import Any, TypedDict

import pytest

from peers.oncrpc_fixtures import c_demo_server, demo, demo_peers  # noqa: F401  (fixtures)
from peers.rpcgen_peers import CServer, render_limit, render_option, widget
from xdrgen.runtime.oncrpc import (
    AuthError,
    ConnectionClosed,
    GarbageArgs,
    MessageTooLarge,
    ProcUnavail,
    ProgMismatch,
    ProgUnavail,
    RpcTimeout,
    auth_sys,
)
from xdrgen.runtime.oncrpc import sync

PROGRAM = 0x20005EED
TRANSPORTS = ["tcp", "udp"]


def sync_client(demo: ModuleType, server: CServer, transport: str, version: int, **options: Any) -> Any:
    cls = demo.DemoRpcProgram1Client if version == 1 else demo.DemoRpcProgram2Client
    if transport == "tcp":
        return cls.connect_tcp("127.0.0.1", server.tcp_port, **options)
    return cls.connect_udp("127.0.0.1", server.udp_port, **options)


async def async_client(demo: ModuleType, server: CServer, transport: str, version: int, **options: Any) -> Any:
    cls = demo.DemoRpcProgram1AsyncClient if version == 1 else demo.DemoRpcProgram2AsyncClient
    if transport == "tcp":
        return await cls.connect_tcp("127.0.0.1", server.tcp_port, **options)
    return await cls.connect_udp("127.0.0.1", server.udp_port, **options)


def configure_args(demo: ModuleType) -> list[tuple[Any, Any]]:
    return [
        (
            demo.demo_option(key="speed", value=demo.demo_setting(type=2, value=-7)),
            demo.demo_limit(revision=2, value=9),
        ),
        (
            demo.demo_option(key="label", value=demo.demo_setting(type=4, value="fast")),
            demo.demo_limit(revision=7, value=None),
        ),
        (
            demo.demo_option(key="ratio", value=demo.demo_setting(type=3, value=0.1)),
            demo.demo_limit(revision=1, value=4000000000),
        ),
    ]


def check_version1(demo: ModuleType, c: Any) -> None:
    assert c.demo_null() is None
    assert c.demo_add(20, 22) == 42
    assert c.demo_add(-(2**31), -1) == 2**31 - 1  # the C server's int arithmetic wraps
    found = c.demo_lookup("widget")
    assert found.status == demo.DEMO_OK and found.value == widget(demo)
    missing = c.demo_lookup("nothing")
    assert missing.status == demo.DEMO_ERR_NOT_FOUND and missing.value is None


def check_version2(demo: ModuleType, c: Any) -> None:
    assert c.demo_null() is None
    assert c.demo_add(1 << 40, -5) == (1 << 40) - 5
    assert c.demo_lookup("widget").value == widget(demo)
    assert c.demo_find("widget", demo.DEMO_KIND_TOOL, True) == widget(demo)
    assert c.demo_find("widget", demo.DEMO_KIND_PART, True) is None
    assert c.demo_find("nothing", demo.DEMO_KIND_TOOL, True) is None
    for option, limit in configure_args(demo):
        assert c.demo_configure(option, limit) is None
    assert c.demo_first_name() == demo.demo_maybe_name(present=True, value="widget")


def expected_configure_lines(demo: ModuleType) -> list[str]:
    return [f"configure {render_option(o)} limit={render_limit(lim)}" for o, lim in configure_args(demo)]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_sync_client_calls_every_procedure_of_both_versions(
    demo: ModuleType, c_demo_server: CServer, transport: str
) -> None:
    before = [line for line in c_demo_server.lines() if line.startswith("configure ")]
    with sync_client(demo, c_demo_server, transport, 1) as v1:
        check_version1(demo, v1)
    with sync_client(demo, c_demo_server, transport, 2) as v2:
        check_version2(demo, v2)
    lines = c_demo_server.wait_for_lines(lambda line: line.startswith("configure "), len(before) + 3)
    # The C server printed the arguments it decoded: what we encoded arrived intact.
    assert lines[len(before):] == expected_configure_lines(demo)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_async_client_calls_every_procedure_of_both_versions(
    demo: ModuleType, c_demo_server: CServer, transport: str
) -> None:
    async def main() -> None:
        v1 = await async_client(demo, c_demo_server, transport, 1)
        async with v1:
            assert await v1.demo_null() is None
            assert await v1.demo_add(20, 22) == 42
            assert (await v1.demo_lookup("widget")).value == widget(demo)
            assert (await v1.demo_lookup("nothing")).value is None
        v2 = await async_client(demo, c_demo_server, transport, 2)
        async with v2:
            assert await v2.demo_null() is None
            assert await v2.demo_add(1 << 40, -5) == (1 << 40) - 5
            assert (await v2.demo_lookup("widget")).value == widget(demo)
            assert await v2.demo_find("widget", demo.DEMO_KIND_TOOL, True) == widget(demo)
            assert await v2.demo_find("nothing", demo.DEMO_KIND_TOOL, False) is None
            for option, limit in configure_args(demo):
                assert await v2.demo_configure(option, limit) is None
            assert (await v2.demo_first_name()).value == "widget"

    before = [line for line in c_demo_server.lines() if line.startswith("configure ")]
    asyncio.run(main())
    lines = c_demo_server.wait_for_lines(lambda line: line.startswith("configure "), len(before) + 3)
    assert lines[len(before):] == expected_configure_lines(demo)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_one_blocking_client_shared_by_threads(demo: ModuleType, c_demo_server: CServer, transport: str) -> None:
    with sync_client(demo, c_demo_server, transport, 2) as c:

        def work(base: int) -> list[int]:
            return [c.demo_add(base, i) for i in range(50)]

        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(work, [k * 1000 for k in range(8)]))
    assert results == [[k * 1000 + i for i in range(50)] for k in range(8)]


def test_closing_a_blocking_client_ends_a_call_waiting_in_another_thread(demo: ModuleType) -> None:
    import time

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # accepts the connection and never answers
    try:
        c = demo.DemoRpcProgram2Client.connect_tcp("127.0.0.1", listener.getsockname()[1], timeout=30)
        with ThreadPoolExecutor(1) as pool:
            waiting = pool.submit(c.demo_null)
            time.sleep(0.2)
            started = time.monotonic()
            c.close()
            with pytest.raises(ConnectionClosed):
                waiting.result(10)
            assert time.monotonic() - started < 5
    finally:
        listener.close()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_prog_mismatch_carries_the_servers_version_range(
    demo: ModuleType, c_demo_server: CServer, transport: str
) -> None:
    connect = sync.connect_tcp if transport == "tcp" else sync.connect_udp
    port = c_demo_server.tcp_port if transport == "tcp" else c_demo_server.udp_port
    for version in (0, 3, 0xFFFFFFFF):
        with demo.DemoRpcProgram2Client(connect("127.0.0.1", port, PROGRAM, version)) as c:
            with pytest.raises(ProgMismatch) as info:
                c.demo_null()
        assert (info.value.low, info.value.high) == (1, 2)
        assert (info.value.prog, info.value.vers, info.value.proc) == (PROGRAM, version, 0)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_proc_and_prog_unavail(demo: ModuleType, c_demo_server: CServer, transport: str) -> None:
    connect = sync.connect_tcp if transport == "tcp" else sync.connect_udp
    port = c_demo_server.tcp_port if transport == "tcp" else c_demo_server.udp_port
    with connect("127.0.0.1", port, PROGRAM, 1) as raw:
        with pytest.raises(ProcUnavail) as info:
            raw.call(3)  # version 1 has no procedure 3 (version 2 has)
        assert info.value.proc == 3
        with pytest.raises(ProcUnavail):
            raw.call(0x7FFFFFFF)
    with connect("127.0.0.1", port, PROGRAM + 1, 1) as other:
        with pytest.raises(ProgUnavail):
            other.call(0)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_garbage_args_from_a_wrong_argument_encoding(demo: ModuleType, c_demo_server: CServer, transport: str) -> None:
    connect = sync.connect_tcp if transport == "tcp" else sync.connect_udp
    port = c_demo_server.tcp_port if transport == "tcp" else c_demo_server.udp_port
    with connect("127.0.0.1", port, PROGRAM, 2) as raw:
        # DEMO_LOOKUP takes a string<64>: a length of 65 does not decode.
        with pytest.raises(GarbageArgs) as info:
            raw.call(2, struct.pack(">I", 65) + b"x" * 68)
        assert (info.value.prog, info.value.vers, info.value.proc) == (PROGRAM, 2, 2)
        if transport == "tcp":
            # Arguments cut short (DEMO_FIND without its kind and bool).  Over UDP libtirpc
            # reads on into its receive buffer's stale bytes instead, so only TCP is checked.
            with pytest.raises(GarbageArgs):
                raw.call(3, struct.pack(">I", 6) + b"widget\0\0")
        # And the connection is still good afterwards.
        assert demo.DemoRpcProgram2Client(raw).demo_add(2, 3) == 5


def test_c_server_ignores_trailing_argument_bytes(demo: ModuleType, c_demo_server: CServer) -> None:
    """libtirpc's svc_getargs leaves bytes after the arguments unread (our server answers
    GARBAGE_ARGS instead; docs/oncrpc.md)."""
    with sync.connect_tcp("127.0.0.1", c_demo_server.tcp_port, PROGRAM, 2) as raw:
        results = raw.call(1, struct.pack(">qq", 5, 6) + b"\0\0\0\1")
    assert struct.unpack(">q", results) == (11,)


class AuthCase(TypedDict):
    stamp: int
    machinename: str
    uid: int
    gid: int
    gids: list[int]


AUTH_CASES = [
    AuthCase(stamp=0, machinename="", uid=0, gid=0, gids=[]),
    AuthCase(stamp=0xFFFFFFFF, machinename="client.example", uid=1000, gid=100, gids=[4, 24, 27]),
    AuthCase(stamp=12345, machinename="m" * 255, uid=0xFFFFFFFE, gid=0xFFFFFFFF, gids=list(range(16))),
]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_auth_sys_credentials_arrive_exactly_as_sent(
    demo: ModuleType, c_demo_server: CServer, transport: str
) -> None:
    def printed(line: str) -> bool:
        return line.startswith("auth_sys ")

    before = len(c_demo_server.wait_for_lines(printed, 0, timeout=0))
    expected = []
    with sync_client(demo, c_demo_server, transport, 2) as c:
        for case in AUTH_CASES:
            c.connection.set_auth(auth_sys(**case))
            assert c.demo_add(1, 2) == 3
            gids = ",".join(map(str, case["gids"]))
            expected.append(
                f"auth_sys vers=2 proc=1 stamp={case['stamp']} machine={case['machinename']} "
                f"uid={case['uid']} gid={case['gid']} gids={gids}"
            )
    lines = c_demo_server.wait_for_lines(printed, before + len(expected))
    assert lines[before:] == expected


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_auth_errors_are_typed(demo: ModuleType, c_demo_server: CServer, transport: str) -> None:
    from xdrgen.runtime.oncrpc import rpc_prot

    with sync_client(demo, c_demo_server, transport, 2) as c:
        c.connection.set_auth(rpc_prot.opaque_auth(flavor=99, body=b""))
        with pytest.raises(AuthError) as info:
            c.demo_null()
        assert info.value.why == rpc_prot.auth_stat.AUTH_REJECTEDCRED
        c.connection.set_auth(rpc_prot.opaque_auth(flavor=rpc_prot.AUTH_SYS, body=b"\0\0\0\1"))
        with pytest.raises(AuthError) as info:
            c.demo_null()
        assert info.value.why == rpc_prot.auth_stat.AUTH_BADCRED
        c.connection.set_auth(None)
        assert c.demo_add(1, 1) == 2


def test_auth_sys_limits_are_checked_before_sending() -> None:
    from xdrgen.runtime.errors import XdrEncodeError

    with pytest.raises(XdrEncodeError):
        auth_sys(machinename="m" * 256)
    with pytest.raises(XdrEncodeError):
        auth_sys(gids=list(range(17)))


def test_thousand_concurrent_calls_in_fragmented_records(demo: ModuleType, c_demo_server: CServer) -> None:
    """1,000 asyncio calls in flight on one TCP connection, every call split in 8-byte
    fragments (which libtirpc reassembles); every reply goes to its own call."""

    async def main() -> None:
        c = await demo.DemoRpcProgram2AsyncClient.connect_tcp("127.0.0.1", c_demo_server.tcp_port, fragment_size=8)
        async with c:
            sums = [c.demo_add(i, i * 1000) for i in range(900)]
            lookups = [c.demo_lookup("widget" if i % 2 else f"n{i}") for i in range(100)]
            results = await asyncio.gather(*sums, *lookups)
            assert c.connection.in_flight == 0
        assert results[:900] == [i * 1001 for i in range(900)]
        for i, r in enumerate(results[900:]):
            assert (r.value == widget(demo)) if i % 2 else (r.value is None)

    asyncio.run(main())


# -- UDP: retransmission, duplicates, sizes ----------------------------------------


class LossyRelay:
    """A UDP relay in front of the real server: drops the first copy of each call and
    sends every reply twice (packet loss and duplication, not a fake server)."""

    def __init__(self, target: tuple[str, int], drop_all: bool = False) -> None:
        self.target = target
        self.drop_all = drop_all
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.upstream = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.upstream.connect(target)
        self.upstream.settimeout(0.1)
        self.seen: set[bytes] = set()
        self.dropped = 0
        self.client: tuple[str, int] | None = None
        self._stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self._stop:
            try:
                data, self.client = self.sock.recvfrom(65536)
            except socket.timeout:
                data = b""
            if data:
                xid = data[:4]
                if self.drop_all or xid not in self.seen:
                    self.seen.add(xid)
                    self.dropped += 1
                else:
                    self.upstream.send(data)
            try:
                reply = self.upstream.recv(65536)
            except socket.timeout:
                continue
            if self.client is not None:
                self.sock.sendto(reply, self.client)
                self.sock.sendto(reply, self.client)

    def close(self) -> None:
        self._stop = True
        self.thread.join(5)
        self.sock.close()
        self.upstream.close()


@pytest.fixture
def relay(c_demo_server: CServer) -> Iterator[LossyRelay]:
    r = LossyRelay(("127.0.0.1", c_demo_server.udp_port))
    try:
        yield r
    finally:
        r.close()


def test_udp_defaults_are_libtirpcs() -> None:
    # clnt_dg's retransmit interval and the TIMEOUT of rpcgen's client stubs.
    assert sync.RETRANSMIT == 15.0 and sync.TIMEOUT == 25.0
    from xdrgen.runtime.oncrpc.core import UDP_MAX

    assert UDP_MAX == 8800  # UDPMSGSIZE


def test_udp_retransmits_and_ignores_duplicate_replies(demo: ModuleType, relay: LossyRelay) -> None:
    with demo.DemoRpcProgram2Client.connect_udp("127.0.0.1", relay.port, retransmit=0.05, timeout=5) as c:
        for i in range(20):
            # Each reply arrives twice: the second copy of call i must not answer call i + 1.
            assert c.demo_add(i, 1000) == i + 1000
        assert c.connection.retransmissions >= 20
    assert relay.dropped == 20


def test_async_udp_retransmits_and_ignores_duplicate_replies(demo: ModuleType, relay: LossyRelay) -> None:
    async def main() -> None:
        c = await demo.DemoRpcProgram2AsyncClient.connect_udp("127.0.0.1", relay.port, retransmit=0.05, timeout=5)
        async with c:
            results = await asyncio.gather(*(c.demo_add(i, 7) for i in range(30)))
            assert results == [i + 7 for i in range(30)]
            assert c.connection.retransmissions >= 30
            assert await c.demo_add(1, 1) == 2  # no stale duplicate answers a later call

    asyncio.run(main())


def test_udp_gives_up_after_the_timeout(demo: ModuleType, c_demo_server: CServer) -> None:
    black_hole = LossyRelay(("127.0.0.1", c_demo_server.udp_port), drop_all=True)
    try:
        with demo.DemoRpcProgram2Client.connect_udp("127.0.0.1", black_hole.port, retransmit=0.1, timeout=0.55) as c:
            with pytest.raises(RpcTimeout):
                c.demo_null()
            assert 4 <= c.connection.retransmissions <= 5
            # rpc_timeout overrides the client's timeout for one call.
            with pytest.raises(RpcTimeout):
                c.demo_null(rpc_timeout=0.15)
    finally:
        black_hole.close()
    assert black_hole.dropped >= 6


def test_udp_refuses_oversized_datagrams(demo: ModuleType, c_demo_server: CServer) -> None:
    with demo.DemoRpcProgram2Client.connect_udp("127.0.0.1", c_demo_server.udp_port, max_datagram=80) as c:
        with pytest.raises(MessageTooLarge, match="call of"):
            c.demo_lookup("w" * 64)  # the call itself is too large: never sent
        # The reply to this small call (the widget, ~300 bytes) is larger than 80.
        with pytest.raises(MessageTooLarge, match="reply of"):
            c.demo_lookup("widget")
        assert c.demo_add(1, 2) == 3  # still usable
