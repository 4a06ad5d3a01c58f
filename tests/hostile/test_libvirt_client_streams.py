"""Hostile server vs the GENERATED libvirt clients: streams, events and unread data.

A download (domain_screenshot) that the server ends, breaks or floods, and
events that do not decode.  Each case asserts the outcome (data, error to
the reader, connection closed), that nothing hangs (every wait is bounded),
that a bystander connection is unaffected, and for the flood that memory
stays within ``stream_buffer_max``.  What libvirt's client does is noted per
case from its source (virnetclient.c / virnetclientstream.c, libvirt 9.0).
"""

from __future__ import annotations

import asyncio
import struct
import sys
import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest

from conftest import REPO_ROOT, require_shared
from peers import hostile_libvirtd as h
from peers.hostile_libvirtd import WAIT, Call, HostileLibvirtd, Peer, bystander
from xdrgen.runtime.virnet.errors import (
    BadMessageError,
    CallTimeout,
    ConnectionClosed,
    PayloadDecodeError,
    ProtocolError,
    StreamError,
    StreamOverflowError,
    VirNetError,
)

sys.path.insert(0, str(REPO_ROOT / "examples"))
from libvirt_codegen import load_remote_protocol  # noqa: E402

SHOT = h.PROC_DOMAIN_SCREENSHOT
CHUNK = 256 * 1024
MiB = 1 << 20
FLAVOURS = ["sync", "asyncio"]


@pytest.fixture(scope="module")
def rp() -> Any:
    require_shared("libvirt/remote_protocol.x")
    return load_remote_protocol()


def dom(rp: Any) -> Any:
    return rp.remote_nonnull_domain(name="d", uuid=bytes(16), id=1)


MIME = struct.pack(">I", 1) + h.xdr_bytes(b"image/png")  # remote_domain_screenshot_ret


def stream_script(after_reply: Callable[[Peer, Call], None], *, ack: bool = True) -> h.Script:
    """Answer the screenshot call, run ``after_reply``; confirm finish / abort with STREAM OK if ``ack``."""

    def script(peer: Peer, call: Call) -> bool:
        if call.proc != SHOT:
            return False
        if call.type == h.CALL:
            peer.reply(call, MIME)
            after_reply(peer, call)
        elif call.type == h.STREAM and call.status in (h.OK, h.ERROR) and ack:
            peer.stream(call, h.OK)  # libvirtd 9.0 confirms finish and abort alike
        return True

    return script


def data_then_eof(peer: Peer, call: Call) -> None:
    for i in range(3):
        peer.stream(call, h.CONTINUE, bytes([i]) * 1000)
    peer.stream(call, h.CONTINUE)


def read_all(rp: Any, path: str, flavour: str, **conn_kwargs: Any) -> dict[str, Any]:
    """Open the download, read it to the end and finish it; what happened, and is the connection alive."""
    if flavour == "sync":
        with rp.RemoteClient.connect_unix(path, **conn_kwargs) as c:
            out: dict[str, Any] = {"data": b""}
            try:
                _, st = c.domain_screenshot(dom(rp), 0, rpc_timeout=WAIT)
                while (chunk := st.recv(WAIT)) is not None:
                    out["data"] += bytes(chunk)
                st.finish(WAIT)
                out["outcome"] = "ok"
            except Exception as exc:
                out.update(outcome="error", error=exc)
            out["alive"] = h.alive(c)
            return out

    async def run() -> dict[str, Any]:
        async with await rp.RemoteAsyncClient.connect_unix(path, **conn_kwargs) as c:
            out: dict[str, Any] = {"data": b""}
            try:
                _, st = await c.domain_screenshot(dom(rp), 0, rpc_timeout=WAIT)
                while (chunk := await asyncio.wait_for(st.recv(), WAIT)) is not None:
                    out["data"] += bytes(chunk)
                await asyncio.wait_for(st.finish(), WAIT)
                out["outcome"] = "ok"
            except Exception as exc:
                out.update(outcome="error", error=exc)
            out["alive"] = await h.alive_async(c)
            return out

    return asyncio.run(run())


def cut_data_frame(peer: Peer, call: Call) -> None:
    whole = h.frame(SHOT, h.STREAM, call.serial, h.CONTINUE, b"x" * 5000)
    peer.send(whole[:2000])
    peer.close()


def close_now(peer: Peer, call: Call) -> None:
    peer.close()


def eof_then_close(peer: Peer, call: Call) -> None:
    data_then_eof(peer, call)
    peer.close()


def error_undecodable(peer: Peer, call: Call) -> None:
    peer.stream(call, h.CONTINUE, b"some")
    peer.stream(call, h.ERROR, b"junk")


def error_not_utf8(peer: Peer, call: Call) -> None:
    peer.stream(call, h.ERROR, h.remote_error(1, 10, b"disk \xff gone"))


def hole_on_plain_stream(peer: Peer, call: Call) -> None:
    peer.stream(call, h.CONTINUE, struct.pack(">qI", 4096, 0), mtype=h.STREAM_HOLE)


def stray_packets_then_data(peer: Peer, call: Call) -> None:
    # Packets of streams that do not exist (libvirt's client ignores them), and of this
    # serial under another procedure (it matches streams by procedure too).
    peer.send(h.frame(SHOT, h.STREAM, call.serial + 5, h.CONTINUE, b"stray"))
    peer.send(h.frame(SHOT + 1, h.STREAM, call.serial, h.CONTINUE, b"other proc"))
    data_then_eof(peer, call)


#: name -> (what the server does after the reply, finish/abort acknowledged?, outcome, error class, alive)
STREAM_CASES: dict[str, tuple[Callable[[Peer, Call], None], bool, str, type[Exception] | None, bool]] = {
    "data, end, finish confirmed": (data_then_eof, True, "ok", None, True),
    "stray stream packets are ignored": (stray_packets_then_data, True, "ok", None, True),
    "disconnect right after the reply": (close_now, True, "error", ConnectionClosed, False),
    "disconnect inside a data frame": (cut_data_frame, True, "error", ConnectionClosed, False),
    "disconnect before the finish confirmation": (eof_then_close, True, "error", ConnectionClosed, False),
    "finish confirmation withheld": (data_then_eof, False, "error", (CallTimeout, asyncio.TimeoutError), True),  # type: ignore[dict-item]
    "stream error that does not decode": (error_undecodable, True, "error", BadMessageError, True),
    "stream error with invalid UTF-8": (error_not_utf8, True, "error", StreamError, True),
    "hole on a stream not opened sparse": (hole_on_plain_stream, True, "error", ProtocolError, False),
}


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("case", sorted(STREAM_CASES))
def test_hostile_download(rp: Any, case: str, flavour: str) -> None:
    after, ack, outcome, error_class, alive = STREAM_CASES[case]
    with HostileLibvirtd(stream_script(after, ack=ack)) as server, bystander(rp, server.path):
        ours = read_all(rp, server.path, flavour)
    assert ours["outcome"] == outcome, ours
    assert ours["alive"] is alive, ours
    if error_class is not None:
        assert isinstance(ours["error"], error_class), repr(ours["error"])
    if outcome == "ok":
        assert ours["data"] == b"\0" * 1000 + b"\1" * 1000 + b"\2" * 1000
    if case == "stream error with invalid UTF-8":
        assert ours["error"].message.encode("utf-8", "surrogateescape") == b"disk \xff gone"


# ------------------------------------------------------------- flood


FLOOD = 32 * MiB
BUDGET = 4 * MiB


def flood(peer: Peer, call: Call) -> None:
    for _ in range(FLOOD // CHUNK):
        peer.stream(call, h.CONTINUE, b"f" * CHUNK)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_unread_flood_never_stalls_a_call_and_is_capped(rp: Any, flavour: str) -> None:
    """32 MiB pour into a download nobody reads while a call waits: the call is answered,
    the stream is aborted past stream_buffer_max with StreamOverflowError, memory stays near the cap
    (the cap, plus receive buffers the queued views pin and the spares the buffer keeps)."""
    with HostileLibvirtd(stream_script(flood)) as server, bystander(rp, server.path):
        tracemalloc.start()
        try:
            if flavour == "sync":
                with rp.RemoteClient.connect_unix(server.path, stream_buffer_max=BUDGET) as c:
                    _, st = c.domain_screenshot(dom(rp), 0, rpc_timeout=WAIT)
                    assert c.connect_get_lib_version(rpc_timeout=WAIT).lib_ver == h.LIB_VERSION
                    with pytest.raises(StreamOverflowError, match="stream_buffer_max"):
                        while st.recv(WAIT) is not None:
                            pass
                    assert c.connection.stream_buffered_bytes == 0
                    assert c.connect_get_lib_version(rpc_timeout=WAIT).lib_ver == h.LIB_VERSION
            else:

                async def run() -> None:
                    async with await rp.RemoteAsyncClient.connect_unix(server.path, stream_buffer_max=BUDGET) as c:
                        _, st = await c.domain_screenshot(dom(rp), 0, rpc_timeout=WAIT)
                        assert (await c.connect_get_lib_version(rpc_timeout=WAIT)).lib_ver == h.LIB_VERSION
                        with pytest.raises(StreamOverflowError, match="stream_buffer_max"):
                            while await asyncio.wait_for(st.recv(), WAIT) is not None:
                                pass
                        assert c.connection.stream_buffered_bytes == 0
                        assert (await c.connect_get_lib_version(rpc_timeout=WAIT)).lib_ver == h.LIB_VERSION

                asyncio.run(run())
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        aborts = [c for c in server.calls if c.proc == SHOT and c.type == h.STREAM and c.status == h.ERROR]
        assert len(aborts) == 1  # the client told the server it gave the stream up
    assert peak < 2 * BUDGET + 4 * MiB, f"peak {peak} bytes for a {BUDGET}-byte stream_buffer_max"


# ------------------------------------------------------------- events

LIFECYCLE = h.PROC_DOMAIN_EVENT_CALLBACK_LIFECYCLE


def lifecycle(name: bytes, event: int, callback_id: int = 7) -> bytes:
    return struct.pack(">i", callback_id) + h.xdr_bytes(name) + bytes(16) + struct.pack(">iii", 1, event, 0)


def events_after_hostname(peer: Peer, call: Call) -> None:
    peer.reply(call, h.xdr_bytes(b"host"))
    peer.send(h.frame(LIFECYCLE, h.MESSAGE, 0, h.OK, lifecycle(b"good", 2)[:-6]))  # truncated
    peer.send(h.frame(LIFECYCLE, h.MESSAGE, 0, h.OK, lifecycle(b"caf\xe9", 3)))  # not UTF-8
    peer.send(h.frame(LIFECYCLE + 9999, h.MESSAGE, 0, h.OK, b"unknown event"))
    peer.send(h.frame(LIFECYCLE, h.MESSAGE, 0, h.OK, lifecycle(b"good", 4)))


def event_script(peer: Peer, call: Call) -> bool:
    if call.type == h.CALL and call.proc == h.PROC_CONNECT_GET_HOSTNAME:
        events_after_hostname(peer, call)
        return True
    return False


def test_sync_client_keeps_bad_events_aside_and_goes_on(rp: Any) -> None:
    import threading

    with HostileLibvirtd(event_script) as server, bystander(rp, server.path):
        with rp.RemoteClient.connect_unix(server.path) as c:
            got: list[Any] = []
            two = threading.Event()

            def on_lifecycle(message: object) -> None:
                got.append(message)
                if len(got) == 2:
                    two.set()

            c.on_domain_event_callback_lifecycle(on_lifecycle)
            assert c.connect_get_hostname(rpc_timeout=WAIT).hostname == "host"
            assert two.wait(WAIT)
            assert [(m.msg.dom.name.encode("utf-8", "surrogateescape"), m.msg.event) for m in got] == [
                (b"caf\xe9", 3), (b"good", 4)]
            (bad,) = c.bad_events
            assert isinstance(bad, PayloadDecodeError) and isinstance(bad, VirNetError)
            assert bad.type_name == "remote_domain_event_callback_lifecycle_msg"
            assert c.connect_get_lib_version(rpc_timeout=WAIT).lib_ver == h.LIB_VERSION


def test_asyncio_event_iterator_keeps_bad_events_aside_and_goes_on(rp: Any) -> None:
    """One malformed event must not end ``<event>_events()`` (issue 11 item 6), and the
    iterator made before the call sees the events that came with its reply (item 9)."""

    async def run(path: str) -> None:
        async with await rp.RemoteAsyncClient.connect_unix(path) as c:
            events = c.domain_event_callback_lifecycle_events(callback_id=7)
            others = c.domain_event_callback_lifecycle_events(callback_id=8)
            assert (await c.connect_get_hostname(rpc_timeout=WAIT)).hostname == "host"
            got = [await asyncio.wait_for(events.__anext__(), WAIT) for _ in range(2)]
            assert [(m.msg.dom.name.encode("utf-8", "surrogateescape"), m.msg.event) for m in got] == [
                (b"caf\xe9", 3), (b"good", 4)]
            (bad,) = c.bad_events
            assert isinstance(bad, PayloadDecodeError)
            with pytest.raises(asyncio.TimeoutError):  # routed by callbackID: none was for 8
                await asyncio.wait_for(others.__anext__(), 0.2)
            assert (await c.connect_get_lib_version(rpc_timeout=WAIT)).lib_ver == h.LIB_VERSION

    with HostileLibvirtd(event_script) as server, bystander(rp, server.path):
        asyncio.run(run(server.path))
