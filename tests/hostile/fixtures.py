"""pytest fixtures of the libvirt server suite; import them into a test module to use them."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from conftest import require_shared
from hostile.servers import FakeDaemon
from peers.xdrmini import procedure_numbers


@pytest.fixture(scope="module")
def procs() -> dict[str, int]:
    """REMOTE_PROC_* name -> number, from the real remote_protocol.x."""
    return procedure_numbers(require_shared("libvirt/remote_protocol.x"))


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeDaemon]:
    """examples/fake_libvirtd.py; at the end it must stop cleanly on SIGTERM and remove its socket."""
    require_shared("libvirt/remote_protocol.x")
    daemon = FakeDaemon()
    try:
        yield daemon
        daemon.assert_clean()
    finally:
        rc = daemon.stop()
        text = daemon.new_stderr()
        gone = not os.path.exists(daemon.socket_path)
        daemon.cleanup()
    assert rc == 0, f"fake_libvirtd exit status {rc} after SIGTERM\n{text[-4000:]}"
    assert gone, "fake_libvirtd left its socket behind after SIGTERM"
