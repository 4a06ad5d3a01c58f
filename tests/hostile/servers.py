"""Our libvirt server under attack: examples/fake_libvirtd.py as a subprocess.

The process is real (its resident memory and descriptors can be measured), and
its stderr is kept in a file that every test checks for unhandled exceptions
(tracebacks, asyncio's "never retrieved" / "Exception in callback").
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from unhandled import UNHANDLED_MARKERS

REPO_ROOT = Path(__file__).resolve().parents[2]
FAKE = REPO_ROOT / "examples" / "fake_libvirtd.py"
#: What in the server's stderr means an exception nobody handled.
STDERR_MARKERS = ("Traceback", *UNHANDLED_MARKERS)
START_WAIT = 180.0  # the first run may generate remote_protocol.py
STOP_WAIT = 20.0


class FakeDaemon:
    """examples/fake_libvirtd.py serving on a socket in its own temporary directory."""

    def __init__(self, *extra: str) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="xh", dir="/tmp"))
        self.socket_path = str(self.root / "sock")
        self.log_path = self.root / "stderr"
        self._log_pos = 0
        log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            [sys.executable, str(FAKE), "--socket", self.socket_path, *extra],
            stdout=subprocess.PIPE, stderr=log, text=True, cwd=str(REPO_ROOT),
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        )
        log.close()
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
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
