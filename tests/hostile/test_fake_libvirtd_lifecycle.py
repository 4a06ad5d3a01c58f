"""examples/fake_libvirtd.py: SIGTERM removes its socket; restarts never race on the path.

The socket file is replaced atomically when stale (a daemon that was killed),
refused when a live daemon listens on it, and removed at shutdown only if it
is still this daemon's (a successor may already have put its own there).
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from conftest import require_shared
from hostile import wire
from hostile.rawpeer import RawPeer
from hostile.servers import FAKE, REPO_ROOT, FakeDaemon
from xdrgen.runtime.virnet import events as ev
from xdrgen.runtime.virnet.server import ServerConnection, serve_unix

STOP_WAIT = 20.0


def served(path: str) -> bool:
    """True when a server at ``path`` answers a keepalive PING (a PONG comes back)."""
    try:
        with RawPeer(path) as peer:
            peer.send(wire.frame(1, prog=wire.KEEPALIVE_PROGRAM, mtype=wire.MESSAGE, serial=0))
            obs = peer.read_until(lambda fs: any(f.prog == wire.KEEPALIVE_PROGRAM and f.proc == 2 for f in fs), timeout=10)
            return any(f.proc == 2 for f in obs.frames)
    except OSError:
        return False


def test_sigterm_removes_the_socket() -> None:
    require_shared("libvirt/remote_protocol.x")
    daemon = FakeDaemon()
    try:
        assert served(daemon.socket_path)
        with RawPeer(daemon.socket_path) as connected:  # a client still connected at shutdown
            daemon.process.send_signal(signal.SIGTERM)
            assert daemon.process.wait(STOP_WAIT) == 0
            assert connected.read_until(lambda fs: False, timeout=5).closed
        assert not os.path.exists(daemon.socket_path)
        assert "Traceback" not in daemon.new_stderr()
    finally:
        daemon.stop()
        daemon.cleanup()


def test_restart_while_the_old_daemon_shuts_down() -> None:
    """SIGTERM to the old daemon and start the new one at once, many times: the new one always serves."""
    require_shared("libvirt/remote_protocol.x")
    root = Path(tempfile.mkdtemp(prefix="xr", dir="/tmp"))
    path = str(root / "sock")
    old = FakeDaemon(socket_path=path)
    try:
        for _ in range(3):
            old.process.send_signal(signal.SIGTERM)
            new = FakeDaemon(socket_path=path, may_fail=True)
            if new.process.poll() is not None:
                # It came up while the old one still listened: refused cleanly, then started again.
                assert new.process.returncode == 1 and "already listening" in new.new_stderr()
                new.cleanup()
                assert old.process.wait(STOP_WAIT) == 0
                new = FakeDaemon(socket_path=path)
            assert old.process.wait(STOP_WAIT) == 0
            assert "Traceback" not in old.new_stderr()
            # The old daemon's shutdown left the new daemon's socket alone.
            assert served(path), "the new daemon's socket was removed or never served"
            old = new
    finally:
        old.stop()
        old.cleanup()
        assert not os.path.exists(path)
        os.rmdir(root)


def test_second_daemon_on_a_live_socket_is_refused() -> None:
    require_shared("libvirt/remote_protocol.x")
    first = FakeDaemon()
    try:
        second = subprocess.run([sys.executable, str(FAKE), "--socket", first.socket_path], capture_output=True,
                                text=True, timeout=120, cwd=str(REPO_ROOT), env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
        assert second.returncode == 1
        assert "already listening" in second.stderr and "Traceback" not in second.stderr
        assert served(first.socket_path)
    finally:
        assert first.stop() == 0
        first.cleanup()


def test_stale_socket_is_replaced_and_other_files_are_not() -> None:
    require_shared("libvirt/remote_protocol.x")
    root = Path(tempfile.mkdtemp(prefix="xs", dir="/tmp"))
    try:
        stale = str(root / "stale")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(stale)
        s.close()  # as a killed daemon leaves it: the file, nobody listening
        daemon = FakeDaemon(socket_path=stale)
        try:
            assert served(stale)
        finally:
            assert daemon.stop() == 0
        assert not os.path.exists(stale)
        regular = root / "regular"
        regular.write_text("not a socket")
        refused = subprocess.run([sys.executable, str(FAKE), "--socket", str(regular)], capture_output=True, text=True,
                                 timeout=120, cwd=str(REPO_ROOT), env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
        assert refused.returncode == 1 and "not a socket" in refused.stderr
        assert regular.read_text() == "not a socket"
    finally:
        for p in root.iterdir():
            p.unlink()
        root.rmdir()


def test_shutdown_leaves_a_successors_socket_alone() -> None:
    """The race itself, made certain: a successor's socket replaces ours before we close."""

    async def handler(conn: ServerConnection, call: ev.IncomingCall) -> bytes:
        return b""

    async def main(root: Path) -> None:
        path = str(root / "sock")
        old = await serve_unix(path, handler)
        successor = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        successor.bind(str(root / "next"))
        successor.listen(1)
        os.rename(root / "next", path)  # what a new daemon's start does (bind beside, rename over)
        old.close()
        await old.wait_closed()
        assert os.path.exists(path), "shutdown removed the successor's socket"
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        probe.connect(path)  # it is the successor's, listening
        probe.close()
        successor.close()
        os.unlink(path)

    root = Path(tempfile.mkdtemp(prefix="xs", dir="/tmp"))
    try:
        asyncio.run(main(root))
    finally:
        root.rmdir()
