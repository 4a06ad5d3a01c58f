"""rpc_msg headers and the sans-IO cores.

The fixed-layout fast paths of ``message`` (AUTH_NONE calls, SUCCESS replies)
must read and write exactly what the generated rpc_msg codec does; every
other outcome is a typed exception carrying its data, and encodes back to the
same reply.
"""

from __future__ import annotations

import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xdrgen.runtime.oncrpc import message as m
from xdrgen.runtime.oncrpc import rpc_prot as p
from xdrgen.runtime.oncrpc.core import ClientCore, Failure, Reply
from xdrgen.runtime.oncrpc.dispatch import Dispatch, Entry, ServerCore, Service
from xdrgen.runtime.oncrpc.errors import (
    AuthError,
    BadReply,
    CallRejected,
    GarbageArgs,
    MessageTooLarge,
    ProcUnavail,
    ProgMismatch,
    ProgUnavail,
    ProtocolError,
    RpcMismatch,
    SystemErr,
)
from xdrgen.runtime.oncrpc.record import RecordReader

MSG = p.XDR_TYPES["rpc_msg"]
u32 = st.integers(0, 0xFFFFFFFF)
SETTINGS = settings(max_examples=300, derandomize=True, database=None, deadline=None)


def auths(max_body: int = 400) -> st.SearchStrategy[p.opaque_auth]:
    return st.builds(p.opaque_auth, flavor=st.one_of(st.sampled_from([0, 1, 2, 6]), u32), body=st.binary(max_size=max_body))


def call_msg(xid: int, prog: int, vers: int, proc: int, cred: p.opaque_auth, verf: p.opaque_auth, rpcvers: int = 2) -> p.rpc_msg:
    body = p.call_body(rpcvers=rpcvers, prog=prog, vers=vers, proc=proc, cred=cred, verf=verf)
    return p.rpc_msg(xid=xid, body=p.rpc_msg_body(mtype=p.CALL, value=body))


@SETTINGS
@given(xid=u32, prog=u32, vers=u32, proc=u32, cred=auths(), verf=auths(), args=st.binary(max_size=40),
       rpcvers=st.sampled_from([2, 2, 3]))
def test_call_headers_match_the_generated_codec(
    xid: int, prog: int, vers: int, proc: int, cred: p.opaque_auth, verf: p.opaque_auth, args: bytes, rpcvers: int
) -> None:
    expected = MSG.encode(call_msg(xid, prog, vers, proc, cred, verf, rpcvers))
    if rpcvers == 2:
        assert m.encode_call(xid, prog, vers, proc, m.call_prefix(prog, vers, cred, verf)) == expected
    header = m.parse_call(expected + args)
    assert (header.xid, header.rpcvers, header.prog, header.vers, header.proc) == (xid, rpcvers, prog, vers, proc)
    assert (header.cred, header.verf) == (cred, verf)
    assert header.args_offset == len(expected)


@SETTINGS
@given(xid=u32, stat=st.sampled_from(list(p.accept_stat)), low=u32, high=u32, results=st.binary(max_size=20),
       verf=auths(40))
def test_accepted_replies(xid: int, stat: p.accept_stat, low: int, high: int, results: bytes, verf: p.opaque_auth) -> None:
    value = p.mismatch_info(low=low, high=high) if stat == p.PROG_MISMATCH else None
    reply = p.accepted_reply(verf=verf, reply_data=p.accepted_reply_data(stat=stat, value=value))
    body = p.rpc_msg_body(mtype=p.REPLY, value=p.reply_body(stat=p.MSG_ACCEPTED, value=reply))
    data = MSG.encode(p.rpc_msg(xid=xid, body=body))
    if stat == p.SUCCESS:
        assert m.parse_reply(data + results, 1, 2, 3) == len(data)
        if verf.body == b"" and verf.flavor == 0:
            assert m.success_head(xid) == data
        return
    with pytest.raises(CallRejected) as info:
        m.parse_reply(data + results, 1, 2, 3)
    error = info.value
    assert (error.xid, error.prog, error.vers, error.proc) == (xid, 1, 2, 3)
    expected_class = {p.PROG_UNAVAIL: ProgUnavail, p.PROG_MISMATCH: ProgMismatch, p.PROC_UNAVAIL: ProcUnavail,
                      p.GARBAGE_ARGS: GarbageArgs, p.SYSTEM_ERR: SystemErr}[stat]
    assert type(error) is expected_class
    if isinstance(error, ProgMismatch):
        assert (error.low, error.high) == (low, high)
    if verf.body == b"" and verf.flavor == 0:
        assert m.error_reply(xid, error) == data  # and it encodes back to the same bytes


@SETTINGS
@given(xid=u32, why=st.sampled_from(list(p.auth_stat)), low=u32, high=u32, mismatch=st.booleans())
def test_denied_replies(xid: int, why: p.auth_stat, low: int, high: int, mismatch: bool) -> None:
    if mismatch:
        rejected = p.rejected_reply(stat=p.RPC_MISMATCH, value=p.mismatch_info(low=low, high=high))
    else:
        rejected = p.rejected_reply(stat=p.AUTH_ERROR, value=why)
    body = p.rpc_msg_body(mtype=p.REPLY, value=p.reply_body(stat=p.MSG_DENIED, value=rejected))
    data = MSG.encode(p.rpc_msg(xid=xid, body=body))
    with pytest.raises(CallRejected) as info:
        m.parse_reply(data, 7, 8, 9)
    error = info.value
    if mismatch:
        assert isinstance(error, RpcMismatch) and (error.low, error.high) == (low, high)
    else:
        assert isinstance(error, AuthError) and error.why == why and error.why_name == why.name
    assert m.error_reply(xid, error) == data


def test_auth_error_with_a_stat_this_side_does_not_know_is_sent_as_auth_failed() -> None:
    reply = m.error_reply(5, AuthError(999))
    with pytest.raises(AuthError) as info:
        m.parse_reply(reply, 0, 0, 0)
    assert info.value.why == p.AUTH_FAILED


@pytest.mark.parametrize(
    "data, problem",
    [
        (b"", "malformed call header"),
        (struct.pack(">IIIIIIII", 1, 0, 2, 3, 4, 5, 1, 401) + bytes(404), "body"),
        (m.success_head(1) + bytes(16), "a REPLY"),
        (struct.pack(">III", 1, 7, 2), "msg_type"),
    ],
)
def test_malformed_calls_raise_protocol_error(data: bytes, problem: str) -> None:
    with pytest.raises(ProtocolError, match=problem):
        m.parse_call(data)


def test_the_credential_bound_is_checked_before_the_body_is_read() -> None:
    # A 401-byte length with nothing after it: refused for the length, not for truncation.
    data = struct.pack(">IIIIIIII", 1, 0, 2, 3, 4, 5, 1, 401)
    with pytest.raises(ProtocolError, match="exceeds maximum 400"):
        m.parse_call(data)


@pytest.mark.parametrize("data", [b"\0\0\0\1", struct.pack(">IIIIII", 1, 0, 2, 3, 4, 5), struct.pack(">IIII", 1, 1, 2, 0)])
def test_malformed_replies_raise_bad_reply(data: bytes) -> None:
    with pytest.raises(BadReply):
        m.parse_reply(data, 1, 2, 3)


# -- client core -------------------------------------------------------------------


def success(xid: int, results: bytes = b"") -> bytes:
    return m.success_head(xid) + results


def test_client_core_matches_replies_in_any_order_and_drops_strays() -> None:
    core = ClientCore(100, 1, stream=True)
    calls = [core.make_call(1, struct.pack(">I", i)) for i in range(5)]
    reader = RecordReader()
    for i, (xid, data) in enumerate(calls):
        (record,) = reader.feed(data)
        header = m.parse_call(record)
        assert (header.xid, header.prog, header.vers, header.proc) == (xid, 100, 1, 1)
        assert bytes(record[header.args_offset :]) == struct.pack(">I", i)
    xids = [xid for xid, _ in calls]
    core.forget(xids[1])
    replies = b"".join(frame_(success(x, struct.pack(">I", x & 0xFF))) for x in reversed(xids))
    replies += frame_(success(0xDEAD0000)) + frame_(success(xids[0]))  # a stranger, and a duplicate
    events = core.receive_data(replies)
    assert [e.xid for e in events] == [xids[4], xids[3], xids[2], xids[0]]
    assert all(isinstance(e, Reply) and bytes(e.results) == struct.pack(">I", e.xid & 0xFF) for e in events)
    assert core.pending == 0


def frame_(data: bytes) -> bytes:
    from xdrgen.runtime.oncrpc.record import frame

    return frame(data)


def test_client_core_turns_errors_into_failures_of_their_call() -> None:
    core = ClientCore(100, 1, stream=False, max_datagram=200)
    xid, _ = core.make_call(4)
    event = core.receive_datagram(m.error_reply(xid, ProgMismatch(1, 3)))
    assert isinstance(event, Failure) and isinstance(event.error, ProgMismatch)
    assert (event.error.low, event.error.high, event.error.proc) == (1, 3, 4)
    xid, _ = core.make_call(5)
    event = core.receive_datagram(success(xid) + bytes(300))
    assert isinstance(event, Failure) and isinstance(event.error, MessageTooLarge)
    with pytest.raises(MessageTooLarge):
        core.make_call(6, bytes(200))
    assert core.pending == 0
    xid, _ = core.make_call(7)
    garbage = struct.pack(">I", xid) + b"\0\0\0\1\0\0\0\7"
    event = core.receive_datagram(garbage)
    assert isinstance(event, Failure) and isinstance(event.error, BadReply)


def test_client_core_fragments_calls_when_asked() -> None:
    core = ClientCore(100, 1, stream=True, fragment_size=8)
    xid, data = core.make_call(2, bytes(30))
    # 40-byte header + 30 bytes of arguments = 70 bytes in 9 fragments of at most 8.
    assert len(data) == 70 + 9 * 4
    (record,) = RecordReader().feed(data)
    assert m.parse_call(record).xid == xid


# -- server core -------------------------------------------------------------------


async def _add(a: int, b: int) -> int:
    return a + b


def _decode_two_ints(data: Any) -> tuple[int, int]:
    from xdrgen.runtime.codec import PRIMITIVE_CODECS
    from xdrgen.runtime.errors import XdrTrailingDataError

    a, offset = PRIMITIVE_CODECS["int"].decode_from(data, 0)
    b, offset = PRIMITIVE_CODECS["int"].decode_from(data, offset)
    if offset != len(data):
        raise XdrTrailingDataError("trailing", offset=offset)
    return a, b


def _service(version: int, with_add: bool = True) -> Service:
    decode = _decode_two_ints
    entries = {1: Entry(_add if with_add else None, decode, lambda r: struct.pack(">i", r), "add")}
    return Service(0x30000000, version, entries)


def call(proc: int, args: bytes = b"", *, vers: int = 2, prog: int = 0x30000000, cred: Any = None) -> bytes:
    return m.encode_call(9, prog, vers, proc, m.call_prefix(prog, vers, cred)) + args


def outcome(core: ServerCore, data: bytes) -> Any:
    result = core.handle(data)
    if isinstance(result, Dispatch):
        return result
    try:
        m.parse_reply(result, 0, 0, 0)
    except CallRejected as exc:
        return exc
    return "success"


def test_server_core_decisions() -> None:
    core = ServerCore([_service(2), _service(4), _service(5, with_add=False)])
    assert outcome(core, call(0)) == "success"  # NULL, no handler
    assert isinstance(outcome(core, call(0, b"\0\0\0\0")), GarbageArgs)  # NULL takes nothing
    d = outcome(core, call(1, struct.pack(">ii", 2, 3)))
    assert isinstance(d, Dispatch) and d.args == (2, 3) and d.method is _add
    assert isinstance(outcome(core, call(1, b"\0\0\0")), GarbageArgs)
    assert isinstance(outcome(core, call(2)), ProcUnavail)
    assert isinstance(outcome(core, call(1, struct.pack(">ii", 2, 3), vers=5)), ProcUnavail)  # not implemented
    mismatch = outcome(core, call(0, vers=3))
    assert isinstance(mismatch, ProgMismatch) and (mismatch.low, mismatch.high) == (2, 5)
    assert isinstance(outcome(core, call(0, prog=7)), ProgUnavail)
    rpcvers3 = bytearray(call(0))
    rpcvers3[8:12] = struct.pack(">I", 3)
    rejected = outcome(core, bytes(rpcvers3))
    assert isinstance(rejected, RpcMismatch) and (rejected.low, rejected.high) == (2, 2)
    sys_cred = p.opaque_auth(flavor=p.AUTH_SYS, body=b"\0\0\0\1")
    assert outcome(core, call(0, cred=sys_cred)).why == p.AUTH_BADCRED
    assert outcome(core, call(0, cred=p.opaque_auth(flavor=2, body=b""))).why == p.AUTH_REJECTEDCRED
    with pytest.raises(ValueError, match="served twice"):
        ServerCore([_service(2), _service(2)])


def test_server_core_failure_replies() -> None:
    with pytest.raises(SystemErr):
        m.parse_reply(ServerCore.failure(4, ZeroDivisionError()), 0, 0, 0)
    with pytest.raises(GarbageArgs):
        m.parse_reply(ServerCore.failure(4, GarbageArgs()), 0, 0, 0)
    assert m.parse_reply(ServerCore.success(4, b"abcd"), 0, 0, 0) == 24
