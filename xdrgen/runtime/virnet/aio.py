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
import collections
import os
import socket
import struct
import weakref
from collections.abc import Callable, Mapping
from typing import Any, Final

from xdrgen.runtime.virnet import events as ev
from xdrgen.runtime.virnet.aiowrite import SocketWriter
from xdrgen.runtime.virnet.constants import (
    FEATURE_PROGRAM_KEEPALIVE,
    PROC_CONNECT_SUPPORTS_FEATURE,
    REMOTE_PROGRAM,
)
from xdrgen.runtime.virnet.core import Buffer, StreamDirection, VirNetCore
from xdrgen.runtime.virnet.errors import (
    CallTimeout,
    ConnectionClosed,
    PeerDead,
    ProtocolError,
    StreamStateError,
    VirNetError,
)
from xdrgen.runtime.virnet.files import UPLOAD_BLOCK, FileSink, Progress, upload_pieces
from xdrgen.runtime.virnet.flow import (
    STREAM_BUFFER_MAX,
    STREAM_QUEUE_FRAMES,
    ChunkQueue,
    StreamBudget,
    overflow_victims,
)
from xdrgen.runtime.virnet.sync import STREAM_EVENTS, Hole, route_stream_event

EventCallback = Callable[[ev.EventMessage], None]
#: Unconsumed events one ``events()`` iterator keeps; older ones are dropped.
EVENTS_QUEUE_MAX: Final = 4096
#: Stream data gathered into one file write by ``download_file``.
_WRITE_BATCH: Final = 4 << 20
_EOF = object()


class AsyncStream:
    """One libvirt stream on an asyncio connection (see sync.Stream for the contract)."""

    def __init__(self, conn: AsyncConnection, serial: int, direction: StreamDirection, sparse: bool, max_queued: int) -> None:
        self._conn = conn
        self.serial = serial
        self.direction = direction
        self.sparse = sparse
        self._max_queued = max_queued
        self._queue = ChunkQueue(conn._budget)
        self._ready = asyncio.Event()
        self._error: BaseException | None = None
        self._closed = False
        self._close_future: asyncio.Future[None] | None = None
        #: A consumer is inside ``recv`` waiting for data.
        self._waiting = False

    @property
    def queued(self) -> ChunkQueue:
        """Received items not yet taken by ``recv`` (``nbytes``: their data bytes)."""
        return self._queue

    def _awaits_peer(self) -> bool:
        """Someone waits for this stream's data or for its finish / abort confirmation."""
        return self._waiting or (self._close_future is not None and not self._close_future.done())

    def _push(self, item: memoryview | Hole | object) -> None:
        if self._closed:
            return
        self._queue.append(item)
        self._ready.set()
        conn = self._conn
        if len(self._queue) == self._max_queued:
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
        if item is _EOF:
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

    def _check_open(self) -> None:
        if self._error is not None:
            raise self._error
        if self._closed:
            raise StreamStateError(f"stream {self.serial} is closed")

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


class AsyncConnection:
    """An asyncio libvirt RPC client connection."""

    def __init__(self, *, programs: Mapping[int, int] | None = None, stream_queue_frames: int = STREAM_QUEUE_FRAMES,
                 stream_buffer_max: int = STREAM_BUFFER_MAX, buffer_size: int = 1 << 20,
                 events_queue: int = EVENTS_QUEUE_MAX) -> None:
        if events_queue < 1 or stream_queue_frames < 1:
            raise ValueError("events_queue and stream_queue_frames must be >= 1")
        self._events_queue = events_queue
        self._budget = StreamBudget(stream_buffer_max)
        # BufferedProtocol cannot take SCM_RIGHTS: fds sent to us are dropped by the kernel.
        self._core = VirNetCore(programs=programs, buffer_size=buffer_size, receives_fds=False)
        self._transport: asyncio.Transport | None = None
        self._writer: SocketWriter | None = None
        self._futures: dict[int, asyncio.Future[memoryview]] = {}
        self._streams: dict[int, AsyncStream] = {}
        self._callbacks: list[EventCallback] = []
        self._subscriptions: weakref.WeakSet[EventSubscription] = weakref.WeakSet()
        self._stream_queue_frames = stream_queue_frames
        self._can_write = asyncio.Event()
        self._can_write.set()
        #: Streams holding ``stream_queue_frames`` unread chunks.
        self._full: set[int] = set()
        self._reading_paused = False
        self._error: VirNetError | None = None
        self._timer: asyncio.TimerHandle | None = None
        self.pings_answered = 0
        #: Events dropped because an ``events()`` iterator fell EVENTS_QUEUE_MAX behind.
        self.events_dropped = 0
        #: Exceptions raised by event callbacks (the most recent ones).
        self.callback_errors: collections.deque[Exception] = collections.deque(maxlen=64)

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
            self._futures[serial] = fut
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
                self._core.cancel_call(serial)
                self._futures.pop(serial, None)
                self._streams.pop(serial, None)
                fut.cancel()
                self._update_reading()
            if isinstance(exc, asyncio.TimeoutError):
                raise CallTimeout(f"procedure {proc}: no reply within {timeout} s") from None
            raise
        return ret, stream

    # --------------------------------------------------------------- keepalive

    async def supports_feature(self, feature: int) -> bool:
        ret = await self.call(PROC_CONNECT_SUPPORTS_FEATURE, struct.pack(">iI", feature, 0))
        if len(ret) != 4:
            raise ProtocolError(f"connect_supports_feature reply of {len(ret)} bytes, expected 4")
        return bool(struct.unpack(">i", ret)[0])

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

    def _dispatch(self, events: list[ev.Event]) -> None:
        for e in events:
            if isinstance(e, ev.Reply):
                fut = self._futures.pop(e.serial, None)
                if fut is not None and not fut.done():
                    fut.set_result(e.payload)
            elif isinstance(e, ev.ReplyError):
                fut = self._futures.pop(e.serial, None)
                st = self._streams.pop(e.serial, None)
                if st is not None:
                    st._fail(e.error)
                if fut is not None and not fut.done():
                    fut.set_exception(e.error)
            elif isinstance(e, STREAM_EVENTS):
                route_stream_event(self._streams, e, _EOF)
            elif isinstance(e, ev.EventMessage):
                for cb in list(self._callbacks):
                    try:
                        cb(e)
                    except Exception as exc:  # a callback's bug must not stop the connection
                        self.callback_errors.append(exc)
                for sub in list(self._subscriptions):
                    sub._offer(e)
            elif isinstance(e, ev.KeepalivePing):
                self.pings_answered += 1
            elif isinstance(e, ev.PeerDeadEvent):
                raise PeerDead("keepalive: the peer stopped answering")

    # ------------------------------------------------------------ flow control

    def _update_reading(self) -> None:
        """Pause reading while a stream is full and nothing waits for the peer (see flow.py)."""
        pause = bool(self._full) and not self._futures and not any(
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

    def _overflow(self) -> None:
        """Unread stream data passed the budget: abort the largest backlogs (sent after this read)."""
        for st, error in overflow_victims(self._streams.values(), self._budget):
            st._fail(error)
            self._core.abort_stream(st.serial)

    @property
    def stream_buffered_bytes(self) -> int:
        """Stream data received and not yet read, over all streams (bounded by ``stream_buffer_max``)."""
        return self._budget.used

    @property
    def ignored_messages(self) -> int:
        """Messages dropped as libvirt's client drops them (stream packets for no stream, ...)."""
        return self._core.ignored_messages

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
        futures, self._futures = self._futures, {}
        streams, self._streams = self._streams, {}
        for fut in futures.values():
            if not fut.done():
                fut.set_exception(error)
        for st in streams.values():
            st._fail(error)
        for sub in list(self._subscriptions):
            sub._offer(None)
        if self._writer is not None:
            self._writer.fail(error)
        self._can_write.set()

    @property
    def error(self) -> VirNetError | None:
        return self._error

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


# ---------------------------------------------------------------- files


async def upload_file(stream: AsyncStream, path: str | os.PathLike[str], *, progress: Progress | None = None,
                      block: int = UPLOAD_BLOCK) -> int:
    """The asyncio twin of ``files.upload_file``: file reads run in the default executor."""
    loop = asyncio.get_running_loop()
    done = 0
    with upload_pieces(path, stream.sparse, block) as pieces:
        while (piece := await loop.run_in_executor(None, next, pieces, None)) is not None:
            if isinstance(piece, int):
                await stream.send_hole(piece)
                done += piece
            else:
                await stream.send(piece)  # written before send returns: the buffer can be reused
                done += piece.nbytes
            if progress:
                progress(done)
    return done


async def download_file(stream: AsyncStream, path: str | os.PathLike[str], *,
                        progress: Progress | None = None) -> int:
    """The asyncio twin of ``files.download_file``: file writes run in the default executor."""
    loop = asyncio.get_running_loop()
    with FileSink(path) as sink:
        while True:
            item = await stream.recv()
            if item is None:
                break
            batch: list[memoryview | Hole] = [item]
            size = item.nbytes if isinstance(item, memoryview) else 0
            # Whatever already arrived goes out in the same write.
            while size < _WRITE_BATCH and stream.queued.head() not in (None, _EOF):
                more = await stream.recv()
                assert more is not None
                batch.append(more)
                size += more.nbytes if isinstance(more, memoryview) else 0
            await loop.run_in_executor(None, sink.put_all, batch)
            if progress:
                progress(sink.position)
        await loop.run_in_executor(None, sink.finish)
    return sink.position
