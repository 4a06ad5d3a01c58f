"""Memory follows bytes received, never bytes declared (framing, both roles), and closed connections are freed at once.

The receive buffer of every connection (client and server role share
``FrameBuffer``) may grow only with what arrived; a length word alone commits
nothing.  A closed server connection must be freed by reference counting
alone: the tests run with the cyclic garbage collector disabled.
"""

from __future__ import annotations

import asyncio
import gc
import os
import socket
import struct
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from hostile import wire
from hostile.memory import open_fds, rss_kib, traced
from hostile.rawpeer import RawPeer
from hostile.servers import ServerThread
from xdrgen.runtime.virnet import events as ev
from xdrgen.runtime.virnet.constants import FRAME_MAX
from xdrgen.runtime.virnet.core import StreamDirection, VirNetCore
from xdrgen.runtime.virnet.framing import START_SIZE, FrameBuffer
from xdrgen.runtime.virnet.server import ServerConnection, serve_unix

KIB = 1024


def declared_max_prefix(mtype: int = wire.CALL) -> bytes:
    """A header declaring the largest legal frame, and one byte of its body."""
    return wire.PREFIX.pack(FRAME_MAX, wire.REMOTE_PROGRAM, 1, 4, mtype, 1, 0) + b"x"


@pytest.mark.parametrize("server", [True, False], ids=["server role", "client role"])
def test_a_declared_length_alone_commits_no_memory(server: bool) -> None:
    core = VirNetCore(server=server)
    with traced() as t:
        view = core.get_buffer()
        data = declared_max_prefix(wire.CALL if server else wire.REPLY)
        view[: len(data)] = data
        del view
        core.buffer_updated(len(data))
        core.get_buffer().release()
    assert core.receive_capacity <= 2 * START_SIZE
    assert t.peak < 256 * KIB, f"{t.peak} bytes allocated for 29 bytes received"


@pytest.mark.parametrize("check_header", [True, False])
def test_room_grows_with_what_arrives(check_header: bool) -> None:
    """A 32 MiB frame sent in pieces: storage stays within twice what arrived, plus the read-ahead."""
    buf = FrameBuffer(256 * KIB, check_header=check_header)
    mtype = wire.REPLY if check_header else wire.CALL
    prefix = wire.PREFIX.pack(FRAME_MAX, wire.REMOTE_PROGRAM, 1, 4, mtype, 1, 0)
    received = 0
    chunk = bytes(range(256)) * 256  # 64 KiB
    first = True
    while received < FRAME_MAX:
        view = buf.get_buffer()
        assert buf.capacity <= 2 * max(received, START_SIZE) + 256 * KIB + START_SIZE, (received, buf.capacity)
        piece = (prefix + chunk)[: len(view)] if first else chunk[: min(len(view), FRAME_MAX - received)]
        first = False
        view[: len(piece)] = piece
        view.release()
        buf.buffer_updated(len(piece))
        received += len(piece)
    frame = buf.next_frame()
    assert frame is not None and len(frame[1]) == FRAME_MAX - 28


def test_trim_gives_storage_back_and_views_stay_valid() -> None:
    buf = FrameBuffer(1 << 20)
    payload = os.urandom(300_000)
    buf.feed(wire.frame(4, payload, mtype=wire.REPLY))
    header, view, _ = buf.next_frame()  # type: ignore[misc]
    assert buf.capacity >= 300_000
    buf.trim()
    assert buf.capacity == 0
    assert bytes(view) == payload  # the view kept its storage alive


# ---------------------------------------------------------------------------
# Server connections: RSS with many half-declared frames; freed without the GC.


@pytest.fixture
def echo_server() -> Iterator[ServerThread]:
    async def handler(conn: ServerConnection, call: ev.IncomingCall) -> bytes | None:
        if call.proc == 1:  # a download of the requested size
            (size,) = struct.unpack(">I", bytes(call.payload[:4]))
            st = conn.open_stream(call, StreamDirection.SEND)
            conn.reply(call)
            await st.send(bytes(size))
            await st.send_eof()
            return None
        if call.proc == 2:  # an upload, read to the end (slowly)
            st = conn.open_stream(call, StreamDirection.RECEIVE)
            conn.reply(call)
            while await st.recv() is not None:
                await asyncio.sleep(0.001)
            return None
        if call.proc == 3:  # an upload whose handler never reads
            st = conn.open_stream(call, StreamDirection.RECEIVE)
            conn.reply(call)
            await st.finished.wait()
            return None
        return bytes(call.payload)

    server = ServerThread(lambda path: serve_unix(path, handler))
    try:
        yield server
    finally:
        server.stop()


def live_connections() -> int:
    """ServerConnection objects still alive (gc.get_objects lists them even with the collector off)."""
    return sum(1 for o in gc.get_objects() if isinstance(o, ServerConnection))


def test_closed_connections_are_freed_without_the_cyclic_gc(echo_server: ServerThread) -> None:
    gc.collect()
    gc.disable()
    try:
        fds_before = open_fds(os.getpid())
        base = live_connections()
        for round_ in range(3):
            peers = [RawPeer(echo_server.socket_path) for _ in range(10)]
            for i, peer in enumerate(peers):
                assert peer.call(7, b"ping", serial=1).payload == b"ping"
                if i % 3 == 0:  # a download left unfinished
                    peer.call(1, struct.pack(">I", 300_000), serial=2)
                elif i % 3 == 1:  # an upload abandoned halfway
                    peer.call(2, serial=3)
                    peer.send(wire.frame(2, b"u" * 1000, serial=3, mtype=wire.STREAM, status=wire.CONTINUE))
                else:  # half a frame
                    peer.send(wire.frame(7, b"x" * 100, serial=4)[:50])
            assert live_connections() - base == 10
            for peer in peers:
                peer.close()

            async def settle() -> None:
                for _ in range(500):
                    if live_connections() == base:
                        return
                    await asyncio.sleep(0.01)

            echo_server.run(settle)
            left = live_connections() - base
            assert left == 0, f"round {round_}: {left} closed connections still alive without the cyclic GC"
        assert open_fds(os.getpid()) <= fds_before
    finally:
        gc.enable()


def test_half_declared_frames_do_not_grow_the_server(echo_server: ServerThread) -> None:
    """Four rounds of four connections that each declare 32 MiB and send 29 bytes (the issue's case)."""
    base = rss_kib(os.getpid())
    for _ in range(4):
        peers = [RawPeer(echo_server.socket_path) for _ in range(4)]
        for peer in peers:
            peer.send(declared_max_prefix())
        assert all(peer.silent_for(0.05) for peer in peers)
        # Another connection is served meanwhile.
        with RawPeer(echo_server.socket_path) as other:
            assert other.call(7, b"still here", serial=9).payload == b"still here"
        for peer in peers:
            peer.close()
    grown = rss_kib(os.getpid()) - base
    assert grown < 8 * KIB, f"16 connections declaring 32 MiB each grew the process by {grown} KiB"


# ---------------------------------------------------------------------------
# Client role, on real client connections: a hostile server declares 32 MiB and sends 29 bytes.


@pytest.fixture
def lying_server(tmp_path: Any) -> Iterator[str]:
    """A raw server that answers every call with a header declaring the largest frame, then 1 byte."""
    path = str(tmp_path / "sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(4)
    stop = threading.Event()
    conns: list[socket.socket] = []

    def serve() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            conns.append(conn)
            data = conn.recv(65536)
            (serial,) = struct.unpack_from(">I", data, 20)
            conn.sendall(wire.PREFIX.pack(FRAME_MAX, wire.REMOTE_PROGRAM, 1, 4, wire.REPLY, serial, 0) + b"x")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield path
    finally:
        stop.set()
        thread.join(5)
        for conn in conns:
            conn.close()
        listener.close()


def test_sync_client_commits_nothing_for_a_declared_length(lying_server: str) -> None:
    from xdrgen.runtime.virnet.errors import CallTimeout
    from xdrgen.runtime.virnet.sync import Connection

    with traced() as t:
        conn = Connection.connect_unix(lying_server)
        try:
            with pytest.raises(CallTimeout):
                conn.call(4, timeout=0.5)
        finally:
            conn.close()
    assert t.peak < 2 << 20, f"the blocking client allocated {t.peak} bytes for 29 received"


def test_asyncio_client_commits_nothing_for_a_declared_length(lying_server: str) -> None:
    from xdrgen.runtime.virnet.aio import AsyncConnection
    from xdrgen.runtime.virnet.errors import CallTimeout

    async def main() -> None:
        conn = await AsyncConnection.connect_unix(lying_server)
        try:
            with pytest.raises(CallTimeout):
                await conn.call(4, timeout=0.5)
        finally:
            await conn.close()

    with traced() as t:
        asyncio.run(main())
    assert t.peak < 2 << 20, f"the asyncio client allocated {t.peak} bytes for 29 received"


def send_until_held_back(peer: RawPeer, frame: bytes, limit: int) -> int:
    """Send ``frame`` repeatedly until ``limit`` bytes or until the server stops reading; bytes sent."""
    sent = 0
    peer.sock.settimeout(2.0)
    try:
        while sent < limit:
            peer.sock.sendall(frame)
            sent += len(frame)
    except TimeoutError:
        pass  # the kernel buffers filled up: the server is not reading
    peer.sock.settimeout(20)
    return sent


def test_an_upload_its_handler_does_not_read_is_held_back(echo_server: ServerThread) -> None:
    """Uploaded data waits in the server only up to a bound; then the connection stops reading."""
    frame = wire.frame(3, b"u" * 262120, serial=3, mtype=wire.STREAM, status=wire.CONTINUE)
    with traced() as t:
        with RawPeer(echo_server.socket_path) as peer:
            assert peer.call(3, serial=3).status == wire.OK  # the handler never reads
            sent = send_until_held_back(peer, frame, 64 << 20)
            assert sent < 32 << 20, f"the server took {sent} bytes its handler never read"
            with RawPeer(echo_server.socket_path) as other:  # others are served meanwhile
                assert other.call(7, b"other", serial=1).payload == b"other"
    assert t.peak < 24 << 20, f"{t.peak} bytes held for {sent} bytes uploaded"
    print(f"\nupload held back after {sent >> 20} MiB, peak traced {t.peak >> 20} MiB")


def test_a_slow_upload_reader_holds_back_then_catches_up(echo_server: ServerThread) -> None:
    frame = wire.frame(2, b"u" * 262120, serial=3, mtype=wire.STREAM, status=wire.CONTINUE)
    with traced() as t:
        with RawPeer(echo_server.socket_path) as peer:
            assert peer.call(2, serial=3).status == wire.OK  # the handler reads, 1 ms per chunk
            sent = send_until_held_back(peer, frame, 48 << 20)
            assert sent >= 48 << 20  # it got everything, only later than sent
            peer.send(wire.frame(2, serial=3, mtype=wire.STREAM, status=wire.OK))  # finish
            obs = peer.read_until(lambda fs: any(f.serial == 3 and f.type == wire.STREAM for f in fs))
            assert [(f.type, f.status) for f in obs.frames if f.serial == 3] == [(wire.STREAM, wire.OK)]
            assert peer.call(7, b"after", serial=4).payload == b"after"
    assert t.peak < 24 << 20, f"{t.peak} bytes held while uploading {sent} bytes"
