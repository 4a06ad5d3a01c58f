"""asyncio server side: the same core in the server role, one handler call per CALL.

``serve_unix(path, handler)`` accepts connections; for each incoming CALL the
handler coroutine gets the connection and the call and returns the encoded
``_ret`` payload (or raises LibvirtError, sent back as a REPLY ERROR).  A
handler that returns ``None`` has replied itself (e.g. stream procedures, which
reply, then send data on the stream).  Keepalive PINGs, and the protocol
misuse libvirtd answers in its RPC layer, are answered by the core.

This module listens and accepts (as libvirtd: at most ``max_clients``
connections, accept errors retried); each connection, its handler calls and
its streams live in server_connection.py, whose names it re-exports.
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import stat
from collections.abc import Mapping
from typing import Final

from xdrgen.runtime.virnet.server_connection import MAX_REQUESTS as MAX_REQUESTS
from xdrgen.runtime.virnet.server_connection import OUTPUT_HIGH_WATER as OUTPUT_HIGH_WATER
from xdrgen.runtime.virnet.server_connection import READ_MAX as READ_MAX
from xdrgen.runtime.virnet.server_connection import STREAM_QUEUE_HIGH_WATER as STREAM_QUEUE_HIGH_WATER
from xdrgen.runtime.virnet.server_connection import Handler as Handler
from xdrgen.runtime.virnet.server_connection import ServerConnection as ServerConnection
from xdrgen.runtime.virnet.server_connection import ServerStream as ServerStream
from xdrgen.runtime.virnet.server_connection import take_fds as take_fds

#: Connections served at once (libvirtd's max_clients); more wait in the backlog.
MAX_CLIENTS: Final = 5000
#: Listen backlog (libvirtd's max_queued_clients).
BACKLOG: Final = 1000
#: Retry delay after accept() failed for lack of descriptors or memory.
ACCEPT_RETRY: Final = 0.1


class VirNetServer(asyncio.AbstractServer):
    """A listening unix socket and the connections it accepted.

    ``close()`` stops listening, closes every connection (as libvirtd does
    when it shuts down) and removes the socket file, unless another server
    has meanwhile put its own socket at that path.
    """

    def __init__(
        self,
        sock: socket.socket,
        path: str,
        handler: Handler,
        programs: Mapping[int, int] | None,
        *,
        max_clients: int,
        max_requests: int,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._sock: socket.socket | None = sock
        self._path = path
        st = os.lstat(path)
        self._identity = (st.st_dev, st.st_ino)
        self._handler = handler
        self._programs = programs
        self._max_clients = max_clients
        self._max_requests = max_requests
        self._connections: set[ServerConnection] = set()
        self._accepting = False
        self._retry: asyncio.TimerHandle | None = None
        self._serving_forever: asyncio.Future[None] | None = None
        self._all_closed = asyncio.Event()
        self._all_closed.set()
        self._accept_resume()

    @property
    def connections(self) -> frozenset[ServerConnection]:
        return frozenset(self._connections)

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        return () if self._sock is None else (self._sock,)

    def _accept_resume(self) -> None:
        self._retry = None
        if self._sock is not None and not self._accepting and len(self._connections) < self._max_clients:
            self._accepting = True
            self._loop.add_reader(self._sock.fileno(), self._accept)

    def _accept_pause(self) -> None:
        if self._accepting and self._sock is not None:
            self._accepting = False
            self._loop.remove_reader(self._sock.fileno())

    def _accept(self) -> None:
        listener = self._sock
        while listener is not None and len(self._connections) < self._max_clients:
            try:
                sock, _ = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in (errno.ECONNABORTED, errno.EPROTO):
                    continue  # that client gave up while waiting
                # Out of descriptors or memory (EMFILE, ENOMEM, ...), or anything else: the
                # client waits in the backlog; try again shortly rather than fail in the loop.
                self._accept_pause()
                if self._retry is None:
                    self._retry = self._loop.call_later(ACCEPT_RETRY, self._accept_resume)
                return
            conn = ServerConnection(sock, self._handler, self._programs, max_requests=self._max_requests,
                                    on_close=self._forget)
            self._connections.add(conn)
            self._all_closed.clear()
        if listener is not None:
            self._accept_pause()  # max_clients reached: as libvirtd, stop accepting

    def _forget(self, conn: ServerConnection) -> None:
        self._connections.discard(conn)
        if not self._connections:
            self._all_closed.set()
        self._accept_resume()

    # asyncio.AbstractServer
    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is None:
            return
        if self._accepting:
            self._accepting = False
            self._loop.remove_reader(sock.fileno())
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        sock.close()
        try:
            st = os.lstat(self._path)
            if (st.st_dev, st.st_ino) == self._identity:
                os.unlink(self._path)
        except OSError:
            pass
        for conn in list(self._connections):
            conn.close("the server is shutting down")
        if self._serving_forever is not None and not self._serving_forever.done():
            self._serving_forever.cancel()

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def is_serving(self) -> bool:
        return self._sock is not None

    async def start_serving(self) -> None:
        return None  # serving starts at creation

    async def serve_forever(self) -> None:
        if self._sock is None:
            raise RuntimeError("the server is closed")
        self._serving_forever = self._loop.create_future()
        try:
            await self._serving_forever
        except asyncio.CancelledError:
            if self._sock is not None:
                raise
        finally:
            self._serving_forever = None

    async def wait_closed(self) -> None:
        """Wait until the server is closed and its connections are gone."""
        if self._sock is None:
            await self._all_closed.wait()


def _listening_socket(path: str, backlog: int) -> socket.socket:
    """A unix socket listening at ``path``, replacing a stale socket file atomically.

    A socket file nobody listens on any more (a server that was killed) is
    replaced; a live server's is not (EADDRINUSE), and neither is a file that
    is not a socket.  The new socket is bound under a temporary name beside
    ``path`` and renamed over it, so clients never find the path missing.
    """
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    if st is not None:
        if not stat.S_ISSOCK(st.st_mode):
            raise FileExistsError(errno.EEXIST, "exists and is not a socket", path)
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(path)
        except (ConnectionRefusedError, FileNotFoundError):
            pass  # stale: replaced below
        else:
            raise OSError(errno.EADDRINUSE, "a server is already listening on this socket", path)
        finally:
            probe.close()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        directory, name = os.path.split(path)
        temporary = os.path.join(directory, f".{name}.{os.getpid()}.{id(sock) & 0xFFFF:x}")
        if len(os.fsencode(temporary)) >= 108:  # sun_path: no room for a temporary name
            if st is not None:
                os.unlink(path)
            sock.bind(path)
        else:
            sock.bind(temporary)
            try:
                os.rename(temporary, path)
            except OSError:
                os.unlink(temporary)
                raise
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    return sock


async def serve_unix(
    path: str,
    handler: Handler,
    programs: Mapping[int, int] | None = None,
    *,
    max_clients: int | None = None,
    max_requests: int | None = None,
    backlog: int = BACKLOG,
) -> VirNetServer:
    """Listen on a unix socket; every connection gets its own core and ``handler``.

    ``max_clients`` and ``max_requests`` None: MAX_CLIENTS and MAX_REQUESTS (libvirtd's).
    """
    sock = _listening_socket(path, backlog)
    return VirNetServer(
        sock,
        path,
        handler,
        programs,
        max_clients=MAX_CLIENTS if max_clients is None else max_clients,
        max_requests=MAX_REQUESTS if max_requests is None else max_requests,
    )


__all__ = [
    "ServerConnection", "ServerStream", "VirNetServer", "serve_unix", "take_fds", "OUTPUT_HIGH_WATER",
    "MAX_REQUESTS", "MAX_CLIENTS",
]
