"""What the sans-IO core reports after parsing received bytes.

Payloads are read-only memoryviews into the receive buffer (see framing.py):
valid while referenced, never copied by the core.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from xdrgen.runtime.virnet.errors import VirNetError


@dataclass(slots=True)
class Reply:
    """A successful reply (client role); ``payload`` is the encoded ``_ret``."""

    serial: int
    prog: int
    proc: int
    payload: memoryview
    fds: list[int] = field(default_factory=list)


@dataclass(slots=True)
class ReplyError:
    """A failed call (client role): the peer's decoded remote_error (LibvirtError),
    or a BadMessageError when the reply was not a valid answer."""

    serial: int
    prog: int
    proc: int
    error: VirNetError
    payload: memoryview


@dataclass(slots=True)
class CallTimedOut:
    serial: int
    proc: int


@dataclass(slots=True)
class EventMessage:
    """An asynchronous MESSAGE (events); ``payload`` is the encoded ``_msg``."""

    prog: int
    proc: int
    payload: memoryview


@dataclass(slots=True)
class StreamData:
    serial: int
    data: memoryview


@dataclass(slots=True)
class StreamHole:
    serial: int
    length: int
    flags: int


@dataclass(slots=True)
class StreamEnd:
    """The sender has no more data (an empty CONTINUE)."""

    serial: int


@dataclass(slots=True)
class StreamFinished:
    """The peer confirmed our finish (client) / the client finished (server role)."""

    serial: int


@dataclass(slots=True)
class StreamAborted:
    """Our abort was acknowledged (client) / the client aborted (server role)."""

    serial: int


@dataclass(slots=True)
class StreamFailed:
    """The peer failed the stream with a remote_error (or one that did not decode)."""

    serial: int
    error: VirNetError


@dataclass(slots=True)
class KeepalivePing:
    """The peer pinged; the core has already queued the PONG."""


@dataclass(slots=True)
class KeepalivePong:
    pass


@dataclass(slots=True)
class PeerDeadEvent:
    """Keepalive: ``count`` intervals passed without a byte from the peer."""


@dataclass(slots=True)
class IncomingCall:
    """A CALL (server role); answer with ``VirNetCore.send_reply`` / ``send_error``."""

    prog: int
    vers: int
    proc: int
    serial: int
    payload: memoryview
    fds: list[int] = field(default_factory=list)


@dataclass(slots=True)
class ConnectionFailed:
    """The connection ended; every pending call and stream fails with ``error``."""

    error: VirNetError


Event = (
    Reply | ReplyError | CallTimedOut | EventMessage | StreamData | StreamHole | StreamEnd
    | StreamFinished | StreamAborted | StreamFailed | KeepalivePing | KeepalivePong
    | PeerDeadEvent | IncomingCall | ConnectionFailed
)
