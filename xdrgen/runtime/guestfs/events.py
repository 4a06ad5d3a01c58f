"""What the sans-IO core reports after reading bytes from the daemon."""

from __future__ import annotations

from dataclasses import dataclass

from xdrgen.runtime.guestfs.errors import GuestfsError


@dataclass(frozen=True, slots=True)
class Launched:
    """The daemon sent its launch flag: calls may start."""


@dataclass(frozen=True, slots=True)
class Reply:
    """A successful reply; ``payload`` is the XDR of the procedure's ``_ret`` type.

    ``offset`` is where the payload starts in the daemon's stream (for decode errors).
    A FileOut call's chunks follow this reply.
    """

    serial: int
    proc: int
    payload: bytes
    offset: int


@dataclass(frozen=True, slots=True)
class ErrorReply:
    """The daemon reported a failure for the call."""

    serial: int
    proc: int
    error: GuestfsError


@dataclass(frozen=True, slots=True)
class ProgressNotice:
    """``guestfs_progress`` for the call in flight (units are the daemon's)."""

    proc: int
    serial: int
    position: int
    total: int


@dataclass(frozen=True, slots=True)
class DownloadData:
    """One chunk of a FileOut transfer (never empty)."""

    serial: int
    data: bytes


@dataclass(frozen=True, slots=True)
class DownloadEnd:
    """The FileOut transfer ended normally; the call is complete."""

    serial: int


@dataclass(frozen=True, slots=True)
class UploadCancelledByDaemon:
    """The daemon cancelled a FileIn transfer; the core has already answered with a
    cancel chunk.  The daemon's error reply follows (an ErrorReply)."""

    serial: int


@dataclass(frozen=True, slots=True)
class TransferCancelled:
    """A file transfer ended by cancellation and the call is complete.

    ``by_daemon`` False: this side cancelled (upload or download) and the
    daemon has acknowledged.  True: the daemon cancelled a download (it sends no
    reason on the wire; the reply before the chunks was already OK).
    """

    serial: int
    by_daemon: bool


Event = Launched | Reply | ErrorReply | ProgressNotice | DownloadData | DownloadEnd | UploadCancelledByDaemon | TransferCancelled
