"""Blocking transport: one reader thread per connection, callers block on their replies.

Any number of threads may call at once; replies may come back in any order.
The reader thread parses frames with the sans-IO core, completes waiting
calls, answers keepalive PINGs, runs event callbacks and feeds stream queues.
When a stream's queue is full the reader stops reading the socket until the
consumer catches up (back-pressure reaches the peer through the socket).
"""

from __future__ import annotations

import collections
import os
import select
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from xdrgen.runtime.virnet import events as ev
from xdrgen.runtime.virnet.constants import (
    FEATURE_PROGRAM_KEEPALIVE,
    PROC_CONNECT_SUPPORTS_FEATURE,
    REMOTE_PROGRAM,
)
from xdrgen.runtime.virnet.core import Buffer, StreamDirection, VirNetCore
from xdrgen.runtime.virnet.errors import (
    CallTimeout,
    ConnectionClosed,
    LibvirtError,
    PeerDead,
    ProtocolError,
    StreamStateError,
    VirNetError,
)
from xdrgen.runtime.virnet.sockio import close_fds, recv_into_with_fds, write_all

EventCallback = Callable[[ev.EventMessage], None]


@dataclass(frozen=True, slots=True)
class Hole:
    """A hole of ``length`` bytes in a sparse stream."""

    length: int


class _Waiter:
    __slots__ = ("done", "payload", "fds", "error")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.payload: memoryview | None = None
        self.fds: list[int] = []
        self.error: BaseException | None = None


_EOF = object()


class Stream:
    """One libvirt stream on a blocking connection.

    ``recv`` returns memoryviews into the connection's receive buffer (no copy);
    they stay valid while referenced.  ``send`` writes the caller's buffer
    straight to the socket behind a 28-byte prefix per chunk.
    """

    def __init__(self, conn: Connection, serial: int, direction: StreamDirection, sparse: bool, max_queued: int) -> None:
        self._conn = conn
        self.serial = serial
        self.direction = direction
        self.sparse = sparse
        self._max_queued = max_queued
        self._queue: collections.deque[memoryview | Hole | object] = collections.deque()
        self._cond = threading.Condition(conn._lock)
        self._error: BaseException | None = None
        self._closed = False  # finished, aborted or failed: no more traffic
        self._eof = False
        self._close_waiter: _Waiter | None = None

    # Called by the reader thread with the connection lock held.
    def _push(self, item: memoryview | Hole | object) -> None:
        while len(self._queue) >= self._max_queued and not self._closed and self._conn._error is None:
            self._cond.wait()
        if not self._closed:
            self._queue.append(item)
            self._cond.notify_all()

    def _fail(self, error: BaseException) -> None:
        if self._error is None:
            self._error = error
        self._closed = True
        self._queue.clear()
        if self._close_waiter is not None:
            self._close_waiter.error = error
            self._close_waiter.done.set()
        self._cond.notify_all()

    def _closed_ok(self) -> None:
        self._closed = True
        if self._close_waiter is not None:
            self._close_waiter.done.set()
        self._cond.notify_all()

    def recv(self, timeout: float | None = None) -> memoryview | Hole | None:
        """The next chunk of data, a Hole (sparse streams only), or None at the end."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._queue or self._error is not None or self._eof or self._closed, timeout):
                raise CallTimeout(f"no stream data within {timeout} s")
            if self._queue:
                item = self._queue.popleft()
                self._cond.notify_all()
                if item is _EOF:
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
        with self._cond:
            pending = self._queue[0] if self._queue else None
        if isinstance(pending, memoryview) and pending.nbytes > target.nbytes:
            with self._cond:
                n = target.nbytes
                target[:n] = pending[:n]
                self._queue[0] = pending[n:]
                return n
        item = self.recv()
        if item is None:
            return 0
        if isinstance(item, Hole):
            raise StreamStateError("recv_into met a hole; use recv() on sparse streams")
        n = item.nbytes
        if n > target.nbytes:
            with self._cond:
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

    def _check_open(self) -> None:
        if self._error is not None:
            raise self._error
        if self._closed:
            raise StreamStateError(f"stream {self.serial} is closed")

    def finish(self, timeout: float | None = None) -> None:
        """Send the empty OK and wait for the peer's confirmation (raises its error)."""
        self._check_open()
        waiter = _Waiter()
        with self._cond:
            self._close_waiter = waiter
        self._conn._send(lambda core: core.finish_stream(self.serial))
        if not waiter.done.wait(timeout):
            raise CallTimeout(f"stream {self.serial}: no finish confirmation within {timeout} s")
        if waiter.error is not None:
            raise waiter.error

    def abort(self, timeout: float | None = None) -> None:
        """Send the empty ERROR, drop queued data, wait for the acknowledgement."""
        waiter = _Waiter()
        with self._cond:
            if self._closed:
                return
            self._close_waiter = waiter
            self._queue.clear()
            self._cond.notify_all()
        self._conn._send(lambda core: core.abort_stream(self.serial))
        if not waiter.done.wait(timeout):
            raise CallTimeout(f"stream {self.serial}: no abort acknowledgement within {timeout} s")
        with self._cond:
            self._error = self._error or StreamStateError(f"stream {self.serial} was aborted")

    def __iter__(self) -> Stream:
        return self

    def __next__(self) -> memoryview | Hole:
        item = self.recv()
        if item is None:
            raise StopIteration
        return item


class Connection:
    """A blocking libvirt RPC client connection over a connected socket."""

    def __init__(
        self,
        sock: socket.socket,
        *,
        programs: Mapping[int, int] | None = None,
        on_event: EventCallback | None = None,
        stream_queue_frames: int = 64,
        buffer_size: int = 1 << 20,
    ) -> None:
        self._sock = sock
        self._unix = sock.family == socket.AF_UNIX
        self._core = VirNetCore(programs=programs, buffer_size=buffer_size)
        self._lock = threading.RLock()
        self._write_lock = threading.Lock()
        self._waiters: dict[int, _Waiter] = {}
        self._streams: dict[int, Stream] = {}
        self._callbacks: list[EventCallback] = [on_event] if on_event else []
        self._stream_queue_frames = stream_queue_frames
        self._error: VirNetError | None = None
        self._closing = False
        #: PINGs received from the peer (and answered); for diagnostics and tests.
        self.pings_answered = 0
        # Wakes the reader out of poll() when a timer (keepalive) starts.
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self._reader = threading.Thread(target=self._read_loop, name="virnet-reader", daemon=True)
        self._reader.start()

    # ------------------------------------------------------------ construction

    @classmethod
    def connect_unix(cls, path: str, **kwargs: object) -> Connection:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(path)
        except OSError:
            sock.close()
            raise
        return cls(sock, **kwargs)  # type: ignore[arg-type]

    @classmethod
    def connect_tcp(cls, host: str, port: int, **kwargs: object) -> Connection:
        sock = socket.create_connection((host, port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(sock, **kwargs)  # type: ignore[arg-type]

    def add_event_callback(self, callback: EventCallback) -> None:
        """Run ``callback`` in the reader thread for every MESSAGE frame (events)."""
        self._callbacks.append(callback)

    # ------------------------------------------------------------------ output

    def _send(self, queue_output: Callable[[VirNetCore], object]) -> object:
        """Queue frames under the lock, then write everything queued, in order."""
        with self._lock:
            if self._error is not None:
                raise self._error
            result = queue_output(self._core)
        self._flush(blocking=True)
        return result

    def _flush(self, *, blocking: bool) -> None:
        """Write out everything queued; one writer at a time keeps frames in order.

        The writer gives up the write lock only while holding the core lock and
        seeing an empty queue, so output queued by another thread is never
        stranded: either the current writer sees it, or the lock is free.
        """
        if not self._write_lock.acquire(blocking=blocking):
            return
        while True:
            with self._lock:
                buffers = self._core.data_to_send()
                if not buffers:
                    self._write_lock.release()
                    return
            try:
                write_all(self._sock, buffers)
            except OSError as exc:
                self._write_lock.release()
                self._shutdown(ConnectionClosed(f"write failed: {exc}"))
                raise self._error or ConnectionClosed(str(exc)) from exc

    # ------------------------------------------------------------------- calls

    def call(
        self,
        proc: int,
        payload: Buffer = b"",
        *,
        prog: int = REMOTE_PROGRAM,
        timeout: float | None = None,
        fds: Iterable[int] = (),
    ) -> memoryview:
        """Call ``proc`` with an encoded ``_args`` payload; returns the encoded ``_ret``.

        Raises LibvirtError (NotSupportedError for VIR_ERR_NO_SUPPORT) when the
        peer reports a failure, CallTimeout after ``timeout`` seconds.
        """
        payload_view, _fds, _ = self._call(proc, payload, prog=prog, timeout=timeout, fds=fds)
        return payload_view

    def call_with_fds(
        self, proc: int, payload: Buffer = b"", *, prog: int = REMOTE_PROGRAM, timeout: float | None = None,
        fds: Iterable[int] = (),
    ) -> tuple[memoryview, list[int]]:
        """Like ``call``, also returning fds the reply carried (the caller owns them)."""
        payload_view, got, _ = self._call(proc, payload, prog=prog, timeout=timeout, fds=fds)
        return payload_view, got

    def call_stream(
        self,
        proc: int,
        payload: Buffer = b"",
        *,
        direction: StreamDirection,
        sparse: bool = False,
        prog: int = REMOTE_PROGRAM,
        timeout: float | None = None,
    ) -> tuple[memoryview, Stream]:
        """Call a stream procedure: returns its ``_ret`` payload and the open stream."""
        payload_view, _fds, stream = self._call(
            proc, payload, prog=prog, timeout=timeout, fds=(), direction=direction, sparse=sparse
        )
        assert stream is not None
        return payload_view, stream

    def _call(
        self,
        proc: int,
        payload: Buffer,
        *,
        prog: int,
        timeout: float | None,
        fds: Iterable[int],
        direction: StreamDirection | None = None,
        sparse: bool = False,
    ) -> tuple[memoryview, list[int], Stream | None]:
        waiter = _Waiter()
        stream: Stream | None = None

        def queue(core: VirNetCore) -> int:
            nonlocal stream
            serial = core.send_call(proc, payload, prog=prog, fds=fds, stream=direction, sparse=sparse)
            self._waiters[serial] = waiter
            if direction is not None:
                stream = Stream(self, serial, direction, sparse, self._stream_queue_frames)
                self._streams[serial] = stream
            return serial

        serial = self._send(queue)
        assert isinstance(serial, int)
        if not waiter.done.wait(timeout):
            with self._lock:
                if not waiter.done.is_set():
                    self._core.cancel_call(serial)
                    self._waiters.pop(serial, None)
                    self._streams.pop(serial, None)
                    raise CallTimeout(f"procedure {proc}: no reply within {timeout} s")
        if waiter.error is not None:
            raise waiter.error
        assert waiter.payload is not None
        return waiter.payload, waiter.fds, stream

    # --------------------------------------------------------------- keepalive

    def supports_feature(self, feature: int, timeout: float | None = None) -> bool:
        """CONNECT_SUPPORTS_FEATURE (args {int feature; unsigned flags}, ret {int})."""
        ret = self.call(PROC_CONNECT_SUPPORTS_FEATURE, struct.pack(">iI", feature, 0), timeout=timeout)
        if len(ret) != 4:
            raise ProtocolError(f"connect_supports_feature reply of {len(ret)} bytes, expected 4")
        return bool(struct.unpack(">i", ret)[0])

    def start_keepalive(self, interval: float = 5.0, count: int = 5) -> bool:
        """Ask the peer whether it speaks keepalive; if so, ping it when idle.

        Returns whether keepalive was switched on.  A peer silent for
        ``interval * count`` seconds is declared dead: everything pending fails
        with PeerDead and the connection closes.
        """
        if not self.supports_feature(FEATURE_PROGRAM_KEEPALIVE):
            return False
        with self._lock:
            self._core.start_keepalive(interval, count, time.monotonic())
        self._wake()
        return True

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"\0")
        except OSError:
            pass  # pipe full: the reader is awake anyway

    # ------------------------------------------------------------------- input

    def _read_loop(self) -> None:
        sock = self._sock
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        poller.register(self._wake_r, select.POLLIN)
        sock_fd = sock.fileno()
        try:
            while True:
                with self._lock:
                    deadline = self._core.next_deadline()
                wait_ms = None if deadline is None else max(0, int((deadline - time.monotonic()) * 1000) + 1)
                ready = poller.poll(wait_ms)
                if any(fd == self._wake_r for fd, _ in ready):
                    os.read(self._wake_r, 512)
                if not any(fd == sock_fd for fd, _ in ready):
                    self._tick()
                    continue
                with self._lock:
                    view = self._core.get_buffer()
                try:
                    n, fds = recv_into_with_fds(sock, view, self._unix)
                except OSError as exc:
                    view.release()
                    raise ConnectionClosed(f"read failed: {exc}") from exc
                if n == 0:
                    view.release()
                    close_fds(fds)
                    raise ConnectionClosed("connection closed by peer")
                with self._lock:
                    events = self._core.buffer_updated(n)
                    if fds:
                        events += self._core.fds_received(fds)
                    self._dispatch(events)
                    pending_output = self._core.output_bytes > 0
                if pending_output:
                    self._flush_from_reader()
                if deadline is not None:
                    self._tick()
        except VirNetError as exc:
            self._shutdown(exc)
        except OSError as exc:
            self._shutdown(ConnectionClosed(str(exc)))

    def _tick(self) -> None:
        with self._lock:
            events = self._core.expire(time.monotonic())
            self._dispatch(events)
            pending_output = self._core.output_bytes > 0
        if pending_output:
            self._flush_from_reader()

    def _flush_from_reader(self) -> None:
        # The reader must never block behind a writer that waits for the peer to
        # read (the peer may be waiting for us): if someone is writing, that
        # writer picks our output up (see _flush).
        try:
            self._flush(blocking=False)
        except VirNetError:
            pass

    def _dispatch(self, events: list[ev.Event]) -> None:
        for e in events:
            if isinstance(e, ev.Reply):
                w = self._waiters.pop(e.serial, None)
                if w is not None:
                    w.payload = e.payload
                    w.fds = e.fds
                    w.done.set()
                else:
                    close_fds(e.fds)
            elif isinstance(e, ev.ReplyError):
                w = self._waiters.pop(e.serial, None)
                st = self._streams.pop(e.serial, None)
                if st is not None:
                    st._fail(e.error)
                if w is not None:
                    w.error = e.error
                    w.done.set()
            elif isinstance(e, ev.StreamData):
                st = self._streams.get(e.serial)
                if st is not None:
                    st._push(e.data)
            elif isinstance(e, ev.StreamHole):
                st = self._streams.get(e.serial)
                if st is not None:
                    st._push(Hole(e.length))
            elif isinstance(e, ev.StreamEnd):
                st = self._streams.get(e.serial)
                if st is not None:
                    st._push(_EOF)
            elif isinstance(e, (ev.StreamFinished, ev.StreamAborted)):
                st = self._streams.pop(e.serial, None)
                if st is not None:
                    st._closed_ok()
            elif isinstance(e, ev.StreamFailed):
                st = self._streams.pop(e.serial, None)
                if st is not None:
                    st._fail(e.error)
            elif isinstance(e, ev.EventMessage):
                for cb in list(self._callbacks):
                    cb(e)
            elif isinstance(e, ev.KeepalivePing):
                self.pings_answered += 1
            elif isinstance(e, ev.PeerDeadEvent):
                raise PeerDead("keepalive: the peer stopped answering")
            elif isinstance(e, ev.CallTimedOut):
                w = self._waiters.pop(e.serial, None)
                if w is not None:
                    w.error = CallTimeout(f"procedure {e.proc}: no reply in time")
                    w.done.set()

    def _shutdown(self, error: VirNetError) -> None:
        with self._lock:
            if self._error is None:
                self._error = error
            self._core.connection_lost(error)
            waiters, self._waiters = self._waiters, {}
            streams, self._streams = self._streams, {}
            for w in waiters.values():
                w.error = error
                w.done.set()
            for st in streams.values():
                st._fail(error)
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # ------------------------------------------------------------------- close

    @property
    def error(self) -> VirNetError | None:
        """Why the connection ended (None while it is up)."""
        return self._error

    def close(self) -> None:
        """Close the socket; pending calls fail with ConnectionClosed."""
        self._shutdown(ConnectionClosed("connection closed by this side"))
        self._wake()
        if threading.current_thread() is not self._reader:
            self._reader.join(5)
        self._sock.close()
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["Connection", "Stream", "Hole", "LibvirtError"]
