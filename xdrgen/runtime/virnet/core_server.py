"""The sans-IO core's server role: what libvirtd's RPC layer answers itself.

A CALL to an unknown program or with a bad status gets libvirtd's error
reply; messages a server never expects (REPLY, MESSAGE, unknown types, stream
packets of no open stream, malformed keepalives) are dropped; only broken
framing ends the connection (docs/libvirt.md has the table).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from xdrgen.runtime.virnet import daemon_errors
from xdrgen.runtime.virnet import events as ev
from xdrgen.runtime.virnet.constants import (
    KEEPALIVE_PROGRAM,
    KEEPALIVE_PROTOCOL_VERSION,
    REMOTE_PROGRAM,
    REMOTE_PROTOCOL_VERSION,
    VIR_ERR_INTERNAL_ERROR,
    VIR_ERR_RPC,
    VIR_FROM_RPC,
    VIR_FROM_STREAMS,
    MessageType,
    Status,
)
from xdrgen.runtime.virnet.core_state import HOLE, Buffer, CoreState, StreamDirection, StreamRecord, close_fds
from xdrgen.runtime.virnet.errors import LibvirtError, ProtocolError, encode_remote_error
from xdrgen.runtime.virnet.framing import Header

_T: Final = MessageType
_S: Final = Status


class ServerRole(CoreState):
    """Calls in, replies and events out (mixed into VirNetCore)."""

    # ------------------------------------------------------------------ output

    def send_reply(self, prog: int, vers: int, proc: int, serial: int, payload: Buffer = b"", fds: Iterable[int] = ()) -> None:
        fd_list = list(fds)
        if fd_list:
            self._frame_with_fds(prog, vers, proc, _T.REPLY_WITH_FDS, serial, payload, fd_list)
        else:
            self._frame(prog, vers, proc, _T.REPLY, serial, _S.OK, payload)

    def send_error(self, prog: int, vers: int, proc: int, serial: int, error: LibvirtError) -> None:
        self._frame(prog, vers, proc, _T.REPLY, serial, _S.ERROR, encode_remote_error(error))

    def send_event(self, proc: int, payload: Buffer = b"", *, prog: int = REMOTE_PROGRAM) -> None:
        self._frame(prog, self.programs.get(prog, REMOTE_PROTOCOL_VERSION), proc, _T.MESSAGE, 0, _S.OK, payload)

    # ------------------------------------------------------------------- input

    def _dispatch_server(self, h: Header, payload: memoryview, offset: int, out: list[ev.Event]) -> None:
        """What libvirtd 9.0 does with each message a client sends (docs/libvirt.md has the table)."""
        mtype = h.type
        if mtype == _T.CALL:
            self._incoming_call(h, payload, out, [])
        elif mtype == _T.CALL_WITH_FDS:
            # libvirtd reads the fds first, whatever the call turns out to be.
            self._start_fd_frame(h, payload, offset, out)
        elif h.prog == KEEPALIVE_PROGRAM:
            if h.vers == KEEPALIVE_PROTOCOL_VERSION and mtype == _T.MESSAGE:
                # Status and payload are not looked at; unknown procedures are dropped.
                self._keepalive_received(h.proc, out)
        elif mtype == _T.STREAM or mtype == _T.STREAM_HOLE:
            st = self._streams.get(h.serial)
            if st is None or h.proc != st.proc or h.prog != st.prog or h.vers != st.vers:
                return  # libvirtd: "Ignoring unexpected stream data" (late or stray packets)
            self._client_stream_packet(st, h, payload, offset, out)
        # REPLY, REPLY_WITH_FDS, MESSAGE and unknown types: libvirtd drops them.

    def _client_stream_packet(self, st: StreamRecord, h: Header, payload: memoryview, offset: int, out: list[ev.Event]) -> None:
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
            elif len(payload) != HOLE.size:
                raise ProtocolError(f"STREAM_HOLE payload of {len(payload)} bytes, expected {HOLE.size}", offset)
            else:
                length, flags = HOLE.unpack_from(payload, 0)
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

    def _fail_stream(self, st: StreamRecord, serial: int, message: str, out: list[ev.Event]) -> None:
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


__all__ = ["ServerRole"]
