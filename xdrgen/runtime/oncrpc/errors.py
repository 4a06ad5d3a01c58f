"""ONC RPC failures: one class per outcome of RFC 5531 other than SUCCESS, and transport errors.

Everything derives from :class:`RpcError`.  A reply that says the call failed
raises :class:`CallRejected` (a subclass per accept_stat / reject_stat), carrying
the call it answers (xid, program, version, procedure) and the reply's own data:
the version range of PROG_MISMATCH and RPC_MISMATCH, the auth_stat of
AUTH_ERROR.  Servers raise the same classes from handlers to answer with them.
"""

from __future__ import annotations

from typing import ClassVar

from xdrgen.runtime.errors import XdrDecodeError

#: accept_stat values (RFC 5531); the generated rpc_prot module has them as enums too.
SUCCESS = 0
PROG_UNAVAIL = 1
PROG_MISMATCH = 2
PROC_UNAVAIL = 3
GARBAGE_ARGS = 4
SYSTEM_ERR = 5
#: reject_stat values.
RPC_MISMATCH = 0
AUTH_ERROR = 1


class RpcError(Exception):
    """Any ONC RPC failure."""


class CallRejected(RpcError):
    """The server answered the call, but not with SUCCESS.

    ``xid``, ``prog``, ``vers`` and ``proc`` identify the call (0 when the
    exception is raised by a handler, before it is sent).
    """

    #: What RFC 5531 calls this outcome.
    stat_name: ClassVar[str] = ""

    def __init__(self, message: str = "", *, xid: int = 0, prog: int = 0, vers: int = 0, proc: int = 0) -> None:
        self.xid = xid
        self.prog = prog
        self.vers = vers
        self.proc = proc
        super().__init__(message or self._describe())

    def _describe(self) -> str:
        return self.stat_name

    def _call_text(self) -> str:
        if not (self.prog or self.vers or self.proc):
            return ""
        return f" (program {self.prog} version {self.vers} procedure {self.proc}, xid {self.xid:#x})"

    def __str__(self) -> str:
        return super().__str__() + self._call_text()


class ProgUnavail(CallRejected):
    """MSG_ACCEPTED / PROG_UNAVAIL: the server does not serve this program."""

    stat_name = "PROG_UNAVAIL: program not available"


class ProgMismatch(CallRejected):
    """MSG_ACCEPTED / PROG_MISMATCH: the program is served, in versions ``low`` to ``high``."""

    stat_name = "PROG_MISMATCH"

    def __init__(self, low: int, high: int, message: str = "", **call: int) -> None:
        self.low = low
        self.high = high
        super().__init__(message, **call)

    def _describe(self) -> str:
        return f"PROG_MISMATCH: program version not served (versions {self.low} to {self.high} are)"


class ProcUnavail(CallRejected):
    """MSG_ACCEPTED / PROC_UNAVAIL: the program has no such procedure."""

    stat_name = "PROC_UNAVAIL: procedure not available"


class GarbageArgs(CallRejected):
    """MSG_ACCEPTED / GARBAGE_ARGS: the server could not decode the arguments."""

    stat_name = "GARBAGE_ARGS: the server could not decode the arguments"


class SystemErr(CallRejected):
    """MSG_ACCEPTED / SYSTEM_ERR: the server failed while serving the call."""

    stat_name = "SYSTEM_ERR: system error on the server"


class RpcMismatch(CallRejected):
    """MSG_DENIED / RPC_MISMATCH: the server speaks RPC versions ``low`` to ``high`` only."""

    stat_name = "RPC_MISMATCH"

    def __init__(self, low: int, high: int, message: str = "", **call: int) -> None:
        self.low = low
        self.high = high
        super().__init__(message, **call)

    def _describe(self) -> str:
        return f"RPC_MISMATCH: RPC version not supported (versions {self.low} to {self.high} are)"


#: auth_stat names, for messages (the generated rpc_prot.auth_stat enum has them all).
_AUTH_STAT_NAMES = {
    0: "AUTH_OK",
    1: "AUTH_BADCRED",
    2: "AUTH_REJECTEDCRED",
    3: "AUTH_BADVERF",
    4: "AUTH_REJECTEDVERF",
    5: "AUTH_TOOWEAK",
    6: "AUTH_INVALIDRESP",
    7: "AUTH_FAILED",
    8: "AUTH_KERB_GENERIC",
    9: "AUTH_TIMEEXPIRE",
    10: "AUTH_TKT_FILE",
    11: "AUTH_DECODE",
    12: "AUTH_NET_ADDR",
    13: "RPCSEC_GSS_CREDPROBLEM",
    14: "RPCSEC_GSS_CTXPROBLEM",
    15: "AUTH_NEEDS_TLS",
    16: "AUTH_NEEDS_TLS_MUTUAL_HOST",
}


class AuthError(CallRejected):
    """MSG_DENIED / AUTH_ERROR: the server refused the credential; ``why`` is the auth_stat.

    A server's credential hook raises it to refuse a call (``AuthError(AUTH_TOOWEAK)``).
    """

    stat_name = "AUTH_ERROR"

    def __init__(self, why: int, message: str = "", **call: int) -> None:
        self.why = why
        super().__init__(message, **call)

    @property
    def why_name(self) -> str:
        return _AUTH_STAT_NAMES.get(self.why, f"auth_stat {self.why}")

    def _describe(self) -> str:
        return f"AUTH_ERROR: {self.why_name}"


class TransportError(RpcError):
    """The call could not be made or its reply could not be had (I/O, timeouts, protocol)."""


class RpcTimeout(TransportError, TimeoutError):
    """No reply within the call's timeout (UDP: after every retransmission)."""


class ConnectionClosed(TransportError, ConnectionError):
    """The connection is closed (by either side), or failed; pending calls get this."""


class ProtocolError(TransportError):
    """The peer broke the protocol: a malformed record or message.  ``offset`` says where."""

    def __init__(self, message: str, offset: int | None = None) -> None:
        self.offset = offset
        super().__init__(message if offset is None else f"{message} at byte offset {offset}")


class RecordTooLarge(ProtocolError):
    """A record-marked record (TCP) longer than the configured cap, refused before it was buffered."""


class MessageTooLarge(TransportError):
    """A call or reply larger than a UDP datagram may be here (refused, never sent or read)."""


class BadReply(ProtocolError, XdrDecodeError):
    """The server's reply to a call cannot be read: its header, or its results as the
    procedure's result type.

    Both an RpcError and an XdrDecodeError: code catching either sees it.  The
    XDR error, if any, is ``error`` (and the ``__cause__``).  Only that call
    fails; the connection stays usable.
    """

    def __init__(self, message: str, error: Exception | None = None) -> None:
        self.error = error
        Exception.__init__(self, message)
        self.problem = message
        self.type_name = getattr(error, "type_name", None)
        self.path = getattr(error, "path", "")
        self.offset = getattr(error, "offset", None)

    def __str__(self) -> str:
        return self.problem


class RpcbindError(RpcError):
    """rpcbind could not find a program, or refused a registration."""


#: accept_stat -> exception class (SUCCESS excluded).
ACCEPT_ERRORS: dict[int, type[CallRejected]] = {
    PROG_UNAVAIL: ProgUnavail,
    PROG_MISMATCH: ProgMismatch,
    PROC_UNAVAIL: ProcUnavail,
    GARBAGE_ARGS: GarbageArgs,
    SYSTEM_ERR: SystemErr,
}

__all__ = [
    "RpcError", "CallRejected", "ProgUnavail", "ProgMismatch", "ProcUnavail", "GarbageArgs", "SystemErr",
    "RpcMismatch", "AuthError", "TransportError", "RpcTimeout", "ConnectionClosed", "ProtocolError",
    "RecordTooLarge", "MessageTooLarge", "BadReply", "RpcbindError", "ACCEPT_ERRORS",
]
