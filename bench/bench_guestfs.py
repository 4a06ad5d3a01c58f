"""File-transfer throughput of the generated guestfs clients, against a bare socket, in one run.

    python bench/bench_guestfs.py [--quick] [--rounds R] [--size MIB]

Needs root (it starts Debian's guestfsd jailed as the tests do, from
tests/peers/guestfsd.py).  guestfsd serves one connection, so all three
clients share it, taking turns:

- the generated blocking client (``GuestfsClient.upload`` / ``download``);
- the generated asyncio client (``GuestfsAsyncClient.upload`` from the same
  bytes, ``download_iter`` summing the blocks' lengths);
- a bare socket loop: the call and the chunks packed with struct and sent with
  sendmsg straight from the caller's buffer; the download received with
  recv_into and its chunks parsed into one preallocated buffer.  No client
  library: what the daemon gives a minimal Python loop.  When a client comes
  out faster than it, the daemon (which writes and reads tmpfs through its own
  8 KiB chunks) is the limit and the difference is noise.

Each round uploads SIZE random bytes to /bench and downloads them again, the
clients in rotating order.  A warm-up round checks every client end to end: the
bytes each one uploads are read back by another, sha256 compared.  Prints rates
(median and min-max over the rounds) and each client's share of the bare
socket; asserts nothing about speed.  On a shared machine the figures are noisy:
compare the ratios of one run, and re-measure on a quiet machine.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import socket
import statistics
import struct
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(REPO / "tests")]

from peers.guestfsd import GuestfsDaemon, PeerUnavailable, start_guestfsd  # noqa: E402

from xdrgen.build.loader import load_generated  # noqa: E402
from xdrgen.frontend.options import FrontendOptions  # noqa: E402
from xdrgen.runtime.guestfs.aio import AsyncGuestfsConnection  # noqa: E402
from xdrgen.runtime.guestfs.constants import HEADER, LAUNCH_FLAG, MAX_CHUNK_SIZE, PROGRAM, PROTOCOL_VERSION  # noqa: E402
from xdrgen.runtime.guestfs.sync import GuestfsConnection  # noqa: E402

MiB = 1 << 20
GUESTFS_X = REPO.parent / "shared" / "protocols" / "guestfs" / "guestfs_protocol.x"
ANNOTATIONS = REPO / "protocols" / "annotations" / "guestfs-1.48.toml"
PROC_UPLOAD, PROC_DOWNLOAD = 66, 67
TARGET = "/bench"
WORD = struct.Struct(">I")
CHUNK_HEAD = struct.Struct(">IiI")  # length word, cancel, data length
IOV_MAX = 1024
TIMEOUT = 60.0


# ------------------------------------------------------------ bare socket


class BareSocket:
    """The protocol by hand on the shared connection (serials of its own)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.serial = 1 << 30

    def _call(self, proc: int) -> None:
        self.serial += 1
        path = TARGET.encode()
        args = WORD.pack(len(path)) + path + b"\0" * (-len(path) & 3)
        head = HEADER.pack(PROGRAM, PROTOCOL_VERSION, proc, 0, self.serial, 0, 0, 0)
        self.sock.sendall(WORD.pack(len(head) + len(args)) + head + args)

    def _recv_exactly(self, size: int) -> bytes:
        out = bytearray()
        while len(out) < size:
            block = self.sock.recv(size - len(out))
            if not block:
                raise ConnectionError("guestfsd closed the connection")
            out += block
        return bytes(out)

    def _reply(self) -> None:
        (length,) = WORD.unpack(self._recv_exactly(4))
        body = self._recv_exactly(length)
        status = HEADER.unpack_from(body)[7]
        if status != 0:
            raise RuntimeError(f"guestfsd refused the bare call: {body[HEADER.size:]!r}")

    def upload(self, data: memoryview) -> None:
        self._call(PROC_UPLOAD)
        frames: list[bytes | memoryview] = []
        for start in range(0, len(data), MAX_CHUNK_SIZE):
            piece = data[start : start + MAX_CHUNK_SIZE]
            frames.append(CHUNK_HEAD.pack(8 + len(piece), 0, len(piece)))  # 8192 needs no padding
            frames.append(piece)
        frames.append(CHUNK_HEAD.pack(8, 0, 0))
        while frames:
            batch = frames[:IOV_MAX]
            sent = self.sock.sendmsg(batch)
            done = 0
            while done < len(batch) and sent >= len(batch[done]):
                sent -= len(batch[done])
                done += 1
            del frames[:done]
            if sent:
                frames[0] = memoryview(frames[0])[sent:]
        self._reply()

    def download(self, out: bytearray) -> int:
        """Into ``out`` (preallocated); returns the byte count."""
        self._call(PROC_DOWNLOAD)
        self._reply()
        buf = bytearray(1 << 20)
        view = memoryview(buf)
        target = memoryview(out)
        have = pos = written = 0
        while True:
            while have - pos >= 12:
                length, _cancel, size = CHUNK_HEAD.unpack_from(buf, pos)
                end = pos + 4 + length
                if end > have:
                    break
                if size == 0:
                    return written
                target[written : written + size] = view[pos + 12 : pos + 12 + size]
                written += size
                pos = end
            if pos:  # keep the partial frame at the front
                buf[: have - pos] = buf[pos:have]
                have -= pos
                pos = 0
            got = self.sock.recv_into(view[have:])
            if not got:
                raise ConnectionError("guestfsd closed the connection mid-download")
            have += got


# ------------------------------------------------------------ the clients


class Clients:
    def __init__(self, gfc: Any, sock: socket.socket) -> None:
        self.gfc = gfc
        self.sock = sock
        self.sync = gfc.GuestfsClient(GuestfsConnection(sock, timeout=TIMEOUT, expect_launch=False))
        self.bare = BareSocket(sock)

    async def _aio(self, work: Callable[[Any], Any]) -> Any:
        conn = await AsyncGuestfsConnection.from_socket(self.sock.dup(), timeout=TIMEOUT, expect_launch=False)
        try:
            return await work(self.gfc.GuestfsAsyncClient(conn))
        finally:
            await conn.close()

    def upload(self, who: str, data: bytes) -> None:
        if who == "sync":
            self.sync.upload(data, TARGET)
        elif who == "asyncio":
            asyncio.run(self._aio(lambda g: g.upload(data, TARGET)))
        else:
            self.bare.upload(memoryview(data))

    def download(self, who: str, size: int, digest: Any = None) -> int:
        if who == "sync":
            if digest is None:
                return int(self.sync.download(TARGET, len))
            return int(self.sync.download(TARGET, digest.update))
        if who == "asyncio":

            async def consume(g: Any) -> int:
                total = 0
                async for view in g.download_iter(TARGET):
                    total += len(view)
                    if digest is not None:
                        digest.update(view)
                return total

            return int(asyncio.run(self._aio(consume)))
        out = bytearray(size)
        got = self.bare.download(out)
        if digest is not None:
            digest.update(memoryview(out)[:got])
        return got


def warm_up(clients: Clients, data: bytes, names: list[str]) -> None:
    """Each client uploads; the next one downloads and checks the sha256."""
    want = hashlib.sha256(data).hexdigest()
    for index, uploader in enumerate(names):
        reader = names[(index + 1) % len(names)]
        clients.upload(uploader, data)
        digest = hashlib.sha256()
        assert clients.download(reader, len(data), digest) == len(data)
        assert digest.hexdigest() == want, f"{uploader} -> {reader}: sha256 differs"


def measure(clients: Clients, data: bytes, names: list[str], rounds: int) -> dict[str, dict[str, list[float]]]:
    rates: dict[str, dict[str, list[float]]] = {n: {"upload": [], "download": []} for n in names}
    size = len(data)
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for who in order:
            start = time.perf_counter()
            clients.upload(who, data)
            rates[who]["upload"].append(size / MiB / (time.perf_counter() - start))
            start = time.perf_counter()
            got = clients.download(who, size)
            rates[who]["download"].append(size / MiB / (time.perf_counter() - start))
            assert got == size, f"{who} downloaded {got} bytes, not {size}"
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="2 rounds of 16 MiB")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--size", type=int, default=64, help="MiB per transfer (default 64)")
    args = parser.parse_args()
    rounds, size = (2, 16) if args.quick else (args.rounds, args.size)
    if os.geteuid() != 0:
        sys.exit("bench_guestfs needs root (guestfsd runs in a private mount namespace)")
    gfc = load_generated(GUESTFS_X, FrontendOptions(annotations=(ANNOTATIONS,)))
    data = os.urandom(size * MiB)
    try:
        daemon: GuestfsDaemon = start_guestfsd(f"{3 * size + 64}m")
    except PeerUnavailable as exc:
        sys.exit(f"guestfsd did not start: {exc}")
    try:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(TIMEOUT)
        sock.connect(daemon.socket_path)
        assert WORD.unpack(sock.recv(4))[0] == LAUNCH_FLAG
        clients = Clients(gfc, sock)
        names = ["bare socket", "sync", "asyncio"]
        warm_up(clients, data, names)
        rates = measure(clients, data, names, rounds)
        sock.close()
    finally:
        daemon.stop()
    print(f"guestfsd file transfers, {size} MiB each way, {rounds} rounds (medians, min-max), one connection")
    rows: list[tuple[str, ...]] = [("client", "upload MiB/s", "download MiB/s", "upload / bare", "download / bare")]
    bare = {k: statistics.median(v) for k, v in rates["bare socket"].items()}
    for who in names:
        cells = [who]
        for kind in ("upload", "download"):
            values = rates[who][kind]
            cells.append(f"{statistics.median(values):7.0f} ({min(values):.0f}-{max(values):.0f})")
        for kind in ("upload", "download"):
            cells.append(f"{statistics.median(rates[who][kind]) / bare[kind]:.2f}")
        rows.append(tuple(cells))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(text.ljust(w) for text, w in zip(r, widths)).rstrip())
    print("The machine is shared: read the ratios of one run; re-measure absolute rates on a quiet machine.")


if __name__ == "__main__":
    main()
