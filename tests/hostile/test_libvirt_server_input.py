"""Bad input to the libvirt server: each case is sent to real libvirtd 9.0 and to ours.

Every case asserts that libvirtd does what the table in docs/libvirt.md says
(error reply, ignore or close), that our server does the same, that error
replies carry the same code and domain, that the connection (when kept) still
answers calls, that another connection is unaffected, and that our server
logged no unhandled exception.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from hostile import wire
from hostile.fixtures import fake, procs  # noqa: F401  (fixtures)
from hostile.rawpeer import PROBE_SERIAL, Observation, RawPeer
from hostile.servers import FakeDaemon
from peers.daemons import Daemon
from peers.fixtures import libvirtd  # noqa: F401  (fixture)

VIR_ERR_RPC = 39
VIR_FROM_RPC = 7
HOSTILE_SERIAL = 2


def opened(path: str, procs: dict[str, int]) -> RawPeer:
    """A connection that has done what every client does first: connect_open."""
    peer = RawPeer(path)
    payload = wire.xdr_opt_string(b"test:///default") + wire.xdr_uint(0)
    reply = peer.call(procs["REMOTE_PROC_CONNECT_OPEN"], payload, serial=1)
    assert reply.status == wire.OK
    return peer


def probe_frame(procs: dict[str, int]) -> bytes:
    return wire.frame(procs["REMOTE_PROC_CONNECT_GET_VERSION"], serial=PROBE_SERIAL)


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[dict[str, int]], bytes]
    #: reply / ignore / close: what libvirtd 9.0 does (and so must we).
    expect: str
    #: For error replies: the message both must send, when it is fixed by libvirtd.
    message: bytes | None = None


def gv(procs: dict[str, int]) -> int:
    return procs["REMOTE_PROC_CONNECT_GET_VERSION"]


def h(proc: Callable[[dict[str, int]], int], payload: bytes = b"", **kw: int) -> Callable[[dict[str, int]], bytes]:
    return lambda procs: wire.frame(proc(procs), payload, serial=HOSTILE_SERIAL, **kw)


CASES = [
    Case("wrong program", h(gv, prog=0x1234), "reply", b"Cannot find program 4660 version 1"),
    Case("wrong version", h(gv, vers=2), "reply", b"Cannot find program 536903814 version 2"),
    Case("CALL with status ERROR", h(gv, status=wire.ERROR), "reply", b"Unexpected message status 1"),
    Case("CALL with status CONTINUE", h(gv, status=wire.CONTINUE), "reply", b"Unexpected message status 2"),
    Case("CALL with unknown status 7", h(gv, status=7), "reply", b"Unexpected message status 7"),
    Case("unknown procedure", h(lambda p: 99999), "reply", b"unknown procedure: 99999"),
    Case("negative procedure", h(lambda p: -5), "reply", b"unknown procedure: -5"),
    Case("unknown message type 9", h(gv, mtype=9), "ignore"),
    Case("REPLY towards the server", h(gv, mtype=wire.REPLY), "ignore"),
    Case("REPLY_WITH_FDS towards the server", h(gv, b"\0\0\0\1", mtype=wire.REPLY_WITH_FDS), "ignore"),
    Case("MESSAGE towards the server", h(gv, mtype=wire.MESSAGE), "ignore"),
    Case("STREAM data for a serial with no stream", h(gv, b"data", mtype=wire.STREAM, status=wire.CONTINUE), "ignore"),
    Case("STREAM finish for a serial with no stream", h(gv, mtype=wire.STREAM, status=wire.OK), "ignore"),
    Case("STREAM abort for a serial with no stream", h(gv, mtype=wire.STREAM, status=wire.ERROR), "ignore"),
    Case("STREAM_HOLE for a serial with no stream", h(gv, bytes(12), mtype=wire.STREAM_HOLE, status=wire.CONTINUE), "ignore"),
    Case("STREAM with unknown status 9, no stream", h(gv, mtype=wire.STREAM, status=9), "ignore"),
    Case("wrong program, not a CALL", h(gv, prog=0x1234, mtype=wire.MESSAGE), "ignore"),
    Case("keepalive program as a CALL", h(lambda p: 1, prog=wire.KEEPALIVE_PROGRAM), "reply",
         b"Cannot find program 1801807216 version 1"),
    Case("keepalive unknown procedure 7", h(lambda p: 7, prog=wire.KEEPALIVE_PROGRAM, mtype=wire.MESSAGE), "ignore"),
    Case("keepalive version 2", h(lambda p: 1, prog=wire.KEEPALIVE_PROGRAM, vers=2, mtype=wire.MESSAGE), "ignore"),
    Case("keepalive PONG unasked", h(lambda p: 2, prog=wire.KEEPALIVE_PROGRAM, mtype=wire.MESSAGE), "ignore"),
    Case("length word 0", lambda p: wire.xdr_uint(0), "close"),
    Case("length word 3", lambda p: wire.xdr_uint(3), "close"),
    Case("length word 4 (no header)", lambda p: wire.xdr_uint(4), "close"),
    Case("length word 27 (header cut short)", lambda p: wire.xdr_uint(27) + bytes(23), "close"),
    Case("length word one over the maximum", lambda p: wire.xdr_uint(wire.FRAME_MAX + 1), "close"),
    Case("length word 0xFFFFFFFF", lambda p: wire.xdr_uint(0xFFFFFFFF), "close"),
    Case("arguments cut short", h(lambda p: p["REMOTE_PROC_DOMAIN_LOOKUP_BY_NAME"], b"\0\0\0\7abc"), "reply"),
    Case("string length beyond the payload", h(lambda p: p["REMOTE_PROC_DOMAIN_LOOKUP_BY_NAME"], b"\xff\xff\xff\xf0"), "reply"),
    Case("CALL_WITH_FDS without the fd count", h(gv, mtype=wire.CALL_WITH_FDS), "close"),
    Case("CALL_WITH_FDS with 33 fds declared", h(gv, wire.xdr_uint(33), mtype=wire.CALL_WITH_FDS), "close"),
    Case("CALL_WITH_FDS declaring 0 fds", h(gv, wire.xdr_uint(0), mtype=wire.CALL_WITH_FDS), "reply"),
    Case("CALL_WITH_FDS, carrier byte without its fd", lambda p: h(gv, wire.xdr_uint(1), mtype=wire.CALL_WITH_FDS)(p) + b"\0", "close"),
]


@dataclass
class Seen:
    outcome: str
    obs: Observation


def run_case(path: str, procs: dict[str, int], case: Case) -> Seen:
    with opened(path, procs) as peer:
        peer.send(case.build(procs))
        obs = peer.probe(probe_frame(procs))
        seen = Seen(obs.outcome(), obs)
        if seen.outcome != "close":
            assert obs.probe_answered, f"{case.name}: connection kept but the next call got no answer: {obs}"
    # Another connection is unaffected.
    with opened(path, procs) as other:
        assert other.call(gv(procs), serial=5).status == wire.OK
    return seen


@pytest.fixture(scope="module")
def both(libvirtd: Daemon, fake: FakeDaemon, procs: dict[str, int]) -> Iterator[tuple[Daemon, FakeDaemon, dict[str, int]]]:
    yield libvirtd, fake, procs


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_handled_as_libvirtd_does(both: tuple[Daemon, FakeDaemon, dict[str, int]], case: Case) -> None:
    libvirtd, fake, procs = both
    theirs = run_case(libvirtd.socket_path, procs, case)
    assert theirs.outcome == case.expect, f"libvirtd 9.0 now does {theirs.outcome}: {theirs.obs}"
    ours = run_case(fake.socket_path, procs, case)
    assert ours.outcome == case.expect, f"ours: {ours.outcome}: {ours.obs}"
    if case.expect == "reply":
        (t,) = theirs.obs.replies(HOSTILE_SERIAL)
        (o,) = ours.obs.replies(HOSTILE_SERIAL)
        # The reply names the call as it came: program, version, procedure, serial.
        assert (o.prog, o.vers, o.proc, o.status) == (t.prog, t.vers, t.proc, t.status)
        if t.status == wire.ERROR:
            te, oe = wire.parse_error(t.payload), wire.parse_error(o.payload)
            assert (oe.code, oe.domain, oe.level) == (te.code, te.domain, te.level)
            if case.message is not None:
                assert te.message == case.message
                assert oe == te, "error fields differ from libvirtd's"
    fake.assert_clean()
