"""libvirt's RPC protocol (virnetprotocol): sans-IO core, framing, streams, keepalive, transports.

Layers: ``framing`` (frames and the zero-copy receive buffer), ``core``
(the sans-IO state machine, both roles: ``core_state``, ``core_client``,
``core_server``, ``core_streams``), ``client_common`` and ``streams`` (what
both client transports share), ``sync`` and ``aio`` (transports), ``server``
(docs/libvirt.md, "Runtime layout", lists every module).
Generated clients and servers build on ``sync.Connection`` / ``aio.AsyncConnection``
and ``core.VirNetCore``; they hand in procedure numbers and encoded payloads.
"""

from xdrgen.runtime.virnet.constants import MessageType, Status
from xdrgen.runtime.virnet.core import FdCarrier, StreamDirection, VirNetCore
from xdrgen.runtime.virnet.errors import (
    CallCancelled,
    CallTimeout,
    ConnectionClosed,
    LibvirtError,
    NotSupportedError,
    PeerDead,
    ProtocolError,
    StreamError,
    StreamStateError,
    VirNetError,
)

__all__ = [
    "MessageType", "Status", "VirNetCore", "StreamDirection", "FdCarrier", "CallCancelled", "CallTimeout",
    "ConnectionClosed", "LibvirtError", "NotSupportedError", "PeerDead", "ProtocolError", "StreamError",
    "StreamStateError", "VirNetError",
]
