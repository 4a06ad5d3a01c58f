"""The sans-IO core's stream calls: data, holes and the end of a stream, from either role.

Stream data is queued as the 28-byte prefix plus a slice of the caller's
buffer, never copied.  What the peer sends on a stream is handled by the
role that receives it (core_client.py, core_server.py).
"""

from __future__ import annotations

from typing import Final

from xdrgen.runtime.virnet.constants import (
    FRAME_MAX,
    PREFIX_SIZE,
    REMOTE_PROGRAM,
    REMOTE_PROTOCOL_VERSION,
    STREAM_CHUNK_MAX,
    MessageType,
    Status,
)
from xdrgen.runtime.virnet.core_state import HOLE, Buffer, CoreState, StreamDirection, StreamRecord, StreamState
from xdrgen.runtime.virnet.errors import LibvirtError, StreamStateError, encode_remote_error
from xdrgen.runtime.virnet.framing import PREFIX

_T: Final = MessageType
_S: Final = Status


class StreamCalls(CoreState):
    """Opening, feeding, finishing and aborting streams (mixed into VirNetCore)."""

    def open_stream(
        self, serial: int, proc: int, *, prog: int = REMOTE_PROGRAM, direction: StreamDirection, sparse: bool = False
    ) -> None:
        """Server role: the call ``serial`` starts a stream (client role: use send_call)."""
        self._streams[serial] = StreamRecord(prog, self.programs.get(prog, REMOTE_PROTOCOL_VERSION), proc, direction, sparse)

    def _stream(self, serial: int, *, sending: bool) -> StreamRecord:
        st = self._streams.get(serial)
        if st is None:
            raise StreamStateError(f"no open stream with serial {serial}")
        if st.state is not StreamState.OPEN:
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
        self._frame(st.prog, st.vers, st.proc, _T.STREAM_HOLE, serial, _S.CONTINUE, HOLE.pack(length, flags))

    def send_stream_eof(self, serial: int) -> None:
        """Server role, download: no more data (an empty CONTINUE)."""
        st = self._stream(serial, sending=True)
        st.local_eof = True
        self._frame(st.prog, st.vers, st.proc, _T.STREAM, serial, _S.CONTINUE)

    def finish_stream(self, serial: int) -> None:
        """Client role: send the empty OK; wait for StreamFinished (or StreamFailed)."""
        st = self._stream(serial, sending=False)
        st.state = StreamState.FINISHING
        self._frame(st.prog, st.vers, st.proc, _T.STREAM, serial, _S.OK)

    def abort_stream(self, serial: int) -> None:
        """Client role: send the empty ERROR; wait for StreamAborted."""
        st = self._streams.get(serial)
        if st is None or st.state is StreamState.ABORTING:
            return
        st.state = StreamState.ABORTING
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


__all__ = ["StreamCalls"]
