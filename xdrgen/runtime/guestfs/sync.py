"""Blocking transport over a unix socket: calls, uploads (FileIn) and downloads (FileOut).

The daemon answers one call at a time, so there is no reader thread: each
call writes, then reads until its conversation is over.  A lock serialises
callers from several threads.  Between upload chunks the socket is polled
without blocking so that the daemon's cancel flag and progress messages are
seen while sending.
"""

from __future__ import annotations

import select
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final, Protocol, TypeVar, cast

from xdrgen.runtime.codec import Codec
from xdrgen.runtime.errors import XdrError
from xdrgen.runtime.guestfs import events as ev
from xdrgen.runtime.guestfs.core import GuestfsCore, Phase
from xdrgen.runtime.guestfs.errors import (
    GuestfsCancelled,
    GuestfsConnectionClosed,
    GuestfsError,
    GuestfsReplyDecodeError,
    GuestfsRuntimeError,
    GuestfsStateError,
    GuestfsTimeout,
)
from xdrgen.runtime.guestfs.framing import Buffer, OutBuffers

T = TypeVar("T")
ProgressCallback = Callable[[ev.ProgressNotice], object]
CancelCheck = Callable[[], bool]

#: Linux's IOV_MAX: most buffers one sendmsg takes.
_IOV_MAX: Final = 1024
#: Upload block read from a file per round (32 chunks of 8 KiB, one sendmsg).
UPLOAD_BLOCK: Final = 256 * 1024
_RECV_SIZE: Final = 256 * 1024


class _Readable(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...


class _Writable(Protocol):
    def write(self, data: bytes, /) -> object: ...


UploadSource = Buffer | _Readable | Iterable[Buffer]
DownloadSink = bytearray | _Writable | Callable[[bytes], object]


@dataclass
class _Conversation:
    """What one call has produced so far."""

    progress: ProgressCallback | None
    sink: Callable[[bytes], object] | None = None
    reply: ev.Reply | None = None
    error: GuestfsError | None = None
    cancelled: ev.TransferCancelled | None = None
    daemon_cancelled_upload: bool = False
    done: bool = False
    received: int = 0
    #: An exception raised by the caller's sink or callback, re-raised at the end.
    callback_error: BaseException | None = None
    notices: list[ev.ProgressNotice] = field(default_factory=list)


class GuestfsConnection:
    """A client connection to guestfsd (see the module docstring)."""

    def __init__(self, sock: socket.socket, *, timeout: float | None = 60.0, expect_launch: bool = True) -> None:
        """Wrap a connected socket; waits for the launch flag when ``expect_launch``.

        ``timeout`` bounds every wait for the daemon; when it expires the
        connection is closed (it would be out of step) and GuestfsTimeout raised.
        """
        self._sock = sock
        self._timeout = timeout
        sock.settimeout(timeout)
        self._core = GuestfsCore(expect_launch=expect_launch)
        self._lock = threading.RLock()
        #: Tells, without waiting, whether the daemon has sent something (the socket
        #: has a timeout, so MSG_DONTWAIT would wait anyway).
        self._poller = select.poll()
        self._poller.register(sock, select.POLLIN)
        if expect_launch:
            with self._lock:
                while self._core.phase is Phase.AWAIT_LAUNCH:
                    for event in self._read(block=True):
                        if not isinstance(event, ev.Launched):
                            raise GuestfsStateError(f"unexpected {type(event).__name__} before launch")

    @classmethod
    def connect(cls, path: str, *, timeout: float | None = 60.0) -> GuestfsConnection:
        """Connect to the daemon's unix socket and wait until it is ready."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout)
            sock.connect(path)
            return cls(sock, timeout=timeout)
        except BaseException:
            sock.close()
            raise

    # --------------------------------------------------------------- lifetime

    def close(self) -> None:
        self._core.connection_lost(GuestfsConnectionClosed("connection closed by this side"))
        self._sock.close()

    def __enter__(self) -> GuestfsConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def core(self) -> GuestfsCore:
        return self._core

    # ------------------------------------------------------------------ calls

    def call(
        self,
        proc: int,
        args_codec: Codec[Any] | None,
        args: Any,
        ret_codec: Codec[T] | None,
        *,
        optargs_bitmask: int = 0,
        progress: ProgressCallback | None = None,
    ) -> T | None:
        """A plain call: returns the decoded ``_ret`` value (None for void).

        Raises GuestfsError when the daemon reports a failure.
        """
        payload = args_codec.encode(args) if args_codec is not None else b""
        with self._lock:
            conv = _Conversation(progress)
            self._core.send_call(proc, payload, optargs_bitmask=optargs_bitmask)
            self._flush()
            self._finish(conv)
            return self._result(conv, ret_codec)

    def upload(
        self,
        proc: int,
        args_codec: Codec[Any] | None,
        args: Any,
        source: UploadSource,
        ret_codec: Codec[T] | None = None,
        *,
        progress_hint: int = 0,
        optargs_bitmask: int = 0,
        progress: ProgressCallback | None = None,
        cancel: CancelCheck | None = None,
    ) -> T | None:
        """A FileIn call: sends ``source`` in chunks after the call, then the reply.

        ``source``: a bytes-like object, a binary file (``read``), or an iterable
        of bytes-like blocks.  ``cancel()`` is polled between blocks: when it
        returns True the upload is cancelled and GuestfsCancelled raised.  If the
        daemon cancels (e.g. it cannot open the target), its error is raised as
        GuestfsError.  Either way the connection stays usable.
        """
        payload = args_codec.encode(args) if args_codec is not None else b""
        with self._lock:
            conv = _Conversation(progress)
            core = self._core
            core.send_call(proc, payload, file_in=True, progress_hint=progress_hint, optargs_bitmask=optargs_bitmask)
            self._flush()
            try:
                for block in _blocks(source):
                    if cancel is not None and cancel():
                        core.cancel_upload()
                        break
                    if not core.send_data(block):
                        break  # the daemon cancelled; its cancel chunk is already queued
                    self._flush()
                    self._poll(conv)
                    if conv.daemon_cancelled_upload or conv.done:
                        break
                else:
                    core.end_upload()
            except GuestfsRuntimeError:
                raise
            except BaseException:
                # The source failed (or an interrupt): cancel so the daemon stays in step.
                self._abandon_upload(conv)
                raise
            self._flush()
            self._finish(conv)
            return self._result(conv, ret_codec)

    def download(
        self,
        proc: int,
        args_codec: Codec[Any] | None,
        args: Any,
        sink: DownloadSink,
        *,
        optargs_bitmask: int = 0,
        progress: ProgressCallback | None = None,
        cancel: CancelCheck | None = None,
    ) -> int:
        """A FileOut call: passes each received chunk to ``sink``; returns the byte count.

        ``sink``: a bytearray (extended), a callable taking bytes, or an object
        with ``write`` (a binary file).  When
        ``cancel()`` returns True (polled before each read), or the sink raises,
        the download is cancelled, the rest discarded, and GuestfsCancelled (or
        the sink's exception) raised; the connection stays usable.
        """
        payload = args_codec.encode(args) if args_codec is not None else b""
        write = _sink_writer(sink)
        with self._lock:
            conv = _Conversation(progress, sink=write)
            core = self._core
            cancelled = False
            core.send_call(proc, payload, file_out=True, optargs_bitmask=optargs_bitmask)
            self._flush()
            while not conv.done:
                if cancel is not None and not cancelled and conv.callback_error is None and cancel():
                    core.cancel_download()
                    cancelled = True
                    self._flush()
                self._process(self._read(block=True), conv)
                self._flush()
            self._result(conv, None)
            return conv.received

    # -------------------------------------------------------------- internals

    def _abandon_upload(self, conv: _Conversation) -> None:
        """After a local failure mid-upload: cancel and consume the reply, if we still can."""
        core = self._core
        if core.failed is not None:
            return
        try:
            if core.phase is Phase.UPLOADING:
                core.cancel_upload()
            self._flush()
            self._finish(conv)
        except GuestfsRuntimeError:
            pass  # the original exception is more useful

    def _result(self, conv: _Conversation, ret_codec: Codec[T] | None) -> T | None:
        if conv.callback_error is not None:
            raise conv.callback_error
        if conv.error is not None:
            raise conv.error
        if conv.cancelled is not None:
            if conv.cancelled.by_daemon:
                raise GuestfsError("the daemon cancelled the file transfer")
            raise GuestfsCancelled("file transfer cancelled by this side")
        reply = conv.reply
        assert reply is not None
        if ret_codec is None:
            if reply.payload:
                raise GuestfsReplyDecodeError(
                    f"reply to procedure {reply.proc} has {len(reply.payload)} payload bytes, expected none",
                    reply.offset,
                )
            return None
        try:
            return ret_codec.decode(reply.payload)
        except XdrError as exc:
            where = reply.offset + exc.offset if exc.offset is not None else reply.offset
            raise GuestfsReplyDecodeError(f"reply to procedure {reply.proc}: {exc}", where) from exc

    def _finish(self, conv: _Conversation) -> None:
        while not conv.done:
            self._process(self._read(block=True), conv)
            self._flush()

    def _poll(self, conv: _Conversation) -> None:
        """Handle whatever the daemon has sent, without waiting."""
        self._process(self._read(block=False), conv)

    def _process(self, events: list[ev.Event], conv: _Conversation) -> None:
        core = self._core
        for event in events:
            if isinstance(event, ev.DownloadData):
                conv.received += len(event.data)
                if conv.sink is not None and conv.callback_error is None:
                    try:
                        conv.sink(event.data)
                    except Exception as exc:  # the caller's sink: cancel, then re-raise
                        conv.callback_error = exc
                        core.cancel_download()
            elif isinstance(event, ev.ProgressNotice):
                if conv.progress is not None and conv.callback_error is None:
                    try:
                        conv.progress(event)
                    except Exception as exc:
                        conv.callback_error = exc
                        if core.phase is Phase.DOWNLOADING:
                            core.cancel_download()
                        elif core.phase is Phase.UPLOADING:
                            core.cancel_upload()
            elif isinstance(event, ev.Reply):
                conv.reply = event
                conv.done = core.phase is not Phase.DOWNLOADING
            elif isinstance(event, ev.ErrorReply):
                conv.error = event.error
                conv.done = True
            elif isinstance(event, ev.DownloadEnd):
                conv.done = True
            elif isinstance(event, ev.TransferCancelled):
                conv.cancelled = event
                conv.done = True
            elif isinstance(event, ev.UploadCancelledByDaemon):
                conv.daemon_cancelled_upload = True
            else:
                raise GuestfsStateError(f"unexpected {type(event).__name__} during a call")

    def _read(self, *, block: bool) -> list[ev.Event]:
        core = self._core
        if core.failed is not None:
            raise core.failed
        if not block and not self._poller.poll(0):
            return []
        try:
            data = self._sock.recv(_RECV_SIZE)
        except TimeoutError:
            self._broken(GuestfsTimeout(f"no answer from the daemon within {self._timeout} s"))
        except OSError as exc:
            self._broken(GuestfsConnectionClosed(f"connection to the daemon broke: {exc}"))
        if not data:
            self._broken(GuestfsConnectionClosed("connection closed by the daemon"))
        try:
            return core.receive_data(data)
        except GuestfsRuntimeError:
            self._sock.close()
            raise

    def _flush(self) -> None:
        buffers = self._core.data_to_send()
        if not buffers:
            return
        try:
            _send_all(self._sock, buffers)
        except TimeoutError:
            self._broken(GuestfsTimeout(f"the daemon accepted no data within {self._timeout} s"))
        except OSError as exc:
            self._broken(GuestfsConnectionClosed(f"connection to the daemon broke: {exc}"))

    def _broken(self, error: GuestfsRuntimeError) -> Any:
        self._core.connection_lost(error)
        self._sock.close()
        raise error


def _sink_writer(sink: DownloadSink) -> Callable[[bytes], object]:
    if isinstance(sink, bytearray):
        return sink.extend
    if callable(sink):
        return sink
    return sink.write


def _blocks(source: UploadSource) -> Iterator[Buffer]:
    """Upload data in blocks, whatever form the caller handed in."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        view = memoryview(source).cast("B")
        for start in range(0, view.nbytes, UPLOAD_BLOCK):
            yield view[start : start + UPLOAD_BLOCK]
        return
    read: Callable[[int], bytes] | None = getattr(source, "read", None)
    if read is not None:
        while block := read(UPLOAD_BLOCK):
            yield block
        return
    blocks = cast(Iterable[Buffer], source)
    for item in blocks:
        if len(item):
            yield item


def _send_all(sock: socket.socket, buffers: OutBuffers) -> None:
    """Write every buffer in order with as few sendmsg calls as possible, no copies."""
    pending: list[bytes | memoryview] = list(buffers)
    while pending:
        batch = pending[:_IOV_MAX]
        sent = sock.sendmsg(batch)
        k = 0
        while k < len(batch) and sent >= len(batch[k]):
            sent -= len(batch[k])
            k += 1
        del pending[:k]
        if sent:
            pending[0] = memoryview(pending[0])[sent:]


__all__ = ["GuestfsConnection", "UploadSource", "DownloadSink", "ProgressCallback", "CancelCheck", "UPLOAD_BLOCK"]
