"""One client connection of the asyncio server: its socket, its core in the server role, its handler calls.

Every CALL gets an answer: a handler that fails, or whose answer cannot be
sent, is answered with an error (see ``ServerConnection._run``).  A client
that misbehaves costs only its own connection: memory follows the bytes it
sent (see framing.py), at most ``max_requests`` of its calls run at once, and
while more than ``OUTPUT_HIGH_WATER`` bytes wait for it to read, or an upload
queue is full, its connection stops reading.

The connection drives its own socket (no asyncio transport): reads use
``recvmsg`` so file descriptors sent with CALL_WITH_FDS arrive with their
bytes, and output goes through ``aiowrite.SocketWriter`` (stream data leaves
straight from the handler's buffer; replies finished in one loop iteration
share a syscall).  A closed connection drops every reference cycle it was
part of, so it is freed at once, without the cyclic garbage collector.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import socket
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Final

from xdrgen.runtime.virnet import daemon_errors
from xdrgen.runtime.virnet import events as ev
from xdrgen.runtime.virnet.aiowrite import SocketWriter
from xdrgen.runtime.virnet.constants import VIR_ERR_INTERNAL_ERROR, VIR_FROM_RPC
from xdrgen.runtime.virnet.core import Buffer, StreamDirection, VirNetCore, close_fds
from xdrgen.runtime.virnet.errors import ConnectionClosed, LibvirtError, StreamStateError, VirNetError
from xdrgen.runtime.virnet.sockio import recv_into_with_fds
from xdrgen.runtime.virnet.streams import Hole

Handler = Callable[["ServerConnection", ev.IncomingCall], Awaitable[Buffer | None]]
#: Queued output beyond which the connection stops reading new calls.
OUTPUT_HIGH_WATER: Final = 8 << 20
#: Calls of one connection whose handlers may run at once (then reading pauses).
MAX_REQUESTS: Final = 32
#: Upload data one stream may hold unread before the connection stops reading.
STREAM_QUEUE_HIGH_WATER: Final = 8 << 20
#: Read-ahead of one connection's receive buffer (it starts much smaller).
READ_MAX: Final = 256 << 10

_current_call: contextvars.ContextVar[ev.IncomingCall | None] = contextvars.ContextVar("xdrgen_virnet_call", default=None)


def take_fds() -> list[int]:
    """The file descriptors sent with the call being handled (CALL_WITH_FDS), now the caller's.

    Call it from a handler; the fds are the caller's to close.  Fds no handler
    takes are closed once the call is answered.
    """
    call = _current_call.get()
    if call is None:
        raise RuntimeError("take_fds() outside a call handler")
    fds, call.fds = call.fds, []
    return fds


class ServerStream:
    """The server's end of a stream opened by a call."""

    def __init__(self, conn: ServerConnection, serial: int) -> None:
        self._conn: ServerConnection | None = conn
        self.serial = serial
        self._queue: collections.deque[memoryview | Hole | None] = collections.deque()
        self._queued = 0
        self._ready = asyncio.Event()
        self.finished = asyncio.Event()  # the client finished or aborted
        self.aborted = False
        self._ended = False

    def _connection(self) -> ServerConnection:
        """The connection, for sending on this stream (which must not have ended)."""
        conn = self._conn
        if conn is None or conn.is_closed:
            raise ConnectionClosed(f"stream {self.serial}: the connection is closed")
        if self._ended:
            raise StreamStateError(f"stream {self.serial} has ended ({'aborted' if self.aborted else 'finished'} by the client)")
        return conn

    async def send(self, data: Buffer) -> None:
        """Send ``data`` uncopied; returns once it is written (``data`` may then change)."""
        conn = self._connection()
        conn._out(lambda core: core.send_stream_data(self.serial, data))
        await conn._drain()

    async def send_hole(self, length: int, flags: int = 0) -> None:
        """A hole in a sparse download (the stream was accepted with ``sparse=True``)."""
        self._connection()._out(lambda core: core.send_stream_hole(self.serial, length, flags))

    async def send_eof(self) -> None:
        """End of a download (empty CONTINUE); the client then finishes."""
        self._connection()._out(lambda core: core.send_stream_eof(self.serial))

    async def fail(self, error: LibvirtError) -> None:
        """End the stream with ``error`` (STREAM ERROR; the client's recv/finish raise it)."""
        conn = self._connection()
        conn._out(lambda core: core.send_stream_error(self.serial, error))
        conn._stream_ended(self.serial, aborted=True)

    async def recv(self) -> memoryview | Hole | None:
        """Uploaded data, a ``Hole`` (sparse uploads), or None once the client finished.

        None also when the stream ended otherwise: ``aborted`` then says so.
        """
        while not self._queue:
            if self._ended:
                return None
            self._ready.clear()
            await self._ready.wait()
        item = self._queue.popleft()
        if isinstance(item, memoryview):
            self._queued -= len(item)
            conn = self._conn
            if conn is not None and self._queued <= STREAM_QUEUE_HIGH_WATER // 2:
                conn._unblock(self.serial)
        return item

    def _push(self, item: memoryview | Hole) -> None:
        if self._ended:
            return
        self._queue.append(item)
        self._ready.set()
        if isinstance(item, memoryview):
            self._queued += len(item)
            conn = self._conn
            if conn is not None and self._queued > STREAM_QUEUE_HIGH_WATER:
                conn._block(self.serial)

    def _end(self, aborted: bool) -> None:
        """The client finished, aborted, or the connection ended: wake the handler."""
        if self._ended:
            return
        self._ended = True
        if aborted:
            self.aborted = True
        self._queue.append(None)
        self._ready.set()
        self.finished.set()


class ServerConnection:
    """One client connection: its socket, its core in the server role, its handler calls."""

    def __init__(
        self,
        sock: socket.socket,
        handler: Handler,
        programs: Mapping[int, int] | None,
        *,
        max_requests: int = MAX_REQUESTS,
        on_close: Callable[[ServerConnection], None] | None = None,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        sock.setblocking(False)
        self._sock: socket.socket | None = sock
        self._fd = sock.fileno()
        self._handler = handler
        self._core = VirNetCore(server=True, programs=programs, buffer_size=READ_MAX)
        self._writer: SocketWriter | None = SocketWriter(None, self._write_failed, sock=sock)
        self._streams: dict[int, ServerStream] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        #: Serials of calls not answered yet (the calls counted by ``max_requests``).
        self._unanswered: set[int] = set()
        self._max_requests = max_requests
        #: Why reading is paused: "requests", "output", or a stream serial.
        self._blocked: set[object] = set()
        self._reading = False
        self._on_close = on_close
        self._closed = False
        self.closed = asyncio.Event()
        #: Per-connection state for the code serving it (the generated server keeps its handler here).
        self.handler: object = None
        self._read()

    @property
    def is_closed(self) -> bool:
        return self._closed

    # ------------------------------------------------------------------ input

    def _read(self) -> None:
        if not self._reading and not self._blocked and not self._closed:
            self._reading = True
            self._loop.add_reader(self._fd, self._readable)

    def _stop_reading(self) -> None:
        if self._reading:
            self._reading = False
            self._loop.remove_reader(self._fd)

    def _block(self, reason: object) -> None:
        self._blocked.add(reason)
        self._stop_reading()

    def _unblock(self, reason: object) -> None:
        if reason in self._blocked:
            self._blocked.discard(reason)
            self._read()

    def _readable(self) -> None:
        sock = self._sock
        if sock is None:
            return
        core = self._core
        view = core.get_buffer()
        try:
            nbytes, fds = recv_into_with_fds(sock, view, True)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self.close(f"read failed: {exc}")
            return
        if nbytes == 0:
            close_fds(fds)
            self.close("closed by the client")
            return
        try:
            events = core.fds_received(fds) if fds else []  # before the bytes they came with
            events += core.buffer_updated(nbytes)
        except VirNetError as exc:  # broken framing: libvirtd drops the client too
            self.close(str(exc))
            return
        for e in events:
            self._event(e)
        self._flush()
        writer = self._writer
        if writer is not None and writer.queued_bytes > OUTPUT_HIGH_WATER and "output" not in self._blocked:
            # The client is not reading its replies: stop taking calls until it does.
            self._block("output")
            self._spawn(self._resume_when_drained())
        if not self._unanswered and not self._streams and not core.output_bytes:
            core.trim_buffer()  # idle: give receive storage back

    async def _resume_when_drained(self) -> None:
        try:
            await self._drain()
        except VirNetError:
            return
        self._unblock("output")

    def _event(self, e: ev.Event) -> None:
        if isinstance(e, ev.IncomingCall):
            self._unanswered.add(e.serial)
            if len(self._unanswered) >= self._max_requests:
                self._block("requests")
            self._spawn(self._run(e))
        elif isinstance(e, ev.StreamData):
            st = self._streams.get(e.serial)
            if st is not None:
                st._push(e.data)
        elif isinstance(e, ev.StreamHole):
            st = self._streams.get(e.serial)
            if st is not None:
                st._push(Hole(e.length))
        elif isinstance(e, ev.StreamFinished):  # confirmed by the core already
            self._stream_ended(e.serial, aborted=False)
        elif isinstance(e, (ev.StreamAborted, ev.StreamFailed)):  # StreamFailed: the client's misuse, as libvirtd
            self._stream_ended(e.serial, aborted=True)

    def _stream_ended(self, serial: int, aborted: bool) -> None:
        """Forget a stream that is over and wake its handler."""
        st = self._streams.pop(serial, None)
        if st is not None:
            st._end(aborted)
        self._unblock(serial)

    def _spawn(self, coro: Coroutine[object, object, None]) -> None:
        task = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ calls

    async def _run(self, call: ev.IncomingCall) -> None:
        """Run the handler for ``call`` and make sure the call is answered, whatever happens."""
        _current_call.set(call)
        try:
            try:
                result = await self._handler(self, call)
            except LibvirtError as exc:
                self._answer_error(call, exc)
                return
            except VirNetError:
                if self._closed:
                    return  # the client went away mid-call: nobody to answer
                raise
            if result is not None:
                try:
                    self.reply(call, result)
                except ValueError as exc:  # over the 32 MiB message limit
                    self._answer_error(call, daemon_errors.unencodable_reply(str(exc)))
            elif call.serial in self._unanswered:  # returned None without replying (a stream opened, perhaps)
                self._answer_error(call, daemon_errors.reported(
                    VIR_ERR_INTERNAL_ERROR, VIR_FROM_RPC, f"internal error: procedure {call.proc} returned no reply"))
        except asyncio.CancelledError:
            raise  # the connection closed
        except Exception as exc:  # a handler bug must not leave the call unanswered
            self._answer_error(call, daemon_errors.reported(VIR_ERR_INTERNAL_ERROR, VIR_FROM_RPC, f"internal error: {exc!r}"))
        finally:
            self._answered(call.serial)
            close_fds(call.fds)
            call.fds = []

    def _answer_error(self, call: ev.IncomingCall, error: LibvirtError) -> None:
        """An error for ``call``: a REPLY before the stream opened, a stream error after."""
        if self._closed:
            return
        if call.serial in self._unanswered:
            self.reply_error(call, error)
        elif self._core.stream_is_open(call.serial):
            self._out(lambda core: core.send_stream_error(call.serial, error))
            self._stream_ended(call.serial, aborted=True)

    def _answered(self, serial: int) -> None:
        if serial in self._unanswered:
            self._unanswered.discard(serial)
            if len(self._unanswered) < self._max_requests:
                self._unblock("requests")

    # ------------------------------------------------------------------ output

    def _out(self, action: Callable[[VirNetCore], object]) -> None:
        if self._closed:
            return  # the client is gone; whatever it was, nobody will read it
        action(self._core)
        self._flush()

    def _flush(self) -> None:
        out = self._core.data_to_send()
        if out and self._writer is not None:
            self._writer.write(out)

    async def _drain(self) -> None:
        writer = self._writer
        if writer is None or self._closed:
            raise ConnectionClosed("the connection is closed")
        await writer.drain()

    def _write_failed(self, error: VirNetError) -> None:
        self.close(str(error))

    def close(self, reason: str = "closed by the server") -> None:
        """Close the connection: cancel its handlers, end its streams, release its fds and memory."""
        if self._closed:
            return
        self._closed = True
        error = ConnectionClosed(reason)
        self._stop_reading()
        self._core.connection_lost(error)
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.fail(error)
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()
        for task in list(self._tasks):
            task.cancel()
        streams, self._streams = self._streams, {}
        for st in streams.values():
            st._end(aborted=True)
        self._blocked.clear()
        self.handler = None  # the handler refers back to us: no cycle outlives the connection
        self.closed.set()
        on_close, self._on_close = self._on_close, None
        if on_close is not None:
            on_close(self)

    # ----------------------------------------------------------- handler API

    def open_stream(self, call: ev.IncomingCall, direction: StreamDirection, sparse: bool = False) -> ServerStream:
        """Make ``call`` a stream call; reply with ``reply`` afterwards."""
        if self._closed:
            raise ConnectionClosed("the connection is closed")
        if self._core.stream_is_open(call.serial):
            raise StreamStateError(f"stream {call.serial} is already open")
        self._core.open_stream(call.serial, call.proc, prog=call.prog, direction=direction, sparse=sparse)
        st = ServerStream(self, call.serial)
        self._streams[call.serial] = st
        return st

    def reply(self, call: ev.IncomingCall, payload: Buffer = b"") -> None:
        if call.serial not in self._unanswered:
            raise StreamStateError(f"call {call.serial} was already answered")
        self._out(lambda core: core.send_reply(call.prog, call.vers, call.proc, call.serial, payload))
        self._answered(call.serial)

    def reply_error(self, call: ev.IncomingCall, error: LibvirtError) -> None:
        if call.serial not in self._unanswered:
            raise StreamStateError(f"call {call.serial} was already answered")
        if self._core.stream_is_open(call.serial):
            # The stream never started for the client: the error reply ends it.
            self._core.drop_stream(call.serial)
            self._stream_ended(call.serial, aborted=True)
        self._out(lambda core: core.send_error(call.prog, call.vers, call.proc, call.serial, error))
        self._answered(call.serial)

    def send_event(self, proc: int, payload: Buffer, prog: int | None = None) -> None:
        if prog is None:
            self._out(lambda core: core.send_event(proc, payload))
        else:
            self._out(lambda core: core.send_event(proc, payload, prog=prog))


__all__ = [
    "ServerConnection", "ServerStream", "Handler", "take_fds", "OUTPUT_HIGH_WATER", "MAX_REQUESTS",
    "STREAM_QUEUE_HIGH_WATER", "READ_MAX",
]
