"""Zero-copy gathered writes for asyncio connections, beside their transport.

asyncio's ``transport.write`` copies whatever the socket does not take at
once into its own buffer, and sends one buffer per syscall.  For stream data
that means copying every byte once more, and for pipelined calls one syscall
per call.  ``SocketWriter`` instead keeps references to the queued buffers
(the 28-byte prefixes and views of the caller's data), writes them with
``sendmsg`` many at a time, and waits for writability on a duplicate of the
socket's fd (asyncio lets only the transport watch the original).  The
transport keeps doing the reading; it never writes, so nothing interleaves.
A connection that drives its own socket (the server) hands it in as ``sock``:
the writer then watches it directly and leaves closing it to its owner.

Small writes are coalesced: ``write`` schedules one flush per loop iteration,
so the calls queued by many tasks in one iteration leave in one syscall.
Buffers stay referenced until written: ``drain`` returns once everything
queued so far has left, after which the caller may reuse its buffers.
"""

from __future__ import annotations

import array
import asyncio
import collections
import os
import socket
from collections.abc import Callable
from typing import Final

from xdrgen.runtime.virnet.core import FdCarrier, OutBuffer
from xdrgen.runtime.virnet.errors import ConnectionClosed, VirNetError

#: Linux's IOV_MAX: most buffers one sendmsg takes.
_IOV_MAX: Final = 1024
#: Kernel send buffer asked for (capped by net.core.wmem_max): fewer, larger writes.
SEND_BUFFER: Final = 4 << 20


class SocketWriter:
    """Ordered, uncopied output for one asyncio connection (see the module docstring)."""

    def __init__(
        self,
        transport: asyncio.Transport | None,
        on_error: Callable[[VirNetError], None],
        *,
        sock: socket.socket | None = None,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._transport = transport
        #: Dropped once the writer has failed or closed: no cycle keeps its owner alive.
        self._on_error: Callable[[VirNetError], None] | None = on_error
        self._queue: collections.deque[OutBuffer] = collections.deque()
        self._queued = 0
        self._scheduled = False
        self._armed = False
        self._waiters: list[asyncio.Future[None]] = []
        self._error: VirNetError | None = None
        self._sock: socket.socket | None = None
        #: Whether ``_sock`` is our duplicate (closed by us) or the owner's socket.
        self._owns_sock = sock is None
        if sock is not None:
            self._sock = sock
            self._tune(sock)
            return
        assert transport is not None, "SocketWriter needs a transport or a socket"
        raw = transport.get_extra_info("socket")
        if raw is not None and raw.family in (socket.AF_UNIX, socket.AF_INET, socket.AF_INET6):
            # A second fd on the same socket: ours to watch for writability.
            self._sock = socket.socket(raw.family, raw.type, raw.proto, fileno=os.dup(raw.fileno()))
            self._tune(self._sock)

    @staticmethod
    def _tune(sock: socket.socket) -> None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
        except OSError:
            pass

    @property
    def queued_bytes(self) -> int:
        """Bytes queued and not yet taken by the kernel."""
        return self._queued

    def write(self, buffers: list[OutBuffer]) -> None:
        """Queue ``buffers`` (kept by reference) and flush at the end of this loop iteration."""
        if self._error is not None or not buffers:
            return
        if self._sock is None:
            self._write_through_transport(buffers)
            return
        for b in buffers:
            self._queue.append(b)
            if not isinstance(b, FdCarrier):
                self._queued += len(b)
        if not self._scheduled and not self._armed:
            self._scheduled = True
            self._loop.call_soon(self._flush)

    def _write_through_transport(self, buffers: list[OutBuffer]) -> None:
        # No socket to write on (another transport type): asyncio's buffered path.
        small: list[bytes | memoryview] = []
        for b in buffers:
            if isinstance(b, FdCarrier):
                raise NotImplementedError("fd passing needs a unix socket")
            small.append(b)
        assert self._transport is not None
        self._transport.writelines(small)

    async def drain(self) -> None:
        """Wait until everything queued so far has been written (raises the write error)."""
        if self._sock is None:
            return
        if self._queue and self._error is None:
            if self._scheduled:
                self._flush()  # don't wait for the loop to come round
            if self._queue and self._error is None:
                fut = self._loop.create_future()
                self._waiters.append(fut)
                await fut
        if self._error is not None:
            raise self._error

    def _flush(self) -> None:
        self._scheduled = False
        sock = self._sock
        queue = self._queue
        if sock is None:
            return
        try:
            while queue:
                head = queue[0]
                if isinstance(head, FdCarrier):
                    fds = array.array("i", [head.fd])
                    sock.sendmsg([b"\0"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)])
                    queue.popleft()
                    continue
                batch: list[bytes | memoryview] = []
                for b in queue:
                    if isinstance(b, FdCarrier) or len(batch) == _IOV_MAX:
                        break
                    batch.append(b)
                sent = sock.sendmsg(batch)
                self._queued -= sent
                # Drop what went out; keep a view of a partly sent buffer.
                while sent:
                    n = len(queue[0])  # type: ignore[arg-type]
                    if sent < n:
                        queue[0] = memoryview(queue[0])[sent:]  # type: ignore[arg-type]
                        break
                    sent -= n
                    queue.popleft()
        except (BlockingIOError, InterruptedError):
            if not self._armed:
                self._armed = True
                self._loop.add_writer(sock.fileno(), self._writable)
            return
        except OSError as exc:
            error = ConnectionClosed(f"write failed: {exc}")
            on_error = self._on_error
            self.fail(error)
            if on_error is not None:
                on_error(error)
            return
        if self._armed:
            self._armed = False
            self._loop.remove_writer(sock.fileno())
        self._wake(None)

    def _writable(self) -> None:
        self._flush()

    def _wake(self, error: VirNetError | None) -> None:
        waiters, self._waiters = self._waiters, []
        for fut in waiters:
            if not fut.done():
                if error is None:
                    fut.set_result(None)
                else:
                    fut.set_exception(error)

    def fail(self, error: VirNetError) -> None:
        """The connection is gone: drop queued output, fail ``drain``, release the fd."""
        if self._error is None:
            self._error = error
        self._queue.clear()
        self._queued = 0
        self._wake(self._error)
        self.close()

    def close(self) -> None:
        self._on_error = None
        self._queue.clear()
        self._queued = 0
        if self._sock is not None:
            if self._armed:
                self._armed = False
                self._loop.remove_writer(self._sock.fileno())
            if self._owns_sock:
                self._sock.close()
            self._sock = None
            if self._error is None:
                self._error = ConnectionClosed("connection closed")
            self._wake(self._error)


__all__ = ["SocketWriter", "SEND_BUFFER"]
