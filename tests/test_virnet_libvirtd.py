"""The blocking transport against a real libvirtd (test:///default)."""

from __future__ import annotations

import hashlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from peers.daemons import Daemon, require_peer_environment, start_libvirtd
from peers.fixtures import libvirtd  # noqa: F401  (fixture)
from peers.xdrmini import Reader, Writer, procedure_numbers
from xdrgen.runtime.virnet import events as ev
from xdrgen.runtime.virnet.constants import FEATURE_PROGRAM_KEEPALIVE
from xdrgen.runtime.virnet.core import StreamDirection
from xdrgen.runtime.virnet.errors import CallTimeout, LibvirtError, NotSupportedError, PeerDead
from xdrgen.runtime.virnet.sync import Connection

SCREENSHOT = Path("/usr/share/libvirt/test-screenshot.png")
WAIT = 20.0  # bound for waiting on the daemon's asynchronous traffic


@pytest.fixture(scope="module")
def procs(remote_protocol_x: Path) -> dict[str, int]:
    return procedure_numbers(remote_protocol_x)


@pytest.fixture(scope="module")
def remote_protocol_x() -> Path:  # module-scoped twin of the conftest fixture
    from conftest import require_shared

    return require_shared("libvirt/remote_protocol.x")


def open_test_driver(conn: Connection, procs: dict[str, int]) -> None:
    conn.call(procs["REMOTE_PROC_CONNECT_OPEN"], Writer().opt_string("test:///default").uint(0).bytes())


@pytest.fixture
def conn(libvirtd: Daemon, procs: dict[str, int]) -> Iterator[Connection]:
    c = Connection.connect_unix(libvirtd.socket_path)
    open_test_driver(c, procs)
    yield c
    c.close()


def lookup(conn: Connection, procs: dict[str, int], name: str) -> bytes:
    return conn.call(procs["REMOTE_PROC_DOMAIN_LOOKUP_BY_NAME"], Writer().string(name).bytes()).tobytes()


def test_connect_sequence_as_virsh_does(libvirtd: Daemon, procs: dict[str, int]) -> None:
    with Connection.connect_unix(libvirtd.socket_path) as c:
        r = Reader(c.call(procs["REMOTE_PROC_AUTH_LIST"]))
        assert [r.int() for _ in range(r.uint())] == [0]  # REMOTE_AUTH_NONE, as configured
        assert c.supports_feature(FEATURE_PROGRAM_KEEPALIVE)
        open_test_driver(c, procs)
        c.call(procs["REMOTE_PROC_CONNECT_REGISTER_CLOSE_CALLBACK"])
        assert Reader(c.call(procs["REMOTE_PROC_CONNECT_GET_VERSION"])).uhyper() == 2  # the test driver's version
        c.call(procs["REMOTE_PROC_CONNECT_CLOSE"])


def test_failing_call_raises_the_daemons_error(conn: Connection, procs: dict[str, int]) -> None:
    with pytest.raises(LibvirtError) as info:
        lookup(conn, procs, "no-such-domain")
    err = info.value
    assert not isinstance(err, NotSupportedError)
    assert (err.code, err.domain, err.level) == (42, 12, 2)  # VIR_ERR_NO_DOMAIN, VIR_FROM_TEST, error
    assert "Domain not found" in str(err)
    # the connection stays usable
    assert Reader(conn.call(procs["REMOTE_PROC_CONNECT_GET_VERSION"])).uhyper() == 2


def test_unknown_procedure_is_not_supported(conn: Connection) -> None:
    with pytest.raises(NotSupportedError, match="unknown procedure: 9999"):
        conn.call(9999)


def test_screenshot_stream_matches_the_daemons_file(conn: Connection, procs: dict[str, int]) -> None:
    dom = lookup(conn, procs, "test")
    ret, stream = conn.call_stream(
        procs["REMOTE_PROC_DOMAIN_SCREENSHOT"], dom + Writer().uint(0).uint(0).bytes(), direction=StreamDirection.RECEIVE
    )
    assert Reader(ret).opt_string() == "image/png"
    chunks = list(stream)
    assert all(isinstance(c, memoryview) for c in chunks)
    stream.finish(WAIT)
    data = b"".join(bytes(c) for c in chunks)  # type: ignore[arg-type]
    assert len(data) == 33443
    assert hashlib.sha256(data).digest() == hashlib.sha256(SCREENSHOT.read_bytes()).digest()


def test_concurrent_calls_from_threads_with_a_stream_running(conn: Connection, procs: dict[str, int]) -> None:
    dom = lookup(conn, procs, "test")
    ret, stream = conn.call_stream(
        procs["REMOTE_PROC_DOMAIN_SCREENSHOT"], dom + Writer().uint(0).uint(0).bytes(), direction=StreamDirection.RECEIVE
    )
    results: list[str] = []
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            for _ in range(10):
                name = Reader(conn.call(procs["REMOTE_PROC_CONNECT_GET_HOSTNAME"])).string()
                results.append(name)
                with pytest.raises(LibvirtError):
                    lookup(conn, procs, f"missing-{i}")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    data = b"".join(bytes(c) for c in stream)  # type: ignore[arg-type]
    for t in threads:
        t.join(WAIT)
    stream.finish(WAIT)
    assert errors == []
    assert len(results) == 80 and len(set(results)) == 1
    assert data == SCREENSHOT.read_bytes()


def test_lifecycle_events_arrive_while_calls_run(conn: Connection, procs: dict[str, int]) -> None:
    got: list[ev.EventMessage] = []
    arrived = threading.Condition()

    def on_event(e: ev.EventMessage) -> None:
        with arrived:
            got.append(ev.EventMessage(e.prog, e.proc, memoryview(e.payload.tobytes())))
            arrived.notify_all()

    conn.add_event_callback(on_event)
    reg = conn.call(
        procs["REMOTE_PROC_CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY"], Writer().int(0).uint(0).bytes()
    )  # VIR_DOMAIN_EVENT_ID_LIFECYCLE, any domain
    callback_id = Reader(reg).int()
    dom = lookup(conn, procs, "test")
    conn.call(procs["REMOTE_PROC_DOMAIN_SUSPEND"], dom)
    conn.call(procs["REMOTE_PROC_DOMAIN_RESUME"], dom)
    with arrived:
        assert arrived.wait_for(lambda: len(got) >= 2, WAIT)
    decoded = []
    for e in got[:2]:
        assert e.proc == procs["REMOTE_PROC_DOMAIN_EVENT_CALLBACK_LIFECYCLE"]
        r = Reader(e.payload)
        cb, name = r.int(), r.string()
        r.opaque_fixed(16)
        r.int()
        decoded.append((cb, name, r.int()))
    assert decoded == [(callback_id, "test", 3), (callback_id, "test", 4)]  # SUSPENDED, RESUMED


def test_daemon_keepalive_ping_is_answered(conn: Connection) -> None:
    # The fixture's daemon pings after 1 s of silence once keepalive is on.
    assert conn.supports_feature(FEATURE_PROGRAM_KEEPALIVE)
    deadline = time.monotonic() + WAIT
    while conn.pings_answered < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert conn.pings_answered >= 2
    assert conn.error is None  # the daemon did not drop us: our PONGs arrived


def test_own_keepalive_detects_a_frozen_daemon(procs: dict[str, int]) -> None:
    require_peer_environment()
    daemon = start_libvirtd()
    try:
        c = Connection.connect_unix(daemon.socket_path)
        open_test_driver(c, procs)
        assert c.start_keepalive(interval=0.2, count=2)
        os.kill(daemon.process.pid, signal.SIGSTOP)
        try:
            deadline = time.monotonic() + WAIT
            while c.error is None and time.monotonic() < deadline:
                time.sleep(0.05)
            assert isinstance(c.error, PeerDead)
            with pytest.raises(PeerDead):
                c.call(procs["REMOTE_PROC_CONNECT_GET_VERSION"])
        finally:
            os.kill(daemon.process.pid, signal.SIGCONT)
        c.close()
    finally:
        daemon.stop()


def register_lifecycle(c: Connection, procs: dict[str, int]) -> int:
    reg = c.call(procs["REMOTE_PROC_CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY"], Writer().int(0).uint(0).bytes())
    return Reader(reg).int()


def lifecycle_detail(e: ev.EventMessage) -> int:
    r = Reader(e.payload)
    r.int()
    r.string()
    r.opaque_fixed(16)
    r.int()
    return r.int()


def test_event_callback_may_call_the_connection(conn: Connection, procs: dict[str, int]) -> None:
    # Callbacks run outside the connection's locks and outside the reader role:
    # a callback that calls back used to deadlock the reader thread.
    answers: list[int] = []
    done = threading.Event()

    def on_event(e: ev.EventMessage) -> None:
        answers.append(Reader(conn.call(procs["REMOTE_PROC_CONNECT_GET_VERSION"], timeout=WAIT)).uhyper())
        done.set()
        raise RuntimeError("a failing callback")

    conn.add_event_callback(on_event)
    register_lifecycle(conn, procs)
    dom = lookup(conn, procs, "test")
    conn.call(procs["REMOTE_PROC_DOMAIN_SUSPEND"], dom)
    try:
        assert done.wait(WAIT)
        assert answers[0] == 2
    finally:
        conn.call(procs["REMOTE_PROC_DOMAIN_RESUME"], dom)
    assert conn.error is None
    assert any(isinstance(e, RuntimeError) for e in conn.callback_errors)


def test_slow_event_callback_pauses_reading_and_loses_nothing(libvirtd: Daemon, procs: dict[str, int]) -> None:
    # With at most 2 events waiting for a stuck callback, the connection stops
    # reading (a call then cannot complete); once the callback moves on, every
    # event arrives, in order.
    c = Connection.connect_unix(libvirtd.socket_path, event_backlog=2)
    release = threading.Event()
    details: list[int] = []
    arrived = threading.Condition()

    def on_event(e: ev.EventMessage) -> None:
        release.wait(WAIT)
        with arrived:
            details.append(lifecycle_detail(e))
            arrived.notify_all()

    try:
        open_test_driver(c, procs)
        c.add_event_callback(on_event)
        register_lifecycle(c, procs)
        dom = lookup(c, procs, "test")
        toggles = [procs["REMOTE_PROC_DOMAIN_SUSPEND"], procs["REMOTE_PROC_DOMAIN_RESUME"]]
        issued = 0
        with pytest.raises(CallTimeout):
            for i in range(40):
                issued += 1  # counted before: a call that times out still ran on the daemon
                c.call(toggles[i % 2], dom, timeout=2.0)
        assert issued < 40
        assert details == []
        release.set()
        with arrived:
            assert arrived.wait_for(lambda: len(details) >= issued, WAIT)
        assert details == [3, 4] * (issued // 2) + [3] * (issued % 2)  # SUSPENDED, RESUMED, ...
        if issued % 2:
            c.call(toggles[1], dom, timeout=WAIT)
        assert c.error is None
    finally:
        release.set()
        c.close()
