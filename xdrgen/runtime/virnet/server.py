"""asyncio server side: the same core in the server role, one handler call per CALL.

``serve_unix(path, handler)`` accepts connections; for each incoming CALL the
handler coroutine gets the connection and the call and returns the encoded
``_ret`` payload (or raises LibvirtError, sent back as a REPLY ERROR).  A
handler that returns ``None`` has replied itself (e.g. stream procedures, which
reply, then send data on the stream).  Keepalive PINGs are answered by the core.

Output goes through ``aiowrite.SocketWriter``: stream data leaves straight
from the handler's buffer (``ServerStream.send`` returns once it is written),
replies finished in one loop iteration share a syscall, and while more than
``OUTPUT_HIGH_WATER`` bytes wait for a client that does not read, the
connection stops reading calls.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Awaitable, Callable, Mapping
from typing import Final

from xdrgen.runtime.virnet import events as ev
from xdrgen.runtime.virnet.aiowrite import SocketWriter
from xdrgen.runtime.virnet.constants import VIR_ERR_INTERNAL_ERROR, VIR_FROM_RPC
from xdrgen.runtime.virnet.core import Buffer, StreamDirection, VirNetCore
from xdrgen.runtime.virnet.errors import ConnectionClosed, LibvirtError, VirNetError

Handler = Callable[["ServerConnection", ev.IncomingCall], Awaitable[Buffer | None]]
#: Queued output beyond which the connection stops reading new calls.
OUTPUT_HIGH_WATER: Final = 8 << 20


class ServerStream:
    """The server's end of a stream opened by a call."""

    def __init__(self, conn: ServerConnection, serial: int) -> None:
        self._conn = conn
        self.serial = serial
        self._queue: collections.deque[memoryview | None] = collections.deque()
        self._ready = asyncio.Event()
        self.finished = asyncio.Event()  # the client finished or aborted
        self.aborted = False

    async def send(self, data: Buffer) -> None:
        """Send ``data`` uncopied; returns once it is written (``data`` may then change)."""
        self._conn._out(lambda core: core.send_stream_data(self.serial, data))
        await self._conn._drain()

    async def send_eof(self) -> None:
        """End of a download (empty CONTINUE); the client then finishes."""
        self._conn._out(lambda core: core.send_stream_eof(self.serial))

    async def fail(self, error: LibvirtError) -> None:
        self._conn._out(lambda core: core.send_stream_error(self.serial, error))

    async def recv(self) -> memoryview | None:
        """Uploaded data, or None once the client finished."""
        while not self._queue:
            self._ready.clear()
            await self._ready.wait()
        return self._queue.popleft()


class ServerConnection(asyncio.BufferedProtocol):
    def __init__(self, handler: Handler, programs: Mapping[int, int] | None) -> None:
        self._handler = handler
        self._core = VirNetCore(server=True, programs=programs)
        self._transport: asyncio.Transport | None = None
        self._writer: SocketWriter | None = None
        self._reading_paused = False
        self._streams: dict[int, ServerStream] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.closed = asyncio.Event()

    # asyncio protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._writer = SocketWriter(transport, lambda error: self._close())

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._core.get_buffer(sizehint)

    def buffer_updated(self, nbytes: int) -> None:
        try:
            events = self._core.buffer_updated(nbytes)
        except VirNetError:
            self._close()
            return
        for e in events:
            self._event(e)
        self._flush()
        writer = self._writer
        if writer is not None and writer.queued_bytes > OUTPUT_HIGH_WATER and not self._reading_paused:
            # The client is not reading its replies: stop taking calls until it does.
            self._reading_paused = True
            assert self._transport is not None
            self._transport.pause_reading()
            task = asyncio.get_running_loop().create_task(self._resume_when_drained())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _resume_when_drained(self) -> None:
        try:
            await self._drain()
        except VirNetError:
            return
        self._reading_paused = False
        if self._transport is not None and not self._transport.is_closing():
            self._transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        error = ConnectionClosed(str(exc) if exc else "closed")
        self._core.connection_lost(error)
        if self._writer is not None:
            self._writer.fail(error)
        for task in self._tasks:
            task.cancel()
        for st in self._streams.values():
            st.aborted = True
            st.finished.set()
            st._queue.append(None)
            st._ready.set()
        self.closed.set()

    # output
    def _out(self, action: Callable[[VirNetCore], object]) -> None:
        action(self._core)
        self._flush()

    def _flush(self) -> None:
        out = self._core.data_to_send()
        if self._writer is None or self._transport is None or self._transport.is_closing():
            return
        self._writer.write(out)

    async def _drain(self) -> None:
        if self._writer is not None:
            await self._writer.drain()

    def _close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        if self._transport is not None:
            self._transport.abort()

    # public API for handlers
    def open_stream(self, call: ev.IncomingCall, direction: StreamDirection, sparse: bool = False) -> ServerStream:
        """Make ``call`` a stream call; reply with ``reply`` afterwards."""
        self._core.open_stream(call.serial, call.proc, prog=call.prog, direction=direction, sparse=sparse)
        st = ServerStream(self, call.serial)
        self._streams[call.serial] = st
        return st

    def reply(self, call: ev.IncomingCall, payload: Buffer = b"") -> None:
        self._out(lambda core: core.send_reply(call.prog, call.vers, call.proc, call.serial, payload))

    def reply_error(self, call: ev.IncomingCall, error: LibvirtError) -> None:
        self._out(lambda core: core.send_error(call.prog, call.vers, call.proc, call.serial, error))

    def send_event(self, proc: int, payload: Buffer, prog: int | None = None) -> None:
        if prog is None:
            self._out(lambda core: core.send_event(proc, payload))
        else:
            self._out(lambda core: core.send_event(proc, payload, prog=prog))

    def _event(self, e: ev.Event) -> None:
        if isinstance(e, ev.IncomingCall):
            task = asyncio.get_running_loop().create_task(self._run(e))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        elif isinstance(e, ev.StreamData):
            st = self._streams.get(e.serial)
            if st is not None:
                st._queue.append(e.data)
                st._ready.set()
        elif isinstance(e, ev.StreamFinished):
            st = self._streams.pop(e.serial, None)
            self._core.ack_stream_finish(e.serial)
            if st is not None:
                st._queue.append(None)
                st._ready.set()
                st.finished.set()
        elif isinstance(e, ev.StreamAborted):
            st = self._streams.pop(e.serial, None)
            self._core.ack_stream_abort(e.serial)
            if st is not None:
                st.aborted = True
                st._queue.append(None)
                st._ready.set()
                st.finished.set()

    async def _run(self, call: ev.IncomingCall) -> None:
        try:
            result = await self._handler(self, call)
        except LibvirtError as exc:
            self.reply_error(call, exc)
            return
        except Exception as exc:  # a handler bug must not kill the connection
            self.reply_error(call, LibvirtError(VIR_ERR_INTERNAL_ERROR, VIR_FROM_RPC, f"internal error: {exc!r}"))
            return
        if result is not None:
            self.reply(call, result)


async def serve_unix(path: str, handler: Handler, programs: Mapping[int, int] | None = None) -> asyncio.AbstractServer:
    """Listen on a unix socket; every connection gets its own core and ``handler``."""
    loop = asyncio.get_running_loop()
    return await loop.create_unix_server(lambda: ServerConnection(handler, programs), path)
