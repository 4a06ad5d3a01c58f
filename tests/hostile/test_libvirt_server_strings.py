"""Every CALL gets an answer: invalid UTF-8 in arguments, handlers that fail, replies that do not encode.

Strings travel as bytes; our decoders keep invalid UTF-8 as lone surrogates
(surrogateescape), so a handler's error message may carry them.  libvirtd
answers such calls like any other; so must we, echoing the bytes it was sent.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import pytest

from conftest import REPO_ROOT, require_shared
from hostile import wire
from hostile.fixtures import fake, procs  # noqa: F401  (fixtures)
from hostile.rawpeer import RawPeer
from hostile.servers import FakeDaemon, ServerThread
from peers.daemons import Daemon
from peers.fixtures import libvirtd  # noqa: F401  (fixture)
from xdrgen.runtime.virnet import events as ev
from xdrgen.runtime.virnet.constants import MESSAGE_MAX
from xdrgen.runtime.virnet.errors import LibvirtError
from xdrgen.runtime.virnet.server import ServerConnection, serve_unix

BAD_UTF8 = b"\xff\xfe\xed\xa0\x80x"
VIR_ERR_RPC, VIR_FROM_RPC, VIR_ERR_INTERNAL_ERROR = 39, 7, 1


def opened(path: str, procs: dict[str, int]) -> RawPeer:
    peer = RawPeer(path)
    reply = peer.call(procs["REMOTE_PROC_CONNECT_OPEN"], wire.xdr_opt_string(b"test:///default") + wire.xdr_uint(0))
    assert reply.status == wire.OK
    return peer


LOOKUPS = [
    ("REMOTE_PROC_DOMAIN_LOOKUP_BY_NAME", wire.xdr_opaque(BAD_UTF8)),
    ("REMOTE_PROC_STORAGE_POOL_LOOKUP_BY_NAME", wire.xdr_opaque(BAD_UTF8)),
    ("REMOTE_PROC_STORAGE_VOL_LOOKUP_BY_PATH", wire.xdr_opaque(b"/fake/" + BAD_UTF8)),
]


@pytest.mark.parametrize(("name", "payload"), LOOKUPS, ids=[n for n, _ in LOOKUPS])
def test_invalid_utf8_argument_is_answered_as_libvirtd_does(
    libvirtd: Daemon, fake: FakeDaemon, procs: dict[str, int], name: str, payload: bytes
) -> None:
    errors = {}
    for label, path in (("libvirtd", libvirtd.socket_path), ("ours", fake.socket_path)):
        with opened(path, procs) as peer:
            reply = peer.call(procs[name], payload, serial=9)
            assert reply.status == wire.ERROR, f"{label}: {reply}"
            errors[label] = wire.parse_error(reply.payload)
            # The connection goes on.
            assert peer.call(procs["REMOTE_PROC_CONNECT_GET_VERSION"], serial=10).status == wire.OK
    theirs, ours = errors["libvirtd"], errors["ours"]
    assert (ours.code, ours.domain) == (theirs.code, theirs.domain)
    if name != "REMOTE_PROC_STORAGE_POOL_LOOKUP_BY_NAME" or b"'" in (ours.message or b""):
        # Our example daemon names what it did not find: the bytes come back as they were sent.
        assert BAD_UTF8 in (ours.message or b""), ours
    fake.assert_clean()


# ---------------------------------------------------------------------------
# Handlers that fail in every way, on the generated server skeleton in-process.


@pytest.fixture(scope="module")
def rp() -> Any:
    require_shared("libvirt/remote_protocol.x")
    sys.path.insert(0, str(REPO_ROOT / "examples"))
    from libvirt_codegen import load_remote_protocol

    return load_remote_protocol()


def failing_handler(rp: Any) -> Any:
    class Failing(rp.RemoteHandler):  # type: ignore[misc]
        async def connect_open(self, args: Any) -> None:
            return None

        async def domain_lookup_by_name(self, args: Any) -> Any:
            raise LibvirtError(42, 10, f"no domain named '{args.name}'")

        async def domain_get_os_type(self, args: Any) -> Any:
            raise LibvirtError(1, 10, "a message with a lone surrogate \ud800 in it")

        async def connect_get_hostname(self) -> Any:
            return rp.remote_connect_get_hostname_ret("not \udcff\ud800 encodable")

        async def connect_get_uri(self) -> Any:
            return None  # not a remote_connect_get_uri_ret

        async def connect_get_type(self) -> Any:
            return 42

        async def node_get_info(self) -> Any:
            raise KeyError("a handler bug")

        async def storage_vol_download(self, call: Any, args: Any) -> None:
            return None  # never accepts the stream

        async def domain_screenshot(self, call: Any, args: Any) -> None:
            call.accept(rp.remote_domain_get_os_type_ret("not the right type"))

        async def storage_vol_upload(self, call: Any, args: Any) -> None:
            stream = call.accept(None)
            await stream.recv()
            raise LibvirtError(38, 38, "disk full \udcff after the first chunk")

    return Failing


@pytest.fixture
def failing(rp: Any) -> Iterator[ServerThread]:
    server = ServerThread(lambda path: rp.RemoteServer(failing_handler(rp)).serve_unix(path))
    try:
        yield server
    finally:
        server.stop()


def test_every_failing_handler_is_answered(failing: ServerThread, procs: dict[str, int]) -> None:
    dom = wire.xdr_opaque(b"web") + bytes(16) + wire.xdr_int(1)
    vol = wire.xdr_opaque(b"pool") + wire.xdr_opaque(b"vol") + wire.xdr_opaque(b"key")
    cases = [
        # (procedure, payload, expected code, domain, bytes the message must contain)
        ("REMOTE_PROC_DOMAIN_LOOKUP_BY_NAME", wire.xdr_opaque(BAD_UTF8), 42, 10, b"'" + BAD_UTF8 + b"'"),
        ("REMOTE_PROC_DOMAIN_GET_OS_TYPE", dom, 1, 10, b"surrogate \\ud800 in it"),
        ("REMOTE_PROC_CONNECT_GET_HOSTNAME", b"", VIR_ERR_RPC, VIR_FROM_RPC, b"Unable to encode message payload"),
        ("REMOTE_PROC_CONNECT_GET_URI", b"", VIR_ERR_RPC, VIR_FROM_RPC, b"Unable to encode message payload"),
        ("REMOTE_PROC_CONNECT_GET_TYPE", b"", VIR_ERR_RPC, VIR_FROM_RPC, b"Unable to encode message payload"),
        ("REMOTE_PROC_NODE_GET_INFO", b"", VIR_ERR_INTERNAL_ERROR, VIR_FROM_RPC, b"a handler bug"),
        ("REMOTE_PROC_STORAGE_VOL_DOWNLOAD", vol + bytes(8) + bytes(8) + wire.xdr_uint(0), VIR_ERR_RPC, VIR_FROM_RPC,
         b"returned without accepting the stream"),
        ("REMOTE_PROC_DOMAIN_SCREENSHOT", dom + wire.xdr_uint(0) + wire.xdr_uint(0), VIR_ERR_RPC, VIR_FROM_RPC,
         b"Unable to encode message payload"),
    ]
    with opened(failing.socket_path, procs) as peer:
        for serial, (name, payload, code, domain, text) in enumerate(cases, start=10):
            reply = peer.call(procs[name], payload, serial=serial)
            assert reply.status == wire.ERROR, (name, reply)
            err = wire.parse_error(reply.payload)
            assert (err.code, err.domain) == (code, domain), (name, err)
            assert text in (err.message or b""), (name, err)
        # A stream handler failing after accept: the stream fails with its error (STREAM ERROR).
        assert peer.call(procs["REMOTE_PROC_STORAGE_VOL_UPLOAD"], vol + bytes(16) + wire.xdr_uint(0), serial=30).status == wire.OK
        peer.send(wire.frame(procs["REMOTE_PROC_STORAGE_VOL_UPLOAD"], b"chunk", serial=30, mtype=wire.STREAM, status=wire.CONTINUE))
        obs = peer.read_until(lambda fs: any(f.serial == 30 for f in fs))
        (failed,) = [f for f in obs.frames if f.serial == 30]
        assert (failed.type, failed.status) == (wire.STREAM, wire.ERROR)
        err = wire.parse_error(failed.payload)
        assert (err.code, err.domain, err.message) == (38, 38, b"disk full \xff after the first chunk")
        # No stream was left open by the failed stream calls, and the connection still works.
        assert peer.call(procs["REMOTE_PROC_CONNECT_OPEN"], wire.xdr_opt_string(None) + wire.xdr_uint(0), serial=99).status == wire.OK
        assert peer.silent_for(0.2)


def test_a_reply_over_the_message_limit_is_answered_with_an_error() -> None:
    """A handler's ``_ret`` larger than libvirt's 32 MiB message: the call still gets an answer."""

    async def handler(conn: ServerConnection, call: ev.IncomingCall) -> bytes:
        return bytes(MESSAGE_MAX + 1) if call.proc == 1 else b"ok.."

    server = ServerThread(lambda path: serve_unix(path, handler))
    try:
        with RawPeer(server.socket_path) as peer:
            reply = peer.call(1, serial=5)
            assert reply.status == wire.ERROR
            err = wire.parse_error(reply.payload)
            assert (err.code, err.domain) == (VIR_ERR_RPC, VIR_FROM_RPC)
            assert (err.message or b"").startswith(b"Unable to encode message payload: message of 33554461 bytes exceeds")
            assert peer.call(2, serial=6).payload == b"ok.."
    finally:
        server.stop()
