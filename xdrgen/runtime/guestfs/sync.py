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
from collections.abc import Iterator
from typing import Any, Final, TypeVar, overload

from xdrgen.runtime.codec import Codec
from xdrgen.runtime.guestfs import events as ev
from xdrgen.runtime.guestfs.conversation import (
    Conversation,
    abandon_upload,
    absorb,
    cancel_if_asked,
    check_launch,
    encode_args,
    outcome,
    send_block,
)
from xdrgen.runtime.guestfs.core import GuestfsCore, Phase
from xdrgen.runtime.guestfs.errors import (
    GuestfsConnectionClosed,
    GuestfsRuntimeError,
    GuestfsTimeout,
)
from xdrgen.runtime.guestfs.framing import Buffer, OutBuffers
from xdrgen.runtime.guestfs.transfer import (
    UPLOAD_BLOCK,
    Cancel,
    CancelCheck,
    DownloadSink,
    ProgressCallback,
    UploadSource,
    cancel_check,
    sink_writer,
    source_blocks,
    source_size,
)

T = TypeVar("T")

#: Linux's IOV_MAX: most buffers one sendmsg takes.
_IOV_MAX: Final = 1024
_RECV_SIZE: Final = 256 * 1024


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
                    check_launch(self._read(block=True))

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

    @overload
    def call(
        self,
        proc: int,
        args_codec: Codec[Any] | None,
        args: Any,
        ret_codec: Codec[T],
        *,
        optargs_bitmask: int = 0,
        progress: ProgressCallback | None = None,
    ) -> T: ...

    @overload
    def call(
        self,
        proc: int,
        args_codec: Codec[Any] | None,
        args: Any,
        ret_codec: None,
        *,
        optargs_bitmask: int = 0,
        progress: ProgressCallback | None = None,
    ) -> None: ...

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
        payload = encode_args(args_codec, args)
        with self._lock:
            conv = Conversation(progress)
            self._core.send_call(proc, payload, optargs_bitmask=optargs_bitmask)
            self._flush()
            self._finish(conv)
            return outcome(conv, ret_codec)

    @overload
    def upload(
        self,
        proc: int,
        args_codec: Codec[Any] | None,
        args: Any,
        source: UploadSource,
        ret_codec: Codec[T],
        *,
        progress_hint: int = 0,
        optargs_bitmask: int = 0,
        progress: ProgressCallback | None = None,
        cancel: Cancel | None = None,
    ) -> T: ...

    @overload
    def upload(
        self,
        proc: int,
        args_codec: Codec[Any] | None,
        args: Any,
        source: UploadSource,
        ret_codec: None = None,
        *,
        progress_hint: int = 0,
        optargs_bitmask: int = 0,
        progress: ProgressCallback | None = None,
        cancel: Cancel | None = None,
    ) -> None: ...

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
        cancel: Cancel | None = None,
    ) -> T | None:
        """A FileIn call: sends ``source`` in chunks after the call, then the reply.

        ``source``: a bytes-like object, a path, a binary file (``read``), or an
        iterable of bytes-like blocks.  ``cancel`` (an event, a CancelToken or a
        callable) is checked between blocks: once set, the upload is cancelled
        and GuestfsCancelled raised.  If the daemon cancels (e.g. it cannot open
        the target), its error is raised as GuestfsError.  Either way the
        connection stays usable.
        """
        payload = encode_args(args_codec, args)
        progress_hint = progress_hint or source_size(source) or 0
        with self._lock:
            conv = Conversation(progress, stop=cancel_check(cancel))
            core = self._core
            core.send_call(proc, payload, file_in=True, progress_hint=progress_hint, optargs_bitmask=optargs_bitmask)
            self._flush()
            try:
                with source_blocks(source) as blocks:
                    self._send_blocks(blocks, conv)
            except GuestfsRuntimeError:
                raise
            except BaseException:
                # The source failed (or an interrupt): cancel so the daemon stays in step.
                self._abandon_upload(conv)
                raise
            self._flush()
            self._finish(conv)
            return outcome(conv, ret_codec)

    def download(
        self,
        proc: int,
        args_codec: Codec[Any] | None,
        args: Any,
        sink: DownloadSink,
        *,
        optargs_bitmask: int = 0,
        progress: ProgressCallback | None = None,
        cancel: Cancel | None = None,
    ) -> int:
        """A FileOut call: passes each received chunk to ``sink``; returns the byte count.

        ``sink``: a bytearray (extended), a path (written), a callable taking
        bytes, or an object with ``write`` (a binary file).  When ``cancel`` is
        set (checked before each read), or the sink raises, the download is
        cancelled, the rest discarded, and GuestfsCancelled (or the sink's
        exception) raised; the connection stays usable.
        """
        payload = encode_args(args_codec, args)
        with self._lock, sink_writer(sink) as write:
            conv = Conversation(progress, sink=write, file_out=True, stop=cancel_check(cancel))
            core = self._core
            core.send_call(proc, payload, file_out=True, optargs_bitmask=optargs_bitmask)
            self._flush()
            while not conv.done:
                if cancel_if_asked(core, conv):
                    self._flush()
                absorb(core, self._read(block=True), conv)
                self._flush()
            outcome(conv, None)
            return conv.received

    # -------------------------------------------------------------- internals

    def _send_blocks(self, blocks: Iterator[Buffer], conv: Conversation) -> None:
        core = self._core
        for block in blocks:
            if not send_block(core, conv, block):
                return
            self._flush()
            self._poll(conv)
            if conv.upload_over:
                return
        core.end_upload()

    def _abandon_upload(self, conv: Conversation) -> None:
        """After a local failure mid-upload: cancel and consume the reply, if we still can."""
        try:
            if abandon_upload(self._core):
                self._flush()
                self._finish(conv)
        except GuestfsRuntimeError:
            pass  # the original exception is more useful

    def _finish(self, conv: Conversation) -> None:
        while not conv.done:
            absorb(self._core, self._read(block=True), conv)
            self._flush()

    def _poll(self, conv: Conversation) -> None:
        """Handle whatever the daemon has sent, without waiting."""
        absorb(self._core, self._read(block=False), conv)

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
            events = core.receive_data(data)
        except GuestfsRuntimeError:
            self._sock.close()
            raise
        if core.failed is not None:
            self._sock.close()  # the events before the fault are still handed over
        return events

    def _flush(self) -> None:
        buffers = self._core.data_to_send()
        if not buffers:
            return
        if self._core.failed is not None:
            raise self._core.failed
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
