"""asyncio ONC RPC clients: TCP (or a unix stream socket) and UDP, many calls in flight.

Calls are matched to replies by xid, in any order.  Calls made in the same
loop iteration leave in one write.  Per-call timeouts and UDP retransmission
follow the blocking client (see ``sync``): ``timeout`` seconds in all (25 by
default), UDP datagrams sent again every ``retransmit`` seconds (15).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Any, TypeVar, overload

from xdrgen.runtime.codec import Buffer
from xdrgen.runtime.oncrpc import rpc_prot as _p
from xdrgen.runtime.oncrpc.core import ClientCore, ClientView, ReplyEvent, outcome
from xdrgen.runtime.oncrpc.errors import ConnectionClosed, ProtocolError, RpcTimeout, TransportError
from xdrgen.runtime.oncrpc.sockets import bind_reserved, datagram_socket, family_of
from xdrgen.runtime.oncrpc.sync import RETRANSMIT, TIMEOUT

T = TypeVar("T")


class _Due:
    """Calls due at times that grow in the order they are added (one interval for all):
    one loop timer serves them all, instead of one per call."""

    def __init__(self, loop: asyncio.AbstractEventLoop, interval: float, callback: Callable[[int], None]) -> None:
        self._loop = loop
        self.interval = interval
        self._callback = callback
        #: xid -> when it is due, in the order added (so, by when).
        self._due: dict[int, float] = {}
        self._timer: asyncio.TimerHandle | None = None

    def add(self, xid: int) -> None:
        """Due ``interval`` seconds from now (again, if it already was: it moves to the end)."""
        when = self._loop.time() + self.interval
        self._due.pop(xid, None)
        self._due[xid] = when
        if self._timer is None:
            self._timer = self._loop.call_at(when, self._fire)

    def discard(self, xid: int) -> None:
        self._due.pop(xid, None)  # the timer stays: when it fires it finds the next one

    def _fire(self) -> None:
        self._timer = None
        now = self._loop.time()
        due = self._due
        while due:
            xid, when = next(iter(due.items()))
            if when > now:
                self._timer = self._loop.call_at(when, self._fire)
                return
            del due[xid]
            self._callback(xid)  # may add it again (a retransmission)

    def clear(self) -> None:
        self._due.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class _Pending:
    __slots__ = ("future", "data", "timeout")

    def __init__(self, future: asyncio.Future[ReplyEvent], data: bytes, timeout: float | None) -> None:
        self.future = future
        self.data = data
        self.timeout = timeout


class AsyncClient(ClientView):
    """Common part of the asyncio clients (see the module docstring)."""

    def __init__(self, core: ClientCore, timeout: float | None) -> None:
        self._core = core
        self._loop = asyncio.get_running_loop()
        #: Default seconds per call (None: no limit).
        self.timeout = timeout
        self._pending: dict[int, _Pending] = {}
        #: Per timeout value, the calls that expire with it.
        self._expiries: dict[float, _Due] = {}
        self._error: TransportError | None = None
        self._transport: asyncio.BaseTransport | None = None
        self._can_write = asyncio.Event()
        self._can_write.set()

    @property
    def in_flight(self) -> int:
        """Calls waiting for their replies."""
        return len(self._pending)

    def set_auth(self, cred: _p.opaque_auth | None) -> None:
        self._core.set_auth(cred)

    @overload
    async def call(
        self, proc: int, payload: Buffer = b"", timeout: float | None = None, decode: None = None, *,
        prog: int | None = None, vers: int | None = None,
    ) -> Buffer: ...

    @overload
    async def call(
        self, proc: int, payload: Buffer, timeout: float | None, decode: Callable[[Buffer], T], *,
        prog: int | None = None, vers: int | None = None,
    ) -> T: ...

    async def call(
        self, proc: int, payload: Buffer = b"", timeout: float | None = None,
        decode: Callable[[Buffer], T] | None = None, *, prog: int | None = None, vers: int | None = None,
    ) -> T | Buffer:
        """Call ``proc``; returns the results, decoded by ``decode`` (see sync.Client.call)."""
        if self._error is not None:
            raise self._error
        if not self._can_write.is_set():
            await self._can_write.wait()
            if self._error is not None:
                raise self._error
        if timeout is None:
            timeout = self.timeout
        xid, data = self._core.make_call(proc, payload, prog, vers)
        future: asyncio.Future[ReplyEvent] = self._loop.create_future()
        pending = _Pending(future, data, timeout)
        self._pending[xid] = pending
        if timeout is not None:
            expiry = self._expiries.get(timeout)
            if expiry is None:
                expiry = self._expiries[timeout] = _Due(self._loop, timeout, self._expire)
            expiry.add(xid)
        self._send(xid, pending)
        try:
            event = await future
        except asyncio.CancelledError:
            self._forget(xid)
            raise
        return outcome(event, decode)

    def _send(self, xid: int, pending: _Pending) -> None:
        raise NotImplementedError

    def _settled(self, xid: int, pending: _Pending) -> None:
        """Its timers are no longer needed."""
        if pending.timeout is not None:
            self._expiries[pending.timeout].discard(xid)

    def _forget(self, xid: int) -> None:
        pending = self._pending.pop(xid, None)
        if pending is not None:
            self._settled(xid, pending)
        self._core.forget(xid)

    def _expire(self, xid: int) -> None:
        pending = self._pending.get(xid)
        if pending is None:
            return
        self._forget(xid)
        if not pending.future.done():
            pending.future.set_exception(RpcTimeout(f"no reply to xid {xid:#x} within the timeout"))

    def _deliver(self, event: ReplyEvent) -> None:
        pending = self._pending.pop(event.xid, None)
        if pending is None:
            return
        self._settled(event.xid, pending)
        if not pending.future.done():
            pending.future.set_result(event)

    def _lost(self, error: TransportError) -> None:
        if self._error is None:
            self._error = error
        self._core.fail(error)
        pending, self._pending = self._pending, {}
        for expiry in self._expiries.values():
            expiry.clear()
        for p in pending.values():
            if not p.future.done():
                p.future.set_exception(error)
        self._can_write.set()

    def close(self) -> None:
        """Close the transport; calls still waiting fail with ConnectionClosed."""
        self._lost(ConnectionClosed("client closed"))
        if self._transport is not None:
            self._transport.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


class AsyncStreamClient(AsyncClient, asyncio.Protocol):
    """TCP or unix-socket client with record marking; writes are batched per loop iteration."""

    def __init__(self, core: ClientCore, timeout: float | None) -> None:
        super().__init__(core, timeout)
        self._out: list[bytes] = []

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            events = self._core.receive_data(data)
        except ProtocolError as exc:
            self._abort(exc)
            return
        for event in events:
            self._deliver(event)

    def eof_received(self) -> bool | None:
        self._lost(ConnectionClosed("connection closed by the server"))
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost(ConnectionClosed(f"connection lost: {exc}" if exc else "connection closed"))

    def pause_writing(self) -> None:
        self._can_write.clear()

    def resume_writing(self) -> None:
        self._can_write.set()

    def _abort(self, error: TransportError) -> None:
        self._lost(error)
        if self._transport is not None:
            self._transport.abort()  # type: ignore[attr-defined]

    def _send(self, xid: int, pending: _Pending) -> None:
        if not self._out:
            self._loop.call_soon(self._flush)
        self._out.append(pending.data)
        pending.data = b""  # streams never resend

    def _flush(self) -> None:
        out, self._out = self._out, []
        transport = self._transport
        if transport is None or self._error is not None or not out:
            return
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write(out[0] if len(out) == 1 else b"".join(out))


class AsyncDatagramClient(AsyncClient):
    """UDP client: one call per datagram, each retransmitted on its own timer.

    The socket is read directly (``loop.add_reader``), every datagram waiting
    at each wake-up: asyncio's datagram transport reads one per loop iteration.
    """

    #: Most datagrams read per wake-up (then the loop gets a turn).
    READ_BATCH = 256

    def __init__(self, core: ClientCore, timeout: float | None, retransmit: float, sock: socket.socket) -> None:
        super().__init__(core, timeout)
        if retransmit <= 0:
            raise ValueError("retransmit must be positive")
        self.retransmissions = 0
        self._resends = _Due(self._loop, retransmit, self._resend)
        sock.setblocking(False)
        self._sock: socket.socket | None = sock
        self._limit = core.max_datagram + 1  # one more byte shows a datagram that is too large
        self._loop.add_reader(sock.fileno(), self._readable)

    def _readable(self) -> None:
        sock = self._sock
        for _ in range(self.READ_BATCH):
            if sock is None:
                return
            try:
                data = sock.recv(self._limit)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self._icmp_error(exc)
                return
            event = self._core.receive_datagram(data)
            if event is not None:
                self._deliver(event)

    @property
    def retransmit(self) -> float:
        """Seconds between retransmissions of a call."""
        return self._resends.interval

    def _settled(self, xid: int, pending: _Pending) -> None:
        super()._settled(xid, pending)
        self._resends.discard(xid)

    def _icmp_error(self, exc: OSError) -> None:
        # On a connected socket an ICMP error concerns this server: every call waiting fails.
        error = ConnectionClosed(f"datagram error: {exc}")
        for xid in list(self._pending):
            pending = self._pending.pop(xid)
            self._settled(xid, pending)
            self._core.forget(xid)
            if not pending.future.done():
                pending.future.set_exception(error)

    def _send(self, xid: int, pending: _Pending) -> None:
        sock = self._sock
        if sock is None:
            return
        try:
            sock.send(pending.data)
        except (BlockingIOError, InterruptedError):
            pass  # the socket buffer is full: as if the datagram were lost; it is sent again
        except OSError as exc:
            self._icmp_error(exc)
            return
        self._resends.add(xid)

    def _resend(self, xid: int) -> None:
        pending = self._pending.get(xid)
        if pending is None or self._error is not None:
            return
        self.retransmissions += 1
        self._send(xid, pending)

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            self._loop.remove_reader(sock.fileno())
            sock.close()
        self._resends.clear()
        self._lost(ConnectionClosed("client closed"))


async def _stream_socket(host: str, port: int, reserved: bool) -> socket.socket | None:
    if not reserved:
        return None
    loop = asyncio.get_running_loop()
    sock = socket.socket(family_of(host), socket.SOCK_STREAM)
    try:
        bind_reserved(sock)
        sock.setblocking(False)
        await loop.sock_connect(sock, (host, port))
    except BaseException:
        sock.close()
        raise
    return sock


async def connect_tcp(host: str, port: int, prog: int, vers: int, **options: Any) -> AsyncStreamClient:
    """An asyncio TCP client (options as for sync.connect_tcp)."""
    timeout = options.pop("timeout", TIMEOUT)
    connect_timeout = options.pop("connect_timeout", timeout)
    reserved = options.pop("reserved_port", False)
    client = AsyncStreamClient(ClientCore.from_options(prog, vers, True, options), timeout)
    loop = asyncio.get_running_loop()

    async def connect() -> None:
        sock = await _stream_socket(host, port, reserved)
        if sock is None:
            await loop.create_connection(lambda: client, host, port)
        else:
            await loop.create_connection(lambda: client, sock=sock)

    await asyncio.wait_for(connect(), connect_timeout)
    transport = client._transport
    assert transport is not None
    raw = transport.get_extra_info("socket")
    if raw is not None:
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return client


async def connect_unix(path: str, prog: int, vers: int, **options: Any) -> AsyncStreamClient:
    timeout = options.pop("timeout", TIMEOUT)
    connect_timeout = options.pop("connect_timeout", timeout)
    client = AsyncStreamClient(ClientCore.from_options(prog, vers, True, options), timeout)
    await asyncio.wait_for(asyncio.get_running_loop().create_unix_connection(lambda: client, path), connect_timeout)
    return client


async def connect_udp(host: str, port: int, prog: int, vers: int, **options: Any) -> AsyncDatagramClient:
    """An asyncio UDP client (options as for sync.connect_udp)."""
    timeout = options.pop("timeout", TIMEOUT)
    retransmit = options.pop("retransmit", RETRANSMIT)
    sock = datagram_socket(host, port, options.pop("reserved_port", False))
    try:
        return AsyncDatagramClient(ClientCore.from_options(prog, vers, False, options), timeout, retransmit, sock)
    except BaseException:
        sock.close()
        raise


async def create(host: str, prog: int, vers: int, transport: str = "tcp", **options: Any) -> AsyncClient:
    """Find ``prog``/``vers`` through rpcbind on ``host`` and connect (see sync.create)."""
    from xdrgen.runtime.oncrpc.rpcbind import lookup_async

    address, port = await lookup_async(host, prog, vers, transport, timeout=options.get("timeout", TIMEOUT))
    if transport == "udp":
        return await connect_udp(address, port, prog, vers, **options)
    if transport == "tcp":
        return await connect_tcp(address, port, prog, vers, **options)
    raise ValueError(f"transport must be 'tcp' or 'udp', not {transport!r}")


__all__ = [
    "AsyncClient", "AsyncStreamClient", "AsyncDatagramClient", "connect_tcp", "connect_unix", "connect_udp", "create",
]
