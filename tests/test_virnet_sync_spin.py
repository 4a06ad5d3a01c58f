"""The blocking transport's reply wait: brief polling, then a blocking receive.

The budget's adaptation is checked step by step (no clocks involved); both
ways of waiting are checked against a real libvirtd.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from peers.daemons import Daemon
from peers.fixtures import libvirtd  # noqa: F401  (fixture)
from peers.xdrmini import Reader, Writer, procedure_numbers
from xdrgen.runtime.virnet import sync
from xdrgen.runtime.virnet.sync import Connection


@pytest.fixture
def idle_conn() -> Iterator[Connection]:
    a, b = socket.socketpair()
    conn = Connection(a)
    yield conn
    conn.close()
    b.close()


def test_slow_replies_switch_polling_off(idle_conn: Connection) -> None:
    assert idle_conn._spin == sync._SPIN_MAX
    budgets = []
    for _ in range(8):
        idle_conn._adapt_spin(10 * sync._SPIN_HIT)
        budgets.append(idle_conn._spin)
    assert budgets == sorted(budgets, reverse=True)
    assert budgets[0] < sync._SPIN_MAX
    assert budgets[-1] == 0.0


def test_a_quick_reply_after_blocking_turns_polling_back_on(idle_conn: Connection) -> None:
    idle_conn._spin = 0.0
    idle_conn._adapt_spin(sync._SPIN_HIT / 2)
    assert 0.0 < idle_conn._spin <= sync._SPIN_MAX
    for _ in range(8):
        idle_conn._adapt_spin(sync._SPIN_HIT / 2)
    assert idle_conn._spin == sync._SPIN_MAX


def test_polling_gives_up_and_returns_nothing_when_no_reply_comes(idle_conn: Connection) -> None:
    idle_conn._spin = 20e-6
    view = memoryview(bytearray(64))
    assert idle_conn._spin_recv(view) is None
    idle_conn._spin = 0.0
    assert idle_conn._spin_recv(view) is None


@pytest.fixture(scope="module")
def procs() -> dict[str, int]:
    from conftest import require_shared

    return procedure_numbers(require_shared("libvirt/remote_protocol.x"))


def connect(daemon: Daemon, procs: dict[str, int]) -> Connection:
    conn = Connection.connect_unix(daemon.socket_path)
    conn.call(procs["REMOTE_PROC_CONNECT_OPEN"], Writer().opt_string("test:///default").uint(0).bytes())
    return conn


def version(conn: Connection, procs: dict[str, int]) -> int:
    r = Reader(conn.call(procs["REMOTE_PROC_CONNECT_GET_VERSION"]))
    v = r.uhyper()
    assert r.done()
    return v


@pytest.mark.parametrize("polling", [True, False], ids=["polling", "blocking"])
def test_sequential_calls_get_their_own_replies(libvirtd: Daemon, procs: dict[str, int], polling: bool) -> None:
    with connect(libvirtd, procs) as conn:
        if not polling:
            conn._adapt_spin = lambda waited: None  # type: ignore[method-assign]
            conn._spin = 0.0
        want = version(conn, procs)
        assert want > 0
        for _ in range(200):
            assert version(conn, procs) == want
        if not polling:
            assert conn._spin == 0.0  # every reply came through the blocking receive


def test_callers_polling_at_once_all_get_their_replies(libvirtd: Daemon, procs: dict[str, int]) -> None:
    results: list[bool] = []
    with connect(libvirtd, procs) as conn:
        want = version(conn, procs)

        def worker() -> None:
            results.append(all(version(conn, procs) == want for _ in range(100)))

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert conn.error is None
    assert results == [True] * 4
