"""Shared by the generated-guestfs-client tests: the generated module and wire capture."""

from __future__ import annotations

import os
from types import ModuleType

import pytest

from conftest import REPO_ROOT, require_shared
from xdrgen.build.loader import load_generated
from xdrgen.frontend.options import FrontendOptions
from xdrgen.wire.guestfs import Message, read_items

ANNOTATIONS = REPO_ROOT / "protocols" / "annotations" / "guestfs-1.48.toml"
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def gfc() -> ModuleType:
    """The module generated from guestfs_protocol.x with the libguestfs 1.48 annotations."""
    return load_generated(require_shared("guestfs/guestfs_protocol.x"), FrontendOptions(annotations=(ANNOTATIONS,)))


def calls_on_wire(sent: bytes) -> list[Message]:
    """The CALL messages in what a client sent (chunks and flags skipped)."""
    return [item for item in read_items(sent) if isinstance(item, Message) and item.direction == 0]


def random_file(path: str, size: int) -> None:
    """``size`` random bytes in ``path``, written in 1 MiB blocks."""
    with open(path, "wb") as handle:
        left = size
        while left:
            block = os.urandom(min(left, MIB))
            handle.write(block)
            left -= len(block)
