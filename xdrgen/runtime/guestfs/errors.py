"""Typed errors of the libguestfs runtime, and the decoder of ``guestfs_message_error``.

``guestfs_message_error`` is fixed by the protocol, so the runtime decodes it
itself: a daemon's failure becomes a typed exception without any generated module.
"""

from __future__ import annotations

import errno as _errno

from xdrgen.runtime.guestfs.constants import ERRNO_LEN, ERROR_LEN, WORD


class GuestfsRuntimeError(Exception):
    """Base of every error raised by xdrgen.runtime.guestfs."""


class GuestfsProtocolError(GuestfsRuntimeError):
    """The daemon broke the wire protocol; the connection cannot continue.

    ``offset`` is the byte offset, in the stream received from the daemon, of
    the word or message at fault.
    """

    def __init__(self, problem: str, offset: int | None = None) -> None:
        where = f" (at byte {offset} of the daemon's stream)" if offset is not None else ""
        super().__init__(problem + where)
        self.problem = problem
        self.offset = offset


class GuestfsReplyDecodeError(GuestfsProtocolError):
    """A well-framed reply whose payload does not decode as the expected type.

    The connection stays in step (the message boundary is known), so it remains usable.
    """


class GuestfsError(GuestfsRuntimeError):
    """The daemon reported a failure (``guestfs_message_error``)."""

    def __init__(self, message: str, errno: str = "") -> None:
        super().__init__(f"{message} [{errno}]" if errno else message)
        #: The daemon's message, e.g. ``/x: No such file or directory``.
        self.message = message
        #: The errno name the daemon sent (``"ENOENT"``), or ``""`` when it had none.
        self.errno = errno

    @property
    def errno_code(self) -> int | None:
        """The local errno number for :attr:`errno`, when this system knows the name."""
        code = getattr(_errno, self.errno, None) if self.errno.startswith("E") else None
        return code if isinstance(code, int) else None


class GuestfsCancelled(GuestfsRuntimeError):
    """A file transfer was cancelled by this side; the connection remains usable."""


class GuestfsConnectionClosed(GuestfsRuntimeError):
    """The connection is gone (closed by either side, broken, or timed out)."""


class GuestfsTimeout(GuestfsConnectionClosed):
    """The daemon did not answer in time; the connection was closed (it is out of step)."""


class GuestfsStateError(GuestfsRuntimeError):
    """The connection was used in a way its state does not allow (e.g. two calls at once)."""


def decode_message_error(payload: bytes | memoryview, offset: int) -> GuestfsError:
    """Decode ``guestfs_message_error {string errno_string<32>; string error_message<65536>;}``.

    ``offset`` is where the payload starts in the daemon's stream (for errors).
    """
    pos = 0
    fields: list[str] = []
    for name, bound in (("errno_string", ERRNO_LEN), ("error_message", ERROR_LEN)):
        if len(payload) - pos < 4:
            raise GuestfsProtocolError(f"guestfs_message_error.{name}: input ends early", offset + pos)
        (length,) = WORD.unpack_from(payload, pos)
        if length > bound:
            raise GuestfsProtocolError(
                f"guestfs_message_error.{name}: length {length} exceeds maximum {bound}", offset + pos
            )
        end = pos + 4 + length
        padded = end + (-length & 3)
        if padded > len(payload):
            raise GuestfsProtocolError(f"guestfs_message_error.{name}: input ends early", offset + pos)
        if any(payload[end:padded]):
            raise GuestfsProtocolError(f"guestfs_message_error.{name}: non-zero padding", offset + end)
        fields.append(bytes(payload[pos + 4 : end]).decode("utf-8", "replace"))
        pos = padded
    if pos != len(payload):
        raise GuestfsProtocolError(
            f"guestfs_message_error: {len(payload) - pos} trailing bytes", offset + pos
        )
    return GuestfsError(fields[1], fields[0])


def encode_message_error(message: str, errno: str = "") -> bytes:
    """The XDR of a ``guestfs_message_error`` (used to build test frames)."""
    out = bytearray()
    for text, bound in ((errno, ERRNO_LEN), (message, ERROR_LEN)):
        raw = text.encode()
        if len(raw) > bound:
            raise ValueError(f"string of {len(raw)} bytes exceeds maximum {bound}")
        out += WORD.pack(len(raw)) + raw + b"\0" * (-len(raw) & 3)
    return bytes(out)
