"""Start and stop real libvirtd instances for tests, each in its own temp dir.

``start_libvirtd()``: root daemon, test driver only (LIBVIRT_DRIVER_DIR empty),
reached as ``test:///default``.  ``start_storage_daemon()``: libvirtd as
nobody, loading only the storage driver, with a directory pool, reached as
``storage:///session``.  Both stop by their own pid.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

LIBVIRTD = "/usr/sbin/libvirtd"
STORAGE_DRIVER = "libvirt_driver_storage.so"


def storage_driver_path() -> Path:
    """Debian's storage driver module (its directory depends on the architecture)."""
    for candidate in sorted(Path("/usr/lib").glob(f"*/libvirt/connection-driver/{STORAGE_DRIVER}")):
        return candidate
    raise PeerUnavailable(f"{STORAGE_DRIVER} not found under /usr/lib/*/libvirt/connection-driver (package libvirt-daemon)")
START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0


class PeerUnavailable(Exception):
    pass


def require_peer_environment() -> None:
    """Skip (or fail under XDRGEN_REQUIRE_PEERS=1) when libvirtd cannot run here."""
    reason = None
    if not os.path.exists(LIBVIRTD):
        reason = "libvirtd not installed (Debian package libvirt-daemon)"
    elif os.geteuid() != 0:
        reason = "needs root to run libvirtd"
    if reason is None:
        return
    if os.environ.get("XDRGEN_REQUIRE_PEERS") == "1":
        pytest.fail(reason + " and XDRGEN_REQUIRE_PEERS=1")
    pytest.skip(reason)


@dataclass
class Daemon:
    """A running libvirtd: where its socket is and how to stop it."""

    root: Path
    socket_path: str
    uri: str
    process: subprocess.Popen[bytes]
    log_path: Path
    extra: dict[str, str] = field(default_factory=dict)

    def diagnostics(self) -> str:
        parts = []
        for name in ("stderr", "log"):
            p = self.root / name
            if p.exists():
                parts.append(f"--- {name} ---\n" + p.read_text(errors="replace")[-4000:])
        return "\n".join(parts)

    def stop(self) -> None:
        proc = self.process
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(STOP_TIMEOUT)
        shutil.rmtree(self.root, ignore_errors=True)


def _config(root: Path, extra: str = "") -> Path:
    conf = root / "libvirtd.conf"
    conf.write_text(
        f'unix_sock_dir = "{root / "run"}"\n'
        "listen_tcp = 0\nlisten_tls = 0\n"
        'auth_unix_rw = "none"\nauth_unix_ro = "none"\n'
        'unix_sock_rw_perms = "0777"\n'
        f'log_outputs = "3:file:{root / "log"}"\n' + extra
    )
    return conf


def _wait_for_socket(daemon: Daemon) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if os.path.exists(daemon.socket_path):
            return
        if daemon.process.poll() is not None:
            break
        time.sleep(0.05)
    rc = daemon.process.poll()
    diag = daemon.diagnostics()
    daemon.stop()
    raise PeerUnavailable(
        f"libvirtd did not create {daemon.socket_path} within {START_TIMEOUT} s (exit status {rc})\n{diag}"
    )


def start_libvirtd(keepalive_interval: int = 5, keepalive_count: int = 5, extra_config: str = "") -> Daemon:
    """Root libvirtd with no driver modules: only the built-in test driver.

    ``extra_config``: more libvirtd.conf lines (e.g. ``max_clients = 3``).
    """
    root = Path(tempfile.mkdtemp(dir="/tmp", prefix="xv"))
    (root / "run").mkdir()
    (root / "drivers").mkdir()
    conf = _config(
        root, f"keepalive_interval = {keepalive_interval}\nkeepalive_count = {keepalive_count}\n" + extra_config
    )
    env = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "LIBVIRT_DRIVER_DIR": str(root / "drivers"),
        "XDG_RUNTIME_DIR": str(root / "run"),
        "HOME": str(root),
    }
    stderr = open(root / "stderr", "wb")
    # --timeout: if a test run dies without stopping us, exit after idling.
    proc = subprocess.Popen(
        [LIBVIRTD, "--config", str(conf), "--pid-file", str(root / "pid"), "--timeout", "600"],
        env=env, stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr,
    )
    stderr.close()
    sock = str(root / "run" / "libvirt-sock")
    daemon = Daemon(root, sock, "test:///default", proc, root / "log")
    _wait_for_socket(daemon)
    return daemon


def start_storage_daemon() -> Daemon:
    """libvirtd as nobody (session mode) with only the storage driver and a dir pool at root/pool."""
    nobody = pwd.getpwnam("nobody")
    root = Path(tempfile.mkdtemp(dir="/tmp", prefix="xs"))
    for sub in ("run", "drivers", "home", "pool"):
        (root / sub).mkdir()
    (root / "drivers" / STORAGE_DRIVER).symlink_to(storage_driver_path())
    conf = _config(root)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [dirpath] + [os.path.join(dirpath, n) for n in dirnames + filenames]:
            os.lchown(name, nobody.pw_uid, nobody.pw_gid)
    os.chmod(root, 0o755)
    home = root / "home"
    env = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "LIBVIRT_DRIVER_DIR": str(root / "drivers"),
        "HOME": str(home),
        "XDG_RUNTIME_DIR": str(root / "run"),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
    }
    stderr = open(root / "stderr", "wb")
    os.lchown(root / "stderr", nobody.pw_uid, nobody.pw_gid)
    proc = subprocess.Popen(
        ["setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}", "--clear-groups",
         LIBVIRTD, "--config", str(conf), "--pid-file", str(root / "pid"), "--timeout", "600"],
        env=env, stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr,
    )
    stderr.close()
    sock = str(root / "run" / "libvirt-sock")
    daemon = Daemon(root, sock, "storage:///session", proc, root / "log", {"pool_dir": str(root / "pool")})
    _wait_for_socket(daemon)
    return daemon
