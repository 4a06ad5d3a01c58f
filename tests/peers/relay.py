"""A unix-socket relay that records what a client sends to a real daemon (wire capture).

``RecordingRelay(daemon_path)`` listens on a fresh path in a temporary
directory, accepts one client, connects it to the daemon and copies bytes both
ways from one thread; ``sent`` holds everything the client wrote.
"""

from __future__ import annotations

import os
import select
import shutil
import socket
import tempfile
import threading
from types import TracebackType


class RecordingRelay:
    def __init__(self, daemon_path: str) -> None:
        self._dir = tempfile.mkdtemp(prefix="xdrgen-relay-")
        self.path = os.path.join(self._dir, "relay.sock")
        self.daemon_path = daemon_path
        self.sent = bytearray()
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(self.path)
        self._listener.listen(1)
        self._stop_r, self._stop_w = os.pipe()
        self._thread = threading.Thread(target=self._run, name="relay", daemon=True)
        self._lock = threading.Lock()
        self._thread.start()

    def snapshot(self) -> bytes:
        with self._lock:
            return bytes(self.sent)

    def _run(self) -> None:
        ready_fds, _, _ = select.select([self._listener.fileno(), self._stop_r], [], [])
        if self._stop_r in ready_fds:
            return
        client, _ = self._listener.accept()
        upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            upstream.connect(self.daemon_path)
            peers = {client.fileno(): (client, upstream), upstream.fileno(): (upstream, client)}
            while True:
                ready, _, _ = select.select([*peers, self._stop_r], [], [])
                if self._stop_r in ready:
                    return
                for fd in ready:
                    sock, other = peers[fd]
                    data = sock.recv(1 << 16)
                    if not data:
                        return
                    if sock is client:
                        with self._lock:
                            self.sent += data
                    other.sendall(data)
        except OSError:
            return
        finally:
            client.close()
            upstream.close()

    def close(self) -> None:
        os.write(self._stop_w, b"x")
        self._thread.join(10)
        self._listener.close()
        os.close(self._stop_r)
        os.close(self._stop_w)
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> RecordingRelay:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
