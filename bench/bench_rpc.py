"""RPC throughput of the generated libvirt client and server, against peers in the same run.

    python bench/bench_rpc.py [--quick] [--rounds R]

Needs root (it starts its own libvirtd and storage daemon, from
tests/peers/daemons.py).  Compares, on the same daemons in the same run:

- getVersion calls/s, sequential, generated sync client vs libvirt-python
  (alternating rounds, medians);
- getVersion calls/s pipelined: generated asyncio client with 32 calls in
  flight vs libvirt-python from 32 threads (3 alternating rounds, medians);
- 256 MiB volume download and upload (storage daemon), generated client vs
  libvirt-python's virStream (one warm-up transfer each, then R rounds in
  rotating order, medians);
- a stream from the generated Python server (its own process, as a real
  server is) to the generated Python client over a unix socket vs a raw
  socketpair moving the same bytes (one warm-up transfer each first).

Each comparison with libvirtd also measures the daemon's own ceiling, in the
same rounds: a bare socket loop (frames packed with struct, no client library)
doing the same work -- getVersion with 32 calls in flight, a download received
into one preallocated buffer, an upload sent with sendmsg straight from the
caller's buffer.  "xdrgen at X of the bare socket" reads our client against
it; "ceiling / libvirt-python" is the most any client library could gain over
libvirt-python on that daemon.

Volume data is random; the warm-up transfers check it end to end: each upload
(ours, libvirt-python's, the bare socket's) goes to a freshly created volume
and is read back by a different client, whose sha256 must match.  Every timed
transfer checks its byte count.  Otherwise prints a table of rates (median and
min-max over the rounds) and ratios, and asserts nothing about speed.  A peer
that cannot be imported (libvirt-python) is skipped, saying so.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
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
from peers.daemons import Daemon, PeerUnavailable, start_libvirtd, start_storage_daemon  # noqa: E402

from xdrgen.runtime.virnet import VirNetError  # noqa: E402

MiB = 1 << 20
PIPELINE = 32
#: Alternating rounds of the sequential getVersion comparison.
SEQ_ROUNDS = 5
#: Alternating rounds of the pipelined getVersion comparison.
PIPE_ROUNDS = 3
#: Default rounds of each volume transfer per client (--rounds).
VOL_ROUNDS = 5

# Wire facts of libvirt's RPC (every frame: length counting itself + 24-byte header).
HEADER = struct.Struct(">IIIiiII")  # length, prog, vers, proc, type, serial, status
PREFIX = HEADER.size
CALL, REPLY, STREAM = 0, 1, 3
OK, ERROR, CONTINUE = 0, 1, 2
#: Most stream data one frame may carry.
CHUNK = 262120
#: A bare socket gives up after this long without progress (never hangs).
SOCKET_TIMEOUT = 60

try:
    import libvirt as _libvirt  # type: ignore[import-untyped]

    libvirt: Any = _libvirt
    LIBVIRT_PYTHON: str | None = None
    PEER_ERRORS: tuple[type[Exception], ...] = (_libvirt.libvirtError,)
except ImportError as exc:  # pragma: no cover - depends on the machine
    libvirt = None
    PEER_ERRORS = ()
    LIBVIRT_PYTHON = (
        f"libvirt-python not importable ({exc}); pip install libvirt-python"
    )


class BenchError(Exception):
    """A daemon reply or transfer that is not what the benchmark expected."""


rows: list[tuple[str, str, str, str]] = []
notes: list[str] = []


def cell(samples: list[float], unit: str) -> str:
    """Median of the samples, with their min-max range when there are several."""
    text = f"{statistics.median(samples):,.0f} {unit}"
    if len(samples) > 1:
        text += f" ({min(samples):,.0f}\u2013{max(samples):,.0f})"
    return text


def row(
    what: str,
    ours: list[float],
    theirs: list[float] | None,
    unit: str,
    target: str,
) -> None:
    if theirs:
        ratio = (
            f"{statistics.median(ours) / statistics.median(theirs):.2f}x"
            f" (target {target})"
        )
        peer = cell(theirs, unit)
    else:
        ratio, peer = "peer skipped", "-"
    rows.append((what, cell(ours, unit), peer, ratio))


def ceiling_row(
    what: str,
    ceiling: list[float],
    ours: list[float],
    theirs: list[float] | None,
    unit: str,
) -> None:
    """A bare-socket ceiling: ours against it, and it against libvirt-python."""
    top = statistics.median(ceiling)
    rows.append(
        (
            f"({what}: bare socket ceiling)",
            cell(ceiling, unit),
            "-",
            f"xdrgen at {statistics.median(ours) / top:.2f} of the bare socket",
        )
    )
    if theirs:
        notes.append(
            f"{what}: ceiling / libvirt-python = {top / statistics.median(theirs):.2f}x:"
            " a client library can be at most this much faster than libvirt-python"
            " on this daemon"
        )


def rate(n: float, fn: Callable[[], None]) -> float:
    start = time.perf_counter()
    fn()
    return n / (time.perf_counter() - start)


def rotated(items: list[Any], k: int) -> list[Any]:
    """``items`` starting at position k (mod len): each round leads with another client."""
    k %= len(items)
    return items[k:] + items[:k]


def libvirt_uri(daemon: Daemon, driver: str) -> str:
    return f"{driver}+unix:///{'default' if driver == 'test' else 'session'}?socket={daemon.socket_path}"


# ------------------------------------------------------------ bare socket


def xdr_string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data + b"\0" * (-len(data) % 4)


def error_text(payload: bytes) -> str:
    """The code and message of a remote_error payload (code, domain, remote_string message, ...)."""
    try:
        code, _domain, present = struct.unpack_from(">iiI", payload, 0)
        message = "(no message)"
        if present:
            (n,) = struct.unpack_from(">I", payload, 12)
            message = payload[16 : 16 + n].decode("utf-8", "replace")
        return f"error {code}: {message}"
    except struct.error:
        return f"undecodable {len(payload)}-byte error"


class BareSocket:
    """A libvirt connection driven by hand: a plain unix socket, frames packed with struct.

    Only what the ceilings need: CONNECT_OPEN, one call at a time, getVersion
    pipelined, one volume download or upload at a time.  Anything unexpected
    from the daemon raises BenchError; a daemon that stops answering makes a
    socket operation fail after SOCKET_TIMEOUT s (kernel timeouts, so the
    timed loops pay no extra system call).
    """

    def __init__(self, rp: Any, path: str, uri: str) -> None:
        self.prog: int = rp.REMOTE_PROGRAM
        self.vers: int = rp.REMOTE_PROTOCOL_VERSION
        self.procs: Any = rp.remote_procedure
        self.serial = 0
        self.sock = socket.socket(socket.AF_UNIX)
        timeout = struct.pack("ll", SOCKET_TIMEOUT, 0)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeout)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeout)
        try:
            self.sock.connect(path)
            # remote_connect_open_args: remote_string name (present), flags
            name = (
                struct.pack(">I", 1) + xdr_string(uri.encode()) + struct.pack(">I", 0)
            )
            self.call(self.procs.REMOTE_PROC_CONNECT_OPEN, name)
        except BaseException:
            self.sock.close()
            raise

    def close(self) -> None:
        self.sock.close()

    def frame(
        self, proc: int, mtype: int, serial: int, status: int, payload: bytes = b""
    ) -> bytes:
        return (
            HEADER.pack(
                PREFIX + len(payload), self.prog, self.vers, proc, mtype, serial, status
            )
            + payload
        )

    def next_serial(self) -> int:
        self.serial += 1
        return self.serial

    def _exact(self, n: int) -> bytes:
        data = bytearray(n)
        view = memoryview(data)
        got = 0
        while got < n:
            k = self.sock.recv_into(view[got:])
            if not k:
                raise BenchError("bare socket: the daemon closed the connection")
            got += k
        return bytes(data)

    def read_frame(self) -> tuple[int, int, int, int, bytes]:
        """The next frame: (proc, type, serial, status, payload)."""
        length, prog, _vers, proc, mtype, serial, status = HEADER.unpack(
            self._exact(PREFIX)
        )
        if length < PREFIX or length > 32 * MiB:
            raise BenchError(f"bare socket: frame length {length}")
        if prog != self.prog:
            raise BenchError(f"bare socket: frame for program {prog:#x}")
        return proc, mtype, serial, status, self._exact(length - PREFIX)

    def call(self, proc: int, args: bytes) -> bytes:
        """One call, waiting for its reply; the reply's payload."""
        serial = self.next_serial()
        self.sock.sendall(self.frame(proc, CALL, serial, OK, args))
        rproc, mtype, rserial, status, payload = self.read_frame()
        if (rproc, mtype, rserial) != (proc, REPLY, serial):
            raise BenchError(
                f"bare socket: expected the reply to procedure {proc} serial {serial},"
                f" got type {mtype} procedure {rproc} serial {rserial}"
            )
        if status != OK:
            raise BenchError(
                f"bare socket: procedure {proc} failed: {error_text(payload)}"
            )
        return payload

    def await_finish(self, proc: int, serial: int) -> None:
        """The daemon's confirmation of our finish: an empty STREAM/OK (or a REPLY/OK)."""
        rproc, mtype, rserial, status, payload = self.read_frame()
        if rproc != proc or rserial != serial or mtype not in (STREAM, REPLY):
            raise BenchError(
                f"bare socket: expected the finish confirmation of serial {serial},"
                f" got type {mtype} procedure {rproc} serial {rserial}"
            )
        if status != OK:
            raise BenchError(f"bare socket: stream failed: {error_text(payload)}")

    def pipelined(self, n: int) -> float:
        """getVersion calls/s with PIPELINE calls kept in flight (n calls)."""
        proc = self.procs.REMOTE_PROC_CONNECT_GET_VERSION
        base = self.serial + 1
        self.serial += n
        reply = PREFIX + 8  # getVersion reply: unsigned hyper
        buf = bytearray(1 << 20)
        s = self.sock
        start = time.perf_counter()
        sent = min(PIPELINE, n)
        s.sendall(b"".join(self.frame(proc, CALL, base + i, OK) for i in range(sent)))
        done = pending = 0
        while done < n:
            got = s.recv_into(buf)
            if not got:
                raise BenchError("bare socket: the daemon closed the connection")
            k, pending = divmod(pending + got, reply)
            done += k
            more = min(k, n - sent)
            if more:
                s.sendall(
                    b"".join(
                        self.frame(proc, CALL, base + sent + i, OK) for i in range(more)
                    )
                )
                sent += more
        elapsed = time.perf_counter() - start
        # Replies were counted by size only: the last one read must be a
        # getVersion OK for one of our serials (workers may reorder replies).
        last = HEADER.unpack_from(buf, got - reply) if got >= reply else None
        if pending or (
            last is not None
            and (
                last[:5] + last[6:] != (reply, self.prog, self.vers, proc, REPLY, OK)
                or not base <= last[5] < base + n
            )
        ):
            raise BenchError(
                f"bare socket: unexpected getVersion replies (last {last})"
            )
        return n / elapsed

    def download(self, args: bytes, buf: memoryview) -> list[tuple[int, int]]:
        """One STORAGE_VOL_DOWNLOAD received whole into ``buf``; where each data payload lies."""
        proc = self.procs.REMOTE_PROC_STORAGE_VOL_DOWNLOAD
        serial = self.next_serial()
        self.sock.sendall(self.frame(proc, CALL, serial, OK, args))
        recv_into = self.sock.recv_into
        unpack = HEADER.unpack_from
        spans: list[tuple[int, int]] = []
        pos = scan = 0  # bytes received; start of the next frame
        replied = False
        while True:
            while pos - scan >= PREFIX:
                length, _prog, _vers, _proc, mtype, mserial, status = unpack(buf, scan)
                if mserial != serial:
                    raise BenchError(f"bare socket: frame for serial {mserial}")
                if length > PREFIX and mtype == STREAM and status == CONTINUE:
                    spans.append((scan + PREFIX, scan + length))
                    scan += length  # data: skip it, received or not yet
                    continue
                if pos - scan < length:
                    break
                body = bytes(buf[scan + PREFIX : scan + length])
                scan += length
                if mtype == REPLY and status == OK and not replied:
                    replied = True
                elif mtype == STREAM and status in (CONTINUE, OK) and not body:
                    # End of data (libvirtd sends an empty CONTINUE): finish.
                    if not replied or pos != scan:
                        raise BenchError("bare socket: download ended out of order")
                    self.sock.sendall(self.frame(proc, STREAM, serial, OK))
                    self.await_finish(proc, serial)
                    return spans
                else:
                    raise BenchError(
                        f"bare socket: download got type {mtype} status {status}:"
                        f" {error_text(body) if status == ERROR else len(body)}"
                    )
            if pos == len(buf):
                raise BenchError("bare socket: download larger than its buffer")
            got = recv_into(buf[pos:])
            if not got:
                raise BenchError("bare socket: the daemon closed the connection")
            pos += got

    def upload(self, args: bytes, data: memoryview) -> None:
        """One STORAGE_VOL_UPLOAD of ``data``, sent with sendmsg straight from it."""
        proc = self.procs.REMOTE_PROC_STORAGE_VOL_UPLOAD
        self.call(proc, args)
        serial = self.serial
        sendmsg = self.sock.sendmsg
        full = HEADER.pack(
            PREFIX + CHUNK, self.prog, self.vers, proc, STREAM, serial, CONTINUE
        )
        for off in range(0, len(data), CHUNK):
            piece = data[off : off + CHUNK]
            head = full
            if len(piece) != CHUNK:
                head = HEADER.pack(
                    PREFIX + len(piece),
                    self.prog,
                    self.vers,
                    proc,
                    STREAM,
                    serial,
                    CONTINUE,
                )
            sent = sendmsg([head, piece])
            if sent != PREFIX + len(piece):  # short write (rare on unix sockets)
                if sent < PREFIX:
                    self.sock.sendall(head[sent:])
                    sent = PREFIX
                self.sock.sendall(piece[sent - PREFIX :])
        self.sock.sendall(self.frame(proc, STREAM, serial, OK))
        self.await_finish(proc, serial)


def vol_args(vol: Any, offset: int, length: int) -> bytes:
    """remote_storage_vol_{download,upload}_args: vol {pool, name, key}, offset, length, flags."""
    return (
        xdr_string(vol.pool.encode())
        + xdr_string(vol.name.encode())
        + xdr_string(vol.key.encode())
        + struct.pack(">QQI", offset, length, 0)
    )


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
    contenders: dict[str, Callable[[], None]] = {"ours": ours_seq}
    if libvirt is not None:
        conn = libvirt.open(libvirt_uri(daemon, "test"))
        for _ in range(200):
            conn.getVersion()

        def theirs_seq() -> None:
            for _ in range(n):
                conn.getVersion()

        contenders["theirs"] = theirs_seq

    # Rounds alternate between the two clients, and which one goes first
    # alternates too; each reports its median, so a burst of other load on the
    # machine (or a warm-up effect) hits both alike.
    rounds: dict[str, list[float]] = {name: [] for name in contenders}
    order = list(contenders)
    for _ in range(SEQ_ROUNDS):
        for name in order:
            rounds[name].append(rate(n, contenders[name]))
        order.reverse()
    ours_rounds = rounds["ours"]
    theirs_rounds = rounds.get("theirs", [])
    client.close()
    row(
        f"getVersion sequential (median of {SEQ_ROUNDS})",
        ours_rounds,
        theirs_rounds or None,
        "calls/s",
        ">= 1.0x",
    )
    bench_pipelined(rp, daemon, n, conn)
    if conn is not None:
        conn.close()


def bench_pipelined(rp: Any, daemon: Daemon, n: int, conn: Any) -> None:
    """getVersion with PIPELINE in flight: ours, libvirt-python, bare socket, rotating rounds."""
    ours: list[float] = []
    theirs: list[float] = []
    bare_rates: list[float] = []
    with asyncio.Runner() as runner:
        client = runner.run(rp.RemoteAsyncClient.connect_unix(daemon.socket_path))
        runner.run(client.connect_open(name=daemon.uri))

        async def burst(k: int) -> float:
            async def worker() -> None:
                for _ in range(k):
                    await client.connect_get_version()

            start = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(PIPELINE)))
            return k * PIPELINE / (time.perf_counter() - start)

        def per_thread(k: int) -> None:
            for _ in range(k):
                conn.getVersion()

        def threads(k: int) -> float:
            start = time.perf_counter()
            list(pool.map(per_thread, [k] * PIPELINE))
            return k * PIPELINE / (time.perf_counter() - start)

        bare = BareSocket(rp, daemon.socket_path, daemon.uri)
        pool = ThreadPoolExecutor(PIPELINE)
        try:
            k = n * 4 // PIPELINE
            runs: list[Callable[[], None]] = [
                lambda: ours.append(runner.run(burst(k))),
                lambda: bare_rates.append(bare.pipelined(k * PIPELINE)),
            ]
            runner.run(burst(20))  # warm-ups
            bare.pipelined(20 * PIPELINE)
            if conn is not None:
                threads(20)
                runs.append(lambda: theirs.append(threads(n * 2 // PIPELINE)))
            for r in range(PIPE_ROUNDS):
                for run in rotated(runs, r):
                    run()
        finally:
            pool.shutdown()
            bare.close()
            runner.run(client.close())
    row(
        f"getVersion pipelined ({PIPELINE} in flight, median of {PIPE_ROUNDS})",
        ours,
        theirs or None,
        "calls/s",
        ">= 2x",
    )
    ceiling_row(
        f"getVersion, {PIPELINE} in flight", bare_rates, ours, theirs or None, "calls/s"
    )


# ------------------------------------------------------------------ volumes


def bench_volumes(rp: Any, daemon: Daemon, size: int, rounds: int) -> None:
    client = rp.RemoteClient.connect_unix(daemon.socket_path)
    client.connect_open(name=daemon.uri)
    pool = client.storage_pool_create_xml(
        f"<pool type='dir'><name>bench</name><target><path>{daemon.extra['pool_dir']}</path></target></pool>"
    ).pool
    xml = (
        f"<volume><name>bench.img</name><capacity>{size}</capacity><allocation>0</allocation>"
        "<target><format type='raw'/></target></volume>"
    )
    vol = client.storage_vol_create_xml(pool, xml).vol
    payload = os.urandom(size)
    want = hashlib.sha256(payload).hexdigest()
    data = memoryview(payload)
    block = 4 * MiB
    bare = BareSocket(rp, daemon.socket_path, daemon.uri)
    # Room for the whole download and a frame prefix per 4 KiB (libvirtd sends ~256 KiB frames).
    bare_buf = memoryview(bytearray(size + (size // 4096 + 64) * PREFIX))

    def recreate_volume() -> None:
        """An empty volume again, so a read-back proves the last upload wrote."""
        nonlocal vol
        client.storage_vol_delete(vol, 0)
        new = client.storage_vol_create_xml(pool, xml).vol
        if (new.pool, new.name, new.key) != (vol.pool, vol.name, vol.key):
            raise BenchError(f"recreated volume differs: {new} vs {vol}")
        vol = new

    def checked(who: str, got: int, digest: Any) -> None:
        if got != size:
            raise BenchError(f"{who}: {got} bytes, expected {size}")
        if digest is not None and digest.hexdigest() != want:
            raise BenchError(f"{who}: sha256 of the volume differs from the upload")

    def ours_up() -> None:
        _, st = client.storage_vol_upload(vol, 0, size)
        for off in range(0, size, block):
            st.send(data[off : off + block])
        st.finish()

    def ours_down(digest: Any = None) -> None:
        _, st = client.storage_vol_download(vol, 0, 0)
        got = 0
        for chunk in st:
            got += len(chunk)
            if digest is not None:
                digest.update(chunk)
        st.finish()
        checked("xdrgen download", got, digest)

    def bare_up() -> None:
        bare.upload(vol_args(vol, 0, size), data)

    def bare_down(digest: Any = None) -> None:
        spans = bare.download(vol_args(vol, 0, 0), bare_buf)
        got = sum(end - start for start, end in spans)
        if digest is not None:
            for start, end in spans:
                digest.update(bare_buf[start:end])
        checked("bare socket download", got, digest)

    # (name, upload, download); results per name and direction.
    clients: list[tuple[str, Callable[[], None], Callable[..., None]]] = [
        ("xdrgen", ours_up, ours_down),
        ("bare", bare_up, bare_down),
    ]
    conn = None
    if libvirt is not None:
        conn = libvirt.open(libvirt_uri(daemon, "storage"))
        lv_vol = conn.storagePoolLookupByName("bench").storageVolLookupByName(
            "bench.img"
        )

        def theirs_up() -> None:
            st = conn.newStream(0)
            lv_vol.upload(st, 0, size, 0)
            sent = 0
            while sent < size:  # libvirt-python's send takes bytes only
                sent += st.send(payload[sent : sent + 262144])
            st.finish()

        def theirs_down(digest: Any = None) -> None:
            st = conn.newStream(0)
            lv_vol.download(st, 0, 0, 0)
            got = 0
            while True:
                chunk = st.recv(262144)
                if not chunk:
                    break
                got += len(chunk)
                if digest is not None:
                    digest.update(chunk)
            st.finish()
            checked("libvirt-python download", got, digest)

        clients.insert(1, ("libvirt-python", theirs_up, theirs_down))

    try:
        # Warm-up, checked end to end: each client's upload, into an empty
        # volume, is read back by the next client in the list.
        for i, (_name, up, _down) in enumerate(clients):
            recreate_volume()
            up()
            clients[(i + 1) % len(clients)][2](hashlib.sha256())
        up_rates: dict[str, list[float]] = {name: [] for name, _, _ in clients}
        down_rates: dict[str, list[float]] = {name: [] for name, _, _ in clients}
        for r in range(rounds):
            for name, _up, down in rotated(clients, r):
                down_rates[name].append(rate(size / MiB, down))
            for name, up, _down in rotated(clients, r + 1):
                up_rates[name].append(rate(size / MiB, up))
    finally:
        bare.close()
        if conn is not None:
            conn.close()
        client.close()
    theirs_d = down_rates.get("libvirt-python")
    theirs_u = up_rates.get("libvirt-python")
    what = f"{size // MiB} MiB, median of {rounds}"
    row(f"volume download ({what})", down_rates["xdrgen"], theirs_d, "MiB/s", ">= 1.5x")
    ceiling_row(
        "volume download", down_rates["bare"], down_rates["xdrgen"], theirs_d, "MiB/s"
    )
    row(f"volume upload ({what})", up_rates["xdrgen"], theirs_u, "MiB/s", ">= 1.0x")
    ceiling_row(
        "volume upload", up_rates["bare"], up_rates["xdrgen"], theirs_u, "MiB/s"
    )


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
    server = ctx.Process(
        target=serve_download, args=(rp, path, size, ready), daemon=True
    )
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
        if got != size:
            raise BenchError(f"Python server stream: {got} bytes, expected {size}")

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
        if got != size:
            raise BenchError(f"socketpair: {got} bytes, expected {size}")

    raw()  # warm-up
    raw_rate = rate(size / MiB, raw)
    row(
        f"Python server -> client stream {size // MiB} MiB",
        [ours_rate],
        [raw_rate],
        "MiB/s",
        ">= 0.5x of socketpair",
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description="RPC benchmarks (see module docstring)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="fewer calls, 64 MiB volumes"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=VOL_ROUNDS,
        help=f"timed volume transfers per client and direction (default {VOL_ROUNDS})",
    )
    opts = parser.parse_args()
    if opts.rounds < 1:
        parser.error("--rounds must be at least 1")
    if os.geteuid() != 0:
        sys.exit("bench_rpc needs root to start libvirtd")
    n = 2000 if opts.quick else 10000
    size = (64 if opts.quick else 256) * MiB
    if LIBVIRT_PYTHON:
        print(f"skipping the libvirt-python peer: {LIBVIRT_PYTHON}")
    started = time.perf_counter()
    # What a daemon, a peer or a transfer can fail with: one line, no traceback.
    failures: tuple[type[BaseException], ...] = (
        BenchError,
        OSError,
        VirNetError,
        PeerUnavailable,
        *PEER_ERRORS,
    )
    try:
        rp = load_remote_protocol()  # InputsMissing is an OSError
        daemon = start_libvirtd()
        try:
            bench_calls(rp, daemon, n)
        finally:
            daemon.stop()
        storage = start_storage_daemon()
        try:
            bench_volumes(rp, storage, size, opts.rounds)
        finally:
            storage.stop()
        bench_python_stream(rp, size)
    except failures as exc:
        sys.exit(f"bench_rpc: {type(exc).__name__}: {exc}")
    header = ("benchmark", "xdrgen", "peer", "ratio")
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(4)]
    for r in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(text.ljust(w) for text, w in zip(r, widths)).rstrip())
    for note in notes:
        print(note)
    print(
        f"(ranges are min\u2013max over the rounds; {time.perf_counter() - started:.0f} s)"
    )


if __name__ == "__main__":
    main()
