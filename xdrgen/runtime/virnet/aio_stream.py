"""The asyncio transport's stream object (aio.AsyncConnection.call_stream returns one)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from xdrgen.runtime.virnet.core import Buffer, StreamDirection
from xdrgen.runtime.virnet.errors import StreamStateError, VirNetError
from xdrgen.runtime.virnet.streams import END, ClientStreamBase, Hole

if TYPE_CHECKING:
    from xdrgen.runtime.virnet.aio import AsyncConnection


class AsyncStream(ClientStreamBase):
    """One libvirt stream on an asyncio connection (see sync.Stream for the contract)."""

    def __init__(self, conn: AsyncConnection, serial: int, direction: StreamDirection, sparse: bool, max_queued: int) -> None:
        super().__init__(serial, direction, sparse, max_queued, conn._budget)
        self._conn = conn
        self._ready = asyncio.Event()
        self._close_future: asyncio.Future[None] | None = None
        #: A consumer is inside ``recv`` waiting for data.
        self._waiting = False

    def _awaits_peer(self) -> bool:
        """Someone waits for this stream's data or for its finish / abort confirmation."""
        return self._waiting or (self._close_future is not None and not self._close_future.done())

    def _push(self, item: memoryview | Hole | object) -> None:
        if self._closed:
            return
        self._queue.append(item)
        self._ready.set()
        conn = self._conn
        if len(self._queue) >= self._max_queued:
            conn._full.add(self.serial)
        if conn._budget.over():
            conn._overflow()

    def _not_full(self) -> None:
        if self.serial in self._conn._full:
            self._conn._full.discard(self.serial)
            self._conn._update_reading()

    def _fail(self, error: BaseException) -> None:
        self._error = self._error or error
        self._closed = True
        self._queue.clear()
        self._ready.set()
        self._not_full()
        if self._close_future is not None and not self._close_future.done():
            self._close_future.set_exception(error)

    def _closed_ok(self) -> None:
        self._closed = True
        self._ready.set()
        self._not_full()
        if self._close_future is not None and not self._close_future.done():
            self._close_future.set_result(None)

    async def recv(self) -> memoryview | Hole | None:
        """Next data chunk (memoryview), a Hole, or None at the end."""
        while not self._queue:
            if self._error is not None:
                raise self._error
            if self._closed:
                return None
            self._ready.clear()
            self._waiting = True
            self._conn._update_reading()  # what we wait for may be behind a full stream
            try:
                await self._ready.wait()
            finally:
                self._waiting = False
        item = self._queue.popleft()
        if len(self._queue) <= self._max_queued // 2:
            self._not_full()
        if item is END:
            return None
        assert isinstance(item, (memoryview, Hole))
        return item

    def __aiter__(self) -> AsyncStream:
        return self

    async def __anext__(self) -> memoryview | Hole:
        item = await self.recv()
        if item is None:
            raise StopAsyncIteration
        return item

    async def send(self, data: Buffer) -> None:
        """Send ``data``; returns once the transport took it (the buffer may then be reused)."""
        self._check_open()
        self._conn._queue(lambda core: core.send_stream_data(self.serial, data))
        await self._conn._drain()

    async def send_hole(self, length: int, flags: int = 0) -> None:
        self._check_open()
        self._conn._queue(lambda core: core.send_stream_hole(self.serial, length, flags))
        await self._conn._drain()

    async def finish(self) -> None:
        self._check_open()
        self._close_future = asyncio.get_running_loop().create_future()
        self._conn._queue(lambda core: core.finish_stream(self.serial))
        self._conn._update_reading()
        await self._close_future

    async def abort(self) -> None:
        if self._closed:
            return
        self._close_future = asyncio.get_running_loop().create_future()
        self._queue.clear()
        self._not_full()
        self._conn._queue(lambda core: core.abort_stream(self.serial))
        self._conn._update_reading()
        await self._close_future
        self._error = self._error or StreamStateError(f"stream {self.serial} was aborted")

    def discard(self, error: BaseException) -> None:
        """Give the stream up without waiting: fail it locally with ``error``, send the abort."""
        if self._closed:
            return
        self._fail(error)
        try:
            self._conn._queue(lambda core: core.abort_stream(self.serial))
        except VirNetError:
            pass  # the connection is gone: nothing left to abort


__all__ = ["AsyncStream"]
