"""asyncio transport over a unix socket: calls, uploads (FileIn) and downloads (FileOut).

The same sans-IO core as the blocking transport: the protocol object feeds
every received byte to the core as it arrives (so the daemon's cancel flag and
progress messages are seen in the middle of an upload) and queues the core's
events; a call takes them in order.  The daemon runs one call at a time, so an
``asyncio.Lock`` serialises callers.

Memory follows what the caller consumes: reading from the socket pauses while
more than :data:`HIGH_WATER` bytes of downloaded data wait for the caller, and
each message is bounded by GUESTFS_MESSAGE_MAX (checked on its length word).

A task cancelled in the middle of a call leaves the conversation out of step,
so the connection is closed; use ``cancel=`` to stop a transfer and keep it.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterable, AsyncIterator, Iterator
from typing import Any, Final, TypeVar, Union, cast, overload

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
    GuestfsProtocolError,
    GuestfsRuntimeError,
    GuestfsTimeout,
)
from xdrgen.runtime.guestfs.framing import Buffer
from xdrgen.runtime.guestfs.transfer import (
    Cancel,
    DownloadSink,
    ProgressCallback,
    UploadSource,
    cancel_check,
    sink_writer,
    source_blocks,
    source_size,
)

T = TypeVar("T")
#: What an asyncio upload may also read from: an async iterable of bytes-like blocks.
AsyncUploadSource = Union[UploadSource, AsyncIterable[Buffer]]

#: Downloaded bytes waiting for the caller above which reading from the socket pauses.
HIGH_WATER: Final = 1024 * 1024
#: ... and below which it resumes.
LOW_WATER: Final = HIGH_WATER // 4


class _Protocol(asyncio.Protocol):
    """Hands the socket's callbacks to its connection (which never lets them raise)."""

    def __init__(self, owner: AsyncGuestfsConnection) -> None:
        self.owner = owner

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.owner._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.owner._received(data)

    def eof_received(self) -> bool:
        self.owner._lost(None)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.owner._lost(exc)

    def pause_writing(self) -> None:
        self.owner._can_write.clear()

    def resume_writing(self) -> None:
        self.owner._can_write.set()


class AsyncGuestfsConnection:
    """An asyncio client connection to guestfsd (see the module docstring)."""

    def __init__(self, *, timeout: float | None = 60.0, expect_launch: bool = True) -> None:
        """Use :meth:`connect`; ``timeout`` bounds every wait for the daemon."""
        self._timeout = timeout
        self._core = GuestfsCore(expect_launch=expect_launch)
        self._transport: asyncio.Transport | None = None
        self._events: collections.deque[ev.Event] = collections.deque()
        #: Downloaded bytes in ``_events`` (reading pauses above HIGH_WATER).
        self._pending = 0
        self._reading_paused = False
        self._wakeup: asyncio.Future[None] | None = None
        self._can_write = asyncio.Event()
        self._can_write.set()
        self._lock = asyncio.Lock()

    @classmethod
    async def connect(cls, path: str, *, timeout: float | None = 60.0) -> AsyncGuestfsConnection:
        """Connect to the daemon's unix socket and wait for its launch flag."""
        conn = cls(timeout=timeout)
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                await loop.create_unix_connection(lambda: _Protocol(conn), path)
        except TimeoutError:
            raise GuestfsTimeout(f"could not connect to {path} within {timeout} s") from None
        try:
            await conn._await_launch()
        except BaseException:
            conn._abort(GuestfsConnectionClosed("connection abandoned before the launch flag"))
            raise
        return conn

    @classmethod
    async def from_socket(
        cls, sock: Any, *, timeout: float | None = 60.0, expect_launch: bool = True
    ) -> AsyncGuestfsConnection:
        """Wrap a connected stream socket (tests, socketpair); waits for the launch flag."""
        conn = cls(timeout=timeout, expect_launch=expect_launch)
        loop = asyncio.get_running_loop()
        await loop.create_unix_connection(lambda: _Protocol(conn), sock=sock)
        try:
            await conn._await_launch()
        except BaseException:
            conn._abort(GuestfsConnectionClosed("connection abandoned before the launch flag"))
            raise
        return conn

    async def _await_launch(self) -> None:
        while self._core.phase is Phase.AWAIT_LAUNCH:
            check_launch(await self._next_events())

    # --------------------------------------------------------------- lifetime

    async def close(self) -> None:
        self._abort(GuestfsConnectionClosed("connection closed by this side"))

    async def __aenter__(self) -> AsyncGuestfsConnection:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def core(self) -> GuestfsCore:
        return self._core

    # ------------------------------------------------------------------ calls

    @overload
    async def call(
        self, proc: int, args_codec: Codec[Any] | None, args: Any, ret_codec: Codec[T], *,
        optargs_bitmask: int = 0, progress: ProgressCallback | None = None,
    ) -> T: ...

    @overload
    async def call(
        self, proc: int, args_codec: Codec[Any] | None, args: Any, ret_codec: None, *,
        optargs_bitmask: int = 0, progress: ProgressCallback | None = None,
    ) -> None: ...

    async def call(
        self,
        proc: int,
        args_codec: Codec[Any] | None,
        args: Any,
        ret_codec: Codec[T] | None,
        *,
        optargs_bitmask: int = 0,
        progress: ProgressCallback | None = None,
    ) -> T | None:
        """A plain call: returns the decoded ``_ret`` value (None for void)."""
        payload = encode_args(args_codec, args)
        async with self._lock:
            conv = Conversation(progress)
            with self._in_step():
                self._core.send_call(proc, payload, optargs_bitmask=optargs_bitmask)
                self._flush()
                await self._finish(conv)
            return outcome(conv, ret_codec)

    @overload
    async def upload(
        self, proc: int, args_codec: Codec[Any] | None, args: Any, source: AsyncUploadSource,
        ret_codec: Codec[T], *, progress_hint: int = 0, optargs_bitmask: int = 0,
        progress: ProgressCallback | None = None, cancel: Cancel | None = None,
    ) -> T: ...

    @overload
    async def upload(
        self, proc: int, args_codec: Codec[Any] | None, args: Any, source: AsyncUploadSource,
        ret_codec: None = None, *, progress_hint: int = 0, optargs_bitmask: int = 0,
        progress: ProgressCallback | None = None, cancel: Cancel | None = None,
    ) -> None: ...

    async def upload(
        self,
        proc: int,
        args_codec: Codec[Any] | None,
        args: Any,
        source: AsyncUploadSource,
        ret_codec: Codec[T] | None = None,
        *,
        progress_hint: int = 0,
        optargs_bitmask: int = 0,
        progress: ProgressCallback | None = None,
        cancel: Cancel | None = None,
    ) -> T | None:
        """A FileIn call (see ``GuestfsConnection.upload``); ``source`` may also be an
        async iterable of bytes-like blocks."""
        payload = encode_args(args_codec, args)
        progress_hint = progress_hint or source_size(source) or 0
        async with self._lock:
            conv = Conversation(progress, stop=cancel_check(cancel))
            core = self._core
            with self._in_step():
                core.send_call(
                    proc, payload, file_in=True, progress_hint=progress_hint, optargs_bitmask=optargs_bitmask
                )
                self._flush()
                try:
                    if isinstance(source, AsyncIterable):
                        await self._send_async_blocks(source, conv)
                    else:
                        with source_blocks(source) as blocks:
                            await self._send_blocks(blocks, conv)
                except GuestfsRuntimeError:
                    raise
                except Exception:
                    # The source failed: cancel so the daemon stays in step, then re-raise.
                    await self._abandon_upload(conv)
                    raise
                self._flush()
                await self._finish(conv)
            return outcome(conv, ret_codec)

    async def download(
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
        """A FileOut call (see ``GuestfsConnection.download``); returns the byte count."""
        payload = encode_args(args_codec, args)
        async with self._lock:
            with sink_writer(sink) as write, self._in_step():
                conv = Conversation(progress, sink=write, file_out=True, stop=cancel_check(cancel))
                self._core.send_call(proc, payload, file_out=True, optargs_bitmask=optargs_bitmask)
                self._flush()
                while not conv.done:
                    self._cancel_if_asked(conv)
                    absorb(self._core, await self._next_events(), conv)
                    self._flush()
            outcome(conv, None)
            return conv.received

    async def download_iter(
        self,
        proc: int,
        args_codec: Codec[Any] | None,
        args: Any,
        *,
        optargs_bitmask: int = 0,
        progress: ProgressCallback | None = None,
        cancel: Cancel | None = None,
    ) -> AsyncIterator[memoryview]:
        """A FileOut call whose data is yielded block by block (never empty).

        The call is sent when iteration starts.  Leaving the loop early cancels
        the transfer once the iterator is closed (``contextlib.aclosing``, or
        when it is collected); the connection stays usable.
        """
        payload = encode_args(args_codec, args)
        async with self._lock:
            conv = Conversation(progress, file_out=True, stop=cancel_check(cancel))
            core = self._core
            with self._in_step():
                core.send_call(proc, payload, file_out=True, optargs_bitmask=optargs_bitmask)
                self._flush()
                try:
                    while not conv.done:
                        self._cancel_if_asked(conv)
                        # One event at a time: what waits here counts against HIGH_WATER.
                        for block in absorb(core, [await self._next_event()], conv):
                            yield memoryview(block)
                        self._flush()
                finally:
                    if not conv.done and core.failed is None:
                        await self._abandon_download(conv)
            outcome(conv, None)

    # -------------------------------------------------------------- internals

    def _cancel_if_asked(self, conv: Conversation) -> None:
        if cancel_if_asked(self._core, conv):
            self._flush()

    async def _send_blocks(self, blocks: Iterator[Buffer], conv: Conversation) -> None:
        for block in blocks:
            if not await self._send_block(block, conv):
                return
        self._core.end_upload()

    async def _send_async_blocks(self, blocks: AsyncIterable[Buffer], conv: Conversation) -> None:
        async for block in blocks:
            if not isinstance(block, (bytes, bytearray, memoryview)):
                raise TypeError(f"upload blocks must be bytes-like, not {type(block).__name__}")
            if len(block) and not await self._send_block(block, conv):
                return
        self._core.end_upload()

    async def _send_block(self, block: Buffer, conv: Conversation) -> bool:
        """Queue one block and wait until the socket takes it; False once the upload is over."""
        if not send_block(self._core, conv, block):
            return False
        self._flush()
        await self._drain()
        if self._events:
            absorb(self._core, self._take_events(), conv)
        return not conv.upload_over

    async def _abandon_upload(self, conv: Conversation) -> None:
        """After the source failed mid-upload: cancel and consume the reply, if we still can."""
        try:
            if abandon_upload(self._core):
                self._flush()
                await self._finish(conv)
        except GuestfsRuntimeError:
            pass  # the source's exception is more useful

    async def _abandon_download(self, conv: Conversation) -> None:
        """The caller stopped reading a download: cancel it and drain to its end."""
        core = self._core
        try:
            if core.phase in (Phase.DOWNLOADING, Phase.AWAIT_REPLY):
                core.cancel_download()
            self._flush()
            while not conv.done:
                absorb(core, await self._next_events(), conv)  # blocks nobody wants: dropped
                self._flush()
        except GuestfsRuntimeError:
            pass  # the connection is failed and says so on its next use
        except BaseException:
            self._abort(GuestfsConnectionClosed("download abandoned in the middle"))
            raise

    async def _finish(self, conv: Conversation) -> None:
        while not conv.done:
            absorb(self._core, await self._next_events(), conv)
            self._flush()

    def _in_step(self) -> _StepGuard:
        return _StepGuard(self)

    async def _next_events(self) -> list[ev.Event]:
        """Wait (up to the timeout) for events; raises once the connection has failed."""
        while not self._events:
            failed = self._core.failed
            if failed is not None:
                raise failed
            self._wakeup = asyncio.get_running_loop().create_future()
            try:
                async with asyncio.timeout(self._timeout):
                    await self._wakeup
            except TimeoutError:
                error = GuestfsTimeout(f"no answer from the daemon within {self._timeout} s")
                self._abort(error)
                raise error from None
            finally:
                self._wakeup = None
        return self._take_events()

    async def _next_event(self) -> ev.Event:
        """The next event alone (the others stay queued, counted against HIGH_WATER)."""
        if not self._events:
            events = await self._next_events()
            self._events.extend(events)
            self._pending = sum(len(e.data) for e in events if isinstance(e, ev.DownloadData))
        event = self._events.popleft()
        if isinstance(event, ev.DownloadData):
            self._pending = max(self._pending - len(event.data), 0)
            self._maybe_resume()
        return event

    def _take_events(self) -> list[ev.Event]:
        events = list(self._events)
        self._events.clear()
        self._pending = 0
        self._maybe_resume()
        return events

    def _maybe_resume(self) -> None:
        transport = self._transport
        if self._reading_paused and self._pending <= LOW_WATER and transport is not None:
            if not transport.is_closing():
                transport.resume_reading()
            self._reading_paused = False

    async def _drain(self) -> None:
        if self._can_write.is_set():
            return
        try:
            async with asyncio.timeout(self._timeout):
                await self._can_write.wait()
        except TimeoutError:
            error = GuestfsTimeout(f"the daemon accepted no data within {self._timeout} s")
            self._abort(error)
            raise error from None
        failed = self._core.failed
        if failed is not None:
            raise failed

    def _flush(self) -> None:
        buffers = self._core.data_to_send()
        transport = self._transport
        if buffers and transport is not None and not transport.is_closing():
            transport.writelines(buffers)

    # ----------------------------------------------------- protocol callbacks

    def _received(self, data: bytes) -> None:
        core = self._core
        if core.failed is not None:
            return
        try:
            events = core.receive_data(data)
        except GuestfsProtocolError as exc:
            self._abort(exc)
            return
        except Exception as exc:  # a bug must not escape into the event loop
            self._abort(GuestfsConnectionClosed(f"connection failed: {exc!r}"))
            return
        for event in events:
            if isinstance(event, ev.DownloadData):
                self._pending += len(event.data)
        self._events.extend(events)
        if core.failed is not None:  # a fault after complete records: those still count
            self._abort(core.failed)
            return
        self._flush()  # the core may answer at once (a cancel chunk for the daemon's cancel flag)
        transport = self._transport
        if self._pending > HIGH_WATER and not self._reading_paused and transport is not None:
            self._reading_paused = True
            transport.pause_reading()
        self._wake()

    def _lost(self, exc: Exception | None) -> None:
        reason = f": {exc}" if exc is not None else ""
        self._core.connection_lost(GuestfsConnectionClosed(f"connection closed by the daemon{reason}"))
        if self._transport is not None:
            self._transport.close()
        self._can_write.set()
        self._wake()

    def _abort(self, error: GuestfsRuntimeError) -> None:
        self._core.connection_lost(error)
        if self._transport is not None:
            self._transport.abort()
        self._can_write.set()
        self._wake()

    def _wake(self) -> None:
        waiter = self._wakeup
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class _StepGuard:
    """Closes the connection when a call is interrupted by anything but the protocol's
    own errors (a task cancelled mid-call): the conversation would be out of step."""

    __slots__ = ("_conn",)

    def __init__(self, conn: AsyncGuestfsConnection) -> None:
        self._conn = conn

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: object) -> None:
        conn = self._conn
        if kind is not None and conn._core.busy:
            conn._abort(GuestfsConnectionClosed(f"call interrupted ({kind.__name__}); connection closed"))


__all__ = ["AsyncGuestfsConnection", "AsyncUploadSource", "HIGH_WATER", "LOW_WATER"]
