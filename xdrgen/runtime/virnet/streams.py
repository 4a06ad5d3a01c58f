"""What the client stream objects of both transports share: holes, the end marker, event routing.

Imports neither threading nor asyncio: the sync Stream (sync_stream.py), the
asyncio AsyncStream (aio_stream.py) and the server's ServerStream build on it.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any, Final

from xdrgen.runtime.virnet import events as ev
from xdrgen.runtime.virnet.core import StreamDirection
from xdrgen.runtime.virnet.errors import StreamStateError
from xdrgen.runtime.virnet.flow import ChunkQueue, StreamBudget


@dataclass(frozen=True, slots=True)
class Hole:
    """A hole of ``length`` bytes in a sparse stream."""

    length: int


#: The end of a stream's data, as queued for its consumer.
END: Final = object()

#: Events that concern an open stream, routed by :func:`route_stream_event`.
STREAM_EVENTS: Final = (
    ev.StreamData,
    ev.StreamHole,
    ev.StreamEnd,
    ev.StreamFinished,
    ev.StreamAborted,
    ev.StreamFailed,
)


def route_stream_event(streams: MutableMapping[int, Any], event: ev.Event, eof: object = END) -> None:
    """Deliver one of :data:`STREAM_EVENTS` to its stream, if that is still open.

    ``streams`` holds the sync or the asyncio stream objects (both have ``_push``,
    ``_fail`` and ``_closed_ok``); ``eof`` is the end marker their queue expects.
    A stream leaves ``streams`` when it finishes, is aborted or fails.
    """
    serial: int = event.serial  # type: ignore[union-attr]
    if isinstance(event, ev.StreamData):
        stream = streams.get(serial)
        if stream is not None:
            stream._push(event.data)
    elif isinstance(event, ev.StreamHole):
        stream = streams.get(serial)
        if stream is not None:
            stream._push(Hole(event.length))
    elif isinstance(event, ev.StreamEnd):
        stream = streams.get(serial)
        if stream is not None:
            stream._push(eof)
    elif isinstance(event, (ev.StreamFinished, ev.StreamAborted)):
        stream = streams.pop(serial, None)
        if stream is not None:
            stream._closed_ok()
    elif isinstance(event, ev.StreamFailed):
        stream = streams.pop(serial, None)
        if stream is not None:
            stream._fail(event.error)


class ClientStreamBase:
    """The state a client stream keeps, whichever transport carries it."""

    def __init__(self, serial: int, direction: StreamDirection, sparse: bool, max_queued: int, budget: StreamBudget) -> None:
        self.serial = serial
        self.direction = direction
        self.sparse = sparse
        self._max_queued = max_queued
        self._queue = ChunkQueue(budget)
        self._error: BaseException | None = None
        self._closed = False  # finished, aborted or failed: no more traffic

    @property
    def queued(self) -> ChunkQueue:
        """Received items not yet taken by ``recv`` (``nbytes``: their data bytes)."""
        return self._queue

    def _check_open(self) -> None:
        if self._error is not None:
            raise self._error
        if self._closed:
            raise StreamStateError(f"stream {self.serial} is closed")

    def _fail(self, error: BaseException) -> None:
        raise NotImplementedError


__all__ = ["Hole", "END", "STREAM_EVENTS", "route_stream_event", "ClientStreamBase"]
