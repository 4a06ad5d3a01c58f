"""The blocking transport facing a misbehaving daemon (hostile bytes no real guestfsd sends)."""

from __future__ import annotations

import socket
import struct

import pytest

from xdrgen.runtime.guestfs import GuestfsConnectionClosed, GuestfsProtocolError, GuestfsTimeout
from xdrgen.runtime.guestfs.sync import GuestfsConnection

LAUNCH = struct.pack(">I", 0xF5F55FF5)


def pair() -> tuple[socket.socket, socket.socket]:
    return socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)


def test_huge_length_word_fails_without_buffering() -> None:
    ours, theirs = pair()
    with theirs:
        theirs.sendall(LAUNCH)
        conn = GuestfsConnection(ours, timeout=10)
        theirs.sendall(struct.pack(">I", 0x10000000))  # 256 MiB claimed
        with pytest.raises(GuestfsProtocolError, match="exceeds GUESTFS_MESSAGE_MAX") as info:
            conn.call(195, None, None, None)
        assert info.value.offset == 4
        assert conn.core.buffered_input == 4  # nothing beyond the length word was kept
        with pytest.raises(GuestfsProtocolError):  # the connection stays failed
            conn.call(195, None, None, None)


def test_garbage_instead_of_launch_flag() -> None:
    ours, theirs = pair()
    with theirs:
        theirs.sendall(struct.pack(">I", 0xDEADBEEF))
        with pytest.raises(GuestfsProtocolError, match="0xdeadbeef"):
            GuestfsConnection(ours, timeout=10)


def test_daemon_closes_mid_call() -> None:
    ours, theirs = pair()
    theirs.sendall(LAUNCH + struct.pack(">I", 40) + b"\0" * 10)  # a reply cut short
    conn = GuestfsConnection(ours, timeout=10)
    theirs.close()
    with pytest.raises(GuestfsConnectionClosed):  # the write or the read notices first
        conn.call(195, None, None, None)


def test_silent_daemon_times_out() -> None:
    ours, theirs = pair()
    with theirs:
        theirs.sendall(LAUNCH)
        conn = GuestfsConnection(ours, timeout=0.2)
        with pytest.raises(GuestfsTimeout):
            conn.call(195, None, None, None)
        with pytest.raises(GuestfsTimeout):  # out of step: no further calls
            conn.call(195, None, None, None)
