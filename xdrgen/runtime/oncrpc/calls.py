"""Running handler coroutines for the server: eagerly, and as tasks only when they wait.

Most handlers compute their result without awaiting anything.  Wrapping each
call in an asyncio task would cost a task, a loop iteration and a wake-up
per call, so a call's coroutine is started right away, in a context of its
own (``current_call()``): if it finishes without suspending, the reply is
sent at once; if it suspends, the suspended coroutine continues in a task
(created with the same context) that the connection tracks, counts for
back-pressure and cancels when the client goes away.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import types
from collections.abc import Callable, Coroutine, Generator
from typing import Any, Final

from xdrgen.runtime.oncrpc.dispatch import Dispatch, ServerCore, set_current_call
from xdrgen.runtime.oncrpc.errors import CallRejected

_log: Final = logging.getLogger("xdrgen.oncrpc.server")

_COROUTINE: Final = types.CoroutineType
#: Sends one encoded reply message to the caller.
ReplyTo = Callable[[bytes], None]


class _Continue:
    """Awaitable that drives an already started coroutine on from where it suspended."""

    __slots__ = ("_coro", "_first")

    def __init__(self, coro: Coroutine[Any, Any, Any], first: Any) -> None:
        self._coro = coro
        self._first = first

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, value = self._coro, self._first
        while True:
            try:
                sent = yield value  # the future (or None) it waits on, handed to the task
            except BaseException as exc:  # cancellation and friends go into the coroutine
                try:
                    value = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    value = coro.send(sent)
                except StopIteration as stop:
                    return stop.value


def _cancel(coro: Coroutine[Any, Any, Any]) -> None:
    try:
        coro.throw(asyncio.CancelledError())
    except BaseException:  # noqa: BLE001 - its cancellation, or whatever it made of it
        return
    coro.close()  # it wanted to go on waiting: no


class Calls:
    """The calls of one connection (or one UDP socket) that are waiting on something."""

    def __init__(self, core: ServerCore, on_done: Callable[[], None] | None = None) -> None:
        self.core = core
        self.tasks: set[asyncio.Task[None]] = set()
        self._on_done = on_done
        #: The handler coroutine each task continues, and its context.
        self._handlers: dict[asyncio.Task[None], tuple[Coroutine[Any, Any, Any], contextvars.Context]] = {}

    def run(self, dispatch: Dispatch, reply: ReplyTo) -> None:
        """Run the handler now; reply now, or later from a task if it waits."""
        context = contextvars.copy_context()
        context.run(self._start, dispatch, reply, context)

    def _start(self, d: Dispatch, reply: ReplyTo, context: contextvars.Context) -> None:
        set_current_call(d.info)  # in this call's own context
        try:
            coro = d.method(*d.args)
            if type(coro) is not _COROUTINE and not isinstance(coro, Coroutine):
                # A plain function: its value is the result.
                reply(self._success(d, coro))
                return
            first = coro.send(None)
        except StopIteration as stop:
            reply(self._success(d, stop.value))
            return
        except (Exception, asyncio.CancelledError) as exc:
            reply(self._failure(d, exc))
            return
        task = asyncio.get_running_loop().create_task(self._resume(d, reply, coro, first), context=context)
        self.tasks.add(task)
        self._handlers[task] = (coro, context)
        task.add_done_callback(self._done)

    async def _resume(self, d: Dispatch, reply: ReplyTo, coro: Coroutine[Any, Any, Any], first: Any) -> None:
        try:
            result = await _Continue(coro, first)
        except asyncio.CancelledError:
            raise  # the connection is gone: nobody to answer
        except Exception as exc:
            reply(self._failure(d, exc))
            return
        reply(self._success(d, result))

    def _success(self, d: Dispatch, result: Any) -> bytes:
        if d.encode is None:
            return self.core.success(d.info.xid)
        try:
            return self.core.success(d.info.xid, d.encode(result))
        except Exception as exc:  # the handler returned something the result type cannot encode
            return self._failure(d, exc)

    def _failure(self, d: Dispatch, exc: BaseException) -> bytes:
        if not isinstance(exc, CallRejected):  # a handler bug: SYSTEM_ERR, and a log line
            name = getattr(d.method, "__qualname__", d.method)
            _log.error("handler %s failed on xid %#x: %r", name, d.info.xid, exc, exc_info=exc)
        return self.core.failure(d.info.xid, exc)

    def _done(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        coro, context = self._handlers.pop(task)
        if getattr(coro, "cr_frame", None) is not None:
            # Cancelled before the task first ran: the handler never saw it; tell it now.
            context.run(_cancel, coro)
        if self._on_done is not None:
            self._on_done()

    def cancel(self) -> None:
        """The connection is gone: stop its calls, and let go of it (no cycle to wait for the GC)."""
        self._on_done = None
        for task in self.tasks:
            task.cancel()


__all__ = ["Calls", "ReplyTo"]
