"""Volume streams against a real libvirtd storage driver (run as nobody)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from peers.daemons import Daemon
from peers.fixtures import storage_daemon  # noqa: F401  (fixture)
from peers.xdrmini import Reader, Writer, procedure_numbers
from xdrgen.runtime.virnet.core import StreamDirection
from xdrgen.runtime.virnet.errors import StreamError
from xdrgen.runtime.virnet.files import download_file, upload_file
from xdrgen.runtime.virnet.sync import Connection, Hole

MiB = 1 << 20
WAIT = 60.0
SPARSE = 1  # VIR_STORAGE_VOL_{UP,DOWN}LOAD_SPARSE_STREAM


@pytest.fixture(scope="module")
def procs() -> dict[str, int]:
    from conftest import require_shared

    return procedure_numbers(require_shared("libvirt/remote_protocol.x"))


@pytest.fixture(scope="module")
def session(storage_daemon: Daemon, procs: dict[str, int]) -> Iterator[tuple[Connection, bytes]]:
    c = Connection.connect_unix(storage_daemon.socket_path)
    c.call(procs["REMOTE_PROC_CONNECT_OPEN"], Writer().opt_string(storage_daemon.uri).uint(0).bytes())
    xml = f"<pool type='dir'><name>xdrgen</name><target><path>{storage_daemon.extra['pool_dir']}</path></target></pool>"
    pool = c.call(procs["REMOTE_PROC_STORAGE_POOL_CREATE_XML"], Writer().string(xml).uint(0).bytes()).tobytes()
    yield c, pool
    c.close()


def create_volume(session: tuple[Connection, bytes], procs: dict[str, int], name: str, capacity: int) -> bytes:
    conn, pool = session
    xml = (f"<volume><name>{name}</name><capacity>{capacity}</capacity><allocation>0</allocation>"
           "<target><format type='raw'/></target></volume>")
    return conn.call(procs["REMOTE_PROC_STORAGE_VOL_CREATE_XML"], pool + Writer().string(xml).uint(0).bytes()).tobytes()


def transfer_args(vol: bytes, offset: int, length: int, flags: int) -> bytes:
    return vol + Writer().uhyper(offset).uhyper(length).uint(flags).bytes()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(MiB):
            h.update(chunk)
    return h.hexdigest()


def test_upload_and_download_64_mib(session: tuple[Connection, bytes], procs: dict[str, int], tmp_path: Path) -> None:
    conn, _ = session
    size = 64 * MiB
    src = tmp_path / "src.img"
    with open(src, "wb") as f:
        for i in range(64):
            f.write(hashlib.sha256(str(i).encode()).digest() * (MiB // 32))
    vol = create_volume(session, procs, "big", size)
    _, up = conn.call_stream(procs["REMOTE_PROC_STORAGE_VOL_UPLOAD"], transfer_args(vol, 0, size, 0), direction=StreamDirection.SEND)
    seen: list[int] = []
    assert upload_file(up, src, progress=seen.append) == size
    up.finish(WAIT)
    assert seen[-1] == size and seen == sorted(seen)
    _, down = conn.call_stream(procs["REMOTE_PROC_STORAGE_VOL_DOWNLOAD"], transfer_args(vol, 0, 0, 0), direction=StreamDirection.RECEIVE)
    dst = tmp_path / "dst.img"
    assert download_file(down, dst) == size
    down.finish(WAIT)
    assert sha256_file(dst) == sha256_file(src)


def test_sparse_upload_and_download_keep_holes(session: tuple[Connection, bytes], procs: dict[str, int], tmp_path: Path,
                                               storage_daemon: Daemon) -> None:
    conn, _ = session
    size = 16 * MiB
    src = tmp_path / "sparse.img"
    with open(src, "wb") as f:  # data 1 MiB | hole 7 MiB | data 1 MiB | hole 7 MiB
        f.write(b"A" * MiB)
        f.seek(8 * MiB)
        f.write(b"B" * MiB)
        f.truncate(size)
    vol = create_volume(session, procs, "sparse", size)
    _, up = conn.call_stream(procs["REMOTE_PROC_STORAGE_VOL_UPLOAD"], transfer_args(vol, 0, size, SPARSE),
                             direction=StreamDirection.SEND, sparse=True)
    upload_file(up, src)
    up.finish(WAIT)
    on_disk = os.stat(Path(storage_daemon.extra["pool_dir"]) / "sparse")
    assert on_disk.st_size == size and on_disk.st_blocks * 512 <= 4 * MiB  # holes kept by the daemon

    _, down = conn.call_stream(procs["REMOTE_PROC_STORAGE_VOL_DOWNLOAD"], transfer_args(vol, 0, 0, SPARSE),
                               direction=StreamDirection.RECEIVE, sparse=True)
    runs: list[tuple[str, int]] = []
    content = bytearray()
    for item in down:
        kind, n = ("hole", item.length) if isinstance(item, Hole) else ("data", len(item))
        if isinstance(item, memoryview):
            content += item
        if runs and runs[-1][0] == kind:
            runs[-1] = (kind, runs[-1][1] + n)
        else:
            runs.append((kind, n))
    down.finish(WAIT)
    assert runs == [("data", MiB), ("hole", 7 * MiB), ("data", MiB), ("hole", 7 * MiB)]
    assert content == b"A" * MiB + b"B" * MiB

    _, down = conn.call_stream(procs["REMOTE_PROC_STORAGE_VOL_DOWNLOAD"], transfer_args(vol, 0, 0, SPARSE),
                               direction=StreamDirection.RECEIVE, sparse=True)
    dst = tmp_path / "copy.img"
    assert download_file(down, dst) == size
    down.finish(WAIT)
    st = os.stat(dst)
    assert st.st_size == size and st.st_blocks * 512 <= 4 * MiB
    assert sha256_file(dst) == sha256_file(src)


def test_abort_mid_download_leaves_connection_usable(session: tuple[Connection, bytes], procs: dict[str, int]) -> None:
    conn, _ = session
    vol = create_volume(session, procs, "abortme", 32 * MiB)
    _, down = conn.call_stream(procs["REMOTE_PROC_STORAGE_VOL_DOWNLOAD"], transfer_args(vol, 0, 0, 0), direction=StreamDirection.RECEIVE)
    first = down.recv(WAIT)
    assert isinstance(first, memoryview) and len(first) > 0
    down.abort(WAIT)
    info = Reader(conn.call(procs["REMOTE_PROC_STORAGE_VOL_GET_INFO"], vol))
    assert info.int() == 0  # VIR_STORAGE_VOL_FILE
    assert info.uhyper() == 32 * MiB  # capacity
    assert Reader(conn.call(procs["REMOTE_PROC_CONNECT_GET_LIB_VERSION"])).uhyper() >= 9000000


def test_uploading_more_than_announced_is_a_stream_error(session: tuple[Connection, bytes], procs: dict[str, int]) -> None:
    conn, _ = session
    vol = create_volume(session, procs, "short", MiB)
    _, up = conn.call_stream(procs["REMOTE_PROC_STORAGE_VOL_UPLOAD"], transfer_args(vol, 0, 1000, 0), direction=StreamDirection.SEND)
    with pytest.raises(StreamError) as info:
        up.send(b"x" * 5000)
        up.finish(WAIT)
    assert info.value.code != 0 and info.value.message
    assert Reader(conn.call(procs["REMOTE_PROC_CONNECT_GET_LIB_VERSION"])).uhyper() >= 9000000
