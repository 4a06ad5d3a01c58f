"""The rpcbind and portmap clients (generated from the runtime's rpcb_prot.x) against real rpcbind.

DUMP lists what rpcinfo lists; GETADDR, GETVERSADDR, GETPORT and GETTIME
answer; SET and UNSET (RPCB versions 3 and 4 over rpcbind's unix socket,
portmap version 2 from a privileged port) take effect, as rpcinfo sees them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator

import pytest

from peers.oncrpc_daemons import Rpcbind, rpcinfo
from peers.oncrpc_fixtures import rpcbind  # noqa: F401  (fixture)
from xdrgen.runtime.oncrpc import RpcbindError
from xdrgen.runtime.oncrpc import rpcb_prot as rb
from xdrgen.runtime.oncrpc.rpcbind import RPCBIND_SOCKET, lookup, parse_universal_address

#: Program numbers in the user-defined range (0x20000000-0x3FFFFFFF) for test registrations.
TEST_PROGRAM = 0x3123ABC0


def value_of(call: Callable[[], object]) -> object:
    """What ``call()`` returns, so a void procedure's answer (None) can be asserted."""
    return call()


def rpcb_dump(client: rb.Rpcbprog4Client | rb.Rpcbprog3Client) -> set[tuple[int, int, str, str, str]]:
    out = set()
    node = client.rpcbproc_dump()
    while node is not None:
        m = node.rpcb_map
        out.add((m.r_prog, m.r_vers, m.r_netid, m.r_addr, m.r_owner))
        node = node.rpcb_next
    return out


def pmap_dump(client: rb.PmapProg2Client) -> set[tuple[int, int, str, int]]:
    names = {rb.IPPROTO_TCP: "tcp", rb.IPPROTO_UDP: "udp"}
    out = set()
    node = client.pmapproc_dump()
    while node is not None:
        out.add((node.map.prog, node.map.vers, names.get(node.map.prot, str(node.map.prot)), node.map.port))
        node = node.next
    return out


def rpcinfo_dump() -> set[tuple[int, int, str, str, str]]:
    """``rpcinfo 127.0.0.1``: program version netid address service owner."""
    out = rpcinfo("127.0.0.1")
    assert out.returncode == 0, out.stderr
    rows = set()
    for line in out.stdout.splitlines()[1:]:
        prog, vers, netid, address, _service, owner = line.split()
        rows.add((int(prog), int(vers), netid, address, owner))
    return rows


def rpcinfo_p() -> set[tuple[int, int, str, int]]:
    out = rpcinfo("-p", "127.0.0.1")
    assert out.returncode == 0, out.stderr
    rows = set()
    for line in out.stdout.splitlines()[1:]:
        fields = line.split()
        rows.add((int(fields[0]), int(fields[1]), fields[2], int(fields[3])))
    return rows


@pytest.fixture
def test_program(rpcbind: Rpcbind) -> Iterator[int]:
    """A program number nobody else registers; whatever a test left registered is removed."""
    yield TEST_PROGRAM
    with rb.Rpcbprog4Client.connect_unix(RPCBIND_SOCKET) as c:
        for vers in (1, 2, 3):
            c.rpcbproc_unset(rb.rpcb(r_prog=TEST_PROGRAM, r_vers=vers, r_netid="", r_addr="", r_owner=""))


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_dump_lists_what_rpcinfo_lists(rpcbind: Rpcbind, transport: str) -> None:
    connect4 = rb.Rpcbprog4Client.connect_tcp if transport == "tcp" else rb.Rpcbprog4Client.connect_udp
    connect3 = rb.Rpcbprog3Client.connect_tcp if transport == "tcp" else rb.Rpcbprog3Client.connect_udp
    connect2 = rb.PmapProg2Client.connect_tcp if transport == "tcp" else rb.PmapProg2Client.connect_udp
    with connect4("127.0.0.1", 111) as v4, connect3("127.0.0.1", 111) as v3, connect2("127.0.0.1", 111) as v2:
        ours4, ours3, ours2 = rpcb_dump(v4), rpcb_dump(v3), pmap_dump(v2)
    assert ours4 == rpcinfo_dump() == ours3
    assert ours2 == rpcinfo_p()
    # rpcbind itself is always there, on the well-known port.
    assert (100000, 2, "udp", 111) in ours2 and any(e[:3] == (100000, 4, "tcp") for e in ours4)


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_getaddr_getversaddr_getport_gettime(rpcbind: Rpcbind, transport: str) -> None:
    connect4 = rb.Rpcbprog4Client.connect_tcp if transport == "tcp" else rb.Rpcbprog4Client.connect_udp
    with connect4("127.0.0.1", 111) as c:
        for vers in (2, 3, 4):
            query = rb.rpcb(r_prog=100000, r_vers=vers, r_netid=transport, r_addr="", r_owner="")
            assert parse_universal_address(c.rpcbproc_getaddr(query))[1] == 111
            assert parse_universal_address(c.rpcbproc_getversaddr(query))[1] == 111
        unknown = rb.rpcb(r_prog=TEST_PROGRAM + 9, r_vers=1, r_netid=transport, r_addr="", r_owner="")
        assert c.rpcbproc_getaddr(unknown) == ""
        assert abs(c.rpcbproc_gettime() - time.time()) < 5
        assert value_of(c.rpcbproc_null) is None
    connect2 = rb.PmapProg2Client.connect_tcp if transport == "tcp" else rb.PmapProg2Client.connect_udp
    with connect2("127.0.0.1", 111) as p:
        prot = rb.IPPROTO_TCP if transport == "tcp" else rb.IPPROTO_UDP
        assert p.pmapproc_getport(rb.mapping(prog=100000, vers=2, prot=prot, port=0)) == 111
        assert p.pmapproc_getport(rb.mapping(prog=TEST_PROGRAM + 9, vers=1, prot=prot, port=0)) == 0


@pytest.mark.parametrize("client_class", [rb.Rpcbprog4Client, rb.Rpcbprog3Client])
def test_rpcb_set_and_unset_take_effect(
    test_program: int, client_class: type[rb.Rpcbprog4Client] | type[rb.Rpcbprog3Client]
) -> None:
    entries = [
        rb.rpcb(r_prog=test_program, r_vers=1, r_netid="tcp", r_addr="127.0.0.1.4.210", r_owner="ignored"),
        rb.rpcb(r_prog=test_program, r_vers=1, r_netid="udp", r_addr="127.0.0.1.4.211", r_owner="ignored"),
    ]
    with client_class.connect_unix(RPCBIND_SOCKET) as c:
        for e in entries:
            assert c.rpcbproc_set(e) is True
    listed = {row for row in rpcinfo_dump() if row[0] == test_program}
    # rpcbind records who registered (root: "superuser"), not what the caller claims.
    assert listed == {(test_program, 1, "tcp", "127.0.0.1.4.210", "superuser"),
                      (test_program, 1, "udp", "127.0.0.1.4.211", "superuser")}
    assert (test_program, 1, "tcp", 4 * 256 + 210) in rpcinfo_p()
    assert lookup("127.0.0.1", test_program, 1, "udp") == ("127.0.0.1", 4 * 256 + 211)
    with client_class.connect_unix(RPCBIND_SOCKET) as c:
        assert c.rpcbproc_unset(rb.rpcb(r_prog=test_program, r_vers=1, r_netid="tcp", r_addr="", r_owner="")) is True
        assert {row[2] for row in rpcinfo_dump() if row[0] == test_program} == {"udp"}
        assert c.rpcbproc_unset(rb.rpcb(r_prog=test_program, r_vers=1, r_netid="", r_addr="", r_owner="")) is True
    assert not {row for row in rpcinfo_dump() if row[0] == test_program}
    with pytest.raises(RpcbindError, match="not registered"):
        lookup("127.0.0.1", test_program, 1, "tcp")


def test_pmap_set_and_unset_take_effect(test_program: int) -> None:
    # rpcbind takes portmap SET/UNSET only from a privileged port on the loopback.
    with rb.PmapProg2Client.connect_udp("127.0.0.1", 111, reserved_port=True) as p:
        assert p.connection._sock.getsockname()[1] < 1024
        assert p.pmapproc_set(rb.mapping(prog=test_program, vers=2, prot=rb.IPPROTO_TCP, port=1234)) is True
        assert p.pmapproc_set(rb.mapping(prog=test_program, vers=2, prot=rb.IPPROTO_UDP, port=1235)) is True
        assert {(test_program, 2, "tcp", 1234), (test_program, 2, "udp", 1235)} <= rpcinfo_p()
        assert p.pmapproc_getport(rb.mapping(prog=test_program, vers=2, prot=rb.IPPROTO_UDP, port=0)) == 1235
        # portmap's UNSET removes the version on every protocol.
        assert p.pmapproc_unset(rb.mapping(prog=test_program, vers=2, prot=0, port=0)) is True
    assert not {row for row in rpcinfo_p() if row[0] == test_program}


def test_async_rpcbind_clients(test_program: int) -> None:
    async def main() -> None:
        c = await rb.Rpcbprog4AsyncClient.connect_unix(RPCBIND_SOCKET)
        async with c:
            entry = rb.rpcb(r_prog=test_program, r_vers=3, r_netid="tcp", r_addr="127.0.0.1.8.1", r_owner="")
            assert await c.rpcbproc_set(entry) is True
        from xdrgen.runtime.oncrpc.rpcbind import lookup_async

        assert await lookup_async("127.0.0.1", test_program, 3, "tcp") == ("127.0.0.1", 8 * 256 + 1)
        u = await rb.Rpcbprog4AsyncClient.connect_udp("127.0.0.1", 111)
        async with u:
            dumped = await u.rpcbproc_dump()
            found = []
            while dumped is not None:
                found.append(dumped.rpcb_map)
                dumped = dumped.rpcb_next
            assert any(m.r_prog == test_program and m.r_vers == 3 for m in found)

    asyncio.run(main())
    assert any(row[0] == TEST_PROGRAM and row[1] == 3 for row in rpcinfo_dump())


def test_lookup_asks_rpcb_4_then_3_then_portmap() -> None:
    """The order clnt_create follows, driven by hand through the sans-IO lookup."""
    from xdrgen.runtime.oncrpc import ProgMismatch, ProgUnavail
    from xdrgen.runtime.oncrpc.rpcbind import _lookup_steps

    steps = _lookup_steps("10.0.0.1", 100024, 1, "udp")
    kind, version, query = next(steps)
    assert (kind, version, query.r_prog, query.r_vers, query.r_netid) == ("rpcb", 4, 100024, 1, "udp")
    assert steps.throw(ProgMismatch(2, 3))[:2] == ("rpcb", 3)  # no version 4 there
    kind, version, mapping = steps.throw(ProgUnavail())  # no RPCB at all: portmap
    assert (kind, version, mapping.prog, mapping.vers, mapping.prot) == ("pmap", 2, 100024, 1, rb.IPPROTO_UDP)
    with pytest.raises(StopIteration) as done:
        steps.send(4045)
    assert done.value.value == ("10.0.0.1", 4045)

    steps = _lookup_steps("10.0.0.1", 100024, 1, "tcp")
    next(steps)
    with pytest.raises(StopIteration) as done:
        steps.send("0.0.0.0.3.232")  # a server listening on every address
    assert done.value.value == ("10.0.0.1", 1000)
    steps = _lookup_steps("10.0.0.1", 100024, 1, "tcp")
    next(steps)
    with pytest.raises(RpcbindError, match="not registered"):
        steps.send("")
    steps = _lookup_steps("::1", 100024, 1, "tcp")
    assert next(steps)[2].r_netid == "tcp6"
    with pytest.raises(RpcbindError, match="did not answer"):
        steps.throw(ProgUnavail())  # no portmap fallback over IPv6
