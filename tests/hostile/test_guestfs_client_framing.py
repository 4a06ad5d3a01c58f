"""Hostile guestfsd, framing: garbage, wrong headers, oversized and half frames, slow senders.

Each case: an error to the caller (the right exception family) or success, never
a hang, and memory that follows the bytes received, not the lengths declared.
"""

from __future__ import annotations

import asyncio
import struct
import time
import tracemalloc
from types import ModuleType

import pytest

from guestfs_clients import gfc  # noqa: F401  (fixture)
from hostile.guestfs_peer import MODES, HostileDaemon, Peer, chunk, message, play, step, xdr_string
from xdrgen.runtime.guestfs import (
    GuestfsConnectionClosed,
    GuestfsProtocolError,
    GuestfsRuntimeError,
    GuestfsTimeout,
)
from xdrgen.runtime.guestfs.aio import HIGH_WATER
from xdrgen.runtime.guestfs.constants import MESSAGE_MAX, WORD

ECHO = step("echo_daemon", ["x"])


def echo_reply(peer: Peer, text: bytes = b"x") -> None:
    call, _ = peer.read_call()
    peer.send(message(call, xdr_string(text)))


@pytest.mark.parametrize("mode", MODES)
def test_garbage_instead_of_the_launch_flag(gfc: ModuleType, mode: str) -> None:  # noqa: F811
    result = play(gfc, mode, lambda peer: peer.send(struct.pack(">I", 0xDEADBEEF)), [ECHO])
    assert isinstance(result.connect.error, GuestfsProtocolError) and "0xdeadbeef" in str(result.connect.error)


@pytest.mark.parametrize("mode", MODES)
def test_close_before_the_launch_flag(gfc: ModuleType, mode: str) -> None:  # noqa: F811
    result = play(gfc, mode, lambda peer: None, [ECHO])
    assert isinstance(result.connect.error, GuestfsConnectionClosed)


@pytest.mark.parametrize("mode", MODES)
def test_oversized_length_word_fails_the_connection(gfc: ModuleType, mode: str) -> None:  # noqa: F811
    def script(peer: Peer) -> None:
        peer.launch()
        peer.read_call()
        peer.send(WORD.pack(0x10000000) + b"\0" * 64)  # 256 MiB claimed
        peer.sock.recv(1)  # wait for the client to go away

    result = play(gfc, mode, script, [ECHO, ECHO])
    first, second = result.steps
    assert isinstance(first.error, GuestfsProtocolError) and "exceeds GUESTFS_MESSAGE_MAX" in str(first.error)
    assert first.error.offset == 4
    assert isinstance(second.error, GuestfsRuntimeError)  # the connection stays failed


@pytest.mark.parametrize("mode", MODES)
def test_declared_length_allocates_nothing_until_bytes_arrive(gfc: ModuleType, mode: str) -> None:  # noqa: F811
    def script(peer: Peer) -> None:
        peer.launch()
        peer.read_call()
        peer.send(WORD.pack(MESSAGE_MAX) + b"\0" * 100)  # 4 MiB declared, 100 bytes sent
        peer.sock.recv(1)

    tracemalloc.start()
    try:
        result = play(gfc, mode, script, [ECHO], timeout=0.5)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert isinstance(result.steps[0].error, GuestfsTimeout)
    assert peak < MESSAGE_MAX // 4, f"peak {peak} bytes for 100 received"


@pytest.mark.parametrize("mode", MODES)
def test_half_frames_from_a_slow_sender(gfc: ModuleType, mode: str) -> None:  # noqa: F811
    """One byte every 20 ms: each wait is short, the whole reply longer than the timeout."""

    def script(peer: Peer) -> None:
        peer.launch()
        call, _ = peer.read_call()
        for byte in message(call, xdr_string(b"slow")):
            peer.send(bytes([byte]))
            time.sleep(0.02)
        echo_reply(peer, b"next")

    result = play(gfc, mode, script, [ECHO, ECHO], timeout=0.3)
    assert [s.value for s in result.steps] == ["slow", "next"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"prog": 0x20008086}, "program 0x20008086"),
        ({"vers": 3}, "version 3"),
        ({"direction": 0}, "direction 0"),
        ({"serial": 99}, "serial 99"),
        ({"proc": 1}, "procedure 1"),
        ({"status": 7}, "status 7"),
    ],
)
def test_wrong_reply_header_fails_the_connection(gfc: ModuleType, mode: str, change: dict[str, int], words: str) -> None:  # noqa: F811
    def script(peer: Peer) -> None:
        peer.launch()
        call, _ = peer.read_call()
        peer.send(message(call, xdr_string(b"x"), **change))
        peer.sock.recv(1)

    result = play(gfc, mode, script, [ECHO, ECHO])
    first, second = result.steps
    assert isinstance(first.error, GuestfsProtocolError) and words in str(first.error)
    assert isinstance(second.error, GuestfsRuntimeError)


@pytest.mark.parametrize("mode", MODES)
def test_short_frame_and_unexpected_messages(gfc: ModuleType, mode: str) -> None:  # noqa: F811
    def script(peer: Peer) -> None:
        peer.launch()
        peer.read_call()
        peer.send(WORD.pack(10) + b"\0" * 10)  # shorter than a header
        peer.sock.recv(1)

    result = play(gfc, mode, script, [ECHO])
    assert isinstance(result.steps[0].error, GuestfsProtocolError) and "shorter than" in str(result.steps[0].error)

    def twice(peer: Peer) -> None:
        peer.launch()
        call, _ = peer.read_call()
        peer.send(message(call, xdr_string(b"a")) * 2)  # one reply too many
        peer.read_call()
        peer.sock.recv(1)

    result = play(gfc, mode, twice, [ECHO, ECHO])
    assert result.steps[0].value == "a"
    assert isinstance(result.steps[1].error, GuestfsProtocolError)


@pytest.mark.parametrize("mode", MODES)
def test_stray_flags_and_foreign_progress_are_ignored(gfc: ModuleType, mode: str) -> None:  # noqa: F811
    def script(peer: Peer) -> None:
        peer.launch()
        call, _ = peer.read_call()
        progress = WORD.pack(0xFFFF5555) + struct.pack(">iIQQ", call.proc, call.serial + 5, 1, 2)
        peer.send(progress + WORD.pack(0xFFFFEEEE) + message(call, xdr_string(b"fine")))

    result = play(gfc, mode, script, [ECHO])
    assert result.steps[0].value == "fine"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("bad_chunk", "words"),
    [
        (WORD.pack(8 + 8196) + struct.pack(">iI", 0, 8196) + b"\0" * 8196, "exceeds GUESTFS_MAX_CHUNK_SIZE"),
        (WORD.pack(12) + struct.pack(">iI", 5, 1) + b"a\0\0\0", "cancel field is 5"),
        (WORD.pack(12) + struct.pack(">iI", 0, 1) + b"a\0\1\0", "non-zero padding"),
        (WORD.pack(16) + struct.pack(">iI", 0, 1) + b"a\0\0\0" + b"\0" * 4, "does not hold exactly"),
        (WORD.pack(12) + struct.pack(">iI", 1, 4) + b"abcd", "cancel chunk carries data"),
    ],
)
def test_malformed_download_chunks(gfc: ModuleType, mode: str, bad_chunk: bytes, words: str) -> None:  # noqa: F811
    def script(peer: Peer) -> None:
        peer.launch()
        call, _ = peer.read_call()
        peer.send(message(call) + chunk(b"good") + bad_chunk)
        peer.sock.recv(1)

    result = play(gfc, mode, script, [step("download", "/f", bytearray()), ECHO])
    first, second = result.steps
    assert isinstance(first.error, GuestfsProtocolError) and words in str(first.error)
    assert isinstance(second.error, GuestfsRuntimeError)


FLOOD = 16 * 1024 * 1024


def flood(peer: Peer) -> None:
    """A download of FLOOD bytes sent as fast as the socket takes it."""
    block = b"z" * 8192
    peer.launch()
    call, _ = peer.read_call()
    peer.send(message(call))
    for _ in range(FLOOD // len(block)):
        peer.send(chunk(block))
    peer.send(chunk(b""))
    echo_reply(peer, b"after")


def test_download_memory_follows_the_consumer_sync(gfc: ModuleType) -> None:  # noqa: F811
    """A daemon that floods 16 MiB at a sink taking its time: the client holds one read at most."""
    seen = 0

    def slow_sink(data: bytes) -> None:
        nonlocal seen
        seen += len(data)
        if seen % (1024 * 1024) == 0:
            time.sleep(0.01)

    tracemalloc.start()
    try:
        result = play(gfc, "sync", flood, [step("download", "/f", slow_sink), ECHO])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [s.value for s in result.steps] == [FLOOD, "after"] and seen == FLOOD
    assert peak < 2 * 1024 * 1024, f"peak {peak}"


def test_download_memory_follows_the_consumer_aio(gfc: ModuleType) -> None:  # noqa: F811
    """The same flood at an async iterator whose consumer pauses: reading pauses at HIGH_WATER."""

    async def consume(path: str) -> tuple[int, int, str]:
        g = await gfc.GuestfsAsyncClient.connect(path, timeout=10)
        got = most = 0
        async for view in g.download_iter("/f"):
            got += len(view)
            most = max(most, g.connection._pending)
            if got % (1024 * 1024) == 0:
                await asyncio.sleep(0.01)
        after = await g.echo_daemon(["x"])
        await g.close()
        return got, most, after

    with HostileDaemon(flood) as daemon:
        tracemalloc.start()
        try:
            got, most, after = asyncio.run(asyncio.wait_for(consume(daemon.path), 30))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert got == FLOOD and after == "after"
    assert 0 < most <= HIGH_WATER + 256 * 1024
    assert peak < 4 * 1024 * 1024, f"peak {peak}"
