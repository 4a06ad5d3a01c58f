"""Run Debian's real guestfsd for tests, jailed in a private mount namespace.

guestfsd expects an appliance: it works under /sysroot and wants
/dev/disk/by-path.  The launcher (run by ``unshare --mount --propagation
private``, so every mount dies with the daemon and none reaches the host)
builds a fresh root on a tmpfs over a temp dir: read-only bind mounts of
/usr and /etc, a tmpfs /sysroot, a tmpfs /dev with the six character devices
and an empty disk/by-path, and the socket directory bound in from the host;
then it chroots there and execs guestfsd.  Every step is an exec, so the pid
we hold is guestfsd's own; it serves one client and we stop it by that pid.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

GUESTFSD = "/usr/sbin/guestfsd"
START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0

# $1: the new root (an empty host dir), $2: host dir for the socket, $3: /sysroot size.
_LAUNCHER = r"""
set -eu
root="$1"; chan="$2"; sysroot_size="$3"
mount -t tmpfs -o size=1m,mode=755 xdrgen-guestfsd-root "$root"
cd "$root"
mkdir usr etc proc tmp run var sysroot dev chan
for link in bin sbin lib lib32 lib64 libx32; do
    if [ -L "/$link" ]; then
        ln -s "$(readlink "/$link")" "$link"
    elif [ -d "/$link" ]; then
        mkdir "$link"; mount --bind "/$link" "$link"; mount -o remount,bind,ro "$link"
    fi
done
for dir in usr etc; do mount --bind "/$dir" "$dir"; mount -o remount,bind,ro "$dir"; done
mount -t proc proc proc
for dir in tmp run var; do mount -t tmpfs -o size=16m tmpfs "$dir"; done
mount -t tmpfs -o "size=$sysroot_size" xdrgen-guestfsd-sysroot sysroot
mount -t tmpfs -o size=64k,mode=755 xdrgen-guestfsd-dev dev
mknod -m 666 dev/null c 1 3
mknod -m 666 dev/zero c 1 5
mknod -m 666 dev/full c 1 7
mknod -m 666 dev/random c 1 8
mknod -m 666 dev/urandom c 1 9
mknod -m 666 dev/tty c 5 0
mkdir -p dev/disk/by-path
mount --bind "$chan" chan
exec chroot "$root" /usr/sbin/guestfsd --listen --channel /chan/guestfsd.sock
"""


class PeerUnavailable(Exception):
    pass


def require_guestfsd_environment() -> None:
    """Skip (or fail under XDRGEN_REQUIRE_PEERS=1) when guestfsd cannot run here."""
    reason = None
    if not os.path.exists(GUESTFSD):
        reason = f"{GUESTFSD} not installed (Debian package guestfsd)"
    elif os.geteuid() != 0:
        reason = "needs root to run guestfsd in a private mount namespace"
    elif shutil.which("unshare") is None or shutil.which("chroot") is None:
        reason = "unshare/chroot not found (util-linux, coreutils)"
    if reason is None:
        return
    if os.environ.get("XDRGEN_REQUIRE_PEERS") == "1":
        pytest.fail(reason + " and XDRGEN_REQUIRE_PEERS=1")
    pytest.skip(reason)


@dataclass
class GuestfsDaemon:
    """A running guestfsd: its socket and how to stop it."""

    workdir: Path
    socket_path: str
    process: subprocess.Popen[bytes]

    def diagnostics(self) -> str:
        log = self.workdir / "stderr"
        return log.read_text(errors="replace")[-4000:] if log.exists() else ""

    def stop(self) -> None:
        proc = self.process
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(self.workdir, ignore_errors=True)


def start_guestfsd(sysroot_size: str = "64m") -> GuestfsDaemon:
    """Start a jailed guestfsd whose /sysroot is a tmpfs of ``sysroot_size`` (tmpfs syntax)."""
    workdir = Path(tempfile.mkdtemp(prefix="xdrgen-guestfsd-"))
    root = workdir / "root"
    chan = workdir / "chan"
    root.mkdir()
    chan.mkdir()
    with open(workdir / "stderr", "wb") as log:
        process = subprocess.Popen(
            [
                "unshare", "--mount", "--propagation", "private", "sh", "-c", _LAUNCHER, "guestfsd-launcher",
                str(root), str(chan), sysroot_size,
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    daemon = GuestfsDaemon(workdir, str(chan / "guestfsd.sock"), process)
    deadline = time.monotonic() + START_TIMEOUT
    while not os.path.exists(daemon.socket_path):
        if process.poll() is not None or time.monotonic() > deadline:
            text = daemon.diagnostics()
            daemon.stop()
            raise PeerUnavailable(f"guestfsd did not create its socket (exit {process.returncode}):\n{text}")
        time.sleep(0.02)
    return daemon


@contextmanager
def running_guestfsd(sysroot_size: str = "64m") -> Iterator[GuestfsDaemon]:
    """A fresh guestfsd for a test (skips, or fails under XDRGEN_REQUIRE_PEERS=1, without root)."""
    require_guestfsd_environment()
    try:
        daemon = start_guestfsd(sysroot_size)
    except PeerUnavailable as exc:
        pytest.fail(str(exc))
    try:
        yield daemon
    finally:
        daemon.stop()


@pytest.fixture
def guestfsd() -> Iterator[GuestfsDaemon]:
    """A fresh guestfsd (it serves one client) with an empty tmpfs /sysroot."""
    with running_guestfsd() as daemon:
        yield daemon


@pytest.fixture
def big_guestfsd() -> Iterator[GuestfsDaemon]:
    """A fresh guestfsd whose /sysroot holds a few 64 MiB files."""
    with running_guestfsd("400m") as daemon:
        yield daemon
