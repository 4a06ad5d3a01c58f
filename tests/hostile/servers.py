"""Our libvirt server under attack: examples/fake_libvirtd.py as a subprocess.

The process is real (its resident memory and descriptors can be measured), and
its stderr is kept in a file that every test checks for unhandled exceptions
(tracebacks, asyncio's "never retrieved" / "Exception in callback").
"""

from __future__ import annotations

import asyncio
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from unhandled import UNHANDLED_MARKERS

T = TypeVar("T")

REPO_ROOT = Path(__file__).resolve().parents[2]
FAKE = REPO_ROOT / "examples" / "fake_libvirtd.py"
#: What in the server's stderr means an exception nobody handled.
STDERR_MARKERS = ("Traceback", *UNHANDLED_MARKERS)
START_WAIT = 180.0  # the first run may generate remote_protocol.py
STOP_WAIT = 20.0


class FakeDaemon:
    """examples/fake_libvirtd.py serving on a socket in its own temporary directory."""

    def __init__(self, *extra: str, socket_path: str | None = None, may_fail: bool = False, fd_limit: int | None = None) -> None:
        """Start it; ``may_fail``: a daemon that exits at once (refusing the socket) is returned, not failed;
        ``fd_limit``: its RLIMIT_NOFILE."""
        self.root = Path(tempfile.mkdtemp(prefix="xh", dir="/tmp"))
        self.socket_path = socket_path or str(self.root / "sock")
        self.log_path = self.root / "stderr"
        self._log_pos = 0
        log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            [sys.executable, str(FAKE), "--socket", self.socket_path, *extra],
            stdout=subprocess.PIPE, stderr=log, text=True, cwd=str(REPO_ROOT),
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
            preexec_fn=None if fd_limit is None else lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (fd_limit, fd_limit)),
        )
        log.close()
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if "listening" not in line and may_fail and self.process.wait(STOP_WAIT) is not None:
            return
        if "listening" not in line:
            self.process.kill()
            self.process.wait()
            pytest.fail(f"fake_libvirtd did not start: {line!r}\n{self.log_path.read_text()}")

    @property
    def pid(self) -> int:
        return self.process.pid

    def new_stderr(self) -> str:
        """What the server wrote on stderr since the last call."""
        with open(self.log_path, errors="replace") as f:
            f.seek(self._log_pos)
            text = f.read()
            self._log_pos = f.tell()
        return text

    def assert_clean(self) -> None:
        """Fail if the server logged an unhandled exception since the last check, or died."""
        text = self.new_stderr()
        bad = [m for m in STDERR_MARKERS if m in text]
        assert not bad, f"server logged {bad}:\n{text[-6000:]}"
        assert self.process.poll() is None, f"server exited with {self.process.returncode}:\n{text[-6000:]}"

    def stop(self) -> int | None:
        """SIGTERM, wait; the exit status (None if it had to be killed)."""
        rc: int | None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                rc = self.process.wait(STOP_WAIT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                rc = None
        else:
            rc = self.process.returncode
        if self.process.stdout is not None:
            self.process.stdout.close()
        return rc

    def cleanup(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def running_fake(*extra: str) -> Iterator[FakeDaemon]:
    """A FakeDaemon for a fixture: yielded, checked for unhandled exceptions, stopped."""
    daemon = FakeDaemon(*extra)
    try:
        yield daemon
        daemon.assert_clean()
    finally:
        daemon.stop()
        daemon.cleanup()


class ServerThread:
    """A server of ours on its own event loop in a thread, for tests that need its objects.

    ``start(path)`` is a coroutine function returning the server (``serve_unix``
    or a generated ``<T>Server(...).serve_unix``).  Exceptions the loop reports
    (unhandled in a task or callback) are kept in ``loop_errors``; ``stop()``
    fails the test if there are any.
    """

    def __init__(self, start: Callable[[str], Awaitable[Any]]) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="xt", dir="/tmp"))
        self.socket_path = str(self.root / "sock")
        self.loop = asyncio.new_event_loop()
        self.loop_errors: list[dict[str, Any]] = []
        self.loop.set_exception_handler(lambda loop, context: self.loop_errors.append(context))
        ready = threading.Event()
        self._thread = threading.Thread(target=self._main, args=(start, ready), daemon=True)
        self._thread.start()
        if not ready.wait(30):
            raise RuntimeError("server thread did not start")
        if self._start_error is not None:
            raise self._start_error

    _start_error: BaseException | None = None

    def _main(self, start: Callable[[str], Awaitable[Any]], ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)

        async def begin() -> None:
            try:
                self.server = await start(self.socket_path)
            except BaseException as exc:  # reported to the test thread
                self._start_error = exc
            finally:
                ready.set()

        self.loop.run_until_complete(begin())
        if self._start_error is None:
            self.loop.run_forever()

    def run(self, coro_fn: Callable[[], Awaitable[T]], timeout: float = 30.0) -> T:
        """Run ``coro_fn()`` on the server's loop; its result."""

        async def wrapper() -> T:
            return await coro_fn()

        return asyncio.run_coroutine_threadsafe(wrapper(), self.loop).result(timeout)

    def stop(self) -> None:
        async def close() -> None:
            self.server.close()
            await asyncio.wait_for(self.server.wait_closed(), 20)

        try:
            self.run(close)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(20)
            self.loop.close()
        gone = not os.path.exists(self.socket_path)
        shutil.rmtree(self.root, ignore_errors=True)
        assert gone, "the server left its socket file behind"
        assert not self.loop_errors, f"the server's loop reported unhandled exceptions: {self.loop_errors}"
