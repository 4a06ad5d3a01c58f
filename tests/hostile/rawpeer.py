"""A raw socket client: sends any bytes (and fds) and classifies what the peer did.

Outcomes, in the words of the hostile suite's tables:

- ``reply``: the peer answered the hostile CALL (``Observation.replies``);
- ``ignore``: nothing came back and the connection still works;
- ``close``: the peer closed (EOF or reset).

``probe`` follows hostile bytes with a harmless call and reads until its
answer: whatever the peer said about the hostile bytes came before it, or
shortly after (libvirtd answers calls from worker threads, so a short quiet
period follows).
"""

from __future__ import annotations

import array
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from hostile import wire

#: Serial of the probe call, never used by the hostile frames.
PROBE_SERIAL: Final = 0x7E57
#: How long the peer may stay quiet before "nothing more is coming".
QUIET: Final = 0.3
#: Bound on waiting for any single answer.
WAIT: Final = 20.0


@dataclass
class Observation:
    frames: list[wire.Frame] = field(default_factory=list)
    closed: bool = False
    probe_answered: bool = False

    def outcome(self) -> str:
        if self.closed and not self.probe_answered:
            return "close"
        if [f for f in self.frames if f.serial != PROBE_SERIAL and f.type == wire.REPLY]:
            return "reply"
        return "ignore"

    def replies(self, serial: int) -> list[wire.Frame]:
        return [f for f in self.frames if f.serial == serial and f.type == wire.REPLY]

    def error(self, serial: int) -> wire.RawError:
        (reply,) = self.replies(serial)
        assert reply.status == wire.ERROR, reply
        return wire.parse_error(reply.payload)


class RawPeer:
    """One unix-socket connection to a libvirt-protocol server."""

    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)  # blocking: waits for room in a full backlog (a timeout would fail at once)
        self.sock.settimeout(WAIT)
        self.pending = b""
        self.closed = False

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawPeer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send_fd(self, fd: int, byte: bytes = b"\0") -> None:
        """One carrier byte with ``fd`` attached (SCM_RIGHTS), as libvirt sends fds."""
        self.sock.sendmsg([byte], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))])

    def _recv(self, timeout: float) -> bytes | None:
        """Bytes, b"" on EOF/reset, None when nothing came within ``timeout``."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(1 << 20)
        except (TimeoutError, socket.timeout):
            return None
        except (ConnectionResetError, BrokenPipeError):
            data = b""
        if not data:
            self.closed = True
        return data

    def read_until(self, done: Callable[[list[wire.Frame]], bool], timeout: float = WAIT, quiet: float = 0.0) -> Observation:
        """Frames until ``done(frames)`` (then ``quiet`` seconds more), EOF or ``timeout``."""
        obs = Observation()
        deadline = time.monotonic() + timeout
        quiet_until: float | None = None
        while True:
            now = time.monotonic()
            if quiet_until is None and done(obs.frames):
                if quiet <= 0:
                    break
                quiet_until = now + quiet
            limit = quiet_until if quiet_until is not None else deadline
            if now >= limit:
                break
            data = self._recv(limit - now)
            if data is None:
                continue
            if not data:
                obs.closed = True
                break
            frames, self.pending = wire.split_frames(self.pending + data)
            obs.frames.extend(frames)
        obs.probe_answered = any(f.serial == PROBE_SERIAL for f in obs.frames)
        return obs

    def call(self, proc: int, payload: bytes = b"", serial: int = 1, **kw: int) -> wire.Frame:
        """Send a CALL and return its REPLY (asserting it came)."""
        self.send(wire.frame(proc, payload, serial=serial, **kw))
        obs = self.read_until(lambda fs: any(f.serial == serial and f.type == wire.REPLY for f in fs))
        replies = obs.replies(serial)
        assert replies, f"no reply to serial {serial}: closed={obs.closed} frames={obs.frames}"
        return replies[0]

    def probe(self, probe_frame: bytes, quiet: float = QUIET) -> Observation:
        """Send ``probe_frame`` (serial PROBE_SERIAL) and read until it is answered or the peer closes."""
        try:
            self.send(probe_frame)
        except (BrokenPipeError, ConnectionResetError):
            obs = Observation(closed=True)
            return obs
        return self.read_until(lambda fs: any(f.serial == PROBE_SERIAL for f in fs), quiet=quiet)

    def silent_for(self, seconds: float) -> bool:
        """True when nothing arrived for ``seconds`` and the connection is still open."""
        data = self._recv(seconds)
        if data:
            self.pending += data
        return data is None
