"""Sans-IO ONC RPC client core: xids, pending calls, reply matching.

No sockets, no clocks: a transport asks :meth:`ClientCore.make_call` for the
bytes of a call (record-marked for stream transports), writes them, and feeds
what it receives to :meth:`ClientCore.receive_data` (streams) or
:meth:`ClientCore.receive_datagram` (UDP).  Each reply is matched to its call
by xid, in any order; a reply for an xid nobody waits for (a duplicate UDP
reply, the late reply of a call that timed out) is dropped.  The same core
serves the blocking and the asyncio transports.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from collections.abc import Callable
from typing import Any, Final, TypeVar

from xdrgen.runtime.codec import Buffer
from xdrgen.runtime.oncrpc import message as _m
from xdrgen.runtime.oncrpc import rpc_prot as _p
from xdrgen.runtime.errors import XdrError
from xdrgen.runtime.oncrpc.errors import BadReply, CallRejected, MessageTooLarge, ProtocolError
from xdrgen.runtime.oncrpc.record import DEFAULT_RECORD_MAX, RecordReader, frame

#: Largest UDP datagram sent or accepted by default: libtirpc's UDPMSGSIZE.
UDP_MAX: Final = 8800


@dataclass(slots=True)
class Reply:
    """A SUCCESS reply: ``results`` are the procedure's encoded results."""

    xid: int
    results: Buffer


@dataclass(slots=True)
class Failure:
    """A reply that failed the call (a CallRejected), or a reply that could not be read."""

    xid: int
    error: Exception


ReplyEvent = Reply | Failure
T = TypeVar("T")


class ClientView:
    """What the blocking and the asyncio clients tell about themselves, from their core."""

    _core: ClientCore

    @property
    def program(self) -> int:
        return self._core.prog

    @property
    def version(self) -> int:
        return self._core.vers

    @property
    def credential(self) -> _p.opaque_auth | None:
        return self._core.credential


def outcome(event: ReplyEvent, decode: Callable[[Buffer], T] | None) -> T | Buffer:
    """What a call returns for its reply: the decoded results (raw when ``decode`` is None).

    Raises the reply's error; results that do not decode raise BadReply.
    """
    if isinstance(event, Failure):
        raise event.error
    if decode is None:
        return event.results
    try:
        return decode(event.results)
    except XdrError as exc:
        raise BadReply(f"the results of xid {event.xid:#x} do not decode: {exc}", exc) from exc


class ClientCore:
    """One client's protocol state (see the module docstring).

    ``stream``: record marking (TCP, unix sockets) or one message per datagram.
    ``fragment_size``: send calls in fragments of at most this many bytes (0: one).
    """

    def __init__(
        self,
        prog: int,
        vers: int,
        *,
        stream: bool,
        cred: _p.opaque_auth | None = None,
        verf: _p.opaque_auth | None = None,
        max_record: int = DEFAULT_RECORD_MAX,
        fragment_size: int = 0,
        max_datagram: int = UDP_MAX,
    ) -> None:
        self.prog = prog
        self.vers = vers
        self.stream = stream
        self.fragment_size = fragment_size
        self.max_datagram = max_datagram
        self._prefix = _m.call_prefix(prog, vers, cred, verf)
        self._cred = cred
        self._verf = verf
        # Random first xid: replies meant for an earlier client on the same port do not match.
        self._xid = int.from_bytes(os.urandom(4), "big")
        #: xid -> (prog, vers, proc) of each call waiting for its reply.
        self._pending: dict[int, tuple[int, int, int]] = {}
        self._reader = RecordReader(max_record) if stream else None
        self.failed: Exception | None = None

    @property
    def credential(self) -> _p.opaque_auth | None:
        return self._cred

    def set_auth(self, cred: _p.opaque_auth | None, verf: _p.opaque_auth | None = None) -> None:
        """Use ``cred`` / ``verf`` for later calls (None: AUTH_NONE)."""
        self._prefix = _m.call_prefix(self.prog, self.vers, cred, verf)
        self._cred = cred
        self._verf = verf

    @property
    def pending(self) -> int:
        return len(self._pending)

    def make_call(self, proc: int, payload: Buffer = b"", prog: int | None = None, vers: int | None = None) -> tuple[int, bytes]:
        """A new call's xid and the bytes to send (record-marked for streams)."""
        xid = (self._xid + 1) & 0xFFFFFFFF
        while xid in self._pending:
            xid = (xid + 1) & 0xFFFFFFFF
        self._xid = xid
        p = self.prog if prog is None else prog
        v = self.vers if vers is None else vers
        message = _m.CALL_HEAD.pack(xid, 0, 2, p, v, proc) + self._prefix + payload
        if self._reader is not None:
            message = frame(message, self.fragment_size)
        elif len(message) > self.max_datagram:
            raise MessageTooLarge(
                f"call of {len(message)} bytes exceeds the {self.max_datagram}-byte datagram limit "
                f"(program {p} version {v} procedure {proc})"
            )
        self._pending[xid] = (p, v, proc)
        return xid, message

    def forget(self, xid: int) -> None:
        """Stop waiting for ``xid`` (timed out, cancelled); its reply will be dropped."""
        self._pending.pop(xid, None)

    def receive_data(self, data: Buffer) -> list[ReplyEvent]:
        """Stream transports: received bytes in, matched replies out.

        Raises ProtocolError (RecordTooLarge) when the record marking is broken;
        the connection is then unusable and every pending call should fail.
        """
        assert self._reader is not None, "receive_data on a datagram core"
        records = self._reader.feed(data)
        out: list[ReplyEvent] = []
        for record in records:
            event = self._match(record)
            if event is not None:
                out.append(event)
        return out

    def receive_datagram(self, data: Buffer) -> ReplyEvent | None:
        """Datagram transports: one datagram in, its matched reply (or None: not ours)."""
        if len(data) > self.max_datagram:
            xid = _m.reply_xid(data)
            if xid is None or xid not in self._pending:
                return None
            self._pending.pop(xid)
            return Failure(xid, MessageTooLarge(f"reply of {len(data)} bytes exceeds the {self.max_datagram}-byte datagram limit"))
        return self._match(data)

    def _match(self, message: Buffer) -> ReplyEvent | None:
        xid = _m.reply_xid(message)
        if xid is None:
            return None
        call = self._pending.pop(xid, None)
        if call is None:
            return None  # a duplicate, or the reply of a call we gave up on
        try:
            offset = _m.parse_reply(message, *call)
        except (CallRejected, ProtocolError) as exc:
            return Failure(xid, exc)
        if offset == 0:
            return Reply(xid, message)
        view = memoryview(message)
        return Reply(xid, view[offset:])

    @classmethod
    def from_options(cls, prog: int, vers: int, stream: bool, options: dict[str, Any]) -> ClientCore:
        """A core from a client's keyword options (what the transport took is gone from them).

        Raises TypeError for an option nobody knows.
        """
        core = cls(
            prog,
            vers,
            stream=stream,
            cred=options.pop("cred", None),
            max_record=options.pop("max_record", DEFAULT_RECORD_MAX),
            fragment_size=options.pop("fragment_size", 0),
            max_datagram=options.pop("max_datagram", UDP_MAX),
        )
        if options:
            raise TypeError(f"unknown client options: {', '.join(sorted(options))}")
        return core

    def fail(self, error: Exception) -> list[int]:
        """The transport is gone: every pending xid (each call must fail with ``error``)."""
        self.failed = error
        xids = list(self._pending)
        self._pending.clear()
        return xids


__all__ = ["ClientCore", "ClientView", "Reply", "Failure", "ReplyEvent", "UDP_MAX", "outcome"]
