"""examples/mount_server.py (MOUNT versions 1 and 3 on generated code) and the real showmount.

The example registers with rpcbind; ``showmount -e`` (nfs-common) finds it,
asks for the export list over MOUNT version 3 and prints it; ``showmount -a``
prints the mounts a generated MOUNT v3 client made; after SIGTERM the server
is no longer registered.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from peers.oncrpc_daemons import Rpcbind, require_oncrpc_peers, rpcinfo
from peers.oncrpc_fixtures import rpcbind  # noqa: F401  (fixture)
from xdrgen.runtime.oncrpc import auth_sys

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "mount_server.py"
MOUNT_PROGRAM = 100005


def registered_mount() -> set[tuple[int, int, str, int]]:
    out = rpcinfo("-p", "127.0.0.1")
    assert out.returncode == 0, out.stderr
    rows = {tuple(line.split()[:4]) for line in out.stdout.splitlines()[1:]}
    return {(int(p), int(v), t, int(port)) for p, v, t, port in rows if int(p) == MOUNT_PROGRAM}


class Example:
    def __init__(self, *args: str) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
        self.process = subprocess.Popen(
            [sys.executable, str(EXAMPLE), "--verbose", *args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
        )
        assert self.process.stdout is not None
        self.first = self.process.stdout.readline()  # blocks until ready (or exit)

    def stop(self) -> str:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            out, _ = self.process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            out, _ = self.process.communicate()
        return out


@pytest.fixture
def example(rpcbind: Rpcbind) -> Iterator[Example]:
    require_oncrpc_peers("rpcbind", "rpcinfo", "showmount")
    if not Path("/usr/include/rpcsvc/mount.x").is_file():
        pytest.fail("/usr/include/rpcsvc/mount.x not found (Debian package rpcsvc-proto)")
    if registered_mount():
        pytest.fail(f"a MOUNT server is already registered with rpcbind here: {registered_mount()}")
    server = Example("/srv/a:host1,host2", "/srv/b", "/export/data:@trusted")
    try:
        assert server.first.startswith("ready tcp "), server.first + server.stop()
        yield server
    finally:
        if server.process.poll() is None:
            server.stop()


def test_showmount_lists_the_exports(example: Example) -> None:
    ports = example.first.split()
    tcp, udp = int(ports[2]), int(ports[4])
    assert registered_mount() == {(MOUNT_PROGRAM, v, t, p) for v in (1, 3) for t, p in (("tcp", tcp), ("udp", udp))}
    shown = subprocess.run(["showmount", "-e", "127.0.0.1"], capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines() == [
        "Export list for 127.0.0.1:",
        "/srv/a       host1,host2",
        "/srv/b       (everyone)",
        "/export/data @trusted",
    ]

    # Mount through a generated MOUNT v3 client; showmount -a lists it (DUMP).
    sys.path.insert(0, str(EXAMPLE.parent))
    try:
        import mount_server
    finally:
        sys.path.remove(str(EXAMPLE.parent))
    mount, v3 = mount_server.load_modules()
    with v3.Mountprog3Client.create("127.0.0.1", "tcp", cred=auth_sys(machinename="client1")) as c:
        res = c.mountproc3_mnt("/srv/b")
        assert res.fhs_status == v3.MNT3_OK and len(res.value.fhandle) == 32
        assert res.value.auth_flavors == [0, 1]
        assert c.mountproc3_mnt("/nope").fhs_status == v3.MNT3ERR_NOENT
    listed = subprocess.run(["showmount", "-a", "127.0.0.1"], capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines() == ["All mount points on 127.0.0.1:", "client1:/srv/b"]

    output = example.stop()
    assert example.process.returncode == 0, output
    # showmount asked over version 3 (the version it tries first).
    assert any(line.startswith("EXPORT version 3 over ") for line in output.splitlines()), output
    deadline = time.monotonic() + 5
    while registered_mount() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert registered_mount() == set()
