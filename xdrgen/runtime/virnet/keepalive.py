"""Keepalive bookkeeping, clock-free: the caller passes ``now`` in.

As libvirt does it: when ``interval`` seconds pass without any byte from the
peer, send a PING; after ``count`` such intervals in a row the peer is dead.
Any received frame (not only a PONG) proves the peer alive.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class KeepaliveTimer:
    interval: float
    count: int
    last_seen: float
    unanswered: int = 0
    #: Set by the core when a frame arrives; folded into ``last_seen`` on tick.
    activity: bool = False

    def __post_init__(self) -> None:
        if self.interval <= 0 or self.count < 1:
            raise ValueError("keepalive needs interval > 0 and count >= 1")

    def deadline(self) -> float:
        return self.last_seen + self.interval * (self.unanswered + 1)

    def tick(self, now: float) -> str | None:
        """'ping' when a PING is due, 'dead' when the peer is dead, else None."""
        if self.activity:
            self.activity = False
            self.last_seen = now
            self.unanswered = 0
            return None
        if now < self.deadline():
            return None
        if self.unanswered >= self.count:
            return "dead"
        self.unanswered += 1
        return "ping"
