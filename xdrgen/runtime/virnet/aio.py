"""asyncio transport: a BufferedProtocol feeding the sans-IO core, futures per call.

The socket reads straight into the core's receive buffer (no intermediate
bytes); payloads are memoryviews into it.  Stream data waits in a per-stream
queue; when one is full and nothing else waits for the peer, the transport
stops reading until the consumer catches up (flow.py has the whole policy:
replies are never held up by unread stream data).  Events arrive through
callbacks and ``events()`` subscriptions.

Output goes through ``aiowrite.SocketWriter``: calls queued by many tasks in
one loop iteration leave in one ``sendmsg``, and stream data is written from
the caller's buffer without a copy (``AsyncStream.send`` returns once written).
"""

from __future__ import annotations

import asyncio
import socket
import weakref
from collections.abc import Callable, Mapping
from typing import Any, Final

from xdrgen.runtime.virnet import events as ev
from xdrgen.runtime.virnet.aio_files import download_file as download_file
from xdrgen.runtime.virnet.aio_files import upload_file as upload_file
from xdrgen.runtime.virnet.aio_stream import AsyncStream as AsyncStream
from xdrgen.runtime.virnet.aiowrite import SocketWriter
from xdrgen.runtime.virnet.client_common import ClientConnectionBase, EventCallback, feature_args, feature_supported
from xdrgen.runtime.virnet.constants import (
    FEATURE_PROGRAM_KEEPALIVE,
    PROC_CONNECT_SUPPORTS_FEATURE,
    REMOTE_PROGRAM,
)
from xdrgen.runtime.virnet.core import Buffer, StreamDirection, VirNetCore
from xdrgen.runtime.virnet.errors import CallTimeout, ConnectionClosed, VirNetError
from xdrgen.runtime.virnet.flow import STREAM_BUFFER_MAX, STREAM_QUEUE_FRAMES
from xdrgen.runtime.virnet.streams import Hole as Hole

#: Unconsumed events one ``events()`` iterator keeps; older ones are dropped.
EVENTS_QUEUE_MAX: Final = 4096


class _Protocol(asyncio.BufferedProtocol):
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._conn._transport = transport
        self._conn._writer = SocketWriter(transport, self._conn._fail)
        self._conn._update_reading()

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._conn._core.get_buffer(sizehint)

    def buffer_updated(self, nbytes: int) -> None:
        self._conn._received(nbytes)

    def eof_received(self) -> bool | None:
        self._conn._lost(ConnectionClosed("connection closed by peer"))
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._conn._lost(ConnectionClosed(f"connection lost: {exc}" if exc else "connection closed"))

    def pause_writing(self) -> None:
        self._conn._can_write.clear()

    def resume_writing(self) -> None:
        self._conn._can_write.set()


class AsyncConnection(ClientConnectionBase[asyncio.Future[memoryview], AsyncStream]):
    """An asyncio libvirt RPC client connection."""

    def __init__(self, *, programs: Mapping[int, int] | None = None, stream_queue_frames: int = STREAM_QUEUE_FRAMES,
                 stream_buffer_max: int = STREAM_BUFFER_MAX, buffer_size: int = 1 << 20,
                 events_queue: int = EVENTS_QUEUE_MAX) -> None:
        if events_queue < 1 or stream_queue_frames < 1:
            raise ValueError("events_queue and stream_queue_frames must be >= 1")
        self._events_queue = events_queue
        # BufferedProtocol cannot take SCM_RIGHTS: fds sent to us are dropped by the kernel.
        super().__init__(programs=programs, buffer_size=buffer_size, receives_fds=False,
                         stream_queue_frames=stream_queue_frames, stream_buffer_max=stream_buffer_max)
        self._transport: asyncio.Transport | None = None
        self._writer: SocketWriter | None = None
        self._callbacks: list[EventCallback] = []
        self._subscriptions: weakref.WeakSet[EventSubscription] = weakref.WeakSet()
        self._can_write = asyncio.Event()
        self._can_write.set()
        #: Streams holding ``stream_queue_frames`` unread chunks.
        self._full: set[int] = set()
        self._reading_paused = False
        self._timer: asyncio.TimerHandle | None = None
        #: Events dropped because an ``events()`` iterator fell EVENTS_QUEUE_MAX behind.
        self.events_dropped = 0

    @classmethod
    async def connect_unix(cls, path: str, **kwargs: Any) -> AsyncConnection:
        conn = cls(**kwargs)
        await asyncio.get_running_loop().create_unix_connection(lambda: _Protocol(conn), path)
        return conn

    @classmethod
    async def connect_tcp(cls, host: str, port: int, **kwargs: Any) -> AsyncConnection:
        conn = cls(**kwargs)
        transport, _ = await asyncio.get_running_loop().create_connection(lambda: _Protocol(conn), host, port)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn

    # ------------------------------------------------------------------ output

    def _queue(self, action: Callable[[VirNetCore], object]) -> object:
        if self._error is not None:
            raise self._error
        result = action(self._core)
        self._flush()
        return result

    def _flush(self) -> None:
        if self._writer is None or self._transport is None or self._transport.is_closing():
            return
        self._writer.write(self._core.data_to_send())

    async def _drain(self) -> None:
        if self._writer is not None:
            await self._writer.drain()
        if not self._can_write.is_set():  # only when writing through the transport
            await self._can_write.wait()
        if self._error is not None:
            raise self._error

    # ------------------------------------------------------------------- calls

    async def call(self, proc: int, payload: Buffer = b"", *, prog: int = REMOTE_PROGRAM,
                   timeout: float | None = None) -> memoryview:
        """Call ``proc`` with an encoded ``_args``; returns the encoded ``_ret`` (see sync.Connection.call)."""
        ret, _ = await self._call(proc, payload, prog, timeout, None, False)
        return ret

    async def call_stream(self, proc: int, payload: Buffer = b"", *, direction: StreamDirection, sparse: bool = False,
                          prog: int = REMOTE_PROGRAM, timeout: float | None = None) -> tuple[memoryview, AsyncStream]:
        ret, stream = await self._call(proc, payload, prog, timeout, direction, sparse)
        assert stream is not None
        return ret, stream

    async def _call(self, proc: int, payload: Buffer, prog: int, timeout: float | None,
                    direction: StreamDirection | None, sparse: bool) -> tuple[memoryview, AsyncStream | None]:
        fut: asyncio.Future[memoryview] = asyncio.get_running_loop().create_future()
        stream: AsyncStream | None = None

        def queue(core: VirNetCore) -> int:
            nonlocal stream
            serial = core.send_call(proc, payload, prog=prog, stream=direction, sparse=sparse)
            self._pending[serial] = fut
            if direction is not None:
                stream = AsyncStream(self, serial, direction, sparse, self._stream_queue_frames)
                self._streams[serial] = stream
            return serial

        serial = self._queue(queue)
        assert isinstance(serial, int)
        self._update_reading()  # the reply may be behind a full stream's data
        try:
            if timeout is None:
                ret = await fut
            else:
                ret = await asyncio.wait_for(asyncio.shield(fut), timeout)
        except (asyncio.TimeoutError, asyncio.CancelledError) as exc:
            if not fut.done():
                self._forget_call(serial)
                fut.cancel()
                self._update_reading()
            if isinstance(exc, asyncio.TimeoutError):
                raise CallTimeout(f"procedure {proc}: no reply within {timeout} s") from None
            raise
        return ret, stream

    # --------------------------------------------------------------- keepalive

    async def supports_feature(self, feature: int) -> bool:
        return feature_supported(await self.call(PROC_CONNECT_SUPPORTS_FEATURE, feature_args(feature)))

    async def start_keepalive(self, interval: float = 5.0, count: int = 5) -> bool:
        if not await self.supports_feature(FEATURE_PROGRAM_KEEPALIVE):
            return False
        loop = asyncio.get_running_loop()
        self._core.start_keepalive(interval, count, loop.time())
        self._arm_timer()
        return True

    def _arm_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadline = self._core.next_deadline()
        if deadline is not None and self._error is None:
            self._timer = asyncio.get_running_loop().call_at(deadline, self._tick)

    def _tick(self) -> None:
        self._timer = None
        try:
            self._dispatch(self._core.expire(asyncio.get_running_loop().time()))
        except VirNetError as exc:
            self._fail(exc)
            return
        self._flush()
        self._arm_timer()

    # ------------------------------------------------------------------ events

    def add_event_callback(self, callback: EventCallback) -> None:
        self._callbacks.append(callback)

    def events(self, accept: Callable[[ev.EventMessage], bool] | None = None) -> EventSubscription:
        """Every MESSAGE frame (that ``accept`` takes) from this call on, until the connection ends.

        The subscription starts here, not at the first ``__anext__``: events
        that arrive before the loop starts are kept.  A subscription that falls
        more than ``events_queue`` events behind loses the oldest ones (counted
        in ``events_dropped``): a forgotten one must not hold memory without
        bound, nor stall the connection's replies.  It ends with ``close()``
        or when it is garbage.
        """
        return EventSubscription(self, accept, self._events_queue)

    # ------------------------------------------------------------------- input

    def _received(self, nbytes: int) -> None:
        try:
            events = self._core.buffer_updated(nbytes)
            self._dispatch(events)
        except VirNetError as exc:
            self._fail(exc)
            return
        if self._core.output_bytes:
            self._flush()
        self._update_reading()

    def _resolve(self, pending: asyncio.Future[memoryview], reply: ev.Reply) -> None:
        if not pending.done():
            pending.set_result(reply.payload)

    def _reject(self, pending: asyncio.Future[memoryview], error: BaseException) -> None:
        if not pending.done():
            pending.set_exception(error)

    def _event_message(self, message: ev.EventMessage) -> None:
        self._run_callbacks(self._callbacks, (message,))
        for sub in list(self._subscriptions):
            sub._offer(message)

    # ------------------------------------------------------------ flow control

    def _update_reading(self) -> None:
        """Pause reading while a stream is full and nothing waits for the peer (see flow.py)."""
        pause = bool(self._full) and not self._pending and not any(
            st._awaits_peer() for st in self._streams.values()
        )
        transport = self._transport
        if pause == self._reading_paused or transport is None or transport.is_closing():
            return
        self._reading_paused = pause
        if pause:
            transport.pause_reading()
        else:
            transport.resume_reading()

    def _fail(self, error: VirNetError) -> None:
        self._lost(error)
        if self._transport is not None:
            self._transport.abort()

    def _lost(self, error: VirNetError) -> None:
        if self._error is not None:
            return
        self._error = error
        self._core.connection_lost(error)
        if self._timer is not None:
            self._timer.cancel()
        self._fail_pending(error)
        for sub in list(self._subscriptions):
            sub._offer(None)
        if self._writer is not None:
            self._writer.fail(error)
        self._can_write.set()

    async def close(self) -> None:
        self._lost(ConnectionClosed("connection closed by this side"))
        if self._transport is not None:
            self._transport.close()

    async def __aenter__(self) -> AsyncConnection:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class EventSubscription:
    """The MESSAGE frames of one connection from the moment of subscribing (an async iterator).

    Made by ``AsyncConnection.events()``; ends with the connection or ``close()``.
    """

    def __init__(self, conn: AsyncConnection, accept: Callable[[ev.EventMessage], bool] | None, maxsize: int) -> None:
        self._conn = conn
        self._accept = accept
        self._queue: asyncio.Queue[ev.EventMessage | None] = asyncio.Queue(maxsize)
        self._ended = False
        if conn._error is not None:
            self._queue.put_nowait(None)
        else:
            conn._subscriptions.add(self)

    def _offer(self, item: ev.EventMessage | None) -> None:
        if item is not None and self._accept is not None and not self._accept(item):
            return
        queue = self._queue
        if queue.full():
            queue.get_nowait()
            self._conn.events_dropped += 1
        queue.put_nowait(item)

    def __aiter__(self) -> EventSubscription:
        return self

    async def __anext__(self) -> ev.EventMessage:
        if self._ended:
            raise StopAsyncIteration
        item = await self._queue.get()
        if item is None:
            self.close()
            raise StopAsyncIteration
        return item

    def close(self) -> None:
        """Stop receiving events; the iteration ends."""
        self._ended = True
        self._conn._subscriptions.discard(self)

    async def aclose(self) -> None:
        self.close()
