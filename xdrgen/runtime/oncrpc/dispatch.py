"""Sans-IO ONC RPC server core: from a received CALL to a reply or a handler to run.

:meth:`ServerCore.handle` takes one call message (a reassembled record, or a
datagram) and decides, in the order libtirpc's svc_getreq does:

1. RPC version other than 2: MSG_DENIED / RPC_MISMATCH (2, 2);
2. authentication: AUTH_NONE passes; AUTH_SYS passes when its body decodes as
   authsys_parms, else AUTH_BADCRED; any other flavor AUTH_REJECTEDCRED; then
   the server's credential hook may refuse with its own auth_stat;
3. program not served: PROG_UNAVAIL; version not served: PROG_MISMATCH with the
   lowest and highest version served of that program;
4. procedure 0 without an entry of its own (NULL): an empty SUCCESS, no handler;
5. procedure unknown or not implemented by the handler: PROC_UNAVAIL;
6. arguments that do not decode, or leave bytes over: GARBAGE_ARGS;
7. otherwise a :class:`Dispatch` for the transport to run, after which
   :meth:`ServerCore.success` / :meth:`ServerCore.failure` make the reply.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

from xdrgen.runtime.codec import Buffer
from xdrgen.runtime.errors import XdrError
from xdrgen.runtime.oncrpc import message as _m
from xdrgen.runtime.oncrpc import rpc_prot as _p
from xdrgen.runtime.oncrpc.errors import (
    AuthError,
    CallRejected,
    GarbageArgs,
    ProcUnavail,
    ProgMismatch,
    ProgUnavail,
    RpcMismatch,
    SystemErr,
)

#: A dispatch table entry as generated code writes it: handler method name,
#: args decoder (bytes -> tuple of arguments; None for void), result encoder (None for void).
GeneratedEntry = tuple[str, Callable[[Buffer], tuple[Any, ...]] | None, Callable[[Any], bytes] | None]


@dataclass(slots=True)
class CallInfo:
    """The call a handler is serving (``current_call()``)."""

    xid: int
    prog: int
    vers: int
    proc: int
    #: The credential and verifier as received.
    cred: _p.opaque_auth
    verf: _p.opaque_auth
    #: The decoded AUTH_SYS credential, or None for other flavors.
    auth_sys: _p.authsys_parms | None
    #: The client's address (as the socket module gives it), or None.
    peer: Any
    #: "tcp", "udp" or "unix".
    transport: str


_CURRENT: Final[contextvars.ContextVar[CallInfo]] = contextvars.ContextVar("xdrgen_oncrpc_call")


def current_call() -> CallInfo:
    """The call being served by the running handler (raises LookupError outside one)."""
    return _CURRENT.get()


def set_current_call(info: CallInfo) -> contextvars.Token[CallInfo]:
    return _CURRENT.set(info)


@dataclass(slots=True, frozen=True)
class Entry:
    """One procedure of a service: the coroutine function to run, its codecs."""

    method: Callable[..., Any] | None
    decode: Callable[[Buffer], tuple[Any, ...]] | None
    encode: Callable[[Any], bytes] | None
    name: str


class Service:
    """One program version and the handler that serves it."""

    def __init__(self, program: int, version: int, procedures: Mapping[int, Entry], name: str = "") -> None:
        self.program = program
        self.version = version
        self.procedures = dict(procedures)
        self.name = name or f"program {program} version {version}"

    @classmethod
    def of_handler(
        cls, program: int, version: int, handler: object, base: type, dispatch: Mapping[int, GeneratedEntry], name: str = ""
    ) -> Service:
        """Bind a generated dispatch table to ``handler`` (an instance of a subclass of ``base``).

        Methods the handler's class does not override stay unbound: their
        procedures answer PROC_UNAVAIL without running anything.
        """
        entries: dict[int, Entry] = {}
        for number, (method_name, decode, encode) in dispatch.items():
            implemented = getattr(type(handler), method_name, None) is not getattr(base, method_name, None)
            method = getattr(handler, method_name) if implemented else None
            entries[number] = Entry(method, decode, encode, method_name)
        return cls(program, version, entries, name)


class ServiceProvider(Protocol):
    """Anything that can hand a Service to a server (the generated ``<P><V>Server`` classes)."""

    def service(self) -> Service: ...


#: Called with each call's CallInfo before dispatch; raise AuthError to refuse it.
AuthHook = Callable[[CallInfo], None]


@dataclass(slots=True)
class Dispatch:
    """A call to hand to its handler: ``await method(*args)``, then encode the result."""

    info: CallInfo
    method: Callable[..., Any]
    args: tuple[Any, ...]
    encode: Callable[[Any], bytes] | None


def authenticate(cred: _p.opaque_auth) -> _p.authsys_parms | None:
    """libtirpc's built-in flavors: the decoded AUTH_SYS body, None for AUTH_NONE; else AuthError."""
    flavor = cred.flavor
    if flavor == _m.AUTH_NONE:
        return None
    if flavor == _m.AUTH_SYS:
        try:
            return _m.decode_auth_sys(cred.body)
        except XdrError:
            raise AuthError(_p.auth_stat.AUTH_BADCRED) from None
    raise AuthError(_p.auth_stat.AUTH_REJECTEDCRED)


class ServerCore:
    """Routing and reply encoding for a set of services; see the module docstring."""

    def __init__(self, services: Iterable[Service], auth_hook: AuthHook | None = None) -> None:
        self.programs: dict[int, dict[int, Service]] = {}
        for service in services:
            versions = self.programs.setdefault(service.program, {})
            if service.version in versions:
                raise ValueError(f"program {service.program} version {service.version} is served twice")
            versions[service.version] = service
        self._ranges = {prog: (min(vs), max(vs)) for prog, vs in self.programs.items()}
        self.auth_hook = auth_hook

    @property
    def services(self) -> list[Service]:
        return [s for versions in self.programs.values() for s in versions.values()]

    def handle(self, message: Buffer, peer: Any = None, transport: str = "tcp") -> bytes | Dispatch:
        """A reply to send now, or a Dispatch; raises ProtocolError when ``message`` is no CALL."""
        xid, rpcvers, prog, vers, proc, cred, verf, offset = _m.parse_call(message)
        info = CallInfo(xid, prog, vers, proc, cred, verf, None, peer, transport)
        if rpcvers != _m.RPC_VERSION:
            return _m.error_reply(xid, RpcMismatch(_m.RPC_VERSION, _m.RPC_VERSION))
        if cred.flavor != _m.AUTH_NONE or self.auth_hook is not None:
            try:
                info.auth_sys = authenticate(cred)
                if self.auth_hook is not None:
                    self.auth_hook(info)
            except AuthError as exc:
                return _m.error_reply(xid, exc)
        versions = self.programs.get(prog)
        if versions is None:
            return _m.error_reply(xid, ProgUnavail())
        service = versions.get(vers)
        if service is None:
            low, high = self._ranges[prog]
            return _m.error_reply(xid, ProgMismatch(low, high))
        entry = service.procedures.get(proc)
        if entry is None:
            if proc == 0:  # NULL: answered here, whatever the handler
                if len(message) != offset:
                    return _m.error_reply(xid, GarbageArgs())
                return _m.success_head(xid)
            return _m.error_reply(xid, ProcUnavail())
        if entry.method is None:
            return _m.error_reply(xid, ProcUnavail())
        decode = entry.decode
        if decode is None:
            if len(message) != offset:
                return _m.error_reply(xid, GarbageArgs())
            args: tuple[Any, ...] = ()
        else:
            try:
                args = decode(memoryview(message)[offset:])
            except XdrError:
                return _m.error_reply(xid, GarbageArgs())
        return Dispatch(info, entry.method, args, entry.encode)

    @staticmethod
    def success(xid: int, results: bytes = b"") -> bytes:
        return _m.success_head(xid) + results

    @staticmethod
    def failure(xid: int, error: BaseException) -> bytes:
        """The reply for a handler that raised: its CallRejected, or SYSTEM_ERR."""
        if isinstance(error, CallRejected):
            return _m.error_reply(xid, error)
        return _m.error_reply(xid, SystemErr())


__all__ = [
    "CallInfo", "current_call", "Service", "Entry", "ServerCore", "Dispatch", "AuthHook", "GeneratedEntry",
    "authenticate", "ServiceProvider",
]
