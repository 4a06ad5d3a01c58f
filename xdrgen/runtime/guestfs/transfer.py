"""What a caller may hand to a file transfer, made uniform for both transports.

FileIn (upload) sources: a bytes-like object, a path, a binary file (``read``)
or an iterable of bytes-like blocks.  FileOut (download) sinks: a bytearray
(extended), a path (written), a binary file (``write``) or a callable taking
each block.  Cancellation: a ``CancelToken``, any event with ``is_set()``
(``threading.Event``, ``asyncio.Event``) or a callable returning True.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Final, Protocol, Union, cast

from xdrgen.runtime.guestfs import events as ev
from xdrgen.runtime.guestfs.framing import Buffer

#: Upload block read from a file per round (32 chunks of 8 KiB, one gathered write).
UPLOAD_BLOCK: Final = 256 * 1024


class _Readable(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...


class _Writable(Protocol):
    def write(self, data: bytes, /) -> object: ...


class _Settable(Protocol):
    def is_set(self) -> bool: ...


PathLike = Union[str, "os.PathLike[str]"]
UploadSource = Union[Buffer, PathLike, _Readable, Iterable[Buffer]]
DownloadSink = Union[bytearray, PathLike, _Writable, Callable[[bytes], object]]
ProgressCallback = Callable[[ev.ProgressNotice], object]
CancelCheck = Callable[[], bool]
Cancel = Union[CancelCheck, _Settable]


class CancelToken:
    """Set once to cancel a transfer; safe to set from another thread or a signal handler."""

    __slots__ = ("_set",)

    def __init__(self) -> None:
        self._set = False

    def cancel(self) -> None:
        self._set = True

    def is_set(self) -> bool:
        return self._set

    def __bool__(self) -> bool:
        return self._set


def cancel_check(cancel: Cancel | None) -> CancelCheck | None:
    """A function that tells whether ``cancel`` has been requested."""
    if cancel is None:
        return None
    is_set = getattr(cancel, "is_set", None)
    if callable(is_set):
        return cast(CancelCheck, is_set)
    if callable(cancel):
        return cancel
    raise TypeError(f"cancel must be an event, a CancelToken or a callable, not {type(cancel).__name__}")


def is_path(value: object) -> bool:
    return isinstance(value, (str, os.PathLike))


def source_size(source: object) -> int | None:
    """How many bytes ``source`` will give, when that is known without reading it."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return memoryview(source).nbytes
    try:
        if is_path(source):
            return os.stat(cast(PathLike, source)).st_size
        fileno = getattr(source, "fileno", None)
        tell = getattr(source, "tell", None)
        if callable(fileno) and callable(tell):
            return max(os.fstat(fileno()).st_size - int(tell()), 0)
    except (OSError, ValueError):
        pass
    return None


@contextmanager
def source_blocks(source: UploadSource) -> Iterator[Iterator[Buffer]]:
    """The upload data in blocks, whatever form the caller handed in (a path is opened)."""
    if is_path(source):
        with open(cast(PathLike, source), "rb") as handle:
            yield _read_blocks(handle)
        return
    yield _blocks(source)


def _read_blocks(handle: _Readable) -> Iterator[Buffer]:
    while block := handle.read(UPLOAD_BLOCK):
        yield block


def _blocks(source: UploadSource) -> Iterator[Buffer]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        view = memoryview(source).cast("B")
        for start in range(0, view.nbytes, UPLOAD_BLOCK):
            yield view[start : start + UPLOAD_BLOCK]
        return
    read: Callable[[int], bytes] | None = getattr(source, "read", None)
    if read is not None:
        yield from _read_blocks(cast(_Readable, source))
        return
    for item in cast(Iterable[Buffer], source):
        if not isinstance(item, (bytes, bytearray, memoryview)):
            raise TypeError(f"upload blocks must be bytes-like, not {type(item).__name__}")
        if len(item):
            yield item


@contextmanager
def sink_writer(sink: DownloadSink) -> Iterator[Callable[[bytes], object]]:
    """A function taking each received block (a path is opened for writing, then closed)."""
    if is_path(sink):
        with open(cast(PathLike, sink), "wb") as handle:
            yield handle.write
        return
    if isinstance(sink, bytearray):
        yield sink.extend
    elif callable(sink):
        yield sink
    elif callable(getattr(sink, "write", None)):
        yield cast(_Writable, sink).write
    else:
        raise TypeError(f"a download sink is a path, a bytearray, a file or a callable, not {type(sink).__name__}")


__all__ = [
    "UPLOAD_BLOCK", "UploadSource", "DownloadSink", "ProgressCallback", "CancelCheck", "Cancel", "CancelToken",
    "cancel_check", "source_blocks", "source_size", "sink_writer", "is_path",
]
