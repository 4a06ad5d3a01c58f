"""What both roles of the sans-IO core share: its state, the output queue, fd-carrying frames.

``VirNetCore`` (core.py) is this state plus the client role (core_client.py),
the server role (core_server.py) and the stream calls (core_streams.py); the
roles are mixins over ``CoreState`` so that a frame's dispatch stays a plain
method call on one object.
"""

from __future__ import annotations

import enum
import os
import struct
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

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
    MessageType,
    Status,
)
from xdrgen.runtime.virnet.errors import ConnectionClosed, ProtocolError, VirNetError
from xdrgen.runtime.virnet.framing import PREFIX, FrameBuffer, Header
from xdrgen.runtime.virnet.keepalive import KeepaliveTimer

#: What the core accepts as payload: anything exporting contiguous bytes.
Buffer = bytes | bytearray | memoryview

_T: Final = MessageType
_S: Final = Status
_NFDS: Final = struct.Struct(">I")
#: A STREAM_HOLE payload: the hole's length and its flags.
HOLE: Final = struct.Struct(">qI")
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


class StreamState(enum.Enum):
    OPEN = "open"
    FINISHING = "finishing"  # our empty OK sent, waiting for the peer's OK
    ABORTING = "aborting"  # our empty ERROR sent, waiting for the acknowledgement


@dataclass(slots=True)
class StreamRecord:
    """One open stream, as the core tracks it."""

    prog: int
    vers: int
    proc: int
    direction: StreamDirection
    sparse: bool
    state: StreamState = StreamState.OPEN
    remote_eof: bool = False
    local_eof: bool = False


@dataclass(slots=True)
class CallRecord:
    """One call waiting for its reply (client role)."""

    prog: int
    proc: int
    deadline: float | None


def close_fds(fds: Iterable[int]) -> None:
    """Close received file descriptors nobody will use (errors ignored: they are ours to drop)."""
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


class CoreState:
    """One connection's protocol state and queued output (no role of its own)."""

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
        self._calls: dict[int, CallRecord] = {}
        self._cancelled: set[int] = set()
        self._streams: dict[int, StreamRecord] = {}
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

    def _frame_with_fds(self, prog: int, vers: int, proc: int, mtype: int, serial: int, payload: Buffer,
                        fds: list[int]) -> None:
        """A *_WITH_FDS message: the fd count, the payload, then one carrier byte per fd."""
        self._frame(prog, vers, proc, mtype, serial, _S.OK, _NFDS.pack(len(fds)) + bytes(payload))
        self._queue(*(FdCarrier(fd) for fd in fds))

    def _keepalive_frame(self, proc: int) -> None:
        """A keepalive PING or PONG (a MESSAGE of the keepalive program, no payload)."""
        self._frame(KEEPALIVE_PROGRAM, KEEPALIVE_PROTOCOL_VERSION, proc, _T.MESSAGE, 0, _S.OK)

    def _keepalive_received(self, proc: int, out: list[ev.Event]) -> bool:
        """A keepalive MESSAGE: a PING is answered with a PONG.  False: an unknown procedure."""
        if proc == KEEPALIVE_PROC_PING:
            self._keepalive_frame(KEEPALIVE_PROC_PONG)
            out.append(ev.KeepalivePing())
        elif proc == KEEPALIVE_PROC_PONG:
            out.append(ev.KeepalivePong())
        else:
            return False
        return True

    def _check_alive(self) -> None:
        if self._failed is not None:
            raise self._failed

    # ----------------------------------------------------------- stream table

    def stream_is_open(self, serial: int) -> bool:
        return serial in self._streams

    def _close_stream(self, serial: int) -> None:
        if self._streams.pop(serial, None) is not None:
            self._closed_streams[serial] = None
            while len(self._closed_streams) > _CLOSED_MEMORY:
                self._closed_streams.popitem(last=False)

    # --------------------------------------------------------------- fd frames

    def _fd_count(self, h: Header, payload: memoryview, offset: int) -> int:
        """The fd count that starts a *_WITH_FDS payload (libvirtd closes on a bad one)."""
        if len(payload) < 4:
            raise ProtocolError("fd count missing in a *_WITH_FDS message", offset)
        (count,) = _NFDS.unpack_from(payload, 0)
        if count > NUM_FDS_MAX:
            raise ProtocolError(f"{count} fds exceed the per-message maximum {NUM_FDS_MAX}", offset)
        return int(count)

    def _start_fd_frame(self, h: Header, payload: memoryview, offset: int, out: list[ev.Event]) -> None:
        """A *_WITH_FDS message arrived: it completes once its carrier bytes and fds are in."""
        self._fd_frame = (h, payload[4:], offset, self._fd_count(h, payload, offset))
        self._complete_fd_frame(out)

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
        self._fd_message(header, payload, offset, out, fds)
        return True

    def _fd_message(self, h: Header, payload: memoryview, offset: int, out: list[ev.Event], fds: list[int]) -> None:
        """A complete *_WITH_FDS message with its fds; VirNetCore hands it to its role."""
        raise NotImplementedError

    # ----------------------------------------------------------------- failure

    def _fail_state(self, error: VirNetError) -> None:
        """The connection is over: forget every call and stream, close the fds held."""
        self._failed = error
        self._calls.clear()
        self._streams.clear()
        self._drop_fds()

    def _drop_fds(self) -> None:
        """Close every fd received and not handed out (the connection is over)."""
        pending = self._fds
        if self._fd_frame is not None:
            self._fd_frame = None
        self._fds = []
        close_fds(pending)

    @property
    def failed(self) -> VirNetError | None:
        return self._failed

    def connection_lost(self, error: VirNetError | None = None) -> list[ev.Event]:
        """The transport is gone: fail everything pending, once."""
        if self._failed is not None:
            return []
        self._fail_state(error or ConnectionClosed("connection closed by peer"))
        assert self._failed is not None
        return [ev.ConnectionFailed(self._failed)]


__all__ = [
    "Buffer", "FdCarrier", "OutBuffer", "StreamDirection", "StreamState", "StreamRecord", "CallRecord", "CoreState",
    "close_fds", "HOLE",
]
