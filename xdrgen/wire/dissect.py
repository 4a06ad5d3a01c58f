"""Dissect a captured stream: one block of lines per message, payloads decoded
with a generated module's ``XDR_TYPES`` and ``PROCEDURE_TABLES``.

Each function yields text lines and raises :class:`WireError` (with the byte
offset in the capture) at the first malformed frame or payload.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from xdrgen.runtime.codec import Codec
from xdrgen.runtime.errors import XdrError
from xdrgen.runtime.procedures import ProcedureInfo, ProcedureTable
from xdrgen.wire import guestfs, libvirt, oncrpc
from xdrgen.wire.errors import WireError
from xdrgen.wire.render import render_value

FRAMINGS = ("libvirt", "guestfs", "oncrpc")
_HOLE = struct.Struct(">qI")
_U32 = struct.Struct(">I")


@dataclass(frozen=True)
class Protocol:
    """What the dissector needs from a generated module."""

    types: Mapping[str, Codec[Any]]
    tables: Sequence[ProcedureTable]

    @classmethod
    def from_module(cls, module: ModuleType) -> Protocol:
        return cls(dict(module.XDR_TYPES), tuple(getattr(module, "PROCEDURE_TABLES", {}).values()))

    def table(self, style: str, prog: int, vers: int) -> ProcedureTable | None:
        for table in self.tables:
            if table.style == style and table.program == prog and table.version == vers:
                return table
        return None

    def require_table(self, style: str, prog: int, vers: int, offset: int) -> ProcedureTable:
        table = self.table(style, prog, vers)
        if table is None:
            known = ", ".join(
                f"{t.name} 0x{t.program:08X} version {t.version}" for t in self.tables if t.style == style
            )
            raise WireError(
                f"unknown program 0x{prog:08X} version {vers} (the .x defines {known or f'no {style} programs'})",
                offset,
            )
        return table


def dissect(framing: str, data: bytes, protocol: Protocol) -> Iterator[str]:
    if framing == "libvirt":
        return dissect_libvirt(data, protocol)
    if framing == "guestfs":
        return dissect_guestfs(data, protocol)
    if framing == "oncrpc":
        return dissect_oncrpc(data, protocol)
    raise ValueError(f"unknown framing {framing!r}")


# ---------------------------------------------------------------- decoding helpers


def _identity(offset: int) -> int:
    return offset


def decode_values(
    codecs: Sequence[Codec[Any]],
    data: bytes | memoryview,
    start: int,
    end: int,
    what: str,
    to_stream: Callable[[int], int] = _identity,
) -> list[Any]:
    """Decode ``codecs`` in sequence from exactly ``data[start:end]``."""
    view = memoryview(data)[:end]
    values = []
    offset = start
    for codec in codecs:
        try:
            value, offset = codec.decode_from(view, offset)
        except XdrError as exc:
            raise WireError(
                f"{what}: {_problem(exc)}", to_stream(exc.offset if exc.offset is not None else offset)
            )
        values.append(value)
    if offset != end:
        expected = " + ".join(c.name for c in codecs) or "void"
        raise WireError(f"{what}: {end - offset} bytes left over after {expected}", to_stream(offset))
    return values


def _problem(exc: XdrError) -> str:
    where = ": ".join(part for part in (exc.type_name, exc.path) if part)
    return f"{where}: {exc.problem}" if where else exc.problem


def _labelled(label: str, value: Any, indent: str = "  ") -> list[str]:
    first, *rest = render_value(value, indent)
    return [f"{indent}{label}: {first}", *rest]


def _body(
    label: str,
    codecs: Sequence[Codec[Any]],
    data: bytes | memoryview,
    start: int,
    end: int,
    what: str,
    to_stream: Callable[[int], int] = _identity,
) -> list[str]:
    values = decode_values(codecs, data, start, end, what, to_stream)
    if not codecs:
        return [f"  {label}: void"]
    if len(values) == 1:
        return _labelled(label, values[0])
    lines = []
    for index, value in enumerate(values):
        lines.extend(_labelled(f"{label}[{index}]", value))
    return lines


def _proc_label(table: ProcedureTable | None, proc: int) -> tuple[str, ProcedureInfo | None]:
    info = table.procedures.get(proc) if table is not None else None
    if info is not None:
        return f"{info.constant} ({proc})", info
    return f"unknown procedure {proc}", None


# ---------------------------------------------------------------- libvirt


def dissect_libvirt(data: bytes, protocol: Protocol) -> Iterator[str]:
    for index, frame in enumerate(libvirt.read_frames(data), 1):
        mtype = libvirt.TYPE_NAMES[frame.type]
        status = libvirt.STATUS_NAMES[frame.status]
        if frame.prog == libvirt.KEEPALIVE_PROGRAM:
            name = f"KEEPALIVE {libvirt.KEEPALIVE_PROCS.get(frame.proc, f'unknown procedure {frame.proc}')}"
            table = None
        else:
            table = protocol.require_table("libvirt", frame.prog, frame.vers, frame.offset + 4)
            name, _ = _proc_label(table, frame.proc)
        yield (
            f"#{index} @{frame.offset} {mtype} {name} prog=0x{frame.prog:08X} vers={frame.vers} "
            f"serial={frame.serial} status={status} length={frame.length}"
        )
        yield from _libvirt_payload(frame, data, table, protocol)


def _libvirt_payload(
    frame: libvirt.LibvirtFrame, data: bytes, table: ProcedureTable | None, protocol: Protocol
) -> Iterator[str]:
    start, end = frame.payload_start, frame.end
    size = end - start
    info = table.procedures.get(frame.proc) if table is not None else None
    mtype = libvirt.TYPE_NAMES[frame.type]
    if frame.type in (4, 5):  # *_WITH_FDS: the number of fds comes first
        if size < 4:
            raise WireError(f"{mtype} payload too short for its fd count", start)
        yield f"  fds: {_U32.unpack_from(data, start)[0]}"
        start += 4
        size -= 4
    if frame.status == 1 and frame.type in (1, 3, 5):
        if frame.type == 3 and size == 0:
            yield "  stream aborted (empty ERROR)"
            return
        error_codec = protocol.types.get("remote_error")
        if error_codec is None:
            yield f"  error: {size} bytes (the .x defines no remote_error type)"
        else:
            yield from _body("error", (error_codec,), data, start, end, "remote_error")
        return
    if frame.type == 3:
        if frame.status == 2:
            yield f"  data: {size} bytes" if size else "  data: end of stream (empty CONTINUE)"
        else:
            yield f"  stream finished (OK, {size} bytes)"
        return
    if frame.type == 6:
        if size != _HOLE.size:
            raise WireError(f"STREAM_HOLE payload is {size} bytes, expected {_HOLE.size}", start)
        length, flags = _HOLE.unpack_from(data, start)
        yield f"  hole: length={length} flags={flags}"
        return
    if table is None:  # keepalive
        if size:
            raise WireError(f"keepalive message with a {size}-byte payload (expected none)", start)
        return
    if info is None:
        yield f"  payload: {size} bytes (procedure not in the .x)"
        return
    what = f"{info.constant} {mtype.lower()}"
    if frame.type in (0, 4):
        yield from _body("args", info.args, data, start, end, what)
    elif frame.type in (1, 5):
        yield from _body("ret", () if info.result is None else (info.result,), data, start, end, what)
    else:  # MESSAGE: an event
        if info.event is None:
            yield f"  payload: {size} bytes ({info.name} has no _msg type)"
        else:
            yield from _body("msg", (info.event,), data, start, end, what)


# ---------------------------------------------------------------- guestfs


def dissect_guestfs(data: bytes, protocol: Protocol) -> Iterator[str]:
    for index, item in enumerate(guestfs.read_items(data), 1):
        if isinstance(item, guestfs.Flag):
            yield f"#{index} @{item.offset} {item.name} flag"
        elif isinstance(item, guestfs.Progress):
            table = protocol.table("guestfs", guestfs.PROGRAM, _guestfs_version(protocol))
            name, _ = _proc_label(table, item.proc)
            yield (
                f"#{index} @{item.offset} PROGRESS {name} serial={item.serial} "
                f"position={item.position} total={item.total}"
            )
        elif isinstance(item, guestfs.Chunk):
            state = "cancelled" if item.cancel else ("end of transfer" if item.size == 0 else "data")
            yield f"#{index} @{item.offset} CHUNK {state} size={item.size}"
        else:
            yield from _guestfs_message(index, item, data, protocol)


def _guestfs_version(protocol: Protocol) -> int:
    versions = [t.version for t in protocol.tables if t.style == "guestfs"]
    return versions[0] if versions else -1


def _guestfs_message(index: int, msg: guestfs.Message, data: bytes, protocol: Protocol) -> Iterator[str]:
    table = protocol.require_table("guestfs", msg.prog, msg.vers, msg.offset + 4)
    name, info = _proc_label(table, msg.proc)
    direction = guestfs.DIRECTION_NAMES[msg.direction]
    status = guestfs.STATUS_NAMES[msg.status]
    yield (
        f"#{index} @{msg.offset} {direction} {name} prog=0x{msg.prog:08X} vers={msg.vers} serial={msg.serial} "
        f"status={status} progress_hint={msg.progress_hint} optargs_bitmask=0x{msg.optargs_bitmask:X} "
        f"length={msg.end - msg.offset - 4}"
    )
    start, end = msg.payload_start, msg.end
    if msg.direction == 1 and msg.status == 1:
        error_codec = protocol.types.get("guestfs_message_error")
        if error_codec is None:
            yield f"  error: {end - start} bytes (the .x defines no guestfs_message_error type)"
        else:
            yield from _body("error", (error_codec,), data, start, end, "guestfs_message_error")
        return
    if info is None:
        yield f"  payload: {end - start} bytes (procedure not in the .x)"
        return
    what = f"{info.constant} {direction.lower()}"
    if msg.direction == 0:
        yield from _body("args", info.args, data, start, end, what)
    else:
        yield from _body("ret", () if info.result is None else (info.result,), data, start, end, what)


# ---------------------------------------------------------------- ONC RPC


def dissect_oncrpc(data: bytes, protocol: Protocol) -> Iterator[str]:
    calls: dict[int, ProcedureInfo | None] = {}
    for index, record in enumerate(oncrpc.read_records(data), 1):
        message = oncrpc.parse_message(record)
        fragments = f" fragments={len(record.fragments)}" if len(record.fragments) > 1 else ""
        if isinstance(message, oncrpc.Call):
            table = protocol.require_table("oncrpc", message.prog, message.vers, record.stream_offset(12))
            name, info = _proc_label(table, message.proc)
            calls[message.xid] = info
            yield (
                f"#{index} @{record.offset} CALL {name} xid=0x{message.xid:08X} prog=0x{message.prog:08X} "
                f"vers={message.vers} cred={message.cred} verf={message.verf} length={len(record.data)}{fragments}"
            )
            if info is None:
                yield f"  args: {len(record.data) - message.body_start} bytes (procedure not in the .x)"
            else:
                yield from _body(
                    "args", info.args, record.data, message.body_start, len(record.data),
                    f"{info.constant} call", record.stream_offset,
                )  # fmt: skip
            continue
        yield from _oncrpc_reply(index, record, message, calls)


def _oncrpc_reply(
    index: int, record: oncrpc.Record, reply: oncrpc.Reply, calls: dict[int, ProcedureInfo | None]
) -> Iterator[str]:
    if reply.reply_stat == 0:
        assert reply.accept_stat is not None
        stat = oncrpc.ACCEPT_STAT_NAMES[reply.accept_stat]
        detail = f"MSG_ACCEPTED {stat} verf={reply.verf}"
    else:
        assert reply.reject_stat is not None
        detail = f"MSG_DENIED {oncrpc.REJECT_STAT_NAMES[reply.reject_stat]}"
        if reply.auth_stat is not None:
            detail += f" auth_stat={reply.auth_stat}"
    if reply.mismatch is not None:
        detail += f" low={reply.mismatch[0]} high={reply.mismatch[1]}"
    known = reply.xid in calls
    info = calls.pop(reply.xid, None)
    name = f"{info.constant} ({info.number}) " if info is not None else ""
    fragments = f" fragments={len(record.fragments)}" if len(record.fragments) > 1 else ""
    yield f"#{index} @{record.offset} REPLY {name}xid=0x{reply.xid:08X} {detail} length={len(record.data)}{fragments}"
    end = len(record.data)
    if reply.accept_stat != 0:
        if reply.body_start != end:
            raise WireError(
                f"{end - reply.body_start} bytes after a reply without results",
                record.stream_offset(reply.body_start),
            )
        return
    if info is None:
        reason = "procedure not in the .x" if known else "no call with this xid in the capture"
        yield f"  results: {end - reply.body_start} bytes ({reason})"
        return
    codecs = () if info.result is None else (info.result,)
    yield from _body(
        "results", codecs, record.data, reply.body_start, end, f"{info.constant} reply", record.stream_offset
    )
