"""Hostile guestfsd, contents: seeded random reply bodies and streams, invalid UTF-8.

A well-framed reply whose body does not decode is GuestfsReplyDecodeError and the
connection stays in step; random bytes in place of a reply are a protocol error
or a closed connection.  Strings that are not UTF-8 travel without loss (as
surrogate escapes) into values, and are replaced in error messages.
"""

from __future__ import annotations

import random
from types import ModuleType

import pytest

from guestfs_clients import gfc  # noqa: F401  (fixture)
from hostile.guestfs_peer import MODES, Peer, error_reply, message, play, step, xdr_string
from xdrgen.runtime.errors import XdrError
from xdrgen.runtime.guestfs import GuestfsError, GuestfsReplyDecodeError, GuestfsRuntimeError

BODIES = 1000
STREAMS = 200


@pytest.mark.parametrize("mode", MODES)
def test_seeded_random_reply_bodies(gfc: ModuleType, mode: str) -> None:  # noqa: F811
    rng = random.Random(20261206)
    bodies = []
    for _ in range(BODIES):
        if rng.random() < 0.3:  # a plausible string: length word, then random bytes
            size = rng.randrange(0, 40)
            bodies.append(size.to_bytes(4, "big") + rng.randbytes(rng.randrange(0, 48)))
        else:
            bodies.append(rng.randbytes(rng.randrange(0, 64)))

    def script(peer: Peer) -> None:
        peer.launch()
        for body in [*bodies, xdr_string(b"survived")]:
            call, _ = peer.read_call()
            peer.send(message(call, body))

    steps = [step("echo_daemon", ["x"]) for _ in range(BODIES + 1)]
    result = play(gfc, mode, script, steps, timeout=10)
    kinds = {o.kind for o in result.steps}
    assert kinds == {"ok", "GuestfsReplyDecodeError"}
    assert result.steps[-1].value == "survived"  # in step after a thousand bad bodies
    for outcome, body in zip(result.steps, bodies):
        if outcome.error is None:
            assert isinstance(outcome.value, str)
        else:
            assert isinstance(outcome.error, GuestfsReplyDecodeError) and outcome.error.offset is not None


@pytest.mark.parametrize("mode", MODES)
def test_seeded_random_streams_instead_of_a_reply(gfc: ModuleType, mode: str) -> None:  # noqa: F811
    rng = random.Random(6122026)
    kinds: dict[str, int] = {}
    for _ in range(STREAMS):
        garbage = rng.randbytes(rng.randrange(1, 200))

        def script(peer: Peer, garbage: bytes = garbage) -> None:
            peer.launch()
            peer.read_call()
            peer.send(garbage)

        result = play(gfc, mode, script, [step("echo_daemon", ["x"])], timeout=2)
        outcome = result.steps[0]
        assert isinstance(outcome.error, GuestfsRuntimeError), outcome
        kinds[outcome.kind] = kinds.get(outcome.kind, 0) + 1
    assert set(kinds) <= {"GuestfsProtocolError", "GuestfsConnectionClosed"}


@pytest.mark.parametrize("mode", MODES)
def test_invalid_utf8_in_both_directions(gfc: ModuleType, mode: str) -> None:  # noqa: F811
    calls: list[bytes] = []

    def script(peer: Peer) -> None:
        peer.launch()
        call, payload = peer.read_call()
        calls.append(payload)
        peer.send(message(call, xdr_string(b"ok\xff\xfe")))  # echo_daemon's output is not UTF-8
        call, payload = peer.read_call()
        calls.append(payload)
        peer.send(error_reply(call, b"bad \xc3\x28 name", b"E\xffNOENT"))
        call, payload = peer.read_call()
        calls.append(payload)
        peer.send(message(call, xdr_string(b"clean")))

    steps = [
        step("echo_daemon", ["\udcff\udcfe"]),  # bytes FF FE, carried as surrogate escapes
        step("echo_daemon", ["\ud800"]),  # no bytes at all: refused before anything is sent
        step("mkdir", "/x"),
        step("echo_daemon", ["after"]),
    ]
    result = play(gfc, mode, script, steps)
    first, refused, failed, last = result.steps
    assert first.value == "ok\udcff\udcfe"
    assert isinstance(refused.error, XdrError)
    assert isinstance(failed.error, GuestfsError) and failed.error.message == "bad \ufffd( name"
    assert last.value == "clean"
    assert calls[0] == b"\0\0\0\1\0\0\0\2\xff\xfe\0\0"  # the escapes went out as the original bytes
    assert calls[1] == b"\0\0\0\2/x\0\0"  # the refused call never reached the daemon
