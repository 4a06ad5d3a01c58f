"""Hostile guestfsd, disconnects: the daemon hangs up at every point of a call and a transfer.

Every cut ends in GuestfsConnectionClosed for the call in flight (never a hang,
never a wrong value), and the client's later calls fail the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import pytest

from guestfs_clients import gfc  # noqa: F401  (fixture)
from hostile.guestfs_peer import MODES, Outcome, Peer, chunk, message, play, step, xdr_string
from xdrgen.runtime.guestfs import GuestfsConnectionClosed, GuestfsRuntimeError

ECHO = step("echo_daemon", ["x"])


def cut_after(data: bytes, keep: int) -> Callable[[Peer], None]:
    """A daemon that answers the first call with ``data[:keep]`` and hangs up."""

    def script(peer: Peer) -> None:
        peer.launch()
        peer.read_call()
        peer.send(data[:keep])

    return script


def assert_closed(outcomes: list[Outcome]) -> None:
    first, second = outcomes
    assert isinstance(first.error, GuestfsConnectionClosed), first
    assert isinstance(second.error, GuestfsRuntimeError), second


class _Call:
    serial = 1
    proc = 0


@pytest.mark.parametrize("mode", MODES)
def test_hang_up_before_reading_the_call(gfc: ModuleType, mode: str) -> None:  # noqa: F811
    result = play(gfc, mode, lambda peer: peer.launch(), [ECHO, ECHO])
    assert_closed(result.steps)


@pytest.mark.parametrize("mode", MODES)
def test_hang_up_at_every_byte_of_a_reply(gfc: ModuleType, mode: str) -> None:  # noqa: F811
    reply = bytearray(message(_Call(), xdr_string(b"hello")))  # type: ignore[arg-type]
    reply[12:16] = (195).to_bytes(4, "big")  # echo_daemon's procedure number
    for keep in range(len(reply)):
        result = play(gfc, mode, cut_after(bytes(reply), keep), [ECHO, ECHO])
        assert_closed(result.steps)
    whole = play(gfc, mode, cut_after(bytes(reply), len(reply)), [ECHO, ECHO])
    assert whole.steps[0].value == "hello"  # the control: the uncut reply works
    assert isinstance(whole.steps[1].error, GuestfsConnectionClosed)


@pytest.mark.parametrize("mode", MODES)
def test_hang_up_at_every_point_of_an_upload(gfc: ModuleType, mode: str) -> None:  # noqa: F811
    data = bytes(64 * 1024)  # eight chunks

    def after_chunks(count: int, then_reply_bytes: int = 0) -> Callable[[Peer], None]:
        def script(peer: Peer) -> None:
            peer.launch()
            call, _ = peer.read_call()
            for _ in range(count):
                peer.read_frame()
            if then_reply_bytes:
                peer.send(message(call)[:then_reply_bytes])

        return script

    upload = step("upload", data, "/f")
    for count in range(10):  # before any chunk ... after the end chunk
        assert_closed(play(gfc, mode, after_chunks(count), [upload, ECHO]).steps)
    for keep in (1, 4, 20, 43):  # the reply cut short
        assert_closed(play(gfc, mode, after_chunks(9, keep), [upload, ECHO]).steps)


@pytest.mark.parametrize("mode", MODES)
def test_hang_up_at_every_byte_of_a_download(gfc: ModuleType, mode: str) -> None:  # noqa: F811
    method = "download_iter" if mode == "aio" else "download"
    head = bytearray(message(_Call()))  # type: ignore[arg-type]
    head[12:16] = (67).to_bytes(4, "big")
    stream = bytes(head) + chunk(b"a" * 100) + chunk(b"b" * 100) + chunk(b"")
    args = ("/f",) if mode == "aio" else ("/f", bytearray())
    for keep in range(len(stream)):
        result = play(gfc, mode, cut_after(stream, keep), [step(method, *args), ECHO])
        assert_closed(result.steps)
    whole = play(gfc, mode, cut_after(stream, len(stream)), [step(method, *args)])
    value = whole.steps[0].value
    assert (b"".join(value) if mode == "aio" else value) == (b"a" * 100 + b"b" * 100 if mode == "aio" else 200)
