"""pytest fixtures for the ONC RPC peers; import the ones a test module uses.

rpcbind is shared by the whole test session (there can be only one): the first
test that needs it starts it if none runs, and it is stopped by its pid when
the session ends (only when the tests started it).
"""

from __future__ import annotations

import atexit
from collections.abc import Iterator
from types import ModuleType

import pytest

from peers.oncrpc_daemons import Rpcbind, Statd, ensure_rpcbind, require_oncrpc_peers, start_statd
from peers.rpcgen_peers import CServer, DemoPeers, build_demo_peers, require_c_peers, start_demo_server

_RPCBIND: list[Rpcbind] = []
_DEMO_MODULE: list[ModuleType] = []


def _session_rpcbind() -> Rpcbind:
    if not _RPCBIND:
        daemon = ensure_rpcbind()
        _RPCBIND.append(daemon)
        atexit.register(daemon.stop)
    return _RPCBIND[0]


@pytest.fixture
def rpcbind() -> Rpcbind:
    """A running rpcbind on 127.0.0.1:111 and /run/rpcbind.sock (needs root)."""
    require_oncrpc_peers("rpcbind", "rpcinfo")
    try:
        return _session_rpcbind()
    except RuntimeError as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="session")
def demo_peers() -> DemoPeers:
    """rpcgen's C client and server for demo.x."""
    require_c_peers()
    return build_demo_peers()


@pytest.fixture(scope="module")
def c_demo_server(demo_peers: DemoPeers) -> Iterator[CServer]:
    """demo_server on 127.0.0.1 (both versions, TCP and UDP, not registered)."""
    server = start_demo_server(demo_peers)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def statd() -> Iterator[Statd]:
    """rpc.statd registered with rpcbind, in a temporary state directory."""
    require_oncrpc_peers("rpcbind", "rpcinfo", "rpc.statd")
    try:
        _session_rpcbind()
        daemon = start_statd()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    try:
        yield daemon
    finally:
        daemon.stop()


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    """protocols/demo.x generated afresh by ``xdrgen generate`` (with its ONC RPC stubs)."""
    if not _DEMO_MODULE:
        from reference.harness import REPO_ROOT, generate_module

        _DEMO_MODULE.append(generate_module(REPO_ROOT / "protocols" / "demo.x", tmp_path_factory.mktemp("oncrpc-demo")))
    return _DEMO_MODULE[0]
