"""The sans-IO core's client role: calls, their replies, events, keepalive, received stream packets.

Checked as libvirt's client checks them: a reply that matches a waiting call
but is no valid answer fails that call only; a message the protocol does not
allow towards a client (a CALL, an unknown program, a malformed keepalive)
breaks the connection with a ProtocolError at its byte offset.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from xdrgen.runtime.virnet import events as ev
from xdrgen.runtime.virnet.constants import (
    KEEPALIVE_PROC_PING,
    KEEPALIVE_PROGRAM,
    KEEPALIVE_PROTOCOL_VERSION,
    NUM_FDS_MAX,
    REMOTE_PROGRAM,
    MessageType,
    Status,
)
from xdrgen.runtime.virnet.core_state import (
    HOLE,
    Buffer,
    CallRecord,
    CoreState,
    StreamDirection,
    StreamRecord,
    StreamState,
)
from xdrgen.runtime.virnet.errors import (
    BadMessageError,
    ProtocolError,
    StreamStateError,
    VirNetError,
    decode_remote_error,
    rpc_error,
)
from xdrgen.runtime.virnet.framing import Header
from xdrgen.runtime.virnet.keepalive import KeepaliveTimer

_T: Final = MessageType
_S: Final = Status
_STATUSES: Final = frozenset(int(s) for s in Status)


class ClientRole(CoreState):
    """Calls out, replies and events in (mixed into VirNetCore)."""

    # ------------------------------------------------------------------- calls

    def _next_serial(self) -> int:
        self._serial = (self._serial + 1) & 0xFFFFFFFF
        while self._serial in self._calls or self._serial in self._streams:
            self._serial = (self._serial + 1) & 0xFFFFFFFF
        return self._serial

    def send_call(
        self,
        proc: int,
        payload: Buffer = b"",
        *,
        prog: int = REMOTE_PROGRAM,
        vers: int | None = None,
        fds: Iterable[int] = (),
        stream: StreamDirection | None = None,
        sparse: bool = False,
        deadline: float | None = None,
    ) -> int:
        """Queue a CALL; returns its serial.  ``stream`` opens a stream on that serial."""
        if self.server:
            raise StreamStateError("send_call in the server role")
        self._check_alive()
        version = self.programs.get(prog) if vers is None else vers
        if version is None:
            raise ValueError(f"program {prog:#x} is not one this connection speaks")
        serial = self._next_serial()
        fd_list = list(fds) if fds else ()
        if fd_list:
            if len(fd_list) > NUM_FDS_MAX:
                raise ValueError(f"{len(fd_list)} fds exceed the per-message maximum {NUM_FDS_MAX}")
            self._frame_with_fds(prog, version, proc, _T.CALL_WITH_FDS, serial, payload, fd_list)
        else:
            self._frame(prog, version, proc, _T.CALL, serial, _S.OK, payload)
        self._calls[serial] = CallRecord(prog, proc, deadline)
        if stream is not None:
            self._streams[serial] = StreamRecord(prog, version, proc, stream, sparse)
        return serial

    def cancel_call(self, serial: int) -> bool:
        """Forget a pending call; its late reply will be dropped.  False if not pending."""
        call = self._calls.pop(serial, None)
        if call is None:
            return False
        self._cancelled.add(serial)
        if serial in self._streams:
            self._close_stream(serial)
        return True

    @property
    def pending_calls(self) -> int:
        return len(self._calls)

    # ------------------------------------------------------------------ timers

    def expire(self, now: float) -> list[ev.Event]:
        """Time out overdue calls and run keepalive; returns what happened."""
        out: list[ev.Event] = []
        for serial, call in list(self._calls.items()):
            if call.deadline is not None and call.deadline <= now:
                self.cancel_call(serial)
                out.append(ev.CallTimedOut(serial, call.proc))
        if self._keepalive is not None and self._failed is None:
            action = self._keepalive.tick(now)
            if action == "ping":
                self._keepalive_frame(KEEPALIVE_PROC_PING)
            elif action == "dead":
                out.append(ev.PeerDeadEvent())
        return out

    def next_deadline(self) -> float | None:
        """When ``expire`` should next be called (None: no timer running)."""
        times = [c.deadline for c in self._calls.values() if c.deadline is not None]
        if self._keepalive is not None:
            times.append(self._keepalive.deadline())
        return min(times) if times else None

    def start_keepalive(self, interval: float, count: int, now: float) -> None:
        """Send our own PINGs (only after the peer said it supports keepalive)."""
        self._keepalive = KeepaliveTimer(interval, count, now)

    def stop_keepalive(self) -> None:
        self._keepalive = None

    def send_ping(self) -> None:
        self._keepalive_frame(KEEPALIVE_PROC_PING)

    # ------------------------------------------------------------------- input

    def _dispatch_client(self, h: Header, payload: memoryview, offset: int, out: list[ev.Event]) -> None:
        """One message towards the client, checked as libvirt's client checks it."""
        mtype = h.type
        if h.prog == KEEPALIVE_PROGRAM:
            self._keepalive_message(h, payload, offset, out)
            return
        vers = self.programs.get(h.prog)
        if vers is None:
            raise ProtocolError(f"unexpected program {h.prog:#x} in message type {mtype}", offset)
        if h.vers != vers:
            raise ProtocolError(f"program {h.prog:#x} version {h.vers}, expected {vers}", offset)
        if mtype == _T.REPLY_WITH_FDS:
            self._start_fd_frame(h, payload, offset, out)
        elif mtype == _T.REPLY:
            self._dispatch_reply(h, payload, offset, out, [])
        elif mtype == _T.MESSAGE:
            if h.status != _S.OK:
                self.ignored_messages += 1  # libvirt's client logs and drops such an event
                return
            out.append(ev.EventMessage(h.prog, h.proc, payload))
        elif mtype == _T.STREAM:
            self._stream_message(h, payload, offset, out)
        elif mtype == _T.STREAM_HOLE:
            self._stream_hole(h, payload, offset, out)
        else:  # CALL, CALL_WITH_FDS
            raise ProtocolError(f"message type {mtype} is not valid towards the client side", offset)

    def _dispatch_reply(self, h: Header, payload: memoryview, offset: int, out: list[ev.Event], fds: list[int]) -> None:
        serial = h.serial
        call = self._calls.pop(serial, None)
        if call is None:
            st = self._streams.get(serial)
            if st is not None and st.state is not StreamState.OPEN:
                # libvirtd 9.0 confirms finish / abort with STREAM OK; accept a REPLY too.
                self._stream_closed_by_reply(serial, st, h, payload, offset, out)
                return
            if serial in self._cancelled:
                self._cancelled.discard(serial)
                return
            raise ProtocolError(f"reply for serial {serial}, which has no call waiting", offset)
        if h.prog != call.prog:
            raise ProtocolError(
                f"reply for serial {serial} names program {h.prog:#x}, but the call was to {call.prog:#x}", offset
            )
        # Like libvirt's client: a reply that matches a waiting call but is not a
        # valid answer fails that call only; the connection stays in step.
        error: VirNetError
        if h.proc != call.proc:
            error = BadMessageError(
                f"reply for serial {serial} names procedure {h.proc}, but the call was procedure {call.proc} "
                f"(frame at byte {offset})",
                call.proc,
            )
        elif h.status == _S.OK:
            out.append(ev.Reply(serial, h.prog, h.proc, payload, fds))
            return
        elif h.status == _S.ERROR:
            error = self._decode_error(payload, offset, proc=h.proc)
        else:
            error = BadMessageError(f"unexpected message status {h.status} in the reply to procedure {call.proc} "
                                    f"(frame at byte {offset})", call.proc)
        if serial in self._streams:
            self._close_stream(serial)
        out.append(ev.ReplyError(serial, h.prog, h.proc, error, payload))

    @staticmethod
    def _decode_error(payload: memoryview, offset: int, *, stream: bool = False, proc: int | None = None) -> VirNetError:
        """The peer's remote_error, or the BadMessageError saying why it does not decode."""
        try:
            return decode_remote_error(payload, stream=stream, proc=proc)
        except BadMessageError as exc:
            return BadMessageError(f"{exc} (frame at byte {offset})", proc)

    def _stream_closed_by_reply(
        self, serial: int, st: StreamRecord, h: Header, payload: memoryview, offset: int, out: list[ev.Event]
    ) -> None:
        self._close_stream(serial)
        if st.state is StreamState.ABORTING:
            out.append(ev.StreamAborted(serial))
        elif h.status == _S.OK:
            out.append(ev.StreamFinished(serial))
        elif h.status == _S.ERROR:
            out.append(ev.StreamFailed(serial, self._decode_error(payload, offset, stream=True, proc=st.proc)))
        else:
            raise ProtocolError(f"REPLY with status CONTINUE for stream {serial}", offset)

    def _live_stream(self, h: Header, offset: int) -> StreamRecord | None:
        st = self._streams.get(h.serial)
        if st is not None and h.proc == st.proc and h.prog == st.prog:
            return st
        if h.serial in self._closed_streams or h.serial in self._cancelled:
            return None  # late packet of a stream we already closed
        # libvirt's client matches stream packets by program, serial and
        # procedure, and ignores those that match no stream.
        self.ignored_messages += 1
        return None

    def _stream_message(self, h: Header, payload: memoryview, offset: int, out: list[ev.Event]) -> None:
        if h.status not in _STATUSES:
            raise ProtocolError(f"unknown message status {h.status} on stream {h.serial}", offset)
        st = self._live_stream(h, offset)
        if st is None:
            return
        serial = h.serial
        if h.status == _S.CONTINUE:
            if st.state is StreamState.ABORTING:
                return  # data in flight when we aborted
            if StreamDirection.RECEIVE not in st.direction:
                raise ProtocolError(f"stream data on serial {serial}, a stream this side only sends on", offset)
            if st.remote_eof:
                raise ProtocolError(f"stream data on serial {serial} after its end", offset)
            if len(payload):
                out.append(ev.StreamData(serial, payload))
            else:
                st.remote_eof = True
                out.append(ev.StreamEnd(serial))
        elif h.status == _S.OK:
            if st.state is StreamState.OPEN:
                raise ProtocolError(f"stream OK on serial {serial} before this side finished it", offset)
            else:
                self._stream_closed_by_reply(serial, st, h, payload, offset, out)
        else:  # ERROR
            aborting = st.state is StreamState.ABORTING
            self._close_stream(serial)
            if aborting:
                out.append(ev.StreamAborted(serial))
            elif len(payload):
                out.append(ev.StreamFailed(serial, self._decode_error(payload, offset, stream=True, proc=st.proc)))
            else:
                out.append(ev.StreamFailed(serial, rpc_error("stream failed without an error report")))

    def _stream_hole(self, h: Header, payload: memoryview, offset: int, out: list[ev.Event]) -> None:
        st = self._live_stream(h, offset)
        if st is None:
            return
        if not st.sparse:
            raise ProtocolError(f"STREAM_HOLE on serial {h.serial}, a stream not opened sparse", offset)
        if h.status != _S.CONTINUE:
            raise ProtocolError(f"STREAM_HOLE with status {h.status}", offset)
        if len(payload) != HOLE.size:
            raise ProtocolError(f"STREAM_HOLE payload of {len(payload)} bytes, expected {HOLE.size}", offset)
        length, flags = HOLE.unpack_from(payload, 0)
        if length < 0:
            raise ProtocolError(f"STREAM_HOLE with negative length {length}", offset)
        if st.state is StreamState.OPEN:
            out.append(ev.StreamHole(h.serial, length, flags))

    def _keepalive_message(self, h: Header, payload: memoryview, offset: int, out: list[ev.Event]) -> None:
        if h.vers != KEEPALIVE_PROTOCOL_VERSION:
            raise ProtocolError(f"keepalive version {h.vers}, expected {KEEPALIVE_PROTOCOL_VERSION}", offset)
        if h.type != _T.MESSAGE or h.status != _S.OK or len(payload):
            raise ProtocolError(f"malformed keepalive message (type {h.type}, status {h.status}, {len(payload)} payload bytes)", offset)
        if not self._keepalive_received(h.proc, out):
            raise ProtocolError(f"unknown keepalive procedure {h.proc}", offset)


__all__ = ["ClientRole"]
