"""Typed errors of the libvirt RPC runtime, and the decoder of ``remote_error``.

``remote_error`` (virNetMessageError) is fixed by virnetprotocol.x, so the
runtime decodes it itself: a daemon's failure must become a typed exception
even when no generated module is loaded.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from xdrgen.runtime.errors import XdrDecodeError, XdrError
from xdrgen.runtime.virnet.constants import (
    STREAM_CHUNK_MAX,
    VIR_ERR_ERROR_LEVEL,
    VIR_ERR_NO_SUPPORT,
    VIR_ERR_RPC,
    VIR_FROM_RPC,
)


class VirNetError(Exception):
    """Base of every error raised by xdrgen.runtime.virnet."""


class ProtocolError(VirNetError):
    """The peer broke the wire protocol; the connection cannot continue.

    ``offset`` is the byte offset in the received stream of the frame at fault.
    """

    def __init__(self, message: str, offset: int | None = None) -> None:
        where = f" (frame at byte {offset})" if offset is not None else ""
        super().__init__(message + where)
        self.offset = offset


class BadMessageError(VirNetError):
    """The peer sent a well-framed message that is not a valid answer.

    A reply whose payload does not decode as the procedure's ``_ret`` type,
    names another procedure, or carries an unexpected status; a ``remote_error``
    that does not decode; an event that does not decode.  Only that call,
    stream or event fails: the message boundary is known, so the connection
    stays usable (libvirt's own client does the same).  Together with
    ProtocolError (the byte stream itself is broken, the connection closes)
    this is the "the peer sent something bad" family; both are VirNetError.
    """

    def __init__(self, message: str, proc: int | None = None) -> None:
        super().__init__(message)
        #: The procedure whose reply or event was bad, when known.
        self.proc = proc


class PayloadDecodeError(BadMessageError, XdrDecodeError):
    """A reply or event payload that does not decode as its XDR type.

    Both a VirNetError (catch it with the connection's other failures) and an
    XdrDecodeError carrying the decoder's ``type_name``, field ``path`` and
    byte ``offset`` inside the payload.
    """

    def __init__(self, what: str, cause: XdrError, proc: int | None = None) -> None:
        XdrDecodeError.__init__(self, cause.problem, type_name=cause.type_name, path=cause.path, offset=cause.offset)
        self.proc = proc
        #: What failed to decode, e.g. ``reply to procedure 277``.
        self.what = what

    def __str__(self) -> str:
        return f"{self.what}: {XdrDecodeError.__str__(self)}"

    def __reduce__(self) -> tuple[object, ...]:
        cause = XdrDecodeError(self.problem, type_name=self.type_name, path=self.path, offset=self.offset)
        return (type(self), (self.what, cause, self.proc))


class StreamOverflowError(VirNetError):
    """A stream's unread data passed the connection's ``stream_buffer_max``.

    Raised by that stream's ``recv`` (and ``finish``): the stream was aborted
    so that other calls on the connection could keep getting their replies.
    Read streams while other calls run, or raise ``stream_buffer_max``.
    """


class ConnectionClosed(VirNetError):
    """The connection is gone (closed by either side, or broken)."""


class CallTimeout(VirNetError):
    """A call got no reply within its timeout; the call was cancelled."""


class CallCancelled(VirNetError):
    """The call was cancelled before its reply arrived."""


class PeerDead(ConnectionClosed):
    """Keepalive: the peer stopped answering."""


class StreamStateError(VirNetError):
    """A stream was used in a way its state does not allow (e.g. send after finish)."""


@dataclass(frozen=True, slots=True)
class RemoteErrorFields:
    code: int
    domain: int
    message: str | None
    level: int
    str1: str | None
    str2: str | None
    str3: str | None
    int1: int
    int2: int


class LibvirtError(VirNetError):
    """An error reported by the peer in a ``remote_error`` (virNetMessageError)."""

    def __init__(
        self,
        code: int,
        domain: int,
        message: str | None,
        level: int = VIR_ERR_ERROR_LEVEL,
        str1: str | None = None,
        str2: str | None = None,
        str3: str | None = None,
        int1: int = 0,
        int2: int = 0,
        proc: int | None = None,
    ) -> None:
        super().__init__(message if message is not None else f"libvirt error code {code}")
        self.code = code
        self.domain = domain
        self.message = message
        self.level = level
        self.str1 = str1
        self.str2 = str2
        self.str3 = str3
        self.int1 = int1
        self.int2 = int2
        #: The procedure whose call failed, when known.
        self.proc = proc

    @property
    def fields(self) -> RemoteErrorFields:
        return RemoteErrorFields(
            self.code, self.domain, self.message, self.level,
            self.str1, self.str2, self.str3, self.int1, self.int2,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code}, domain={self.domain}, message={self.message!r})"


class NotSupportedError(LibvirtError):
    """The peer does not support the procedure (VIR_ERR_NO_SUPPORT)."""


class StreamError(LibvirtError):
    """The peer failed a stream (STREAM with status ERROR carrying remote_error)."""


class StreamNotSupportedError(StreamError, NotSupportedError):
    pass


#: How libvirtd words its answer to a procedure number it does not know (VIR_ERR_RPC).
UNKNOWN_PROCEDURE_PREFIX = "unknown procedure"


def is_unsupported(code: int, message: str | None) -> bool:
    """VIR_ERR_NO_SUPPORT, or the daemon's "unknown procedure: N" (VIR_ERR_RPC)."""
    if code == VIR_ERR_NO_SUPPORT:
        return True
    return code == VIR_ERR_RPC and message is not None and message.startswith(UNKNOWN_PROCEDURE_PREFIX)


def unknown_procedure_error(proc: int) -> LibvirtError:
    """What libvirtd answers for a procedure it does not implement."""
    return NotSupportedError(VIR_ERR_RPC, VIR_FROM_RPC, f"{UNKNOWN_PROCEDURE_PREFIX}: {proc}", VIR_ERR_ERROR_LEVEL, proc=proc)


def make_libvirt_error(fields: RemoteErrorFields, *, stream: bool = False, proc: int | None = None) -> LibvirtError:
    """The exception for a decoded remote_error: unsupported gets its own class."""
    unsupported = is_unsupported(fields.code, fields.message)
    if stream:
        cls: type[LibvirtError] = StreamNotSupportedError if unsupported else StreamError
    else:
        cls = NotSupportedError if unsupported else LibvirtError
    return cls(
        fields.code, fields.domain, fields.message, fields.level,
        fields.str1, fields.str2, fields.str3, fields.int1, fields.int2, proc=proc,
    )


_INT = struct.Struct(">i")
_UINT = struct.Struct(">I")
#: VIR_NET_MESSAGE_STRING_MAX: longest string remote_error may carry.
_STRING_MAX = 4194304
#: VIR_UUID_BUFLEN: the fixed uuid inside the unused dom / net members.
_UUID_LEN = 16


class _Reader:
    """Just enough strict XDR to read remote_error; errors name field and offset.

    A remote_error that does not decode fails only the call or stream it
    answers (BadMessageError), as in libvirt's client.  Strings that are not
    UTF-8 are kept with surrogateescape, like every other string the
    generated decoders read.
    """

    __slots__ = ("data", "pos", "path")

    def __init__(self, data: memoryview) -> None:
        self.data = data
        self.pos = 0
        self.path = "remote_error"

    def _need(self, n: int, field: str) -> None:
        if self.pos + n > len(self.data):
            raise BadMessageError(
                f"truncated {self.path}.{field}: need {n} bytes at payload offset {self.pos}, "
                f"have {len(self.data) - self.pos}"
            )

    def read_int(self, field: str) -> int:
        self._need(4, field)
        (value,) = _INT.unpack_from(self.data, self.pos)
        self.pos += 4
        return int(value)

    def read_uint(self, field: str) -> int:
        self._need(4, field)
        (value,) = _UINT.unpack_from(self.data, self.pos)
        self.pos += 4
        return int(value)

    def opaque(self, n: int, field: str) -> bytes:
        padded = (n + 3) & ~3
        self._need(padded, field)
        raw = bytes(self.data[self.pos : self.pos + n])
        if any(self.data[self.pos + n : self.pos + padded]):
            raise BadMessageError(f"non-zero padding in {self.path}.{field} at payload offset {self.pos + n}")
        self.pos += padded
        return raw

    def string(self, field: str) -> str:
        at = self.pos
        n = self.read_uint(field)
        if n > _STRING_MAX:
            raise BadMessageError(f"{self.path}.{field}: string length {n} exceeds {_STRING_MAX} at payload offset {at}")
        return self.opaque(n, field).decode("utf-8", "surrogateescape")

    def optional(self, field: str) -> bool:
        at = self.pos
        flag = self.read_uint(field)
        if flag > 1:
            raise BadMessageError(f"{self.path}.{field}: optional flag {flag} is not 0 or 1 at payload offset {at}")
        return flag == 1

    def optional_string(self, field: str) -> str | None:
        return self.string(field) if self.optional(field) else None


def decode_remote_error(payload: memoryview | bytes, *, stream: bool = False, proc: int | None = None) -> LibvirtError:
    """Decode a ``remote_error`` payload strictly into the matching exception.

    Raises BadMessageError when the payload is not a remote_error.
    """
    r = _Reader(memoryview(payload))
    code = r.read_int("code")
    domain = r.read_int("domain")
    message = r.optional_string("message")
    level = r.read_int("level")
    if r.optional("dom"):
        r.string("dom.name")
        r.opaque(_UUID_LEN, "dom.uuid")
        r.read_int("dom.id")
    str1 = r.optional_string("str1")
    str2 = r.optional_string("str2")
    str3 = r.optional_string("str3")
    int1 = r.read_int("int1")
    int2 = r.read_int("int2")
    if r.optional("net"):
        r.string("net.name")
        r.opaque(_UUID_LEN, "net.uuid")
    if r.pos != len(r.data):
        raise BadMessageError(f"{len(r.data) - r.pos} trailing bytes after remote_error at payload offset {r.pos}")
    fields = RemoteErrorFields(code, domain, message, level, str1, str2, str3, int1, int2)
    return make_libvirt_error(fields, stream=stream, proc=proc)


def _utf8(text: str) -> bytes:
    """UTF-8 of an error string; never fails, so every failed call can be answered.

    Bytes that arrived as invalid UTF-8 (decoded with surrogateescape) go back
    as they came, as libvirtd echoes the bytes it was given; other lone
    surrogates are written as ``\\udXXX`` escapes.
    """
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace")


def encode_remote_error(error: LibvirtError) -> bytes:
    """Serialise an error as ``remote_error`` (server role; dom and net left null)."""
    out = bytearray()

    def opt_string(value: str | None) -> None:
        if value is None:
            out.extend(_UINT.pack(0))
            return
        raw = _utf8(value)
        out.extend(_UINT.pack(1))
        out.extend(_UINT.pack(len(raw)))
        out.extend(raw)
        out.extend(b"\0" * (-len(raw) % 4))

    out.extend(_INT.pack(error.code))
    out.extend(_INT.pack(error.domain))
    opt_string(error.message)
    out.extend(_INT.pack(error.level))
    out.extend(_UINT.pack(0))  # dom
    opt_string(error.str1)
    opt_string(error.str2)
    opt_string(error.str3)
    out.extend(_INT.pack(error.int1))
    out.extend(_INT.pack(error.int2))
    out.extend(_UINT.pack(0))  # net
    return bytes(out)


def rpc_error(message: str, code: int = VIR_ERR_RPC) -> LibvirtError:
    """A server-side error in the RPC domain, as the daemon reports protocol misuse."""
    return LibvirtError(code, VIR_FROM_RPC, message, VIR_ERR_ERROR_LEVEL)


__all__ = [
    "VirNetError", "ProtocolError", "BadMessageError", "PayloadDecodeError", "StreamOverflowError", "ConnectionClosed", "CallTimeout", "CallCancelled", "PeerDead",
    "StreamStateError", "LibvirtError", "NotSupportedError", "StreamError", "StreamNotSupportedError",
    "RemoteErrorFields", "decode_remote_error", "is_unsupported", "unknown_procedure_error", "encode_remote_error", "make_libvirt_error", "rpc_error",
    "STREAM_CHUNK_MAX",
]
