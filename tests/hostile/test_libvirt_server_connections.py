"""Half frames, slow senders, disconnects at every byte of a call, fds, floods of connections.

Each case runs against real libvirtd 9.0 (test driver) and examples/fake_libvirtd.py
and asserts the same class of behaviour (answer, wait, close); for ours also
that other connections are served meanwhile, that memory and descriptors come
back, and that nothing is logged as unhandled.
"""

from __future__ import annotations

import asyncio
import os
import resource
import select
import socket
import struct
import time
from collections.abc import Iterator

import pytest

from hostile import wire
from hostile.fixtures import fake, procs  # noqa: F401  (fixtures)
from hostile.memory import open_fds, rss_kib, traced
from hostile.rawpeer import PROBE_SERIAL, RawPeer
from hostile.servers import FakeDaemon, ServerThread, running_fake
from peers.daemons import Daemon, require_peer_environment, start_libvirtd
from peers.fixtures import libvirtd  # noqa: F401  (fixture)
from xdrgen.runtime.virnet import events as ev
from xdrgen.runtime.virnet.server import ServerConnection, serve_unix, take_fds

KIB = 1024


@pytest.fixture(scope="module")
def servers(libvirtd: Daemon, fake: FakeDaemon) -> dict[str, str]:
    return {"libvirtd": libvirtd.socket_path, "ours": fake.socket_path}


def opened(path: str, procs: dict[str, int]) -> RawPeer:
    peer = RawPeer(path)
    assert peer.call(procs["REMOTE_PROC_CONNECT_OPEN"], wire.xdr_opt_string(b"test:///default") + wire.xdr_uint(0)).status == wire.OK
    return peer


def version_call(procs: dict[str, int], serial: int = 5) -> bytes:
    return wire.frame(procs["REMOTE_PROC_CONNECT_GET_VERSION"], serial=serial)


def assert_served(path: str, procs: dict[str, int]) -> None:
    """A new connection gets its calls answered."""
    with opened(path, procs) as other:
        assert other.call(procs["REMOTE_PROC_CONNECT_GET_VERSION"], serial=77).status == wire.OK


def settle_fds(pid: int, target: int, timeout: float = 10.0) -> int:
    """The process's descriptor count once it drops to ``target`` (or after ``timeout``)."""
    deadline = time.monotonic() + timeout
    count = open_fds(pid)
    while count > target and time.monotonic() < deadline:
        time.sleep(0.02)
        count = open_fds(pid)
    return count


# ---------------------------------------------------------------------------
# Half frames and slow senders: the server waits, and serves others meanwhile.


@pytest.mark.parametrize("cut", [2, 4, 17, 28, 40], ids=lambda c: f"cut at byte {c}")
@pytest.mark.parametrize("who", ["libvirtd", "ours"])
def test_half_frame_waits_for_the_rest(servers: dict[str, str], fake: FakeDaemon, procs: dict[str, int], who: str, cut: int) -> None:
    path = servers[who]
    frame = wire.frame(procs["REMOTE_PROC_DOMAIN_LOOKUP_BY_NAME"], wire.xdr_opaque(b"no-such-domain-name"), serial=3)
    with opened(path, procs) as peer:
        peer.send(frame[:cut])
        assert peer.silent_for(0.3), f"{who} answered half a frame"
        assert_served(path, procs)
        peer.send(frame[cut:] + version_call(procs, 4))
        obs = peer.read_until(lambda fs: {3, 4} <= {f.serial for f in fs})
        (lookup,) = obs.replies(3)
        assert lookup.status == wire.ERROR and wire.parse_error(lookup.payload).code == 42  # no such domain
        assert obs.replies(4)[0].status == wire.OK
    fake.assert_clean()


@pytest.mark.parametrize("who", ["libvirtd", "ours"])
def test_slow_sender_is_answered_and_does_not_hold_up_others(
    servers: dict[str, str], fake: FakeDaemon, procs: dict[str, int], who: str
) -> None:
    path = servers[who]
    frame = wire.frame(procs["REMOTE_PROC_DOMAIN_LOOKUP_BY_NAME"], wire.xdr_opaque(b"slowly"), serial=3)
    with opened(path, procs) as peer:
        for i, byte in enumerate(frame):
            peer.send(bytes([byte]))
            time.sleep(0.005)
            if i == len(frame) // 2:
                assert_served(path, procs)
        obs = peer.read_until(lambda fs: any(f.serial == 3 for f in fs))
        (reply,) = obs.replies(3)
        assert reply.status == wire.ERROR and wire.parse_error(reply.payload).code == 42  # no such domain
    fake.assert_clean()


# ---------------------------------------------------------------------------
# Disconnects at every byte of a call.


def test_disconnect_at_every_point_of_a_call(servers: dict[str, str], fake: FakeDaemon, procs: dict[str, int]) -> None:
    calls = [
        wire.frame(procs["REMOTE_PROC_CONNECT_LIST_ALL_DOMAINS"], wire.xdr_int(1) + wire.xdr_uint(0), serial=3),
        wire.frame(procs["REMOTE_PROC_DOMAIN_LOOKUP_BY_NAME"], wire.xdr_opaque(b"\xff\xfenot-there"), serial=4),
    ]
    fds_before = open_fds(fake.pid)
    rss_before = rss_kib(fake.pid)
    for who, path in servers.items():
        for frame in calls:
            for cut in range(len(frame) + 1):
                peer = opened(path, procs)
                peer.send(frame[:cut])
                peer.close()  # gone before (or right after) the call is complete: the reply has nowhere to go
            assert_served(path, procs)
    fake.assert_clean()
    assert settle_fds(fake.pid, fds_before) <= fds_before, "our server kept descriptors of closed connections"
    assert rss_kib(fake.pid) - rss_before < 8 * KIB


# ---------------------------------------------------------------------------
# File descriptors: CALL_WITH_FDS with real fds (SCM_RIGHTS), and fds nobody asked for.


def pipe_closed_everywhere(read_end: int, timeout: float = 5.0) -> bool:
    """True once every write end of the pipe is closed (the reader sees EOF)."""
    ready, _, _ = select.select([read_end], [], [], timeout)
    return bool(ready) and os.read(read_end, 1) == b""


@pytest.mark.parametrize("who", ["libvirtd", "ours"])
@pytest.mark.parametrize("nfds", [1, 2, 5])
def test_call_with_real_fds_is_answered_and_the_fds_released(
    servers: dict[str, str], fake: FakeDaemon, procs: dict[str, int], who: str, nfds: int
) -> None:
    fds_before = open_fds(fake.pid)
    pipes = [os.pipe() for _ in range(nfds)]
    with opened(servers[who], procs) as peer:
        peer.send(wire.frame(procs["REMOTE_PROC_CONNECT_GET_VERSION"], wire.xdr_uint(nfds), serial=3, mtype=wire.CALL_WITH_FDS))
        for _, w in pipes:
            peer.send_fd(w)
            os.close(w)
        obs = peer.probe(version_call(procs, PROBE_SERIAL))
        (reply,) = obs.replies(3)
        assert reply.status == wire.OK and reply.type == wire.REPLY, reply
        assert obs.probe_answered
    # The server closed its copies once the call was answered.
    for r, _ in pipes:
        assert pipe_closed_everywhere(r), f"{who} kept a received fd open"
        os.close(r)
    fake.assert_clean()
    assert settle_fds(fake.pid, fds_before) <= fds_before


@pytest.mark.parametrize("who", ["libvirtd", "ours"])
def test_fd_sent_with_an_ordinary_call_is_dropped(servers: dict[str, str], fake: FakeDaemon, procs: dict[str, int], who: str) -> None:
    r, w = os.pipe()
    with opened(servers[who], procs) as peer:
        frame = version_call(procs, 3)
        peer.sock.sendmsg([frame], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack("i", w))])
        os.close(w)
        obs = peer.probe(version_call(procs, PROBE_SERIAL))
        (reply,) = obs.replies(3)
        assert reply.status == wire.OK
    assert pipe_closed_everywhere(r), f"{who} kept an fd nobody asked for"
    os.close(r)
    fake.assert_clean()


@pytest.mark.parametrize("who", ["libvirtd", "ours"])
def test_call_with_fds_missing_one_fd_is_closed(servers: dict[str, str], fake: FakeDaemon, procs: dict[str, int], who: str) -> None:
    """Two fds declared, one carrier byte with an fd and one without: libvirtd drops the client."""
    r, w = os.pipe()
    with opened(servers[who], procs) as peer:
        peer.send(wire.frame(procs["REMOTE_PROC_CONNECT_GET_VERSION"], wire.xdr_uint(2), serial=3, mtype=wire.CALL_WITH_FDS))
        peer.send_fd(w)
        os.close(w)
        time.sleep(0.1)  # the fd's byte and the bare one arrive in separate reads
        peer.send(b"\0")
        obs = peer.probe(version_call(procs, PROBE_SERIAL))
        assert obs.outcome() == "close", obs
    assert pipe_closed_everywhere(r), f"{who} kept the fd of a connection it dropped"
    os.close(r)
    assert_served(servers[who], procs)
    fake.assert_clean()


@pytest.mark.parametrize("who", ["libvirtd", "ours"])
def test_call_with_fds_waiting_for_its_fd_blocks_only_its_connection(
    servers: dict[str, str], fake: FakeDaemon, procs: dict[str, int], who: str
) -> None:
    with opened(servers[who], procs) as peer:
        peer.send(wire.frame(procs["REMOTE_PROC_CONNECT_GET_VERSION"], wire.xdr_uint(1), serial=3, mtype=wire.CALL_WITH_FDS))
        assert peer.silent_for(0.3)
        assert_served(servers[who], procs)
        r, w = os.pipe()
        peer.send_fd(w)
        os.close(w)
        reply = peer.read_until(lambda fs: any(f.serial == 3 for f in fs)).replies(3)
        assert reply and reply[0].status == wire.OK
    assert pipe_closed_everywhere(r)
    os.close(r)
    fake.assert_clean()


# ---------------------------------------------------------------------------
# Floods: many idle connections; connections opened and closed in a hurry.

IDLE = 1000


@pytest.fixture(scope="module")
def enough_fds() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 3 * IDLE + 256
    if soft < wanted:
        if hard != resource.RLIM_INFINITY and hard < wanted:
            pytest.fail(f"need {wanted} file descriptors, the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


@pytest.fixture
def fresh_fake() -> Iterator[FakeDaemon]:
    """A server of ours that has served nothing yet (its memory figures start clean)."""
    yield from running_fake()


@pytest.mark.parametrize("who", ["libvirtd", "ours"])
def test_flood_of_idle_connections(
    enough_fds: None, fresh_fake: FakeDaemon, libvirtd: Daemon, procs: dict[str, int], who: str
) -> None:
    fake = fresh_fake
    servers = {"libvirtd": libvirtd.socket_path, "ours": fake.socket_path}
    pid = fake.pid if who == "ours" else libvirtd.process.pid
    assert_served(servers[who], procs)  # first-call allocations are not the flood's
    rss_before = rss_kib(pid)
    fds_before = open_fds(pid)
    idle = []
    try:
        for _ in range(IDLE):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(servers[who])
            idle.append(s)
        assert_served(servers[who], procs)
        time.sleep(0.2)
        per_connection = (rss_kib(pid) - rss_before) * KIB / IDLE
        print(f"\n{who}: {IDLE} idle connections cost {per_connection / KIB:.1f} KiB each")
        if who == "ours":
            assert per_connection < 16 * KIB
    finally:
        for s in idle:
            s.close()
    assert_served(servers[who], procs)
    if who == "ours":
        assert settle_fds(pid, fds_before) <= fds_before
        fake.assert_clean()


def churn(fake: FakeDaemon, procs: dict[str, int], count: int = 2000) -> None:
    """``count`` short connections, every other one sending a call before closing."""
    for i in range(count):
        with RawPeer(fake.socket_path) as peer:
            if i % 2:
                peer.send(version_call(procs, 1))
    assert_served(fake.socket_path, procs)


def test_connection_churn_leaks_nothing(fake: FakeDaemon, procs: dict[str, int]) -> None:
    fds_before = open_fds(fake.pid)
    # The first burst raises the allocator's high-water mark (memory Python frees is
    # kept for reuse, not returned): a leak is what grows after it, burst after burst.
    churn(fake, procs)
    assert settle_fds(fake.pid, fds_before) <= fds_before
    rss_before = rss_kib(fake.pid)
    churn(fake, procs)
    assert settle_fds(fake.pid, fds_before) <= fds_before
    grown = rss_kib(fake.pid) - rss_before
    assert grown < 8 * KIB, f"2000 short connections grew our server by {grown} KiB"
    fake.assert_clean()


# ---------------------------------------------------------------------------
# max_clients: libvirtd stops accepting at the limit; a waiting client is served once one leaves.


@pytest.fixture(scope="module")
def small_libvirtd() -> Iterator[Daemon]:
    require_peer_environment()
    daemon = start_libvirtd(extra_config="max_clients = 3\nmax_anonymous_clients = 3\n")
    try:
        yield daemon
    finally:
        daemon.stop()


@pytest.fixture(scope="module")
def small_fake() -> Iterator[FakeDaemon]:
    yield from running_fake("--max-clients", "3")


@pytest.mark.parametrize("who", ["libvirtd", "ours"])
def test_max_clients_makes_the_next_client_wait(
    small_libvirtd: Daemon, small_fake: FakeDaemon, procs: dict[str, int], who: str
) -> None:
    path = small_libvirtd.socket_path if who == "libvirtd" else small_fake.socket_path
    first = [opened(path, procs) for _ in range(3)]
    waiting = RawPeer(path)  # the kernel accepts it into the backlog
    waiting.send(version_call(procs, 9))
    assert waiting.silent_for(0.5), f"{who} served a client beyond max_clients"
    first[0].close()
    reply = waiting.read_until(lambda fs: any(f.serial == 9 for f in fs)).replies(9)
    assert reply, f"{who} did not serve the waiting client once a slot was free"
    for peer in first[1:] + [waiting]:
        peer.close()


def test_an_idle_connection_costs_a_few_kib(enough_fds: None) -> None:
    """Python memory one idle connection takes in our server (tracemalloc: RSS hides small costs)."""

    async def handler(conn: ServerConnection, call: ev.IncomingCall) -> bytes:
        return b""

    server = ServerThread(lambda path: serve_unix(path, handler))
    idle = []
    try:
        with traced() as t:
            for _ in range(IDLE):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(server.socket_path)
                idle.append(s)

            async def accepted() -> int:
                for _ in range(500):
                    if len(server.server.connections) == IDLE:
                        break
                    await asyncio.sleep(0.01)
                return len(server.server.connections)

            assert server.run(accepted) == IDLE
        per_connection = t.current / IDLE
        print(f"\nours: an idle connection holds {per_connection / KIB:.1f} KiB of Python memory")
        assert per_connection < 8 * KIB
    finally:
        for s in idle:
            s.close()
        server.stop()


def test_out_of_descriptors_makes_clients_wait_not_fail(procs: dict[str, int]) -> None:
    """With its descriptors used up, our server leaves new clients in the backlog and serves them later."""
    daemon = FakeDaemon(fd_limit=64)
    try:
        crowd = []
        for _ in range(80):  # more than the server can hold open
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(daemon.socket_path)
            crowd.append(s)
        time.sleep(0.5)
        late = RawPeer(daemon.socket_path)
        late.send(version_call(procs, 9))
        assert late.silent_for(0.3)  # waiting in the backlog: no descriptor to accept it with
        for s in crowd:
            s.close()
        reply = late.read_until(lambda fs: any(f.serial == 9 for f in fs)).replies(9)
        assert reply and reply[0].status == wire.OK
        late.close()
        daemon.assert_clean()
    finally:
        assert daemon.stop() == 0
        daemon.cleanup()


def test_a_handler_takes_the_fds_of_its_call() -> None:
    """take_fds(): the call's fds become the handler's; the others are closed by the server."""

    async def handler(conn: ServerConnection, call: ev.IncomingCall) -> bytes:
        if call.proc == 1:
            (fd,) = take_fds()
            try:
                return os.read(fd, 100)
            finally:
                os.close(fd)
        return b"untaken"

    server = ServerThread(lambda path: serve_unix(path, handler))
    try:
        r, w = os.pipe()
        os.write(w, b"through the fd")
        os.close(w)
        r2, w2 = os.pipe()
        with RawPeer(server.socket_path) as peer:
            peer.send(wire.frame(1, wire.xdr_uint(1), serial=3, mtype=wire.CALL_WITH_FDS))
            peer.send_fd(r)
            os.close(r)
            assert peer.read_until(lambda fs: any(f.serial == 3 for f in fs)).replies(3)[0].payload == b"through the fd"
            peer.send(wire.frame(2, wire.xdr_uint(1), serial=4, mtype=wire.CALL_WITH_FDS))
            peer.send_fd(w2)
            os.close(w2)
            assert peer.read_until(lambda fs: any(f.serial == 4 for f in fs)).replies(4)[0].payload == b"untaken"
        assert pipe_closed_everywhere(r2), "the server kept an fd no handler took"
        os.close(r2)
    finally:
        server.stop()


@pytest.mark.parametrize("who", ["libvirtd", "ours"])
def test_the_largest_legal_frame_is_read_and_answered(servers: dict[str, str], fake: FakeDaemon, procs: dict[str, int], who: str) -> None:
    """A CALL of exactly 32 MiB + 4 bytes (the length word's maximum) is read whole and answered."""
    payload = bytes(wire.FRAME_MAX - wire.PREFIX_SIZE)  # a name string of length 0, then zeros: extra bytes
    rss_before = rss_kib(fake.pid)
    with opened(servers[who], procs) as peer:
        peer.send(wire.frame(procs["REMOTE_PROC_CONNECT_GET_LIB_VERSION"], payload, serial=3))
        reply = peer.read_until(lambda fs: any(f.serial == 3 for f in fs), timeout=60).replies(3)
        assert reply, f"{who} did not answer a frame of the largest legal length"
        assert peer.call(procs["REMOTE_PROC_CONNECT_GET_LIB_VERSION"], serial=4).status == wire.OK
    fake.assert_clean()
    if who == "ours":  # the 32 MiB came and went: the idle connection gave its buffer back
        assert rss_kib(fake.pid) - rss_before < 48 << 10
