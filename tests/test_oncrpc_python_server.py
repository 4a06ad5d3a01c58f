"""The generated ONC RPC server, seen by real peers: rpcbind, rpcinfo, rpcgen's C client.

Registered with rpcbind (RPCB SET and portmap SET), rpcinfo lists it and finds
it ready and waiting on TCP and UDP, rpcgen's C client finds it through
rpcbind and prints what the handlers returned, and after the server stops
rpcinfo lists it no more.  Without rpcbind: the C client prints the same
lines against this server as against rpcgen's own C server, and crafted
messages get the same replies from both (except the differences documented in
docs/oncrpc.md).
"""

from __future__ import annotations

import asyncio
import random
import re
import struct
import socket
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

from peers.oncrpc_daemons import Rpcbind, rpcinfo
from peers.oncrpc_fixtures import c_demo_server, demo, demo_peers, rpcbind  # noqa: F401  (fixtures)
from peers.pyserver import ServerThread, c_like_handlers
from peers.rpcgen_peers import (
    CServer,
    DemoPeers,
    render_item,
    render_limit,
    render_lookup,
    render_maybe_name,
    render_option,
    run_demo_client,
)
from xdrgen.runtime.oncrpc import (
    AuthError,
    CallInfo,
    GarbageArgs,
    ProcUnavail,
    ProgMismatch,
    ProgUnavail,
    RpcTimeout,
    SystemErr,
    auth_sys,
    current_call,
)
from xdrgen.runtime.oncrpc import message as msg
from xdrgen.runtime.oncrpc import rpc_prot, sync
from xdrgen.runtime.oncrpc.record import RecordReader, frame
from xdrgen.runtime.oncrpc.server import RpcServer

PROGRAM = 0x20005EED


def gadget(demo: ModuleType, name: str) -> Any:
    """An item unlike the C server's widget, so the C client's output shows our handler ran."""
    return demo.demo_item(
        uuid=bytes(range(100, 116)),
        name=f"gadget-{name}"[:64],
        kind=demo.demo_kind.DEMO_KIND_ASSEMBLY,
        quantity=0xFFFFFFFF,
        created=-(2**63),
        size_bytes=2**64 - 1,
        mode=0o755,
        active=False,
        dimensions=None,
        tags=[],
        description="made by the Python handler",
        ratings=[-1, 0, 2**31 - 1],
        also_kinds=[demo.demo_kind.DEMO_KIND_UNKNOWN, demo.demo_kind.DEMO_KIND_ARCHIVED],
        counters=[0, 2**64 - 1, 5, 6],
        vendor="",
        thumbnail=b"",
        sha256=bytes(range(32)),
    )


def distinct_handlers(demo: ModuleType) -> tuple[Any, Any]:
    class V1(demo.DemoRpcProgram1Handler):  # type: ignore[name-defined,misc]
        async def demo_add(self, a: int, b: int) -> int:
            return a * 1000 + b

        async def demo_lookup(self, name: str) -> Any:
            return demo.demo_lookup_result(status=demo.DEMO_OK, value=gadget(demo, name))

    class V2(demo.DemoRpcProgram2Handler):  # type: ignore[name-defined,misc]
        def __init__(self) -> None:
            self.configured: list[str] = []

        async def demo_add(self, a: int, b: int) -> int:
            return a - b

        async def demo_lookup(self, name: str) -> Any:
            if name == "nothing":
                return demo.demo_lookup_result(status=demo.DEMO_ERR_DENIED, value=None)
            return demo.demo_lookup_result(status=demo.DEMO_OK, value=gadget(demo, name))

        async def demo_find(self, name: str, kind: int, active: bool) -> Any:
            return gadget(demo, f"{name}/{int(kind)}/{int(active)}")

        async def demo_configure(self, option: Any, limit: Any) -> None:
            self.configured.append(f"{render_option(option)} limit={render_limit(limit)}")

        async def demo_first_name(self) -> Any:
            return demo.demo_maybe_name(present=False, value=None)

    return V1(), V2()


def expected_client_lines(demo: ModuleType, v2: Any) -> list[str]:
    """What demo_client.c's "all" prints against the distinct handlers."""
    lookup = demo.demo_lookup_result
    return [
        "v1 null ok",
        "v1 add 20 22 = 20022",
        "v1 lookup widget = " + render_lookup(lookup(status=0, value=gadget(demo, "widget"))),
        "v1 lookup nothing = " + render_lookup(lookup(status=0, value=gadget(demo, "nothing"))),
        "v2 null ok",
        f"v2 add 1099511627776 -5 = {(1 << 40) + 5}",
        "v2 lookup widget = " + render_lookup(lookup(status=0, value=gadget(demo, "widget"))),
        "v2 lookup nothing = status=-102",
        "v2 find widget 1 1 = " + render_item(gadget(demo, "widget/1/1")),
        "v2 find nothing 0 0 = " + render_item(gadget(demo, "nothing/0/0")),
        "v2 configure key=speed setting=2:-7 limit=2:9 ok",
        "v2 configure key=label setting=4:fast limit=7:void ok",
        "v2 first_name = " + render_maybe_name(demo.demo_maybe_name(present=False, value=None)),
    ]


def rpcinfo_p_entries() -> set[tuple[int, int, str, int]]:
    out = rpcinfo("-p", "127.0.0.1")
    assert out.returncode == 0, out.stderr
    entries = set()
    for line in out.stdout.splitlines()[1:]:
        fields = line.split()
        entries.add((int(fields[0]), int(fields[1]), fields[2], int(fields[3])))
    return entries


@pytest.mark.parametrize("method", ["rpcb", "pmap"])
def test_registered_server_is_listed_pinged_and_called_by_rpcgens_client(
    demo: ModuleType, demo_peers: DemoPeers, rpcbind: Rpcbind, method: str
) -> None:
    v1, v2 = distinct_handlers(demo)
    thread = ServerThread(
        lambda: demo.DemoRpcProgram2Server(v2).serve(register=method, also=[demo.DemoRpcProgram1Server(v1)])
    )
    server = thread.start()
    try:
        tcp, udp = server.tcp_port, server.udp_port
        assert {(PROGRAM, v, p, port) for v in (1, 2) for p, port in (("tcp", tcp), ("udp", udp))} <= rpcinfo_p_entries()
        for transport in ("tcp", "udp"):
            for version in (1, 2):
                ping = rpcinfo("-T", transport, "127.0.0.1", str(PROGRAM), str(version))
                assert ping.returncode == 0, ping.stderr
                assert ping.stdout.strip() == f"program {PROGRAM} version {version} ready and waiting"
        for transport in ("tcp", "udp"):
            before = len(v2.configured)
            result = run_demo_client(demo_peers, "all", "127.0.0.1", transport)  # found through rpcbind
            assert result.returncode == 0, result.stdout + result.stderr
            assert result.stdout.splitlines() == expected_client_lines(demo, v2)
            assert v2.configured[before:] == ["key=speed setting=2:-7 limit=2:9", "key=label setting=4:fast limit=7:void"]
    finally:
        thread.stop()
    assert not {e for e in rpcinfo_p_entries() if e[0] == PROGRAM}
    gone = rpcinfo("-T", "tcp", "127.0.0.1", str(PROGRAM), "2")
    assert gone.returncode != 0 and "Program not registered" in gone.stdout + gone.stderr


def test_python_client_finds_the_server_through_rpcbind(demo: ModuleType, rpcbind: Rpcbind) -> None:
    v1, v2 = distinct_handlers(demo)
    with ServerThread(lambda: demo.DemoRpcProgram2Server(v2).serve(register=True)):
        for transport in ("tcp", "udp"):
            with demo.DemoRpcProgram2Client.create("127.0.0.1", transport) as c:
                assert c.demo_add(10, 3) == 7

        async def main() -> None:
            for transport in ("tcp", "udp"):
                c = await demo.DemoRpcProgram2AsyncClient.create("127.0.0.1", transport)
                async with c:
                    assert await c.demo_add(10, 4) == 6

        asyncio.run(main())


# -- the same C client, against rpcgen's server and ours ----------------------------


@pytest.fixture(scope="module")
def c_like_server(demo: ModuleType) -> Iterator[RpcServer]:
    v1, v2 = c_like_handlers(demo)
    thread = ServerThread(lambda: demo.DemoRpcProgram1Server(v1).serve(also=[demo.DemoRpcProgram2Server(v2)]))
    try:
        yield thread.start()
    finally:
        thread.stop()


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_rpcgens_client_prints_the_same_against_both_servers(
    demo_peers: DemoPeers, c_demo_server: CServer, c_like_server: RpcServer, transport: str
) -> None:
    outputs = []
    for port in (
        (c_demo_server.tcp_port, c_like_server.tcp_port) if transport == "tcp" else
        (c_demo_server.udp_port, c_like_server.udp_port)
    ):
        result = run_demo_client(demo_peers, "all", "127.0.0.1", transport, str(port))
        assert result.returncode == 0, result.stdout + result.stderr
        outputs.append(result.stdout.splitlines())
    assert outputs[0] == outputs[1]
    assert len(outputs[0]) == 13


def _header(proc: int, *, cred: bytes = msg.NONE_AUTH_BYTES, rpcvers: int = 2, mtype: int = 0,
            prog: int = PROGRAM, vers: int = 2, xid: int = 7) -> bytes:
    return struct.pack(">IIIIII", xid, mtype, rpcvers, prog, vers, proc) + cred + msg.NONE_AUTH_BYTES


_ADD = struct.pack(">qq", 5, 6)
_SYS = rpc_prot.XDR_TYPES["authsys_parms"].encode(
    rpc_prot.authsys_parms(stamp=1, machinename="m" * 255, uid=1, gid=2, gids=list(range(16)))
)
#: name -> (message, how our server differs from libtirpc's, or None)
CRAFTED: dict[str, tuple[bytes, str | None]] = {
    "add": (_header(1) + _ADD, None),
    "add, arguments cut short": (_header(1) + _ADD[:12], None),
    "lookup, string longer than its bound": (_header(2) + struct.pack(">I", 65) + b"x" * 68, None),
    "flavor 99": (_header(1, cred=struct.pack(">II", 99, 0)) + _ADD, None),
    "AUTH_SHORT": (_header(1, cred=struct.pack(">II", 2, 0)) + _ADD, None),
    "AUTH_SYS body that does not decode": (_header(1, cred=struct.pack(">II", 1, 4) + b"\0\0\0\1") + _ADD, None),
    "AUTH_SYS at its limits": (_header(1, cred=struct.pack(">II", 1, len(_SYS)) + _SYS) + _ADD, None),
    "version 7": (_header(0, vers=7), None),
    "another program": (_header(0, prog=PROGRAM + 1), None),
    "procedure 99": (_header(99), None),
    "version 1, procedure 3": (_header(3, vers=1) + _ADD, None),
    "a REPLY": (_header(1, mtype=1) + _ADD, None),
    "credential of 401 bytes": (_header(1, cred=struct.pack(">II", 1, 401) + bytes(404)) + _ADD, None),
    "half a header": (_header(1)[:20], None),
    "add, trailing bytes": (_header(1) + _ADD + b"\0\0\0\1", "GARBAGE_ARGS; libtirpc ignores the extra bytes"),
    "NULL with arguments": (_header(0) + _ADD, "GARBAGE_ARGS; libtirpc ignores the extra bytes"),
    "RPC version 3": (_header(0, rpcvers=3), "RPC_MISMATCH (RFC 5531); libtirpc closes / drops"),
}


def _exchange_tcp(port: int, data: bytes) -> bytes | str:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(frame(data))
        reader = RecordReader()
        s.settimeout(2)
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    return "closed"
                records = reader.feed(chunk)
                if records:
                    return bytes(records[0])
        except socket.timeout:
            return "no reply"


def _exchange_udp(port: int, data: bytes) -> bytes | str:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("127.0.0.1", port))
        s.settimeout(0.5)
        s.send(data)
        try:
            return s.recv(65536)
        except socket.timeout:
            return "no reply"


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_crafted_messages_get_libtirpcs_replies(
    c_demo_server: CServer, c_like_server: RpcServer, transport: str
) -> None:
    exchange = _exchange_tcp if transport == "tcp" else _exchange_udp
    ours_port = c_like_server.tcp_port if transport == "tcp" else c_like_server.udp_port
    theirs_port = c_demo_server.tcp_port if transport == "tcp" else c_demo_server.udp_port
    assert ours_port is not None
    for name, (data, difference) in CRAFTED.items():
        if transport == "udp" and name == "add, arguments cut short":
            continue  # libtirpc over UDP reads stale buffer bytes past the datagram
        ours = exchange(ours_port, data)
        theirs = exchange(theirs_port, data)
        if difference is None:
            assert ours == theirs, (name, ours, theirs)
        else:
            assert ours != theirs, (name, "the documented difference is gone")
            assert isinstance(ours, bytes)
            reply = rpc_prot.XDR_TYPES["rpc_msg"].decode(ours).body.value
            stat = reply.value.reply_data.stat if reply.stat == 0 else reply.value.stat
            assert stat.name in difference, (name, stat)


# -- handler semantics ------------------------------------------------------------


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_null_unimplemented_and_failing_procedures(demo: ModuleType) -> None:
    class Partial(demo.DemoRpcProgram2Handler):  # type: ignore[name-defined,misc]
        async def demo_add(self, a: int, b: int) -> int:
            if a == 0:
                raise GarbageArgs()
            if a == 1:
                raise ZeroDivisionError("handler bug")
            if a == 2:
                return "not an int"  # type: ignore[return-value]
            return a + b

    async def main() -> None:
        server = await demo.DemoRpcProgram2Server(Partial()).serve()
        async with server:
            for connect in (demo.DemoRpcProgram2AsyncClient.connect_tcp, demo.DemoRpcProgram2AsyncClient.connect_udp):
                port = server.tcp_port if "tcp" in connect.__name__ else server.udp_port
                c = await connect("127.0.0.1", port)
                async with c:
                    assert await c.demo_null() is None  # answered without a handler method
                    with pytest.raises(ProcUnavail):
                        await c.demo_lookup("x")  # not overridden
                    with pytest.raises(GarbageArgs):
                        await c.demo_add(0, 1)
                    with pytest.raises(SystemErr):
                        await c.demo_add(1, 1)
                    with pytest.raises(SystemErr):
                        await c.demo_add(2, 1)  # the result does not encode
                    assert await c.demo_add(3, 4) == 7
            with sync.connect_tcp("127.0.0.1", server.tcp_port, PROGRAM, 3) as raw:
                with pytest.raises(ProgMismatch) as info:
                    await asyncio.to_thread(raw.call, 0)
                assert (info.value.low, info.value.high) == (2, 2)
            with sync.connect_udp("127.0.0.1", server.udp_port, PROGRAM + 5, 1) as raw:
                with pytest.raises(ProgUnavail):
                    await asyncio.to_thread(raw.call, 0)

    run(main())


def test_auth_hook_and_current_call(demo: ModuleType) -> None:
    seen: list[CallInfo] = []

    class Who(demo.DemoRpcProgram2Handler):  # type: ignore[name-defined,misc]
        async def demo_first_name(self) -> Any:
            info = current_call()
            seen.append(info)
            await asyncio.sleep(0)
            assert current_call() is info  # each call keeps its own
            name = f"{info.transport}:{info.auth_sys.uid if info.auth_sys else 'none'}"
            return demo.demo_maybe_name(present=True, value=name)

    def hook(info: CallInfo) -> None:
        if info.auth_sys is not None and info.auth_sys.uid == 0:
            raise AuthError(rpc_prot.auth_stat.AUTH_TOOWEAK)

    async def main() -> None:
        server = await demo.DemoRpcProgram2Server(Who()).serve(auth_hook=hook)
        async with server:
            c = await demo.DemoRpcProgram2AsyncClient.connect_tcp("127.0.0.1", server.tcp_port)
            async with c:
                assert (await c.demo_first_name()).value == "tcp:none"
                c.connection.set_auth(auth_sys(uid=1234, gid=5, gids=[]))
                assert (await c.demo_first_name()).value == "tcp:1234"
                c.connection.set_auth(auth_sys(uid=0))
                with pytest.raises(AuthError) as info:
                    await c.demo_first_name()
                assert info.value.why == rpc_prot.auth_stat.AUTH_TOOWEAK
                with pytest.raises(AuthError):
                    await c.demo_null()  # the hook sees NULL calls too
            u = await demo.DemoRpcProgram2AsyncClient.connect_udp("127.0.0.1", server.udp_port)
            async with u:
                u.connection.set_auth(auth_sys(uid=7, machinename="box"))
                assert (await u.demo_first_name()).value == "udp:7"
        last = seen[-1]
        assert last.peer[0] == "127.0.0.1" and last.auth_sys is not None and last.auth_sys.machinename == "box"
        assert last.prog == PROGRAM and last.vers == 2 and last.proc == 5

    run(main())


def test_calls_of_one_connection_run_concurrently_and_are_answered_as_they_finish(demo: ModuleType) -> None:
    finished: list[int] = []

    class Slow(demo.DemoRpcProgram2Handler):  # type: ignore[name-defined,misc]
        async def demo_add(self, a: int, b: int) -> int:
            await asyncio.sleep(b / 1000)
            finished.append(a)
            return a

    async def main() -> None:
        server = await demo.DemoRpcProgram2Server(Slow()).serve(max_in_flight=256, fragment_size=5)
        async with server:
            c = await demo.DemoRpcProgram2AsyncClient.connect_tcp("127.0.0.1", server.tcp_port, fragment_size=7)
            async with c:
                rng = random.Random(5)
                delays = [rng.randrange(0, 50) for _ in range(200)]
                results = await asyncio.gather(*(c.demo_add(i, d) for i, d in enumerate(delays)))
        assert results == list(range(200))
        # Answered as they finished, not in call order; each answer went to its own call.
        assert finished != sorted(finished)
        quick = {i for i, d in enumerate(delays) if d <= 5}
        slow = {i for i, d in enumerate(delays) if d >= 45}
        assert quick and slow
        assert max(finished.index(i) for i in quick) < min(finished.index(i) for i in slow)

    run(main())


def test_thousand_concurrent_calls_with_fragmented_records_both_ways(demo: ModuleType) -> None:
    v1, v2 = c_like_handlers(demo)

    async def main() -> None:
        server = await demo.DemoRpcProgram2Server(v2).serve(fragment_size=3)
        async with server:
            c = await demo.DemoRpcProgram2AsyncClient.connect_tcp("127.0.0.1", server.tcp_port, fragment_size=4)
            async with c:
                results = await asyncio.gather(*(c.demo_add(i, -2 * i) for i in range(1000)))
        assert results == [-i for i in range(1000)]

    run(main())


def test_udp_datagram_limits(demo: ModuleType) -> None:
    class Big(demo.DemoRpcProgram2Handler):  # type: ignore[name-defined,misc]
        async def demo_lookup(self, name: str) -> Any:
            item = demo.demo_item(**{**vars_of(gadget(demo, name)), "description": "d" * 20000})
            return demo.demo_lookup_result(status=0, value=item)

        async def demo_add(self, a: int, b: int) -> int:
            return a + b

    async def main() -> None:
        server = await demo.DemoRpcProgram2Server(Big()).serve(max_datagram=100)
        async with server:
            c = await demo.DemoRpcProgram2AsyncClient.connect_udp(
                "127.0.0.1", server.udp_port, timeout=0.3, retransmit=0.1
            )
            async with c:
                with pytest.raises(SystemErr):
                    await c.demo_lookup("x")  # the reply cannot travel: SYSTEM_ERR, not silence
                dropped = server.udp_dropped
                with pytest.raises(RpcTimeout):
                    await c.demo_lookup("y" * 64)  # a call past the server's limit is dropped
                assert server.udp_dropped > dropped
                assert await c.demo_add(1, 2) == 3

    run(main())


def vars_of(struct_value: Any) -> dict[str, Any]:
    return {name: getattr(struct_value, name) for name in struct_value.__slots__}


def test_handler_that_is_still_running_when_its_client_leaves_is_cancelled(demo: ModuleType) -> None:
    started = asyncio.Event
    state: dict[str, Any] = {}

    class Stuck(demo.DemoRpcProgram2Handler):  # type: ignore[name-defined,misc]
        async def demo_add(self, a: int, b: int) -> int:
            state["started"].set()
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                state["cancelled"] = True
                raise
            return 0

    async def main() -> None:
        state["started"] = started()
        server = await demo.DemoRpcProgram2Server(Stuck()).serve(udp_port=None)
        async with server:
            c = await demo.DemoRpcProgram2AsyncClient.connect_tcp("127.0.0.1", server.tcp_port)
            call = asyncio.ensure_future(c.demo_add(1, 2))
            await state["started"].wait()
            c.close()
            with pytest.raises(Exception):
                await call
            for _ in range(100):
                if state.get("cancelled"):
                    break
                await asyncio.sleep(0.01)
            assert state.get("cancelled") is True
            assert server.connections == 0

    run(main())


def test_rpcinfo_address_form() -> None:
    from xdrgen.runtime.oncrpc.rpcbind import parse_universal_address, universal_address

    assert universal_address("127.0.0.1", 0x1234) == "127.0.0.1.18.52"
    assert parse_universal_address("127.0.0.1.18.52") == ("127.0.0.1", 0x1234)
    assert parse_universal_address("::1.0.111") == ("::1", 111)
    for bad in ("127.0.0.1", "1.2.3.4.5.256", "x.y", "", "300.1.2.3.0.1"):
        with pytest.raises(ValueError):
            parse_universal_address(bad)
    assert re.fullmatch(r"[0-9.]+", universal_address("10.0.0.1", 65535))


def test_max_in_flight_bounds_the_calls_of_one_connection(demo: ModuleType) -> None:
    state = {"running": 0, "most": 0}

    class Slow(demo.DemoRpcProgram2Handler):  # type: ignore[name-defined,misc]
        async def demo_add(self, a: int, b: int) -> int:
            state["running"] += 1
            state["most"] = max(state["most"], state["running"])
            await asyncio.sleep(0.01)
            state["running"] -= 1
            return a + b

    async def main() -> None:
        server = await demo.DemoRpcProgram2Server(Slow()).serve(max_in_flight=4)
        async with server:
            c = await demo.DemoRpcProgram2AsyncClient.connect_tcp("127.0.0.1", server.tcp_port)
            async with c:
                # 40 calls leave in one write; the server runs 4 at a time and answers all.
                assert await asyncio.gather(*(c.demo_add(i, 1) for i in range(40))) == [i + 1 for i in range(40)]

    run(main())
    assert state["most"] == 4
