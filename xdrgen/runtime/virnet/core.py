"""The sans-IO protocol core: bytes in, events out; frames out for calls, replies, streams.

No sockets, no threads, no clocks: transports feed received bytes in
(``receive_data`` or ``get_buffer``/``buffer_updated``), act on the returned
events, and write what ``data_to_send`` hands them.  The same class serves the
client role (calls, replies, events) and the server role (incoming calls,
replies, events, stream data), selected with ``server=True``.

Output is a list of buffers for gathered writes (``socket.sendmsg`` /
``transport.writelines``): stream data is queued as the 28-byte prefix plus a
slice of the caller's buffer, never copied.  An :class:`FdCarrier` in the list
means "send one zero byte carrying this fd with SCM_RIGHTS" (libvirt sends the
fds of a *_WITH_FDS message that way, one by one, after the message).

In the server role the core answers what libvirtd's RPC layer answers itself
(see ``core_server.py``): a CALL to an unknown program or with a bad status
gets libvirtd's error reply, and messages a server never expects (REPLY,
MESSAGE, unknown types, stream packets of no open stream, malformed
keepalives) are dropped; only broken framing ends the connection.
Received file descriptors the protocol has no use for are closed here.

The class is put together from one module per role: core_state.py (state,
output, fd frames), core_client.py, core_server.py, core_streams.py; this
module parses the input and hands each frame to its role.
"""

from __future__ import annotations

from collections.abc import Iterable

from xdrgen.runtime.virnet import events as ev
from xdrgen.runtime.virnet.core_client import ClientRole
from xdrgen.runtime.virnet.core_server import ServerRole
from xdrgen.runtime.virnet.core_state import Buffer, FdCarrier, OutBuffer, StreamDirection, close_fds
from xdrgen.runtime.virnet.core_streams import StreamCalls
from xdrgen.runtime.virnet.errors import CallCancelled, ProtocolError
from xdrgen.runtime.virnet.framing import Header


class VirNetCore(ClientRole, ServerRole, StreamCalls):
    """One connection's protocol state; see the module docstring."""

    def get_buffer(self, sizehint: int = -1) -> memoryview:
        """Free space to receive into (``recv_into`` / BufferedProtocol); then ``buffer_updated``."""
        return self._buffer.get_buffer(sizehint)

    def buffer_updated(self, nbytes: int) -> list[ev.Event]:
        """``nbytes`` arrived in the buffer from ``get_buffer`` (their fds, if any, already handed in)."""
        self._buffer.buffer_updated(nbytes)
        return self._parse_read()

    def trim_buffer(self) -> None:
        """Give receive storage back while nothing is buffered (an idle connection)."""
        self._buffer.trim()

    @property
    def receive_capacity(self) -> int:
        """Bytes of receive storage held."""
        return self._buffer.capacity

    def receive_data(self, data: Buffer) -> list[ev.Event]:
        """Feed received bytes (copied once into the buffer); returns the events.

        Raises ProtocolError when the peer broke the protocol; the core is then
        failed and the transport must close the connection.
        """
        self._buffer.feed(memoryview(data))
        return self._parse_read()

    def fds_received(self, fds: Iterable[int]) -> list[ev.Event]:
        """File descriptors that arrived with SCM_RIGHTS, in order: hand them in
        before the bytes of the same read (``buffer_updated``)."""
        self._fds.extend(fds)
        return self._parse()

    def _parse_read(self) -> list[ev.Event]:
        """Parse after a read; fds that came with it and no message waits for are closed."""
        try:
            return self._parse()
        finally:
            if self.receives_fds and self._fds:
                self._close_stray_fds()

    def _close_stray_fds(self) -> None:
        """After a read: fds no *_WITH_FDS message is waiting for are closed.

        The kernel ends a read after the bytes that carried fds, so fds left
        over here came with bytes that were not carrier bytes; libvirtd reads
        such bytes without their fds (the kernel then closes them).
        """
        keep = self._fd_frame[3] if self._fd_frame is not None and self._failed is None else 0
        if len(self._fds) > keep:
            extra = self._fds[keep:]
            del self._fds[keep:]
            close_fds(extra)

    def _parse(self) -> list[ev.Event]:
        out: list[ev.Event] = []
        if self._failed is not None:
            return out
        # The role is chosen once per read, not per frame.
        dispatch = self._dispatch_server if self.server else self._dispatch_client
        try:
            while True:
                if self._fd_frame is not None and not self._complete_fd_frame(out):
                    break
                frame = self._buffer.next_frame()
                if frame is None:
                    break
                if self._keepalive is not None:
                    self._keepalive.activity = True
                header, payload, offset = frame
                dispatch(header, payload, offset, out)
        except ProtocolError as exc:
            self._fail_state(exc)
            raise
        return out

    def _fd_message(self, h: Header, payload: memoryview, offset: int, out: list[ev.Event], fds: list[int]) -> None:
        if self.server:
            self._incoming_call(h, payload, out, fds)
        else:
            self._dispatch_reply(h, payload, offset, out, fds)


__all__ = ["VirNetCore", "StreamDirection", "FdCarrier", "OutBuffer", "Buffer", "CallCancelled", "close_fds"]
