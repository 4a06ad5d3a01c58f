"""Wire constants of the libguestfs daemon protocol (facts from guestfs_protocol.x).

The runtime needs them without a generated module: framing and the special
words are fixed by the protocol, not by any one procedure.
"""

from __future__ import annotations

import struct
from typing import Final

PROGRAM: Final = 0x2000F5F5
PROTOCOL_VERSION: Final = 4
#: Largest message (length word excluded) either side accepts.
MESSAGE_MAX: Final = 4 * 1024 * 1024
#: Largest data part of one file-transfer chunk.
MAX_CHUNK_SIZE: Final = 8192
#: Bound of ``guestfs_message_error.error_message``.
ERROR_LEN: Final = 65536
#: Bound of ``guestfs_message_error.errno_string``.
ERRNO_LEN: Final = 32

# Special words sent in place of a length word (all larger than MESSAGE_MAX).
LAUNCH_FLAG: Final = 0xF5F55FF5
CANCEL_FLAG: Final = 0xFFFFEEEE
PROGRESS_FLAG: Final = 0xFFFF5555

DIRECTION_CALL: Final = 0
DIRECTION_REPLY: Final = 1
STATUS_OK: Final = 0
STATUS_ERROR: Final = 1

#: ``guestfs_message_header``: prog, vers, proc (enum), direction (enum),
#: serial, progress_hint (u64), optargs_bitmask (u64), status (enum).
HEADER: Final = struct.Struct(">IIiiIQQi")
#: ``guestfs_progress``: proc (enum), serial, position (u64), total (u64).
PROGRESS: Final = struct.Struct(">iIQQ")
WORD: Final = struct.Struct(">I")
