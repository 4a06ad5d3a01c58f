"""Real ONC RPC daemons for tests: rpcbind and rpc.statd.

rpcbind must own port 111 and /run/rpcbind.sock, so there is one per machine:
``ensure_rpcbind()`` uses the one that answers, or starts ``rpcbind -f -w``
(and only then stops it again, by its pid).  A leftover socket file from a
killed rpcbind is harmless (rpcbind replaces it); a leftover process that
answers is used as it is; one that holds the port without answering is
reported with its pid.

``start_statd()`` runs ``rpc.statd -F --no-notify -P STATEDIR -p PORT`` in a
temporary state directory (with the ``sm/`` and ``sm.bak/`` it expects); statd
registers itself with rpcbind and unregisters when stopped.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

RPCBIND = "/usr/sbin/rpcbind"
RPCINFO = "/usr/sbin/rpcinfo"
STATD = "/sbin/rpc.statd"
SHOWMOUNT = "/sbin/showmount"
START_TIMEOUT = 10.0
STATD_PROGRAM = 100024


def _which(name: str, default: str) -> str:
    found = shutil.which(name, path="/usr/sbin:/sbin:/usr/bin:/bin")
    return found or default


def require_oncrpc_peers(*tools: str) -> None:
    """Skip (fail under XDRGEN_REQUIRE_PEERS=1) without root or without ``tools``.

    Tool names: rpcbind, rpcinfo (Debian rpcbind), rpc.statd, showmount (nfs-common).
    """
    reason = None
    if os.geteuid() != 0:
        reason = "needs root (rpcbind must own port 111; registering needs a privileged port)"
    else:
        for tool in tools:
            if shutil.which(tool, path="/usr/sbin:/sbin:/usr/bin:/bin") is None:
                package = "nfs-common" if tool in ("rpc.statd", "showmount") else "rpcbind"
                reason = f"{tool} not installed (Debian package {package})"
                break
    if reason is None:
        return
    if os.environ.get("XDRGEN_REQUIRE_PEERS") == "1":
        pytest.fail(reason + " and XDRGEN_REQUIRE_PEERS=1")
    pytest.skip(reason)


def rpcbind_answers(timeout: float = 1.0) -> bool:
    """Does something answer portmap NULL on 127.0.0.1:111 (UDP)?"""
    from xdrgen.runtime.oncrpc import RpcError
    from xdrgen.runtime.oncrpc import rpcb_prot as rb

    try:
        with rb.PmapProg2Client.connect_udp("127.0.0.1", 111, timeout=timeout, retransmit=0.2) as client:
            client.pmapproc_null()
        return True
    except (RpcError, OSError):
        return False


@dataclass
class Rpcbind:
    """The rpcbind the tests talk to; ``process`` is None when it was already running."""

    process: subprocess.Popen[bytes] | None

    def stop(self) -> None:
        proc = self.process
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _holder_of_port_111() -> str:
    try:
        out = subprocess.run(["ss", "-H", "-lnptu", "sport = :111"], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.strip() or "nobody listens"


def ensure_rpcbind() -> Rpcbind:
    """The running rpcbind, or a new ``rpcbind -f -w`` (see the module docstring)."""
    if rpcbind_answers():
        return Rpcbind(None)
    stderr = tempfile.TemporaryFile()
    process = subprocess.Popen([_which("rpcbind", RPCBIND), "-f", "-w"], stdin=subprocess.DEVNULL,
                               stdout=stderr, stderr=stderr)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if rpcbind_answers(0.5):
            stderr.close()
            return Rpcbind(process)
        if process.poll() is not None:
            break
        time.sleep(0.05)
    stderr.seek(0)
    output = stderr.read().decode(errors="replace")
    stderr.close()
    Rpcbind(process).stop()
    raise RuntimeError(
        f"rpcbind -f -w did not start answering on 127.0.0.1:111 (exit status {process.poll()}): {output}; "
        f"port 111: {_holder_of_port_111()}"
    )


def rpcinfo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([_which("rpcinfo", RPCINFO), *args], capture_output=True, text=True, timeout=30, check=False)


def free_port() -> int:
    """A port free for both TCP and UDP on 127.0.0.1 right now."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = int(tcp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
        return port
    raise RuntimeError("no port free for both TCP and UDP")


@dataclass
class Statd:
    process: subprocess.Popen[bytes]
    statedir: Path
    port: int
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        shutil.rmtree(self.statedir, ignore_errors=True)


def _registered_port(prog: int, vers: int, transport: str) -> int | None:
    from xdrgen.runtime.oncrpc import RpcError
    from xdrgen.runtime.oncrpc.rpcbind import lookup

    try:
        return lookup("127.0.0.1", prog, vers, transport, timeout=1.0)[1]
    except (RpcError, OSError):
        return None


def start_statd() -> Statd:
    """rpc.statd in a fresh state directory, registered with rpcbind (which must run)."""
    statedir = Path(tempfile.mkdtemp(prefix="xdrgen-statd-"))
    (statedir / "sm").mkdir()
    (statedir / "sm.bak").mkdir()
    log = statedir / "log"
    port = free_port()
    with open(log, "wb") as sink:
        process = subprocess.Popen(
            [_which("rpc.statd", STATD), "-F", "--no-notify", "-P", str(statedir), "-p", str(port)],
            stdin=subprocess.DEVNULL, stdout=sink, stderr=sink,
        )
    statd = Statd(process, statedir, port, log)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if _registered_port(STATD_PROGRAM, 1, "udp") == port and _registered_port(STATD_PROGRAM, 1, "tcp") == port:
            return statd
        if process.poll() is not None:
            break
        time.sleep(0.05)
    output = log.read_text(errors="replace")
    statd.stop()
    raise RuntimeError(f"rpc.statd did not register on port {port} (exit status {process.poll()}): {output}")
