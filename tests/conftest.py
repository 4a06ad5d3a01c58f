"""Shared test fixtures: where the upstream .x files live, and how to skip without them."""

from __future__ import annotations

import os
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
