"""Upload a file into a stream and download a stream into a file, sparse-aware.

Uploads find data and holes with SEEK_DATA / SEEK_HOLE (holes are sent as
STREAM_HOLE on sparse streams, as zeros otherwise); downloads seek over holes
so the file keeps them.  Works with any stream object offering send /
send_hole / recv (the sync Stream); ``aio`` has async twins.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterator
from typing import Protocol

from xdrgen.runtime.virnet.core import Buffer

Progress = Callable[[int], None]
#: Size of the reused read buffer for uploads.
UPLOAD_BLOCK = 4 << 20


class HoleLike(Protocol):
    @property
    def length(self) -> int: ...


class SendStream(Protocol):
    sparse: bool

    def send(self, data: Buffer) -> None: ...
    def send_hole(self, length: int, flags: int = 0) -> None: ...


class RecvStream(Protocol):
    def recv(self, timeout: float | None = None) -> memoryview | HoleLike | None: ...


def file_extents(fd: int, size: int) -> Iterator[tuple[bool, int, int]]:
    """(is_data, offset, length) runs covering [0, size); one data run if SEEK_DATA is unsupported."""
    pos = 0
    while pos < size:
        try:
            data = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # only a hole remains
                yield False, pos, size - pos
                return
            if exc.errno in (errno.EINVAL, errno.EOPNOTSUPP):
                yield True, pos, size - pos
                return
            raise
        if data > pos:
            yield False, pos, min(data, size) - pos
        hole = min(os.lseek(fd, data, os.SEEK_HOLE), size)
        if hole > data:
            yield True, data, hole - data
        pos = max(hole, data)


def upload_file(stream: SendStream, path: str | os.PathLike[str], *, progress: Progress | None = None,
                block: int = UPLOAD_BLOCK) -> int:
    """Send the file's bytes (holes as holes on sparse streams); returns bytes covered.

    The caller finishes the stream afterwards.
    """
    buf = bytearray(block)
    view = memoryview(buf)
    zeros = memoryview(bytes(min(block, 1 << 20)))
    done = 0
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        for is_data, offset, length in file_extents(fd, size):
            if not is_data:
                if stream.sparse:
                    stream.send_hole(length)
                else:
                    left = length
                    while left:
                        n = min(left, len(zeros))
                        stream.send(zeros[:n])
                        left -= n
                done += length
                if progress:
                    progress(done)
                continue
            os.lseek(fd, offset, os.SEEK_SET)
            left = length
            while left:
                n = os.readv(fd, [view[: min(left, block)]])
                if n == 0:
                    raise OSError(errno.EIO, f"{path}: file shrank while uploading")
                stream.send(view[:n])  # written before send returns: the buffer can be reused
                left -= n
                done += n
                if progress:
                    progress(done)
    finally:
        os.close(fd)
    return done


def download_file(stream: RecvStream, path: str | os.PathLike[str], *, progress: Progress | None = None) -> int:
    """Write the stream's data into a new file, seeking over holes; returns its size.

    The caller finishes the stream afterwards.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    pos = 0
    try:
        while True:
            item = stream.recv()
            if item is None:
                break
            if isinstance(item, memoryview):
                view = item
                while view:
                    n = os.write(fd, view)
                    view = view[n:]
                pos += item.nbytes
            else:
                pos += item.length
                os.lseek(fd, pos, os.SEEK_SET)
            if progress:
                progress(pos)
        os.ftruncate(fd, pos)  # a trailing hole still sets the size
    finally:
        os.close(fd)
    return pos
