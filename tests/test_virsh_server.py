"""Real virsh against examples/fake_libvirtd.py (the generated server skeleton)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import REPO_ROOT, require_shared

sys.path.insert(0, str(REPO_ROOT / "examples"))

FAKE = REPO_ROOT / "examples" / "fake_libvirtd.py"
START_WAIT = 120.0  # first run may generate the module


def require_virsh() -> None:
    if shutil.which("virsh") is None:
        reason = "virsh not installed (Debian package libvirt-clients)"
        if os.environ.get("XDRGEN_REQUIRE_PEERS") == "1":
            pytest.fail(reason + " and XDRGEN_REQUIRE_PEERS=1")
        pytest.skip(reason)


@pytest.fixture(scope="module")
def fake() -> Iterator[tuple[str, Any]]:
    """The fake daemon's socket, and its World (what the handlers return)."""
    require_shared("libvirt/remote_protocol.x")
    require_virsh()
    import fake_libvirtd

    root = Path(tempfile.mkdtemp(prefix="xf", dir="/tmp"))
    sock = str(root / "sock")
    log = open(root / "log", "w+")
    proc = subprocess.Popen([sys.executable, str(FAKE), "--socket", sock, "--log"],
                            stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # "listening on ..." once the socket exists
        if "listening" not in line:
            log.seek(0)
            pytest.fail(f"fake_libvirtd did not start: {line!r}\n{log.read()}")
        yield sock, fake_libvirtd.World()
    finally:
        proc.send_signal(signal.SIGTERM)
        rc: int | None
        try:
            rc = proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            rc = None
        log.seek(0)
        text = log.read()
        log.close()
        shutil.rmtree(root, ignore_errors=True)
        assert rc == 0, f"fake_libvirtd did not stop cleanly on SIGTERM (status {rc})\n{text}"
        # Every procedure virsh needed for these commands is implemented.
        assert "UNSUPPORTED" not in text, text


def virsh(sock: str, *args: str) -> str:
    done = subprocess.run(["virsh", "-c", f"test+unix:///default?socket={sock}", *args],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"virsh {' '.join(args)}: {done.stderr}"
    return done.stdout


def fields(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            out[key.strip()] = value.strip()
    return out


def test_version(fake: tuple[str, Any]) -> None:
    sock, _ = fake
    out = fields(virsh(sock, "version"))
    assert out["Running hypervisor"] == "Test 2.4.6"  # connect_get_type + connect_get_version (2004006)
    assert out["Using API"].startswith("Test ")


def test_list_all(fake: tuple[str, Any]) -> None:
    sock, world = fake
    rows = [line.split(None, 2) for line in virsh(sock, "list", "--all").splitlines()[2:] if line.strip()]
    words = {1: "running", 5: "shut off"}
    expected = [["-" if d.id < 0 else str(d.id), d.name, words[d.state]] for d in world.domains]
    assert rows == expected == [["1", "web", "running"], ["-", "db", "shut off"]]


def test_dominfo(fake: tuple[str, Any]) -> None:
    sock, world = fake
    web = world.domain("web")
    out = fields(virsh(sock, "dominfo", "web"))
    assert out["Id"] == "1" and out["Name"] == "web"
    assert out["UUID"].replace("-", "") == web.uuid.hex()
    assert out["OS Type"] == "hvm" and out["State"] == "running"
    assert out["CPU(s)"] == str(web.vcpus)
    assert out["CPU time"] == f"{web.cpu_time_ns / 1e9:.1f}s"
    assert out["Max memory"] == f"{web.max_mem_kib} KiB" and out["Used memory"] == f"{web.mem_kib} KiB"
    assert out["Persistent"] == "yes" and out["Autostart"] == "disable"


def test_screenshot(fake: tuple[str, Any], tmp_path: Path) -> None:
    sock, world = fake
    target = tmp_path / "shot.png"
    out = virsh(sock, "screenshot", "web", str(target))
    assert f"Screenshot saved to {target}, with type of image/png" in out
    assert target.read_bytes() == world.screenshot


def test_vol_download(fake: tuple[str, Any], tmp_path: Path) -> None:
    sock, world = fake
    target = tmp_path / "vol.img"
    virsh(sock, "vol-download", "--pool", world.pool_name, "disk0.img", str(target))
    assert target.read_bytes() == world.volumes["disk0.img"]
    # A window of the volume: offset and length reach the handler.
    part = tmp_path / "part.img"
    virsh(sock, "vol-download", "--pool", world.pool_name, "--offset", "1000", "--length", "300000", "disk0.img", str(part))
    assert part.read_bytes() == world.volumes["disk0.img"][1000:301000]


def test_handler_error_reaches_virsh(fake: tuple[str, Any], tmp_path: Path) -> None:
    sock, _ = fake
    done = subprocess.run(["virsh", "-c", f"test+unix:///default?socket={sock}", "screenshot", "db", str(tmp_path / "x.png")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "Requested operation is not valid: domain is not running" in done.stderr
    assert not (tmp_path / "x.png").exists()


def test_vol_upload_then_download(fake: tuple[str, Any], tmp_path: Path) -> None:
    sock, world = fake
    data = bytes((i * 7 + 3) & 0xFF for i in range(700_000))
    src = tmp_path / "up.img"
    src.write_bytes(data)
    virsh(sock, "vol-upload", "--pool", world.pool_name, "disk0.img", str(src))
    back = tmp_path / "back.img"
    virsh(sock, "vol-download", "--pool", world.pool_name, "--length", str(len(data)), "disk0.img", str(back))
    assert back.read_bytes() == data
    # Sparse: virsh sends the zero runs as holes; they come back as zeros.
    holey = data[:100_000] + bytes(500_000) + data[:50_000]
    src.write_bytes(holey)
    virsh(sock, "vol-upload", "--sparse", "--pool", world.pool_name, "disk0.img", str(src))
    virsh(sock, "vol-download", "--pool", world.pool_name, "--length", str(len(holey)), "disk0.img", str(back))
    assert back.read_bytes() == holey
