"""asyncio ONC RPC server: TCP (and unix sockets) with record marking, and UDP.

``RpcServer(services)`` serves any number of program versions on the same
sockets.  A call's handler coroutine starts as soon as the call is read; one
that has to wait continues in a task of its own (``calls``), so one connection
may have many calls in progress, answered in the order they finish.
What the protocol decides without a handler (errors, NULL) is answered at once
(``dispatch.ServerCore``).

A client that misbehaves costs only its own connection: a record marker past
``max_record`` or a message that is no CALL closes that connection, memory
follows the bytes received (``record.RecordReader``), at most
``max_in_flight`` calls of one connection run at once (then reading pauses),
reading also pauses while the client does not read its replies, and a closed
connection cancels its calls.  Over UDP, datagrams larger than
``max_datagram``, or that are no CALL, are dropped, and so are calls past
``max_in_flight`` at once (the client retransmits).

``start(register=True)`` registers every program version and transport with
rpcbind (RPCB SET over its unix socket, as libtirpc's svc_reg does; or, with
``register="pmap"``, portmap SET), and ``close()`` unregisters them.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
import os
import socket
from collections.abc import Iterable
from typing import Any, Final

from xdrgen.runtime.codec import Buffer
from xdrgen.runtime.oncrpc.core import UDP_MAX
from xdrgen.runtime.oncrpc.calls import Calls
from xdrgen.runtime.oncrpc.dispatch import AuthHook, ServerCore, Service
from xdrgen.runtime.oncrpc.errors import ProtocolError, SystemErr
from xdrgen.runtime.oncrpc.message import reply_xid
from xdrgen.runtime.oncrpc.record import DEFAULT_RECORD_MAX, RecordReader, frame

_log: Final = logging.getLogger("xdrgen.oncrpc.server")
#: Calls one connection (or the UDP socket) may have running at once, by default.
MAX_IN_FLIGHT: Final = 64


class _StreamConnection(asyncio.Protocol):
    def __init__(self, server: RpcServer, transport_name: str) -> None:
        self._server = server
        self._name = transport_name
        self._reader = RecordReader(server.max_record)
        self._calls = Calls(server.core, self._flow)
        self._transport: asyncio.Transport | None = None
        self._peer: Any = None
        self._reading = True
        self._writable = True
        #: Records read but not yet handled: at most one read's worth, while
        #: max_in_flight calls already run.
        self._backlog: collections.deque[Buffer] = collections.deque()

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._peer = transport.get_extra_info("peername")
        self._server._connections.add(self)

    def data_received(self, data: bytes) -> None:
        if self._transport is None or self._transport.is_closing():
            return
        try:
            records = self._reader.feed(data)
        except ProtocolError as exc:
            self._server.refused_connections += 1
            _log.debug("closing %s: %s", self._peer, exc)
            self.abort()
            return
        self._backlog.extend(records)
        self._flow()

    def _handle_backlog(self) -> None:
        core = self._server.core
        limit = self._server.max_in_flight
        backlog = self._backlog
        while backlog and len(self._calls.tasks) < limit:
            record = backlog.popleft()
            try:
                outcome = core.handle(record, self._peer, self._name)
            except ProtocolError as exc:
                # Not a CALL: libtirpc gives the connection up too (XPRT_DIED).
                self._server.refused_connections += 1
                _log.debug("closing %s: %s", self._peer, exc)
                backlog.clear()
                self.abort()
                return
            if isinstance(outcome, bytes):
                self._reply(outcome)
            else:
                self._calls.run(outcome, self._reply)

    def eof_received(self) -> bool | None:
        return None  # close our end too (after the replies queued so far)

    def connection_lost(self, exc: Exception | None) -> None:
        self._backlog.clear()
        self._calls.cancel()
        self._server._connections.discard(self)
        self._transport = None

    def pause_writing(self) -> None:
        self._writable = False
        self._flow()

    def resume_writing(self) -> None:
        self._writable = True
        self._flow()

    def _reply(self, data: bytes) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        transport.write(frame(data, self._server.fragment_size))

    def _flow(self) -> None:
        """Handle what was read while fewer than max_in_flight calls run; read more once
        all of it is handled, and while the client reads its replies."""
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        if self._backlog:
            self._handle_backlog()
            if self._transport is None or transport.is_closing():
                return
        want = self._writable and not self._backlog and len(self._calls.tasks) < self._server.max_in_flight
        if want != self._reading:
            self._reading = want
            if want:
                transport.resume_reading()
            else:
                transport.pause_reading()

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()


class _DatagramEndpoint:
    """The UDP socket: read directly, every datagram waiting at each wake-up (asyncio's
    datagram transport reads one per loop iteration)."""

    #: Most datagrams read per wake-up (then the loop gets a turn).
    READ_BATCH = 256

    def __init__(self, server: RpcServer, sock: socket.socket) -> None:
        self._server = server
        self._calls = Calls(server.core)
        sock.setblocking(False)
        self._sock: socket.socket | None = sock
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(sock.fileno(), self._readable)
        #: Datagrams dropped: too large, not a CALL, or too many calls at once.
        self.dropped = 0

    @property
    def port(self) -> int:
        assert self._sock is not None
        return int(self._sock.getsockname()[1])

    def _readable(self) -> None:
        server = self._server
        limit = server.max_datagram + 1  # one more byte shows a datagram that is too large
        for _ in range(self.READ_BATCH):
            sock = self._sock
            if sock is None:
                return
            try:
                data, addr = sock.recvfrom(limit)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue  # an ICMP error about an earlier reply: nothing to do
            if len(data) > server.max_datagram:
                self.dropped += 1
                continue
            try:
                outcome = server.core.handle(data, addr, "udp")
            except ProtocolError:
                self.dropped += 1
                continue
            if isinstance(outcome, bytes):
                self._send(outcome, addr)
            elif len(self._calls.tasks) >= server.max_in_flight:
                self.dropped += 1  # the client will retransmit
            else:
                self._calls.run(outcome, functools.partial(self._send_to, addr))

    def _send_to(self, addr: Any, data: bytes) -> None:
        self._send(data, addr)

    def _send(self, data: bytes, addr: Any) -> None:
        sock = self._sock
        if sock is None:
            return
        if len(data) > self._server.max_datagram:
            # A reply that cannot travel: say SYSTEM_ERR rather than stay silent.
            xid = reply_xid(data)
            assert xid is not None
            data = ServerCore.failure(xid, SystemErr())
        try:
            sock.sendto(data, addr)
        except OSError:
            pass  # a full socket buffer or an unreachable client: as if the reply were lost

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            self._loop.remove_reader(sock.fileno())
            sock.close()
        self._calls.cancel()


class RpcServer:
    """Serves ``services`` (see the module docstring)."""

    def __init__(
        self,
        services: Iterable[Service],
        *,
        auth_hook: AuthHook | None = None,
        max_record: int = DEFAULT_RECORD_MAX,
        max_datagram: int = UDP_MAX,
        max_in_flight: int = MAX_IN_FLIGHT,
        fragment_size: int = 0,
    ) -> None:
        self.core = ServerCore(services, auth_hook)
        #: Send stream replies in fragments of at most this many bytes (0: one fragment).
        self.fragment_size = fragment_size
        self.max_record = max_record
        self.max_datagram = max_datagram
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be >= 1")
        self.max_in_flight = max_in_flight
        self._listeners: list[asyncio.AbstractServer] = []
        self._udp: _DatagramEndpoint | None = None
        self._connections: set[_StreamConnection] = set()
        self._registered: list[Any] = []
        self._unix_path: str | None = None
        self.host = ""
        self.tcp_port: int | None = None
        self.udp_port: int | None = None
        #: Connections closed because they broke the protocol.
        self.refused_connections = 0

    @property
    def services(self) -> list[Service]:
        return self.core.services

    @property
    def connections(self) -> int:
        """Stream connections open now."""
        return len(self._connections)

    @property
    def udp_dropped(self) -> int:
        return self._udp.dropped if self._udp is not None else 0

    async def start(
        self,
        host: str = "127.0.0.1",
        *,
        tcp_port: int | None = 0,
        udp_port: int | None = 0,
        unix_path: str | None = None,
        register: bool | str = False,
        backlog: int = 128,
    ) -> RpcServer:
        """Listen (port 0: any free port; None: not on that transport) and, when asked, register."""
        loop = asyncio.get_running_loop()
        self.host = host
        if tcp_port is not None:
            listener = await loop.create_server(
                lambda: _StreamConnection(self, "tcp"), host, tcp_port, backlog=backlog, reuse_address=True
            )
            self._listeners.append(listener)
            sock = listener.sockets[0]
            self.tcp_port = sock.getsockname()[1]
        if udp_port is not None:
            infos = await loop.getaddrinfo(host, udp_port, type=socket.SOCK_DGRAM, flags=socket.AI_PASSIVE)
            family, _, _, _, address = infos[0]
            sock = socket.socket(family, socket.SOCK_DGRAM)
            try:
                sock.bind(address)
            except BaseException:
                sock.close()
                raise
            self._udp = _DatagramEndpoint(self, sock)
            self.udp_port = self._udp.port
        if unix_path is not None:
            listener = await loop.create_unix_server(lambda: _StreamConnection(self, "unix"), unix_path, backlog=backlog)
            self._listeners.append(listener)
            self._unix_path = unix_path
        if register:
            from xdrgen.runtime.oncrpc import rpcbind

            method = "pmap" if register == "pmap" else "rpcb"
            try:
                self._registered = await rpcbind.register_async(self, method=method)
            except BaseException:
                await self.close()
                raise
        return self

    async def close(self) -> None:
        """Unregister (when registered), stop listening, close every connection."""
        if self._registered:
            from xdrgen.runtime.oncrpc import rpcbind

            registered, self._registered = self._registered, []
            try:
                await rpcbind.unregister_async(registered)
            except Exception as exc:  # rpcbind gone: nothing left to undo
                _log.warning("could not unregister from rpcbind: %r", exc)
        for listener in self._listeners:
            listener.close()
        for conn in list(self._connections):
            conn.abort()
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        for listener in self._listeners:
            await listener.wait_closed()
        self._listeners = []
        if self._unix_path is not None:
            try:
                os.unlink(self._unix_path)
            except OSError:
                pass
            self._unix_path = None
        await asyncio.sleep(0)  # let connection_lost callbacks run

    async def serve_forever(self) -> None:
        await asyncio.Event().wait()

    async def __aenter__(self) -> RpcServer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


__all__ = ["RpcServer", "Service", "MAX_IN_FLIGHT"]
