"""How the server runs handlers (xdrgen.runtime.oncrpc.calls): eagerly, as tasks only when they wait."""

from __future__ import annotations

import asyncio
import logging
import struct
from typing import Any

import pytest

from xdrgen.runtime.oncrpc import GarbageArgs, current_call
from xdrgen.runtime.oncrpc import message as m
from xdrgen.runtime.oncrpc import rpc_prot as p
from xdrgen.runtime.oncrpc.calls import Calls
from xdrgen.runtime.oncrpc.dispatch import CallInfo, Dispatch, ServerCore
from xdrgen.runtime.oncrpc.errors import CallRejected, SystemErr


def dispatch(method: Any, *args: Any, xid: int = 1) -> Dispatch:
    none = p.opaque_auth(flavor=0, body=b"")
    info = CallInfo(xid, 7, 1, 1, none, none, None, ("127.0.0.1", 9), "tcp")
    return Dispatch(info, method, args, lambda r: struct.pack(">i", r))


def result(reply: bytes) -> Any:
    try:
        offset = m.parse_reply(reply, 7, 1, 1)
    except CallRejected as exc:
        return type(exc)
    return struct.unpack(">i", reply[offset:])[0]


def test_a_handler_that_does_not_wait_is_answered_at_once_without_a_task() -> None:
    async def main() -> None:
        calls = Calls(ServerCore([]))
        replies: list[bytes] = []

        async def add(a: int, b: int) -> int:
            assert current_call().xid == 5
            return a + b

        def plain(a: int) -> int:  # a plain function serves too
            return a * 2

        calls.run(dispatch(add, 2, 3, xid=5), replies.append)
        calls.run(dispatch(plain, 21), replies.append)
        assert [result(r) for r in replies] == [5, 42]  # before any await: no task was made
        assert not calls.tasks

    asyncio.run(main())


def test_a_waiting_handler_continues_in_a_task_with_its_own_call() -> None:
    async def main() -> None:
        calls = Calls(ServerCore([]))
        replies: list[bytes] = []

        async def slow(delay: float) -> int:
            xid = current_call().xid
            await asyncio.sleep(delay)
            await asyncio.sleep(0)
            assert current_call().xid == xid  # each call keeps its own context
            return xid

        for xid, delay in ((1, 0.03), (2, 0.01), (3, 0.02)):
            calls.run(dispatch(slow, delay, xid=xid), replies.append)
        assert not replies and len(calls.tasks) == 3
        await asyncio.gather(*calls.tasks)
        assert [result(r) for r in replies] == [2, 3, 1]  # in the order they finished
        with pytest.raises(LookupError):
            current_call()  # nothing leaked into the caller's context

    asyncio.run(main())


def test_failures_answer_with_their_outcome(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> list[Any]:
        calls = Calls(ServerCore([]))
        replies: list[bytes] = []

        async def refuse() -> int:
            raise GarbageArgs()

        async def broken() -> int:
            raise KeyError("bug")

        async def later_broken() -> int:
            await asyncio.sleep(0)
            raise KeyError("bug")

        async def unencodable() -> Any:
            return "no int"

        for method in (refuse, broken, later_broken, unencodable):
            calls.run(dispatch(method), replies.append)
        await asyncio.gather(*calls.tasks)
        return [result(r) for r in replies]

    with caplog.at_level(logging.ERROR, logger="xdrgen.oncrpc.server"):
        outcomes = asyncio.run(main())
    assert outcomes == [GarbageArgs, SystemErr, SystemErr, SystemErr]
    assert len([r for r in caplog.records if "failed on xid" in r.getMessage()]) == 3  # GarbageArgs is no bug


def test_a_call_cancelled_before_its_task_ran_is_still_told() -> None:
    seen: list[str] = []

    async def main() -> None:
        calls = Calls(ServerCore([]))

        async def handler() -> int:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                seen.append("cancelled")
                raise
            return 0

        calls.run(dispatch(handler), lambda reply: seen.append("replied"))
        calls.cancel()  # the connection went away in the same loop iteration
        await asyncio.sleep(0.01)
        assert not calls.tasks

    asyncio.run(main())
    assert seen == ["cancelled"]
