"""examples/guestfs_copy.py against the real guestfsd, with both clients."""

from __future__ import annotations

import gzip
import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from conftest import REPO_ROOT
from peers.guestfsd import GuestfsDaemon, guestfsd  # noqa: F401  (fixture)

EXAMPLE = REPO_ROOT / "examples" / "guestfs_copy.py"


def run_example(socket_path: str, *words: str, aio: bool = False) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(EXAMPLE), "--socket", socket_path, *(["--asyncio"] if aio else []), *words]
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    return subprocess.run(command, capture_output=True, text=True, timeout=120, env=env, check=False)


@pytest.mark.parametrize("aio", [False, True], ids=["sync", "asyncio"])
def test_put_ls_get_tar(guestfsd: GuestfsDaemon, tmp_path: Path, aio: bool) -> None:  # noqa: F811
    local, copy, tgz = tmp_path / "data.bin", tmp_path / "copy.bin", tmp_path / "dir.tgz"
    data = os.urandom(3 * 1024 * 1024 + 5)
    local.write_bytes(data)
    result = run_example(
        guestfsd.socket_path,
        "mkdir", "/box", "put", str(local), "/box/data.bin", "ls", "/box",
        "get", "/box/data.bin", str(copy), "tar", "/box", str(tgz), "get", "/nowhere", str(tmp_path / "x"),
        aio=aio,
    )
    assert result.returncode == 1, result.stderr
    assert result.stdout.splitlines() == [
        "mkdir: /box",
        f"put: {len(data)} bytes",
        "ls: data.bin",
        f"get: {len(data)} bytes",
        f"tar: {tgz.stat().st_size} bytes of gzip tarball",
    ]
    assert "guestfs_copy: " in result.stderr and "ENOENT" in result.stderr and "Traceback" not in result.stderr
    assert copy.read_bytes() == data
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(tgz.read_bytes()))) as tar:
        member = tar.extractfile("./data.bin")
        assert member is not None and member.read() == data
