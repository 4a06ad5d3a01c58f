"""The errors libvirtd's RPC layer reports, with the fields libvirtd fills in.

libvirtd raises these with ``virReportError(code, "...%d...", ...)``; its
error machinery then sends ``str1`` = "%s", ``str2`` = the message and
``int1`` = ``int2`` = -1 (observed on libvirtd 9.0; the hostile suite compares
the bytes).  The server role answers protocol misuse with these, so a client
sees the same error from us as from libvirtd.
"""

from __future__ import annotations

from xdrgen.runtime.virnet.constants import VIR_ERR_ERROR_LEVEL, VIR_ERR_RPC, VIR_FROM_RPC
from xdrgen.runtime.virnet.errors import LibvirtError, NotSupportedError, UNKNOWN_PROCEDURE_PREFIX


def reported(code: int, domain: int, message: str, cls: type[LibvirtError] = LibvirtError) -> LibvirtError:
    """An error as libvirtd's ``virReportError`` fills it in."""
    return cls(code, domain, message, VIR_ERR_ERROR_LEVEL, "%s", message, None, -1, -1)


def _signed(value: int) -> int:
    """A header word printed with ``%d`` (libvirt's format for program and version)."""
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


def unknown_program(prog: int, vers: int) -> LibvirtError:
    """A CALL to a program/version this server does not serve."""
    return reported(VIR_ERR_RPC, VIR_FROM_RPC, f"Cannot find program {_signed(prog)} version {_signed(vers)}")


def unexpected_status(status: int) -> LibvirtError:
    """A CALL whose header status is not OK."""
    return reported(VIR_ERR_RPC, VIR_FROM_RPC, f"Unexpected message status {status & 0xFFFFFFFF}")


def unknown_procedure(proc: int) -> LibvirtError:
    """A procedure number the program does not have."""
    return reported(VIR_ERR_RPC, VIR_FROM_RPC, f"{UNKNOWN_PROCEDURE_PREFIX}: {proc}", NotSupportedError)


def undecodable_arguments(detail: str) -> LibvirtError:
    """Arguments that do not decode; libvirtd says only the first sentence, we add where."""
    return reported(VIR_ERR_RPC, VIR_FROM_RPC, f"Unable to decode message payload: {detail}")


def unencodable_reply(detail: str) -> LibvirtError:
    """A handler's return value that does not encode (libvirtd answers such a call with this)."""
    return reported(VIR_ERR_RPC, VIR_FROM_RPC, f"Unable to encode message payload: {detail}")


__all__ = [
    "reported", "unknown_program", "unexpected_status", "unknown_procedure", "undecodable_arguments",
    "unencodable_reply",
]
