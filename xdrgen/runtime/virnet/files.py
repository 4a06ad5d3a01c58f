"""Upload a file into a stream and download a stream into a file, sparse-aware.

Uploads find data and holes with SEEK_DATA / SEEK_HOLE (holes are sent as
STREAM_HOLE on sparse streams, as zeros otherwise); downloads seek over holes
so the file keeps them.  Works with any stream object offering send /
send_hole / recv (the sync Stream); ``aio.upload_file`` / ``aio.download_file``
are the async twins, built on the same ``upload_pieces`` and ``FileSink``.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Callable, Iterable, Iterator
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


@contextlib.contextmanager
def upload_pieces(path: str | os.PathLike[str], sparse: bool, block: int = UPLOAD_BLOCK) -> Iterator[Iterator[memoryview | int]]:
    """What to send for the file at ``path``, in order: data (a memoryview) or a hole (its length).

    A data view points into one reused buffer: send it before taking the next
    piece.  On streams that are not sparse, holes come as views of zeros.
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        yield _pieces(fd, path, sparse, block)
    finally:
        os.close(fd)


def _pieces(fd: int, path: str | os.PathLike[str], sparse: bool, block: int) -> Iterator[memoryview | int]:
    view = memoryview(bytearray(block))
    zeros = memoryview(bytes(min(block, 1 << 20)))
    for is_data, offset, length in file_extents(fd, os.fstat(fd).st_size):
        if not is_data:
            if sparse:
                yield length
            else:
                for start in range(0, length, len(zeros)):
                    yield zeros[: min(len(zeros), length - start)]
            continue
        os.lseek(fd, offset, os.SEEK_SET)
        left = length
        while left:
            n = os.readv(fd, [view[: min(left, block)]])
            if n == 0:
                raise OSError(errno.EIO, f"{os.fspath(path)}: file shrank while uploading")
            yield view[:n]
            left -= n


def upload_file(stream: SendStream, path: str | os.PathLike[str], *, progress: Progress | None = None,
                block: int = UPLOAD_BLOCK) -> int:
    """Send the file's bytes (holes as holes on sparse streams); returns bytes covered.

    The caller finishes the stream afterwards.
    """
    done = 0
    with upload_pieces(path, stream.sparse, block) as pieces:
        for piece in pieces:
            if isinstance(piece, int):
                stream.send_hole(piece)
                done += piece
            else:
                stream.send(piece)  # written before send returns: the buffer can be reused
                done += piece.nbytes
            if progress:
                progress(done)
    return done


class FileSink:
    """Writes received stream items into a new file, seeking over holes (a context manager)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        #: Bytes of the file covered so far (data and holes).
        self.position = 0

    def put(self, item: memoryview | HoleLike) -> None:
        if isinstance(item, memoryview):
            view = item
            while view:
                n = os.write(self._fd, view)
                view = view[n:]
            self.position += item.nbytes
        else:
            self.position += item.length
            os.lseek(self._fd, self.position, os.SEEK_SET)

    def put_all(self, items: Iterable[memoryview | HoleLike]) -> None:
        for item in items:
            self.put(item)

    def finish(self) -> None:
        os.ftruncate(self._fd, self.position)  # a trailing hole still sets the size

    def close(self) -> None:
        os.close(self._fd)

    def __enter__(self) -> FileSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def download_file(stream: RecvStream, path: str | os.PathLike[str], *, progress: Progress | None = None) -> int:
    """Write the stream's data into a new file, seeking over holes; returns its size.

    The caller finishes the stream afterwards.
    """
    with FileSink(path) as sink:
        while (item := stream.recv()) is not None:
            sink.put(item)
            if progress:
                progress(sink.position)
        sink.finish()
    return sink.position
