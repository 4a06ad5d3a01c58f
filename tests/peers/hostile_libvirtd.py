"""A libvirt server that misbehaves on purpose, for hostile-peer tests of the clients.

Raw sockets and struct only, no xdrgen runtime: what it sends is exactly the
bytes a test asks for.  It answers the connect sequence of libvirt's remote
driver properly (auth list, supports_feature, open, close, get_version,
get_lib_version), so libvirt's own client (libvirt-python, see
libvirt_python_probe.py) can be pointed at it as well as ours, and hands every
CALL to the test's script first.  Procedure numbers are facts of
remote_protocol.x; they are written out here as numbers.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import struct
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

REMOTE_PROGRAM = 0x20008086
PREFIX = struct.Struct(">IIIiiII")  # length, prog, vers, proc, type, serial, status
CALL, REPLY, MESSAGE, STREAM, CALL_WITH_FDS, REPLY_WITH_FDS, STREAM_HOLE = range(7)
OK, ERROR, CONTINUE = range(3)

PROC_CONNECT_OPEN = 1
PROC_CONNECT_CLOSE = 2
PROC_CONNECT_GET_VERSION = 4
PROC_DOMAIN_LOOKUP_BY_NAME = 23
PROC_CONNECT_GET_HOSTNAME = 59
PROC_CONNECT_SUPPORTS_FEATURE = 60
PROC_AUTH_LIST = 66
PROC_CONNECT_GET_LIB_VERSION = 157
PROC_DOMAIN_SCREENSHOT = 211
PROC_CONNECT_LIST_ALL_DOMAINS = 273
PROC_DOMAIN_EVENT_CALLBACK_LIFECYCLE = 318

#: The version numbers the default answers give.
HV_VERSION = 2
LIB_VERSION = 9_000_000
DEFAULT_ANSWERS: dict[int, bytes] = {
    PROC_AUTH_LIST: struct.pack(">II", 1, 0),  # [REMOTE_AUTH_NONE]
    PROC_CONNECT_SUPPORTS_FEATURE: struct.pack(">i", 0),  # no optional feature (no keepalive)
    PROC_CONNECT_OPEN: b"",
    PROC_CONNECT_CLOSE: b"",
    PROC_CONNECT_GET_VERSION: struct.pack(">q", HV_VERSION),
    PROC_CONNECT_GET_LIB_VERSION: struct.pack(">q", LIB_VERSION),
}


def xdr_bytes(raw: bytes) -> bytes:
    """An XDR string / variable opaque holding exactly these bytes (UTF-8 or not)."""
    return struct.pack(">I", len(raw)) + raw + b"\0" * (-len(raw) % 4)


def remote_error(code: int, domain: int, message: bytes | None, str1: bytes | None = None, level: int = 2) -> bytes:
    """A remote_error with the given raw message bytes (no dom, no net)."""

    def opt(raw: bytes | None) -> bytes:
        return struct.pack(">I", 0) if raw is None else struct.pack(">I", 1) + xdr_bytes(raw)

    return (struct.pack(">ii", code, domain) + opt(message) + struct.pack(">iI", level, 0) + opt(str1)
            + opt(None) + opt(None) + struct.pack(">iiI", 0, 0, 0))


def frame(proc: int, mtype: int, serial: int, status: int, payload: bytes = b"", *, prog: int = REMOTE_PROGRAM,
          vers: int = 1, length: int | None = None) -> bytes:
    """One frame; ``length`` overrides the length word (to lie about it)."""
    real = PREFIX.size + len(payload)
    return PREFIX.pack(real if length is None else length, prog, vers, proc, mtype, serial, status) + payload


@dataclass(frozen=True)
class Call:
    prog: int
    vers: int
    proc: int
    type: int
    serial: int
    status: int
    payload: bytes


class Peer:
    """One accepted connection, driven by the script."""

    def __init__(self, sock: socket.socket, server: HostileLibvirtd) -> None:
        self.sock = sock
        self.server = server
        self.closed = False

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def reply(self, call: Call, payload: bytes = b"", *, status: int = OK, proc: int | None = None,
              serial: int | None = None, mtype: int = REPLY) -> None:
        self.send(frame(call.proc if proc is None else proc, mtype, call.serial if serial is None else serial,
                        status, payload))

    def error(self, call: Call, payload: bytes) -> None:
        self.reply(call, payload, status=ERROR)

    def stream(self, call: Call, status: int, payload: bytes = b"", *, mtype: int = STREAM) -> None:
        self.send(frame(call.proc, mtype, call.serial, status, payload))

    def send_fds(self, fds: list[int]) -> None:
        """One carrier byte per fd, each with its fd attached (as libvirt sends them)."""
        for fd in fds:
            socket.send_fds(self.sock, [b"\0"], [fd])

    def close(self) -> None:
        self.closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def read_call(self) -> Call | None:
        head = self._read(PREFIX.size)
        if head is None:
            return None
        length, prog, vers, proc, mtype, serial, status = PREFIX.unpack(head)
        body = self._read(length - PREFIX.size) if length > PREFIX.size else b""
        if body is None:
            return None
        return Call(prog, vers, proc, mtype, serial, status, body)

    def _read(self, n: int) -> bytes | None:
        chunks = bytearray()
        while len(chunks) < n:
            try:
                got = self.sock.recv(n - len(chunks))
            except OSError:
                return None
            if not got:
                return None
            chunks += got
        return bytes(chunks)


#: A script sees every message first (calls, stream packets); it returns True when it
#: dealt with it.  CALLs it leaves get the default answers.
Script = Callable[[Peer, Call], bool]


class HostileLibvirtd:
    """A unix-socket server in a temporary directory; each connection runs in its own thread."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.root = tempfile.mkdtemp(prefix="xh")
        self.path = os.path.join(self.root, "sock")
        self.calls: list[Call] = []
        self.failures: list[BaseException] = []
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(self.path)
        self._listener.listen(16)
        self._threads: list[threading.Thread] = []
        self._peers: list[Peer] = []
        self._stopping = False
        self._accepter = threading.Thread(target=self._accept, name="hostile-accept", daemon=True)
        self._accepter.start()

    def _accept(self) -> None:
        while not self._stopping:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            peer = Peer(sock, self)
            self._peers.append(peer)
            t = threading.Thread(target=self._serve, args=(peer,), name="hostile-peer", daemon=True)
            self._threads.append(t)
            t.start()

    def _serve(self, peer: Peer) -> None:
        try:
            while not peer.closed:
                call = peer.read_call()
                if call is None:
                    return
                self.calls.append(call)
                if self.script(peer, call) or peer.closed or call.type not in (CALL, CALL_WITH_FDS):
                    continue  # the script answered, or it is stream traffic the script let pass
                answer = DEFAULT_ANSWERS.get(call.proc)
                if answer is not None:
                    peer.reply(call, answer)
                else:  # what libvirtd says for a function its driver lacks (VIR_ERR_NO_SUPPORT)
                    peer.error(call, remote_error(3, 10, b"this function is not supported by the connection driver"))
        except OSError:
            pass  # the client went away: that is its right
        except BaseException as exc:  # a script bug: reported by the test, not lost in a thread
            self.failures.append(exc)
        finally:
            peer.sock.close()

    def stop(self) -> None:
        self._stopping = True
        try:
            self._listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._listener.close()
        for peer in list(self._peers):
            peer.close()
        for t in self._threads:
            t.join(5)
        self._accepter.join(5)
        shutil.rmtree(self.root, ignore_errors=True)
        if self.failures:
            raise AssertionError(f"hostile server script failed: {self.failures[0]!r}") from self.failures[0]

    def __enter__(self) -> HostileLibvirtd:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


#: rpc_timeout for calls whose answer a hostile peer may withhold.
WAIT = 5.0


@contextlib.contextmanager
def bystander(rp: Any, path: str) -> Iterator[None]:
    """A second connection to the server (generated sync client ``rp``), open throughout:
    it must still work afterwards."""
    with rp.RemoteClient.connect_unix(path) as c:
        assert c.connect_get_lib_version(rpc_timeout=WAIT).lib_ver == LIB_VERSION
        yield
        assert c.connect_get_lib_version(rpc_timeout=WAIT).lib_ver == LIB_VERSION


def alive(client: Any) -> bool:
    """Does the generated sync ``client`` still get answers (a default-answered call)?"""
    from xdrgen.runtime.virnet.errors import VirNetError

    try:
        return bool(client.connect_get_lib_version(rpc_timeout=WAIT).lib_ver == LIB_VERSION)
    except VirNetError:
        return False


async def alive_async(client: Any) -> bool:
    """The same for the generated asyncio client."""
    from xdrgen.runtime.virnet.errors import VirNetError

    try:
        return bool((await client.connect_get_lib_version(rpc_timeout=WAIT)).lib_ver == LIB_VERSION)
    except VirNetError:
        return False
