"""One call as the caller sees it: what the core's events mean for it (no I/O).

Both transports feed the core, hand its events to :func:`absorb` and, once the
conversation is done, ask :func:`outcome` for the value or the exception.  What
they decide alike about a transfer is here too: when the caller's cancel check
stops an upload (:func:`send_block`) or a download (:func:`cancel_if_asked`),
and how an upload whose source failed is abandoned (:func:`abandon_upload`).
The transports only say how they wait and write.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from xdrgen.runtime.codec import Codec
from xdrgen.runtime.errors import XdrError
from xdrgen.runtime.guestfs import events as ev
from xdrgen.runtime.guestfs.core import GuestfsCore, Phase
from xdrgen.runtime.guestfs.errors import (
    GuestfsCancelled,
    GuestfsError,
    GuestfsReplyDecodeError,
    GuestfsStateError,
)
from xdrgen.runtime.guestfs.framing import Buffer
from xdrgen.runtime.guestfs.transfer import CancelCheck, ProgressCallback

T = TypeVar("T")


@dataclass
class Conversation:
    """What one call has produced so far."""

    progress: ProgressCallback | None
    #: Takes each downloaded block (None: the transport collects them itself).
    sink: Callable[[bytes], object] | None = None
    #: A FileOut call: its OK reply is followed by the file's chunks.
    file_out: bool = False
    reply: ev.Reply | None = None
    error: GuestfsError | None = None
    cancelled: ev.TransferCancelled | None = None
    daemon_cancelled_upload: bool = False
    done: bool = False
    received: int = 0
    #: An exception raised by the caller's sink or callback, re-raised at the end.
    callback_error: BaseException | None = None
    #: The caller's cancel check for a transfer (None: only the daemon cancels).
    stop: CancelCheck | None = None
    #: This side has cancelled the download (the check is not asked again).
    cancel_sent: bool = False

    @property
    def upload_over(self) -> bool:
        """The daemon cancelled the upload or has already answered: send no more."""
        return self.daemon_cancelled_upload or self.done


def encode_args(codec: Codec[Any] | None, args: Any) -> bytes:
    """The call's encoded ``_args`` (nothing for a procedure without arguments)."""
    return codec.encode(args) if codec is not None else b""


def check_launch(events: list[ev.Event]) -> None:
    """Before its launch flag the daemon may send nothing else."""
    for event in events:
        if not isinstance(event, ev.Launched):
            raise GuestfsStateError(f"unexpected {type(event).__name__} before launch")


def send_block(core: GuestfsCore, conv: Conversation, block: Buffer) -> bool:
    """Queue one upload block, or the upload's cancel once the caller's check says so.

    False when nothing more is to be sent: cancelled by this side, or by the
    daemon (its cancel chunk is then already queued).  The transport flushes.
    """
    if conv.stop is not None and conv.stop():
        core.cancel_upload()
        return False
    return core.send_data(block)


def cancel_if_asked(core: GuestfsCore, conv: Conversation) -> bool:
    """Before each wait of a download: cancel it once the caller's check says so.

    Asked until it says so, and not after a failing sink or callback already
    cancelled.  True when a cancel was queued (the transport flushes it).
    """
    if conv.stop is None or conv.cancel_sent or conv.callback_error is not None or not conv.stop():
        return False
    core.cancel_download()
    conv.cancel_sent = True
    return True


def abandon_upload(core: GuestfsCore) -> bool:
    """After a local failure mid-upload (the source raised): cancel the upload so the
    daemon stays in step.  True when the transport should then flush and read the
    reply; False when the connection has already failed."""
    if core.failed is not None:
        return False
    if core.phase is Phase.UPLOADING:
        core.cancel_upload()
    return True


def absorb(core: GuestfsCore, events: list[ev.Event], conv: Conversation) -> list[bytes]:
    """Apply ``events`` to ``conv``; returns the downloaded blocks it has no sink for.

    A sink or progress callback that raises cancels the transfer (the core
    queues the cancel; the transport must flush) and is re-raised by outcome().
    """
    blocks: list[bytes] = []
    for event in events:
        if isinstance(event, ev.DownloadData):
            conv.received += len(event.data)
            if conv.callback_error is not None:
                continue
            if conv.sink is None:
                blocks.append(event.data)
                continue
            try:
                conv.sink(event.data)
            except Exception as exc:  # the caller's sink: cancel, then re-raise
                conv.callback_error = exc
                core.cancel_download()
        elif isinstance(event, ev.ProgressNotice):
            if conv.progress is not None and conv.callback_error is None:
                try:
                    conv.progress(event)
                except Exception as exc:
                    conv.callback_error = exc
                    if core.phase is Phase.DOWNLOADING:
                        core.cancel_download()
                    elif core.phase is Phase.UPLOADING:
                        core.cancel_upload()
        elif isinstance(event, ev.Reply):
            conv.reply = event
            conv.done = not conv.file_out
        elif isinstance(event, ev.ErrorReply):
            conv.error = event.error
            conv.done = True
        elif isinstance(event, ev.DownloadEnd):
            conv.done = True
        elif isinstance(event, ev.TransferCancelled):
            conv.cancelled = event
            conv.done = True
        elif isinstance(event, ev.UploadCancelledByDaemon):
            conv.daemon_cancelled_upload = True
        else:
            raise GuestfsStateError(f"unexpected {type(event).__name__} during a call")
    return blocks


def outcome(conv: Conversation, ret_codec: Codec[T] | None) -> T | None:
    """The decoded ``_ret`` value of a finished conversation, or its exception."""
    if conv.callback_error is not None:
        raise conv.callback_error
    if conv.error is not None:
        raise conv.error
    if conv.cancelled is not None:
        if conv.cancelled.by_daemon:
            raise GuestfsError("the daemon cancelled the file transfer")
        raise GuestfsCancelled("file transfer cancelled by this side")
    reply = conv.reply
    assert reply is not None
    if ret_codec is None:
        if reply.payload:
            raise GuestfsReplyDecodeError(
                f"reply to procedure {reply.proc} has {len(reply.payload)} payload bytes, expected none",
                reply.offset,
            )
        return None
    try:
        return ret_codec.decode(reply.payload)
    except XdrError as exc:
        where = reply.offset + exc.offset if exc.offset is not None else reply.offset
        raise GuestfsReplyDecodeError(f"reply to procedure {reply.proc}: {exc}", where) from exc


__all__ = [
    "Conversation",
    "abandon_upload",
    "absorb",
    "cancel_if_asked",
    "check_launch",
    "encode_args",
    "outcome",
    "send_block",
]
