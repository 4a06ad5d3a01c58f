"""The asyncio twins of files.upload_file and files.download_file (aio re-exports them)."""

from __future__ import annotations

import asyncio
import os
from typing import Final

from xdrgen.runtime.virnet.aio_stream import AsyncStream
from xdrgen.runtime.virnet.files import UPLOAD_BLOCK, FileSink, Progress, upload_pieces
from xdrgen.runtime.virnet.streams import END, Hole

#: Stream data gathered into one file write by ``download_file``.
_WRITE_BATCH: Final = 4 << 20


async def upload_file(stream: AsyncStream, path: str | os.PathLike[str], *, progress: Progress | None = None,
                      block: int = UPLOAD_BLOCK) -> int:
    """The asyncio twin of ``files.upload_file``: file reads run in the default executor."""
    loop = asyncio.get_running_loop()
    done = 0
    with upload_pieces(path, stream.sparse, block) as pieces:
        while (piece := await loop.run_in_executor(None, next, pieces, None)) is not None:
            if isinstance(piece, int):
                await stream.send_hole(piece)
                done += piece
            else:
                await stream.send(piece)  # written before send returns: the buffer can be reused
                done += piece.nbytes
            if progress:
                progress(done)
    return done


async def download_file(stream: AsyncStream, path: str | os.PathLike[str], *,
                        progress: Progress | None = None) -> int:
    """The asyncio twin of ``files.download_file``: file writes run in the default executor."""
    loop = asyncio.get_running_loop()
    with FileSink(path) as sink:
        while True:
            item = await stream.recv()
            if item is None:
                break
            batch: list[memoryview | Hole] = [item]
            size = item.nbytes if isinstance(item, memoryview) else 0
            # Whatever already arrived goes out in the same write.
            while size < _WRITE_BATCH and stream.queued.head() not in (None, END):
                more = await stream.recv()
                assert more is not None
                batch.append(more)
                size += more.nbytes if isinstance(more, memoryview) else 0
            await loop.run_in_executor(None, sink.put_all, batch)
            if progress:
                progress(sink.position)
        await loop.run_in_executor(None, sink.finish)
    return sink.position


__all__ = ["upload_file", "download_file"]
