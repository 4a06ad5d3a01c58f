"""Streams misused and cut off: ours against libvirtd 9.0.

Downloads are domain screenshots (libvirtd's test driver, our example
daemon); uploads are volume uploads (libvirtd's storage driver in the storage
daemon, our example daemon's in-memory volume).  Each misuse is sent to both;
the answers on the stream's serial (STREAM ERROR, STREAM OK, REPLY ERROR,
nothing, or a closed connection) must be of the same kind, with the same
error code and domain.  Then the connection still answers calls, other
connections are unaffected, and our server logs nothing unhandled.
"""

from __future__ import annotations

import itertools
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from hostile import wire
from hostile.fixtures import fake, procs  # noqa: F401  (fixtures)
from hostile.memory import open_fds, rss_kib
from hostile.rawpeer import PROBE_SERIAL, Observation, RawPeer
from hostile.servers import FakeDaemon
from peers.daemons import Daemon
from peers.fixtures import libvirtd, storage_daemon  # noqa: F401  (fixtures)

S = 10  # serial of the stream call
KIB = 1024
_names = itertools.count()


@dataclass
class Target:
    """Where to open streams: a socket, the URI to open, and how to build the stream call."""

    path: str
    uri: bytes
    #: (peer, procs) -> (procedure, args) of the stream call, after any set-up calls.
    prepare: Callable[[RawPeer, dict[str, int]], tuple[int, bytes]]


def open_peer(target: Target, procs: dict[str, int]) -> RawPeer:
    peer = RawPeer(target.path)
    assert peer.call(procs["REMOTE_PROC_CONNECT_OPEN"], wire.xdr_opt_string(target.uri) + wire.xdr_uint(0)).status == wire.OK
    return peer


def screenshot_of(name: bytes) -> Callable[[RawPeer, dict[str, int]], tuple[int, bytes]]:
    def prepare(peer: RawPeer, procs: dict[str, int]) -> tuple[int, bytes]:
        dom = peer.call(procs["REMOTE_PROC_DOMAIN_LOOKUP_BY_NAME"], wire.xdr_opaque(name), serial=2)
        assert dom.status == wire.OK
        return procs["REMOTE_PROC_DOMAIN_SCREENSHOT"], dom.payload + wire.xdr_uint(0) + wire.xdr_uint(0)

    return prepare


def upload_to(pool_name: bytes, pool_xml: bytes | None, vol_name: Callable[[], bytes] | bytes, sparse: bool
              ) -> Callable[[RawPeer, dict[str, int]], tuple[int, bytes]]:
    def prepare(peer: RawPeer, procs: dict[str, int]) -> tuple[int, bytes]:
        pool = peer.call(procs["REMOTE_PROC_STORAGE_POOL_LOOKUP_BY_NAME"], wire.xdr_opaque(pool_name), serial=2)
        if pool.status != wire.OK:
            assert pool_xml is not None
            pool = peer.call(procs["REMOTE_PROC_STORAGE_POOL_CREATE_XML"], wire.xdr_opaque(pool_xml) + wire.xdr_uint(0), serial=3)
        assert pool.status == wire.OK, wire.parse_error(pool.payload)
        if callable(vol_name):
            xml = (b"<volume><name>" + vol_name() + b"</name><capacity>1048576</capacity><allocation>0</allocation>"
                   b"<target><format type='raw'/></target></volume>")
            vol = peer.call(procs["REMOTE_PROC_STORAGE_VOL_CREATE_XML"], pool.payload + wire.xdr_opaque(xml) + wire.xdr_uint(0), serial=4)
        else:
            vol = peer.call(procs["REMOTE_PROC_STORAGE_VOL_LOOKUP_BY_NAME"], pool.payload + wire.xdr_opaque(vol_name), serial=4)
        assert vol.status == wire.OK, wire.parse_error(vol.payload)
        return procs["REMOTE_PROC_STORAGE_VOL_UPLOAD"], vol.payload + struct.pack(">QQI", 0, 1048576, int(sparse))

    return prepare


def fresh_volume() -> bytes:
    return b"v%d.img" % next(_names)


@pytest.fixture(scope="module")
def downloads(libvirtd: Daemon, fake: FakeDaemon) -> dict[str, Target]:
    return {
        "libvirtd": Target(libvirtd.socket_path, b"test:///default", screenshot_of(b"test")),
        "ours": Target(fake.socket_path, b"test:///default", screenshot_of(b"web")),
    }


def upload_targets(storage_daemon: Daemon, fake: FakeDaemon, sparse: bool) -> dict[str, Target]:
    xml = b"<pool type='dir'><name>xh</name><target><path>" + storage_daemon.extra["pool_dir"].encode() + b"</path></target></pool>"
    return {
        "libvirtd": Target(storage_daemon.socket_path, storage_daemon.uri.encode(), upload_to(b"xh", xml, fresh_volume, sparse)),
        "ours": Target(fake.socket_path, b"test:///default", upload_to(b"fakepool", None, b"disk0.img", sparse)),
    }


@pytest.fixture(scope="module")
def uploads(storage_daemon: Daemon, fake: FakeDaemon) -> dict[str, Target]:
    return upload_targets(storage_daemon, fake, sparse=False)


@pytest.fixture(scope="module")
def sparse_uploads(storage_daemon: Daemon, fake: FakeDaemon) -> dict[str, Target]:
    return upload_targets(storage_daemon, fake, sparse=True)


def stream_frame(proc: int, payload: bytes = b"", status: int = wire.CONTINUE, mtype: int = wire.STREAM) -> bytes:
    return wire.frame(proc, payload, serial=S, mtype=mtype, status=status)


def hole(length: int) -> bytes:
    return struct.pack(">qI", length, 0)


@dataclass
class Answer:
    kind: str  # "stream error", "stream ok", "reply error", "nothing", "close"
    code: tuple[int, int] | None = None


def answer_on_stream(obs: Observation) -> Answer:
    """What the server said on the stream's serial after the misuse (data frames aside)."""
    if obs.closed and not obs.probe_answered:
        return Answer("close")
    said = [f for f in obs.frames if f.serial == S and not (f.type == wire.STREAM and f.status == wire.CONTINUE)]
    assert len(said) <= 1, said
    if not said:
        return Answer("nothing")
    f = said[0]
    if f.type == wire.STREAM and f.status == wire.OK:
        return Answer("stream ok")
    err = wire.parse_error(f.payload)
    return Answer("stream error" if f.type == wire.STREAM else "reply error", (err.code, err.domain))


def run_misuse(target: Target, procs: dict[str, int], after: Callable[[int], list[bytes]], download: bool) -> Answer:
    with open_peer(target, procs) as peer:
        proc, args = target.prepare(peer, procs)
        peer.send(wire.frame(proc, args, serial=S))
        obs = peer.read_until(lambda fs: any(f.serial == S and f.type == wire.REPLY for f in fs))
        (reply,) = obs.replies(S)
        assert reply.status == wire.OK, wire.parse_error(reply.payload)
        if download:  # the whole screenshot, up to its end (an empty CONTINUE)
            seen = obs.frames
            while not any(f.serial == S and f.type == wire.STREAM and not f.payload for f in seen):
                seen = peer.read_until(lambda fs: any(f.serial == S and not f.payload for f in fs)).frames
        for data in after(proc):
            peer.send(data)
        answer = answer_on_stream(peer.probe(wire.frame(procs["REMOTE_PROC_CONNECT_GET_LIB_VERSION"], serial=PROBE_SERIAL), quiet=0.5))
        if answer.kind != "close":
            # The stream is over on the server: a finish now goes unanswered, calls are still answered.
            peer.send(stream_frame(proc, status=wire.OK))
            again = answer_on_stream(peer.probe(wire.frame(procs["REMOTE_PROC_CONNECT_GET_LIB_VERSION"], serial=PROBE_SERIAL), quiet=0.3))
            assert again.kind == "nothing", again
    return answer


@dataclass(frozen=True)
class Misuse:
    name: str
    after: Callable[[int], list[bytes]]
    expect: Answer


RPC_STREAMS = (39, 38)  # VIR_ERR_RPC in VIR_FROM_STREAMS

DOWNLOAD_MISUSE = [
    Misuse("client data on a download", lambda p: [stream_frame(p, b"abcd")], Answer("stream error", RPC_STREAMS)),
    Misuse("hole on a download", lambda p: [stream_frame(p, hole(10), mtype=wire.STREAM_HOLE)], Answer("stream error", RPC_STREAMS)),
    Misuse("unknown status 9", lambda p: [stream_frame(p, status=9)], Answer("stream error", RPC_STREAMS)),
    Misuse("finish", lambda p: [stream_frame(p, status=wire.OK)], Answer("stream ok")),
    Misuse("finish twice", lambda p: [stream_frame(p, status=wire.OK)] * 2, Answer("stream ok")),
    Misuse("abort", lambda p: [stream_frame(p, status=wire.ERROR)], Answer("stream ok")),
    Misuse("abort twice", lambda p: [stream_frame(p, status=wire.ERROR)] * 2, Answer("stream ok")),
    Misuse("packet naming another procedure, then finish",
           lambda p: [wire.frame(p + 1, b"x", serial=S, mtype=wire.STREAM, status=wire.CONTINUE), stream_frame(p, status=wire.OK)],
           Answer("stream ok")),
]

UPLOAD_MISUSE = [
    Misuse("data then finish", lambda p: [stream_frame(p, b"x" * 100), stream_frame(p, status=wire.OK)], Answer("stream ok")),
    Misuse("empty data then finish", lambda p: [stream_frame(p), stream_frame(p, status=wire.OK)], Answer("stream ok")),
    Misuse("data after finish", lambda p: [stream_frame(p, b"x"), stream_frame(p, status=wire.OK), stream_frame(p, b"y")], Answer("stream ok")),
    Misuse("abort", lambda p: [stream_frame(p, b"x"), stream_frame(p, status=wire.ERROR)], Answer("stream ok")),
    Misuse("unknown status 9", lambda p: [stream_frame(p, b"abc", status=9)], Answer("stream error", RPC_STREAMS)),
    Misuse("hole on an upload not opened sparse", lambda p: [stream_frame(p, hole(10), mtype=wire.STREAM_HOLE)], Answer("close")),
    Misuse("more data than the volume takes", lambda p: [stream_frame(p, b"x" * 262144)] * 5, Answer("stream error", (38, 38))),
]

SPARSE_UPLOAD_MISUSE = [
    Misuse("hole then finish", lambda p: [stream_frame(p, hole(10), mtype=wire.STREAM_HOLE), stream_frame(p, status=wire.OK)],
           Answer("stream ok")),
    Misuse("hole of 8 bytes", lambda p: [stream_frame(p, bytes(8), mtype=wire.STREAM_HOLE)], Answer("close")),
    Misuse("hole of negative length", lambda p: [stream_frame(p, hole(-10), mtype=wire.STREAM_HOLE)], Answer("reply error", (1, 7))),
]


def compare(targets: dict[str, Target], procs: dict[str, int], fake: FakeDaemon, case: Misuse, download: bool) -> None:
    theirs = run_misuse(targets["libvirtd"], procs, case.after, download)
    assert theirs == case.expect, f"libvirtd 9.0 now answers {theirs}"
    ours = run_misuse(targets["ours"], procs, case.after, download)
    assert ours == case.expect, f"ours: {ours}"
    fake.assert_clean()


@pytest.mark.parametrize("case", DOWNLOAD_MISUSE, ids=[c.name for c in DOWNLOAD_MISUSE])
def test_download_misuse(downloads: dict[str, Target], procs: dict[str, int], fake: FakeDaemon, case: Misuse) -> None:
    compare(downloads, procs, fake, case, download=True)


@pytest.mark.parametrize("case", UPLOAD_MISUSE, ids=[c.name for c in UPLOAD_MISUSE])
def test_upload_misuse(uploads: dict[str, Target], procs: dict[str, int], fake: FakeDaemon, case: Misuse) -> None:
    compare(uploads, procs, fake, case, download=False)


@pytest.mark.parametrize("case", SPARSE_UPLOAD_MISUSE, ids=[c.name for c in SPARSE_UPLOAD_MISUSE])
def test_sparse_upload_misuse(sparse_uploads: dict[str, Target], procs: dict[str, int], fake: FakeDaemon, case: Misuse) -> None:
    compare(sparse_uploads, procs, fake, case, download=False)


# ---------------------------------------------------------------------------
# Disconnects at every point of a stream.


def assert_served(target: Target, procs: dict[str, int]) -> None:
    with open_peer(target, procs) as other:
        assert other.call(procs["REMOTE_PROC_CONNECT_GET_LIB_VERSION"], serial=77).status == wire.OK


@pytest.mark.parametrize("who", ["libvirtd", "ours"])
def test_disconnect_at_every_point_of_a_download(downloads: dict[str, Target], procs: dict[str, int], fake: FakeDaemon,
                                                 who: str) -> None:
    target = downloads[who]
    fds_before, rss_before = open_fds(fake.pid), rss_kib(fake.pid)
    read_sizes = [0, 1, 28, 29, 100, 4096, 30000, 65536, 200000]
    for size in read_sizes:
        for finish_first in (False, True):
            peer = open_peer(target, procs)
            proc, args = target.prepare(peer, procs)
            peer.send(wire.frame(proc, args, serial=S))
            got = 0
            peer.sock.settimeout(0.5)
            try:
                while got < size:  # the whole screenshot may be smaller
                    data = peer.sock.recv(min(65536, size - got))
                    if not data:
                        break
                    got += len(data)
            except TimeoutError:
                pass
            if finish_first:
                peer.send(stream_frame(proc, status=wire.ERROR))
            peer.close()
    assert_served(target, procs)
    fake.assert_clean()
    if who == "ours":
        assert settle(lambda: open_fds(fake.pid) <= fds_before)
        assert rss_kib(fake.pid) - rss_before < 16 * KIB


@pytest.mark.parametrize("who", ["libvirtd", "ours"])
def test_disconnect_at_every_point_of_an_upload(uploads: dict[str, Target], procs: dict[str, int], fake: FakeDaemon,
                                                storage_daemon: Daemon, who: str) -> None:
    target = uploads[who]
    fds_before, rss_before = open_fds(fake.pid), rss_kib(fake.pid)
    # The bytes of a whole upload: the call, two data frames, the finish.
    with open_peer(target, procs) as peer:
        proc, args = target.prepare(peer, procs)
    whole_len = len(wire.frame(proc, args, serial=S)) + 2 * len(stream_frame(proc, b"d" * 64)) + len(stream_frame(proc, status=wire.OK))
    # Every byte for ours; every 5th (and the frame boundaries) for libvirtd, which makes a volume each time.
    cuts = range(whole_len + 1) if who == "ours" else sorted(set(range(0, whole_len + 1, 5)) | {whole_len})
    for cut in cuts:
        try:
            with open_peer(target, procs) as peer:
                proc, args = target.prepare(peer, procs)
                whole = (wire.frame(proc, args, serial=S) + stream_frame(proc, b"d" * 64) * 2 + stream_frame(proc, status=wire.OK))
                peer.send(whole[:cut])
        except AssertionError as error:
            # Say which peer failed where, and whether libvirtd is still running.
            state = f"exit status {(storage_daemon.process if who == 'libvirtd' else fake.process).poll()}"
            diag = storage_daemon.diagnostics() if who == "libvirtd" else ""
            raise AssertionError(f"{who}, after the cut at byte {cut} of {whole_len}: {error}; {state}\n{diag}") from None
    assert_served(target, procs)
    fake.assert_clean()
    if who == "ours":
        assert settle(lambda: open_fds(fake.pid) <= fds_before)
        assert rss_kib(fake.pid) - rss_before < 16 * KIB


def settle(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True
