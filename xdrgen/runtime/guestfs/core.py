"""The sans-IO client core of the libguestfs daemon protocol: bytes in, events out.

No sockets, no clocks: a transport feeds what it reads to ``receive_data``,
acts on the returned events, and writes what ``data_to_send`` hands it.

The daemon serves one call at a time, so the core tracks one conversation:

    AWAIT_LAUNCH -> IDLE -> (UPLOADING) -> AWAIT_REPLY -> (DOWNLOADING) -> IDLE

FileIn (upload): the call, then data chunks, then an empty chunk (or a cancel
chunk), then the reply.  The daemon may cancel mid-way with the cancel flag;
the core answers with a cancel chunk and the daemon's error reply follows.
FileOut (download): the call, the reply, then chunks until an empty one (or a
cancel chunk).  This side cancels by sending the cancel flag and discarding
chunks until the daemon's final one.
"""

from __future__ import annotations

import enum
from typing import Final

from xdrgen.runtime.guestfs import events as ev
from xdrgen.runtime.guestfs.constants import (
    DIRECTION_REPLY,
    HEADER,
    PROGRAM,
    PROTOCOL_VERSION,
    STATUS_ERROR,
    STATUS_OK,
)
from xdrgen.runtime.guestfs.errors import (
    GuestfsConnectionClosed,
    GuestfsProtocolError,
    GuestfsRuntimeError,
    GuestfsStateError,
    decode_message_error,
)
from xdrgen.runtime.guestfs.framing import (
    CANCEL_CHUNK,
    CANCEL_WORD,
    END_CHUNK,
    Buffer,
    Cancel,
    InputBuffer,
    Launch,
    Message,
    OutBuffers,
    Progress,
    decode_chunk,
    decode_header,
    encode_data_chunks,
    encode_message,
)


class Phase(enum.Enum):
    AWAIT_LAUNCH = "awaiting the launch flag"
    IDLE = "idle"
    UPLOADING = "uploading"
    AWAIT_REPLY = "awaiting a reply"
    DOWNLOADING = "downloading"
    FAILED = "failed"


_BUSY: Final = frozenset({Phase.UPLOADING, Phase.AWAIT_REPLY, Phase.DOWNLOADING})


class GuestfsCore:
    """One connection's protocol state (client side); see the module docstring."""

    def __init__(self, *, expect_launch: bool = True) -> None:
        """``expect_launch=False`` for a daemon whose launch flag was already consumed."""
        self._input = InputBuffer()
        self._out: OutBuffers = []
        self._out_bytes = 0
        self._phase = Phase.AWAIT_LAUNCH if expect_launch else Phase.IDLE
        self._serial = 0
        self._proc = 0
        self._file_out = False
        #: This side cancelled the transfer in progress.
        self._cancelling = False
        #: The daemon cancelled the upload in progress (we answered with a cancel chunk).
        self._daemon_cancelled = False
        self._failed: GuestfsRuntimeError | None = None

    # ------------------------------------------------------------------ state

    @property
    def phase(self) -> Phase:
        return self._phase

    @property
    def serial(self) -> int:
        """Serial of the current (or last) call."""
        return self._serial

    @property
    def busy(self) -> bool:
        """A call is in progress (more traffic is due before the next call)."""
        return self._phase in _BUSY

    @property
    def failed(self) -> GuestfsRuntimeError | None:
        return self._failed

    # ----------------------------------------------------------------- output

    def data_to_send(self) -> OutBuffers:
        """Take the queued output (buffers for one gathered write, in order)."""
        out = self._out
        self._out = []
        self._out_bytes = 0
        return out

    @property
    def output_bytes(self) -> int:
        return self._out_bytes

    def _queue(self, buffers: OutBuffers) -> None:
        self._out.extend(buffers)
        self._out_bytes += sum(len(b) for b in buffers)

    def _check_usable(self) -> None:
        if self._failed is not None:
            raise self._failed

    def send_call(
        self,
        proc: int,
        payload: Buffer = b"",
        *,
        progress_hint: int = 0,
        optargs_bitmask: int = 0,
        file_in: bool = False,
        file_out: bool = False,
    ) -> int:
        """Queue a call; returns its serial.

        ``file_in``: chunks follow (``send_data`` ... ``end_upload``).
        ``file_out``: chunks follow the daemon's reply.
        """
        self._check_usable()
        if self._phase is not Phase.IDLE:
            raise GuestfsStateError(f"cannot start a call while {self._phase.value}")
        if file_in and file_out:
            raise ValueError("a call has at most one file transfer")
        serial = (self._serial + 1) & 0xFFFFFFFF
        buffers = encode_message(
            proc, serial, payload, progress_hint=progress_hint, optargs_bitmask=optargs_bitmask
        )
        self._serial = serial
        self._proc = proc
        self._file_out = file_out
        self._cancelling = False
        self._daemon_cancelled = False
        self._queue(buffers)
        self._phase = Phase.UPLOADING if file_in else Phase.AWAIT_REPLY
        return serial

    def send_data(self, data: Buffer) -> bool:
        """Queue upload data (split into chunks, not copied).

        Returns False, dropping the data, when the daemon has cancelled the
        upload: stop sending and wait for its error reply.
        """
        self._check_usable()
        if self._phase is Phase.UPLOADING:
            self._queue(encode_data_chunks(data))
            return True
        if self._daemon_cancelled:
            return False
        raise GuestfsStateError(f"send_data while {self._phase.value}, not uploading")

    def end_upload(self) -> None:
        """Queue the empty chunk that ends the upload (no-op after a daemon cancel)."""
        self._check_usable()
        if self._phase is Phase.UPLOADING:
            self._queue([END_CHUNK])
            self._phase = Phase.AWAIT_REPLY
        elif not self._daemon_cancelled:
            raise GuestfsStateError(f"end_upload while {self._phase.value}, not uploading")

    def cancel_upload(self) -> None:
        """Queue a cancel chunk; the daemon's reply then completes as TransferCancelled."""
        self._check_usable()
        if self._phase is Phase.UPLOADING:
            self._queue([CANCEL_CHUNK])
            self._phase = Phase.AWAIT_REPLY
            self._cancelling = True
        elif not self._daemon_cancelled:
            raise GuestfsStateError(f"cancel_upload while {self._phase.value}, not uploading")

    def cancel_download(self) -> None:
        """Queue the cancel flag; chunks are discarded until the daemon's last one."""
        self._check_usable()
        if self._phase is Phase.AWAIT_REPLY and self._file_out:
            # Reply not seen yet: the flag would reach the daemon before it starts
            # sending chunks; it checks for it before each chunk, so this is safe.
            self._cancelling = True
            self._queue([CANCEL_WORD])
        elif self._phase is Phase.DOWNLOADING:
            if not self._cancelling:
                self._cancelling = True
                self._queue([CANCEL_WORD])
        else:
            raise GuestfsStateError(f"cancel_download while {self._phase.value}, not downloading")

    # ------------------------------------------------------------------ input

    def receive_data(self, data: Buffer) -> list[ev.Event]:
        """Feed bytes read from the daemon; returns the events they complete.

        Raises GuestfsProtocolError when the daemon broke the protocol; the
        core is then failed and the transport must close the connection.  When
        the fault follows complete records, their events are returned first:
        check ``failed`` after every call.
        """
        self._check_usable()
        self._input.feed(data)
        out: list[ev.Event] = []
        try:
            while (record := self._input.next_record()) is not None:
                if isinstance(record, Message):
                    self._message(record, out)
                elif isinstance(record, Progress):
                    if self.busy and record.serial == self._serial:
                        out.append(ev.ProgressNotice(record.proc, record.serial, record.position, record.total))
                    # Otherwise stale: the protocol says to discard unexpected progress.
                elif isinstance(record, Cancel):
                    self._cancel_flag(out)
                else:
                    assert isinstance(record, Launch)
                    if self._phase is not Phase.AWAIT_LAUNCH:
                        raise GuestfsProtocolError("launch flag after the launch", record.offset)
                    self._phase = Phase.IDLE
                    out.append(ev.Launched())
        except GuestfsProtocolError as exc:
            self._fail(exc)
            if out:
                # What came before the fault still counts (a call may have completed);
                # the failure is raised by the next use of the core.
                return out
            raise
        return out

    def connection_lost(self, error: GuestfsRuntimeError | None = None) -> None:
        """The transport is gone; every later use raises ``error``."""
        if self._failed is None:
            self._fail(error or GuestfsConnectionClosed("connection closed by the daemon"))

    @property
    def bytes_received(self) -> int:
        """Bytes fed in so far (the daemon's stream length)."""
        return self._input.stream_offset + self._input.buffered

    @property
    def buffered_input(self) -> int:
        """Received bytes not yet making a complete record (0 at a clean boundary)."""
        return self._input.buffered

    def _fail(self, error: GuestfsRuntimeError) -> None:
        self._failed = error
        self._phase = Phase.FAILED

    def _cancel_flag(self, out: list[ev.Event]) -> None:
        if self._phase is Phase.UPLOADING:
            self._queue([CANCEL_CHUNK])
            self._phase = Phase.AWAIT_REPLY
            self._daemon_cancelled = True
            out.append(ev.UploadCancelledByDaemon(self._serial))
        # At any other time it is a late flag for a transfer already over: ignore it.

    def _message(self, record: Message, out: list[ev.Event]) -> None:
        phase = self._phase
        if phase is Phase.DOWNLOADING:
            self._chunk(record, out)
        elif phase is Phase.AWAIT_REPLY or phase is Phase.UPLOADING:
            self._reply(record, out)
        else:
            raise GuestfsProtocolError(f"unexpected message while {phase.value}", record.offset)

    def _reply(self, record: Message, out: list[ev.Event]) -> None:
        payload, offset = record.payload, record.offset
        h = decode_header(payload, offset)
        if h.prog != PROGRAM or h.vers != PROTOCOL_VERSION:
            raise GuestfsProtocolError(
                f"reply names program {h.prog:#x} version {h.vers}, expected {PROGRAM:#x} version {PROTOCOL_VERSION}",
                offset,
            )
        if h.direction != DIRECTION_REPLY:
            raise GuestfsProtocolError(f"message direction {h.direction}, expected REPLY ({DIRECTION_REPLY})", offset)
        if h.serial != self._serial or h.proc != self._proc:
            raise GuestfsProtocolError(
                f"reply for serial {h.serial} procedure {h.proc}, but the call in flight is "
                f"serial {self._serial} procedure {self._proc}",
                offset,
            )
        body_offset = offset + 4 + HEADER.size
        body = payload[HEADER.size :]
        if self._cancelling and not self._file_out:
            # Our cancelled upload: the daemon's "upload cancelled" reply closes it.
            self._phase = Phase.IDLE
            out.append(ev.TransferCancelled(h.serial, by_daemon=False))
            return
        if h.status == STATUS_OK:
            out.append(ev.Reply(h.serial, h.proc, body, body_offset))
            self._phase = Phase.DOWNLOADING if self._file_out else Phase.IDLE
        elif h.status == STATUS_ERROR:
            out.append(ev.ErrorReply(h.serial, h.proc, decode_message_error(body, body_offset)))
            self._phase = Phase.IDLE
            if self._cancelling:  # a download cancelled before its reply, which failed anyway
                self._cancelling = False
        else:
            raise GuestfsProtocolError(f"reply status {h.status}, expected OK or ERROR", offset)

    def _chunk(self, record: Message, out: list[ev.Event]) -> None:
        cancel, data = decode_chunk(record.payload, record.offset)
        if data and not cancel:
            if not self._cancelling:
                out.append(ev.DownloadData(self._serial, data))
            return
        if data:
            raise GuestfsProtocolError("cancel chunk carries data", record.offset)
        self._phase = Phase.IDLE
        if cancel or self._cancelling:
            out.append(ev.TransferCancelled(self._serial, by_daemon=not self._cancelling))
        else:
            out.append(ev.DownloadEnd(self._serial))


__all__ = ["GuestfsCore", "Phase"]
