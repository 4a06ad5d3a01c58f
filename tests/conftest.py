"""Shared test fixtures: where the upstream .x files live, and how to skip without them."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_PROTOCOLS = REPO_ROOT.parent / "shared" / "protocols"


def require_shared(relative: str) -> Path:
    """Path of an upstream .x file under ../shared/protocols.

    Skips the test when it is missing, unless XDRGEN_REQUIRE_SHARED=1 (set by
    .ci/run), where a missing file is a failure.
    """
    path = SHARED_PROTOCOLS / relative
    if path.is_file():
        return path
    message = f"upstream protocol file {path} not found (../shared/protocols beside the checkout)"
    if os.environ.get("XDRGEN_REQUIRE_SHARED") == "1":
        pytest.fail(message + " and XDRGEN_REQUIRE_SHARED=1")
    pytest.skip(message)


@pytest.fixture
def remote_protocol_x() -> Path:
    return require_shared("libvirt/remote_protocol.x")


@pytest.fixture
def virnet_protocol_x() -> Path:
    return require_shared("libvirt/virnetprotocol.x")


@pytest.fixture
def keepalive_protocol_x() -> Path:
    return require_shared("libvirt/virkeepaliveprotocol.x")


@pytest.fixture
def guestfs_protocol_x() -> Path:
    return require_shared("guestfs/guestfs_protocol.x")


LIBVIRT_HEADER = Path("/usr/include/libvirt/libvirt.h")


@pytest.fixture
def libvirt_header() -> Path:
    """libvirt.h from Debian's libvirt-dev: the source of VIR_UUID_BUFLEN and friends."""
    if LIBVIRT_HEADER.is_file():
        return LIBVIRT_HEADER
    message = f"{LIBVIRT_HEADER} not found (install Debian's libvirt-dev)"
    if os.environ.get("XDRGEN_REQUIRE_SHARED") == "1":
        pytest.fail(message)
    pytest.skip(message)


def _fail_on(handler: object) -> None:
    from unhandled import AsyncioUnhandled

    assert isinstance(handler, AsyncioUnhandled)
    if handler.records:
        pytest.fail(
            "asyncio reported exceptions nobody handled:\n" + handler.describe(),
            pytrace=False,
        )


@pytest.fixture(autouse=True)
def _no_unhandled_asyncio_exceptions() -> Iterator[None]:
    """Fail a test after which asyncio logged an exception nobody handled."""
    from unhandled import AsyncioUnhandled

    handler = AsyncioUnhandled()
    logger = logging.getLogger("asyncio")
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
    _fail_on(handler)


@pytest.fixture(scope="module", autouse=True)
def _no_unhandled_asyncio_exceptions_in_cycles() -> Iterator[None]:
    """Tasks kept alive by reference cycles report only when collected: once per module
    (a full collection after every test would triple the suite's time)."""
    from unhandled import AsyncioUnhandled, collect_garbage

    yield
    handler = AsyncioUnhandled()
    logger = logging.getLogger("asyncio")
    logger.addHandler(handler)
    try:
        collect_garbage()
    finally:
        logger.removeHandler(handler)
    _fail_on(handler)
