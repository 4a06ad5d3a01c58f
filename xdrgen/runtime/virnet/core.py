"""The sans-IO protocol core: bytes in, events out; frames out for calls, replies, streams.

No sockets, no threads, no clocks: transports feed received bytes in
(``receive_data`` or ``get_buffer``/``buffer_updated``), act on the returned
events, and write what ``data_to_send`` hands them.  The same class serves the
client role (calls, replies, events) and the server role (incoming calls,
replies, events, stream data), selected with ``server=True``.

Output is a list of buffers for gathered writes (``socket.sendmsg`` /
``transport.writelines``): stream data is queued as the 28-byte prefix plus a
slice of the caller's buffer, never copied.  An :class:`FdCarrier` in the list
means "send one zero byte carrying this fd with SCM_RIGHTS" (libvirt sends the
fds of a *_WITH_FDS message that way, one by one, after the message).

In the server role the core answers what libvirtd's RPC layer answers itself
(see ``_dispatch_server``): a CALL to an unknown program or with a bad status
gets libvirtd's error reply, and messages a server never expects (REPLY,
MESSAGE, unknown types, stream packets of no open stream, malformed
keepalives) are dropped; only broken framing ends the connection.
Received file descriptors the protocol has no use for are closed here.
"""

from __future__ import annotations

import enum
import os
import struct
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from xdrgen.runtime.virnet import daemon_errors
from xdrgen.runtime.virnet import events as ev
from xdrgen.runtime.virnet.constants import (
    FRAME_MAX,
    KEEPALIVE_PROC_PING,
    KEEPALIVE_PROC_PONG,
    KEEPALIVE_PROGRAM,
    KEEPALIVE_PROTOCOL_VERSION,
    NUM_FDS_MAX,
    PREFIX_SIZE,
    REMOTE_PROGRAM,
    REMOTE_PROTOCOL_VERSION,
    STREAM_CHUNK_MAX,
    VIR_ERR_INTERNAL_ERROR,
    VIR_ERR_RPC,
    VIR_FROM_RPC,
    VIR_FROM_STREAMS,
    MessageType,
    Status,
)
from xdrgen.runtime.virnet.errors import (
    BadMessageError,
    CallCancelled,
    ConnectionClosed,
    LibvirtError,
    ProtocolError,
    StreamStateError,
    VirNetError,
    decode_remote_error,
    encode_remote_error,
    rpc_error,
)
from xdrgen.runtime.virnet.framing import PREFIX, FrameBuffer, Header
from xdrgen.runtime.virnet.keepalive import KeepaliveTimer

#: What the core accepts as payload: anything exporting contiguous bytes.
Buffer = bytes | bytearray | memoryview

_T: Final = MessageType
_S: Final = Status
_HOLE: Final = struct.Struct(">qI")
_STATUSES: Final = frozenset(int(s) for s in Status)
_NFDS: Final = struct.Struct(">I")
#: How many closed stream serials to remember, to drop their late packets quietly.
_CLOSED_MEMORY: Final = 1024


@dataclass(frozen=True, slots=True)
class FdCarrier:
    """Send one zero byte with ``fd`` attached (SCM_RIGHTS)."""

    fd: int


OutBuffer = bytes | memoryview | FdCarrier


class StreamDirection(enum.Flag):
    """Which way data flows on a stream, from this side's point of view."""

    RECEIVE = enum.auto()
    SEND = enum.auto()
    BOTH = RECEIVE | SEND


class _StreamState(enum.Enum):
    OPEN = "open"
    FINISHING = "finishing"  # our empty OK sent, waiting for the peer's OK
    ABORTING = "aborting"  # our empty ERROR sent, waiting for the acknowledgement


@dataclass(slots=True)
class _Stream:
    prog: int
    vers: int
    proc: int
    direction: StreamDirection
    sparse: bool
    state: _StreamState = _StreamState.OPEN
    remote_eof: bool = False
    local_eof: bool = False


@dataclass(slots=True)
class _Call:
    prog: int
    proc: int
    deadline: float | None


class VirNetCore:
    """One connection's protocol state; see the module docstring."""

    def __init__(
        self,
        *,
        server: bool = False,
        programs: Mapping[int, int] | None = None,
        buffer_size: int = 1 << 20,
        receives_fds: bool = True,
    ) -> None:
        self.server = server
        #: Whether the transport collects SCM_RIGHTS fds (fds_received before the
        #: bytes they came with).  If not, the kernel drops them and a client takes
        #: a *_WITH_FDS reply without its fds.
        self.receives_fds = receives_fds
        self.programs: dict[int, int] = dict(programs or {REMOTE_PROGRAM: REMOTE_PROTOCOL_VERSION})
        self._buffer = FrameBuffer(buffer_size, check_header=not server)
        self._out: list[OutBuffer] = []
        self._out_bytes = 0
        self._serial = 0
        self._calls: dict[int, _Call] = {}
        self._cancelled: set[int] = set()
        self._streams: dict[int, _Stream] = {}
        self._closed_streams: OrderedDict[int, None] = OrderedDict()
        self._fds: list[int] = []
        #: A *_WITH_FDS frame waiting for its carrier bytes and fds.
        self._fd_frame: tuple[Header, memoryview, int, int] | None = None
        self._keepalive: KeepaliveTimer | None = None
        self._failed: VirNetError | None = None
        #: Messages dropped where libvirt's client drops them too (stream packets
        #: for no stream, events with a bad status); for diagnostics and tests.
        self.ignored_messages = 0

    # ------------------------------------------------------------------ output

    def data_to_send(self) -> list[OutBuffer]:
        """Take the queued output (buffers for one gathered write, in order)."""
        out = self._out
        self._out = []
        self._out_bytes = 0
        return out

    @property
    def output_bytes(self) -> int:
        """Bytes queued and not yet taken by ``data_to_send``."""
        return self._out_bytes

    def _queue(self, *buffers: OutBuffer) -> None:
        self._check_alive()
        for b in buffers:
            self._out.append(b)
            if not isinstance(b, FdCarrier):
                self._out_bytes += len(b)

    def _frame(self, prog: int, vers: int, proc: int, mtype: int, serial: int, status: int, payload: Buffer = b"") -> None:
        view = memoryview(payload)
        length = PREFIX_SIZE + view.nbytes
        if length > FRAME_MAX:
            raise ValueError(f"message of {length} bytes exceeds the libvirt maximum {FRAME_MAX}")
        prefix = PREFIX.pack(length, prog, vers, proc, mtype, serial, status)
        self._check_alive()
        # Appended here rather than through _queue: this runs once per frame.
        self._out.append(prefix)
        if view.nbytes:
            self._out.append(view.cast("B") if view.format != "B" or view.ndim != 1 else view)
        self._out_bytes += length

    def _check_alive(self) -> None:
        if self._failed is not None:
            raise self._failed

    # -------------------------------------------------------------- client role

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
            body = _NFDS.pack(len(fd_list)) + bytes(payload)
            self._frame(prog, version, proc, _T.CALL_WITH_FDS, serial, _S.OK, body)
            self._queue(*(FdCarrier(fd) for fd in fd_list))
        else:
            self._frame(prog, version, proc, _T.CALL, serial, _S.OK, payload)
        self._calls[serial] = _Call(prog, proc, deadline)
        if stream is not None:
            self._streams[serial] = _Stream(prog, version, proc, stream, sparse)
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
                self._frame(KEEPALIVE_PROGRAM, KEEPALIVE_PROTOCOL_VERSION, KEEPALIVE_PROC_PING, _T.MESSAGE, 0, _S.OK)
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
        self._frame(KEEPALIVE_PROGRAM, KEEPALIVE_PROTOCOL_VERSION, KEEPALIVE_PROC_PING, _T.MESSAGE, 0, _S.OK)

    # ------------------------------------------------------------------ streams

    def open_stream(
        self, serial: int, proc: int, *, prog: int = REMOTE_PROGRAM, direction: StreamDirection, sparse: bool = False
    ) -> None:
        """Server role: the call ``serial`` starts a stream (client role: use send_call)."""
        self._streams[serial] = _Stream(prog, self.programs.get(prog, REMOTE_PROTOCOL_VERSION), proc, direction, sparse)

    def _stream(self, serial: int, *, sending: bool) -> _Stream:
        st = self._streams.get(serial)
        if st is None:
            raise StreamStateError(f"no open stream with serial {serial}")
        if st.state is not _StreamState.OPEN:
            raise StreamStateError(f"stream {serial} is {st.state.value}")
        if sending and (StreamDirection.SEND not in st.direction or st.local_eof):
            raise StreamStateError(f"stream {serial} is not open for sending")
        return st

    def send_stream_data(self, serial: int, data: Buffer, chunk: int = STREAM_CHUNK_MAX) -> int:
        """Queue ``data`` as STREAM/CONTINUE frames of at most ``chunk`` bytes, uncopied.

        The caller must keep ``data`` unchanged until the output has been written.
        Returns the number of frames queued.
        """
        st = self._stream(serial, sending=True)
        view = memoryview(data)
        if view.format != "B" or view.ndim != 1:
            view = view.cast("B")
        total = view.nbytes
        if chunk < 1 or chunk > FRAME_MAX - PREFIX_SIZE:
            raise ValueError(f"bad chunk size {chunk}")
        pack = PREFIX.pack
        prog, vers, proc = st.prog, st.vers, st.proc
        frames = 0
        for start in range(0, total, chunk):
            part = view[start : start + chunk]
            n = part.nbytes
            self._out.append(pack(PREFIX_SIZE + n, prog, vers, proc, _T.STREAM, serial, _S.CONTINUE))
            self._out.append(part)
            self._out_bytes += PREFIX_SIZE + n
            frames += 1
        return frames

    def send_stream_hole(self, serial: int, length: int, flags: int = 0) -> None:
        st = self._stream(serial, sending=True)
        if not st.sparse:
            raise StreamStateError(f"stream {serial} was not opened sparse; holes are not allowed")
        if length < 0:
            raise ValueError("hole length must be >= 0")
        self._frame(st.prog, st.vers, st.proc, _T.STREAM_HOLE, serial, _S.CONTINUE, _HOLE.pack(length, flags))

    def send_stream_eof(self, serial: int) -> None:
        """Server role, download: no more data (an empty CONTINUE)."""
        st = self._stream(serial, sending=True)
        st.local_eof = True
        self._frame(st.prog, st.vers, st.proc, _T.STREAM, serial, _S.CONTINUE)

    def finish_stream(self, serial: int) -> None:
        """Client role: send the empty OK; wait for StreamFinished (or StreamFailed)."""
        st = self._stream(serial, sending=False)
        st.state = _StreamState.FINISHING
        self._frame(st.prog, st.vers, st.proc, _T.STREAM, serial, _S.OK)

    def abort_stream(self, serial: int) -> None:
        """Client role: send the empty ERROR; wait for StreamAborted."""
        st = self._streams.get(serial)
        if st is None or st.state is _StreamState.ABORTING:
            return
        st.state = _StreamState.ABORTING
        self._frame(st.prog, st.vers, st.proc, _T.STREAM, serial, _S.ERROR)

    def send_stream_error(self, serial: int, error: LibvirtError) -> None:
        """The server's failure report on a stream: STREAM/ERROR with remote_error."""
        st = self._streams.get(serial)
        if st is None:
            raise StreamStateError(f"no stream with serial {serial}")
        self._frame(st.prog, st.vers, st.proc, _T.STREAM, serial, _S.ERROR, encode_remote_error(error))
        self._close_stream(serial)

    def drop_stream(self, serial: int) -> None:
        """Server role: forget a stream whose call failed before its reply opened it for the client."""
        self._close_stream(serial)

    def stream_is_open(self, serial: int) -> bool:
        return serial in self._streams

    def _close_stream(self, serial: int) -> None:
        if self._streams.pop(serial, None) is not None:
            self._closed_streams[serial] = None
            while len(self._closed_streams) > _CLOSED_MEMORY:
                self._closed_streams.popitem(last=False)

    # -------------------------------------------------------------- server role

    def send_reply(self, prog: int, vers: int, proc: int, serial: int, payload: Buffer = b"", fds: Iterable[int] = ()) -> None:
        fd_list = list(fds)
        if fd_list:
            body = _NFDS.pack(len(fd_list)) + bytes(payload)
            self._frame(prog, vers, proc, _T.REPLY_WITH_FDS, serial, _S.OK, body)
            self._queue(*(FdCarrier(fd) for fd in fd_list))
        else:
            self._frame(prog, vers, proc, _T.REPLY, serial, _S.OK, payload)

    def send_error(self, prog: int, vers: int, proc: int, serial: int, error: LibvirtError) -> None:
        self._frame(prog, vers, proc, _T.REPLY, serial, _S.ERROR, encode_remote_error(error))

    def send_event(self, proc: int, payload: Buffer = b"", *, prog: int = REMOTE_PROGRAM) -> None:
        self._frame(prog, self.programs.get(prog, REMOTE_PROTOCOL_VERSION), proc, _T.MESSAGE, 0, _S.OK, payload)

    # ------------------------------------------------------------------- input

    def get_buffer(self, sizehint: int = -1) -> memoryview:
        """Free space to receive into (``recv_into`` / BufferedProtocol); then ``buffer_updated``."""
        return self._buffer.get_buffer(sizehint)

    def buffer_updated(self, nbytes: int) -> list[ev.Event]:
        """``nbytes`` arrived in the buffer from ``get_buffer`` (their fds, if any, already handed in)."""
        self._buffer.buffer_updated(nbytes)
        return self._parse_read()

    def trim_buffer(self) -> None:
        """Give receive storage back while nothing is buffered (an idle connection)."""
        self._buffer.trim()

    @property
    def receive_capacity(self) -> int:
        """Bytes of receive storage held."""
        return self._buffer.capacity

    def receive_data(self, data: Buffer) -> list[ev.Event]:
        """Feed received bytes (copied once into the buffer); returns the events.

        Raises ProtocolError when the peer broke the protocol; the core is then
        failed and the transport must close the connection.
        """
        self._buffer.feed(memoryview(data))
        return self._parse_read()

    def fds_received(self, fds: Iterable[int]) -> list[ev.Event]:
        """File descriptors that arrived with SCM_RIGHTS, in order: hand them in
        before the bytes of the same read (``buffer_updated``)."""
        self._fds.extend(fds)
        return self._parse()

    def _parse_read(self) -> list[ev.Event]:
        """Parse after a read; fds that came with it and no message waits for are closed."""
        try:
            return self._parse()
        finally:
            if self.receives_fds and self._fds:
                self._close_stray_fds()

    def connection_lost(self, error: VirNetError | None = None) -> list[ev.Event]:
        """The transport is gone: fail everything pending, once."""
        if self._failed is not None:
            return []
        self._failed = error or ConnectionClosed("connection closed by peer")
        self._calls.clear()
        self._streams.clear()
        self._drop_fds()
        return [ev.ConnectionFailed(self._failed)]

    def _drop_fds(self) -> None:
        """Close every fd received and not handed out (the connection is over)."""
        pending = self._fds
        if self._fd_frame is not None:
            self._fd_frame = None
        self._fds = []
        close_fds(pending)

    def _close_stray_fds(self) -> None:
        """After a read: fds no *_WITH_FDS message is waiting for are closed.

        The kernel ends a read after the bytes that carried fds, so fds left
        over here came with bytes that were not carrier bytes; libvirtd reads
        such bytes without their fds (the kernel then closes them).
        """
        keep = self._fd_frame[3] if self._fd_frame is not None and self._failed is None else 0
        if len(self._fds) > keep:
            extra = self._fds[keep:]
            del self._fds[keep:]
            close_fds(extra)

    @property
    def failed(self) -> VirNetError | None:
        return self._failed

    def _parse(self) -> list[ev.Event]:
        out: list[ev.Event] = []
        if self._failed is not None:
            return out
        try:
            while True:
                if self._fd_frame is not None and not self._complete_fd_frame(out):
                    break
                frame = self._buffer.next_frame()
                if frame is None:
                    break
                if self._keepalive is not None:
                    self._keepalive.activity = True
                header, payload, offset = frame
                self._dispatch(header, payload, offset, out)
        except ProtocolError as exc:
            self._failed = exc
            self._calls.clear()
            self._streams.clear()
            self._drop_fds()
            raise
        return out

    def _complete_fd_frame(self, out: list[ev.Event]) -> bool:
        assert self._fd_frame is not None
        header, payload, offset, count = self._fd_frame
        if self._buffer.buffered < count:
            return False
        if len(self._fds) < count and self.receives_fds:
            # Each fd comes with its carrier byte, and the bytes are here: these came without
            # (libvirtd drops such a client).  A transport that cannot receive fds goes on without.
            raise ProtocolError(f"{count} fd carrier bytes arrived with only {len(self._fds)} fds", offset)
        self._buffer.discard(count)
        fds, self._fds = self._fds[:count], self._fds[count:]
        self._fd_frame = None
        if self.server:
            self._incoming_call(header, payload, out, fds)
        else:
            self._dispatch_reply_or_call(header, payload, offset, out, fds)
        return True

    def _fd_count(self, h: Header, payload: memoryview, offset: int) -> int:
        """The fd count that starts a *_WITH_FDS payload (libvirtd closes on a bad one)."""
        if len(payload) < 4:
            raise ProtocolError("fd count missing in a *_WITH_FDS message", offset)
        (count,) = _NFDS.unpack_from(payload, 0)
        if count > NUM_FDS_MAX:
            raise ProtocolError(f"{count} fds exceed the per-message maximum {NUM_FDS_MAX}", offset)
        return int(count)

    def _dispatch_server(self, h: Header, payload: memoryview, offset: int, out: list[ev.Event]) -> None:
        """What libvirtd 9.0 does with each message a client sends (docs/libvirt.md has the table)."""
        mtype = h.type
        if mtype == _T.CALL:
            self._incoming_call(h, payload, out, [])
        elif mtype == _T.CALL_WITH_FDS:
            # libvirtd reads the fds first, whatever the call turns out to be.
            self._fd_frame = (h, payload[4:], offset, self._fd_count(h, payload, offset))
            self._complete_fd_frame(out)
        elif h.prog == KEEPALIVE_PROGRAM:
            if h.vers == KEEPALIVE_PROTOCOL_VERSION and mtype == _T.MESSAGE:
                # Status and payload are not looked at; unknown procedures are dropped.
                if h.proc == KEEPALIVE_PROC_PING:
                    self._frame(KEEPALIVE_PROGRAM, KEEPALIVE_PROTOCOL_VERSION, KEEPALIVE_PROC_PONG, _T.MESSAGE, 0, _S.OK)
                    out.append(ev.KeepalivePing())
                elif h.proc == KEEPALIVE_PROC_PONG:
                    out.append(ev.KeepalivePong())
        elif mtype == _T.STREAM or mtype == _T.STREAM_HOLE:
            st = self._streams.get(h.serial)
            if st is None or h.proc != st.proc or h.prog != st.prog or h.vers != st.vers:
                return  # libvirtd: "Ignoring unexpected stream data" (late or stray packets)
            self._client_stream_packet(st, h, payload, offset, out)
        # REPLY, REPLY_WITH_FDS, MESSAGE and unknown types: libvirtd drops them.

    def _client_stream_packet(self, st: _Stream, h: Header, payload: memoryview, offset: int, out: list[ev.Event]) -> None:
        """A client's STREAM / STREAM_HOLE on one of our open streams, handled as libvirtd 9.0 does.

        Misuse that libvirtd answers by failing the stream (data or a hole on
        a download, an unknown status) gets the same STREAM ERROR; a hole that
        breaks the protocol of an upload ends the connection, as there.
        """
        serial = h.serial
        receiving = StreamDirection.RECEIVE in st.direction
        if h.type == _T.STREAM_HOLE:
            if not receiving:
                self._fail_stream(st, serial, "stream had unexpected termination", out)
            elif not st.sparse:
                raise ProtocolError(f"STREAM_HOLE on serial {serial}, a stream not opened sparse", offset)
            elif len(payload) != _HOLE.size:
                raise ProtocolError(f"STREAM_HOLE payload of {len(payload)} bytes, expected {_HOLE.size}", offset)
            else:
                length, flags = _HOLE.unpack_from(payload, 0)
                if length >= 0:
                    out.append(ev.StreamHole(serial, length, flags))
                else:
                    # libvirtd fails the call (a REPLY error) and drops the stream.
                    error = daemon_errors.reported(VIR_ERR_INTERNAL_ERROR, VIR_FROM_RPC, f"negative stream hole length {length}")
                    self._frame(st.prog, st.vers, st.proc, _T.REPLY, serial, _S.ERROR, encode_remote_error(error))
                    self._close_stream(serial)
                    out.append(ev.StreamFailed(serial, error))
        elif h.status == _S.CONTINUE:
            if not receiving:
                self._fail_stream(st, serial, "stream had unexpected termination", out)
            elif len(payload):  # an empty CONTINUE writes nothing, ends nothing
                out.append(ev.StreamData(serial, payload))
        elif h.status == _S.OK or h.status == _S.ERROR:
            # Finish or abort: libvirtd confirms both at once with an empty STREAM OK.
            self._frame(st.prog, st.vers, st.proc, _T.STREAM, serial, _S.OK)
            self._close_stream(serial)
            out.append(ev.StreamFinished(serial) if h.status == _S.OK else ev.StreamAborted(serial))
        else:
            self._fail_stream(st, serial, f"stream aborted with unexpected status {h.status & 0xFFFFFFFF}", out)

    def _fail_stream(self, st: _Stream, serial: int, message: str, out: list[ev.Event]) -> None:
        """End a stream with a STREAM ERROR from us (libvirtd's error domain for streams)."""
        error = daemon_errors.reported(VIR_ERR_RPC, VIR_FROM_STREAMS, message)
        self._frame(st.prog, st.vers, st.proc, _T.STREAM, serial, _S.ERROR, encode_remote_error(error))
        self._close_stream(serial)
        out.append(ev.StreamFailed(serial, error))

    def _incoming_call(self, h: Header, payload: memoryview, out: list[ev.Event], fds: list[int]) -> None:
        """A complete CALL: checked as libvirtd's program dispatcher checks it, then handed out."""
        if self.programs.get(h.prog) != h.vers:
            error = daemon_errors.unknown_program(h.prog, h.vers)
        elif h.status != _S.OK:
            error = daemon_errors.unexpected_status(h.status)
        else:
            out.append(ev.IncomingCall(h.prog, h.vers, h.proc, h.serial, payload, fds))
            return
        close_fds(fds)
        self._frame(h.prog, h.vers, h.proc, _T.REPLY, h.serial, _S.ERROR, encode_remote_error(error))

    def _dispatch(self, h: Header, payload: memoryview, offset: int, out: list[ev.Event]) -> None:
        if self.server:
            self._dispatch_server(h, payload, offset, out)
            return
        mtype = h.type
        if h.prog == KEEPALIVE_PROGRAM:
            self._keepalive_message(h, payload, offset, out)
            return
        vers = self.programs.get(h.prog)
        if vers is None:
            raise ProtocolError(f"unexpected program {h.prog:#x} in message type {mtype}", offset)
        if h.vers != vers:
            raise ProtocolError(f"program {h.prog:#x} version {h.vers}, expected {vers}", offset)
        if mtype in (_T.REPLY_WITH_FDS, _T.CALL_WITH_FDS):
            if (mtype == _T.REPLY_WITH_FDS) == self.server:
                raise ProtocolError(f"message type {mtype} is not valid towards the {self._role} side", offset)
            self._fd_frame = (h, payload[4:], offset, self._fd_count(h, payload, offset))
            self._complete_fd_frame(out)
            return
        if mtype == _T.REPLY or mtype == _T.CALL:
            if (mtype == _T.REPLY) == self.server:
                raise ProtocolError(f"message type {mtype} is not valid towards the {self._role} side", offset)
            self._dispatch_reply_or_call(h, payload, offset, out, [])
        elif mtype == _T.MESSAGE:
            if h.status != _S.OK:
                self.ignored_messages += 1  # libvirt's client logs and drops such an event
                return
            out.append(ev.EventMessage(h.prog, h.proc, payload))
        elif mtype == _T.STREAM:
            self._stream_message(h, payload, offset, out)
        else:  # STREAM_HOLE
            self._stream_hole(h, payload, offset, out)

    @property
    def _role(self) -> str:
        return "server" if self.server else "client"

    def _dispatch_reply_or_call(self, h: Header, payload: memoryview, offset: int, out: list[ev.Event], fds: list[int]) -> None:
        serial = h.serial
        call = self._calls.pop(serial, None)
        if call is None:
            st = self._streams.get(serial)
            if st is not None and st.state is not _StreamState.OPEN:
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
        self, serial: int, st: _Stream, h: Header, payload: memoryview, offset: int, out: list[ev.Event]
    ) -> None:
        self._close_stream(serial)
        if st.state is _StreamState.ABORTING:
            out.append(ev.StreamAborted(serial))
        elif h.status == _S.OK:
            out.append(ev.StreamFinished(serial))
        elif h.status == _S.ERROR:
            out.append(ev.StreamFailed(serial, self._decode_error(payload, offset, stream=True, proc=st.proc)))
        else:
            raise ProtocolError(f"REPLY with status CONTINUE for stream {serial}", offset)

    def _live_stream(self, h: Header, offset: int) -> _Stream | None:
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
            if st.state is _StreamState.ABORTING:
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
            if st.state is _StreamState.OPEN:
                raise ProtocolError(f"stream OK on serial {serial} before this side finished it", offset)
            else:
                self._stream_closed_by_reply(serial, st, h, payload, offset, out)
        else:  # ERROR
            aborting = st.state is _StreamState.ABORTING
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
        if len(payload) != _HOLE.size:
            raise ProtocolError(f"STREAM_HOLE payload of {len(payload)} bytes, expected {_HOLE.size}", offset)
        length, flags = _HOLE.unpack_from(payload, 0)
        if length < 0:
            raise ProtocolError(f"STREAM_HOLE with negative length {length}", offset)
        if st.state is _StreamState.OPEN:
            out.append(ev.StreamHole(h.serial, length, flags))

    def _keepalive_message(self, h: Header, payload: memoryview, offset: int, out: list[ev.Event]) -> None:
        if h.vers != KEEPALIVE_PROTOCOL_VERSION:
            raise ProtocolError(f"keepalive version {h.vers}, expected {KEEPALIVE_PROTOCOL_VERSION}", offset)
        if h.type != _T.MESSAGE or h.status != _S.OK or len(payload):
            raise ProtocolError(f"malformed keepalive message (type {h.type}, status {h.status}, {len(payload)} payload bytes)", offset)
        if h.proc == KEEPALIVE_PROC_PING:
            self._frame(KEEPALIVE_PROGRAM, KEEPALIVE_PROTOCOL_VERSION, KEEPALIVE_PROC_PONG, _T.MESSAGE, 0, _S.OK)
            out.append(ev.KeepalivePing())
        elif h.proc == KEEPALIVE_PROC_PONG:
            out.append(ev.KeepalivePong())
        else:
            raise ProtocolError(f"unknown keepalive procedure {h.proc}", offset)


def close_fds(fds: Iterable[int]) -> None:
    """Close received file descriptors nobody will use (errors ignored: they are ours to drop)."""
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


__all__ = ["VirNetCore", "StreamDirection", "FdCarrier", "OutBuffer", "CallCancelled", "close_fds"]
