"""Blocking ONC RPC clients: TCP (or a unix stream socket) and UDP.

A client is bound to one program version (``call`` may name another) and is
safe to share between threads: calls take turns, as on a libtirpc CLIENT.  For
many calls in flight on one connection use the asyncio client.

Timeouts follow libtirpc: each call waits ``timeout`` seconds in all (default
25, the TIMEOUT of rpcgen's client stubs; None waits forever); over UDP the call
is sent again every ``retransmit`` seconds (default 15, clnt_dg's retry
interval) with the same xid, until then.  A reply that arrives after its call
gave up, and a second copy of a reply, are dropped by xid.
"""

from __future__ import annotations

import select
import socket
import threading
import time
from collections.abc import Callable
from typing import Any, Final, TypeVar, overload

from xdrgen.runtime.codec import Buffer
from xdrgen.runtime.oncrpc import rpc_prot as _p
from xdrgen.runtime.oncrpc.core import ClientCore, ClientView, ReplyEvent, outcome
from xdrgen.runtime.oncrpc.errors import ConnectionClosed, ProtocolError, RpcTimeout, TransportError
from xdrgen.runtime.oncrpc.sockets import datagram_socket, stream_socket, unix_socket

#: Seconds a call waits for its reply, in all (rpcgen's client stubs use 25).
TIMEOUT: Final = 25.0
#: Seconds between UDP retransmissions (libtirpc clnt_dg's default).
RETRANSMIT: Final = 15.0
_RECV: Final = 1 << 16
T = TypeVar("T")


def _deadline(timeout: float | None) -> float | None:
    return None if timeout is None else time.monotonic() + timeout


class Client(ClientView):
    """Common part of the blocking clients (see the module docstring)."""

    def __init__(self, core: ClientCore, sock: socket.socket, timeout: float | None) -> None:
        self._core = core
        self._sock = sock
        #: Default seconds per call (None: no limit).
        self.timeout = timeout
        self._lock = threading.Lock()
        self._closed: TransportError | None = None
        # Non-blocking, waited on with poll: settimeout() would cost a syscall per call.
        sock.setblocking(False)
        self._poller = select.poll()
        self._poller.register(sock.fileno(), select.POLLIN)
        self._events = select.POLLIN

    def _poll(self, events: int, seconds: float | None) -> bool:
        """Wait up to ``seconds`` (None: forever) for ``events``; False on timeout."""
        if events != self._events:
            self._poller.modify(self._sock.fileno(), events)
            self._events = events
        if seconds is None:
            ms = -1
        elif seconds <= 0:
            ms = 0
        else:
            ms = max(int(seconds * 1000 + 0.999), 1)
        return bool(self._poller.poll(ms))

    def _wait(self, events: int, deadline: float | None) -> None:
        """Wait for ``events``; RpcTimeout at ``deadline``."""
        if not self._poll(events, None if deadline is None else deadline - time.monotonic()):
            raise RpcTimeout("no reply within the timeout")

    def set_auth(self, cred: _p.opaque_auth | None) -> None:
        """Send ``cred`` with later calls (None: AUTH_NONE); see ``auth.auth_sys``."""
        with self._lock:
            self._core.set_auth(cred)

    @overload
    def call(
        self, proc: int, payload: Buffer = b"", timeout: float | None = None, decode: None = None, *,
        prog: int | None = None, vers: int | None = None,
    ) -> Buffer: ...

    @overload
    def call(
        self, proc: int, payload: Buffer, timeout: float | None, decode: Callable[[Buffer], T], *,
        prog: int | None = None, vers: int | None = None,
    ) -> T: ...

    def call(
        self, proc: int, payload: Buffer = b"", timeout: float | None = None,
        decode: Callable[[Buffer], T] | None = None, *, prog: int | None = None, vers: int | None = None,
    ) -> T | Buffer:
        """Call ``proc`` with encoded arguments; returns the results, decoded by ``decode``
        (or encoded, without it).

        ``timeout`` None means the client's default.  Raises the reply's
        CallRejected subclass, BadReply when the reply cannot be read,
        RpcTimeout, or a TransportError.
        """
        if timeout is None:
            timeout = self.timeout
        with self._lock:
            if self._closed is not None:
                raise self._closed
            xid, data = self._core.make_call(proc, payload, prog, vers)
            try:
                event = self._exchange(xid, data, _deadline(timeout))
            except BaseException:
                self._core.forget(xid)
                raise
        return outcome(event, decode)

    def _exchange(self, xid: int, data: bytes, deadline: float | None) -> ReplyEvent:
        raise NotImplementedError

    def _fail(self, error: TransportError) -> TransportError:
        if self._closed is None:
            self._closed = error
            self._core.fail(error)
            try:
                self._sock.close()
            except OSError:
                pass
        return error

    def close(self) -> None:
        """Close the socket; a call waiting in another thread ends with ConnectionClosed."""
        if self._closed is None:
            try:
                self._sock.shutdown(socket.SHUT_RDWR)  # wakes a call waiting in poll
            except OSError:
                pass
        with self._lock:
            self._fail(ConnectionClosed("client closed"))

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class StreamClient(Client):
    """A client over a byte stream (TCP or a unix socket), with record marking."""

    def _exchange(self, xid: int, data: bytes, deadline: float | None) -> ReplyEvent:
        sock = self._sock
        try:
            self._send_all(data, deadline)
            while True:
                self._wait(select.POLLIN, deadline)
                try:
                    chunk = sock.recv(_RECV)
                except BlockingIOError:
                    continue
                if not chunk:
                    raise self._fail(ConnectionClosed("connection closed by the server"))
                for event in self._core.receive_data(chunk):
                    if event.xid == xid:
                        return event
        except ProtocolError as exc:
            raise self._fail(exc) from None
        except TransportError:
            raise
        except OSError as exc:
            raise self._fail(ConnectionClosed(f"connection failed: {exc}")) from None

    def _send_all(self, data: bytes, deadline: float | None) -> None:
        view = memoryview(data)
        while view:
            try:
                sent = self._sock.send(view)
            except BlockingIOError:
                self._wait(select.POLLOUT, deadline)
                continue
            view = view[sent:]


class DatagramClient(Client):
    """A client over UDP: one call per datagram, retransmitted until answered or timed out."""

    def __init__(self, core: ClientCore, sock: socket.socket, timeout: float | None, retransmit: float) -> None:
        super().__init__(core, sock, timeout)
        if retransmit <= 0:
            raise ValueError("retransmit must be positive")
        #: Seconds between retransmissions.
        self.retransmit = retransmit
        #: Datagrams sent again because no reply came in time (all calls).
        self.retransmissions = 0

    def _exchange(self, xid: int, data: bytes, deadline: float | None) -> ReplyEvent:
        sock = self._sock
        limit = self._core.max_datagram + 1  # one more byte shows a datagram that is too large
        try:
            sock.send(data)
            next_send = time.monotonic() + self.retransmit
            while True:
                wake = next_send if deadline is None else min(next_send, deadline)
                if self._poll(select.POLLIN, wake - time.monotonic()):
                    try:
                        reply = sock.recv(limit)
                    except BlockingIOError:
                        continue
                    event = self._core.receive_datagram(reply)
                    if event is not None and event.xid == xid:
                        return event
                    continue
                now = time.monotonic()
                if deadline is not None and now >= deadline:
                    raise RpcTimeout(f"no reply to xid {xid:#x} within the timeout")
                if now >= next_send:
                    sock.send(data)
                    self.retransmissions += 1
                    next_send = now + self.retransmit
        except TransportError:
            raise
        except ConnectionRefusedError as exc:
            raise ConnectionClosed(f"nothing listens there (ICMP port unreachable): {exc}") from None
        except OSError as exc:
            raise self._fail(ConnectionClosed(f"socket failed: {exc}")) from None


def _stream_client(sock: socket.socket, prog: int, vers: int, timeout: float | None, options: dict[str, Any]) -> StreamClient:
    try:
        return StreamClient(ClientCore.from_options(prog, vers, True, options), sock, timeout)
    except BaseException:
        sock.close()
        raise


def connect_tcp(host: str, port: int, prog: int, vers: int, **options: Any) -> StreamClient:
    """A TCP client.  Options: ``timeout``, ``cred``, ``fragment_size``, ``max_record``,
    ``connect_timeout``, ``reserved_port`` (bind a privileged source port, as root)."""
    timeout = options.pop("timeout", TIMEOUT)
    sock = stream_socket(host, port, options.pop("connect_timeout", timeout), options.pop("reserved_port", False))
    return _stream_client(sock, prog, vers, timeout, options)


def connect_unix(path: str, prog: int, vers: int, **options: Any) -> StreamClient:
    """A client over a unix stream socket (rpcbind's /run/rpcbind.sock, for instance)."""
    timeout = options.pop("timeout", TIMEOUT)
    return _stream_client(unix_socket(path, options.pop("connect_timeout", timeout)), prog, vers, timeout, options)


def connect_udp(host: str, port: int, prog: int, vers: int, **options: Any) -> DatagramClient:
    """A UDP client.  Options: ``timeout``, ``retransmit``, ``cred``, ``max_datagram``, ``reserved_port``."""
    timeout = options.pop("timeout", TIMEOUT)
    retransmit = options.pop("retransmit", RETRANSMIT)
    sock = datagram_socket(host, port, options.pop("reserved_port", False))
    try:
        return DatagramClient(ClientCore.from_options(prog, vers, False, options), sock, timeout, retransmit)
    except BaseException:
        sock.close()
        raise


def create(host: str, prog: int, vers: int, transport: str = "tcp", **options: Any) -> Client:
    """Find ``prog``/``vers`` through rpcbind on ``host`` and connect, as clnt_create does.

    ``transport`` is "tcp" or "udp".  The lookup tries RPCB version 4 GETADDR,
    then version 3, then portmap GETPORT.
    """
    from xdrgen.runtime.oncrpc.rpcbind import lookup

    address, port = lookup(host, prog, vers, transport, timeout=options.get("timeout", TIMEOUT))
    if transport == "udp":
        return connect_udp(address, port, prog, vers, **options)
    if transport == "tcp":
        return connect_tcp(address, port, prog, vers, **options)
    raise ValueError(f"transport must be 'tcp' or 'udp', not {transport!r}")


__all__ = [
    "Client", "StreamClient", "DatagramClient", "connect_tcp", "connect_unix", "connect_udp", "create", "TIMEOUT",
    "RETRANSMIT",
]
