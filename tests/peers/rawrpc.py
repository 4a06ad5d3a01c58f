"""A raw ONC RPC peer for hostile-client tests: plain sockets, bytes chosen by the test."""

from __future__ import annotations

import socket
import struct
import time

from xdrgen.runtime.oncrpc import message as m
from xdrgen.runtime.oncrpc.record import RecordReader, frame

PROGRAM = 0x20005EED


def call_bytes(xid: int, proc: int, args: bytes = b"", *, vers: int = 2, prog: int = PROGRAM) -> bytes:
    """One CALL message (AUTH_NONE), unframed."""
    return m.encode_call(xid, prog, vers, proc, m.NONE_AUTH_BYTES * 2) + args


def add_call(xid: int, a: int, b: int, vers: int = 2) -> bytes:
    args = struct.pack(">qq", a, b) if vers == 2 else struct.pack(">ii", a, b)
    return call_bytes(xid, 1, args, vers=vers)


class RawStream:
    """A TCP connection the test writes raw bytes to, reading back records."""

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.sock = socket.create_connection((host, port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = RecordReader()
        self.pending: list[bytes] = []

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send_call(self, message: bytes, fragment_size: int = 0) -> None:
        self.send(frame(message, fragment_size))

    def records(self, count: int, timeout: float = 10.0) -> list[bytes]:
        """The next ``count`` records (AssertionError if they do not come in time)."""
        deadline = time.monotonic() + timeout
        while len(self.pending) < count:
            left = deadline - time.monotonic()
            assert left > 0, f"only {len(self.pending)} of {count} replies within {timeout} s"
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(1 << 16)
            except socket.timeout:
                continue
            assert chunk, f"connection closed after {len(self.pending)} of {count} replies"
            self.pending.extend(bytes(r) for r in self.reader.feed(chunk))
        out, self.pending = self.pending[:count], self.pending[count:]
        return out

    def closed_by_peer(self, timeout: float = 5.0) -> bool:
        """True when the server closes (or resets) the connection within ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(deadline - time.monotonic(), 0.01))
            try:
                chunk = self.sock.recv(1 << 16)
            except socket.timeout:
                return False
            except ConnectionResetError:
                return True
            if not chunk:
                return True
        return False

    def close(self, reset: bool = False) -> None:
        if reset:  # RST instead of FIN
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()


def reply_outcome(reply: bytes) -> tuple[int, str]:
    """(xid, "SUCCESS" / the exception class name) of one reply."""
    from xdrgen.runtime.oncrpc.errors import CallRejected

    xid = struct.unpack_from(">I", reply)[0]
    try:
        m.parse_reply(reply, PROGRAM, 0, 0)
    except CallRejected as exc:
        return xid, type(exc).__name__
    return xid, "SUCCESS"
