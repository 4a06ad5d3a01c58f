"""A hostile guestfsd: a raw unix-socket server that plays a script, for the client tests.

``HostileDaemon(script)`` listens on a fresh path, accepts one connection in a
thread and runs ``script(peer)``; ``peer`` reads what the client sends and
writes whatever bytes the script wants.  The thread never lets an exception
escape: a broken pipe is the point of many scripts, anything else is kept and
re-raised by :meth:`HostileDaemon.close` in the test.

``session(gfc, mode, path, steps)`` runs the same steps through the generated
blocking (``"sync"``) or asyncio (``"aio"``) client and records each outcome,
with a hard deadline so that a hang fails the test instead of stalling it.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import struct
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from xdrgen.runtime.guestfs.constants import HEADER, LAUNCH_FLAG, PROGRAM, PROTOCOL_VERSION, WORD
from xdrgen.runtime.guestfs.errors import encode_message_error
from xdrgen.runtime.guestfs.framing import Header, decode_header

MODES = ("sync", "aio")
#: A client step that takes longer than this is a hang.
DEADLINE = 20.0


class Peer:
    """The daemon's end of one connection."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.sock.settimeout(DEADLINE)
        self.received = bytearray()

    def recv_exactly(self, size: int) -> bytes:
        data = bytearray()
        while len(data) < size:
            block = self.sock.recv(size - len(data))
            if not block:
                raise ConnectionError("client closed")
            data += block
        self.received += data
        return bytes(data)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def launch(self) -> None:
        self.send(WORD.pack(LAUNCH_FLAG))

    def read_frame(self) -> bytes:
        (length,) = WORD.unpack(self.recv_exactly(4))
        return self.recv_exactly(length)

    def read_call(self) -> tuple[Header, bytes]:
        frame = self.read_frame()
        return decode_header(frame, 0), frame[HEADER.size :]

    def read_upload(self) -> int:
        """Chunks until the empty or cancel chunk; returns the data bytes received."""
        total = 0
        while True:
            frame = self.read_frame()
            cancel, size = struct.unpack_from(">iI", frame)
            total += int(size)
            if cancel or size == 0:
                return total

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


def message(call: Header, payload: bytes = b"", *, status: int = 0, **changes: int) -> bytes:
    """A framed reply to ``call`` (fields can be overridden to make it wrong)."""
    fields = dict(
        prog=PROGRAM, vers=PROTOCOL_VERSION, proc=call.proc, direction=1, serial=call.serial,
        progress_hint=0, optargs_bitmask=0, status=status,
    )
    fields.update(changes)
    body = HEADER.pack(*fields.values()) + payload
    return WORD.pack(len(body)) + body


def error_reply(call: Header, text: bytes | str, errno: bytes | str = b"EIO") -> bytes:
    raw = text.encode() if isinstance(text, str) else text
    err = errno.encode() if isinstance(errno, str) else errno
    body = b"".join(WORD.pack(len(s)) + s + b"\0" * (-len(s) & 3) for s in (err, raw))
    return message(call, body, status=1)


def xdr_string(raw: bytes) -> bytes:
    return WORD.pack(len(raw)) + raw + b"\0" * (-len(raw) & 3)


def chunk(data: bytes, cancel: int = 0) -> bytes:
    body = struct.pack(">iI", cancel, len(data)) + data + b"\0" * (-len(data) & 3)
    return WORD.pack(len(body)) + body


Script = Callable[[Peer], None]


class HostileDaemon:
    def __init__(self, script: Script) -> None:
        self._dir = tempfile.mkdtemp(prefix="xdrgen-hostile-")
        self.path = os.path.join(self._dir, "hostile.sock")
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(self.path)
        self._listener.listen(1)
        self._listener.settimeout(DEADLINE)
        self._script = script
        self.failure: BaseException | None = None
        self.peer: Peer | None = None
        self._thread = threading.Thread(target=self._serve, name="hostile-guestfsd", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        try:
            sock, _ = self._listener.accept()
        except OSError:
            return
        self.peer = Peer(sock)
        try:
            self._script(self.peer)
        except (OSError, ConnectionError):
            pass  # the client went away: what many scripts provoke
        except BaseException as exc:  # a broken script: reported by close()
            self.failure = exc
        finally:
            self.peer.close()

    def close(self) -> None:
        self._listener.close()
        self._thread.join(DEADLINE)
        shutil.rmtree(self._dir, ignore_errors=True)
        assert not self._thread.is_alive(), "the hostile daemon's script did not finish"
        if self.failure is not None:
            raise self.failure

    def __enter__(self) -> HostileDaemon:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class Outcome:
    value: Any = None
    error: BaseException | None = None

    @property
    def kind(self) -> str:
        return type(self.error).__name__ if self.error is not None else "ok"


Step = tuple[str, tuple[Any, ...], dict[str, Any]]


def step(method: str, *args: Any, **kwargs: Any) -> Step:
    return (method, args, kwargs)


@dataclass
class Session:
    """What a client made of a hostile daemon: the connect and each step."""

    connect: Outcome
    steps: list[Outcome] = field(default_factory=list)


def session(gfc: ModuleType, mode: str, path: str, steps: list[Step], *, timeout: float = 5.0) -> Session:
    """Connect with the generated client and run ``steps``, recording each outcome."""
    if mode == "sync":
        return _sync_session(gfc, path, steps, timeout)
    return asyncio.run(asyncio.wait_for(_aio_session(gfc, path, steps, timeout), DEADLINE))


def _sync_session(gfc: ModuleType, path: str, steps: list[Step], timeout: float) -> Session:
    try:
        client = gfc.GuestfsClient.connect(path, timeout=timeout)
    except Exception as exc:
        return Session(Outcome(error=exc))
    result = Session(Outcome())
    with client:
        for method, args, kwargs in steps:
            try:
                result.steps.append(Outcome(getattr(client, method)(*args, **kwargs)))
            except Exception as exc:
                result.steps.append(Outcome(error=exc))
    return result


async def _aio_session(gfc: ModuleType, path: str, steps: list[Step], timeout: float) -> Session:
    try:
        client = await gfc.GuestfsAsyncClient.connect(path, timeout=timeout)
    except Exception as exc:
        return Session(Outcome(error=exc))
    result = Session(Outcome())
    async with client:
        for method, args, kwargs in steps:
            try:
                if method.endswith("_iter"):
                    value: Any = [bytes(b) async for b in getattr(client, method)(*args, **kwargs)]
                else:
                    value = await getattr(client, method)(*args, **kwargs)
                result.steps.append(Outcome(value))
            except Exception as exc:
                result.steps.append(Outcome(error=exc))
    return result


def play(gfc: ModuleType, mode: str, script: Script, steps: list[Step], *, timeout: float = 5.0) -> Session:
    """Run ``steps`` against a hostile daemon playing ``script``."""
    with HostileDaemon(script) as daemon:
        return session(gfc, mode, daemon.path, steps, timeout=timeout)


__all__ = [
    "MODES", "Peer", "HostileDaemon", "Outcome", "Session", "chunk", "error_reply", "message", "play",
    "session", "step", "xdr_string",
]
