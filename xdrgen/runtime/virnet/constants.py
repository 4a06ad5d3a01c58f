"""Wire constants of libvirt's RPC layer (virnetprotocol.x, virkeepaliveprotocol.x).

Facts of the protocol, written out so the runtime needs no generated module.
"""

from __future__ import annotations

import enum
from typing import Final

#: Largest serialised message, not counting the 4-byte length word.
MESSAGE_MAX: Final = 33554432
#: The length word that starts every frame (it counts itself).
LEN_SIZE: Final = 4
HEADER_SIZE: Final = 24
#: Length word + header: the smallest legal frame.
PREFIX_SIZE: Final = LEN_SIZE + HEADER_SIZE
#: Largest legal value of the length word.
FRAME_MAX: Final = MESSAGE_MAX + LEN_SIZE
#: Largest stream chunk the daemon sends or accepts (the legacy payload maximum).
STREAM_CHUNK_MAX: Final = 262120
#: Most file descriptors one message may carry.
NUM_FDS_MAX: Final = 32

REMOTE_PROGRAM: Final = 0x20008086
REMOTE_PROTOCOL_VERSION: Final = 1
QEMU_PROGRAM: Final = 0x20008087
LXC_PROGRAM: Final = 0x00068000
KEEPALIVE_PROGRAM: Final = 0x6B656570
KEEPALIVE_PROTOCOL_VERSION: Final = 1
KEEPALIVE_PROC_PING: Final = 1
KEEPALIVE_PROC_PONG: Final = 2

#: remote_procedure numbers the runtime itself needs (connect sequence, keepalive).
PROC_CONNECT_SUPPORTS_FEATURE: Final = 60
#: libvirt's internal VIR_DRV_FEATURE_PROGRAM_KEEPALIVE (not in the public headers).
FEATURE_PROGRAM_KEEPALIVE: Final = 10


class MessageType(enum.IntEnum):
    CALL = 0
    REPLY = 1
    MESSAGE = 2
    STREAM = 3
    CALL_WITH_FDS = 4
    REPLY_WITH_FDS = 5
    STREAM_HOLE = 6


class Status(enum.IntEnum):
    OK = 0
    ERROR = 1
    CONTINUE = 2


# virterror.h values used by the runtime.
VIR_ERR_ERROR_LEVEL: Final = 2
VIR_ERR_INTERNAL_ERROR: Final = 1
VIR_ERR_NO_SUPPORT: Final = 3
VIR_ERR_RPC: Final = 39
VIR_FROM_REMOTE: Final = 13
VIR_FROM_RPC: Final = 7
VIR_FROM_STREAMS: Final = 38
