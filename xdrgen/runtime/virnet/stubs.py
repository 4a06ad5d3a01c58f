"""What generated libvirt clients, handlers and servers share (templates/rpc/).

Generated modules reach this module through a ``LazyModule`` (see
xdrgen.runtime.lazy): it is imported when a client or server is first used,
never by importing the generated module.  It imports the sans-IO core's
errors and threading, but neither transport: a blocking client does not load
asyncio, nor an asyncio client the blocking transport.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, Generic, TypeVar

from xdrgen.runtime.codec import Buffer
from xdrgen.runtime.errors import XdrError
from xdrgen.runtime.virnet import events as ev
from xdrgen.runtime.virnet.constants import VIR_ERR_RPC, VIR_FROM_RPC
from xdrgen.runtime.virnet.core import StreamDirection
from xdrgen.runtime.virnet.daemon_errors import reported, undecodable_arguments, unencodable_reply, unknown_procedure
from xdrgen.runtime.virnet.errors import NotSupportedError, PayloadDecodeError, StreamStateError

if TYPE_CHECKING:
    from xdrgen.runtime.virnet.aio import AsyncStream, EventSubscription
    from xdrgen.runtime.virnet.server import ServerConnection
    from xdrgen.runtime.virnet.sync import Stream

T = TypeVar("T")

RECEIVE: Final = StreamDirection.RECEIVE
SEND: Final = StreamDirection.SEND
BOTH: Final = StreamDirection.BOTH
#: Stream kind of a dispatch entry (0 none, 1 server sends, 2 server receives, 3 both) -> direction.
DIRECTIONS: Final = (None, SEND, RECEIVE, BOTH)

#: Dispatch table entry: (handler method, args decoder, ret encoder, stream kind).
DispatchEntry = tuple[str, Callable[[Buffer], Any] | None, Callable[[Any], bytes] | None, int]
#: Call to stop a subscription (``on_<event>`` returns one).
Unsubscribe = Callable[[], None]
#: Handlers of one event procedure: (callbackID wanted or None for all, handler).
Handlers = list[tuple[int | None, Callable[[Any], None]]]
#: What libvirtd reports when its driver lacks a function (VIR_ERR_NO_SUPPORT).
NO_SUPPORT: Final = 3
NO_SUPPORT_FORMAT: Final = "this function is not supported by the connection driver: %s"

__all__ = [
    "RECEIVE", "SEND", "BOTH", "DIRECTIONS", "EventRouter", "EventIterator", "unsupported", "encode_reply",
    "bad_reply", "decoded", "bad_event", "serve_call", "StreamStateError", "reported", "undecodable_arguments", "unknown_procedure",
    "VIR_ERR_RPC", "VIR_FROM_RPC",
]


def unsupported(api: str, domain: int) -> NotSupportedError:
    """The error libvirtd sends for a function its driver does not implement."""
    return NotSupportedError(
        NO_SUPPORT, domain, NO_SUPPORT_FORMAT % api, 2, NO_SUPPORT_FORMAT, api, None, -1, -1
    )


def encode_reply(encode: Callable[[Any], bytes] | None, ret: Any, proc: int) -> bytes:
    """The ``_ret`` payload; a value that does not encode is answered as libvirtd does."""
    if encode is None:
        return b""
    try:
        return encode(ret)
    except Exception as exc:  # wrong types, bad lengths, strings that are not UTF-8
        raise unencodable_reply(f"the reply of procedure {proc}: {exc}") from None


def bad_reply(proc: int, exc: XdrError, stream: Stream | AsyncStream | None = None) -> PayloadDecodeError:
    """The error for a reply that does not decode; its stream, if any, is given up."""
    error = PayloadDecodeError(f"reply to procedure {proc}", exc, proc)
    if stream is not None:
        stream.discard(error)
    return error


def decoded(
    decode: Callable[[memoryview], T], payload: memoryview, proc: int, stream: Stream | AsyncStream | None = None
) -> T:
    """A reply's ``_ret`` value; a payload that does not decode raises ``bad_reply``'s error."""
    try:
        return decode(payload)
    except XdrError as exc:
        raise bad_reply(proc, exc, stream) from exc


def bad_event(proc: int, exc: XdrError) -> PayloadDecodeError:
    return PayloadDecodeError(f"event procedure {proc}", exc, proc)


class EventRouter:
    """Decodes MESSAGE frames of one program by procedure number; routes by callbackID.

    Only events somebody subscribed to are decoded.  A malformed event or a
    failing handler must not stop the connection's reader: both are kept in
    ``bad_events`` (the most recent ones) instead.
    """

    def __init__(self, program: int, decoders: dict[int, tuple[Callable[[Buffer], Any], bool]]) -> None:
        self._program = program
        self._decoders = decoders
        self._handlers: dict[int, Handlers] = {}
        self._lock = threading.Lock()
        #: Recent failures while decoding or handling an event.
        self.bad_events: collections.deque[Exception] = collections.deque(maxlen=64)

    def subscribe(self, proc: int, handler: Callable[[Any], None], callback_id: int | None) -> Unsubscribe:
        entry = (callback_id, handler)
        with self._lock:
            self._handlers[proc] = [*self._handlers.get(proc, []), entry]

        def unsubscribe() -> None:
            with self._lock:
                left = [h for h in self._handlers.get(proc, []) if h is not entry]
                if left:
                    self._handlers[proc] = left
                else:
                    self._handlers.pop(proc, None)

        return unsubscribe

    def __call__(self, message: ev.EventMessage) -> None:
        handlers = self._handlers.get(message.proc)
        if not handlers or message.prog != self._program:
            return
        decode, routed = self._decoders[message.proc]
        try:
            value = decode(message.payload)
        except XdrError as exc:
            self.bad_events.append(bad_event(message.proc, exc))
            return
        wanted = value.callbackID if routed else None
        for callback_id, handler in handlers:
            if callback_id is None or callback_id == wanted:
                try:
                    handler(value)
                except Exception as exc:
                    self.bad_events.append(exc)


class EventIterator(Generic[T]):
    """What ``<event>_events()`` returns: subscribed when made, so no event is missed.

    Yields the decoded events of one procedure (of one callbackID when asked).
    An event that does not decode lands in ``bad_events``; the iteration goes on.
    """

    def __init__(
        self,
        subscription: EventSubscription,
        decode: Callable[[Buffer], T],
        proc: int,
        callback_id: int | None,
        bad_events: collections.deque[Exception],
    ) -> None:
        self._subscription = subscription
        self._decode = decode
        self._proc = proc
        self._callback_id = callback_id
        self._bad_events = bad_events

    def __aiter__(self) -> EventIterator[T]:
        return self

    async def __anext__(self) -> T:
        while True:
            message = await self._subscription.__anext__()
            try:
                value: Any = self._decode(message.payload)
            except XdrError as exc:
                self._bad_events.append(bad_event(self._proc, exc))
                continue
            if self._callback_id is None or value.callbackID == self._callback_id:
                return value  # type: ignore[no-any-return]

    def close(self) -> None:
        """Stop receiving these events."""
        self._subscription.close()

    async def aclose(self) -> None:
        self._subscription.close()


async def serve_call(
    handler: object,
    connection: ServerConnection,
    call: ev.IncomingCall,
    entry: DispatchEntry,
    stream_call: Callable[[ServerConnection, ev.IncomingCall, Callable[[Any], bytes] | None, StreamDirection], Any],
) -> Buffer | None:
    """Run one call on a generated handler: decode the arguments, call the method, encode the reply.

    ``entry`` is the call's dispatch entry (method name, args decoder, ret
    encoder, stream kind); stream procedures get a ``stream_call(...)`` to
    accept, and must have accepted it when they return.
    """
    name, decode, encode, stream = entry
    method = getattr(handler, name)
    args: tuple[Any, ...] = ()
    if decode is not None:
        try:
            args = (decode(call.payload),)
        except XdrError as exc:
            raise undecodable_arguments(f"the arguments of procedure {call.proc}: {exc}") from None
    if stream:
        direction = DIRECTIONS[stream]
        assert direction is not None
        accepting = stream_call(connection, call, encode, direction)
        await method(accepting, *args)
        if accepting.stream is None:
            raise reported(
                VIR_ERR_RPC, VIR_FROM_RPC, f"stream procedure {call.proc} returned without accepting the stream"
            )
        return None
    ret = await method(*args)
    return encode_reply(encode, ret, call.proc)
