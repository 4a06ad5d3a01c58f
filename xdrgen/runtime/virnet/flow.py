"""Receive-side flow control of client streams, shared by the sync and asyncio transports.

libvirt's protocol has no per-stream flow control: the daemon sends a download
as fast as the socket takes it, and the replies to other calls come behind
that data on the same socket.  So a client that stops reading because one
stream is not being consumed also stops every reply, and a call can wait
forever.  The policy, the same in both transports:

- A stream whose queue holds ``stream_queue_frames`` chunks is *full*.  While
  nothing else on the connection waits for the peer, reading pauses: the
  daemon blocks on its writes and memory stays flat.
- While anything waits (a call for its reply, another stream for data, a
  finish or abort for its confirmation), reading goes on and full streams keep
  queueing: a reply is never stuck behind unread data.
- Every queued byte counts against the connection's ``stream_buffer_max``.
  Past it, the stream holding the most unread bytes is aborted: its data is
  freed, its ``recv`` raises StreamOverflowError, the connection carries on.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable
from typing import Final, Protocol, TypeVar

from xdrgen.runtime.virnet.errors import StreamOverflowError

#: Default ``stream_buffer_max``: unread stream bytes one connection may hold.
STREAM_BUFFER_MAX: Final = 256 << 20
#: Default ``stream_queue_frames``: chunks a stream queues before it counts as full.
STREAM_QUEUE_FRAMES: Final = 64

Item = object  # memoryview (data), a Hole, or the transport's end marker


class StreamBudget:
    """Unread stream bytes of one connection, against its limit."""

    __slots__ = ("limit", "used")

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("stream_buffer_max must be >= 1")
        self.limit = limit
        self.used = 0

    def over(self) -> bool:
        return self.used > self.limit


class ChunkQueue:
    """One stream's received items, waiting for its consumer; bytes counted in the budget."""

    __slots__ = ("_items", "nbytes", "_budget")

    def __init__(self, budget: StreamBudget) -> None:
        self._items: collections.deque[Item] = collections.deque()
        self.nbytes = 0
        self._budget = budget

    def __len__(self) -> int:
        return len(self._items)

    def __bool__(self) -> bool:
        return bool(self._items)

    def _count(self, n: int) -> None:
        self.nbytes += n
        self._budget.used += n

    def append(self, item: Item) -> None:
        self._items.append(item)
        if isinstance(item, memoryview):
            self._count(item.nbytes)

    def appendleft(self, item: Item) -> None:
        self._items.appendleft(item)
        if isinstance(item, memoryview):
            self._count(item.nbytes)

    def popleft(self) -> Item:
        item = self._items.popleft()
        if isinstance(item, memoryview):
            self._count(-item.nbytes)
        return item

    def head(self) -> Item | None:
        return self._items[0] if self._items else None

    def consume_head(self, n: int) -> None:
        """The consumer took the first ``n`` bytes of the head chunk (a memoryview)."""
        head = self._items[0]
        assert isinstance(head, memoryview)
        self._items[0] = head[n:]
        self._count(-n)

    def clear(self) -> None:
        self._items.clear()
        self._count(-self.nbytes)


class _Queued(Protocol):
    serial: int

    @property
    def queued(self) -> ChunkQueue: ...


S = TypeVar("S", bound=_Queued)


def overflow_victims(streams: Iterable[S], budget: StreamBudget) -> list[tuple[S, StreamOverflowError]]:
    """The streams to abort, largest backlog first, until the budget holds again."""
    victims: list[tuple[S, StreamOverflowError]] = []
    if not budget.over():
        return victims
    excess = budget.used - budget.limit
    for st in sorted(streams, key=lambda s: s.queued.nbytes, reverse=True):
        if excess <= 0 or not st.queued.nbytes:
            break
        excess -= st.queued.nbytes
        victims.append((st, StreamOverflowError(
            f"stream {st.serial}: {st.queued.nbytes} bytes arrived unread while other calls needed the connection "
            f"(stream_buffer_max is {budget.limit}); the stream was aborted. Read streams while calling, "
            "or raise stream_buffer_max"
        )))
    return victims


__all__ = ["ChunkQueue", "StreamBudget", "overflow_victims", "STREAM_BUFFER_MAX", "STREAM_QUEUE_FRAMES"]
