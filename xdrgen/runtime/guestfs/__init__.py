"""The libguestfs daemon protocol (guestfsd): sans-IO core, framing, file transfers, transport.

Layers: ``framing`` (length words, special words, headers, chunks), ``core``
(the sans-IO client state machine), ``sync`` (blocking unix-socket transport).
Callers hand in procedure numbers and codecs from a module generated from
guestfs_protocol.x; this package imports no generated code.
"""

from xdrgen.runtime.guestfs.core import GuestfsCore, Phase
from xdrgen.runtime.guestfs.errors import (
    GuestfsCancelled,
    GuestfsConnectionClosed,
    GuestfsError,
    GuestfsProtocolError,
    GuestfsReplyDecodeError,
    GuestfsRuntimeError,
    GuestfsStateError,
    GuestfsTimeout,
)

__all__ = [
    "GuestfsCore", "Phase", "GuestfsCancelled", "GuestfsConnectionClosed", "GuestfsError",
    "GuestfsProtocolError", "GuestfsReplyDecodeError", "GuestfsRuntimeError", "GuestfsStateError",
    "GuestfsTimeout",
]
