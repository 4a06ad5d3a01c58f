"""Blocking socket helpers shared by the sync transports: gathered writes, fd-aware reads."""

from __future__ import annotations

import array
import socket
from collections.abc import Sequence
from typing import Final, cast

from xdrgen.runtime.virnet.constants import NUM_FDS_MAX
from xdrgen.runtime.virnet.core import FdCarrier, OutBuffer, close_fds

#: Linux's IOV_MAX: most buffers one sendmsg takes.
_IOV_MAX: Final = 1024
_FD_SIZE: Final = array.array("i").itemsize
ANCILLARY_SIZE: Final = socket.CMSG_SPACE(NUM_FDS_MAX * _FD_SIZE)


def write_all(sock: socket.socket, buffers: Sequence[OutBuffer]) -> None:
    """Write every buffer in order with as few sendmsg calls as possible, no copies.

    An FdCarrier is sent as one zero byte with the fd attached (SCM_RIGHTS).
    """
    n = len(buffers)
    if n <= _IOV_MAX and FdCarrier not in map(type, buffers):
        _sendmsg_all(sock, cast("Sequence[bytes | memoryview]", buffers))  # the common case: one gathered write
        return
    i = 0
    while i < n:
        item = buffers[i]
        if isinstance(item, FdCarrier):
            fds = array.array("i", [item.fd])
            sock.sendmsg([b"\0"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)])
            i += 1
            continue
        j = i
        batch: list[bytes | memoryview] = []
        while j < n and len(batch) < _IOV_MAX:
            b = buffers[j]
            if isinstance(b, FdCarrier):
                break
            batch.append(b)
            j += 1
        _sendmsg_all(sock, batch)
        i = j


def _sendmsg_all(sock: socket.socket, batch: Sequence[bytes | memoryview]) -> None:
    """Send ``batch`` (no FdCarrier in it) completely; never mutates the caller's list."""
    while batch:
        sent = sock.sendmsg(batch)
        # Drop what went out; keep a view of a partly sent buffer.
        k = 0
        while k < len(batch) and sent >= len(batch[k]):
            sent -= len(batch[k])
            k += 1
        if k == len(batch):
            return
        rest = list(batch[k:])
        if sent:
            rest[0] = memoryview(rest[0])[sent:]
        batch = rest


def recv_into_with_fds(sock: socket.socket, buf: memoryview, want_fds: bool, flags: int = 0) -> tuple[int, list[int]]:
    """One read into ``buf``; with ``want_fds`` also collects SCM_RIGHTS fds."""
    if not want_fds:
        return sock.recv_into(buf, 0, flags), []
    nbytes, ancdata, _flags, _addr = sock.recvmsg_into([buf], ANCILLARY_SIZE, flags)
    fds: list[int] = []
    for level, ctype, data in ancdata:
        if level == socket.SOL_SOCKET and ctype == socket.SCM_RIGHTS:
            arr = array.array("i")
            arr.frombytes(data[: len(data) - len(data) % _FD_SIZE])
            fds.extend(arr)
    return nbytes, fds


__all__ = ["write_all", "recv_into_with_fds", "close_fds", "ANCILLARY_SIZE"]
