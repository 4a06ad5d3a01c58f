"""RPC throughput of the generated libvirt client and server, against peers in the same run.

    python bench/bench_rpc.py [--quick]

Needs root (it starts its own libvirtd and storage daemon, from
tests/peers/daemons.py).  Compares, on the same daemons in the same run:

- getVersion calls/s, sequential, generated sync client vs libvirt-python
  (alternating rounds, medians);
- getVersion calls/s pipelined: generated asyncio client with 32 calls in
  flight vs libvirt-python from 32 threads;
- 256 MiB volume download and upload (storage daemon), generated client vs
  libvirt-python's virStream;
- a stream from the generated Python server (its own process, as a real
  server is) to the generated Python client over a unix socket vs a raw
  socketpair moving the same bytes (one warm-up transfer each first).

For context it also prints the daemon's own ceiling: getVersion with 32 calls
in flight from a bare socket loop (hand-packed frames, no client library), so
the pipelined ratio can be read against what libvirtd can serve at all.

Prints a table of rates and ratios; asserts nothing.  A peer that cannot be
imported (libvirt-python) is skipped, saying so.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import socket
import statistics
import struct
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "tests"), str(HERE.parent / "examples")]

from libvirt_codegen import load_remote_protocol  # noqa: E402
from peers.daemons import Daemon, start_libvirtd, start_storage_daemon  # type: ignore[import-not-found]  # noqa: E402

MiB = 1 << 20
PIPELINE = 32
#: Alternating rounds of the sequential getVersion comparison.
SEQ_ROUNDS = 5

try:
    import libvirt as _libvirt  # type: ignore[import-untyped]

    libvirt: Any = _libvirt
    LIBVIRT_PYTHON: str | None = None
except ImportError as exc:  # pragma: no cover - depends on the machine
    libvirt = None
    LIBVIRT_PYTHON = f"libvirt-python not importable ({exc}); pip install libvirt-python"

rows: list[tuple[str, str, str, str]] = []


def row(what: str, ours: float, theirs: float | None, unit: str, target: str) -> None:
    ratio = f"{ours / theirs:.2f}x (target {target})" if theirs else "peer skipped"
    peer = f"{theirs:,.0f} {unit}" if theirs else "-"
    rows.append((what, f"{ours:,.0f} {unit}", peer, ratio))


def rate(n: float, fn: Callable[[], None]) -> float:
    start = time.perf_counter()
    fn()
    return n / (time.perf_counter() - start)


def libvirt_uri(daemon: Daemon, driver: str) -> str:
    return f"{driver}+unix:///{'default' if driver == 'test' else 'session'}?socket={daemon.socket_path}"


# ------------------------------------------------------------------ calls


def bench_calls(rp: Any, daemon: Daemon, n: int) -> None:
    client = rp.RemoteClient.connect_unix(daemon.socket_path)
    client.connect_open(name="test:///default")
    for _ in range(200):  # warm up
        client.connect_get_version()

    def ours_seq() -> None:
        for _ in range(n):
            client.connect_get_version()

    conn = None
    theirs_seq: Callable[[], None] | None = None
    if libvirt is not None:
        conn = libvirt.open(libvirt_uri(daemon, "test"))
        for _ in range(200):
            conn.getVersion()

        def theirs_seq() -> None:
            for _ in range(n):
                conn.getVersion()

    # Rounds alternate between the two clients and each reports its median,
    # so a burst of other load on the machine hits both alike.
    ours_rounds: list[float] = []
    theirs_rounds: list[float] = []
    for _ in range(SEQ_ROUNDS):
        ours_rounds.append(rate(n, ours_seq))
        if theirs_seq is not None:
            theirs_rounds.append(rate(n, theirs_seq))
    ours = statistics.median(ours_rounds)
    client.close()

    async def pipelined() -> float:
        c = await rp.RemoteAsyncClient.connect_unix(daemon.socket_path)
        await c.connect_open(name="test:///default")

        async def worker(k: int) -> None:
            for _ in range(k):
                await c.connect_get_version()

        start = time.perf_counter()
        await asyncio.gather(*(worker(n * 4 // PIPELINE) for _ in range(PIPELINE)))
        elapsed = time.perf_counter() - start
        await c.close()
        return (n * 4 // PIPELINE) * PIPELINE / elapsed

    ours_pipe = asyncio.run(pipelined())

    theirs = theirs_pipe = None
    if conn is not None:
        theirs = statistics.median(theirs_rounds)

        def per_thread(k: int) -> None:
            for _ in range(k):
                conn.getVersion()

        k = n * 2 // PIPELINE
        with ThreadPoolExecutor(PIPELINE) as pool:
            start = time.perf_counter()
            list(pool.map(per_thread, [k] * PIPELINE))
            theirs_pipe = k * PIPELINE / (time.perf_counter() - start)
        conn.close()
    row(f"getVersion sequential (median of {SEQ_ROUNDS})", ours, theirs, "calls/s", ">= 1.0x")
    row(f"getVersion pipelined ({PIPELINE} in flight)", ours_pipe, theirs_pipe, "calls/s", ">= 2x")
    ceiling = raw_pipelined_ceiling(daemon, n * 4)
    rows.append((f"(libvirtd ceiling: bare socket, {PIPELINE} in flight)", f"{ceiling:,.0f} calls/s", "-",
                 f"xdrgen pipelined at {ours_pipe / ceiling:.2f} of it"))


def raw_pipelined_ceiling(daemon: Daemon, n: int) -> float:
    """getVersion calls/s the daemon serves to a bare socket loop keeping PIPELINE calls in flight."""
    def frame(proc: int, serial: int, payload: bytes = b"") -> bytes:
        return struct.pack(">IIIiiII", 28 + len(payload), 0x20008086, 1, proc, 0, serial, 0) + payload

    name = b"test:///default"
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(daemon.socket_path)
        s.sendall(frame(1, 1, struct.pack(">II", 1, len(name)) + name + b"\0" * (-len(name) % 4) + b"\0" * 4))
        buf = bytearray(1 << 20)
        got = 0
        while got < 28:
            got += s.recv_into(buf)
        reply = 36  # getVersion reply: 28-byte prefix + unsigned hyper
        start = time.perf_counter()
        sent = min(PIPELINE, n)
        s.sendall(b"".join(frame(4, 2 + i) for i in range(sent)))
        done = pending = 0
        while done < n:
            pending += s.recv_into(buf)
            k, pending = divmod(pending, reply)
            done += k
            more = min(k, n - sent)
            if more:
                s.sendall(b"".join(frame(4, 2 + sent + i) for i in range(more)))
                sent += more
        return n / (time.perf_counter() - start)


# ------------------------------------------------------------------ volumes


def bench_volumes(rp: Any, daemon: Daemon, size: int) -> None:
    client = rp.RemoteClient.connect_unix(daemon.socket_path)
    client.connect_open(name=daemon.uri)
    pool = client.storage_pool_create_xml(
        f"<pool type='dir'><name>bench</name><target><path>{daemon.extra['pool_dir']}</path></target></pool>"
    ).pool
    xml = (f"<volume><name>bench.img</name><capacity>{size}</capacity><allocation>0</allocation>"
           "<target><format type='raw'/></target></volume>")
    vol = client.storage_vol_create_xml(pool, xml).vol
    block = memoryview(os.urandom(4 * MiB))

    def ours_up() -> None:
        _, st = client.storage_vol_upload(vol, 0, size)
        for _ in range(size // len(block)):
            st.send(block)
        st.finish()

    def ours_down() -> None:
        _, st = client.storage_vol_download(vol, 0, 0)
        got = 0
        for chunk in st:
            got += len(chunk)
        st.finish()
        assert got == size, got

    ours_u = rate(size / MiB, ours_up)
    ours_d = rate(size / MiB, ours_down)
    client.close()

    theirs_u = theirs_d = None
    if libvirt is not None:
        conn = libvirt.open(libvirt_uri(daemon, "storage"))
        lv_vol = conn.storagePoolLookupByName("bench").storageVolLookupByName("bench.img")
        raw = bytes(block)

        def theirs_up() -> None:
            st = conn.newStream(0)
            lv_vol.upload(st, 0, size, 0)
            for _ in range(size // len(raw)):
                sent = 0
                while sent < len(raw):
                    sent += st.send(raw[sent : sent + 262144])
            st.finish()

        def theirs_down() -> None:
            st = conn.newStream(0)
            lv_vol.download(st, 0, 0, 0)
            got = 0
            while True:
                data = st.recv(262144)
                if not data:
                    break
                got += len(data)
            st.finish()
            assert got == size, got

        theirs_u = rate(size / MiB, theirs_up)
        theirs_d = rate(size / MiB, theirs_down)
        conn.close()
    row(f"volume download {size // MiB} MiB", ours_d, theirs_d, "MiB/s", ">= 1.5x")
    row(f"volume upload {size // MiB} MiB", ours_u, theirs_u, "MiB/s", ">= 1.0x")


# ------------------------------------------------------------ python <-> python


def serve_download(rp: Any, path: str, size: int, ready: Any) -> None:
    """The benchmark's Python server (run in a child process): every download sends ``size`` bytes."""
    payload = memoryview(bytes(size))

    class Handler(rp.RemoteHandler):  # type: ignore[misc]
        async def connect_open(self, args: Any) -> None:
            return None

        async def storage_vol_download(self, call: Any, args: Any) -> None:
            stream = call.accept(None)
            await stream.send(payload)
            await stream.send_eof()

    async def serve() -> None:
        await rp.RemoteServer(Handler).serve_unix(path)
        ready.set()
        await asyncio.Event().wait()

    asyncio.run(serve())


def bench_python_stream(rp: Any, size: int) -> None:
    payload = memoryview(bytes(size))
    root = tempfile.mkdtemp(prefix="xb", dir="/tmp")
    path = os.path.join(root, "sock")
    ctx = multiprocessing.get_context("fork")
    ready = ctx.Event()
    server = ctx.Process(target=serve_download, args=(rp, path, size, ready), daemon=True)
    server.start()
    if not ready.wait(30):
        server.kill()
        sys.exit("the Python server did not start")
    client = rp.RemoteClient.connect_unix(path)
    client.connect_open(name="bench:///")
    vol = rp.remote_nonnull_storage_vol("p", "v", "k")

    def ours() -> None:
        _, st = client.storage_vol_download(vol, 0, 0)
        got = 0
        for chunk in st:
            got += len(chunk)
        st.finish()
        assert got == size

    ours()  # warm-up
    ours_rate = rate(size / MiB, ours)
    client.close()
    server.kill()
    server.join(10)

    def raw() -> None:
        a, b = socket.socketpair()

        def writer() -> None:
            a.sendall(payload)
            a.shutdown(socket.SHUT_WR)

        t = threading.Thread(target=writer)
        t.start()
        buf = bytearray(1 << 20)
        got = 0
        while n := b.recv_into(buf):
            got += n
        t.join()
        a.close()
        b.close()
        assert got == size

    raw()  # warm-up
    raw_rate = rate(size / MiB, raw)
    row(f"Python server -> client stream {size // MiB} MiB", ours_rate, raw_rate, "MiB/s", ">= 0.5x of socketpair")


def main() -> None:
    parser = argparse.ArgumentParser(description="RPC benchmarks (see module docstring)")
    parser.add_argument("--quick", action="store_true", help="fewer calls, 64 MiB volumes")
    opts = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench_rpc needs root to start libvirtd")
    n = 2000 if opts.quick else 10000
    size = (64 if opts.quick else 256) * MiB
    rp = load_remote_protocol()
    if LIBVIRT_PYTHON:
        print(f"skipping the libvirt-python peer: {LIBVIRT_PYTHON}")
    daemon = start_libvirtd()
    try:
        bench_calls(rp, daemon, n)
    finally:
        daemon.stop()
    storage = start_storage_daemon()
    try:
        bench_volumes(rp, storage, size)
    finally:
        storage.stop()
    bench_python_stream(rp, size)
    header = ("benchmark", "xdrgen", "peer", "ratio")
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(4)]
    for r in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths)))


if __name__ == "__main__":
    main()
