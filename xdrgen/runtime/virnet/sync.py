"""Blocking transport: callers read their own replies (leader/follower), no thread hand-off.

Any number of threads may call at once; replies may come back in any order.
Whoever waits for something (a reply, stream data, a stream's confirmation)
and finds nobody reading the socket becomes the reader: it receives straight
into the core's buffer, parses, completes every waiter the frames concern,
then hands the role on.  The others wait on a condition until their reply is
in or the role is free.  So a single-threaded caller does its send and recv in
its own thread, and replies never cross threads unless several are waiting.

A background thread reads only while no caller has been around for
``_LINGER`` seconds (to answer keepalive PINGs, run the keepalive timer and
notice events on an idle connection), and it runs the event callbacks, in
order, outside every lock: a callback may call the connection.

Back-pressure: while a stream's queue holds ``stream_queue_frames`` chunks
and no caller waits for anything, the background thread stops reading (the
peer then blocks on its writes).  A caller waiting for a reply, for another
stream's data or for a confirmation always reads, so unread stream data never
holds up a reply; it is bounded by ``stream_buffer_max`` instead (see flow.py).
While ``event_backlog`` events wait for their callbacks, callers wait for the
event thread to drain them (no event is dropped).
"""

from __future__ import annotations

import collections
import os
import select
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Final

from xdrgen.runtime.virnet import events as ev
from xdrgen.runtime.virnet.client_common import ClientConnectionBase, EventCallback, feature_args, feature_supported
from xdrgen.runtime.virnet.constants import (
    FEATURE_PROGRAM_KEEPALIVE,
    PROC_CONNECT_SUPPORTS_FEATURE,
    REMOTE_PROGRAM,
)
from xdrgen.runtime.virnet.core import Buffer, StreamDirection, VirNetCore
from xdrgen.runtime.virnet.errors import CallTimeout, ConnectionClosed, LibvirtError, VirNetError
from xdrgen.runtime.virnet.flow import STREAM_BUFFER_MAX, STREAM_QUEUE_FRAMES
from xdrgen.runtime.virnet.sockio import close_fds, recv_into_with_fds, write_all
from xdrgen.runtime.virnet.streams import STREAM_EVENTS as STREAM_EVENTS
from xdrgen.runtime.virnet.streams import Hole as Hole
from xdrgen.runtime.virnet.streams import route_stream_event as route_stream_event
from xdrgen.runtime.virnet.sync_stream import Stream, Waiter, deadline

#: Seconds without callers before the background thread takes over reading.
_LINGER: Final = 0.05
#: Events waiting for their callbacks before reading pauses (back-pressure).
EVENT_BACKLOG_MAX: Final = 4096
#: Longest a caller polls for its reply before blocking, seconds (see _spin_recv).
_SPIN_MAX: Final = 300e-6
#: Budget to try spinning again with after it was switched off.
_SPIN_PROBE: Final = 50e-6
#: A blocking receive that returned within this many seconds counts as "almost caught".
_SPIN_HIT: Final = 300e-6
#: Gives the CPU to any runnable thread on ours between polls (no-op where missing).
_yield_cpu: Final[Callable[[], None]] = getattr(os, "sched_yield", lambda: None)


class Connection(ClientConnectionBase[Waiter, Stream]):
    """A blocking libvirt RPC client connection over a connected socket.

    ``stream_queue_frames``: chunks a stream queues before reading pauses for
    it (when nothing else waits); ``stream_buffer_max``: unread stream bytes the
    connection holds at most before aborting the largest backlog (flow.py).
    """

    def __init__(
        self,
        sock: socket.socket,
        *,
        programs: Mapping[int, int] | None = None,
        on_event: EventCallback | None = None,
        stream_queue_frames: int = STREAM_QUEUE_FRAMES,
        stream_buffer_max: int = STREAM_BUFFER_MAX,
        buffer_size: int = 1 << 20,
        event_backlog: int = EVENT_BACKLOG_MAX,
    ) -> None:
        if event_backlog < 1 or stream_queue_frames < 1:
            raise ValueError("event_backlog and stream_queue_frames must be >= 1")
        self._sock = sock
        self._unix = sock.family == socket.AF_UNIX
        super().__init__(programs=programs, buffer_size=buffer_size, receives_fds=self._unix,
                         stream_queue_frames=stream_queue_frames, stream_buffer_max=stream_buffer_max)
        self._lock = threading.Lock()
        #: Followers (threads waiting for a reply or for the reader role) wait here.
        self._cv = threading.Condition(self._lock)
        #: The background thread waits here (separate, so replies don't wake it).
        self._bg_cv = threading.Condition(self._lock)
        self._write_lock = threading.Lock()
        self._reading = False
        self._followers = 0
        self._spin = _SPIN_MAX
        self._last_caller = time.monotonic()
        self._full_streams: set[int] = set()
        self._callbacks: list[EventCallback] = [on_event] if on_event else []
        self._backlog: collections.deque[ev.EventMessage] = collections.deque()
        self._event_backlog = event_backlog
        # Wakes a reader out of poll() when a timer (keepalive) starts or we close.
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self._poller = select.poll()
        self._poller.register(sock, select.POLLIN)
        self._poller.register(self._wake_r, select.POLLIN)
        self._background = threading.Thread(target=self._background_loop, name="virnet-background", daemon=True)
        self._background.start()

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
        """Run ``callback`` for every MESSAGE frame (events), in order, in the background thread.

        Callbacks run outside the connection's locks, so they may call the
        connection; while one runs, later events wait (up to ``event_backlog``,
        then reading pauses).  Exceptions are kept in ``callback_errors``.
        """
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
        if fds != ():
            payload_view, got, _ = self._call(proc, payload, prog=prog, timeout=timeout, fds=fds)
            close_fds(got)
            return payload_view
        # The common case, kept short: no fds, no stream, no closure.
        waiter = Waiter()
        with self._lock:
            if self._error is not None:
                raise self._error
            serial = self._core.send_call(proc, payload, prog=prog)
            self._pending[serial] = waiter
        self._flush(blocking=True)
        self._await_reply(waiter, serial, proc, timeout)
        assert waiter.payload is not None
        if waiter.fds:
            close_fds(waiter.fds)  # a reply with fds nobody asked for (libvirt's client closes them too)
        return waiter.payload

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
        payload_view, got, stream = self._call(
            proc, payload, prog=prog, timeout=timeout, fds=(), direction=direction, sparse=sparse
        )
        close_fds(got)
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
        waiter = Waiter()
        stream: Stream | None = None

        def queue(core: VirNetCore) -> int:
            nonlocal stream
            serial = core.send_call(proc, payload, prog=prog, fds=fds, stream=direction, sparse=sparse)
            self._pending[serial] = waiter
            if direction is not None:
                stream = Stream(self, serial, direction, sparse, self._stream_queue_frames)
                self._streams[serial] = stream
            return serial

        serial = self._send(queue)
        assert isinstance(serial, int)
        self._await_reply(waiter, serial, proc, timeout)
        assert waiter.payload is not None
        return waiter.payload, waiter.fds, stream

    def _await_reply(
        self, waiter: Waiter, serial: int, proc: int, timeout: float | None
    ) -> None:
        """Block until ``waiter``'s reply came; raise its error or CallTimeout."""
        if not waiter.done:  # the reply often came during the flush: no lock then
            with self._cv:
                if not waiter.done and not self._wait_until(waiter.finished, deadline(timeout)):
                    self._timed_out(serial)
                    raise CallTimeout(f"procedure {proc}: no reply within {timeout} s")
        if waiter.error is not None:
            raise waiter.error

    def _timed_out(self, serial: int) -> None:
        """Lock held: forget a call whose caller gave up; a late reply is dropped."""
        self._forget_call(serial)

    def _wait_for(self, waiter: Waiter, timeout: float | None, message: str) -> None:
        with self._cv:
            if not waiter.done and not self._wait_until(waiter.finished, deadline(timeout)):
                raise CallTimeout(message)

    # -------------------------------------------------------- leader/follower

    def _may_read(self, *, waiting: bool, background: bool) -> bool:
        """Lock held: may this thread take the reader role now?  (See flow.py.)

        A thread that waits for something (a reply, stream data, a
        confirmation) reads even when streams are full: what it waits for may
        be behind their data.  Reading just to serve an idle connection stops
        while a stream is full.  Callers let the event thread drain a full
        event backlog first; the event thread itself never waits for it.
        """
        if not waiting:
            return not self._full_streams
        return background or len(self._backlog) < self._event_backlog

    def _wait_until(self, ready: Callable[[], bool], deadline: float | None) -> bool:
        """Lock held: block until ``ready()`` or the connection fails; False on timeout.

        Reads the socket itself whenever nobody else does (see the module
        docstring); otherwise waits for the reader to wake it.
        """
        background = threading.current_thread() is self._background
        try:
            while not ready():
                if self._error is not None:
                    return True
                if deadline is not None and time.monotonic() >= deadline:
                    return False
                if not self._reading and self._may_read(waiting=True, background=background):
                    self._read_round(deadline, poll=background)
                    continue
                self._followers += 1
                try:
                    self._cv.wait(None if deadline is None else deadline - time.monotonic())
                finally:
                    self._followers -= 1
            return True
        finally:
            if not background:
                self._last_caller = time.monotonic()

    def _read_round(self, deadline: float | None, *, poll: bool) -> None:
        """Lock held, role free: take the reader role for one receive, then hand it on.

        The lock is released around the syscalls.  Failures end the connection
        (every waiter learns it); nothing is raised.
        """
        self._reading = True
        core = self._core
        try:
            timer = core.next_deadline()
            until = timer if deadline is None else deadline if timer is None else min(deadline, timer)
            view = core.get_buffer()
            n = -1
            fds: list[int] = []
            failure: VirNetError | None = None
            self._lock.release()
            try:
                got = None if poll else self._spin_recv(view)
                if got is not None:
                    n, fds = got
                elif until is None and not poll:
                    started = time.perf_counter()
                    n, fds = recv_into_with_fds(self._sock, view, self._unix)
                    self._adapt_spin(time.perf_counter() - started)
                else:
                    wait_ms = -1 if until is None else max(0, int((until - time.monotonic()) * 1000) + 1)
                    readable = False
                    for fd, _ in self._poller.poll(wait_ms):
                        if fd == self._wake_r:
                            os.read(self._wake_r, 512)
                        else:
                            readable = True
                    if readable:
                        n, fds = recv_into_with_fds(self._sock, view, self._unix)
            except OSError as exc:
                failure = ConnectionClosed(f"read failed: {exc}")
            finally:
                self._lock.acquire()
            try:
                if failure is not None:
                    raise failure
                if n == 0:
                    close_fds(fds)
                    raise ConnectionClosed("connection closed by peer")
                if n > 0:
                    events = core.fds_received(fds) if fds else []  # before the bytes they came with
                    events += core.buffer_updated(n)
                    self._dispatch(events)
                if timer is not None and time.monotonic() >= timer:
                    self._dispatch(core.expire(time.monotonic()))
            except VirNetError as exc:
                if self._error is None:
                    self._fail(exc)
                return
            if core.output_bytes:
                # A PONG or PING to send; never block behind another writer here.
                self._lock.release()
                try:
                    self._flush(blocking=False)
                except VirNetError:
                    pass
                finally:
                    self._lock.acquire()
        finally:
            self._reading = False
            if self._followers:
                self._cv.notify_all()

    def _spin_recv(self, view: memoryview) -> tuple[int, list[int]] | None:
        """Poll with non-blocking receives for a moment before sleeping in the kernel.

        A reply to a fast call comes back within tens of microseconds; waking
        a thread that slept (and the idle CPU under it) costs about as much
        again, so the caller polls briefly first.  Between polls it yields the
        CPU: on a busy or small machine the peer's thread may be queued on our
        CPU, and a plain spin would delay the very reply it waits for.  The
        budget adapts: it shrinks while replies keep coming late, and returns
        once they are fast.
        """
        budget = self._spin
        if budget <= 0.0:
            return None
        sock, unix = self._sock, self._unix
        end = 0.0
        while True:
            try:
                got = recv_into_with_fds(sock, view, unix, socket.MSG_DONTWAIT)
            except BlockingIOError:
                now = time.perf_counter()
                if not end:
                    end = now + budget
                elif now >= end:
                    return None
                _yield_cpu()
                continue
            self._spin = _SPIN_MAX
            return got

    def _adapt_spin(self, waited: float) -> None:
        # Polling failed: for slow calls it only burns time, so back off;
        # spin fully again as soon as a reply comes soon after blocking.
        if waited < _SPIN_HIT:
            self._spin = min(_SPIN_MAX, max(self._spin, _SPIN_PROBE) * 2)
        else:
            half = self._spin / 2
            self._spin = half if half >= _SPIN_PROBE / 2 else 0.0

    # ------------------------------------------------------------- background

    def _background_loop(self) -> None:
        """Run event callbacks in order; read while no caller is around."""
        with self._lock:
            while True:
                if self._backlog:
                    batch = list(self._backlog)
                    self._backlog.clear()
                    if self._followers:
                        self._cv.notify_all()  # reading may resume
                    self._lock.release()
                    try:
                        self._run_callbacks(self._callbacks, batch)
                    finally:
                        self._lock.acquire()
                    continue
                if self._error is not None:
                    return
                idle = time.monotonic() - self._last_caller
                if idle >= _LINGER and not self._reading and not self._followers and self._may_read(waiting=False, background=True):
                    self._read_round(None, poll=True)
                    continue
                self._bg_cv.wait(max(_LINGER - idle, 0.001) if idle < _LINGER else _LINGER)

    # --------------------------------------------------------------- keepalive

    def supports_feature(self, feature: int, timeout: float | None = None) -> bool:
        """CONNECT_SUPPORTS_FEATURE (args {int feature; unsigned flags}, ret {int})."""
        return feature_supported(self.call(PROC_CONNECT_SUPPORTS_FEATURE, feature_args(feature), timeout=timeout))

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
            self._bg_cv.notify()
        self._wake()
        return True

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"\0")
        except OSError:
            pass  # pipe full (the reader is awake anyway) or closed

    # ------------------------------------------------------------------- input

    def _resolve(self, pending: Waiter, reply: ev.Reply) -> None:
        pending.payload = reply.payload
        pending.fds = reply.fds
        pending.done = True

    def _reject(self, pending: Waiter, error: BaseException) -> None:
        pending.error = error
        pending.done = True

    def _event_message(self, message: ev.EventMessage) -> None:
        """Lock held: queue the event for the callbacks (the background thread runs them)."""
        if self._callbacks:
            self._backlog.append(message)
            self._bg_cv.notify()

    def _fail(self, error: VirNetError) -> None:
        """Lock held: end the connection; every waiter and stream learns ``error``."""
        if self._error is None:
            self._error = error
        self._core.connection_lost(error)
        self._fail_pending(error)
        self._full_streams.clear()
        self._cv.notify_all()
        self._bg_cv.notify_all()
        try:
            self._sock.shutdown(socket.SHUT_RDWR)  # wakes a reader blocked in recv
        except OSError:
            pass

    def _shutdown(self, error: VirNetError) -> None:
        with self._lock:
            self._fail(error)
        self._wake()

    # ------------------------------------------------------------------- close

    def close(self) -> None:
        """Close the socket; pending calls fail with ConnectionClosed."""
        self._shutdown(ConnectionClosed("connection closed by this side"))
        if threading.current_thread() is not self._background:
            self._background.join(5)
        with self._lock:
            # A reader still inside poll/recv must leave before its fds are
            # closed (they could be recycled under it); the shutdown woke it.
            self._followers += 1
            try:
                self._cv.wait_for(lambda: not self._reading, 5)
            finally:
                self._followers -= 1
            if self._reading:
                return  # stuck reader: leave the fds to it rather than risk reuse
        self._sock.close()
        close_fds((self._wake_r, self._wake_w))

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = [
    "Connection", "Stream", "Hole", "LibvirtError", "EVENT_BACKLOG_MAX", "EventCallback", "STREAM_EVENTS",
    "route_stream_event",
]
