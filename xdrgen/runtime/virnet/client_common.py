"""What the blocking and the asyncio client connections decide alike.

The transports differ in how they wait (a condition and a leader/follower
reader in sync.py, futures in aio.py); what an event means is decided here
once: which call a reply completes, which stream a packet feeds, that a
failed connection fails every call and stream, which streams overflow.
Imports neither threading nor asyncio.
"""

from __future__ import annotations

import collections
import struct
from collections.abc import Callable, Iterable, Mapping
from typing import Final, Generic, TypeVar

from xdrgen.runtime.virnet import events as ev
from xdrgen.runtime.virnet.core import VirNetCore, close_fds
from xdrgen.runtime.virnet.errors import CallTimeout, PeerDead, ProtocolError, VirNetError
from xdrgen.runtime.virnet.flow import StreamBudget, overflow_victims
from xdrgen.runtime.virnet.streams import END, STREAM_EVENTS, ClientStreamBase, route_stream_event

EventCallback = Callable[[ev.EventMessage], None]
#: Arguments and reply of CONNECT_SUPPORTS_FEATURE: {int feature; unsigned flags}, {int supported}.
_FEATURE_ARGS: Final = struct.Struct(">iI")
_FEATURE_RET: Final = struct.Struct(">i")

Pending = TypeVar("Pending")
S = TypeVar("S", bound=ClientStreamBase)


def feature_args(feature: int) -> bytes:
    """The encoded CONNECT_SUPPORTS_FEATURE arguments (flags 0)."""
    return _FEATURE_ARGS.pack(feature, 0)


def feature_supported(ret: memoryview) -> bool:
    """The decoded CONNECT_SUPPORTS_FEATURE reply."""
    if len(ret) != 4:
        raise ProtocolError(f"connect_supports_feature reply of {len(ret)} bytes, expected 4")
    return bool(_FEATURE_RET.unpack(ret)[0])


class ClientConnectionBase(Generic[Pending, S]):
    """One client connection's calls and streams; the transport says how a waiter is woken.

    ``Pending`` is what a caller waits on (a sync waiter, an asyncio future),
    ``S`` the transport's stream class.
    """

    def __init__(self, *, programs: Mapping[int, int] | None, buffer_size: int, receives_fds: bool,
                 stream_queue_frames: int, stream_buffer_max: int) -> None:
        self._budget = StreamBudget(stream_buffer_max)
        self._core = VirNetCore(programs=programs, buffer_size=buffer_size, receives_fds=receives_fds)
        #: Calls waiting for their reply, by serial.
        self._pending: dict[int, Pending] = {}
        self._streams: dict[int, S] = {}
        self._stream_queue_frames = stream_queue_frames
        self._error: VirNetError | None = None
        #: PINGs received from the peer (and answered); for diagnostics and tests.
        self.pings_answered = 0
        #: Exceptions raised by event callbacks (the most recent ones).
        self.callback_errors: collections.deque[Exception] = collections.deque(maxlen=64)

    # ------------------------------------------------------- transport hooks

    def _resolve(self, pending: Pending, reply: ev.Reply) -> None:
        """Hand ``reply`` to its caller."""
        raise NotImplementedError

    def _reject(self, pending: Pending, error: BaseException) -> None:
        """Fail the call ``pending`` with ``error``."""
        raise NotImplementedError

    def _event_message(self, message: ev.EventMessage) -> None:
        """Deliver an event (a MESSAGE frame) to its listeners."""
        raise NotImplementedError

    # ------------------------------------------------------------------ events

    def _dispatch(self, events: list[ev.Event]) -> None:
        """Complete calls, feed streams, deliver events (sync: with the connection lock held)."""
        for e in events:
            if isinstance(e, ev.Reply):
                pending = self._pending.pop(e.serial, None)
                if pending is not None:
                    self._resolve(pending, e)
                else:
                    close_fds(e.fds)
            elif isinstance(e, STREAM_EVENTS):
                route_stream_event(self._streams, e, END)
            elif isinstance(e, ev.ReplyError):
                pending = self._pending.pop(e.serial, None)
                st = self._streams.pop(e.serial, None)
                if st is not None:
                    st._fail(e.error)
                if pending is not None:
                    self._reject(pending, e.error)
            elif isinstance(e, ev.EventMessage):
                self._event_message(e)
            elif isinstance(e, ev.KeepalivePing):
                self.pings_answered += 1
            elif isinstance(e, ev.PeerDeadEvent):
                raise PeerDead("keepalive: the peer stopped answering")
            elif isinstance(e, ev.CallTimedOut):
                pending = self._pending.pop(e.serial, None)
                if pending is not None:
                    self._reject(pending, CallTimeout(f"procedure {e.proc}: no reply in time"))

    def _run_callbacks(self, callbacks: Iterable[EventCallback], messages: Iterable[ev.EventMessage]) -> None:
        callbacks = list(callbacks)
        for message in messages:
            for cb in callbacks:
                try:
                    cb(message)
                except Exception as exc:  # a callback's bug must not stop the connection
                    self.callback_errors.append(exc)

    def _forget_call(self, serial: int) -> None:
        """A caller gave up on ``serial``: its late reply is dropped, its stream forgotten."""
        self._core.cancel_call(serial)
        self._pending.pop(serial, None)
        self._streams.pop(serial, None)

    def _fail_pending(self, error: VirNetError) -> None:
        """The connection ended: every waiting call and open stream fails with ``error``."""
        pending, self._pending = self._pending, {}
        streams, self._streams = self._streams, {}
        for waiter in pending.values():
            self._reject(waiter, error)
        for st in streams.values():
            st._fail(error)

    def _overflow(self) -> None:
        """Unread stream data passed the budget: abort the largest backlogs (sent after this read)."""
        for st, error in overflow_victims(self._streams.values(), self._budget):
            st._fail(error)
            self._core.abort_stream(st.serial)

    # ------------------------------------------------------------------ state

    @property
    def error(self) -> VirNetError | None:
        """Why the connection ended (None while it is up)."""
        return self._error

    @property
    def stream_buffered_bytes(self) -> int:
        """Stream data received and not yet read, over all streams (bounded by ``stream_buffer_max``)."""
        return self._budget.used

    @property
    def ignored_messages(self) -> int:
        """Messages dropped as libvirt's client drops them (stream packets for no stream, ...)."""
        return self._core.ignored_messages


__all__ = ["ClientConnectionBase", "EventCallback", "feature_args", "feature_supported"]
