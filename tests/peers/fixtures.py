"""pytest fixtures for the real daemons; import them into a test module to use them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from peers.daemons import Daemon, PeerUnavailable, require_peer_environment, start_libvirtd, start_storage_daemon


@pytest.fixture(scope="module")
def libvirtd() -> Iterator[Daemon]:
    """A root libvirtd serving test:///default (keepalive: ping after 1 s idle)."""
    require_peer_environment()
    try:
        daemon = start_libvirtd(keepalive_interval=1, keepalive_count=30)
    except PeerUnavailable as exc:
        pytest.fail(str(exc))
    try:
        yield daemon
    finally:
        daemon.stop()


@pytest.fixture(scope="module")
def storage_daemon() -> Iterator[Daemon]:
    """libvirtd as nobody with only the storage driver; pool dir in ``extra['pool_dir']``."""
    require_peer_environment()
    try:
        daemon = start_storage_daemon()
    except PeerUnavailable as exc:
        pytest.fail(str(exc))
    try:
        yield daemon
    finally:
        daemon.stop()
