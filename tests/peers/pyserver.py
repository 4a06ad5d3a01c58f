"""Run a generated ONC RPC server on an event loop of its own, for tests driven by subprocesses.

Also the demo.x handlers that answer as tests/peers/oncrpc_c/demo_server.c does,
so the same C client run against both servers must print the same lines.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from types import ModuleType
from typing import Any, TypeVar

from peers.rpcgen_peers import render_limit, render_option, widget
from xdrgen.runtime.oncrpc.server import RpcServer

T = TypeVar("T")


class ServerThread:
    """``start`` runs ``make()`` (which starts an RpcServer) on a loop in a thread."""

    def __init__(self, make: Callable[[], Coroutine[Any, Any, RpcServer]]) -> None:
        self._make = make
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.server: RpcServer | None = None

    def start(self) -> RpcServer:
        self._thread.start()
        self.server = self.run(self._make())
        return self.server

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        if self.server is not None:
            self.run(self.server.close())
            self.server = None
        if self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
        self.loop.close()

    def __enter__(self) -> RpcServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def c_like_handlers(demo: ModuleType) -> tuple[Any, Any]:
    """Handlers for versions 1 and 2 that answer as demo_server.c does, and print nothing."""

    def lookup(name: str) -> Any:
        if name == "widget":
            return demo.demo_lookup_result(status=demo.DEMO_OK, value=widget(demo))
        return demo.demo_lookup_result(status=demo.DEMO_ERR_NOT_FOUND, value=None)

    class V1(demo.DemoRpcProgram1Handler):  # type: ignore[name-defined,misc]
        async def demo_add(self, a: int, b: int) -> int:
            return (a + b + 2**31) % 2**32 - 2**31

        async def demo_lookup(self, name: str) -> Any:
            return lookup(name)

    class V2(demo.DemoRpcProgram2Handler):  # type: ignore[name-defined,misc]
        def __init__(self) -> None:
            self.configured: list[str] = []

        async def demo_add(self, a: int, b: int) -> int:
            return (a + b + 2**63) % 2**64 - 2**63

        async def demo_lookup(self, name: str) -> Any:
            return lookup(name)

        async def demo_find(self, name: str, kind: int, active: bool) -> Any:
            item = widget(demo)
            return item if name == "widget" and kind == item.kind and active == item.active else None

        async def demo_configure(self, option: Any, limit: Any) -> None:
            self.configured.append(f"configure {render_option(option)} limit={render_limit(limit)}")

        async def demo_first_name(self) -> Any:
            return demo.demo_maybe_name(present=True, value="widget")

    return V1(), V2()
