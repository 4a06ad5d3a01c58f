"""The blocking transport's stream object (sync.Connection.call_stream returns one)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from xdrgen.runtime.virnet.core import Buffer, StreamDirection
from xdrgen.runtime.virnet.errors import CallTimeout, StreamStateError, VirNetError
from xdrgen.runtime.virnet.streams import END, ClientStreamBase, Hole

if TYPE_CHECKING:
    from xdrgen.runtime.virnet.sync import Connection


class Waiter:
    """What a blocked caller waits on: a reply, or a stream's finish / abort confirmation."""

    __slots__ = ("done", "payload", "fds", "error")

    def __init__(self) -> None:
        self.done = False
        self.payload: memoryview | None = None
        self.fds: list[int] = []
        self.error: BaseException | None = None

    def finished(self) -> bool:
        return self.done


def deadline(timeout: float | None) -> float | None:
    return None if timeout is None else time.monotonic() + timeout


class Stream(ClientStreamBase):
    """One libvirt stream on a blocking connection.

    ``recv`` returns memoryviews into the connection's receive buffer (no copy);
    they stay valid while referenced.  ``send`` writes the caller's buffer
    straight to the socket behind a 28-byte prefix per chunk.
    """

    def __init__(self, conn: Connection, serial: int, direction: StreamDirection, sparse: bool, max_queued: int) -> None:
        super().__init__(serial, direction, sparse, max_queued, conn._budget)
        self._conn = conn
        self._eof = False
        self._close_waiter: Waiter | None = None

    # Called by the reader with the connection lock held; never blocks.
    def _push(self, item: memoryview | Hole | object) -> None:
        if self._closed:
            return
        self._queue.append(item)
        if len(self._queue) >= self._max_queued:
            self._conn._full_streams.add(self.serial)
        if self._conn._budget.over():
            self._conn._overflow()

    def _popped(self) -> None:
        """Lock held: a chunk left the queue; let reading resume below the limit."""
        conn = self._conn
        if len(self._queue) < self._max_queued and self.serial in conn._full_streams:
            conn._full_streams.discard(self.serial)
            conn._cv.notify_all()

    def _fail(self, error: BaseException) -> None:
        if self._error is None:
            self._error = error
        self._closed = True
        self._queue.clear()
        self._popped()
        if self._close_waiter is not None:
            self._close_waiter.error = error
            self._close_waiter.done = True

    def _closed_ok(self) -> None:
        self._closed = True
        if self._close_waiter is not None:
            self._close_waiter.done = True

    def _has_news(self) -> bool:
        return bool(self._queue) or self._error is not None or self._eof or self._closed

    def recv(self, timeout: float | None = None) -> memoryview | Hole | None:
        """The next chunk of data, a Hole (sparse streams only), or None at the end."""
        conn = self._conn
        with conn._cv:
            if not self._queue and not conn._wait_until(self._has_news, deadline(timeout)):
                raise CallTimeout(f"no stream data within {timeout} s")
            if self._queue:
                item = self._queue.popleft()
                self._popped()
                if item is END:
                    self._eof = True
                    return None
                assert isinstance(item, (memoryview, Hole))
                return item
            if self._error is not None:
                raise self._error
            return None

    def recv_into(self, buffer: memoryview | bytearray) -> int:
        """Copy the next data into ``buffer``; 0 at the end.  Holes are refused here."""
        target = memoryview(buffer)
        with self._conn._cv:
            pending = self._queue.head()
            if isinstance(pending, memoryview) and pending.nbytes > target.nbytes:
                n = target.nbytes
                target[:n] = pending[:n]
                self._queue.consume_head(n)
                return n
        item = self.recv()
        if item is None:
            return 0
        if isinstance(item, Hole):
            raise StreamStateError("recv_into met a hole; use recv() on sparse streams")
        n = item.nbytes
        if n > target.nbytes:
            with self._conn._cv:
                self._queue.appendleft(item[target.nbytes :])
            n = target.nbytes
        target[:n] = item[:n]
        return n

    def send(self, data: Buffer) -> None:
        """Send ``data`` (any size; split into protocol chunks, never copied)."""
        self._check_open()
        self._conn._send(lambda core: core.send_stream_data(self.serial, data))

    def send_hole(self, length: int, flags: int = 0) -> None:
        self._check_open()
        self._conn._send(lambda core: core.send_stream_hole(self.serial, length, flags))

    def finish(self, timeout: float | None = None) -> None:
        """Send the empty OK and wait for the peer's confirmation (raises its error)."""
        self._check_open()
        waiter = Waiter()
        with self._conn._cv:
            self._close_waiter = waiter
        self._conn._send(lambda core: core.finish_stream(self.serial))
        self._conn._wait_for(waiter, timeout, f"stream {self.serial}: no finish confirmation within {timeout} s")
        if waiter.error is not None:
            raise waiter.error

    def discard(self, error: BaseException) -> None:
        """Give the stream up without waiting: fail it locally with ``error``, send the abort.

        For a stream nobody will use (its call's reply did not decode); the
        peer's acknowledgement is dropped when it comes.
        """
        conn = self._conn
        with conn._cv:
            if self._closed:
                return
            self._fail(error)
        try:
            conn._send(lambda core: core.abort_stream(self.serial))
        except VirNetError:
            pass  # the connection is gone: nothing left to abort

    def abort(self, timeout: float | None = None) -> None:
        """Send the empty ERROR, drop queued data, wait for the acknowledgement."""
        waiter = Waiter()
        with self._conn._cv:
            if self._closed:
                return
            self._close_waiter = waiter
            self._queue.clear()
            self._popped()
        self._conn._send(lambda core: core.abort_stream(self.serial))
        self._conn._wait_for(waiter, timeout, f"stream {self.serial}: no abort acknowledgement within {timeout} s")
        with self._conn._cv:
            self._error = self._error or StreamStateError(f"stream {self.serial} was aborted")

    def __iter__(self) -> Stream:
        return self

    def __next__(self) -> memoryview | Hole:
        item = self.recv()
        if item is None:
            raise StopIteration
        return item


__all__ = ["Stream", "Waiter", "deadline"]
